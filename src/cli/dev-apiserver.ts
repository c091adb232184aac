// `metallb dev-apiserver`: an in-memory Kubernetes API server for tests, the lab and local development.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { createLogger, isLogLevel, type LogLevel } from '../log.js';
import { startDevApiServer } from '../cluster/apiserver/server.js';

export { startDevApiServer } from '../cluster/apiserver/server.js';
export type { DevApiServer, DevApiServerOptions } from '../cluster/apiserver/server.js';

interface CliOptions {
  port: number;
  host: string;
  kubeconfigOut?: string;
  dataFile?: string;
  serviceCidr: string;
  serviceCidrV6?: string;
  nodePortRange: string;
  logLevel: LogLevel;
  watchHistory: number;
  exitWithStdin?: boolean;
}

const parsePort = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (0 = any free port)');
  return n;
};

const parseLevel = (v: string): LogLevel => {
  if (!isLogLevel(v)) throw new InvalidArgumentError('must be one of all, debug, info, warn, error, none');
  return v;
};

export function registerDevApiserver(program: Command): void {
  program
    .command('dev-apiserver')
    .description('run an in-memory Kubernetes API server (kubectl and client libraries work against it)')
    .option('--port <n>', 'port to listen on (0 = any free port)', parsePort, 0)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--kubeconfig-out <path>', 'write a kubeconfig for the server here once it listens')
    .option('--data-file <path>', 'persist objects in this JSON file and load it at start')
    .option('--service-cidr <cidr>', 'IPv4 service cluster IP range', '10.96.0.0/12')
    .option('--service-cidr-v6 <cidr>', 'IPv6 service cluster IP range (enables dual-stack)')
    .option('--node-port-range <lo-hi>', 'node port range', '30000-32767')
    .option('--watch-history <n>', 'change events kept for resuming watches (older resourceVersions get 410 Gone)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
      return n;
    }, 20000)
    .option('--exit-with-stdin', 'shut down when stdin closes (test harnesses: the server dies with its parent)')
    .option('--log-level <level>', 'all, debug, info, warn, error, none', parseLevel, 'info' as LogLevel)
    .action(async (o: CliOptions) => {
      const log = createLogger('dev-apiserver', o.logLevel);
      const srv = await startDevApiServer({
        port: o.port,
        host: o.host,
        serviceCIDR: o.serviceCidr,
        nodePortRange: o.nodePortRange,
        historySize: o.watchHistory,
        logger: log,
        ...(o.kubeconfigOut ? { kubeconfigOut: o.kubeconfigOut } : {}),
        ...(o.dataFile ? { dataFile: o.dataFile } : {}),
        ...(o.serviceCidrV6 ? { serviceCIDRv6: o.serviceCidrV6 } : {}),
      });
      log.info({ url: srv.url, kubeconfig: o.kubeconfigOut ?? null, dataFile: o.dataFile ?? null }, 'dev-apiserver listening');
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          log.info({ signal }, 'shutting down');
          srv.close().then(
            () => resolve(),
            (e: unknown) => {
              log.error({ err: String(e) }, 'shutdown failed');
              resolve();
            },
          );
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        if (o.exitWithStdin) {
          process.stdin.on('end', () => stop('stdin closed'));
          process.stdin.on('error', () => stop('stdin closed'));
          process.stdin.resume();
        }
      });
      process.exit(0);
    });
}
