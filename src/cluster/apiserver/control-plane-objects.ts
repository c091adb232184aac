// Objects a real control plane keeps that are not part of the API semantics: the `kubernetes` Service's endpoints
// pointing at the API server's advertised address (kube-apiserver's endpoint reconciler), and the `kube-proxy`
// ConfigMap as kubeadm writes it (the MetalLB docs edit its `strictARP`).
import { isIP } from 'node:net';
import type { Api } from './api.js';
import { resourceKey } from './registry.js';
import { jsonEqual, obj, type Obj } from './util.js';

const SVC = resourceKey('', 'services');
const EP = resourceKey('', 'endpoints');
const EPS = resourceKey('discovery.k8s.io', 'endpointslices');
const CM = resourceKey('', 'configmaps');

function upsert(api: Api, key: string, namespace: string, desired: Obj): void {
  const rt = api.registry.byKey(key)!;
  const ctx = api.ctxFor(rt, namespace);
  const name = String(obj(desired.metadata).name);
  const existing = api.store.get(key, namespace, name);
  if (!existing) {
    api.create(ctx, desired);
    return;
  }
  const merged: Obj = { ...existing, ...desired, metadata: { ...obj(existing.metadata), ...obj(desired.metadata), resourceVersion: obj(existing.metadata).resourceVersion } };
  if (!jsonEqual(merged, existing)) api.update(ctx, name, merged);
}

/** The `default/kubernetes` Service targets `port`, and its Endpoints / EndpointSlice hold `address`. */
export function reconcileKubernetesEndpoints(api: Api, address: string, port: number): void {
  const svc = api.store.get(SVC, 'default', 'kubernetes');
  if (svc) {
    const spec = obj(svc.spec);
    const ports = Array.isArray(spec.ports) ? spec.ports.map(obj) : [];
    if (ports.length !== 1 || ports[0]!.targetPort !== port) {
      api.update(api.ctxFor(api.registry.byKey(SVC)!, 'default'), 'kubernetes', {
        ...svc,
        spec: { ...spec, ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: port }] },
      });
    }
  }
  const family = isIP(address) === 6 ? 'IPv6' : 'IPv4';
  upsert(api, EP, 'default', {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: [{ addresses: [{ ip: address }], ports: [{ name: 'https', port, protocol: 'TCP' }] }],
  });
  upsert(api, EPS, 'default', {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
    addressType: family,
    endpoints: [{ addresses: [address], conditions: { ready: true } }],
    ports: [{ name: 'https', port, protocol: 'TCP' }],
  });
}

export interface KubeProxyConfigOptions {
  /** `mode` in the KubeProxyConfiguration ("" = the platform default, iptables; the lab uses nftables) */
  mode: string;
  /** `clusterCIDR` (the pod network), comma-separated for dual-stack */
  clusterCIDR: string;
  /** the API server URL written into kubeconfig.conf */
  server: string;
}

/** kubeadm's KubeProxyConfiguration (v1.32 `kubeadm init` output, every field present as it prints them). */
export function kubeProxyConfig(o: KubeProxyConfigOptions): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: ${o.clusterCIDR}
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ${o.mode === '' ? '""' : o.mode}
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForAlphaFeatures: false
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""`;
}

function kubeProxyKubeconfig(server: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    server: ${server}
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token`;
}

/** Create `kube-system/kube-proxy` once; an existing one (a user's strictARP edit) is left alone. */
export function ensureKubeProxyConfigMap(api: Api, o: KubeProxyConfigOptions): void {
  if (api.store.get(CM, 'kube-system', 'kube-proxy')) return;
  api.create(api.ctxFor(api.registry.byKey(CM)!, 'kube-system'), {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'kube-proxy', namespace: 'kube-system', labels: { app: 'kube-proxy' } },
    data: { 'config.conf': kubeProxyConfig(o), 'kubeconfig.conf': kubeProxyKubeconfig(o.server) },
  });
}
