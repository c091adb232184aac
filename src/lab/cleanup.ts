// `lab down`: removes everything a lab made, found from what is on the host (name prefixes, the lab's cgroup, an
// environment marker), so it works after a crash or a `kill -9` of every lab process, not only from the state file.
import { existsSync, lstatSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { labCgroupDirs, pidsIn, removeCgroupTree } from './cgroup.js';
import { isAlive, readState, readSupervisorPid, resolveStateDir } from './state.js';
import { run, tryRun } from './run.js';
import { makePlan } from './plan.js';

/** Every process the supervisor starts carries `METALLB_LAB=<lab name>` in its environment. */
export const LAB_ENV = 'METALLB_LAB';

export interface CleanupReport {
  processes: number;
  netns: string[];
  links: string[];
  nftTables: string[];
  cgroups: string[];
  mounts: string[];
  files: string[];
  /** What could not be removed, in words. */
  problems: string[];
}

export interface LabIdentity {
  name: string;
  prefix: string;
  bridge: string;
  cgroup: string;
  stateDirs: string[];
}

/** What identifies a lab on the host, from its name and (when readable) its state file. */
export function labIdentity(name: string, stateDirOverride?: string): LabIdentity {
  const base = makePlan({ name, nodes: 1 });
  const dirs = new Set<string>([base.defaultStateDir]);
  const resolved = stateDirOverride ?? resolveStateDir(base.defaultStateDir);
  dirs.add(resolved);
  const st = readState(resolved);
  if (st) dirs.add(st.plan.stateDir);
  return { name, prefix: base.prefix, bridge: base.bridge, cgroup: base.cgroup, stateDirs: [...dirs] };
}

export function labNetns(prefix: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

async function netnsPids(netns: string): Promise<number[]> {
  const out = await tryRun('ip', ['netns', 'pids', netns]);
  return (out ?? '').split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

function markedPids(name: string): number[] {
  const marker = Buffer.from(`${LAB_ENV}=${name}\0`);
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`);
      if (env.subarray(0, marker.length).equals(marker) || env.includes(Buffer.concat([Buffer.from([0]), marker]))) out.push(Number(entry));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return out;
}

/** Every live process that belongs to the lab (its namespaces, its cgroup, its environment marker). */
export async function labPids(id: LabIdentity): Promise<number[]> {
  const pids = new Set<number>();
  for (const ns of labNetns(id.prefix)) for (const p of await netnsPids(ns)) pids.add(p);
  for (const dir of labCgroupDirs(id.cgroup)) for (const p of pidsIn(dir)) pids.add(p);
  for (const p of markedPids(id.name)) pids.add(p);
  for (const dir of id.stateDirs) {
    const sup = readSupervisorPid(dir);
    if (sup && isAlive(sup) && isSupervisor(sup, id.name)) pids.add(sup);
  }
  pids.delete(process.pid);
  pids.delete(process.ppid);
  return [...pids].filter(isAlive);
}

/** A recycled pid in a stale pid file must not be killed: the supervisor's command line names the lab. */
function isSupervisor(pid: number, name: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('supervise') && argv.includes(name);
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Kills the supervisor first, so that it restarts nothing while the rest is killed. Nothing is stopped gracefully:
 * everything the lab made goes away, so a graceful stop would only cost time (pods' grace periods), and `lab down`
 * after a crash takes the same path as any other.
 */
function killSupervisor(id: LabIdentity): void {
  for (const dir of id.stateDirs) {
    const pid = readSupervisorPid(dir);
    if (!pid || !isAlive(pid) || !isSupervisor(pid, id.name)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** SIGKILLs every lab process until none is left (new ones can appear while a kubelet is dying). */
async function killAll(id: LabIdentity, report: CleanupReport): Promise<void> {
  const killed = new Set<number>();
  for (let round = 0; round < 40; round++) {
    const pids = await labPids(id);
    if (pids.length === 0) break;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
        killed.add(p);
      } catch {
        /* already gone */
      }
    }
    await sleep(round < 5 ? 20 : 100);
  }
  const left = await labPids(id);
  if (left.length > 0) report.problems.push(`processes still alive: ${left.join(', ')}`);
  report.processes = killed.size;
}

/** Mount points at or under any of `dirs`, deepest first (mountinfo escapes spaces as \040). */
function mountsUnder(dirs: readonly string[]): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => dirs.some((d) => p === d || p.startsWith(`${d}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

interface IpLink {
  ifname: string;
  link_kind?: string;
  linkinfo?: { info_kind?: string };
}

async function labLinks(prefix: string): Promise<string[]> {
  const out = await tryRun('ip', ['-j', '-d', 'link', 'show']);
  if (!out) return [];
  const links = JSON.parse(out) as IpLink[];
  const names = links.map((l) => ({ name: l.ifname, bridge: l.linkinfo?.info_kind === 'bridge' })).filter((l) => l.name.startsWith(prefix));
  // Ports before the bridge they are attached to.
  return [...names.filter((l) => !l.bridge), ...names.filter((l) => l.bridge)].map((l) => l.name);
}

interface NftTables {
  nftables?: Array<{ table?: { family: string; name: string } }>;
}

async function labNftTables(prefix: string, cgroup: string): Promise<Array<{ family: string; name: string }>> {
  const out = await tryRun('nft', ['-j', 'list', 'tables']);
  if (!out) return [];
  const parsed = JSON.parse(out) as NftTables;
  return (parsed.nftables ?? [])
    .map((e) => e.table)
    .filter((t): t is { family: string; name: string } => t !== undefined && (t.name.startsWith(prefix) || t.name === cgroup));
}

/** Removes everything of the lab; never throws for a part that is already gone. */
export async function cleanupLab(id: LabIdentity): Promise<CleanupReport> {
  const report: CleanupReport = { processes: 0, netns: [], links: [], nftTables: [], cgroups: [], mounts: [], files: [], problems: [] };
  killSupervisor(id);
  await killAll(id, report);

  for (const m of mountsUnder(id.stateDirs)) {
    if (await tryRun('umount', ['-l', m])) report.mounts.push(m);
    else if (mountsUnder([m]).includes(m)) report.problems.push(`cannot unmount ${m}`);
  }

  for (const ns of labNetns(id.prefix)) {
    try {
      await run('ip', ['netns', 'del', ns]);
      report.netns.push(ns);
    } catch (err) {
      report.problems.push(`netns ${ns}: ${(err as Error).message}`);
    }
  }
  // A namespace file left without its mount (the host rebooted /run half-way, or `ip netns add` was killed).
  for (const ns of labNetns(id.prefix)) rmSync(`/run/netns/${ns}`, { force: true });

  for (const link of await labLinks(id.prefix)) {
    if ((await tryRun('ip', ['link', 'del', link])) !== undefined) report.links.push(link);
  }
  const linksLeft = await labLinks(id.prefix);
  if (linksLeft.length > 0) report.problems.push(`links left: ${linksLeft.join(', ')}`);

  for (const t of await labNftTables(id.prefix, id.cgroup)) {
    if ((await tryRun('nft', ['delete', 'table', t.family, t.name])) !== undefined) report.nftTables.push(`${t.family} ${t.name}`);
    else report.problems.push(`cannot delete nft table ${t.family} ${t.name}`);
  }

  for (const dir of labCgroupDirs(id.cgroup)) {
    let left = removeCgroupTree(dir);
    // A killed process leaves its cgroup only once it has been reaped.
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await sleep(100);
      left = removeCgroupTree(dir);
    }
    if (left.length > 0) report.problems.push(`cgroup dirs left: ${left.join(', ')}`);
    else report.cgroups.push(dir);
  }

  report.files.push(...removeKubeletHostDirs(id.stateDirs));

  for (const dir of id.stateDirs) {
    if (!pathPresent(dir)) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
      report.files.push(dir);
    } catch (err) {
      report.problems.push(`cannot remove ${dir}: ${(err as Error).message}`);
    }
  }
  return report;
}

/**
 * Top-level directories the kubelets created on the host as mount points (`mountPath: /data` with no /data), recorded
 * in each pod's sandbox.json. They are empty once the pods are gone; a non-empty one is not ours to remove.
 */
function removeKubeletHostDirs(stateDirs: readonly string[]): string[] {
  const removed: string[] = [];
  for (const dir of stateDirs) {
    let nodes: string[] = [];
    try {
      nodes = readdirSync(join(dir, 'nodes'));
    } catch {
      continue;
    }
    for (const node of nodes) {
      let pods: string[] = [];
      try {
        pods = readdirSync(join(dir, 'nodes', node, 'pods'));
      } catch {
        continue;
      }
      for (const uid of pods) {
        let rec: { hostDirs?: unknown };
        try {
          rec = JSON.parse(readFileSync(join(dir, 'nodes', node, 'pods', uid, 'sandbox.json'), 'utf8')) as { hostDirs?: unknown };
        } catch {
          continue;
        }
        for (const d of Array.isArray(rec.hostDirs) ? rec.hostDirs : []) {
          if (typeof d !== 'string' || !d.startsWith('/') || d === '/') continue;
          try {
            rmdirSync(d);
            removed.push(d);
          } catch {
            /* gone, or not empty */
          }
        }
      }
    }
  }
  return removed;
}

function pathPresent(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A symlink, a file, or a directory with something in it (an empty directory given as --state-dir is fine). */
function nonEmpty(path: string): boolean {
  try {
    const st = lstatSync(path);
    return !st.isDirectory() || readdirSync(path).length > 0;
  } catch {
    return false;
  }
}

/** Whether anything of the lab is on the host (for `lab up`'s refusal and the tests). */
export async function leftovers(id: LabIdentity): Promise<string[]> {
  const found: string[] = [];
  const ns = labNetns(id.prefix);
  if (ns.length) found.push(`network namespaces ${ns.join(', ')}`);
  const links = await labLinks(id.prefix);
  if (links.length) found.push(`links ${links.join(', ')}`);
  const tables = await labNftTables(id.prefix, id.cgroup);
  if (tables.length) found.push(`nft tables ${tables.map((t) => `${t.family} ${t.name}`).join(', ')}`);
  const cg = labCgroupDirs(id.cgroup);
  if (cg.length) found.push(`cgroup dirs ${cg.join(', ')}`);
  const pids = await labPids(id);
  if (pids.length) found.push(`processes ${pids.join(', ')}`);
  const mounts = mountsUnder(id.stateDirs);
  if (mounts.length) found.push(`mounts ${mounts.join(', ')}`);
  for (const d of id.stateDirs) if (nonEmpty(d)) found.push(`state dir ${d}`);
  return found;
}
