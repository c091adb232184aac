// Label selectors (k8s.io/apimachinery/pkg/labels) and field selectors (pkg/fields), parsed once, matched many times.
import { badRequest } from './errors.js';
import { getPath, isObj, type Obj } from './util.js';

export type LabelOp = 'eq' | 'neq' | 'in' | 'notin' | 'exists' | '!exists' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  op: LabelOp;
  values: string[];
}

export type LabelSelector = LabelRequirement[];

const KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h`. Throws a 400 ApiError on syntax errors. */
export function parseLabelSelector(input: string): LabelSelector {
  const s = input.trim();
  const reqs: LabelSelector = [];
  if (s === '') return reqs;
  let i = 0;
  const fail = (msg: string): never => {
    throw badRequest(`unable to parse requirement: ${msg} in label selector "${input}"`);
  };
  const skipWs = (): void => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  const readIdent = (): string => {
    skipWs();
    const start = i;
    while (i < s.length && !/[\s,=!()<>]/.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  while (i <= s.length) {
    skipWs();
    let negate = false;
    if (s[i] === '!') {
      negate = true;
      i++;
    }
    const key = readIdent();
    if (!key) fail('missing key');
    if (!KEY_RE.test(key) || key.length > 317) fail(`invalid label key "${key}"`);
    skipWs();
    if (negate) {
      reqs.push({ key, op: '!exists', values: [] });
    } else if (i >= s.length || s[i] === ',') {
      reqs.push({ key, op: 'exists', values: [] });
    } else if (s.startsWith('==', i) || s.startsWith('!=', i) || s[i] === '=' || s[i] === '>' || s[i] === '<') {
      let op: LabelOp;
      if (s.startsWith('==', i)) {
        op = 'eq';
        i += 2;
      } else if (s.startsWith('!=', i)) {
        op = 'neq';
        i += 2;
      } else {
        op = s[i] === '=' ? 'eq' : s[i] === '>' ? 'gt' : 'lt';
        i += 1;
      }
      const v = readIdent();
      if (!VALUE_RE.test(v) || v.length > 63) fail(`invalid label value "${v}"`);
      if ((op === 'gt' || op === 'lt') && !/^-?\d+$/.test(v)) fail(`for 'Gt', 'Lt' operators, the value must be an integer`);
      reqs.push({ key, op, values: [v] });
    } else {
      const word = readIdent();
      if (word !== 'in' && word !== 'notin') fail(`found '${word}', expected: in, notin, =, ==, !=, gt, lt`);
      skipWs();
      if (s[i] !== '(') fail(`found '${s[i] ?? ''}', expected: '('`);
      i++;
      const values: string[] = [];
      for (;;) {
        const v = readIdent();
        if (!VALUE_RE.test(v) || v.length > 63) fail(`invalid label value "${v}"`);
        if (v !== '') values.push(v);
        skipWs();
        if (s[i] === ',') {
          i++;
          continue;
        }
        if (s[i] === ')') {
          i++;
          break;
        }
        fail(`found '${s[i] ?? 'EOS'}', expected: ',', ')'`);
      }
      reqs.push({ key, op: word === 'in' ? 'in' : 'notin', values });
    }
    skipWs();
    if (i >= s.length) break;
    if (s[i] !== ',') fail(`found '${s[i]}', expected: ','`);
    i++;
  }
  return reqs;
}

export function matchLabels(sel: LabelSelector, labels: Record<string, unknown> | undefined): boolean {
  for (const r of sel) {
    const has = labels !== undefined && typeof labels[r.key] === 'string';
    const v = has ? (labels![r.key] as string) : undefined;
    switch (r.op) {
      case 'eq':
        if (v !== r.values[0]) return false;
        break;
      case 'neq':
        if (v === r.values[0]) return false;
        break;
      case 'in':
        if (v === undefined || !r.values.includes(v)) return false;
        break;
      case 'notin':
        if (v !== undefined && r.values.includes(v)) return false;
        break;
      case 'exists':
        if (!has) return false;
        break;
      case '!exists':
        if (has) return false;
        break;
      case 'gt':
      case 'lt': {
        if (v === undefined || !/^-?\d+$/.test(v)) return false;
        const n = Number(v);
        const want = Number(r.values[0]);
        if (r.op === 'gt' ? !(n > want) : !(n < want)) return false;
        break;
      }
    }
  }
  return true;
}

/** A metav1.LabelSelector object ({matchLabels, matchExpressions}) as requirements. */
export function labelSelectorFromObject(sel: unknown): LabelSelector {
  const out: LabelSelector = [];
  if (!isObj(sel)) return out;
  if (isObj(sel.matchLabels)) for (const [k, v] of Object.entries(sel.matchLabels)) out.push({ key: k, op: 'eq', values: [String(v)] });
  if (Array.isArray(sel.matchExpressions)) {
    for (const e of sel.matchExpressions) {
      if (!isObj(e) || typeof e.key !== 'string') continue;
      const values = Array.isArray(e.values) ? e.values.map(String) : [];
      const op = e.operator === 'In' ? 'in' : e.operator === 'NotIn' ? 'notin' : e.operator === 'Exists' ? 'exists' : '!exists';
      out.push({ key: e.key, op, values });
    }
  }
  return out;
}

// ---- field selectors ----

export interface FieldRequirement {
  field: string;
  op: 'eq' | 'neq';
  value: string;
}

export type FieldSelector = FieldRequirement[];

/** Parse `metadata.name=x,spec.nodeName!=y` (`==` allowed; `\,` `\=` escapes). */
export function parseFieldSelector(input: string): FieldSelector {
  const out: FieldSelector = [];
  if (input.trim() === '') return out;
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === '\\' && i + 1 < input.length) {
      cur += c + input[i + 1];
      i++;
    } else if (c === ',') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  const unescape = (x: string): string => x.replace(/\\(.)/g, '$1');
  for (const p of parts) {
    const m = /^([^=!]+?)\s*(==|!=|=)\s*(.*)$/.exec(p.trim());
    if (!m) throw badRequest(`invalid selector: '${input}'; can't understand '${p}'`);
    out.push({ field: m[1]!.trim(), op: m[2] === '!=' ? 'neq' : 'eq', value: unescape(m[3]!.trim()) });
  }
  return out;
}

