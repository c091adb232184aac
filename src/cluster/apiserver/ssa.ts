// A simplified server-side apply field manager: each applier's set of fields is kept in
// metadata.managedFields (FieldsV1 format); fields an applier applied before and no longer applies are
// removed, unless another applier still applies them. No conflict detection, no `Update` managers.
import type { ListStrategyFn } from './patch.js';
import { isObj, nowRFC3339, type Obj } from './util.js';

type FieldSet = Record<string, unknown>;

/** FieldsV1 of an applied configuration: `f:name` for fields, `k:{...}` for keyed list items, `v:json` for set items. */
export function fieldSetOf(config: unknown, fn: ListStrategyFn, path: string[] = []): FieldSet {
  const out: FieldSet = {};
  if (!isObj(config)) return out;
  for (const [k, v] of Object.entries(config)) {
    if (path.length === 0 && (k === 'apiVersion' || k === 'kind')) continue;
    if (path.length === 1 && path[0] === 'metadata' && (k === 'name' || k === 'namespace' || k === 'resourceVersion' || k === 'uid' || k === 'managedFields')) continue;
    const sub = [...path, k];
    if (Array.isArray(v)) {
      const strat = fn(sub);
      if (strat && 'mergeKey' in strat) {
        const items: FieldSet = {};
        for (const it of v) {
          if (!isObj(it) || it[strat.mergeKey] === undefined) continue;
          const itemKey = strat.protocolKeyed ? { [strat.mergeKey]: it[strat.mergeKey], protocol: it.protocol ?? 'TCP' } : { [strat.mergeKey]: it[strat.mergeKey] };
          items[`k:${JSON.stringify(itemKey)}`] = { '.': {}, ...fieldSetOf(it, fn, sub) };
        }
        out[`f:${k}`] = items;
      } else if (strat && 'primitive' in strat) {
        const items: FieldSet = {};
        for (const it of v) items[`v:${JSON.stringify(it)}`] = {};
        out[`f:${k}`] = items;
      } else out[`f:${k}`] = {};
    } else if (isObj(v) && Object.keys(v).length > 0) {
      out[`f:${k}`] = { '.': {}, ...fieldSetOf(v, fn, sub) };
    } else out[`f:${k}`] = {};
  }
  return out;
}

function removeNode(target: unknown, key: string): void {
  if (key.startsWith('f:')) {
    if (isObj(target)) delete target[key.slice(2)];
  }
}

/** Remove from `obj` what `oldSet` has and `newSet` and every `keep` set lack. */
function prune(target: unknown, oldSet: FieldSet, newSet: FieldSet | undefined, keep: FieldSet[]): void {
  for (const [key, sub] of Object.entries(oldSet)) {
    if (key === '.') continue;
    const inNew = newSet?.[key];
    const kept = keep.map((s) => s[key]).filter((x): x is FieldSet => isObj(x));
    if (inNew === undefined && kept.length === 0) {
      if (key.startsWith('f:')) removeNode(target, key);
      else if (Array.isArray(target)) {
        const idx = findItem(target, key);
        if (idx >= 0) target.splice(idx, 1);
      }
      continue;
    }
    if (!isObj(sub) || Object.keys(sub).length === 0) continue;
    let child: unknown;
    if (key.startsWith('f:')) child = isObj(target) ? target[key.slice(2)] : undefined;
    else if (Array.isArray(target)) {
      const idx = findItem(target, key);
      child = idx >= 0 ? target[idx] : undefined;
    }
    if (child !== undefined) prune(child, sub as FieldSet, isObj(inNew) ? (inNew as FieldSet) : undefined, kept);
  }
}

function findItem(list: unknown[], key: string): number {
  if (key.startsWith('k:')) {
    let want: unknown;
    try {
      want = JSON.parse(key.slice(2));
    } catch {
      return -1;
    }
    if (!isObj(want)) return -1;
    return list.findIndex((it) => isObj(it) && Object.entries(want as Obj).every(([k, v]) => JSON.stringify(it[k]) === JSON.stringify(v)));
  }
  if (key.startsWith('v:')) return list.findIndex((it) => JSON.stringify(it) === key.slice(2));
  return -1;
}

interface ManagedEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: FieldSet;
  subresource?: string;
}

/**
 * After merging an applied configuration into `merged`: drop the fields `manager` no longer applies and
 * record its new field set in metadata.managedFields. `previous` is the object before the apply.
 */
export function recordApply(merged: Obj, previous: Obj | undefined, manager: string, apiVersion: string, config: Obj, fn: ListStrategyFn): void {
  const entries: ManagedEntry[] = Array.isArray(previous && isObj(previous.metadata) ? previous.metadata.managedFields : undefined)
    ? ((previous!.metadata as Obj).managedFields as unknown[]).filter(isObj).map((e) => e as ManagedEntry)
    : [];
  const newSet = fieldSetOf(config, fn);
  const mine = entries.find((e) => e.manager === manager && e.operation === 'Apply' && !e.subresource);
  const others = entries.filter((e) => e !== mine && e.operation === 'Apply' && isObj(e.fieldsV1)).map((e) => e.fieldsV1 as FieldSet);
  if (mine && isObj(mine.fieldsV1)) prune(merged, mine.fieldsV1, newSet, others);
  const unchanged = mine !== undefined && mine.apiVersion === apiVersion && JSON.stringify(mine.fieldsV1) === JSON.stringify(newSet);
  const entry: ManagedEntry = unchanged ? mine : { manager, operation: 'Apply', apiVersion, time: nowRFC3339(), fieldsType: 'FieldsV1', fieldsV1: newSet };
  const meta = isObj(merged.metadata) ? merged.metadata : (merged.metadata = {});
  (meta as Obj).managedFields = unchanged ? entries : [...entries.filter((e) => e !== mine), entry];
}
