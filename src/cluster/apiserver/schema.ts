// Structural schemas of CustomResourceDefinitions: pruning, defaulting and validation of custom resources,
// following apiextensions-apiserver (field paths and messages in its style).
import { createContext, Script } from 'node:vm';
import type { FieldError } from './errors.js';
import { clone, isObj, type Obj } from './util.js';

type Schema = Obj;

// `pattern`s are RE2 in kube-apiserver (linear time); here they are JavaScript regular expressions, which can
// backtrack for ever (`(a+)+$`). They run in a vm context with a timeout so that one object cannot stall the server.
const PATTERN_TIMEOUT_MS = 200;
const patternRegexps = new Map<string, RegExp | null>();
const patternCtx = createContext({ re: /(?:)/, s: '' }) as { re: RegExp; s: string };
const patternScript = new Script('re.test(s)');

/** Whether `value` matches `pattern`; undefined for an invalid pattern, 'timeout' when matching took too long. */
function matchPattern(pattern: string, value: string, timeoutMs = PATTERN_TIMEOUT_MS): boolean | 'timeout' | undefined {
  let re = patternRegexps.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      re = null;
    }
    if (patternRegexps.size >= 1000) patternRegexps.clear();
    patternRegexps.set(pattern, re);
  }
  if (re === null) return undefined;
  patternCtx.re = re;
  patternCtx.s = value;
  try {
    return patternScript.runInContext(patternCtx, { timeout: timeoutMs }) === true;
  } catch {
    return 'timeout';
  }
}

const METADATA_FIELDS = new Set([
  'name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
  'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields',
]);

const sub = (path: string, k: string): string => (path ? `${path}.${k}` : k);

const props = (s: Schema): Record<string, Schema> | undefined => (isObj(s.properties) ? (s.properties as Record<string, Schema>) : undefined);
const preserves = (s: Schema): boolean => s['x-kubernetes-preserve-unknown-fields'] === true;
const embedded = (s: Schema): boolean => s['x-kubernetes-embedded-resource'] === true;

/**
 * Remove fields the schema does not declare (unless x-kubernetes-preserve-unknown-fields), collecting their paths.
 * `root`: the object is a whole custom resource (apiVersion/kind/metadata are always kept).
 */
export function prune(value: unknown, s: Schema | undefined, path = '', root = false, unknown: string[] = []): unknown {
  if (s === undefined) return value;
  if (Array.isArray(value)) {
    const items = isObj(s.items) ? (s.items as Schema) : undefined;
    if (items) value.forEach((v, i) => (value[i] = prune(v, items, `${path}[${i}]`, false, unknown)));
    return value;
  }
  if (!isObj(value)) return value;
  const p = props(s);
  const addl = s.additionalProperties;
  const keepAll = preserves(s) || addl === true;
  for (const k of Object.keys(value)) {
    if ((root || embedded(s)) && (k === 'apiVersion' || k === 'kind')) continue;
    if ((root || embedded(s)) && k === 'metadata') {
      if (isObj(value.metadata)) {
        const m = value.metadata;
        for (const mk of Object.keys(m)) if (!METADATA_FIELDS.has(mk)) {
          unknown.push(sub(sub(path, 'metadata'), mk));
          delete m[mk];
        }
      }
      continue;
    }
    const ps = p?.[k];
    if (ps) value[k] = prune(value[k], ps, sub(path, k), false, unknown);
    else if (isObj(addl)) value[k] = prune(value[k], addl, sub(path, k), false, unknown);
    else if (!keepAll) {
      unknown.push(sub(path, k));
      delete value[k];
    }
  }
  return value;
}

