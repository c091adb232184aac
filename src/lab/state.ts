// The lab's state directory: what `lab up` decided (lab.json), what the supervisor runs (processes.json), and paths.
import { existsSync, lstatSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve, dirname } from 'node:path';
import type { LabPlan } from './plan.js';

export interface LabState {
  version: 1;
  plan: LabPlan;
  loadBalancer: boolean;
  /** The controller-manager's --horizontal-pod-autoscaler-downscale-stabilization, when `lab up` shortened it. */
  hpaDownscaleStabilization?: string;
  createdAt: string;
  /** The repository (bin/metallb.js and deploy/) this lab runs. */
  root: string;
}

export interface ProcessRecord {
  name: string;
  pid: number | null;
  restarts: number;
  state: 'running' | 'backoff' | 'stopped';
  startedAt?: string;
  lastExit?: string;
}

export const paths = (stateDir: string) => ({
  state: join(stateDir, 'lab.json'),
  processes: join(stateDir, 'processes.json'),
  supervisorPid: join(stateDir, 'supervisor.pid'),
  kubeconfig: join(stateDir, 'kubeconfig'),
  pki: join(stateDir, 'pki'),
  logs: join(stateDir, 'logs'),
  nodes: join(stateDir, 'nodes'),
  apiserverData: join(stateDir, 'apiserver-data.json'),
  log: (component: string) => join(stateDir, 'logs', `${component}.log`),
  nodeRoot: (node: string) => join(stateDir, 'nodes', node),
});

export type LabPaths = ReturnType<typeof paths>;

/** Writes JSON atomically (readers never see half a file). */
export function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The state dir a lab's default location leads to: itself, or the target of the symlink `--state-dir` left there. */
export function resolveStateDir(defaultDir: string): string {
  try {
    if (lstatSync(defaultDir).isSymbolicLink()) {
      const target = readlinkSync(defaultDir);
      return isAbsolute(target) ? target : resolve(dirname(defaultDir), target);
    }
  } catch {
    /* absent */
  }
  return defaultDir;
}

export function readState(stateDir: string): LabState | undefined {
  if (!existsSync(paths(stateDir).state)) return undefined;
  const s = readJson<LabState>(paths(stateDir).state);
  return s && s.version === 1 ? s : undefined;
}

export function readSupervisorPid(stateDir: string): number | undefined {
  try {
    const n = Number(readFileSync(paths(stateDir).supervisorPid, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};
