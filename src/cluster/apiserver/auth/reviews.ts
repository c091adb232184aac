// The access and identity review resources (create-only, never stored), as kube-apiserver serves them:
// authorization.k8s.io/v1 SelfSubjectAccessReview (`kubectl auth can-i`), SubjectAccessReview,
// LocalSubjectAccessReview, SelfSubjectRulesReview (`kubectl auth can-i --list`); authentication.k8s.io/v1
// SelfSubjectReview (`kubectl auth whoami`) and TokenReview.
import { badRequest, invalid, type FieldError } from '../errors.js';
import { isObj, obj, type Obj } from '../util.js';
import type { Authenticator } from './authn.js';
import type { Authorizer } from './authz.js';
import type { PolicyRule } from './rbac.js';
import type { Attributes } from './request-info.js';
import type { UserInfo } from './user.js';

export interface ReviewContext {
  user: UserInfo;
  authorizer: Authorizer;
  authenticator: Authenticator;
  apiAudiences: string[];
  /** namespace from the URL (LocalSubjectAccessReview) */
  namespace?: string;
}

const s = (v: unknown): string => (typeof v === 'string' ? v : '');
const strList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function extraOf(v: unknown): Record<string, string[]> | undefined {
  if (!isObj(v)) return undefined;
  const out: Record<string, string[]> = {};
  for (const [k, x] of Object.entries(v)) out[k] = strList(x);
  return out;
}

/** Authorization attributes from a review's spec; exactly one of resource / non-resource attributes. */
function attributesOf(kind: string, spec: Obj, user: UserInfo): Attributes {
  const ra = spec.resourceAttributes;
  const nra = spec.nonResourceAttributes;
  if (isObj(ra) === isObj(nra)) {
    const errs: FieldError[] = [
      { type: 'Invalid', field: 'spec.resourceAttributes', value: ra ?? null, detail: 'exactly one of nonResourceAttributes or resourceAttributes must be specified' },
    ];
    throw invalid('authorization.k8s.io', kind, '', errs);
  }
  if (isObj(ra))
    return {
      user,
      resourceRequest: true,
      path: '',
      verb: s(ra.verb),
      apiGroup: s(ra.group),
      apiVersion: s(ra.version),
      resource: s(ra.resource),
      subresource: s(ra.subresource),
      namespace: s(ra.namespace),
      name: s(ra.name),
    };
  const n = obj(nra);
  return { user, resourceRequest: false, path: s(n.path), verb: s(n.verb), apiGroup: '', apiVersion: '', resource: '', subresource: '', namespace: '', name: '' };
}

function accessStatus(authz: Authorizer, a: Attributes): Obj {
  const d = authz.authorize(a);
  return { allowed: d.allowed, ...(d.reason ? { reason: d.reason } : {}) };
}

const echo = (body: Obj, kind: string, apiVersion: string, status: Obj): Obj => {
  const m = obj(body.metadata);
  return { kind, apiVersion, metadata: { ...m, creationTimestamp: null }, spec: obj(body.spec), status };
};

export function selfSubjectAccessReview(body: Obj, c: ReviewContext): Obj {
  const a = attributesOf('SelfSubjectAccessReview', obj(body.spec), c.user);
  return echo(body, 'SelfSubjectAccessReview', 'authorization.k8s.io/v1', accessStatus(c.authorizer, a));
}

function subjectOf(kind: string, spec: Obj): UserInfo {
  const username = s(spec.user);
  const groups = strList(spec.groups);
  if (!username && groups.length === 0)
    throw invalid('authorization.k8s.io', kind, '', [{ type: 'Invalid', field: 'spec.user', value: '', detail: 'at least one of user or group must be specified' }]);
  const extra = extraOf(spec.extra);
  return { username, groups, ...(s(spec.uid) ? { uid: s(spec.uid) } : {}), ...(extra ? { extra } : {}) };
}

