// What a DELETE does to an object, decided as kube-apiserver's generic registry decides it (rest.BeforeDelete,
// Store.Delete, deletionFinalizersForGarbageCollection): graceful deletion of pods bound to a node (deletionTimestamp
// in the future, deletionGracePeriodSeconds; the kubelet finishes with gracePeriodSeconds=0), the garbage
// collector's `orphan` / `foregroundDeletion` finalizers from propagationPolicy / orphanDependents, and objects
// held by finalizers (deletionTimestamp now, grace 0). Pure: the caller stores or removes.
import { nowRFC3339, obj, type Obj } from './util.js';

export const FINALIZER_ORPHAN = 'orphan';
export const FINALIZER_FOREGROUND = 'foregroundDeletion';

export interface DeleteRequest {
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
  orphanDependents?: boolean;
}

export type DeleteOutcome =
  /** remove the object now */
  | { kind: 'delete' }
  /** store this object (deletionTimestamp, finalizers) and keep it */
  | { kind: 'update'; object: Obj }
  /** already being deleted gracefully: nothing changes */
  | { kind: 'pending' };

const metaOf = (o: Obj): Obj => obj(o.metadata);
const finalizersOf = (o: Obj): string[] => {
  const f = metaOf(o).finalizers;
  return Array.isArray(f) ? f.filter((x): x is string => typeof x === 'string') : [];
};

/** The object's finalizers with `orphan` / `foregroundDeletion` set as the request and the object say. */
export function gcFinalizers(existing: readonly string[], r: DeleteRequest): string[] {
  let orphan: boolean;
  let foreground: boolean;
  if (r.orphanDependents !== undefined) {
    orphan = r.orphanDependents;
    foreground = false;
  } else if (r.propagationPolicy !== undefined) {
    orphan = r.propagationPolicy === 'Orphan';
    foreground = r.propagationPolicy === 'Foreground';
  } else {
    // no explicit policy: a finalizer already on the object decides (the default for every type served is Background)
    orphan = existing.includes(FINALIZER_ORPHAN);
    foreground = !orphan && existing.includes(FINALIZER_FOREGROUND);
  }
  const out = existing.filter((f) => f !== FINALIZER_ORPHAN && f !== FINALIZER_FOREGROUND);
  if (orphan) out.push(FINALIZER_ORPHAN);
  if (foreground) out.push(FINALIZER_FOREGROUND);
  return out;
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x)) && b.every((x) => a.includes(x));

const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/** The grace period a pod's deletion gets (kube's podStrategy.CheckGracefulDelete). */
function podGracePeriod(pod: Obj, requested: number | undefined): number {
  const spec = obj(pod.spec);
  let period = requested ?? (typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 0);
  if (!spec.nodeName) period = 0;
  const phase = obj(pod.status).phase;
  if (phase === 'Failed' || phase === 'Succeeded') period = 0;
  if (period < 0) period = 1;
  return period;
}

/**
 * Decide a DELETE. `graceful` is true for the types with a graceful strategy (pods). `now` in ms (tests).
 */
export function decideDelete(existing: Obj, r: DeleteRequest, graceful: boolean, now = Date.now()): DeleteOutcome {
  const em = metaOf(existing);
  // negative values mean 1 s on the delete path
  const requested = r.gracePeriodSeconds !== undefined && r.gracePeriodSeconds < 0 ? 1 : r.gracePeriodSeconds;
  let meta: Obj = { ...em };
  let isGraceful = false;
  let lastGrace = 0;
  if (graceful) {
    const currentGrace = typeof em.deletionGracePeriodSeconds === 'number' ? em.deletionGracePeriodSeconds : undefined;
    if (typeof em.deletionTimestamp === 'string') {
      if (currentGrace === undefined || currentGrace === 0) {
        isGraceful = false;
      } else if (requested !== undefined) {
        // only a shorter grace period may be given; the deletion time moves back, never into the past
        if (requested >= currentGrace) return { kind: 'pending' };
        const ts = Math.max(now, Date.parse(em.deletionTimestamp) - currentGrace * 1000 + requested * 1000);
        meta = { ...meta, deletionTimestamp: rfc3339(ts), deletionGracePeriodSeconds: requested };
        isGraceful = true;
        lastGrace = requested;
      } else return { kind: 'pending' };
    } else {
      const period = podGracePeriod(existing, requested);
      meta = { ...meta, deletionTimestamp: rfc3339(now + period * 1000), deletionGracePeriodSeconds: period };
      if (typeof em.generation === 'number' && em.generation > 0) meta.generation = em.generation + 1;
      isGraceful = true;
      lastGrace = period;
    }
  }
  const before = finalizersOf(existing);
  const after = gcFinalizers(before, r);
  const finalizersChanged = !sameSet(before, after);
  const pendingFinalizers = after.length > 0;
  if (!isGraceful && !pendingFinalizers) return { kind: 'delete' };
  if (finalizersChanged) meta.finalizers = after;
  if (!isGraceful) {
    // held by finalizers: deleting from now on, nothing left to wait for
    if (typeof meta.deletionTimestamp !== 'string') {
      meta.deletionTimestamp = nowRFC3339();
      if (typeof em.generation === 'number' && em.generation > 0) meta.generation = em.generation + 1;
    }
    meta.deletionGracePeriodSeconds = 0;
    return { kind: 'update', object: { ...existing, metadata: meta } };
  }
  if (pendingFinalizers || lastGrace > 0) return { kind: 'update', object: { ...existing, metadata: meta } };
  return { kind: 'delete' };
}

/** An update removing the last finalizer ends the object only when its deletion has no grace left (kube's shouldDeleteDuringUpdate). */
export function shouldDeleteDuringUpdate(next: Obj, existing: Obj): boolean {
  if (finalizersOf(next).length > 0) return false;
  if (finalizersOf(existing).length === 0) return false;
  const em = metaOf(existing);
  return typeof em.deletionTimestamp === 'string' && em.deletionGracePeriodSeconds === 0;
}
