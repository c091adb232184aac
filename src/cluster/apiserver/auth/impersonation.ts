// Impersonation headers (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`, `Impersonate-Extra-<key>`), as
// kube-apiserver's WithImpersonation filter handles them: each part is authorized with the `impersonate` verb on
// users / groups / serviceaccounts / uids / userextras, and the request then runs as the impersonated user.
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../errors.js';
import { forbiddenError, type Authorizer } from './authz.js';
import type { Attributes } from './request-info.js';
import { ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS_USER, parseServiceAccountUsername, serviceAccountGroups, type UserInfo } from './user.js';

const EXTRA_PREFIX = 'impersonate-extra-';

interface Part {
  attrs: Omit<Attributes, 'user'>;
}

const base = { resourceRequest: true, path: '', verb: 'impersonate', apiVersion: '', subresource: '', namespace: '' };

/** The impersonated user, or undefined when the request impersonates nobody. Throws 403/500 ApiErrors. */
export function impersonate(req: IncomingMessage, requestor: UserInfo, authz: Authorizer): UserInfo | undefined {
  const h = req.headersDistinct;
  const userH = h['impersonate-user']?.[0];
  const groupsH = h['impersonate-group'] ?? [];
  const uidH = h['impersonate-uid']?.[0];
  const extraKeys = Object.keys(h).filter((k) => k.startsWith(EXTRA_PREFIX));
  if (userH === undefined && groupsH.length === 0 && uidH === undefined && extraKeys.length === 0) return undefined;
  if (userH === undefined) {
    const what = [...groupsH.map((g) => `group ${g}`), ...(uidH !== undefined ? [`uid ${uidH}`] : []), ...extraKeys.map((k) => `extra ${k.slice(EXTRA_PREFIX.length)}`)];
    throw new ApiError(500, 'InternalError', `Internal error occurred: requested [${what.join(' ')}] without impersonating a user`);
  }
  const parts: Part[] = [];
  let username = userH;
  let groups: string[] = [];
  const extra: Record<string, string[]> = {};
  const sa = parseServiceAccountUsername(userH);
  if (sa) parts.push({ attrs: { ...base, apiGroup: '', resource: 'serviceaccounts', namespace: sa[0], name: sa[1] } });
  else parts.push({ attrs: { ...base, apiGroup: '', resource: 'users', name: userH } });
  for (const g of groupsH) {
    parts.push({ attrs: { ...base, apiGroup: '', resource: 'groups', name: g } });
    groups.push(g);
  }
  if (sa && groupsH.length === 0) groups = serviceAccountGroups(sa[0]);
  for (const k of extraKeys) {
    // header names are case-insensitive; the key is percent-decoded like kube does
    const key = decodeURIComponent(k.slice(EXTRA_PREFIX.length));
    for (const v of h[k] ?? []) {
      parts.push({ attrs: { ...base, apiGroup: 'authentication.k8s.io', resource: 'userextras', subresource: key, name: v } });
      (extra[key] ??= []).push(v);
    }
  }
  if (uidH !== undefined) parts.push({ attrs: { ...base, apiGroup: 'authentication.k8s.io', resource: 'uids', name: uidH } });
  for (const p of parts) {
    const a: Attributes = { ...p.attrs, user: requestor };
    const d = authz.authorize(a);
    if (!d.allowed) throw forbiddenError(a, d.reason);
  }
  if (username === ANONYMOUS_USER) {
    if (!groups.includes(ALL_UNAUTHENTICATED)) groups.push(ALL_UNAUTHENTICATED);
  } else if (!groups.includes(ALL_AUTHENTICATED)) groups.push(ALL_AUTHENTICATED);
  username = userH;
  return { username, groups, ...(uidH !== undefined ? { uid: uidH } : {}), ...(Object.keys(extra).length ? { extra } : {}) };
}