export function subjectAccessReview(body: Obj, c: ReviewContext): Obj {
  const spec = obj(body.spec);
  const a = attributesOf('SubjectAccessReview', spec, subjectOf('SubjectAccessReview', spec));
  return echo(body, 'SubjectAccessReview', 'authorization.k8s.io/v1', accessStatus(c.authorizer, a));
}

export function localSubjectAccessReview(body: Obj, c: ReviewContext): Obj {
  const spec = obj(body.spec);
  const ns = c.namespace ?? '';
  if (isObj(spec.nonResourceAttributes))
    throw invalid('authorization.k8s.io', 'LocalSubjectAccessReview', '', [{ type: 'Invalid', field: 'spec.nonResourceAttributes', value: spec.nonResourceAttributes, detail: 'disallowed on this kind of request' }]);
  const ra = obj(spec.resourceAttributes);
  if (s(ra.namespace) && s(ra.namespace) !== ns)
    throw badRequest(`spec.resourceAttributes.namespace must match namespace: ${ns}`);
  const withNs = { ...spec, resourceAttributes: { ...ra, namespace: ns } };
  const a = attributesOf('LocalSubjectAccessReview', withNs, subjectOf('LocalSubjectAccessReview', spec));
  const out = echo({ ...body, spec: withNs }, 'LocalSubjectAccessReview', 'authorization.k8s.io/v1', accessStatus(c.authorizer, a));
  (out.metadata as Obj).namespace = ns;
  return out;
}

function ruleOut(r: PolicyRule): Obj {
  return {
    verbs: r.verbs,
    ...(r.apiGroups ? { apiGroups: r.apiGroups } : {}),
    ...(r.resources ? { resources: r.resources } : {}),
    ...(r.resourceNames ? { resourceNames: r.resourceNames } : {}),
  };
}

export function selfSubjectRulesReview(body: Obj, c: ReviewContext): Obj {
  const spec = obj(body.spec);
  const ns = s(spec.namespace);
  if (!ns) throw badRequest('no namespace on request');
  const { rules, errors } = c.authorizer.rulesFor(c.user, ns);
  const resourceRules = rules.filter((r) => !r.nonResourceURLs || r.nonResourceURLs.length === 0).map(ruleOut);
  const nonResourceRules = rules.filter((r) => r.nonResourceURLs && r.nonResourceURLs.length > 0).map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs }));
  return echo(body, 'SelfSubjectRulesReview', 'authorization.k8s.io/v1', {
    resourceRules,
    nonResourceRules,
    incomplete: errors.length > 0,
    ...(errors.length ? { evaluationError: errors.join(', ') } : {}),
  });
}

const userOut = (u: UserInfo): Obj => ({ username: u.username, ...(u.uid ? { uid: u.uid } : {}), groups: u.groups, ...(u.extra && Object.keys(u.extra).length ? { extra: u.extra } : {}) });

export function selfSubjectReview(body: Obj, c: ReviewContext): Obj {
  return { kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1', metadata: { ...obj(body.metadata), creationTimestamp: null }, status: { userInfo: userOut(c.user) } };
}

export async function tokenReview(body: Obj, c: ReviewContext): Promise<Obj> {
  const spec = obj(body.spec);
  const token = s(spec.token);
  if (!token) throw invalid('authentication.k8s.io', 'TokenReview', '', [{ type: 'Required', field: 'spec.token', detail: 'token is required' }]);
  const wanted = strList(spec.audiences);
  const audiences = wanted.length ? wanted.filter((a) => c.apiAudiences.includes(a)) : c.apiAudiences;
  const r = wanted.length && audiences.length === 0 ? { reason: 'token audiences do not match' } : await c.authenticator.authenticateToken(token);
  const status: Obj = r.user ? { authenticated: true, user: userOut(r.user), audiences } : { user: {}, error: '[invalid bearer token, ' + r.reason + ']' };
  return { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { ...obj(body.metadata), creationTimestamp: null }, spec, status };
}
