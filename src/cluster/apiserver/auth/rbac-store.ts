// RBAC over the API server's store: the RbacSource the authorizer reads, the bootstrap roles and bindings of a fresh
// cluster, and the ClusterRole aggregation that kube-controller-manager's clusterrole-aggregation controller performs
// (the rules of admin, edit, view and every ClusterRole with an aggregationRule kept up to date).
import { jsonEqual, nowRFC3339, obj, randomUID, type Obj } from '../util.js';
import { labelSelectorFromObject, matchLabels } from '../selectors.js';
import type { Store } from '../store.js';
import { bootstrapClusterRoleBindings, bootstrapClusterRoles } from './bootstrap-policy.js';
import type { RbacSource } from './rbac.js';

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

/** Create the bootstrap ClusterRoles and ClusterRoleBindings that are missing (existing ones are left as they are). */
export function ensureBootstrapPolicy(store: Store): void {
  const put = (key: string, o: Obj): void => {
    const m = obj(o.metadata);
    if (store.get(key, '', String(m.name))) return;
    store.put(key, { ...o, metadata: { ...m, uid: randomUID(), creationTimestamp: nowRFC3339() } }, 'ADDED');
  };
  for (const r of bootstrapClusterRoles()) put(RBAC_KEYS.clusterRoles, r);
  for (const b of bootstrapClusterRoleBindings()) put(RBAC_KEYS.clusterRoleBindings, b);
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
