// The kubelet's Summary API (`/stats/summary`, stats/v1alpha1) as metrics-server reads it: per node and per container
// the cumulative CPU time (usageCoreNanoSeconds) and the working set, with their start times. The measurement time is
// the moment the answer arrived: the kubelet reads the cgroups while answering, and the API's timestamps have only
// second precision, too coarse for a rate over a 15 s window.
import type { NodePoint, PodPoint } from './storage.js';

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {});

function counter(v: unknown): bigint | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return BigInt(Math.round(v));
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
  return undefined;
}

const time = (v: unknown): number | undefined => {
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
};

export class SummaryError extends Error {
  override name = 'SummaryError';
}

/** The node's and its pods' points from one summary; containers without CPU or memory figures are left out. */
export function decodeSummary(body: unknown, node: string, receivedAt: number): { node?: NodePoint; pods: PodPoint[] } {
  const doc = rec(body);
  if (!('node' in doc) && !('pods' in doc)) throw new SummaryError(`the summary of node ${node} has neither "node" nor "pods"`);
  const n = rec(doc.node);
  const cpu = counter(rec(n.cpu).usageCoreNanoSeconds);
  const mem = counter(rec(n.memory).workingSetBytes);
  const start = time(n.startTime);
  const nodePoint = cpu !== undefined && mem !== undefined && start !== undefined ? { name: node, startTime: start, timestamp: receivedAt, cpuNs: cpu, memoryBytes: mem } : undefined;
  const pods: PodPoint[] = [];
  for (const p of Array.isArray(doc.pods) ? doc.pods : []) {
    const ref = rec(rec(p).podRef);
    if (typeof ref.name !== 'string' || typeof ref.namespace !== 'string') continue;
    const containers: PodPoint['containers'] = [];
    for (const c of Array.isArray(rec(p).containers) ? (rec(p).containers as unknown[]) : []) {
      const cr = rec(c);
      const ccpu = counter(rec(cr.cpu).usageCoreNanoSeconds);
      const cmem = counter(rec(cr.memory).workingSetBytes);
      const cstart = time(cr.startTime);
      if (typeof cr.name !== 'string' || ccpu === undefined || cmem === undefined || cstart === undefined) continue;
      containers.push({ name: cr.name, startTime: cstart, timestamp: receivedAt, cpuNs: ccpu, memoryBytes: cmem });
    }
    pods.push({ namespace: ref.namespace, name: ref.name, containers });
  }
  return { ...(nodePoint ? { node: nodePoint } : {}), pods };
}
