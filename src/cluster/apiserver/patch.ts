// PATCH support: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch for built-in types.
import { clone, isObj, jsonEqual, type Obj } from './util.js';

export class PatchError extends Error {
  /** HTTP code the failure maps to: 422 for a patch that cannot be applied, 400 for a malformed one. */
  constructor(
    message: string,
    readonly code: 400 | 409 | 422 = 422,
  ) {
    super(message);
  }
}

// ---------------- JSON merge patch ----------------

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// ---------------- JSON patch ----------------

export interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function parsePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new PatchError(`invalid JSON pointer "${p}"`, 400);
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(tok: string, len: number, forAdd: boolean): number {
  if (tok === '-' && forAdd) return len;
  if (!/^(0|[1-9]\d*)$/.test(tok)) throw new PatchError(`invalid array index "${tok}"`);
  const i = Number(tok);
  if (i > len || (!forAdd && i >= len)) throw new PatchError(`array index ${i} out of bounds`);
  return i;
}

/** Walk to the parent container of the pointer's last token. */
function parentOf(doc: unknown, toks: string[], path: string): { parent: Obj | unknown[]; last: string } {
  let cur: unknown = doc;
  for (const t of toks.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(t, cur.length, false)];
    else if (isObj(cur)) {
      if (!Object.hasOwn(cur, t)) throw new PatchError(`doc is missing path: "${path}": missing value`);
      cur = cur[t];
    } else throw new PatchError(`doc is missing path: "${path}": missing value`);
  }
  if (!Array.isArray(cur) && !isObj(cur)) throw new PatchError(`doc is missing path: "${path}": missing value`);
  return { parent: cur, last: toks[toks.length - 1]! };
}

