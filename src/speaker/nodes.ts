// Node facts both announcement protocols read (MetalLB's internal/k8s/nodes).
import type { Node } from '../k8s/types.js';

/** Nodes with this label (any value) never announce, unless the speaker runs with --ignore-exclude-lb. */
export const EXCLUDE_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** The node's `NetworkUnavailable` condition is True (e.g. its CNI is not ready). */
export function isNetworkUnavailable(node: Node | undefined): boolean {
  const conds = node?.status?.conditions;
  if (!Array.isArray(conds)) return false;
  return conds.some((c) => c && c.type === 'NetworkUnavailable' && c.status === 'True');
}

export function isExcludedFromBalancers(node: Node | undefined): boolean {
  const labels = node?.metadata?.labels;
  return !!labels && typeof labels === 'object' && Object.prototype.hasOwnProperty.call(labels, EXCLUDE_LB_LABEL);
}

export const nodeLabels = (node: Node | undefined): Readonly<Record<string, string>> => {
  const l = node?.metadata?.labels;
  return l && typeof l === 'object' ? l : {};
};
