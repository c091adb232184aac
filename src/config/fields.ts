// Typed reading of untrusted input (YAML, API objects). Every reader checks the type and reports a ConfigError
// through `Report` instead of throwing, so a single run collects every problem of every object.
export type Report = (field: string, message: string) => void;

export type JsonObject = Record<string, unknown>;

export const isRecord = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A non-empty list (MetalLB's `len(x) > 0` on an optional list field). */
export const hasEntries = (v: unknown): boolean => Array.isArray(v) && v.length > 0;

/** `a.b` / `a[2]` paths, as written in error messages. */
export const fieldPath = (base: string, key: string | number): string =>
  typeof key === 'number' ? `${base}[${key}]` : base ? `${base}.${key}` : key;

/** Short rendering of a bad value for messages: `"abc"`, `5`, `a list`, `an object`. */
export function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  return String(v);
}

const typeName = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v} (${show(v)})`;

export const wrongType = (expected: string, v: unknown): string => `must be ${expected}, got ${typeName(v)}`;

/** Reports every key of `obj` not in `allowed` (the CRDs' structural schemas accept no unknown fields). */
export function checkKnownFields(obj: JsonObject, allowed: readonly string[], path: string, report: Report): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) report(fieldPath(path, key), `unknown field (known fields: ${allowed.join(', ')})`);
  }
}

/** A list item (or spec) that must be an object with only `known` fields; undefined, reported, when not an object. */
export function readObject(v: unknown, path: string, report: Report, known: readonly string[], expected = 'an object'): JsonObject | undefined {
  if (!isRecord(v)) {
    report(path, wrongType(expected, v));
    return undefined;
  }
  checkKnownFields(v, known, path, report);
  return v;
}

/**
 * The readers below take the parent object and a key. Absent and null both mean "not set" (the API server drops
 * nulls on apply); a value of the wrong type is reported and also reads as not set.
 */
type FieldReader<T> = (obj: JsonObject, key: string, path: string, report: Report) => T | undefined;

/** A reader of an optional field whose value must pass `is` (described as `expected` in the error). */
function optionalField<T>(is: (v: unknown) => v is T, expected: string): FieldReader<T> {
  return (obj, key, path, report) => {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (is(v)) return v;
    report(fieldPath(path, key), wrongType(expected, v));
    return undefined;
  };
}

export const optObject = optionalField(isRecord, 'an object');
export const optList = optionalField((v): v is unknown[] => Array.isArray(v), 'a list');
export const optString = optionalField((v): v is string => typeof v === 'string', 'a string');
export const optBool = optionalField((v): v is boolean => typeof v === 'boolean', 'true or false');

/** A required non-empty string: absent, null or "" is reported as required, another type as the wrong type. */
export function requiredString(obj: JsonObject, key: string, path: string, report: Report): string | undefined {
  const v = optString(obj, key, path, report);
  if (v === '' || (v === undefined && (obj[key] === undefined || obj[key] === null))) report(fieldPath(path, key), 'is required');
  return v || undefined;
}

export interface IntRange {
  min: number;
  max: number;
}
export const UINT32: IntRange = { min: 0, max: 4294967295 };
export const INT32: IntRange = { min: -2147483648, max: 2147483647 };

export function optInt(obj: JsonObject, key: string, path: string, report: Report, range: IntRange): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  return checkInt(v, fieldPath(path, key), report, range);
}

export function checkInt(v: unknown, path: string, report: Report, range: IntRange): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    report(path, wrongType('an integer', v));
    return undefined;
  }
  if (v < range.min || v > range.max) {
    report(path, `${v} is out of range, must be between ${range.min} and ${range.max}`);
    return undefined;
  }
  return v;
}

/** A list of strings; non-string items are reported and dropped. */
export function optStringList(obj: JsonObject, key: string, path: string, report: Report): string[] | undefined {
  const list = optList(obj, key, path, report);
  if (!list) return undefined;
  const out: string[] = [];
  list.forEach((item, i) => {
    if (typeof item === 'string') out.push(item);
    else report(fieldPath(fieldPath(path, key), i), wrongType('a string', item));
  });
  return out;
}

/** Reports the second and later occurrences of a value (MetalLB's "duplicate definition of ..."). */
export function checkNoDuplicates(values: readonly string[], path: string, what: string, report: Report): void {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(v)) report(fieldPath(path, i), `duplicate definition of ${what} ${JSON.stringify(v)}`);
    seen.add(v);
  });
}

/** Stringly map (labels, matchLabels): every value must be a string. */
export function optStringMap(obj: JsonObject, key: string, path: string, report: Report): Record<string, string> | undefined {
  const m = optObject(obj, key, path, report);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v === 'string') out[k] = v;
    else report(fieldPath(fieldPath(path, key), k), wrongType('a string', v));
  }
  return out;
}
