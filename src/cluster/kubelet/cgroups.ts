// Pod and container cgroups: `<parent>/<node>/pod<uid>/<container>` under cgroup v1's cpu, cpuacct, memory and pids
// hierarchies (or the same tree in the v2 unified hierarchy). CPU quota and memory limit come from resources.limits,
// CPU weight from requests; CPU time and memory are read back for /stats/summary. Processes join their container's
// cgroup themselves (the container setup script writes its pid to each `cgroup.procs` before exec'ing the workload).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type CgroupVersion = 'v1' | 'v2' | 'none';

export interface CgroupLimits {
  /** CPU limit in millicores (quota). */
  cpuLimitMilli?: number;
  /** CPU request in millicores (shares / weight). */
  cpuRequestMilli?: number;
  memoryLimitBytes?: number;
  pidsMax?: number;
}

export interface CgroupUsage {
  /** Cumulative CPU time, ns. */
  cpuNs: bigint;
  memoryUsageBytes: number;
  workingSetBytes: number;
  rssBytes: number;
  pageFaults: number;
  majorPageFaults: number;
}

const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];

interface Layout {
  version: CgroupVersion;
  /** v1: mount point per controller (cpu and cpuacct may share one); v2: the unified root under 'unified'. */
  mounts: Partial<Record<V1Controller | 'unified', string>>;
}

/** Finds the cgroup mounts from /proc/self/mountinfo. */
export function detectCgroups(mountinfo?: string): Layout {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return { version: 'none', mounts: {} };
    }
  }
  const mounts: Layout['mounts'] = {};
  let unified: string | undefined;
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(' ');
    const right = line.slice(dash + 3).split(' ');
    const mountPoint = left[4];
    const fstype = right[0];
    if (!mountPoint) continue;
    if (fstype === 'cgroup') {
      const opts = (right[2] ?? '').split(',');
      for (const c of V1_CONTROLLERS) if (opts.includes(c) && !mounts[c]) mounts[c] = mountPoint;
    } else if (fstype === 'cgroup2' && mountPoint === '/sys/fs/cgroup') {
      unified = mountPoint;
    }
  }
  if (mounts.cpuacct && mounts.memory) return { version: 'v1', mounts };
  if (unified) {
    try {
      const ctl = readFileSync(join(unified, 'cgroup.controllers'), 'utf8');
      if (ctl.includes('cpu') && ctl.includes('memory')) return { version: 'v2', mounts: { unified } };
    } catch {
      /* not usable */
    }
  }
  return { version: 'none', mounts: {} };
}

const readText = (p: string): string | undefined => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
};

