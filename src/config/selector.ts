// metav1.LabelSelector: validation with Kubernetes' syntax rules (LabelSelectorAsSelector) and matching.
import type { Node } from '../k8s/types.js';
import type { Selector } from './types.js';
import {
  fieldPath, optList, optString, optStringMap, readObject, show, wrongType,
  type JsonObject, type Report,
} from './fields.js';

type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Equals';

interface Requirement {
  key: string;
  operator: Operator;
  values: readonly string[];
}

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Why `key` is not a valid label key (Kubernetes' IsQualifiedName), or undefined when it is. */
export function labelKeyProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `invalid label key ${show(key)}: at most one "/" is allowed`;
  const name = parts[parts.length - 1] ?? '';
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    if (prefix === '') return `invalid label key ${show(key)}: the prefix before "/" must not be empty`;
    if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) {
      return `invalid label key ${show(key)}: the prefix must be a lowercase DNS subdomain of at most 253 characters`;
    }
  }
  if (name === '') return `invalid label key ${show(key)}: the name part must not be empty`;
  if (name.length > 63) return `invalid label key ${show(key)}: the name part must be at most 63 characters`;
  if (!NAME_PART.test(name)) {
    return `invalid label key ${show(key)}: the name part must consist of alphanumerics, "-", "_" or ".", and start and end with an alphanumeric`;
  }
  return undefined;
}

/** Why `value` is not a valid label value, or undefined when it is. */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return `invalid label value ${show(value)}: must be at most 63 characters`;
  if (!LABEL_VALUE.test(value)) {
    return `invalid label value ${show(value)}: must be empty or consist of alphanumerics, "-", "_" or ".", and start and end with an alphanumeric`;
  }
  return undefined;
}

function requirementText(r: Requirement): string {
  switch (r.operator) {
    case 'Exists': return r.key;
    case 'DoesNotExist': return `!${r.key}`;
    case 'Equals': return `${r.key}=${r.values[0] ?? ''}`;
    case 'In': return `${r.key} in (${[...r.values].sort().join(',')})`;
    case 'NotIn': return `${r.key} notin (${[...r.values].sort().join(',')})`;
  }
}

function requirementMatches(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.operator) {
    case 'Exists': return has;
    case 'DoesNotExist': return !has;
    case 'Equals':
    case 'In': return value !== undefined && r.values.includes(value);
    case 'NotIn': return value === undefined || !r.values.includes(value);
  }
}

/** Builds a Selector from validated requirements; the text is Kubernetes' `labels.Selector.String()`. */
function makeSelector(requirements: Requirement[]): Selector {
  // Kubernetes sorts requirements by key (stable), so the text is canonical for equal selectors.
  const sorted = [...requirements].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const text = sorted.map(requirementText).join(',');
  return {
    text,
    matches: (labels) => sorted.every((r) => requirementMatches(r, labels ?? {})),
  };
}

/** Matches everything (an empty selector). */
export const everything: Selector = makeSelector([]);

const OPERATORS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export interface SelectorOptions {
  /** BGPPeer v1beta1's legacy selector type requires non-empty `values` on every expression. */
  valuesRequired?: boolean;
}

/** Parses one LabelSelector; undefined (with errors reported) when invalid. */
export function parseLabelSelector(value: unknown, path: string, report: Report, opts: SelectorOptions = {}): Selector | undefined {
  let ok = true;
  const fail: Report = (f, m) => { ok = false; report(f, m); };
  const raw = readObject(value, path, fail, ['matchLabels', 'matchExpressions'], 'a label selector object');
  if (!raw) return undefined;
  const requirements: Requirement[] = [];
  const matchLabels = optStringMap(raw, 'matchLabels', path, fail) ?? {};
  for (const [key, value] of Object.entries(matchLabels)) {
    const at = fieldPath(fieldPath(path, 'matchLabels'), key);
    const problem = labelKeyProblem(key) ?? labelValueProblem(value);
    if (problem) fail(at, problem);
    else requirements.push({ key, operator: 'Equals', values: [value] });
  }
  const expressions = optList(raw, 'matchExpressions', path, fail) ?? [];
  const seenExpressions = new Set<string>();
  expressions.forEach((expr, i) => {
    const at = fieldPath(fieldPath(path, 'matchExpressions'), i);
    const req = parseRequirement(expr, at, fail, opts);
    if (!req) return;
    const text = requirementText(req);
    if (seenExpressions.has(text)) fail(at, `duplicate definition of match expressions ${show(text)}`);
    seenExpressions.add(text);
    requirements.push(req);
  });
  return ok ? makeSelector(requirements) : undefined;
}

