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

  /**
   * `/metrics/resource` (what metrics-server 0.6+ scrapes): cumulative CPU seconds and working sets of the node, pods
   * and containers in the Prometheus text format, with the kubelet's metric names and sample timestamps.
   */
  resourceMetrics(): string {
    const ms = Date.now();
    const L: string[] = [];
    const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const labels = (o: Record<string, string>): string => `{${Object.entries(o).map(([k, v]) => `${k}="${esc(v)}"`).join(',')}}`;
    const family = (name: string, type: string, help: string, samples: [Record<string, string>, number][]): void => {
      L.push(`# HELP ${name} [STABLE] ${help}`, `# TYPE ${name} ${type}`);
      for (const [l, v] of samples) L.push(`${name}${Object.keys(l).length ? labels(l) : ''} ${v} ${ms}`);
    };
    const pods = this.pods();
    const cpuC: [Record<string, string>, number][] = [];
    const memC: [Record<string, string>, number][] = [];
    const startC: [Record<string, string>, number][] = [];
    const cpuP: [Record<string, string>, number][] = [];
    const memP: [Record<string, string>, number][] = [];
    for (const p of pods) {
      const pu = this.cgroups.usage(p.uid);
      if (pu) {
        cpuP.push([{ namespace: p.namespace, pod: p.name }, Number(pu.cpuNs) / 1e9]);
        memP.push([{ namespace: p.namespace, pod: p.name }, pu.workingSetBytes]);
      }
      for (const c of p.containers) {
        const cu = this.cgroups.usage(p.uid, c.name);
        const l = { container: c.name, namespace: p.namespace, pod: p.name };
        if (cu) {
          cpuC.push([l, Number(cu.cpuNs) / 1e9]);
          memC.push([l, cu.workingSetBytes]);
        }
        startC.push([l, Date.parse(c.startTime) / 1000]);
      }
    }
    family('container_cpu_usage_seconds_total', 'counter', 'Cumulative cpu time consumed by the container in core-seconds', cpuC);
    family('container_memory_working_set_bytes', 'gauge', 'Current working set of the container in bytes', memC);
    family('container_start_time_seconds', 'gauge', 'Start time of the container since unix epoch in seconds', startC);
    const nu = this.cgroups.usage();
    family('node_cpu_usage_seconds_total', 'counter', 'Cumulative cpu time consumed by the node in core-seconds', nu ? [[{}, Number(nu.cpuNs) / 1e9]] : []);
    family('node_memory_working_set_bytes', 'gauge', 'Current working set of the node in bytes', nu ? [[{}, nu.workingSetBytes]] : []);
    family('pod_cpu_usage_seconds_total', 'counter', 'Cumulative cpu time consumed by the pod in core-seconds', cpuP);
    family('pod_memory_working_set_bytes', 'gauge', 'Current working set of the pod in bytes', memP);
    L.push('# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise', '# TYPE resource_scrape_error gauge', `resource_scrape_error ${nu ? 0 : 1}`);
    return `${L.join('\n')}\n`;
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
