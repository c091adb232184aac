// Label selectors (metav1.LabelSelector) and node selectors (core/v1 NodeSelector) as the API defines them.
import type { LabelSelector, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm } from './types.js';

type Labels = Record<string, string> | undefined;

/**
 * A LabelSelector matches when every matchLabels pair and every expression holds. An empty selector matches
 * everything; a missing one (undefined) matches nothing, as metav1.LabelSelectorAsSelector does for nil.
 */
export function matchesLabelSelector(sel: LabelSelector | undefined | null, labels: Labels): boolean {
  if (!sel) return false;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const req of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || !values.includes(l[req.key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(l[req.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** A selector given as a plain map (Service.spec.selector, nodeSelector): every pair must match; empty matches all. */
export function matchesMap(sel: Record<string, string> | undefined, labels: Labels): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel ?? {})) if (l[k] !== v) return false;
  return true;
}

/** Whether the selector selects nothing at all (nil) or everything (empty). */
export const selectsEverything = (sel: LabelSelector | undefined): boolean =>
  !!sel && Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0;

/** `a=b,c in (x,y),!d` — the string form for `?labelSelector=`. */
export function formatLabelSelector(sel: LabelSelector | undefined): string {
  if (!sel) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const r of sel.matchExpressions ?? []) {
    const vs = [...(r.values ?? [])].sort().join(',');
    if (r.operator === 'In') parts.push(`${r.key} in (${vs})`);
    else if (r.operator === 'NotIn') parts.push(`${r.key} notin (${vs})`);
    else if (r.operator === 'Exists') parts.push(r.key);
    else if (r.operator === 'DoesNotExist') parts.push(`!${r.key}`);
  }
  return parts.join(',');
}

function matchRequirement(req: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || values.length !== 1) return false;
      const a = Number(value);
      const b = Number(values[0]);
      if (!Number.isInteger(a) || !Number.isInteger(b)) return false;
      return req.operator === 'Gt' ? a > b : a < b;
    }
    default:
      return false;
  }
}

/** A term matches when all its expressions (on labels) and fields (only `metadata.name`) hold; an empty term matches nothing. */
export function matchesNodeSelectorTerm(term: NodeSelectorTerm, node: { name: string; labels: Labels }): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  const labels = node.labels ?? {};
  for (const e of exprs) {
    const v = Object.prototype.hasOwnProperty.call(labels, e.key) ? labels[e.key] : undefined;
    if (!matchRequirement(e, v)) return false;
  }
  for (const f of fields) {
    if (f.key !== 'metadata.name') return false;
    if (!matchRequirement(f, node.name)) return false;
  }
  return true;
}

/** The terms are ORed. */
export function matchesNodeSelector(sel: NodeSelector | undefined, node: { name: string; labels: Labels }): boolean {
  if (!sel) return true;
  return (sel.nodeSelectorTerms ?? []).some((t) => matchesNodeSelectorTerm(t, node));
}
