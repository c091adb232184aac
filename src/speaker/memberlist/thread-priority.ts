// Raises the calling thread's scheduling priority (the gossip worker's): a probe answered late is a false
// suspicion, and under CPU saturation a thread at the default priority waits for the CPU for tens of milliseconds.
//
// `realtime` (default): SCHED_RR at a low real-time priority, through util-linux's `chrt` on our own thread id
// (Node has no sched_setscheduler, and `chrt -p` on a TID affects that thread only). An RT thread runs before every
// normal one, across cgroups and autogroups; the kernel's RT throttling (95% by default) bounds a runaway. `nice`:
// setpriority(-15) on the thread, which only weighs against threads of the same cgroup/autogroup. Both need
// CAP_SYS_NICE; without it the thread keeps the default priority and the caller logs that once.
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

export type PriorityMode = 'realtime' | 'nice' | 'none';
export const RT_PRIORITY = 10;
export const NICE_PRIORITY = -15;

export class PriorityModeError extends Error {
  override name = 'PriorityModeError';
}

/** METALLB_ML_THREAD_PRIORITY: realtime (default), nice or none. */
export function parsePriorityMode(v: string | undefined): PriorityMode {
  const s = (v ?? '').trim().toLowerCase();
  if (s === '' || s === 'realtime' || s === 'rr') return 'realtime';
  if (s === 'nice' || s === 'none') return s;
  throw new PriorityModeError(`METALLB_ML_THREAD_PRIORITY=${v}: expected realtime, nice or none`);
}

export interface PriorityOps {
  /** The calling thread's kernel id. */
  tid(): number;
  /** Puts the thread in SCHED_RR at `prio`; throws when refused. */
  realtime(tid: number, prio: number): void;
  /** setpriority on the thread; throws when refused. */
  nice(tid: number, nice: number): void;
}

export const linuxOps: PriorityOps = {
  tid: () => Number(readlinkSync('/proc/thread-self').split('/').pop()),
  realtime: (tid, prio) => {
    const r = spawnSync('chrt', ['--rr', '-p', String(prio), String(tid)], { encoding: 'utf8', timeout: 5000 });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error((r.stderr || `chrt exited ${r.status}`).trim());
  },
  nice: (tid, n) => setPriority(tid, n),
};

export interface PriorityResult {
  tid: number;
  applied: PriorityMode;
  /** What was attempted, in order. */
  tried: PriorityMode[];
  /** Why the last attempt failed, when nothing was applied (or realtime fell back to nice). */
  error?: string;
  /** The setting itself is wrong (nothing was attempted). */
  invalidSetting?: string;
}

/** Tries the requested mode, falling back from realtime to nice; never throws (a bad mode is reported as error). */
export function raiseThreadPriority(envValue: string | undefined, ops: PriorityOps = linuxOps): PriorityResult {
  let mode: PriorityMode;
  try {
    mode = parsePriorityMode(envValue);
  } catch (err) {
    return { tid: 0, applied: 'none', tried: [], invalidSetting: (err as Error).message };
  }
  if (mode === 'none') return { tid: 0, applied: 'none', tried: [] };
  let tid: number;
  try {
    tid = ops.tid();
    if (!Number.isInteger(tid) || tid <= 0) throw new Error(`not a thread id: ${tid}`);
  } catch (err) {
    return { tid: 0, applied: 'none', tried: [], error: (err as Error).message };
  }
  const tried: PriorityMode[] = [];
  let error: string | undefined;
  if (mode === 'realtime') {
    tried.push('realtime');
    try {
      ops.realtime(tid, RT_PRIORITY);
      return { tid, applied: 'realtime', tried };
    } catch (err) {
      error = (err as Error).message;
    }
  }
  tried.push('nice');
  try {
    ops.nice(tid, NICE_PRIORITY);
    return { tid, applied: 'nice', tried, ...(error ? { error } : {}) };
  } catch (err) {
    return { tid, applied: 'none', tried, error: error ? `${error}; ${(err as Error).message}` : (err as Error).message };
  }
}
