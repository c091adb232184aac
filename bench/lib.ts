// Helpers shared by the benchmarks: options from argv, printing, percentiles, polling, a process's memory.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

const argv = process.argv.slice(2);

/** `--name N` from the command line, or `dflt`; a value that is not a number is an error naming the option. */
export function opt(name: string, dflt: number): number {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  // Every numeric option counts something (trials, addresses, seconds, busy loops): none can be negative.
  if (argv[i + 1] === undefined || !Number.isFinite(v) || v < 0) throw new Error(`bench: ${name} needs a number of 0 or more (got ${JSON.stringify(argv[i + 1] ?? '')})`);
  return v;
}

/** `--name VALUE` from the command line, or `dflt`. */
export function optString(name: string, dflt: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
}

export const flag = (name: string): boolean => argv.includes(name);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const out = (s: string): void => void process.stdout.write(`${s}\n`);

/** The p-quantile (0 < p ≤ 1) of samples, nearest rank. */
export function quantile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

export function stats(xs: readonly number[], unit = 'ms'): string {
  if (xs.length === 0) return 'no samples';
  const s = [...xs].sort((a, b) => a - b);
  return `median ${quantile(s, 0.5).toFixed(0)} ${unit}, p95 ${quantile(s, 0.95).toFixed(0)} ${unit}, min ${s[0]!.toFixed(0)}, max ${s[s.length - 1]!.toFixed(0)} (n=${s.length})`;
}

/** The machine's load, to print beside figures measured on a shared machine. */
export const machineLoad = (): string => `load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} cores`;

/** The whole machine's CPU time (all cores) from /proc/stat: busy and total, in clock ticks. */
function cpuTicks(): { busy: number; total: number } {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, x) => a + (Number.isFinite(x) ? x : 0), 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** The fraction (0–1) of all cores busy over the next `ms`. */
async function cpuBusy(ms: number): Promise<number> {
  const a = cpuTicks();
  await sleep(ms);
  const b = cpuTicks();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

/**
 * Waits until the machine has been calm (under `below` of all cores busy) for two windows of `windowMs` in a row, at
 * most `maxMs`. Returns how long it waited and the last window's figure.
 */
export async function settleMachine(below = 0.5, windowMs = 500, maxMs = 30_000): Promise<{ waitedMs: number; busy: number }> {
  const t = Date.now();
  let calm = 0;
  let busy = 1;
  while (Date.now() - t < maxMs && calm < 2) {
    busy = await cpuBusy(windowMs);
    calm = busy < below ? calm + 1 : 0;
  }
  return { waitedMs: Date.now() - t, busy };
}

/** Polls `fn` (errors count as "not yet") until it holds; throws naming `what` after `timeoutMs`. */
export async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 60_000, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(everyMs);
  }
}

/** A process's peak (VmHWM) or current (VmRSS) resident memory in MB, from /proc; NaN once it is gone. */
export function procMemMB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