/** Field labels a resource supports beyond metadata.name / metadata.namespace (GetAttrs in kube-apiserver). */
export const extraFieldLabels: Record<string, string[]> = {
  '/events': [
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
  'events.k8s.io/events': ['regarding.kind', 'regarding.namespace', 'regarding.name', 'regarding.uid', 'reason', 'type', 'reportingController'],
  '/pods': ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  '/secrets': ['type'],
  '/nodes': ['spec.unschedulable'],
  '/namespaces': ['status.phase'],
  '/services': ['spec.clusterIP', 'spec.type'],
  'apps/replicasets': ['status.replicas'],
  'certificates.k8s.io/certificatesigningrequests': ['spec.signerName'],
};

export function checkFieldSelector(sel: FieldSelector, resourceKey: string): void {
  const extra = extraFieldLabels[resourceKey] ?? [];
  for (const r of sel) {
    if (r.field === 'metadata.name' || r.field === 'metadata.namespace' || extra.includes(r.field)) continue;
    throw badRequest(`field label not supported: ${r.field}`);
  }
}

function fieldValue(o: Obj, field: string): string {
  if (field === 'source') {
    const s = getPath(o, 'source.component');
    return typeof s === 'string' ? s : '';
  }
  const v = getPath(o, field);
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : String(v);
}

export function matchFields(sel: FieldSelector, o: Obj): boolean {
  for (const r of sel) {
    const v = fieldValue(o, r.field);
    if (r.op === 'eq' ? v !== r.value : v === r.value) return false;
  }
  return true;
}

/** A metav1.LabelSelector as the string form (`a=b,c in (d,e)`), as in Scale.status.selector. */
export function formatLabelSelector(sel: unknown): string {
  if (!isObj(sel)) return '';
  const parts: string[] = [];
  if (isObj(sel.matchLabels)) for (const k of Object.keys(sel.matchLabels).sort()) parts.push(`${k}=${String(sel.matchLabels[k])}`);
  if (Array.isArray(sel.matchExpressions))
    for (const e of sel.matchExpressions) {
      if (!isObj(e) || typeof e.key !== 'string') continue;
      const vals = Array.isArray(e.values) ? e.values.map(String).sort().join(',') : '';
      if (e.operator === 'In') parts.push(`${e.key} in (${vals})`);
      else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${vals})`);
      else if (e.operator === 'Exists') parts.push(e.key);
      else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    }
  return parts.join(',');
}
