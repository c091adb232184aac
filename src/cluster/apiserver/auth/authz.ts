// The authorizer chain and its refusals: `--authorization-mode=RBAC` (the privileged `system:masters` group first,
// then RBAC) or `AlwaysAllow`; a refusal is kube-apiserver's 403 Status, worded as its responsewriters.Forbidden.
import { ApiError } from '../errors.js';
import { RbacAuthorizer, type Decision, type PolicyRule } from './rbac.js';
import type { Attributes } from './request-info.js';
import { SYSTEM_MASTERS, type UserInfo } from './user.js';

export type AuthorizationMode = 'RBAC' | 'AlwaysAllow';
export const AUTHORIZATION_MODES: readonly AuthorizationMode[] = ['RBAC', 'AlwaysAllow'];

const EVERYTHING: PolicyRule[] = [
  { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
  { verbs: ['*'], nonResourceURLs: ['*'] },
];

export class Authorizer {
  constructor(
    readonly mode: AuthorizationMode,
    readonly rbac: RbacAuthorizer,
  ) {}

  authorize(a: Attributes): Decision {
    if (this.mode === 'AlwaysAllow') return { allowed: true, reason: '' };
    if (a.user.groups.includes(SYSTEM_MASTERS)) return { allowed: true, reason: '' };
    return this.rbac.authorize(a);
  }

  /** What the user may do in `namespace` (SelfSubjectRulesReview): the union over the authorizers. */
  rulesFor(user: UserInfo, namespace: string): { rules: PolicyRule[]; errors: string[] } {
    if (this.mode === 'AlwaysAllow' || user.groups.includes(SYSTEM_MASTERS)) {
      const r = this.mode === 'AlwaysAllow' ? { rules: [], errors: [] } : this.rbac.rulesFor(user, namespace);
      return { rules: [...EVERYTHING, ...r.rules], errors: r.errors };
    }
    return this.rbac.rulesFor(user, namespace);
  }
}

/** The text after `... is forbidden: ` (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters.forbiddenMessage). */
export function forbiddenMessage(a: Attributes): string {
  const u = JSON.stringify(a.user.username);
  if (!a.resourceRequest) return `User ${u} cannot ${a.verb} path ${JSON.stringify(a.path)}`;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (a.namespace) return `User ${u} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup)} in the namespace ${JSON.stringify(a.namespace)}`;
  return `User ${u} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup)} at the cluster scope`;
}

/** The 403 Status for a refused request (apierrors.NewForbidden on the attributes' group/resource and name). */
export function forbiddenError(a: Attributes, reason: string): ApiError {
  const msg = reason ? `${forbiddenMessage(a)}: ${reason}` : forbiddenMessage(a);
  if (!a.resourceRequest || !a.resource) return new ApiError(403, 'Forbidden', `forbidden: ${msg}`, {});
  const qualified = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  const message = a.name ? `${qualified} ${JSON.stringify(a.name)} is forbidden: ${msg}` : `${qualified} is forbidden: ${msg}`;
  return new ApiError(403, 'Forbidden', message, { ...(a.name ? { name: a.name } : {}), ...(a.apiGroup ? { group: a.apiGroup } : {}), kind: a.resource });
}
