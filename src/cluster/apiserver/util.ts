// Small JSON helpers shared by the dev API server modules.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep copy of a JSON value (objects we store are plain JSON). */
export function clone<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => clone(x) as unknown) as T;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v as Obj)) if (x !== undefined) out[k] = clone(x);
  return out as T;
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Obj;
  const bo = b as Obj;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  for (const k of ak) if (!jsonEqual(ao[k], bo[k])) return false;
  return true;
}

export const meta = (o: Obj): Obj => {
  if (!isObj(o.metadata)) o.metadata = {};
  return o.metadata as Obj;
};

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const obj = (v: unknown): Obj => (isObj(v) ? v : {});

/** Read a dotted path (`spec.ports`) from an object. */
export function getPath(o: unknown, path: string | string[]): unknown {
  const parts = typeof path === 'string' ? path.split('.') : path;
  let cur: unknown = o;
  for (const p of parts) {
    if (!isObj(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

/** RFC 3339 timestamp with second precision, like the Kubernetes API. */
export const nowRFC3339 = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export function randomUID(): string {
  return crypto.randomUUID();
}
