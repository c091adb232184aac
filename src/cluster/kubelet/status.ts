// Pod status from the state of its containers, following the kubelet: the phase (getPhase), the conditions it owns
// (PodReadyToStartContainers, Initialized, ContainersReady, Ready) with transition times kept while a condition holds,
// and the addresses. Pure.
import type { ContainerStatus, Pod, PodCondition, PodStatus } from './types.js';

export interface StatusInput {
  pod: Pod;
  /** Init container statuses in spec order, with whether each is a sidecar (restartPolicy Always). */
  initStatuses: { status: ContainerStatus; sidecar: boolean }[];
  statuses: ContainerStatus[];
  sandboxReady: boolean;
  hostIPs: string[];
  podIPs: string[];
  startTime: string;
  now: string;
  /** A phase the kubelet decided on (e.g. Failed after activeDeadlineSeconds), with reason and message. */
  forcedPhase?: { phase: 'Failed' | 'Succeeded'; reason?: string; message?: string };
}

const OWNED = ['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready'];

export function podPhase(pod: Pod, initStatuses: StatusInput['initStatuses'], statuses: ContainerStatus[]): string {
  const restartPolicy = pod.spec.restartPolicy ?? 'Always';
  let pendingInit = 0;
  let failedInit = 0;
  for (const { status: s, sidecar } of initStatuses) {
    if (sidecar) {
      if (!(s.state.running && s.started)) pendingInit++;
      continue;
    }
    if (s.state.terminated) {
      if (s.state.terminated.exitCode !== 0) failedInit++;
    } else if (s.state.waiting) {
      if (s.lastState.terminated && s.lastState.terminated.exitCode !== 0) failedInit++;
      else pendingInit++;
    } else {
      pendingInit++;
    }
  }
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of statuses) {
    if (s.state.running) running++;
    else if (s.state.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state.waiting) {
      if (s.lastState.terminated) stopped++;
      else waiting++;
    } else {
      waiting++;
    }
  }
  if (failedInit > 0 && restartPolicy === 'Never') return 'Failed';
  if (pendingInit > 0 || failedInit > 0) return 'Pending';
  if (waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped > 0) {
    if (restartPolicy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (restartPolicy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function condition(existing: PodCondition[] | undefined, type: string, status: boolean, now: string, reason?: string, message?: string): PodCondition {
  const s = status ? 'True' : 'False';
  const prev = existing?.find((c) => c.type === type);
  const c: PodCondition = { type, status: s, lastProbeTime: null, lastTransitionTime: prev && prev.status === s && prev.lastTransitionTime ? prev.lastTransitionTime : now };
  if (reason) c.reason = reason;
  if (message) c.message = message;
  return c;
}

export function computePodStatus(i: StatusInput): PodStatus {
  const { pod, now } = i;
  const old = pod.status?.conditions;
  const phase = i.forcedPhase?.phase ?? podPhase(pod, i.initStatuses, i.statuses);
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const conditions: PodCondition[] = [];
  conditions.push(condition(old, 'PodReadyToStartContainers', i.sandboxReady && !terminal, now));
  const incompleteInit = i.initStatuses.filter(({ status: s, sidecar }) => (sidecar ? !(s.state.running && s.started) : !(s.state.terminated && s.state.terminated.exitCode === 0))).map(({ status }) => status.name);
  const initialized = incompleteInit.length === 0 || (terminal && i.initStatuses.every(({ status: s, sidecar }) => sidecar || s.state.terminated?.exitCode === 0));
  conditions.push(
    initialized
      ? condition(old, 'Initialized', true, now)
      : condition(old, 'Initialized', false, now, 'ContainersNotInitialized', `containers with incomplete status: [${incompleteInit.join(' ')}]`),
  );
  const unready = [...i.initStatuses.filter((x) => x.sidecar).map((x) => x.status), ...i.statuses].filter((s) => !s.ready).map((s) => s.name);
  if (terminal) {
    conditions.push(condition(old, 'ContainersReady', false, now, 'PodCompleted'));
    conditions.push(condition(old, 'Ready', false, now, 'PodCompleted'));
  } else if (unready.length === 0 && initialized) {
    conditions.push(condition(old, 'ContainersReady', true, now));
    conditions.push(condition(old, 'Ready', true, now));
  } else {
    const msg = unready.length > 0 ? `containers with unready status: [${unready.join(' ')}]` : undefined;
    conditions.push(condition(old, 'ContainersReady', false, now, 'ContainersNotReady', msg));
    conditions.push(condition(old, 'Ready', false, now, 'ContainersNotReady', msg));
  }
  // Conditions owned by others (PodScheduled from the scheduler, DisruptionTarget, readiness gates) are kept.
  const others = (old ?? []).filter((c) => !OWNED.includes(c.type));
  if (!others.some((c) => c.type === 'PodScheduled')) others.unshift({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: i.startTime });
  const status: PodStatus = {
    phase,
    conditions: [...others, ...conditions],
    hostIP: i.hostIPs[0] ?? '',
    hostIPs: i.hostIPs.map((ip) => ({ ip })),
    startTime: i.startTime,
    containerStatuses: i.statuses,
    qosClass: qosClass(pod),
  };
  if (i.podIPs.length > 0) {
    status.podIP = i.podIPs[0];
    status.podIPs = i.podIPs.map((ip) => ({ ip }));
  }
  if (i.initStatuses.length > 0) status.initContainerStatuses = i.initStatuses.map((x) => x.status);
  if (i.forcedPhase?.reason) status.reason = i.forcedPhase.reason;
  if (i.forcedPhase?.message) status.message = i.forcedPhase.message;
  return status;
}

/** Guaranteed, Burstable or BestEffort, from the containers' requests and limits. */
export function qosClass(pod: Pod): string {
  const all = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])];
  let any = false;
  let guaranteed = true;
  for (const c of all) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    if (Object.keys(req).length > 0 || Object.keys(lim).length > 0) any = true;
    for (const r of ['cpu', 'memory']) {
      const l = lim[r];
      const q = req[r] ?? l;
      if (l === undefined || String(q) !== String(l)) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** The part of a status the kubelet writes, for comparing with what the API server holds. */
export function statusFingerprint(s: PodStatus | undefined): string {
  if (!s) return '';
  const { phase, conditions, hostIP, hostIPs, podIP, podIPs, startTime, containerStatuses, initContainerStatuses, reason, message, qosClass: q } = s;
  return canonicalJSON({ phase, conditions, hostIP, hostIPs, podIP, podIPs, startTime, containerStatuses, initContainerStatuses, reason, message, qosClass: q });
}

/** JSON with sorted keys and without null or undefined members, so equal statuses compare equal. */
export function canonicalJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined && o[k] !== null)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJSON(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
