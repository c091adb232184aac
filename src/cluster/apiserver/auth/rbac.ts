// RBAC as kube-apiserver evaluates it (plugin/pkg/auth/authorizer/rbac): ClusterRoleBindings, then the RoleBindings
// of the request's namespace; the first rule of a bound role that covers the request allows it. Non-resource URLs are
// granted by ClusterRoleBindings only. Bindings to missing roles are skipped and reported in the denial's reason.
import type { Obj } from '../util.js';
import type { Attributes } from './request-info.js';
import { parseServiceAccountUsername, type UserInfo } from './user.js';

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface Subject {
  kind: string;
  name: string;
  namespace?: string;
  apiGroup?: string;
}

export interface RoleRef {
  kind: string;
  name: string;
  apiGroup?: string;
}

/** Read access to the RBAC objects (the API server's store). */
export interface RbacSource {
  clusterRoleBindings(): Obj[];
  roleBindings(namespace: string): Obj[];
  clusterRole(name: string): Obj | undefined;
  role(namespace: string, name: string): Obj | undefined;
}

const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const o = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const nameOf = (x: Obj): string => String(o(x.metadata).name ?? '');
const nsOf = (x: Obj): string => String(o(x.metadata).namespace ?? '');

export function rulesOf(role: Obj | undefined): PolicyRule[] {
  if (!role || !Array.isArray(role.rules)) return [];
  return role.rules.map((r) => {
    const x = o(r);
    return {
      verbs: strs(x.verbs),
      ...(x.apiGroups !== undefined ? { apiGroups: strs(x.apiGroups) } : {}),
      ...(x.resources !== undefined ? { resources: strs(x.resources) } : {}),
      ...(x.resourceNames !== undefined ? { resourceNames: strs(x.resourceNames) } : {}),
      ...(x.nonResourceURLs !== undefined ? { nonResourceURLs: strs(x.nonResourceURLs) } : {}),
    };
  });
}

function subjectsOf(binding: Obj): Subject[] {
  if (!Array.isArray(binding.subjects)) return [];
  return binding.subjects.map((s) => {
    const x = o(s);
    return { kind: String(x.kind ?? ''), name: String(x.name ?? ''), ...(typeof x.namespace === 'string' ? { namespace: x.namespace } : {}) };
  });
}

const roleRefOf = (binding: Obj): RoleRef => {
  const r = o(binding.roleRef);
  return { kind: String(r.kind ?? ''), name: String(r.name ?? '') };
};

/** Whether a binding subject names this user (a ServiceAccount subject without namespace: the binding's). */
export function appliesTo(user: UserInfo, s: Subject, bindingNamespace: string): boolean {
  switch (s.kind) {
    case 'User':
      return user.username === s.name;
    case 'Group':
      return user.groups.includes(s.name);
    case 'ServiceAccount': {
      const ns = s.namespace || bindingNamespace;
      if (!ns) return false;
      const sa = parseServiceAccountUsername(user.username);
      return sa !== undefined && sa[0] === ns && sa[1] === s.name;
    }
    default:
      return false;
  }
}

const has = (list: readonly string[] | undefined, v: string): boolean => !!list && (list.includes(v) || list.includes('*'));

export function verbMatches(r: PolicyRule, verb: string): boolean {
  return has(r.verbs, verb);
}

export function apiGroupMatches(r: PolicyRule, group: string): boolean {
  return has(r.apiGroups, group);
}

export function resourceMatches(r: PolicyRule, resource: string, subresource: string): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const rr of r.resources ?? []) {
    if (rr === '*' || rr === combined) return true;
    if (subresource && rr === `*/${subresource}`) return true;
  }
  return false;
}

export function resourceNameMatches(r: PolicyRule, name: string): boolean {
  if (!r.resourceNames || r.resourceNames.length === 0) return true;
  return r.resourceNames.includes(name);
}

