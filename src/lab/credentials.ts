// The lab's component identities: one bearer token per component (kube-apiserver's --token-auth-file format) and a
// kubeconfig for each. The CA, serving certificate, admin certificate and service-account key are the API server's
// own (its PKI directory); the lab only reads its CA to write kubeconfigs.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MAX_NODES, type LabPlan } from './plan.js';
import { readJson, writeJson } from './state.js';

export interface Identity {
  /** File-name-safe key: `controller-manager`, `kubelet-node1`. */
  key: string;
  user: string;
  groups: string[];
  token: string;
}

/** Files in the lab's pki dir: the API server's own (ca.crt …) and the lab's tokens and component kubeconfigs. */
export const credentialFiles = (dir: string) => ({
  caCert: join(dir, 'ca.crt'),
  tokens: join(dir, 'tokens.csv'),
  identities: join(dir, 'identities.json'),
  kubeconfig: (key: string) => join(dir, `${key}.kubeconfig`),
});

/** The first host address of a CIDR (the `kubernetes` Service's ClusterIP). */
export function firstIP(cidr: string): string {
  const base = cidr.split('/')[0] ?? '';
  if (base.includes(':')) return base.endsWith('::') ? `${base}1` : base.replace(/:0*$/, ':1');
  const o = base.split('.').map(Number);
  o[3] = (o[3] ?? 0) + 1;
  return o.join('.');
}

export const nodeIdentity = (node: string): Omit<Identity, 'token'> => ({ key: `kubelet-${node}`, user: `system:node:${node}`, groups: ['system:nodes'] });

/**
 * Component identities, named as kubeadm names them (the API server's default RBAC binds these users and groups).
 * Kubelet identities exist for every node a lab may grow to: a static token file is read once at API server start,
 * so `lab node add` must find its token already there.
 */
export function componentIdentities(): Omit<Identity, 'token'>[] {
  return [
    // Upstream's controller-manager runs each controller as its own service account (--use-service-account-credentials,
    // with the system:controller:* roles); ours runs them all under one identity, which the narrow
    // system:kube-controller-manager role does not cover. Until it does, that identity is also in system:masters.
    { key: 'controller-manager', user: 'system:kube-controller-manager', groups: ['system:masters'] },
    { key: 'scheduler', user: 'system:kube-scheduler', groups: [] },
    { key: 'proxy', user: 'system:kube-proxy', groups: ['system:node-proxier'] },
    // metrics-server runs on the control-plane host, not in a pod: a static token stands for its ServiceAccount, so the
    // RBAC of metrics-server's manifest (bound to kube-system/metrics-server) applies unchanged
    { key: 'metrics-server', user: 'system:serviceaccount:kube-system:metrics-server', groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system'] },
    ...Array.from({ length: MAX_NODES }, (_, i) => nodeIdentity(`node${i + 1}`)),
  ];
}

export const newToken = (): string => randomBytes(24).toString('hex');

/** kube-apiserver's static token file: `token,user,uid,"group1,group2"`. */
export function tokenFile(ids: readonly Identity[]): string {
  return ids.map((i) => `${i.token},${i.user},${i.user}${i.groups.length ? `,"${i.groups.join(',')}"` : ''}`).join('\n') + '\n';
}

export interface KubeconfigUser {
  token?: string;
  cert?: string;
  key?: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** A kubeconfig for one user; `caCert` undefined = a plain-HTTP server. */
export function kubeconfig(server: string, caCert: string | undefined, userName: string, user: KubeconfigUser, namespace = 'default'): string {
  const u: Record<string, string> = user.token ? { token: user.token } : { 'client-certificate-data': b64(user.cert ?? ''), 'client-key-data': b64(user.key ?? '') };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'metallb-lab', cluster: { server, ...(caCert ? { 'certificate-authority-data': b64(caCert) } : {}) } }],
    users: [{ name: userName, user: u }],
    contexts: [{ name: `${userName}@metallb-lab`, context: { cluster: 'metallb-lab', user: userName, namespace } }],
    'current-context': `${userName}@metallb-lab`,
  });
}

/** Creates the identities and the token file (once per lab). */
export function createIdentities(pkiDir: string): Identity[] {
  mkdirSync(pkiDir, { recursive: true, mode: 0o700 });
  const ids = componentIdentities().map((i) => ({ ...i, token: newToken() }));
  const f = credentialFiles(pkiDir);
  writeFileSync(f.tokens, tokenFile(ids), { mode: 0o600 });
  writeJson(f.identities, ids);
  return ids;
}

export function readIdentities(pkiDir: string): Identity[] {
  return readJson<Identity[]>(credentialFiles(pkiDir).identities) ?? [];
}

/** Writes the kubeconfigs of the control-plane components and of the lab's current nodes. */
export function writeComponentKubeconfigs(plan: LabPlan, server: string, ids: readonly Identity[]): void {
  const f = credentialFiles(join(plan.stateDir, 'pki'));
  const ca = existsSync(f.caCert) ? readFileSync(f.caCert, 'utf8') : undefined;
  const wanted = new Set(['controller-manager', 'scheduler', 'proxy', 'metrics-server', ...plan.nodes.map((n) => `kubelet-${n.name}`)]);
  for (const id of ids) {
    if (!wanted.has(id.key)) continue;
    writeFileSync(f.kubeconfig(id.key), kubeconfig(server, ca, id.user, { token: id.token }), { mode: 0o600 });
  }
}
