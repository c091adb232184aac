// Community objects: named aliases for community values, unique across all Community objects.
import type { CommunityValue } from './types.js';
import { checkKnownFields, fieldPath, optList, optString, readObject, requiredString, show, type Report } from './fields.js';
import { parseCommunity } from './community.js';
import { readSpec, type Envelope } from './object.js';

export interface AliasTable {
  /** Valid aliases. */
  values: Map<string, CommunityValue>;
  /** Every alias name seen, valid or not: a reference to a broken alias is not reported a second time. */
  names: Set<string>;
}

export function parseCommunityObjects(envs: readonly Envelope[]): AliasTable {
  const table: AliasTable = { values: new Map(), names: new Set() };
  for (const env of envs) {
    const spec = readSpec(env, false) ?? {};
    checkKnownFields(spec, ['communities'], 'spec', env.report);
    const list = optList(spec, 'communities', 'spec', env.report) ?? [];
    list.forEach((item, i) => readAlias(item, fieldPath('spec.communities', i), env.report, table));
  }
  return table;
}

function readAlias(raw: unknown, path: string, report: Report, table: AliasTable): void {
  const item = readObject(raw, path, report, ['name', 'value'], 'an object with name and value');
  if (!item) return;
  const name = requiredString(item, 'name', path, report);
  const value = optString(item, 'value', path, report);
  if (!name) return;
  if (table.names.has(name)) {
    report(fieldPath(path, 'name'), `duplicate definition of community ${show(name)}`);
    return;
  }
  table.names.add(name);
  if (value === undefined) {
    if (item.value === undefined || item.value === null) report(fieldPath(path, 'value'), 'is required');
    return;
  }
  const parsed = parseCommunity(value);
  if (parsed.ok) table.values.set(name, parsed.value);
  else report(fieldPath(path, 'value'), `parsing community ${show(name)}: ${parsed.message}`);
}
