// The arithmetic of Deployment rollouts (k8s.io/kubernetes/pkg/controller/deployment/util), kept free of I/O:
// maxSurge/maxUnavailable, revision and replica annotations, how many pods the new ReplicaSet may have,
// proportional scaling, status and conditions.
import { stableStringify, nowRFC3339 } from '../common/pods.js';
import type { Condition, Deployment, DeploymentStatus, IntOrString, PodTemplateSpec, ReplicaSet } from '../common/types.js';

export const REVISION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
export const POD_TEMPLATE_HASH = 'pod-template-hash';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
const ROLLBACK_TO = 'deprecated.deployment.rollback.to';
/** Annotations of the Deployment that are not copied to its ReplicaSets. */
const NOT_COPIED = new Set([LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO]);

/** progressDeadlineSeconds of MaxInt32 means "no deadline". */
const NO_DEADLINE = 2147483647;

// Condition types and reasons, worded as kube-controller-manager words them.
export const PROGRESSING = 'Progressing';
export const AVAILABLE = 'Available';
export const REPLICA_FAILURE = 'ReplicaFailure';
export const NEW_RS_CREATED = 'NewReplicaSetCreated';
export const FOUND_NEW_RS = 'FoundNewReplicaSet';
export const RS_UPDATED = 'ReplicaSetUpdated';
export const NEW_RS_AVAILABLE = 'NewReplicaSetAvailable';
export const TIMED_OUT = 'ProgressDeadlineExceeded';
export const PAUSED = 'DeploymentPaused';
export const RESUMED = 'DeploymentResumed';
export const MIN_AVAILABLE = 'MinimumReplicasAvailable';
export const MIN_UNAVAILABLE = 'MinimumReplicasUnavailable';

