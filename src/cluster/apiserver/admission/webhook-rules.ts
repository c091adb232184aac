// Which admission webhooks a request goes to (k8s.io/apiserver/pkg/admission/plugin/webhook): rules (operations,
// apiGroups, apiVersions, resources with subresources and `*`, scope), matchPolicy Equivalent (another served version
// of the same resource), namespaceSelector and objectSelector. Pure.
import { labelSelectorFromObject, matchLabels } from '../selectors.js';
import { isObj, obj, type Obj } from '../util.js';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface RequestTarget {
  operation: Operation;
  group: string;
  version: string;
  resource: string;
  subresource: string;
  namespaced: boolean;
}

export interface Rule {
  operations: string[];
  apiGroups: string[];
  apiVersions: string[];
  resources: string[];
  scope: string;
}

const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

export function rulesOf(webhook: Obj): Rule[] {
  return (Array.isArray(webhook.rules) ? webhook.rules : []).map((r) => {
    const x = obj(r);
    return { operations: strs(x.operations), apiGroups: strs(x.apiGroups), apiVersions: strs(x.apiVersions), resources: strs(x.resources), scope: typeof x.scope === 'string' ? x.scope : '*' };
  });
}

const has = (list: string[], v: string): boolean => list.includes('*') || list.includes(v);

/** `*` is every resource but no subresource; `pods/*` every subresource of pods; `*\/scale`; `*\/*` everything. */
export function resourceMatches(patterns: string[], resource: string, subresource: string): boolean {
  for (const p of patterns) {
    const slash = p.indexOf('/');
    const res = slash < 0 ? p : p.slice(0, slash);
    const sub = slash < 0 ? '' : p.slice(slash + 1);
    if ((res === '*' || res === resource) && (sub === '*' || sub === subresource)) return true;
  }
  return false;
}

export function ruleMatches(r: Rule, t: RequestTarget): boolean {
  if (!has(r.operations, t.operation)) return false;
  if (!has(r.apiGroups, t.group) || !has(r.apiVersions, t.version)) return false;
  if (!resourceMatches(r.resources, t.resource, t.subresource)) return false;
  // the scope of a subresource request is its parent's; a Namespace object is cluster-scoped
  if (r.scope === 'Cluster' && t.namespaced) return false;
  if (r.scope === 'Namespaced' && !t.namespaced) return false;
  return true;
}

function selectorMatches(sel: unknown, labels: unknown): boolean {
  if (!isObj(sel)) return true;
  const ls = labelSelectorFromObject(sel);
  return ls.length === 0 ? true : matchLabels(ls, obj(labels) as Record<string, unknown>);
}

/** namespaceSelector: namespaced objects by their namespace's labels, Namespaces by their own; others always match. */
export function namespaceSelectorMatches(webhook: Obj, t: RequestTarget, namespaceLabels: unknown, objectLabels: unknown): boolean {
  if (t.group === '' && t.resource === 'namespaces' && t.subresource === '') return selectorMatches(webhook.namespaceSelector, objectLabels);
  if (!t.namespaced) return true;
  return selectorMatches(webhook.namespaceSelector, namespaceLabels);
}

/** objectSelector: the labels of the new object or of the old one. */
export function objectSelectorMatches(webhook: Obj, object: Obj | undefined, oldObject: Obj | undefined): boolean {
  if (!isObj(webhook.objectSelector) || labelSelectorFromObject(webhook.objectSelector).length === 0) return true;
  return [object, oldObject].some((o) => o !== undefined && selectorMatches(webhook.objectSelector, obj(o.metadata).labels));
}

/**
 * The version the webhook is called with: the request's when a rule names it, else (matchPolicy Equivalent, the
 * default) the first other served version of the same resource that a rule names.
 */
export function matchedVersion(webhook: Obj, t: RequestTarget, servedVersions: readonly string[]): string | undefined {
  const rules = rulesOf(webhook);
  if (rules.some((r) => ruleMatches(r, t))) return t.version;
  if (webhook.matchPolicy === 'Exact') return undefined;
  for (const v of servedVersions) if (v !== t.version && rules.some((r) => ruleMatches(r, { ...t, version: v }))) return v;
  return undefined;
}
