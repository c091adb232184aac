// What a ServiceAccount really did (from the dev API server's audit log) against what its roles grant, both ways:
// requests the roles do not grant ("missing"), and grants no request used ("unused"). Used by the least-privilege
// tests of deploy/manifests/rbac.yaml for the controller and the speaker.
import { readFileSync } from 'node:fs';
import type { AuditEvent } from '../../src/cluster/apiserver/audit.js';
import type { RbacObject } from './metallb-rbac.js';

/** One grant or one request, at the granularity RBAC decides: verb, group, resource[/subresource], name, namespace. */
export interface Access {
  verb: string;
  group: string;
  /** `resource` or `resource/subresource` */
  resource: string;
  /** A grant limited to one object, or the object a request named. */
  name?: string;
  /** Role grants and namespaced requests; undefined: cluster-wide grant / cluster-scoped or all-namespaces request. */
  namespace?: string;
}

export const showAccess = (a: Access): string =>
  `${a.verb} ${a.resource}${a.group ? `.${a.group}` : ''}${a.name ? ` "${a.name}"` : ''}${a.namespace ? ` in ${a.namespace}` : ''}`;

export function readAudit(path: string): AuditEvent[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditEvent);
}

/**
 * The requests `username` made (as itself or impersonated), with their codes. Access reviews are left out: every
 * authenticated user may create them (bootstrap ClusterRole system:basic-user), they are not ours to grant.
 */
export function requestsOf(events: readonly AuditEvent[], username: string): (Access & { code: number })[] {
  const out: (Access & { code: number })[] = [];
  for (const e of events) {
    const who = e.impersonatedUser?.username ?? e.user.username;
    if (who !== username || !e.objectRef) continue;
    const r = e.objectRef;
    if (r.apiGroup === 'authorization.k8s.io' && r.resource?.startsWith('selfsubject')) continue;
    out.push({
      verb: e.verb,
      group: r.apiGroup ?? '',
      resource: r.subresource ? `${r.resource}/${r.subresource}` : (r.resource ?? ''),
      ...(r.name ? { name: r.name } : {}),
      ...(r.namespace ? { namespace: r.namespace } : {}),
      code: e.responseStatus.code,
    });
  }
  return out;
}

/** Every (verb, group, resource, name) the roles bound to `namespace/sa` grant, with the namespace of a Role. */
export function grantsOf(objects: readonly RbacObject[], namespace: string, sa: string): Access[] {
  const roles = new Map<string, RbacObject>();
  for (const o of objects) {
    if (o.kind === 'ClusterRole') roles.set(`ClusterRole//${o.metadata.name}`, o);
    if (o.kind === 'Role') roles.set(`Role/${o.metadata.namespace}/${o.metadata.name}`, o);
  }
  const out: Access[] = [];
  for (const b of objects) {
    if (b.kind !== 'RoleBinding' && b.kind !== 'ClusterRoleBinding') continue;
    if (!b.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === namespace)) continue;
    const ref = b.roleRef!;
    const role = ref.kind === 'ClusterRole' ? roles.get(`ClusterRole//${ref.name}`) : roles.get(`Role/${b.metadata.namespace}/${ref.name}`);
    if (!role) throw new Error(`${b.kind} ${b.metadata.name} refers to a missing ${ref.kind} ${ref.name}`);
    const ns = b.kind === 'RoleBinding' ? b.metadata.namespace : undefined;
    for (const rule of role.rules ?? []) {
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs)
            for (const name of rule.resourceNames?.length ? rule.resourceNames : [undefined])
              out.push({ verb, group, resource, ...(name ? { name } : {}), ...(ns ? { namespace: ns } : {}) });
    }
  }
  return out;
}

/** Whether grant `g` allows request `r`, as RBAC decides (no wildcards: our roles have none). */
export function covers(g: Access, r: Access): boolean {
  if (g.verb !== r.verb || g.group !== r.group || g.resource !== r.resource) return false;
  if (g.name !== undefined && g.name !== r.name) return false;
  if (g.namespace !== undefined && g.namespace !== r.namespace) return false;
  return true;
}

export interface Usage {
  /** Requests refused, or allowed only by something else than these roles. */
  missing: string[];
  /** Grants no request used and not listed as rarely exercised. */
  unused: string[];
  /** Rarely exercised grants that were used after all (their entry can go). */
  exercised: string[];
}

/** Compares; `rarely` maps `showAccess(grant)` to why the grant is kept although the run did not use it. */
export function compareUsage(requests: readonly (Access & { code: number })[], grants: readonly Access[], rarely: Readonly<Record<string, string>> = {}): Usage {
  const missing = new Set<string>();
  for (const r of requests) {
    if (r.code === 403 || !grants.some((g) => covers(g, r))) missing.add(`${showAccess(r)}${r.code === 403 ? ' (refused)' : ''}`);
  }
  const unused: string[] = [];
  const exercised: string[] = [];
  for (const g of grants) {
    const used = requests.some((r) => r.code !== 403 && covers(g, r));
    const key = showAccess(g);
    if (!used && !(key in rarely)) unused.push(key);
    if (used && key in rarely) exercised.push(key);
  }
  return { missing: [...missing].sort(), unused: [...new Set(unused)].sort(), exercised: [...new Set(exercised)].sort() };
}