export const replicasOf = (d: Deployment): number => d.spec?.replicas ?? 1;
export const rsReplicas = (rs: ReplicaSet | undefined): number => rs?.spec?.replicas ?? 0;
export const isRollingUpdate = (d: Deployment): boolean => (d.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate';

/** An int, or a percentage of `total` rounded up or down (intstr.GetScaledValueFromIntOrPercent). */
export function scaledValue(v: IntOrString | undefined, fallback: IntOrString, total: number, roundUp: boolean): number {
  const x = v ?? fallback;
  if (typeof x === 'number') return x;
  const m = /^(\d+)%$/.exec(x);
  if (!m) {
    const n = Number(x);
    if (Number.isInteger(n)) return n;
    throw new Error(`invalid value for IntOrString: invalid value "${x}": must be an integer or percentage (e.g. '5%')`);
  }
  const f = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(f) : Math.floor(f);
}

/** maxSurge rounds up, maxUnavailable down; both 0 would stall a rollout, so unavailable becomes 1. */
export function resolveFenceposts(d: Deployment): { surge: number; unavailable: number } {
  const ru = d.spec?.strategy?.rollingUpdate;
  const total = replicasOf(d);
  const surge = scaledValue(ru?.maxSurge, '25%', total, true);
  let unavailable = scaledValue(ru?.maxUnavailable, '25%', total, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Deployment): number {
  return isRollingUpdate(d) ? resolveFenceposts(d).surge : 0;
}

export function maxUnavailable(d: Deployment): number {
  if (!isRollingUpdate(d) || replicasOf(d) === 0) return 0;
  return Math.min(resolveFenceposts(d).unavailable, replicasOf(d));
}

export const revisionOf = (o: { metadata?: { annotations?: Record<string, string> } } | undefined): number => {
  const v = Number(o?.metadata?.annotations?.[REVISION] ?? '0');
  return Number.isInteger(v) && v >= 0 ? v : 0;
};

export const maxRevision = (rss: readonly ReplicaSet[]): number => rss.reduce((m, r) => Math.max(m, revisionOf(r)), 0);

/**
 * A template in canonical form: nulls, empty objects and empty lists dropped, as Go's zero values make
 * `creationTimestamp: null` or `resources: {}` (which kubectl sends back on `rollout undo`) equal to absent fields.
 */
export function normalizeTemplate(t: unknown): unknown {
  if (Array.isArray(t)) return t.map(normalizeTemplate);
  if (t === null || typeof t !== 'object') return t;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    const n = normalizeTemplate(v);
    if (Array.isArray(n) && n.length === 0) continue;
    if (n !== null && typeof n === 'object' && !Array.isArray(n) && Object.keys(n).length === 0) continue;
    out[k] = n;
  }
  return out;
}

/** Templates equal once the pod-template-hash label is left out (deployment util EqualIgnoreHash). */
export function equalIgnoreHash(a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined): boolean {
  const strip = (t: PodTemplateSpec | undefined): unknown => {
    const c = structuredClone(t ?? {});
    if (c.metadata?.labels) delete c.metadata.labels[POD_TEMPLATE_HASH];
    return normalizeTemplate(c);
  };
  return stableStringify(strip(a)) === stableStringify(strip(b));
}

const created = (rs: ReplicaSet): number => Date.parse(rs.metadata?.creationTimestamp ?? '') || 0;

/** Oldest first; ties broken by name (ReplicaSetsByCreationTimestamp). */
export const byCreation = (a: ReplicaSet, b: ReplicaSet): number => created(a) - created(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');

/** The ReplicaSet running the Deployment's current template (the oldest if several), and the others. */
export function findNewAndOld(d: Deployment, rss: readonly ReplicaSet[]): { newRS: ReplicaSet | undefined; oldRSs: ReplicaSet[] } {
  const sorted = [...rss].sort(byCreation);
  const newRS = sorted.find((r) => equalIgnoreHash(r.spec?.template, d.spec?.template));
  return { newRS, oldRSs: sorted.filter((r) => r !== newRS) };
}

export const activeRSs = (rss: readonly (ReplicaSet | undefined)[]): ReplicaSet[] => rss.filter((r): r is ReplicaSet => !!r && rsReplicas(r) > 0);
export const sumSpec = (rss: readonly (ReplicaSet | undefined)[]): number => rss.reduce((n, r) => n + rsReplicas(r), 0);
export const sumStatus = (rss: readonly (ReplicaSet | undefined)[], f: 'replicas' | 'readyReplicas' | 'availableReplicas'): number =>
  rss.reduce((n, r) => n + (r?.status?.[f] ?? 0), 0);

/** Replicas the new ReplicaSet should have now (NewRSNewReplicas). */
export function newRSNewReplicas(d: Deployment, all: readonly ReplicaSet[], newRS: ReplicaSet | undefined): number {
  if (!isRollingUpdate(d)) return replicasOf(d);
  const current = sumSpec(all);
  const maxTotal = replicasOf(d) + maxSurge(d);
  const have = rsReplicas(newRS);
  if (current >= maxTotal) return have;
  const up = Math.min(maxTotal - current, Math.max(0, replicasOf(d) - have));
  return have + up;
}

/**
 * Annotations the new ReplicaSet of `d` carries: the Deployment's own (less ours), the revision, and, when it is being
 * created, desired/max replicas (later only a scale changes those, which is how a scaling event is recognised).
 */
export function rsAnnotations(d: Deployment, rs: ReplicaSet | undefined, revision: number): Record<string, string> {
  const out: Record<string, string> = { ...(rs?.metadata?.annotations ?? {}) };
  for (const [k, v] of Object.entries(d.metadata?.annotations ?? {})) if (!NOT_COPIED.has(k)) out[k] = v;
  const old = revisionOf(rs);
  if (revision > old) {
    out[REVISION] = String(revision);
    // a rollback to an older template: remember which revisions this ReplicaSet had
    if (old > 0) out[REVISION_HISTORY] = out[REVISION_HISTORY] ? `${out[REVISION_HISTORY]},${old}` : String(old);
  }
  if (!rs) {
    out[DESIRED_REPLICAS] = String(replicasOf(d));
    out[MAX_REPLICAS] = String(replicasOf(d) + maxSurge(d));
  }
  return out;
}

/** Whether desired/max-replicas annotations are out of date. */
export function replicaAnnotationsStale(d: Deployment, rs: ReplicaSet): boolean {
  const a = rs.metadata?.annotations ?? {};
  return a[DESIRED_REPLICAS] !== String(replicasOf(d)) || a[MAX_REPLICAS] !== String(replicasOf(d) + maxSurge(d));
}

/** A scaling event: an active ReplicaSet was sized for another replica count. */
export function isScalingEvent(d: Deployment, all: readonly ReplicaSet[]): boolean {
  for (const rs of activeRSs(all)) {
    const v = rs.metadata?.annotations?.[DESIRED_REPLICAS];
    if (v !== undefined && Number(v) !== replicasOf(d)) return true;
  }
  return false;
}

export function isSaturated(d: Deployment, rs: ReplicaSet | undefined): boolean {
  if (!rs) return false;
  const desired = Number(rs.metadata?.annotations?.[DESIRED_REPLICAS]);
  return rsReplicas(rs) === replicasOf(d) && desired === replicasOf(d) && (rs.status?.availableReplicas ?? 0) === replicasOf(d);
}

/** The only active ReplicaSet, or the newest when none is active (FindActiveOrLatest). */
export function findActiveOrLatest(newRS: ReplicaSet | undefined, oldRSs: readonly ReplicaSet[]): ReplicaSet | undefined {
  if (!newRS && oldRSs.length === 0) return undefined;
  const sortedOld = [...oldRSs].sort((a, b) => byCreation(b, a));
  const active = activeRSs([...sortedOld, newRS]);
  if (active.length === 0) return newRS ?? sortedOld[0];
  if (active.length === 1) return active[0];
  return undefined;
}

/** How far one ReplicaSet moves in a proportional scale (GetProportion). */
export function proportion(d: Deployment, rs: ReplicaSet, toAdd: number, added: number, statusReplicas: number): number {
  if (rsReplicas(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
  let fraction: number;
  if (replicasOf(d) === 0) fraction = -rsReplicas(rs);
  else {
    const deploymentReplicas = replicasOf(d) + maxSurge(d);
    const ann = Number(rs.metadata?.annotations?.[MAX_REPLICAS]);
    const annotated = Number.isInteger(ann) && ann > 0 ? ann : statusReplicas;
    fraction = annotated > 0 ? Math.round((rsReplicas(rs) * deploymentReplicas) / annotated) - rsReplicas(rs) : 0;
  }
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

/**
 * New sizes of the active ReplicaSets when a rolling Deployment is scaled mid-rollout: each grows or shrinks in
 * proportion to its size, leftovers go to the largest.
 */
export function proportionalSizes(d: Deployment, active: readonly ReplicaSet[]): { sizes: Map<ReplicaSet, number>; direction: 'up' | 'down' | '' } {
  const total = sumSpec(active);
  const allowed = replicasOf(d) > 0 ? replicasOf(d) + maxSurge(d) : 0;
  const toAdd = allowed - total;
  const sizes = new Map<ReplicaSet, number>();
  if (toAdd === 0) {
    for (const rs of active) sizes.set(rs, rsReplicas(rs));
    return { sizes, direction: '' };
  }
  // larger first; among equals the newer first when growing, the older first when shrinking
  const sorted = [...active].sort((a, b) => rsReplicas(b) - rsReplicas(a) || (toAdd > 0 ? byCreation(b, a) : byCreation(a, b)));
  let added = 0;
  const statusReplicas = d.status?.replicas ?? 0;
  for (const rs of sorted) {
    const p = proportion(d, rs, toAdd, added, statusReplicas);
    sizes.set(rs, rsReplicas(rs) + p);
    added += p;
  }
  const first = sorted[0];
  if (first) sizes.set(first, Math.max(0, (sizes.get(first) ?? 0) + toAdd - added));
  return { sizes, direction: toAdd > 0 ? 'up' : 'down' };
}

// ---------- status and conditions ----------

export const condition = (s: DeploymentStatus | undefined, type: string): Condition | undefined => s?.conditions?.find((c) => c.type === type);

export function newCondition(type: string, status: string, reason: string, message: string, nowMs = Date.now()): Condition {
  const t = nowRFC3339(nowMs);
  return { type, status, lastUpdateTime: t, lastTransitionTime: t, reason, message };
}

/** SetDeploymentCondition: no change for the same status and reason; the transition time survives a same-status update. */
export function setCondition(s: DeploymentStatus, c: Condition): void {
  const cur = condition(s, c.type);
  if (cur && cur.status === c.status && cur.reason === c.reason) return;
  const next = cur && cur.status === c.status ? { ...c, lastTransitionTime: cur.lastTransitionTime } : c;
  s.conditions = [...(s.conditions ?? []).filter((x) => x.type !== c.type), next];
}

export function removeCondition(s: DeploymentStatus, type: string): void {
  if (!s.conditions) return;
  s.conditions = s.conditions.filter((c) => c.type !== type);
  if (s.conditions.length === 0) delete s.conditions;
}

export const hasProgressDeadline = (d: Deployment): boolean => (d.spec?.progressDeadlineSeconds ?? 600) !== NO_DEADLINE;

export function calculateStatus(all: readonly ReplicaSet[], newRS: ReplicaSet | undefined, d: Deployment, nowMs = Date.now()): DeploymentStatus {
  const available = sumStatus(all, 'availableReplicas');
  const total = sumSpec(all);
  const status: DeploymentStatus = {
    observedGeneration: d.metadata?.generation ?? 0,
    replicas: sumStatus(all, 'replicas'),
    updatedReplicas: sumStatus([newRS], 'replicas'),
    readyReplicas: sumStatus(all, 'readyReplicas'),
    availableReplicas: available,
    unavailableReplicas: Math.max(0, total - available),
  };
  if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
  if (d.status?.conditions?.length) status.conditions = d.status.conditions.map((c) => ({ ...c }));
  if (available >= replicasOf(d) - maxUnavailable(d)) setCondition(status, newCondition(AVAILABLE, 'True', MIN_AVAILABLE, 'Deployment has minimum availability.', nowMs));
  else setCondition(status, newCondition(AVAILABLE, 'False', MIN_UNAVAILABLE, 'Deployment does not have minimum availability.', nowMs));
  return status;
}

export function deploymentComplete(d: Deployment, s: DeploymentStatus): boolean {
  const n = replicasOf(d);
  return s.updatedReplicas === n && s.replicas === n && s.availableReplicas === n && (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
}

export function deploymentProgressing(d: Deployment, s: DeploymentStatus): boolean {
  const o = d.status ?? {};
  const oldOld = (o.replicas ?? 0) - (o.updatedReplicas ?? 0);
  const newOld = (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (s.updatedReplicas ?? 0) > (o.updatedReplicas ?? 0) || newOld < oldOld || (s.readyReplicas ?? 0) > (o.readyReplicas ?? 0) || (s.availableReplicas ?? 0) > (o.availableReplicas ?? 0);
}

export function deploymentTimedOut(d: Deployment, s: DeploymentStatus, nowMs: number): boolean {
  if (!hasProgressDeadline(d)) return false;
  const c = condition(s, PROGRESSING);
  if (!c) return false;
  if (c.reason === NEW_RS_AVAILABLE) return false;
  if (c.reason === TIMED_OUT) return true;
  const from = Date.parse(c.lastUpdateTime ?? '');
  return Number.isFinite(from) && from + (d.spec?.progressDeadlineSeconds ?? 600) * 1000 < nowMs;
}
