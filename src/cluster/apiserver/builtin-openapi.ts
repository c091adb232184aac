// OpenAPI v3 component schemas of the built-in kinds, so that `kubectl explain pod.spec.containers` works as on a
// real cluster. Built from @kubernetes/client-node's generated models (their attribute maps give fields and types;
// the doc comments of their .d.ts files the descriptions and which fields are required), which come from the
// same upstream OpenAPI document. Patch strategies are deliberately absent, and the operations do not offer
// strategic merge patch, so kubectl keeps computing `apply` patches from its compiled-in types.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { builtinModel, builtinModelNameForKind } from './builtin-fields.js';
import type { Obj } from './util.js';

interface Attr {
  baseName: string;
  type: string;
  format: string;
}

const ARRAY_RE = /^Array<(.+)>$/;
const MAP_RE = /^\{ \[key: string\]: (.+); \}$/;
/** Maps of resource quantities: `cpu: 1` is as good as `cpu: "1"`. */
const QUANTITY_MAPS = new Set(['limits', 'requests', 'capacity', 'allocatable', 'hard', 'used', 'overhead', 'allocatedResources']);

// kube's names for these two, which explain shows as the field's type (`<IntOrString>`, `<map[string]Quantity>`)
const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';
const SCALAR_SCHEMAS: Obj = {
  [INT_OR_STRING]: {
    description: 'IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.',
    'x-kubernetes-int-or-string': true,
  },
  [QUANTITY]: {
    description: "Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors. The serialization format is: <quantity> ::= <signedNumber><suffix> (e.g. 100m, 1Gi, 500Mi).",
    'x-kubernetes-int-or-string': true,
  },
};

const OBJECT_META_DOC = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

let modelsDir: string | undefined | null;
function dtsPath(model: string): string | undefined {
  if (modelsDir === undefined) {
    try {
      modelsDir = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')), 'gen', 'models');
    } catch {
      modelsDir = null;
    }
  }
  return modelsDir ? join(modelsDir, `${model}.d.ts`) : undefined;
}

interface Docs {
  description?: string;
  fields: Map<string, string>;
  required: Set<string>;
}

const docsCache = new Map<string, Docs>();

