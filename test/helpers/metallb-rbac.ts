// MetalLB's ServiceAccounts, roles and bindings, as objects to apply: from its release manifests in
// ../shared/fixtures/metallb-manifests (v0.9.3, v0.12.1, v0.14.9), and for v0.13.11 and v0.15.3 from
// test/fixtures/rbac (transcribed from the tables of ../shared/spec/metallb-rbac.md).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);

/** A file of ../shared (beside the checkout; worktrees find it under /work). */
export function sharedPath(...parts: string[]): string {
  for (const base of [join(ROOT, '..', 'shared'), '/work/shared']) {
    const p = join(base, ...parts);
    if (existsSync(p)) return p;
  }
  throw new Error(`${parts.join('/')} not found in ../shared`);
}

export interface RbacObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }[];
  roleRef?: { apiGroup: string; kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

/** The ServiceAccounts, roles and bindings of a manifest file (everything else left out). */
export function rbacObjectsOfManifest(path: string): RbacObject[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJSON() as RbacObject | null)
    .filter((o): o is RbacObject => !!o && RBAC_KINDS.has(o.kind));
}

/** Objects as a multi-document YAML stream for `kubectl apply -f -`. */
export const toYamlStream = (objects: readonly RbacObject[]): string => objects.map((o) => stringify(o)).join('---\n');

/** MetalLB's RBAC of a release. */
export function metallbRbac(version: 'v0.9.3' | 'v0.12.1' | 'v0.13.11' | 'v0.14.9' | 'v0.15.3'): RbacObject[] {
  if (version === 'v0.13.11' || version === 'v0.15.3') return rbacObjectsOfManifest(join(ROOT, 'test', 'fixtures', 'rbac', `metallb-${version}.yaml`));
  const file = version === 'v0.14.9' ? 'metallb-native-v0.14.9.yaml' : `metallb-${version}.yaml`;
  return rbacObjectsOfManifest(sharedPath('fixtures', 'metallb-manifests', file));
}
