// Helpers for the deploy/ tests: YAML loading, CRD schemas as JSON Schema (ajv), and a small RBAC evaluator.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Ajv, type ValidateFunction } from 'ajv';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEPLOY = join(ROOT, 'deploy');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'deploy');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

/** Parses a multi-document YAML file (YAML 1.1 like kubectl, so 0644 is octal); throws on any syntax error. */
export function loadYamlDocs(path: string): Obj[] {
  const text = readFileSync(path, 'utf8');
  const docs = parseAllDocuments(text, { version: '1.1' });
  const out: Obj[] = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${path}: ${d.errors.map((e) => e.message).join('; ')}`);
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) continue;
    out.push(v as Obj);
  }
  return out;
}

export function walkFiles(dir: string, pred: (p: string) => boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walkFiles(p, pred));
    else if (pred(p)) out.push(p);
  }
  return out;
}

export function loadCrds(dir = join(DEPLOY, 'crds')): Obj[] {
  return walkFiles(dir, (p) => p.endsWith('.yaml')).flatMap((p) => loadYamlDocs(p));
}

/** examples/config.yaml (the config engineer's) when present, plus our own fixture. */
export function exampleFiles(): string[] {
  const files = [join(FIXTURES, 'valid.yaml')];
  const examples = join(ROOT, 'examples', 'config.yaml');
  if (existsSync(examples)) files.push(examples);
  return files;
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAPI v3 (Kubernetes structural schema) -> JSON Schema for ajv.
// Differences handled: `nullable` becomes a 'null' type; x-kubernetes-* extensions are dropped (CEL rules are not
// evaluated here); objects with `properties` and no `additionalProperties` reject unknown fields, as the API server
// does with strict field validation (kubectl's default) instead of pruning; `metadata` stays open (the API server
// validates ObjectMeta itself); int32/int64 formats are checked as ranges.

export function toJsonSchema(s: Obj, path: string[] = []): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-')) continue;
    if (k === 'nullable') continue;
    if (k === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(v as Obj).map(([pk, pv]) => [pk, toJsonSchema(pv as Obj, [...path, pk])]),
      );
    } else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) {
      out[k] = toJsonSchema(v as Obj, [...path, k]);
    } else {
      out[k] = v;
    }
  }
  if (s.nullable && typeof s.type === 'string') out.type = [s.type, 'null'];
  if (s['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  const isMetadata = path.length === 1 && path[0] === 'metadata';
  if (s.type === 'object' && !isMetadata && out.additionalProperties === undefined && !s['x-kubernetes-preserve-unknown-fields']) {
    out.additionalProperties = false;
  }
  return out;
}

export function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('date-time', (t: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(t));
  return ajv;
}

export interface Validators {
  /** Validates (and defaults, in place) one object; returns the ajv errors or null. */
  validate(obj: Obj): { ok: boolean; errors: string };
  has(apiVersion: string, kind: string): boolean;
}

export function crdValidators(crds: Obj[] = loadCrds()): Validators {
  const ajv = newAjv();
  const byKey = new Map<string, ValidateFunction>();
  for (const crd of crds) {
    for (const v of crd.spec.versions as Obj[]) {
      const key = `${crd.spec.group}/${v.name}|${crd.spec.names.kind}`;
      byKey.set(key, ajv.compile(toJsonSchema(v.schema.openAPIV3Schema)));
    }
  }
  return {
    has: (apiVersion, kind) => byKey.has(`${apiVersion}|${kind}`),
    validate(obj) {
      const fn = byKey.get(`${obj.apiVersion}|${obj.kind}`);
      if (!fn) return { ok: false, errors: `no CRD for ${obj.apiVersion} ${obj.kind}` };
      const ok = fn(obj) as boolean;
      return { ok, errors: ok ? '' : ajv.errorsText(fn.errors) };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// RBAC: which rules apply to a ServiceAccount, and whether a request is allowed.

export interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Grant {
  rules: Rule[];
  /** Namespace the rules are limited to (Role), or undefined for cluster-wide (ClusterRole + ClusterRoleBinding). */
  namespace?: string;
}

export function grantsFor(objects: Obj[], namespace: string, sa: string): Grant[] {
  const roles = new Map<string, Obj>();
  for (const o of objects) {
    if (o.kind === 'ClusterRole') roles.set(`ClusterRole//${o.metadata.name}`, o);
    if (o.kind === 'Role') roles.set(`Role/${o.metadata.namespace}/${o.metadata.name}`, o);
  }
  const grants: Grant[] = [];
  for (const b of objects) {
    if (b.kind !== 'ClusterRoleBinding' && b.kind !== 'RoleBinding') continue;
    const subjects = (b.subjects ?? []) as Obj[];
    if (!subjects.some((s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === namespace)) continue;
    const ref = b.roleRef as Obj;
    const role =
      ref.kind === 'ClusterRole'
        ? roles.get(`ClusterRole//${ref.name}`)
        : roles.get(`Role/${b.metadata.namespace}/${ref.name}`);
    if (!role) throw new Error(`${b.kind} ${b.metadata.name} refers to missing ${ref.kind} ${ref.name}`);
    grants.push({
      rules: role.rules ?? [],
      namespace: b.kind === 'RoleBinding' ? b.metadata.namespace : undefined,
    });
  }
  return grants;
}

export interface Request {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

export function allowed(grants: Grant[], r: Request): boolean {
  const has = (list: string[] | undefined, v: string) => !!list && (list.includes('*') || list.includes(v));
  return grants.some(
    (g) =>
      (g.namespace === undefined || g.namespace === r.namespace) &&
      g.rules.some(
        (rule) =>
          has(rule.verbs, r.verb) &&
          has(rule.apiGroups, r.group) &&
          has(rule.resources, r.resource) &&
          (!rule.resourceNames || rule.resourceNames.length === 0 || (r.name !== undefined && rule.resourceNames.includes(r.name))),
      ),
  );
}