/** Descriptions and required fields from a model's .d.ts (its doc comments and `'name':` vs `'name'?:`). */
function docsOf(model: string): Docs {
  const cached = docsCache.get(model);
  if (cached) return cached;
  const docs: Docs = { fields: new Map(), required: new Set() };
  const path = dtsPath(model);
  let text = '';
  try {
    if (path) text = readFileSync(path, 'utf8');
  } catch {
    // no descriptions then
  }
  const unescape = (s: string): string => s.replace(/\\(['"\\])/g, '$1').trim();
  const cls = /\/\*\*\n\* ([\s\S]*?)\n\*\/\nexport declare class /.exec(text);
  if (cls) docs.description = unescape(cls[1]!.replace(/\n\* ?/g, '\n'));
  const body = text.slice(text.indexOf('export declare class '));
  const fieldRe = /(?:\/\*\*\n\s*\* ((?:(?!\*\/)[\s\S])*?)\n\s*\*\/\n)?\s*'([^']+)'(\?)?:/g;
  for (let m = fieldRe.exec(body); m; m = fieldRe.exec(body)) {
    if (m[1]) docs.fields.set(m[2]!, unescape(m[1].replace(/\n\s*\* ?/g, '\n')));
    if (!m[3]) docs.required.add(m[2]!);
  }
  docsCache.set(model, docs);
  return docs;
}

/** `V1PodSpec` → `io.k8s.v1.PodSpec`: explain names a type by the last part of its schema id. */
function schemaId(model: string): string {
  const m = /^((?:[A-Z][a-z]+)*V\d+(?:alpha\d+|beta\d+)?)([A-Z].*)$/.exec(model);
  return m ? `io.k8s.${m[1]!.toLowerCase()}.${m[2]!}` : `io.k8s.${model}`;
}

const ref = (model: string): Obj => ({ $ref: `#/components/schemas/${schemaId(model)}` });

/** The schema of a value of client-node type `type`; referenced models are added to `pending`. */
function typeSchema(type: string, format: string, pending: Set<string>, quantity = false): Obj {
  const arrM = ARRAY_RE.exec(type);
  if (arrM) return { type: 'array', items: typeSchema(arrM[1]!, '', pending, quantity) };
  const mapM = MAP_RE.exec(type);
  if (mapM) return { type: 'object', additionalProperties: typeSchema(mapM[1]!, '', pending, quantity) };
  if (format === 'int-or-string' || type === 'IntOrString') return { allOf: [{ $ref: `#/components/schemas/${INT_OR_STRING}` }] };
  if (quantity && type === 'string') return { allOf: [{ $ref: `#/components/schemas/${QUANTITY}` }] };
  switch (type) {
    case 'string':
      return format ? { type: 'string', format } : { type: 'string' };
    case 'number':
      return format === 'int32' || format === 'int64' ? { type: 'integer', format } : { type: 'number', ...(format ? { format } : {}) };
    case 'boolean':
      return { type: 'boolean' };
    case 'Date':
      return { type: 'string', format: format || 'date-time' };
    case 'any':
      return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  }
  if (builtinModel(type)) {
    pending.add(type);
    return { allOf: [ref(type)] };
  }
  return {};
}

function modelSchema(model: string, attrs: Attr[], pending: Set<string>): Obj {
  const docs = docsOf(model);
  const properties: Obj = {};
  for (const a of attrs) {
    const s = typeSchema(a.type, a.format, pending, QUANTITY_MAPS.has(a.baseName));
    // the generator drops the descriptions of fields whose type is a model (explain shows the model's own instead)
    const description = docs.fields.get(a.baseName) ?? (a.baseName === 'metadata' && a.type === 'V1ObjectMeta' ? OBJECT_META_DOC : undefined);
    properties[a.baseName] = description ? { ...s, description } : s;
  }
  const required = attrs.map((a) => a.baseName).filter((n) => docs.required.has(n));
  return {
    type: 'object',
    ...(docs.description ? { description: docs.description } : {}),
    properties,
    ...(required.length ? { required } : {}),
  };
}

/**
 * Component schemas for the kinds of one group/version (and every type they use), keyed as explain expects:
 * each kind's schema carries `x-kubernetes-group-version-kind`.
 */
export function builtinComponentSchemas(group: string, version: string, kinds: readonly string[]): Obj {
  // the models never change while the server runs: build each group version's schemas once
  const key = `${group}/${version}/${kinds.join(',')}`;
  const built = schemaCache.get(key);
  if (built) return { ...built };
  const schemas = buildSchemas(group, version, kinds);
  schemaCache.set(key, schemas);
  return { ...schemas };
}

const schemaCache = new Map<string, Obj>();

function buildSchemas(group: string, version: string, kinds: readonly string[]): Obj {
  const schemas: Obj = { ...SCALAR_SCHEMAS };
  const pending = new Set<string>();
  const gvkOf = new Map<string, string>();
  for (const kind of kinds) {
    const name = builtinModelNameForKind(group, kind, version);
    if (!name) continue;
    gvkOf.set(name, kind);
    pending.add(name);
  }
  const done = new Set<string>();
  while (pending.size) {
    const name = pending.values().next().value as string;
    pending.delete(name);
    if (done.has(name)) continue;
    done.add(name);
    const m = builtinModel(name);
    if (!m) continue;
    const s = modelSchema(name, m.getAttributeTypeMap() as Attr[], pending);
    const kind = gvkOf.get(name);
    schemas[schemaId(name)] = kind ? { ...s, 'x-kubernetes-group-version-kind': [{ group, version, kind }] } : s;
  }
  return schemas;
}
