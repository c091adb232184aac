// Kubeconfig files for the API server's clients: the admin's (kubeadm's admin.conf: CN kubernetes-admin in
// system:masters) and the lab components' (a client certificate or a token), always carrying the cluster CA.
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'yaml';

export type Credentials = { token: string } | { cert: string; key: string };

export interface KubeconfigSpec {
  server: string;
  /** PEM of the cluster CA; without it (plain HTTP) `insecure-skip-tls-verify` is set, which client-node needs for http: */
  caCert?: string;
  user: string;
  credentials: Credentials;
  clusterName?: string;
  namespace?: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export function kubeconfigFor(s: KubeconfigSpec): string {
  const cluster = s.clusterName ?? 'metallb-dev';
  const context = s.user === cluster ? cluster : `${s.user}@${cluster}`;
  const user = 'token' in s.credentials ? { token: s.credentials.token } : { 'client-certificate-data': b64(s.credentials.cert), 'client-key-data': b64(s.credentials.key) };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: s.server, ...(s.caCert ? { 'certificate-authority-data': b64(s.caCert) } : { 'insecure-skip-tls-verify': true }) } }],
    users: [{ name: s.user, user }],
    contexts: [{ name: context, context: { cluster, user: s.user, namespace: s.namespace ?? 'default' } }],
    'current-context': context,
  });
}

/** Write a kubeconfig atomically (mode 0600): readers never see half a file. */
export function writeKubeconfigFile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
