// Which nodes a pod fits on, and the words kube-scheduler uses when it fits nowhere. The filters run in upstream's
// plugin order (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts); a node is rejected with the
// reason of the first one that fails. Not modelled: resources (requests/limits), volumes, pod (anti-)affinity,
// topology spread constraints.
import { matchesMap, matchesNodeSelector } from '../common/selectors.js';
import { firstUntoleratedTaint, tolerated, TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE } from '../common/taints.js';
import type { Node, Pod, Taint } from '../common/types.js';

export const REASON_UNSCHEDULABLE = "node(s) were unschedulable";
export const REASON_NODE_NAME = "node(s) didn't match the requested node name";
export const REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector";
export const REASON_PORTS = "node(s) didn't have free ports for the requested pod ports";
export const taintReason = (t: Taint): string => `node(s) had untolerated taint {${t.key}: ${t.value ?? ''}}`;

/**
 * The node's taints as the scheduler sees them: a node whose Ready condition is not True counts as carrying the
 * not-ready / unreachable NoSchedule taint even before the node lifecycle controller has added it, so only Ready
 * nodes get pods (unless a pod tolerates that, as DaemonSet pods may).
 */
export function effectiveTaints(node: Node): Taint[] {
  const taints = [...(node.spec?.taints ?? [])];
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') {
    const key = ready?.status === 'Unknown' ? TAINT_UNREACHABLE : TAINT_NOT_READY;
    if (!taints.some((t) => t.key === key && t.effect === 'NoSchedule')) taints.push({ key, effect: 'NoSchedule' });
  }
  return taints;
}

const hostPorts = (pod: Pod): string[] => {
  const out: string[] = [];
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    for (const p of c.ports ?? []) {
      const hp = p.hostPort ?? (pod.spec?.hostNetwork ? p.containerPort : 0);
      if (hp) out.push(`${p.protocol ?? 'TCP'}/${hp}`);
    }
  }
  return out;
};

/** Why `pod` does not fit `node`, or undefined when it fits. `podsOnNode` are the pods bound (or assumed) there. */
export function unfitReason(pod: Pod, node: Node, podsOnNode: readonly Pod[]): string | undefined {
  const name = node.metadata?.name ?? '';
  const tolerations = pod.spec?.tolerations;
  if (node.spec?.unschedulable && !tolerated({ key: TAINT_UNSCHEDULABLE, effect: 'NoSchedule' }, tolerations)) return REASON_UNSCHEDULABLE;
  if (pod.spec?.nodeName && pod.spec.nodeName !== name) return REASON_NODE_NAME;
  const taint = firstUntoleratedTaint(effectiveTaints(node), tolerations, ['NoSchedule', 'NoExecute']);
  if (taint) return taintReason(taint);
  const target = { name, labels: node.metadata?.labels };
  if (!matchesMap(pod.spec?.nodeSelector, node.metadata?.labels)) return REASON_AFFINITY;
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required && !matchesNodeSelector(required, target)) return REASON_AFFINITY;
  const wanted = hostPorts(pod);
  if (wanted.length) {
    const used = new Set(podsOnNode.flatMap(hostPorts));
    if (wanted.some((p) => used.has(p))) return REASON_PORTS;
  }
  return undefined;
}

/**
 * kube-scheduler's FitError text: `0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 node(s)
 * didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for
 * scheduling.` (reasons counted and sorted as strings; none of these reasons can be resolved by preemption).
 */
export function fitErrorMessage(reasons: ReadonlyMap<string, string>, numNodes: number): string {
  if (numNodes === 0) return 'no nodes available to schedule pods';
  const counts = new Map<string, number>();
  for (const r of reasons.values()) counts.set(r, (counts.get(r) ?? 0) + 1);
  const parts = [...counts].map(([r, n]) => `${n} ${r}`).sort();
  return `0/${numNodes} nodes are available: ${parts.join(', ')}. preemption: 0/${numNodes} nodes are available: ${numNodes} Preemption is not helpful for scheduling.`;
}

export interface Candidate {
  node: Node;
  /** Pods of the same owner (controller) already on the node. */
  sameOwner: number;
  /** All pods on the node. */
  total: number;
}

/** Spreading: fewest pods of the same owner, then fewest pods, then the node name (stable choice among equals). */
export function pickNode(candidates: readonly Candidate[]): Node | undefined {
  let best: Candidate | undefined;
  for (const c of candidates) {
    if (
      !best ||
      c.sameOwner < best.sameOwner ||
      (c.sameOwner === best.sameOwner && (c.total < best.total || (c.total === best.total && (c.node.metadata?.name ?? '') < (best.node.metadata?.name ?? ''))))
    )
      best = c;
  }
  return best?.node;
}