function getAt(doc: unknown, path: string): unknown {
  let cur = doc;
  for (const t of parsePointer(path)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(t, cur.length, false)];
    else if (isObj(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw new PatchError(`doc is missing path: "${path}": missing value`);
  }
  return cur;
}

function removeAt(doc: unknown, path: string): { doc: unknown; removed: unknown } {
  const toks = parsePointer(path);
  if (toks.length === 0) return { doc: undefined, removed: doc };
  const { parent, last } = parentOf(doc, toks, path);
  if (Array.isArray(parent)) {
    const i = arrayIndex(last, parent.length, false);
    return { doc, removed: parent.splice(i, 1)[0] };
  }
  if (!Object.hasOwn(parent, last)) throw new PatchError(`unable to remove nonexistent key: ${last}: missing value`);
  const removed = parent[last];
  delete parent[last];
  return { doc, removed };
}

function addAt(doc: unknown, path: string, value: unknown, replace: boolean): unknown {
  const toks = parsePointer(path);
  if (toks.length === 0) return value;
  const { parent, last } = parentOf(doc, toks, path);
  if (Array.isArray(parent)) {
    const i = arrayIndex(last, parent.length, !replace);
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else {
    if (replace && !Object.hasOwn(parent, last)) throw new PatchError(`replace operation does not apply: doc is missing key: ${path}: missing value`);
    parent[last] = value;
  }
  return doc;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('json patch must be an array of operations', 400);
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObj(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string')
      throw new PatchError(`invalid JSON patch operation: ${JSON.stringify(raw)}`, 400);
    const op = raw as unknown as JsonPatchOp;
    switch (op.op) {
      case 'add':
        if (!('value' in raw)) throw new PatchError('missing value for add operation', 400);
        doc = addAt(doc, op.path, clone(op.value), false);
        break;
      case 'replace':
        if (!('value' in raw)) throw new PatchError('missing value for replace operation', 400);
        doc = addAt(doc, op.path, clone(op.value), true);
        break;
      case 'remove':
        doc = removeAt(doc, op.path).doc;
        break;
      case 'move': {
        if (typeof op.from !== 'string') throw new PatchError('missing from for move operation', 400);
        const r = removeAt(doc, op.from);
        doc = addAt(r.doc, op.path, r.removed, false);
        break;
      }
      case 'copy':
        if (typeof op.from !== 'string') throw new PatchError('missing from for copy operation', 400);
        doc = addAt(doc, op.path, clone(getAt(doc, op.from)), false);
        break;
      case 'test':
        if (!jsonEqual(getAt(doc, op.path), op.value)) throw new PatchError(`testing value ${op.path} failed: test failed`);
        break;
      default:
        throw new PatchError(`Unexpected kind: ${op.op}`, 400);
    }
  }
  return doc;
}

// ---------------- strategic merge patch ----------------

/** How a list field merges: by a key, as a set of primitives, or replaced (the default). */
export type ListStrategy = { mergeKey: string; protocolKeyed?: true } | { primitive: true } | null;

/**
 * Ports are told apart by number AND protocol (server-side apply's listMapKeys containerPort+protocol and
 * port+protocol): merging by the number alone, as strategic merge's patchMergeKey says, folds MetalLB's
 * memberlist 7946/TCP and 7946/UDP into one port.
 */
const PORT_KEYED = { protocolKeyed: true } as const;

/** Whether two list items are the same item under a keyed strategy. */
export function sameListItem(a: Obj, b: Obj, strat: { mergeKey: string; protocolKeyed?: true }): boolean {
  if (!jsonEqual(a[strat.mergeKey], b[strat.mergeKey])) return false;
  return !strat.protocolKeyed || (a.protocol ?? 'TCP') === (b.protocol ?? 'TCP');
}

/** Merge keys of the built-in types (patchMergeKey / patchStrategy tags), by field-path suffix. */
const LIST_RULES: [string[], ListStrategy][] = [
  [['metadata', 'finalizers'], { primitive: true }],
  [['metadata', 'ownerReferences'], { mergeKey: 'uid' }],
  [['containers', 'ports'], { mergeKey: 'containerPort', ...PORT_KEYED }],
  [['initContainers', 'ports'], { mergeKey: 'containerPort', ...PORT_KEYED }],
  [['ephemeralContainers', 'ports'], { mergeKey: 'containerPort', ...PORT_KEYED }],
  [['containers'], { mergeKey: 'name' }],
  [['initContainers'], { mergeKey: 'name' }],
  [['ephemeralContainers'], { mergeKey: 'name' }],
  [['env'], { mergeKey: 'name' }],
  [['volumeMounts'], { mergeKey: 'mountPath' }],
  [['volumeDevices'], { mergeKey: 'devicePath' }],
  [['volumes'], { mergeKey: 'name' }],
  [['imagePullSecrets'], { mergeKey: 'name' }],
  [['hostAliases'], { mergeKey: 'ip' }],
  [['topologySpreadConstraints'], { mergeKey: 'topologyKey' }],
  [['resourceClaims'], { mergeKey: 'name' }],
  [['schedulingGates'], { mergeKey: 'name' }],
  [['conditions'], { mergeKey: 'type' }],
  [['spec', 'ports'], { mergeKey: 'port', ...PORT_KEYED }],
  [['status', 'addresses'], { mergeKey: 'type' }],
  [['spec', 'podCIDRs'], { primitive: true }],
];

export type ListStrategyFn = (path: string[]) => ListStrategy;

export const builtinListStrategy: ListStrategyFn = (path) => {
  for (const [suffix, strat] of LIST_RULES) {
    if (suffix.length > path.length) continue;
    let ok = true;
    for (let i = 0; i < suffix.length; i++) if (path[path.length - suffix.length + i] !== suffix[i]) ok = false;
    if (!ok) continue;
    // `spec.ports` is the Service's port list only at the top level (containers have their own rule).
    if (suffix[0] === 'spec' && path.length !== suffix.length) continue;
    if (suffix[0] === 'status' && suffix[1] === 'addresses' && path.length !== 2) continue;
    return strat;
  }
  return null;
};

/** No merge keys known: lists are replaced (used for custom resources under apply). */
export const noListStrategy: ListStrategyFn = () => null;

const SET_ORDER = '$setElementOrder/';
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/';

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((x) => !(isObj(x) && x.$patch !== undefined && Object.keys(x).length === 1)).map(stripDirectives);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith('$')) continue;
    if (x === null) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

function orderBy(list: unknown[], order: unknown[], key: string | null): unknown[] {
  const idx = (x: unknown): number => {
    const kv = key === null ? x : isObj(x) ? x[key] : undefined;
    const i = order.findIndex((o) => (key === null ? jsonEqual(o, kv) : isObj(o) && jsonEqual(o[key], kv)));
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  return list
    .map((x, i) => ({ x, i, o: idx(x) }))
    .sort((a, b) => a.o - b.o || a.i - b.i)
    .map((e) => e.x);
}

function mergeList(orig: unknown, patch: unknown[], strat: ListStrategy, path: string[], fn: ListStrategyFn): unknown[] {
  if (strat === null) return stripDirectives(patch) as unknown[];
  if (patch.some((x) => isObj(x) && x.$patch === 'replace')) return stripDirectives(patch) as unknown[];
  const result = Array.isArray(orig) ? [...orig] : [];
  if ('primitive' in strat) {
    for (const p of patch) if (!result.some((r) => jsonEqual(r, p))) result.push(p);
    return result;
  }
  for (const p of patch) {
    if (!isObj(p)) {
      result.push(p);
      continue;
    }
    const i = result.findIndex((r) => isObj(r) && sameListItem(r, p, strat));
    if (p.$patch === 'delete') {
      if (i >= 0) result.splice(i, 1);
      continue;
    }
    if (i >= 0) result[i] = strategicMerge(result[i], p, path, fn);
    else result.push(strategicMerge({}, p, path, fn));
  }
  return result;
}

/**
 * Strategic merge patch of `patch` onto `original`. `path` is the field path (no list indices) used to look up
 * list strategies; `fn` maps a path to the list's merge strategy.
 */
export function strategicMerge(original: unknown, patch: unknown, path: string[] = [], fn: ListStrategyFn = builtinListStrategy): unknown {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'replace') return stripDirectives(patch);
  if (patch.$patch === 'delete') return undefined;
  if (patch.$patch !== undefined && patch.$patch !== 'merge') throw new PatchError(`Unknown patch type: ${String(patch.$patch)}`);
  const out: Obj = isObj(original) ? { ...original } : {};
  const orders: [string, unknown[]][] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith(SET_ORDER)) {
      if (Array.isArray(v)) orders.push([k.slice(SET_ORDER.length), v]);
      continue;
    }
    if (k.startsWith(DELETE_PRIMITIVE)) {
      const f = k.slice(DELETE_PRIMITIVE.length);
      if (Array.isArray(v) && Array.isArray(out[f])) out[f] = (out[f] as unknown[]).filter((x) => !v.some((d) => jsonEqual(d, x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const sub = [...path, k];
    if (Array.isArray(v)) out[k] = mergeList(out[k], v, fn(sub), sub, fn);
    else if (isObj(v)) {
      const r = strategicMerge(out[k], v, sub, fn);
      if (r === undefined) delete out[k];
      else out[k] = r;
    } else out[k] = v;
  }
  for (const [f, order] of orders) {
    if (!Array.isArray(out[f])) continue;
    const strat = fn([...path, f]);
    const key = strat && 'mergeKey' in strat ? strat.mergeKey : null;
    out[f] = orderBy(out[f] as unknown[], order, key);
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys.map(String));
    for (const k of Object.keys(out)) if (!keep.has(k) && !Object.hasOwn(patch, k)) delete out[k];
  }
  return out;
}
