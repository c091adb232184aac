// The front proxy's credentials, as kubeadm lays them out beside the cluster PKI: a CA of its own
// (front-proxy-ca.crt/key) and the client certificate the API server presents to extension API servers
// (front-proxy-client.crt/key, CN front-proxy-client), and the `kube-system/extension-apiserver-authentication`
// ConfigMap through which kube-apiserver tells extension servers whom to trust (read with the bootstrap Role
// `extension-apiserver-authentication-reader`). Extension servers accept the X-Remote-User / X-Remote-Group headers
// only from a client certificate that chains to `requestheader-client-ca-file` and has an allowed name.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { newCA, signCert, writeAtomic } from '../pki.js';
import { resourceKey } from '../registry.js';
import type { Store } from '../store.js';
import { jsonEqual, nowRFC3339, obj, randomUID, type Obj } from '../util.js';

export const FRONT_PROXY_CLIENT = 'front-proxy-client';
export const EXTENSION_AUTH_CONFIGMAP = 'extension-apiserver-authentication';
export const EXTENSION_AUTH_READER = 'extension-apiserver-authentication-reader';
export const REMOTE_USER_HEADER = 'X-Remote-User';
export const REMOTE_GROUP_HEADER = 'X-Remote-Group';
export const REMOTE_EXTRA_PREFIX = 'X-Remote-Extra-';

export interface FrontProxyPki {
  caCert: string;
  clientCert: string;
  clientKey: string;
}

const FILES = { caCert: 'front-proxy-ca.crt', caKey: 'front-proxy-ca.key', clientCert: 'front-proxy-client.crt', clientKey: 'front-proxy-client.key' };

function stillValid(certPem: string | undefined, caPem?: string): boolean {
  if (!certPem) return false;
  try {
    const c = new X509Certificate(certPem);
    if (new Date(c.validTo).getTime() < Date.now() + 30 * 24 * 3600_000) return false;
    return caPem ? c.verify(new X509Certificate(caPem).publicKey) : true;
  } catch {
    return false;
  }
}

/** Loads (or creates) the front-proxy CA and client certificate in `dir`; without a dir they live in memory only. */
export async function loadOrCreateFrontProxyPki(dir: string | undefined): Promise<FrontProxyPki> {
  const read = (f: string): string | undefined => (dir && existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : undefined);
  let caCert = read(FILES.caCert);
  let caKey = read(FILES.caKey);
  let renewed = false;
  if (!caKey || !stillValid(caCert)) {
    ({ cert: caCert, key: caKey } = await newCA('front-proxy-ca'));
    renewed = true;
  }
  let clientCert = read(FILES.clientCert);
  let clientKey = read(FILES.clientKey);
  if (renewed || !clientKey || !stillValid(clientCert, caCert)) {
    ({ cert: clientCert, key: clientKey } = await signCert({ cert: caCert!, key: caKey }, { commonName: FRONT_PROXY_CLIENT, usage: 'client' }));
    renewed = true;
  }
  if (dir && renewed) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeAtomic(join(dir, FILES.caKey), caKey, 0o600);
    writeAtomic(join(dir, FILES.caCert), caCert!, 0o644);
    writeAtomic(join(dir, FILES.clientKey), clientKey, 0o600);
    writeAtomic(join(dir, FILES.clientCert), clientCert!, 0o644);
  }
  return { caCert: caCert!, clientCert: clientCert!, clientKey };
}

function put(store: Store, key: string, ns: string, o: Obj): void {
  const m = obj(o.metadata);
  const existing = store.get(key, ns, String(m.name));
  if (existing) {
    const next = { ...existing, ...o, metadata: { ...obj(existing.metadata), ...m } };
    if (!jsonEqual(next, existing)) store.put(key, next, 'MODIFIED');
    return;
  }
  store.put(key, { ...o, metadata: { ...m, namespace: ns, uid: randomUID(), creationTimestamp: nowRFC3339() } }, 'ADDED');
}

/**
 * The ConfigMap kube-apiserver keeps in kube-system for extension API servers (client CA, request-header CA, allowed
 * names and header names), and the bootstrap Role that lets them read it.
 */
export function publishExtensionAuthentication(store: Store, frontProxy: FrontProxyPki, clientCA: string | undefined): void {
  put(store, resourceKey('', 'configmaps'), 'kube-system', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: EXTENSION_AUTH_CONFIGMAP },
    data: {
      ...(clientCA ? { 'client-ca-file': clientCA } : {}),
      'requestheader-allowed-names': JSON.stringify([FRONT_PROXY_CLIENT]),
      'requestheader-client-ca-file': frontProxy.caCert,
      'requestheader-extra-headers-prefix': JSON.stringify([REMOTE_EXTRA_PREFIX]),
      'requestheader-group-headers': JSON.stringify([REMOTE_GROUP_HEADER]),
      'requestheader-username-headers': JSON.stringify([REMOTE_USER_HEADER]),
    },
  });
  put(store, resourceKey('rbac.authorization.k8s.io', 'roles'), 'kube-system', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: {
      name: EXTENSION_AUTH_READER,
      labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' },
      annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' },
    },
    rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [EXTENSION_AUTH_CONFIGMAP], verbs: ['get', 'list', 'watch'] }],
  });
}
