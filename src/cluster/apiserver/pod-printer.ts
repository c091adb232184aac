// The pod row of `kubectl get pods`, as kube-apiserver's printPod computes it: the STATUS a user sees is not the
// phase but the most telling container state (CrashLoopBackOff, ContainerCreating, ErrImagePull, Init:0/1,
// Completed, Terminating...), and RESTARTS says when the last restart was.
import { arr, getPath, isObj, obj, str, type Obj } from './util.js';

export interface PodRow {
  ready: string;
  status: string;
  restarts: string;
  ip: string;
  node: string;
  nominatedNode: string;
  readinessGates: string;
}

const NODE_UNREACHABLE_REASON = 'NodeLost';

const PODS_SUCCEEDED = [{ type: 'Completed', status: 'True', reason: 'Succeeded', message: 'The pod has completed successfully.' }];
const PODS_FAILED = [{ type: 'Completed', status: 'True', reason: 'Failed', message: 'The pod failed.' }];

/** A sidecar: an init container with `restartPolicy: Always`, counted with the containers. */
const isRestartable = (c: Obj | undefined): boolean => c?.restartPolicy === 'Always';

const conditionTrue = (status: Obj, type: string): boolean => arr(status.conditions).some((c) => isObj(c) && c.type === type && c.status === 'True');

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** The time a container last ended, if it ever did (zero otherwise). */
function lastTerminated(cs: Obj): number {
  const at = str(getPath(cs, 'lastState.terminated.finishedAt'));
  const t = at ? Date.parse(at) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

/** `Init:Error`, `Init:ExitCode:1`, `Init:Signal:9` for an init container that failed. */
function terminatedReason(t: Obj, prefix: string): string {
  const reason = str(t.reason);
  if (reason) return prefix + reason;
  if (num(t.signal) !== 0) return `${prefix}Signal:${num(t.signal)}`;
  return `${prefix}ExitCode:${num(t.exitCode)}`;
}

export function podRow(pod: Obj, now: number, humanAge: (ms: number) => string): PodRow {
  const spec = obj(pod.spec);
  const status = obj(pod.status);
  const initSpecs = arr(spec.initContainers).filter(isObj);
  const initByName = new Map(initSpecs.map((c) => [str(c.name) ?? '', c]));
  const total = arr(spec.containers).length + initSpecs.filter(isRestartable).length;
  let ready = 0;
  let restarts = 0;
  let sidecarRestarts = 0;
  let lastRestart = 0;
  let lastSidecarRestart = 0;

  const phase = str(status.phase) ?? '';
  let reason = str(status.reason) || phase;
  for (const c of arr(status.conditions).filter(isObj)) if (c.type === 'PodScheduled' && c.reason === 'SchedulingGated') reason = 'SchedulingGated';

  let initializing = false;
  const initStatuses = arr(status.initContainerStatuses).filter(isObj);
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i]!;
    restarts += num(cs.restartCount);
    lastRestart = Math.max(lastRestart, lastTerminated(cs));
    const sidecar = isRestartable(initByName.get(str(cs.name) ?? ''));
    if (sidecar) {
      sidecarRestarts += num(cs.restartCount);
      lastSidecarRestart = Math.max(lastSidecarRestart, lastTerminated(cs));
    }
    const state = obj(cs.state);
    const terminated = isObj(state.terminated) ? state.terminated : undefined;
    const waiting = isObj(state.waiting) ? state.waiting : undefined;
    if (terminated && num(terminated.exitCode) === 0) continue;
    if (sidecar && cs.started === true) {
      if (cs.ready === true) ready++;
      continue;
    }
    if (terminated) reason = terminatedReason(terminated, 'Init:');
    else if (waiting && str(waiting.reason) && waiting.reason !== 'PodInitializing') reason = `Init:${String(waiting.reason)}`;
    else reason = `Init:${i}/${initSpecs.length}`;
    initializing = true;
    break;
  }

  if (!initializing || conditionTrue(status, 'Initialized')) {
    restarts = sidecarRestarts;
    lastRestart = lastSidecarRestart;
    let hasRunning = false;
    const statuses = arr(status.containerStatuses).filter(isObj);
    // the first container's state wins, as upstream walks them backwards
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i]!;
      restarts += num(cs.restartCount);
      lastRestart = Math.max(lastRestart, lastTerminated(cs));
      const state = obj(cs.state);
      const waiting = isObj(state.waiting) ? state.waiting : undefined;
      const terminated = isObj(state.terminated) ? state.terminated : undefined;
      if (waiting && str(waiting.reason)) reason = String(waiting.reason);
      else if (terminated) reason = terminatedReason(terminated, '');
      else if (cs.ready === true && isObj(state.running)) {
        hasRunning = true;
        ready++;
      }
    }
    // a pod whose first container completed while another still runs is not "Completed"
    if (reason === 'Completed' && hasRunning) reason = conditionTrue(status, 'Ready') ? 'Running' : 'NotReady';
  }

  const deleting = obj(pod.metadata).deletionTimestamp !== undefined && obj(pod.metadata).deletionTimestamp !== null;
  if (deleting && status.reason === NODE_UNREACHABLE_REASON) reason = 'Unknown';
  else if (deleting && phase !== 'Succeeded' && phase !== 'Failed') reason = 'Terminating';

  const restartsText = restarts !== 0 && lastRestart !== 0 ? `${restarts} (${humanAge(now - lastRestart)} ago)` : String(restarts);

  const podIPs = arr(status.podIPs).filter(isObj);
  const gates = arr(spec.readinessGates).filter(isObj);
  let gatesText = '<none>';
  if (gates.length) {
    const conds = arr(status.conditions).filter(isObj);
    const met = gates.filter((g) => conds.find((c) => c.type === g.conditionType)?.status === 'True').length;
    gatesText = `${met}/${gates.length}`;
  }
  return {
    ready: `${ready}/${total}`,
    status: reason,
    restarts: restartsText,
    ip: str(podIPs[0]?.ip) || str(status.podIP) || '<none>',
    node: str(spec.nodeName) || '<none>',
    nominatedNode: str(status.nominatedNodeName) || '<none>',
    readinessGates: gatesText,
  };
}

/** The row condition a finished pod carries in a Table (clients may use it to tell finished pods apart). */
export function podRowConditions(pod: Obj): Obj[] | undefined {
  const phase = getPath(pod, 'status.phase');
  return phase === 'Succeeded' ? PODS_SUCCEEDED : phase === 'Failed' ? PODS_FAILED : undefined;
}
