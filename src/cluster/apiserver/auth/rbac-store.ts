// RBAC over the API server's store: the RbacSource the authorizer reads, the bootstrap roles and bindings of a fresh
// cluster, and the ClusterRole aggregation that kube-controller-manager's clusterrole-aggregation controller performs
// (the rules of admin, edit, view and every ClusterRole with an aggregationRule kept up to date).
import { jsonEqual, nowRFC3339, obj, randomUID, type Obj } from '../util.js';
import { labelSelectorFromObject, matchLabels } from '../selectors.js';
import type { Store } from '../store.js';
import { bootstrapClusterRoleBindings, bootstrapClusterRoles } from './bootstrap-policy.js';
import { rulesOf, uncovered, type RbacSource } from './rbac.js';

const AUTOUPDATE = 'rbac.authorization.kubernetes.io/autoupdate';

export const RBAC_KEYS = {
  clusterRoles: 'rbac.authorization.k8s.io/clusterroles',
  clusterRoleBindings: 'rbac.authorization.k8s.io/clusterrolebindings',
  roles: 'rbac.authorization.k8s.io/roles',
  roleBindings: 'rbac.authorization.k8s.io/rolebindings',
} as const;

export function storeRbacSource(store: Store): RbacSource {
  return {
    clusterRoleBindings: () => store.list(RBAC_KEYS.clusterRoleBindings),
    roleBindings: (ns) => store.list(RBAC_KEYS.roleBindings, ns),
    clusterRole: (name) => store.get(RBAC_KEYS.clusterRoles, '', name),
    role: (ns, name) => store.get(RBAC_KEYS.roles, ns, name),
  };
}

/**
 * The bootstrap ClusterRoles and ClusterRoleBindings, as kube-apiserver reconciles them at every start: missing ones
 * are created; existing ones not annotated `rbac.authorization.kubernetes.io/autoupdate: "false"` get the permissions
 * (rules) and subjects they lack, so a cluster kept in a data file gains what newer versions of this server grant.
 */
export function ensureBootstrapPolicy(store: Store): void {
  const optedOut = (o: Obj): boolean => obj(obj(o.metadata).annotations)[AUTOUPDATE] === 'false';
  const create = (key: string, o: Obj): void => {
    const m = obj(o.metadata);
    store.put(key, { ...o, metadata: { ...m, uid: randomUID(), creationTimestamp: nowRFC3339() } }, 'ADDED');
  };
  for (const role of bootstrapClusterRoles()) {
    const existing = store.get(RBAC_KEYS.clusterRoles, '', String(obj(role.metadata).name));
    if (!existing) create(RBAC_KEYS.clusterRoles, role);
    else if (!optedOut(existing) && !role.aggregationRule) {
      const missing = uncovered(rulesOf(existing), rulesOf(role));
      if (missing.length) store.put(RBAC_KEYS.clusterRoles, { ...existing, rules: [...(Array.isArray(existing.rules) ? existing.rules : []), ...missing] }, 'MODIFIED');
    }
  }
  for (const binding of bootstrapClusterRoleBindings()) {
    const existing = store.get(RBAC_KEYS.clusterRoleBindings, '', String(obj(binding.metadata).name));
    if (!existing) create(RBAC_KEYS.clusterRoleBindings, binding);
    else if (!optedOut(existing)) {
      const have = Array.isArray(existing.subjects) ? existing.subjects : [];
      const same = (a: unknown, b: unknown): boolean => obj(a).kind === obj(b).kind && obj(a).name === obj(b).name && (obj(a).namespace ?? '') === (obj(b).namespace ?? '');
      const missing = (binding.subjects as unknown[]).filter((s) => !have.some((h) => same(h, s)));
      if (missing.length) store.put(RBAC_KEYS.clusterRoleBindings, { ...existing, subjects: [...have, ...missing] }, 'MODIFIED');
    }
  }
}

/** The rules an aggregated ClusterRole should have: those of every ClusterRole its selectors match, in name order. */
export function aggregatedRules(role: Obj, all: readonly Obj[]): unknown[] {
  const selectors = obj(role.aggregationRule).clusterRoleSelectors;
  const name = obj(role.metadata).name;
  const rules: unknown[] = [];
  if (!Array.isArray(selectors)) return rules;
  for (const sel of selectors) {
    const ls = labelSelectorFromObject(sel);
    const matching = all
      .filter((r) => obj(r.metadata).name !== name && matchLabels(ls, obj(obj(r.metadata).labels) as Record<string, unknown>))
      .sort((a, b) => String(obj(a.metadata).name).localeCompare(String(obj(b.metadata).name)));
    for (const r of matching) for (const rule of Array.isArray(r.rules) ? r.rules : []) if (!rules.some((x) => jsonEqual(x, rule))) rules.push(rule);
  }
  return rules;
}

/**
 * Bring every aggregated ClusterRole up to date, until nothing changes (view feeds edit feeds admin). Writes go
 * straight to the store as the controller's updates would. Returns how many roles were updated.
 */
export function reconcileAggregation(store: Store): number {
  let updated = 0;
  for (let pass = 0; pass < 10; pass++) {
    let changed = false;
    const all = store.list(RBAC_KEYS.clusterRoles);
    for (const role of all) {
      if (!role.aggregationRule) continue;
      const rules = aggregatedRules(role, store.list(RBAC_KEYS.clusterRoles));
      if (jsonEqual(rules, role.rules ?? [])) continue;
      store.put(RBAC_KEYS.clusterRoles, { ...role, metadata: { ...obj(role.metadata) }, rules }, 'MODIFIED');
      changed = true;
      updated++;
    }
    if (!changed) break;
  }
  return updated;
}

/** Keep aggregation current: after any ClusterRole change (deferred, so a write's own event goes out first). */
export function startAggregationController(store: Store): () => void {
  let scheduled = false;
  return store.watch({
    key: RBAC_KEYS.clusterRoles,
    onEvent: () => {
      if (scheduled) return;
      scheduled = true;
      queueMicrotask(() => {
        scheduled = false;
        reconcileAggregation(store);
      });
    },
  });
}
