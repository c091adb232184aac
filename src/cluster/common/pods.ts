// Pod and owner helpers shared by the controllers and the scheduler (k8s.io/kubernetes/pkg/api/v1/pod semantics).
import { compareIP, parseIP } from '../../net/ip.js';
import type { Obj, OwnerReference, Pod, PodCondition } from './types.js';

export const podCondition = (pod: Pod, type: string): PodCondition | undefined => pod.status?.conditions?.find((c) => c.type === type);

export const isPodReady = (pod: Pod): boolean => podCondition(pod, 'Ready')?.status === 'True';

/** Ready for at least `minReadySeconds` (measured from the Ready condition's lastTransitionTime). */
export function isPodAvailable(pod: Pod, minReadySeconds: number, nowMs: number): boolean {
  const c = podCondition(pod, 'Ready');
  if (c?.status !== 'True') return false;
  if (!minReadySeconds) return true;
  const since = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : NaN;
  return Number.isFinite(since) && since + minReadySeconds * 1000 < nowMs;
}

/** Not finished and not being deleted: what a ReplicaSet counts (controller.FilterActivePods). */
export const isPodActive = (pod: Pod): boolean =>
  pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed' && !pod.metadata?.deletionTimestamp;

export const isTerminating = (o: Obj): boolean => !!o.metadata?.deletionTimestamp;

export const controllerRef = (o: Obj): OwnerReference | undefined => o.metadata?.ownerReferences?.find((r) => r.controller === true);

/** `namespace/name` (or `name` for cluster-scoped objects), the work-queue key. */
export const keyOf = (o: Obj): string => (o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name ?? ''}` : (o.metadata?.name ?? ''));

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** The ownerReference a controller puts on what it creates. */
export function ownerRefTo(owner: Obj, apiVersion: string, kind: string): OwnerReference {
  return { apiVersion, kind, name: owner.metadata?.name ?? '', uid: owner.metadata?.uid ?? '', controller: true, blockOwnerDeletion: true };
}

export const nowRFC3339 = (ms = Date.now()): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

export const restartCount = (pod: Pod): number => (pod.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);

export const deepEqual = (a: unknown, b: unknown): boolean => stableStringify(a) === stableStringify(b);

/** JSON with object keys sorted: a canonical form for comparisons and hashing. */
export function stableStringify(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : stableStringify(x))).join(',')}]`;
  const rec = v as Record<string, unknown>;
  const keys = Object.keys(rec)
    .filter((k) => rec[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(rec[k])}`).join(',')}}`;
}

/** Orders address strings numerically (10.0.0.9 before 10.0.0.10), IPv4 before IPv6; unparsable ones last, as text. */
export function compareIPText(a: string, b: string): number {
  const pa = parseIP(a);
  const pb = parseIP(b);
  if (pa && pb) return compareIP(pa, pb);
  if (pa || pb) return pa ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
