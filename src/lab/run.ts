// Running the host's tools (ip, nsenter, nft) with errors that name the command and its stderr.
import { execFile, spawn } from 'node:child_process';
import { constants } from 'node:os';

export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${command}: ${stderr.trim().split('\n').slice(-3).join(' / ') || `exit code ${code}`}`);
  }
}

const show = (file: string, args: readonly string[]): string => [file, ...args].join(' ');

/** Runs a command to completion; resolves with stdout, rejects with CommandError on a non-zero exit. */
export function run(file: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null;
        reject(new CommandError(show(file, args), code, stderr || err.message));
      } else resolve(stdout);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run, but a failure resolves to undefined (for probing and best-effort cleanup). */
export async function tryRun(file: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string | undefined> {
  try {
    return await run(file, args, opts);
  } catch {
    return undefined;
  }
}

/** `ip -batch -`: many iproute2 commands in one process; stops at the first failing line. */
export async function ipBatch(lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  await run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** Runs a command with inherited stdio, resolving with its exit code (a signal death is 128 + signal number). */
export function runInteractive(file: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code !== null) resolve(code);
      else resolve(128 + (signal ? signalNumber(signal) : 0));
    });
  });
}

const signalNumber = (s: NodeJS.Signals): number => constants.signals[s] ?? 1;
