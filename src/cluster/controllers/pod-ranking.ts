// Which pods a ReplicaSet deletes first when it scales down (controller.ActivePodsWithRanks): the least useful first.
import { isPodReady, podCondition, restartCount } from '../common/pods.js';
import type { Pod } from '../common/types.js';

const PHASE_ORDER: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };
const DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';

const time = (s: string | undefined): number => (s ? Date.parse(s) : NaN);

function deletionCost(p: Pod): number {
  const v = Number(p.metadata?.annotations?.[DELETION_COST] ?? 0);
  return Number.isInteger(v) ? v : 0;
}

/**
 * Negative when `a` should go before `b`. `rank` counts pods of the same owner family on a pod's node (more doubling
 * up = delete first). Order: unscheduled, then Pending < Unknown < Running, not ready, lower deletion cost, doubled up,
 * ready for a shorter time, more restarts, newer.
 */
export function compareForDeletion(a: Pod, b: Pod, rank: (p: Pod) => number): number {
  const aNode = a.spec?.nodeName ?? '';
  const bNode = b.spec?.nodeName ?? '';
  if ((aNode === '') !== (bNode === '')) return aNode === '' ? -1 : 1;
  const ap = PHASE_ORDER[a.status?.phase ?? 'Pending'] ?? 0;
  const bp = PHASE_ORDER[b.status?.phase ?? 'Pending'] ?? 0;
  if (ap !== bp) return ap - bp;
  const ar = isPodReady(a);
  const br = isPodReady(b);
  if (ar !== br) return ar ? 1 : -1;
  const ac = deletionCost(a);
  const bc = deletionCost(b);
  if (ac !== bc) return ac - bc;
  const ak = rank(a);
  const bk = rank(b);
  if (ak !== bk) return bk - ak;
  if (ar && br) {
    const at = time(podCondition(a, 'Ready')?.lastTransitionTime);
    const bt = time(podCondition(b, 'Ready')?.lastTransitionTime);
    if (at !== bt && !(Number.isNaN(at) && Number.isNaN(bt))) {
      if (Number.isNaN(at)) return -1;
      if (Number.isNaN(bt)) return 1;
      return bt - at;
    }
  }
  const rc = restartCount(b) - restartCount(a);
  if (rc !== 0) return rc;
  const act = time(a.metadata?.creationTimestamp);
  const bct = time(b.metadata?.creationTimestamp);
  if (act !== bct && !(Number.isNaN(act) && Number.isNaN(bct))) {
    if (Number.isNaN(act)) return -1;
    if (Number.isNaN(bct)) return 1;
    return bct - act;
  }
  return (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
}

/**
 * The `n` pods to delete. `related` are the active pods of the whole owner family (e.g. every ReplicaSet of the
 * Deployment): a pod sharing its node with more of them ranks as more doubled up.
 */
export function podsToDelete(pods: readonly Pod[], related: readonly Pod[], n: number): Pod[] {
  if (n >= pods.length) return [...pods];
  const perNode = new Map<string, number>();
  for (const p of related) {
    const node = p.spec?.nodeName;
    if (node) perNode.set(node, (perNode.get(node) ?? 0) + 1);
  }
  const rank = (p: Pod): number => (p.spec?.nodeName ? (perNode.get(p.spec.nodeName) ?? 0) : 0);
  return [...pods].sort((a, b) => compareForDeletion(a, b, rank)).slice(0, n);
}
