// The Summary API (`/stats/summary`, stats/v1alpha1) from the pod and container cgroups: cumulative CPU time and a
// rate (usageNanoCores) over the sampling interval, memory usage and working set, pod network counters from the node
// end of each pod's veth. "Node" figures are those of this node's pods (the lab's nodes share one machine).
import { readFileSync } from 'node:fs';
import type { CgroupManager, CgroupUsage } from './cgroups.js';

export interface StatsPod {
  name: string;
  namespace: string;
  uid: string;
  startTime: string;
  veth?: string;
  containers: { name: string; startTime: string }[];
}

interface Sample {
  cpuNs: bigint;
  atNs: bigint;
}

interface CpuStats {
  time: string;
  usageNanoCores: number;
  usageCoreNanoSeconds: number;
}

const hrNow = (): bigint => process.hrtime.bigint();
const nowIso = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface NetDev {
  rxBytes: number;
  rxErrors: number;
  txBytes: number;
  txErrors: number;
}

/** Interface counters of the kubelet's network namespace (/proc/self/net/dev). */
export function readNetDev(text?: string): Map<string, NetDev> {
  const out = new Map<string, NetDev>();
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/self/net/dev', 'utf8');
    } catch {
      return out;
    }
  }
  for (const line of t.split('\n').slice(2)) {
    const [name, rest] = line.split(':');
    if (!name || rest === undefined) continue;
    const f = rest.trim().split(/\s+/).map(Number);
    out.set(name.trim(), { rxBytes: f[0] ?? 0, rxErrors: f[2] ?? 0, txBytes: f[8] ?? 0, txErrors: f[10] ?? 0 });
  }
  return out;
}

export class StatsProvider {
  /** Two latest periodic samples per cgroup key. */
  private readonly samples = new Map<string, Sample[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cgroups: CgroupManager,
    private readonly nodeName: string,
    private readonly memoryCapacity: number,
    private readonly startTime: string,
    private readonly pods: () => StatsPod[],
  ) {}

  start(intervalMs: number): void {
    this.sampleAll();
    this.timer = setInterval(() => this.sampleAll(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private keys(): [string, string | undefined, string | undefined][] {
    const out: [string, string | undefined, string | undefined][] = [['node', undefined, undefined]];
    for (const p of this.pods()) {
      out.push([p.uid, p.uid, undefined]);
      for (const c of p.containers) out.push([`${p.uid}/${c.name}`, p.uid, c.name]);
    }
    return out;
  }

  private sampleAll(): void {
    const live = new Set<string>();
    for (const [key, pod, container] of this.keys()) {
      live.add(key);
      const u = this.cgroups.usage(pod, container);
      if (!u) continue;
      const list = this.samples.get(key) ?? [];
      list.push({ cpuNs: u.cpuNs, atNs: hrNow() });
      while (list.length > 2) list.shift();
      this.samples.set(key, list);
    }
    for (const k of [...this.samples.keys()]) if (!live.has(k)) this.samples.delete(k);
  }

  private cpu(key: string, u: CgroupUsage): CpuStats {
    const now = hrNow();
    const list = this.samples.get(key) ?? [];
    const last = list[list.length - 1];
    let rate = 0;
    // The rate since the last periodic sample, or between the last two when that one is too recent.
    const base = last && now - last.atNs >= 1_000_000_000n ? last : list.length >= 2 ? list[0] : undefined;
    if (base) {
      const end = base === last ? { cpuNs: u.cpuNs, atNs: now } : list[1]!;
      const dt = Number(end.atNs - base.atNs);
      const dc = Number(end.cpuNs - base.cpuNs);
      if (dt > 0 && dc >= 0) rate = Math.round((dc / dt) * 1e9);
    }
    return { time: nowIso(), usageNanoCores: rate, usageCoreNanoSeconds: Number(u.cpuNs) };
  }

  private memory(u: CgroupUsage, capacity?: number): Record<string, unknown> {
    return {
      time: nowIso(),
      ...(capacity !== undefined ? { availableBytes: Math.max(0, capacity - u.workingSetBytes) } : {}),
      usageBytes: u.memoryUsageBytes,
      workingSetBytes: u.workingSetBytes,
      rssBytes: u.rssBytes,
      pageFaults: u.pageFaults,
      majorPageFaults: u.majorPageFaults,
    };
  }

  summary(): Record<string, unknown> {
    const net = readNetDev();
    const nodeUsage = this.cgroups.usage();
    const nodeIfaces = [...net.entries()].filter(([n]) => n !== 'lo' && !n.startsWith('veth'));
    const node: Record<string, unknown> = {
      nodeName: this.nodeName,
      systemContainers: [],
      startTime: this.startTime,
      ...(nodeUsage ? { cpu: this.cpu('node', nodeUsage), memory: this.memory(nodeUsage, this.memoryCapacity) } : {}),
      network: {
        time: nowIso(),
        ...(nodeIfaces[0] ? { name: nodeIfaces[0][0], ...nodeIfaces[0][1] } : {}),
        interfaces: nodeIfaces.map(([name, s]) => ({ name, ...s })),
      },
      rlimit: { time: nowIso(), maxpid: Number(readOr('/proc/sys/kernel/pid_max', '0')), curproc: this.pods().reduce((n, p) => n + this.cgroups.processes(p.uid).length, 0) },
    };
    const pods = this.pods().map((p) => {
      const pu = this.cgroups.usage(p.uid);
      const containers = p.containers.map((c) => {
        const cu = this.cgroups.usage(p.uid, c.name);
        return { name: c.name, startTime: c.startTime, ...(cu ? { cpu: this.cpu(`${p.uid}/${c.name}`, cu), memory: this.memory(cu) } : {}) };
      });
      const veth = p.veth ? net.get(p.veth) : undefined;
      return {
        podRef: { name: p.name, namespace: p.namespace, uid: p.uid },
        startTime: p.startTime,
        containers,
        ...(pu ? { cpu: this.cpu(p.uid, pu), memory: this.memory(pu) } : {}),
        // The node end of the veth sees the pod's traffic mirrored: what the pod received, the node sent.
        ...(veth
          ? {
              network: {
                time: nowIso(),
                name: 'eth0',
                rxBytes: veth.txBytes,
                rxErrors: veth.txErrors,
                txBytes: veth.rxBytes,
                txErrors: veth.rxErrors,
                interfaces: [{ name: 'eth0', rxBytes: veth.txBytes, rxErrors: veth.txErrors, txBytes: veth.rxBytes, txErrors: veth.rxErrors }],
              },
            }
          : {}),
        process_stats: { process_count: this.cgroups.processes(p.uid).length },
      };
    });
    return { node, pods };
  }
}

function readOr(p: string, d: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return d;
  }
}