/** Apply `default`s (and drop nulls of non-nullable fields first, like apiextensions-apiserver). */
export function applyDefaults(value: unknown, s: Schema | undefined): unknown {
  if (s === undefined) return value;
  if (Array.isArray(value)) {
    const items = isObj(s.items) ? (s.items as Schema) : undefined;
    if (items) value.forEach((v, i) => (value[i] = applyDefaults(v, items)));
    return value;
  }
  if (!isObj(value)) return value;
  const p = props(s);
  if (p) {
    for (const [k, ps] of Object.entries(p)) {
      if (value[k] === null && ps.nullable !== true) {
        if (ps.default !== undefined) value[k] = clone(ps.default);
        else delete value[k];
      }
      if (value[k] === undefined && ps.default !== undefined) value[k] = clone(ps.default);
      if (value[k] !== undefined) value[k] = applyDefaults(value[k], ps);
    }
  }
  if (isObj(s.additionalProperties)) {
    const as = s.additionalProperties as Schema;
    for (const k of Object.keys(value)) if (!p?.[k]) value[k] = applyDefaults(value[k], as);
  }
  return value;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const FORMATS: Record<string, (s: string) => boolean> = {
  ipv4: (s) => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(s),
  ipv6: (s) => s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s),
  cidr: (s) => /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(s),
  'date-time': (s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d{2}-\d{2}T/.test(s),
  date: (s) => /^\d{4}-\d{2}-\d{2}$/.test(s),
  uuid: (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
  byte: (s) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0,
  hostname: (s) => /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(s) && s.length <= 253,
};

/** Validate a value against a structural schema; `path` is the field path for messages (e.g. `spec.ports[0]`). */
export function validateSchema(value: unknown, s: Schema | undefined, path: string, errs: FieldError[] = []): FieldError[] {
  if (s === undefined) return errs;
  const at = path || '<root>';
  if (value === null) {
    if (s.nullable === true) return errs;
    if (s.type !== undefined) errs.push({ type: 'Invalid', field: at, value: null, detail: `${at} in body must be of type ${String(s.type)}: "null"` });
    return errs;
  }
  const t = typeOf(value);
  const intOrString = s['x-kubernetes-int-or-string'] === true;
  if (intOrString) {
    if (t !== 'integer' && t !== 'string') errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body must be of type integer,string: "${t}"` });
  } else if (typeof s.type === 'string') {
    const ok = s.type === t || (s.type === 'number' && t === 'integer');
    if (!ok) {
      errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body must be of type ${s.type}: "${t}"` });
      return errs;
    }
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
    errs.push({ type: 'NotSupported', field: at, value, detail: `supported values: ${s.enum.map((e) => JSON.stringify(e)).join(', ')}` });
  if (typeof value === 'number') {
    if (typeof s.minimum === 'number') {
      if (s.exclusiveMinimum === true ? !(value > s.minimum) : !(value >= s.minimum))
        errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body should be greater than ${s.exclusiveMinimum === true ? '' : 'or equal to '}${s.minimum}` });
    }
    if (typeof s.maximum === 'number') {
      if (s.exclusiveMaximum === true ? !(value < s.maximum) : !(value <= s.maximum))
        errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body should be less than ${s.exclusiveMaximum === true ? '' : 'or equal to '}${s.maximum}` });
    }
    if (typeof s.multipleOf === 'number' && s.multipleOf > 0 && Math.abs(value / s.multipleOf - Math.round(value / s.multipleOf)) > 1e-9)
      errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body should be a multiple of ${s.multipleOf}` });
    if (s.format === 'int32' && (value > 2147483647 || value < -2147483648))
      errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body must be of type int32: "${value}"` });
  }
  if (typeof value === 'string') {
    const len = [...value].length;
    if (typeof s.minLength === 'number' && len < s.minLength)
      errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body should be at least ${s.minLength} chars long` });
    if (typeof s.maxLength === 'number' && len > s.maxLength)
      errs.push({ type: 'TooLong', field: at, value, detail: `may not be more than ${s.maxLength} bytes` });
    if (typeof s.pattern === 'string') {
      const m = matchPattern(s.pattern, value);
      if (m === false) errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body should match '${s.pattern}'` });
      else if (m === 'timeout') errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body: matching the pattern '${s.pattern}' took too long` });
    }
    if (typeof s.format === 'string' && FORMATS[s.format] && !FORMATS[s.format]!(value))
      errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body must be of type ${s.format}: ${JSON.stringify(value)}` });
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === 'number' && value.length < s.minItems)
      errs.push({ type: 'Invalid', field: at, value: value.length, detail: `${at} in body should have at least ${s.minItems} items` });
    if (typeof s.maxItems === 'number' && value.length > s.maxItems)
      errs.push({ type: 'TooMany', field: at, value: value.length, detail: `must have at most ${s.maxItems} items` });
    const listType = s['x-kubernetes-list-type'];
    if (s.uniqueItems === true || listType === 'set') {
      const seen = new Set<string>();
      value.forEach((v, i) => {
        const k = JSON.stringify(v);
        if (seen.has(k)) errs.push({ type: 'Duplicate', field: `${path}[${i}]`, value: v });
        seen.add(k);
      });
    }
    if (listType === 'map' && Array.isArray(s['x-kubernetes-list-map-keys'])) {
      const keys = (s['x-kubernetes-list-map-keys'] as unknown[]).map(String);
      const seen = new Set<string>();
      value.forEach((v, i) => {
        if (!isObj(v)) return;
        const k = JSON.stringify(keys.map((kk) => v[kk]));
        if (seen.has(k)) errs.push({ type: 'Duplicate', field: `${path}[${i}]`, value: Object.fromEntries(keys.map((kk) => [kk, v[kk]])) });
        seen.add(k);
      });
    }
    if (isObj(s.items)) value.forEach((v, i) => validateSchema(v, s.items as Schema, `${path}[${i}]`, errs));
  }
  if (isObj(value)) {
    const p = props(s);
    if (Array.isArray(s.required)) {
      for (const r of s.required) if (typeof r === 'string' && value[r] === undefined) errs.push({ type: 'Required', field: sub(path, r) });
    }
    const n = Object.keys(value).length;
    if (typeof s.minProperties === 'number' && n < s.minProperties)
      errs.push({ type: 'Invalid', field: at, value: n, detail: `${at} in body should have at least ${s.minProperties} properties` });
    if (typeof s.maxProperties === 'number' && n > s.maxProperties)
      errs.push({ type: 'TooMany', field: at, value: n, detail: `must have at most ${s.maxProperties} items` });
    for (const [k, v] of Object.entries(value)) {
      if (path === '' && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
      const ps = p?.[k];
      if (ps) validateSchema(v, ps, sub(path, k), errs);
      else if (isObj(s.additionalProperties)) validateSchema(v, s.additionalProperties as Schema, sub(path, k), errs);
    }
  }
  // combinators: value-validation only (structural schemas forbid types in them)
  if (Array.isArray(s.allOf)) for (const x of s.allOf) if (isObj(x)) validateSchema(value, x, path, errs);
  if (Array.isArray(s.anyOf)) {
    const alts = s.anyOf.filter(isObj);
    if (alts.length && !alts.some((x) => validateSchema(value, x, path, []).length === 0))
      errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body must match at least one schema in anyOf` });
  }
  if (Array.isArray(s.oneOf)) {
    const alts = s.oneOf.filter(isObj);
    const matching = alts.filter((x) => validateSchema(value, x, path, []).length === 0).length;
    if (alts.length && matching !== 1)
      errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body must validate one and only one schema (oneOf)${matching === 0 ? '' : `. Found ${matching} valid alternatives`}` });
  }
  if (isObj(s.not) && validateSchema(value, s.not, path, []).length === 0)
    errs.push({ type: 'Invalid', field: at, value, detail: `${at} in body must not validate the schema (not)` });
  return errs;
}