function statFile(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

function tryWrite(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch {
    /* a controller file this kernel lacks */
  }
}

/**
 * The kubelet's MilliCPUToShares: 1024 per CPU requested, and the minimum (2) without a request, so a pod without a
 * CPU request yields to every pod with one under contention, as on a real node (not the kernel default 1024).
 */
export function cpuShares(requestMilli: number | undefined): number {
  if (!requestMilli) return 2;
  return Math.min(262144, Math.max(2, Math.floor((requestMilli * 1024) / 1000)));
}

/** cgroup v2 cpu.weight from shares, the conversion the kubelet (runc) uses, integer division included. */
export const sharesToWeight = (shares: number): number => 1 + Math.floor(((shares - 2) * 9999) / 262142);

export class CgroupManager {
  readonly version: CgroupVersion;
  private readonly layout: Layout;

  constructor(
    /** Top directory shared by the lab's kubelets, e.g. `metallb-lab`. */
    readonly parent: string,
    /** This kubelet's directory beneath it (the node name). */
    readonly node: string,
    layout?: Layout,
  ) {
    this.layout = layout ?? detectCgroups();
    this.version = this.layout.version;
  }

  /** Directories of a relative cgroup path, one per hierarchy. */
  private dirs(rel: string): string[] {
    if (this.version === 'v2') return [join(this.layout.mounts.unified!, rel)];
    if (this.version === 'v1') return [...new Set(V1_CONTROLLERS.map((c) => this.layout.mounts[c]).filter((m): m is string => !!m))].map((m) => join(m, rel));
    return [];
  }

  private dir(controller: V1Controller, rel: string): string | undefined {
    if (this.version === 'v2') return join(this.layout.mounts.unified!, rel);
    const m = this.layout.mounts[controller];
    return m ? join(m, rel) : undefined;
  }

  private nodeRel(): string {
    return join(this.parent, this.node);
  }
  podRel(podId: string): string {
    return join(this.parent, this.node, `pod${podId}`);
  }
  containerRel(podId: string, container: string): string {
    return join(this.podRel(podId), container);
  }

  /** Creates the parent and node directories (v2: and enables the controllers down to them). */
  init(): void {
    if (this.version === 'none') return;
    if (this.version === 'v2') {
      const root = this.layout.mounts.unified!;
      let cur = root;
      for (const part of [this.parent, this.node]) {
        tryWrite(join(cur, 'cgroup.subtree_control'), '+cpu +memory +pids');
        cur = join(cur, part);
        mkdirSync(cur, { recursive: true });
      }
      tryWrite(join(cur, 'cgroup.subtree_control'), '+cpu +memory +pids');
      return;
    }
    for (const d of this.dirs(this.nodeRel())) mkdirSync(d, { recursive: true });
  }

  /** Creates (or updates the limits of) a pod's cgroup. */
  ensurePod(podId: string, limits: CgroupLimits): void {
    if (this.version === 'none') return;
    const rel = this.podRel(podId);
    for (const d of this.dirs(rel)) mkdirSync(d, { recursive: true });
    if (this.version === 'v2') tryWrite(join(this.layout.mounts.unified!, rel, 'cgroup.subtree_control'), '+cpu +memory +pids');
    this.applyLimits(rel, limits);
  }

  /**
   * A fresh cgroup for a container instance (a leftover empty one is recreated, so counters start at zero).
   * Returns the `cgroup.procs` files the container's first process must write its pid to.
   */
  ensureContainer(podId: string, container: string, limits: CgroupLimits): string[] {
    if (this.version === 'none') return [];
    const rel = this.containerRel(podId, container);
    for (const d of this.dirs(rel)) {
      if (existsSync(d) && this.procsIn(d).length === 0) {
        try {
          rmdirSync(d);
        } catch {
          /* keep it */
        }
      }
      mkdirSync(d, { recursive: true });
    }
    this.applyLimits(rel, limits);
    return this.dirs(rel).map((d) => join(d, 'cgroup.procs'));
  }

  private applyLimits(rel: string, l: CgroupLimits): void {
    if (this.version === 'v1') {
      const cpu = this.dir('cpu', rel);
      if (cpu) {
        tryWrite(join(cpu, 'cpu.cfs_period_us'), '100000');
        tryWrite(join(cpu, 'cpu.cfs_quota_us'), l.cpuLimitMilli ? String(Math.max(1000, Math.ceil(l.cpuLimitMilli * 100))) : '-1');
        tryWrite(join(cpu, 'cpu.shares'), String(cpuShares(l.cpuRequestMilli)));
      }
      const mem = this.dir('memory', rel);
      if (mem) tryWrite(join(mem, 'memory.limit_in_bytes'), l.memoryLimitBytes ? String(Math.floor(l.memoryLimitBytes)) : '-1');
      const pids = this.dir('pids', rel);
      if (pids) tryWrite(join(pids, 'pids.max'), l.pidsMax ? String(l.pidsMax) : 'max');
      return;
    }
    if (this.version === 'v2') {
      const d = join(this.layout.mounts.unified!, rel);
      tryWrite(join(d, 'cpu.max'), l.cpuLimitMilli ? `${Math.max(1000, Math.ceil(l.cpuLimitMilli * 100))} 100000` : 'max 100000');
      tryWrite(join(d, 'cpu.weight'), String(sharesToWeight(cpuShares(l.cpuRequestMilli))));
      tryWrite(join(d, 'memory.max'), l.memoryLimitBytes ? String(Math.floor(l.memoryLimitBytes)) : 'max');
      tryWrite(join(d, 'pids.max'), l.pidsMax ? String(l.pidsMax) : 'max');
    }
  }

  private procsIn(dir: string): number[] {
    return (readText(join(dir, 'cgroup.procs')) ?? '')
      .split('\n')
      .filter((s) => s !== '')
      .map(Number);
  }

  /** Every process in a pod's (or one container's) cgroup tree. */
  processes(podId: string, container?: string): number[] {
    const rel = container ? this.containerRel(podId, container) : this.podRel(podId);
    const first = this.dirs(rel)[0];
    if (!first || !existsSync(first)) return [];
    const out = new Set<number>();
    const walk = (d: string): void => {
      for (const p of this.procsIn(d)) out.add(p);
      let entries: string[] = [];
      try {
        entries = readdirSync(d, { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => e.name);
      } catch {
        /* gone */
      }
      for (const e of entries) walk(join(d, e));
    };
    walk(first);
    return [...out];
  }

  /** Removes a container's cgroup (it must be empty). */
  removeContainer(podId: string, container: string): void {
    for (const d of this.dirs(this.containerRel(podId, container))) rmdirQuiet(d);
  }

  /** Removes a pod's cgroups, container directories first. */
  removePod(podId: string): void {
    for (const d of this.dirs(this.podRel(podId))) {
      if (!existsSync(d)) continue;
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rmdirQuiet(join(d, e.name));
      rmdirQuiet(d);
    }
  }

  /** Pod ids with a cgroup under this node (leftovers after a restart). */
  listPods(): string[] {
    const first = this.dirs(this.nodeRel())[0];
    if (!first || !existsSync(first)) return [];
    return readdirSync(first)
      .filter((n) => n.startsWith('pod'))
      .map((n) => n.slice(3));
  }

  /** Removes the node directory and, when no other kubelet uses it, the parent. */
  removeNode(): void {
    for (const id of this.listPods()) this.removePod(id);
    for (const d of this.dirs(this.nodeRel())) rmdirQuiet(d);
    for (const d of this.dirs(this.parent)) rmdirQuiet(d);
  }

  usage(podId?: string, container?: string): CgroupUsage | undefined {
    const rel = podId === undefined ? this.nodeRel() : container ? this.containerRel(podId, container) : this.podRel(podId);
    if (this.version === 'v1') {
      const acct = this.dir('cpuacct', rel);
      const mem = this.dir('memory', rel);
      const cpuText = acct ? readText(join(acct, 'cpuacct.usage')) : undefined;
      if (cpuText === undefined) return undefined;
      const usage = Number(readText(join(mem!, 'memory.usage_in_bytes')) ?? 0);
      const st = statFile(readText(join(mem!, 'memory.stat')));
      const inactive = st.get('total_inactive_file') ?? 0;
      return {
        cpuNs: BigInt(cpuText.trim() || '0'),
        memoryUsageBytes: usage,
        workingSetBytes: Math.max(0, usage - inactive),
        rssBytes: st.get('total_rss') ?? 0,
        pageFaults: st.get('total_pgfault') ?? 0,
        majorPageFaults: st.get('total_pgmajfault') ?? 0,
      };
    }
    if (this.version === 'v2') {
      const d = join(this.layout.mounts.unified!, rel);
      const cpu = statFile(readText(join(d, 'cpu.stat')));
      if (!cpu.has('usage_usec')) return undefined;
      const usage = Number(readText(join(d, 'memory.current')) ?? 0);
      const st = statFile(readText(join(d, 'memory.stat')));
      return {
        cpuNs: BigInt(cpu.get('usage_usec') ?? 0) * 1000n,
        memoryUsageBytes: usage,
        workingSetBytes: Math.max(0, usage - (st.get('inactive_file') ?? 0)),
        rssBytes: st.get('anon') ?? 0,
        pageFaults: st.get('pgfault') ?? 0,
        majorPageFaults: st.get('pgmajfault') ?? 0,
      };
    }
    return undefined;
  }
}

function rmdirQuiet(d: string): void {
  try {
    rmdirSync(d);
  } catch {
    /* missing, or still in use by another kubelet */
  }
}

/**
 * The cgroup directory the lab placed this kubelet's parent directory in: the lab supervisor runs each component in
 * `<lab cgroup>/<component>` (`metallb-lab/kubelet-node1`, `metallb-lab-kl/kubelet-node1`), and the kubelet's pods
 * belong beside it so that `lab down` finds them. Undefined when the kubelet is not in such a cgroup.
 */
export function labCgroupOfSelf(procSelfCgroup?: string): string | undefined {
  let text = procSelfCgroup;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/cgroup', 'utf8');
    } catch {
      return undefined;
    }
  }
  for (const line of text.split('\n')) {
    const [, controllers, path] = line.split(':', 3) as [string, string | undefined, string | undefined];
    if (path === undefined || controllers === undefined) continue;
    const list = controllers.split(',');
    if (!(controllers === '' || list.includes('pids') || list.includes('cpuacct') || list.includes('memory'))) continue;
    const parts = path.split('/').filter(Boolean);
    if (parts.length >= 2 && /^metallb-lab(-[a-z0-9]+)?$/.test(parts[parts.length - 2]!)) return parts.slice(0, -1).join('/');
  }
  return undefined;
}