export function nonResourceURLMatches(r: PolicyRule, path: string): boolean {
  for (const u of r.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

/** One rule allowing the request (kube's RuleAllows). */
export function ruleAllows(a: Omit<Attributes, 'user'>, r: PolicyRule): boolean {
  if (a.resourceRequest)
    return verbMatches(r, a.verb) && apiGroupMatches(r, a.apiGroup) && resourceMatches(r, a.resource, a.subresource) && resourceNameMatches(r, a.name);
  return verbMatches(r, a.verb) && nonResourceURLMatches(r, a.path);
}

export interface Decision {
  allowed: boolean;
  /** why: "RBAC: allowed by …" or the errors met on the way (missing roles) */
  reason: string;
}

const describeSubject = (s: Subject, bindingNamespace: string): string =>
  s.kind === 'ServiceAccount' ? `ServiceAccount "${s.name}/${s.namespace || bindingNamespace}"` : `${s.kind} "${s.name}"`;

export class RbacAuthorizer {
  constructor(private readonly src: RbacSource) {}

  private roleFor(ref: RoleRef, bindingNamespace: string): { rules: PolicyRule[]; error?: string } {
    if (ref.kind === 'ClusterRole') {
      const r = this.src.clusterRole(ref.name);
      return r ? { rules: rulesOf(r) } : { rules: [], error: `clusterrole.rbac.authorization.k8s.io "${ref.name}" not found` };
    }
    if (ref.kind === 'Role' && bindingNamespace) {
      const r = this.src.role(bindingNamespace, ref.name);
      return r ? { rules: rulesOf(r) } : { rules: [], error: `role.rbac.authorization.k8s.io "${ref.name}" not found` };
    }
    return { rules: [], error: `unsupported role reference kind: "${ref.kind}"` };
  }

  authorize(a: Attributes): Decision {
    const errors: string[] = [];
    for (const b of this.src.clusterRoleBindings()) {
      const subject = subjectsOf(b).find((s) => appliesTo(a.user, s, ''));
      if (!subject) continue;
      const ref = roleRefOf(b);
      const { rules, error } = this.roleFor(ref, '');
      if (error) errors.push(error);
      if (rules.some((r) => ruleAllows(a, r)))
        return { allowed: true, reason: `RBAC: allowed by ClusterRoleBinding "${nameOf(b)}" of ClusterRole "${ref.name}" to ${describeSubject(subject, '')}` };
    }
    if (a.resourceRequest && a.namespace) {
      for (const b of this.src.roleBindings(a.namespace)) {
        const subject = subjectsOf(b).find((s) => appliesTo(a.user, s, nsOf(b)));
        if (!subject) continue;
        const ref = roleRefOf(b);
        const { rules, error } = this.roleFor(ref, a.namespace);
        if (error) errors.push(error);
        if (rules.some((r) => ruleAllows(a, r)))
          return {
            allowed: true,
            reason: `RBAC: allowed by RoleBinding "${nameOf(b)}/${a.namespace}" of ${ref.kind} "${ref.name}" to ${describeSubject(subject, a.namespace)}`,
          };
      }
    }
    return { allowed: false, reason: errors.length ? `RBAC: ${errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`}` : '' };
  }

  /** Every rule that applies to the user in `namespace` (SelfSubjectRulesReview, escalation checks). */
  rulesFor(user: UserInfo, namespace: string): { rules: PolicyRule[]; errors: string[] } {
    const rules: PolicyRule[] = [];
    const errors: string[] = [];
    for (const b of this.src.clusterRoleBindings()) {
      if (!subjectsOf(b).some((s) => appliesTo(user, s, ''))) continue;
      const r = this.roleFor(roleRefOf(b), '');
      if (r.error) errors.push(r.error);
      rules.push(...r.rules);
    }
    if (namespace) {
      for (const b of this.src.roleBindings(namespace)) {
        if (!subjectsOf(b).some((s) => appliesTo(user, s, nsOf(b)))) continue;
        const r = this.roleFor(roleRefOf(b), namespace);
        if (r.error) errors.push(r.error);
        // a RoleBinding never grants non-resource URLs
        rules.push(...r.rules.filter((x) => !x.nonResourceURLs || x.nonResourceURLs.length === 0));
      }
    }
    return { rules, errors };
  }
}

/**
 * Whether `owner` rules cover every permission of `servant` rules (kube's validation.Covers): each servant rule is
 * broken into single verb/group/resource/name (or URL) permissions and each must be allowed by some owner rule.
 * Returns the permissions not covered.
 */
export function uncovered(owner: readonly PolicyRule[], servant: readonly PolicyRule[]): PolicyRule[] {
  const missing: PolicyRule[] = [];
  for (const s of servant) {
    for (const verb of s.verbs) {
      for (const url of s.nonResourceURLs ?? []) {
        const ok = owner.some((r) => has(r.verbs, verb) && (r.nonResourceURLs ?? []).some((u) => u === '*' || u === url || (u.endsWith('*') && url.startsWith(u.slice(0, -1)))));
        if (!ok) missing.push({ verbs: [verb], nonResourceURLs: [url] });
      }
      for (const group of s.apiGroups ?? []) {
        for (const resource of s.resources ?? []) {
          const names = s.resourceNames && s.resourceNames.length ? s.resourceNames : [''];
          for (const name of names) {
            const ok = owner.some((r) => {
              if (!has(r.verbs, verb) || !has(r.apiGroups, group)) return false;
              const rs = r.resources ?? [];
              const resOk =
                rs.includes('*') ||
                rs.includes(resource) ||
                (resource.includes('/') && rs.includes(`*/${resource.split('/').slice(1).join('/')}`));
              if (!resOk) return false;
              if (!r.resourceNames || r.resourceNames.length === 0) return true;
              return name !== '' && r.resourceNames.includes(name);
            });
            if (!ok) missing.push({ verbs: [verb], apiGroups: [group], resources: [resource], ...(name ? { resourceNames: [name] } : {}) });
          }
        }
      }
    }
  }
  return missing;
}