function parseRequirement(value: unknown, path: string, report: Report, opts: SelectorOptions): Requirement | undefined {
  let ok = true;
  const fail: Report = (f, m) => { ok = false; report(f, m); };
  const raw = readObject(value, path, fail, ['key', 'operator', 'values'], 'an object with key, operator and values');
  if (!raw) return undefined;
  const key = optString(raw, 'key', path, fail);
  const operator = optString(raw, 'operator', path, fail);
  const values = readValues(raw, path, fail);
  if (key === undefined) {
    if (!('key' in raw) || raw.key === null) fail(fieldPath(path, 'key'), 'is required');
  } else {
    const problem = labelKeyProblem(key);
    if (problem) fail(fieldPath(path, 'key'), problem);
  }
  if (operator === undefined) {
    if (!('operator' in raw) || raw.operator === null) fail(fieldPath(path, 'operator'), 'is required');
  } else if (!OPERATORS.includes(operator)) {
    fail(fieldPath(path, 'operator'), `${show(operator)} is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)`);
  }
  if (values && operator !== undefined) {
    if ((operator === 'In' || operator === 'NotIn') && values.length === 0) {
      fail(fieldPath(path, 'values'), `operator ${operator} needs at least one value`);
    }
    if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) {
      fail(fieldPath(path, 'values'), `operator ${operator} must not have values, got ${values.length}`);
    }
    if (opts.valuesRequired && values.length === 0) fail(fieldPath(path, 'values'), 'must have at least one value (v1beta1 selector)');
  }
  if (!ok || key === undefined || operator === undefined || !values) return undefined;
  return { key, operator: operator as Operator, values };
}

function readValues(raw: JsonObject, path: string, report: Report): string[] | undefined {
  const list = raw.values;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) {
    report(fieldPath(path, 'values'), wrongType('a list of strings', list));
    return undefined;
  }
  const out: string[] = [];
  let ok = true;
  list.forEach((v, i) => {
    const at = fieldPath(fieldPath(path, 'values'), i);
    if (typeof v !== 'string') {
      ok = false;
      report(at, wrongType('a string', v));
      return;
    }
    const problem = labelValueProblem(v);
    if (problem) {
      ok = false;
      report(at, problem);
    } else if (out.includes(v)) {
      ok = false;
      report(at, `duplicate definition of match expression value in label selector ${show(v)}`);
    }
    out.push(v);
  });
  return ok ? out : undefined;
}

/**
 * A list of selectors at `obj[key]`, rejecting two selectors with the same meaning (MetalLB's
 * "duplicate definition of <what>"). Returns undefined when any entry is invalid.
 */
export function parseSelectorList(obj: JsonObject, key: string, path: string, report: Report, opts: SelectorOptions = {}): Selector[] | undefined {
  const list = optList(obj, key, path, report);
  if (!list) return obj[key] === undefined || obj[key] === null ? [] : undefined;
  const listPath = fieldPath(path, key);
  const out: Selector[] = [];
  let ok = true;
  list.forEach((raw, i) => {
    const sel = parseLabelSelector(raw, fieldPath(listPath, i), report, opts);
    if (!sel) {
      ok = false;
      return;
    }
    if (out.some((s) => s.text === sel.text)) {
      ok = false;
      report(fieldPath(listPath, i), `duplicate definition of ${key} ${show(sel.text)}`);
    }
    out.push(sel);
  });
  return ok ? out : undefined;
}

/** Names of the objects whose labels match any of `selectors`. */
export function selectNames(
  objects: readonly { name: string; labels: Readonly<Record<string, string>> }[],
  selectors: readonly Selector[],
): Set<string> {
  const out = new Set<string>();
  for (const o of objects) if (selectors.some((s) => s.matches(o.labels))) out.add(o.name);
  return out;
}

/** Names of the nodes matching any of `selectors` (nodes without a name are skipped). */
export function selectNodes(nodes: readonly Node[], selectors: readonly Selector[]): Set<string> {
  const named = nodes.flatMap((n) => (n.metadata?.name ? [{ name: n.metadata.name, labels: n.metadata.labels ?? {} }] : []));
  return selectNames(named, selectors);
}
