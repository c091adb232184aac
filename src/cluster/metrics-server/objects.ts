// metrics.k8s.io/v1beta1 objects, lists and tables as metrics-server serves them: PodMetrics / NodeMetrics with
// `timestamp`, `window` (a Go duration) and usage quantities in metrics-server's units (CPU in nanocores, `n`; memory
// in bytes, BinarySI: `Ki`, `Mi`…), and the Table kubectl get shows (Name, cpu, memory, Window).
import { formatBinarySI, formatDecimalSI, intValue, nanoValue, parseQuantity } from '../common/quantity.js';
import type { ContainerUsage, Usage } from './storage.js';

type Obj = Record<string, unknown>;

export const GROUP = 'metrics.k8s.io';
export const VERSION = 'v1beta1';
export const API_VERSION = `${GROUP}/${VERSION}`;

const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/** Go's time.Duration.String(): `15.003s`, `1m0.5s`, `250ms`. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(Math.round(ns));
  let out: string;
  if (u < 1e9) {
    const [unit, div] = u < 1e3 ? ['ns', 1] : u < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    out = `${trimFraction(u / div)}${unit}`;
  } else {
    const h = Math.floor(u / 3.6e12);
    u -= h * 3.6e12;
    const m = Math.floor(u / 6e10);
    u -= m * 6e10;
    const s = trimFraction(u / 1e9);
    out = h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
  }
  return neg ? `-${out}` : out;
}

function trimFraction(v: number): string {
  return v.toFixed(9).replace(/\.?0+$/, '');
}

export const cpuQuantity = (nanoCores: bigint): string => formatDecimalSI(nanoCores, -9);
export const memoryQuantity = (bytes: bigint): string => formatBinarySI(bytes);

export interface ObjectMetaSource {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}

export function nodeMetrics(node: ObjectMetaSource, u: Usage, now: number): Obj {
  return {
    kind: 'NodeMetrics',
    apiVersion: API_VERSION,
    metadata: { name: node.name, creationTimestamp: rfc3339(now), ...(node.labels && Object.keys(node.labels).length ? { labels: node.labels } : {}) },
    timestamp: rfc3339(u.timestamp),
    window: goDuration(u.windowMs * 1e6),
    usage: { cpu: cpuQuantity(u.cpuNanoCores), memory: memoryQuantity(u.memoryBytes) },
  };
}

export function podMetrics(pod: ObjectMetaSource, m: { timestamp: number; windowMs: number; containers: ContainerUsage[] }, now: number): Obj {
  return {
    kind: 'PodMetrics',
    apiVersion: API_VERSION,
    metadata: {
      name: pod.name,
      namespace: pod.namespace,
      creationTimestamp: rfc3339(now),
      ...(pod.labels && Object.keys(pod.labels).length ? { labels: pod.labels } : {}),
    },
    timestamp: rfc3339(m.timestamp),
    window: goDuration(m.windowMs * 1e6),
    containers: m.containers.map((c) => ({ name: c.name, usage: { cpu: cpuQuantity(c.cpuNanoCores), memory: memoryQuantity(c.memoryBytes) } })),
  };
}

export const list = (kind: 'NodeMetricsList' | 'PodMetricsList', items: Obj[]): Obj => ({ kind, apiVersion: API_VERSION, metadata: {}, items });

/** The Table of `kubectl get podmetrics|nodemetrics`: usage summed over containers, resource names sorted. */
export function metricsTable(items: Obj[], includeObject: string): Obj {
  const rows = items.map((o) => {
    const usage: Record<string, bigint> = {};
    const add = (u: unknown): void => {
      for (const [k, v] of Object.entries((u ?? {}) as Record<string, string>)) {
        const q = parseQuantity(v);
        usage[k] = (usage[k] ?? 0n) + (k === 'cpu' ? nanoValue(q) : intValue(q));
      }
    };
    if (Array.isArray(o.containers)) for (const c of o.containers as Obj[]) add(c.usage);
    else add(o.usage);
    return { o, usage };
  });
  const names = rows.length ? Object.keys(rows[0]!.usage).sort() : [];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: {},
    columnDefinitions: [
      { name: 'Name', type: 'string', format: 'name', description: 'Name of the resource', priority: 0 },
      ...names.map((n) => ({ name: n, type: 'string', format: 'quantity', description: '', priority: 0 })),
      { name: 'Window', type: 'string', format: 'duration', description: '', priority: 0 },
    ],
    rows: rows.map(({ o, usage }) => ({
      cells: [(o.metadata as Obj).name, ...names.map((n) => (n === 'cpu' ? cpuQuantity(usage[n] ?? 0n) : memoryQuantity(usage[n] ?? 0n))), o.window],
      ...(includeObject === 'None' ? {} : { object: includeObject === 'Object' ? o : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } }),
    })),
  };
}
