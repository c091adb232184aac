// What metrics-server keeps between scrapes (its pkg/storage): the last two points of every node and container,
// cumulative CPU time and working-set memory, and the usage they give: CPU as the rate over the window between the two
// points, memory as the latest working set. A container younger than one resolution (but at least 10 s old) gets a
// synthetic earlier point at its start with zero CPU, so new pods have metrics after one scrape. Pure: no I/O.

export interface MetricsPoint {
  /** Start of the node / container (ms since the epoch): cumulative CPU counts from there. */
  startTime: number;
  /** When the values were measured (ms since the epoch). */
  timestamp: number;
  /** Cumulative CPU time, ns. */
  cpuNs: bigint;
  /** Working set, bytes. */
  memoryBytes: bigint;
}

export interface NodePoint extends MetricsPoint {
  name: string;
}

export interface PodPoint {
  namespace: string;
  name: string;
  containers: (MetricsPoint & { name: string })[];
}

export interface Usage {
  /** ns of CPU per s (nanocores) */
  cpuNanoCores: bigint;
  memoryBytes: bigint;
  /** the later point's time and the window between the two points, ms */
  timestamp: number;
  windowMs: number;
}

export interface ContainerUsage extends Usage {
  name: string;
}

/** Containers this fresh (after at least this long) get a synthetic start point. */
export const FRESH_CONTAINER_MIN_MS = 10_000;

function usage(last: MetricsPoint, prev: MetricsPoint): Usage | undefined {
  if (last.cpuNs < prev.cpuNs) return undefined; // "unexpected decrease in cumulative CPU usage value"
  const windowMs = last.timestamp - prev.timestamp;
  if (windowMs <= 0) return undefined;
  const cpuNanoCores = ((last.cpuNs - prev.cpuNs) * 1000n) / BigInt(Math.round(windowMs));
  return { cpuNanoCores, memoryBytes: last.memoryBytes, timestamp: last.timestamp, windowMs };
}

const podKey = (ns: string, name: string): string => `${ns}/${name}`;

export class MetricsStorage {
  private lastNodes = new Map<string, NodePoint>();
  private prevNodes = new Map<string, NodePoint>();
  private lastPods = new Map<string, Map<string, MetricsPoint>>();
  private prevPods = new Map<string, Map<string, MetricsPoint>>();
  private stored = false;

  constructor(private readonly resolutionMs: number) {}

  /** At least one batch was stored (readiness). */
  get ready(): boolean {
    return this.stored;
  }

  /** Stores a scrape of every node; nodes and pods missing from it are forgotten. */
  store(nodes: readonly NodePoint[], pods: readonly PodPoint[]): void {
    const lastNodes = new Map<string, NodePoint>();
    const prevNodes = new Map<string, NodePoint>();
    for (const n of nodes) {
      if (lastNodes.has(n.name)) continue;
      lastNodes.set(n.name, n);
      const before = this.lastNodes.get(n.name);
      // keep the stored point only when the node has not restarted since
      if (before && n.startTime < before.timestamp) {
        if (n.timestamp > before.timestamp) prevNodes.set(n.name, before);
        else {
          const p = this.prevNodes.get(n.name);
          if (p && p.timestamp < n.timestamp) prevNodes.set(n.name, p);
        }
      }
    }
    const lastPods = new Map<string, Map<string, MetricsPoint>>();
    const prevPods = new Map<string, Map<string, MetricsPoint>>();
    for (const pod of pods) {
      const key = podKey(pod.namespace, pod.name);
      if (lastPods.has(key)) continue;
      const last = new Map<string, MetricsPoint>();
      const prev = new Map<string, MetricsPoint>();
      for (const c of pod.containers) {
        if (last.has(c.name)) continue;
        last.set(c.name, c);
        const age = c.timestamp - c.startTime;
        if (c.startTime < c.timestamp && age < this.resolutionMs && age >= FRESH_CONTAINER_MIN_MS) {
          prev.set(c.name, { ...c, timestamp: c.startTime, cpuNs: 0n });
          continue;
        }
        const before = this.lastPods.get(key)?.get(c.name);
        if (before && c.startTime < before.timestamp) {
          if (c.timestamp > before.timestamp) prev.set(c.name, before);
          else {
            const p = this.prevPods.get(key)?.get(c.name);
            if (p && p.timestamp < c.timestamp) prev.set(c.name, p);
          }
        }
      }
      lastPods.set(key, last);
      if (prev.size) prevPods.set(key, prev);
    }
    this.lastNodes = lastNodes;
    this.prevNodes = prevNodes;
    this.lastPods = lastPods;
    this.prevPods = prevPods;
    this.stored = true;
  }

  node(name: string): Usage | undefined {
    const last = this.lastNodes.get(name);
    const prev = this.prevNodes.get(name);
    return last && prev ? usage(last, prev) : undefined;
  }

  /** Usage of each container with two points; the pod's time is its containers' earliest. Undefined: no metrics. */
  pod(namespace: string, name: string): { timestamp: number; windowMs: number; containers: ContainerUsage[] } | undefined {
    const key = podKey(namespace, name);
    const last = this.lastPods.get(key);
    const prev = this.prevPods.get(key);
    if (!last || !prev) return undefined;
    const containers: ContainerUsage[] = [];
    let earliest: Usage | undefined;
    for (const [cname, l] of last) {
      const p = prev.get(cname);
      if (!p) continue;
      const u = usage(l, p);
      if (!u) continue;
      containers.push({ name: cname, ...u });
      if (!earliest || u.timestamp < earliest.timestamp) earliest = u;
    }
    if (!earliest) return undefined;
    return { timestamp: earliest.timestamp, windowMs: earliest.windowMs, containers };
  }
}
