// Query parameters read the way kube-apiserver's parameter codec converts them (k8s.io/apimachinery/pkg/apis/meta/v1
// conversion): a boolean is false only when absent, `0` or `false` in any case, and true for anything else
// (`watch=True` from the Python client, `watch=1`, even `watch=`); integers go through Go's strconv.ParseInt and a bad
// one is a 400 carrying strconv's message. Only the first value of a repeated parameter counts.
import { badRequest } from './errors.js';

export function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null) return false;
  return !(v === '0' || v.toLowerCase() === 'false');
}

/** An optional boolean (`*bool` fields such as sendInitialEvents and force): undefined when absent. */
export function queryOptBool(q: URLSearchParams, name: string): boolean | undefined {
  return q.has(name) ? queryBool(q, name) : undefined;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.ParseInt(s, 10, 64), with its error text. */
export function parseGoInt64(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(s)}: invalid syntax`);
  const b = BigInt(s);
  if (b < INT64_MIN || b > INT64_MAX) throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(s)}: value out of range`);
  return Number(b);
}

/** An optional int64 parameter: undefined when absent. */
export function queryInt(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  return v === null ? undefined : parseGoInt64(v);
}

/** RFC 3339 time parameters (sinceTime). */
export function queryTime(q: URLSearchParams, name: string): Date | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw badRequest(`parsing time ${JSON.stringify(v)} as "2006-01-02T15:04:05Z07:00": cannot parse ${JSON.stringify(v)} as RFC 3339`);
  return new Date(t);
}
