// Structured logs: one JSON object a line on stderr, MetalLB's level names, the object concerned as fields.
import pino from 'pino';

export type LogLevel = 'all' | 'debug' | 'info' | 'warn' | 'error' | 'none';

const pinoLevel: Record<LogLevel, string> = {
  all: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  none: 'silent',
};

export type Logger = pino.Logger;

export function createLogger(component: string, level: LogLevel = 'info'): Logger {
  return pino(
    {
      level: pinoLevel[level] ?? 'info',
      base: { component },
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

export const isLogLevel = (s: string): s is LogLevel => s in pinoLevel;
