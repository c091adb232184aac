// Which nodes a DaemonSet's pod should run on, and the pod it creates there (pkg/controller/daemon/util).
import { matchesMap, matchesNodeSelector } from '../common/selectors.js';
import { firstUntoleratedTaint, TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE } from '../common/taints.js';
import type { Affinity, DaemonSet, Node, Pod, PodSpec, Toleration } from '../common/types.js';

export const REVISION_HASH_LABEL = 'controller-revision-hash';
export const TEMPLATE_GENERATION_LABEL = 'pod-template-generation';

/** Tolerations every daemon pod gets, so node conditions do not evict or keep out node agents. */
export function daemonTolerations(spec: PodSpec | undefined): Toleration[] {
  const add: Toleration[] = [
    { key: TAINT_NOT_READY, operator: 'Exists', effect: 'NoExecute' },
    { key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: TAINT_UNSCHEDULABLE, operator: 'Exists', effect: 'NoSchedule' },
  ];
  if (spec?.hostNetwork) add.push({ key: 'node.kubernetes.io/network-unavailable', operator: 'Exists', effect: 'NoSchedule' });
  const out = [...(spec?.tolerations ?? [])];
  for (const t of add) if (!out.some((o) => o.key === t.key && o.effect === t.effect)) out.push(t);
  return out;
}

/**
 * Whether a daemon pod should be created on the node (`run`), and whether one already there may stay (`keep`): an
 * untolerated NoSchedule taint keeps new pods out but does not evict; NoExecute does both.
 */
export function nodeShouldRunDaemonPod(ds: DaemonSet, node: Node): { run: boolean; keep: boolean } {
  const spec = ds.spec?.template?.spec;
  const name = node.metadata?.name ?? '';
  if (spec?.nodeName && spec.nodeName !== name) return { run: false, keep: false };
  if (!matchesMap(spec?.nodeSelector, node.metadata?.labels)) return { run: false, keep: false };
  const required = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required && !matchesNodeSelector(required, { name, labels: node.metadata?.labels })) return { run: false, keep: false };
  const tolerations = daemonTolerations(spec);
  const taints = node.spec?.taints ?? [];
  if (firstUntoleratedTaint(taints, tolerations, ['NoExecute'])) return { run: false, keep: false };
  if (firstUntoleratedTaint(taints, tolerations, ['NoSchedule'])) return { run: false, keep: true };
  return { run: true, keep: true };
}

/** The node a daemon pod is for: spec.nodeName once bound, else the node its affinity pins it to. */
export function targetNode(pod: Pod): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  for (const t of pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []) {
    for (const f of t.matchFields ?? []) if (f.key === 'metadata.name' && f.operator === 'In' && f.values?.length === 1) return f.values[0];
  }
  return undefined;
}

/** Pins a pod to one node the way upstream does: required node affinity on metadata.name (the scheduler binds it). */
export function pinToNode(affinity: Affinity | undefined, node: string): Affinity {
  return {
    ...(affinity ?? {}),
    nodeAffinity: {
      ...(affinity?.nodeAffinity ?? {}),
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] },
    },
  };
}
