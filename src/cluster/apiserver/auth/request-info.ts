// The authorization attributes of a request, derived from its method, path and query exactly as kube-apiserver's
// RequestInfoFactory does (k8s.io/apiserver/pkg/endpoints/request): resource vs non-resource requests, the verb
// (list/watch/deletecollection for collections), namespace, name, subresource, and the name of a list or watch
// restricted to one object by a `metadata.name` field selector (MetalLB's `list` on the `memberlist` secret relies on it).
import { queryBool } from '../params.js';
import type { UserInfo } from './user.js';

export interface RequestInfo {
  resourceRequest: boolean;
  /** the URL path (non-resource requests are authorized on it) */
  path: string;
  verb: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

export interface Attributes extends RequestInfo {
  user: UserInfo;
}

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS = new Set(['api']);
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/** A valid path segment name (k8s.io/apimachinery/pkg/api/validation/path.IsValidPathSegmentName). */
const validPathSegment = (n: string): boolean => n !== '.' && n !== '..' && !n.includes('/') && !n.includes('%');

/** `metadata.name=X` (or `==`) as the only requirement on that field, the way fields.Selector.RequiresExactMatch reads it. */
function exactName(fieldSelector: string | null): string | undefined {
  if (!fieldSelector) return undefined;
  let found: string | undefined;
  for (const part of fieldSelector.split(',')) {
    const m = /^\s*metadata\.name\s*(==|=)\s*(.*?)\s*$/.exec(part);
    if (m) found = m[2];
  }
  return found;
}

export function requestInfo(method: string, rawPath: string, query: URLSearchParams): RequestInfo {
  const path = rawPath;
  const info: RequestInfo = { resourceRequest: false, path, verb: method.toLowerCase(), apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '' };
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  let parts = trimmed === '' ? [] : trimmed.split('/');
  try {
    parts = parts.map(decodeURIComponent);
  } catch {
    return info;
  }
  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return info;
  const prefix = parts[0]!;
  parts = parts.slice(1);
  let group = '';
  if (!GROUPLESS.has(prefix)) {
    if (parts.length < 3) return info;
    group = parts[0]!;
    parts = parts.slice(1);
  }
  const out: RequestInfo = { ...info, resourceRequest: true, apiGroup: group, apiVersion: parts[0]!, verb: '' };
  parts = parts.slice(1);
  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) return { ...out, resourceRequest: false };
    out.verb = parts[0]!;
    parts = parts.slice(1);
  } else out.verb = METHOD_VERBS[method] ?? '';
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      out.namespace = parts[1]!;
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
    }
  }
  out.resource = parts[0] ?? '';
  if (parts.length >= 2) out.name = parts[1]!;
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(out.verb)) out.subresource = parts[2]!;
  if (out.name === '' && out.verb === 'get') {
    out.verb = queryBool(query, 'watch') ? 'watch' : 'list';
    const n = exactName(query.get('fieldSelector'));
    if (n !== undefined && validPathSegment(n) && n !== '') out.name = n;
  }
  if (out.name === '' && out.verb === 'delete') out.verb = 'deletecollection';
  return out;
}
