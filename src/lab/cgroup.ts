// The lab's cgroup: every process the supervisor starts runs in `<lab cgroup>/<component>`, so `lab down` finds them
// from the host even after the supervisor was killed. cgroup v1 (one directory per hierarchy: pids, memory, cpuacct)
// and v2 (one unified tree) are both handled.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';
const V1_HIERARCHIES = ['pids', 'memory', 'cpuacct'];

export const isCgroupV2 = (): boolean => existsSync(join(ROOT, 'cgroup.controllers'));

/** The hierarchy roots the lab uses on this host (v2: the root; v1: pids, memory, cpuacct where mounted). */
export function hierarchies(): string[] {
  if (isCgroupV2()) return [ROOT];
  return V1_HIERARCHIES.map((h) => join(ROOT, h)).filter((d) => existsSync(join(d, 'cgroup.procs')));
}

/** Every directory a lab with cgroup name `name` could have, in any hierarchy (for cleanup: v1, v2 and hybrid). */
export function labCgroupDirs(name: string): string[] {
  const out: string[] = [];
  const candidates = [join(ROOT, name)];
  try {
    for (const h of readdirSync(ROOT)) candidates.push(join(ROOT, h, name));
  } catch {
    /* no cgroup fs */
  }
  for (const c of candidates) {
    try {
      if (statSync(c).isDirectory() && existsSync(join(c, 'cgroup.procs'))) out.push(c);
    } catch {
      /* absent */
    }
  }
  return out;
}

/** `cgroup.procs` files a component's first process writes its pid to (directories are created). */
export function componentProcsFiles(labCgroup: string, component: string): string[] {
  const files: string[] = [];
  for (const h of hierarchies()) {
    const dir = join(h, labCgroup, component);
    try {
      mkdirSync(dir, { recursive: true });
      files.push(join(dir, 'cgroup.procs'));
    } catch {
      /* a hierarchy we may not write: the others still track the process */
    }
  }
  return files;
}

/** Directories under `dir` (itself included), deepest first. */
export function subtree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: string[] = [];
    try {
      entries = readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) walk(join(d, e));
    out.push(d);
  };
  walk(dir);
  return out;
}

export function pidsIn(dir: string): number[] {
  const pids: number[] = [];
  for (const d of subtree(dir)) {
    try {
      for (const line of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) {
        const n = Number(line);
        if (line !== '' && Number.isInteger(n) && n > 0) pids.push(n);
      }
    } catch {
      /* removed meanwhile */
    }
  }
  return pids;
}

/** Removes `dir` and its children (bottom-up); returns the directories that could not be removed. */
export function removeCgroupTree(dir: string): string[] {
  const left: string[] = [];
  for (const d of subtree(dir)) {
    try {
      rmdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(d);
    }
  }
  return left;
}
