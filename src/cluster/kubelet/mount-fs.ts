// The filesystem side of mounts.ts: the host view the planner reads, building shadow directories, and the
// top-level directories the kubelet had to create on the host (removed once no mount namespace uses them).
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HOST_LINK_DIR, type HostView, type MountPlan } from './mounts.js';

export const hostView: HostView = {
  kind(p) {
    try {
      return statSync(p).isDirectory() ? 'dir' : 'file';
    } catch {
      return 'missing';
    }
  },
  realpath: (p) => realpathSync(p),
  entries: (d) => readdirSync(d),
};

/** Creates the plan's shadow directories (from scratch) and host directories. Returns the host directories made. */
export function materializePlan(plan: MountPlan): string[] {
  const made: string[] = [];
  for (const d of plan.hostDirs) {
    if (!existsSync(d)) {
      mkdirSync(d, { mode: 0o755 });
      made.push(d);
    }
  }
  for (const s of plan.shadows) {
    rmSync(s.shadowDir, { recursive: true, force: true });
    mkdirSync(join(s.shadowDir, HOST_LINK_DIR), { recursive: true, mode: 0o755 });
    for (const e of s.entries) symlinkSync(`${HOST_LINK_DIR}/${e}`, join(s.shadowDir, e));
    for (const c of s.create) {
      const p = join(s.shadowDir, c.rel);
      if (c.kind === 'dir') mkdirSync(p, { recursive: true, mode: 0o755 });
      else {
        mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
        writeFileSync(p, '');
      }
    }
  }
  return made;
}

/** Whether any process on the host has a mount at `path` in its mount namespace. */
export function mountedAnywhere(path: string): boolean {
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return true;
  }
  const seen = new Set<string>();
  for (const pid of pids) {
    let ns: string;
    try {
      ns = statSync(`/proc/${pid}/ns/mnt`).ino.toString();
    } catch {
      continue;
    }
    if (seen.has(ns)) continue;
    seen.add(ns);
    try {
      if (readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(` ${path} `)) return true;
    } catch {
      /* gone */
    }
  }
  return false;
}

/** Removes a directory the kubelet created on the host when it is empty and no namespace mounts on it. */
export function removeHostDirIfUnused(path: string): boolean {
  try {
    if (readdirSync(path).length > 0 || mountedAnywhere(path)) return false;
    rmdirSync(path);
    return true;
  } catch {
    return false;
  }
}
