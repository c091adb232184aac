// RBAC escalation prevention, as kube-apiserver's RBAC registries enforce it (pkg/registry/rbac/*/policybased): a
// user may only write a Role or ClusterRole whose permissions they hold (or with the `escalate` verb on it), set an
// aggregationRule only with cluster-admin's authority, and bind a role only if they hold its permissions (or have
// `bind` on it). `system:masters` may do anything.
import { ApiError, notFound } from '../errors.js';
import { obj, str, type Obj } from '../util.js';
import type { Authorizer } from './authz.js';
import { rulesOf, uncovered, type PolicyRule, type RbacSource } from './rbac.js';
import { SYSTEM_MASTERS, type UserInfo } from './user.js';

const GROUP = 'rbac.authorization.k8s.io';
const FULL_AUTHORITY: PolicyRule[] = [
  { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
  { verbs: ['*'], nonResourceURLs: ['*'] },
];

const goQuoted = (l: readonly string[]): string => `[${l.map((x) => JSON.stringify(x)).join(' ')}]`;

/** rbacv1helpers.CompactString */
function compact(r: PolicyRule): string {
  const parts: string[] = [];
  if (r.apiGroups?.length) parts.push(`APIGroups:${goQuoted(r.apiGroups)}`);
  if (r.resources?.length) parts.push(`Resources:${goQuoted(r.resources)}`);
  if (r.nonResourceURLs?.length) parts.push(`NonResourceURLs:${goQuoted(r.nonResourceURLs)}`);
  if (r.resourceNames?.length) parts.push(`ResourceNames:${goQuoted(r.resourceNames)}`);
  if (r.verbs.length) parts.push(`Verbs:${goQuoted(r.verbs)}`);
  return `{${parts.join(', ')}}`;
}

/** Missing single-verb permissions merged back into one rule per resource (kube's CompactRules). */
function compactRules(missing: PolicyRule[]): PolicyRule[] {
  const out = new Map<string, PolicyRule>();
  for (const r of missing) {
    const k = JSON.stringify([r.apiGroups, r.resources, r.resourceNames, r.nonResourceURLs]);
    const cur = out.get(k);
    if (cur) {
      for (const v of r.verbs) if (!cur.verbs.includes(v)) cur.verbs.push(v);
    } else out.set(k, { ...r, verbs: [...r.verbs] });
  }
  // sorted as kube sorts them (by the rule's String(): verbs, then API groups, resources, names, URLs)
  const key = (r: PolicyRule): string => JSON.stringify([r.verbs, r.apiGroups ?? [], r.resources ?? [], r.resourceNames ?? [], r.nonResourceURLs ?? []]);
  return [...out.values()].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function escalationError(resource: string, name: string, user: UserInfo, missing: PolicyRule[], errors: string[]): ApiError {
  let msg = `user ${JSON.stringify(user.username)} (groups=${goQuoted(user.groups)}) is attempting to grant RBAC permissions not currently held:\n${compactRules(missing).map(compact).join('\n')}`;
  if (errors.length) msg += `; resolution errors: [${errors.join(' ')}]`;
  return new ApiError(403, 'Forbidden', `${resource}.${GROUP} ${JSON.stringify(name)} is forbidden: ${msg}`, { name, group: GROUP, kind: resource });
}

/** Throws the 403 kube-apiserver answers when `user` writes `o` (a role or binding of `resource`) beyond their rights. */
export function confirmNoEscalation(resource: string, namespace: string, o: Obj, user: UserInfo, authz: Authorizer, src: RbacSource): void {
  if (user.groups.includes(SYSTEM_MASTERS) || authz.mode === 'AlwaysAllow') return;
  const name = str(obj(o.metadata).name) ?? '';
  const allowed = (verb: string, res: string, resName: string, ns: string): boolean =>
    authz.authorize({ user, resourceRequest: true, path: '', verb, apiGroup: GROUP, apiVersion: '*', resource: res, subresource: '', namespace: ns, name: resName }).allowed;
  const owner = (): { rules: PolicyRule[]; errors: string[] } => authz.rulesFor(user, namespace);
  if (resource === 'roles' || resource === 'clusterroles') {
    if (allowed('escalate', resource, name, namespace)) return;
    if (resource === 'clusterroles' && o.aggregationRule !== undefined && o.aggregationRule !== null) {
      const { rules } = owner();
      if (uncovered(rules, FULL_AUTHORITY).length)
        throw new ApiError(403, 'Forbidden', `clusterroles.${GROUP} ${JSON.stringify(name)} is forbidden: must have cluster-admin privileges to use the aggregationRule`, { name, group: GROUP, kind: resource });
    }
    const { rules, errors } = owner();
    const missing = uncovered(rules, rulesOf(o));
    if (missing.length) throw escalationError(resource, name, user, missing, errors);
    return;
  }
  if (resource === 'rolebindings' || resource === 'clusterrolebindings') {
    const ref = obj(o.roleRef);
    const refKind = str(ref.kind) ?? '';
    const refName = str(ref.name) ?? '';
    const refResource = refKind === 'Role' ? 'roles' : 'clusterroles';
    // checked in the binding's namespace: a RoleBinding may be delegated the binding of a ClusterRole there
    if (allowed('bind', refResource, refName, namespace)) return;
    const role = refKind === 'Role' ? src.role(namespace, refName) : src.clusterRole(refName);
    if (!role) throw notFound(GROUP, refResource, refName);
    const { rules, errors } = owner();
    const missing = uncovered(rules, rulesOf(role));
    if (missing.length) throw escalationError(resource, name, user, missing, errors);
  }
}
