// What `lab up` puts into the new cluster: the objects kubeadm creates (the kube-proxy ConfigMap), and unless
// --no-loadbalancer, metallb-ts from deploy/ with an IPAddressPool over the lab's Service range and an L2Advertisement.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ApiError, type KubeClient } from '../k8s/client.js';
import { Applier, parseManifests, type ManifestObject } from './apply.js';
import { apiserverURL, type LabPlan } from './plan.js';
import { isReady, listPods, podState, waitDeploymentAvailable, waitFor, type Progress } from './wait.js';

export const METALLB_NAMESPACE = 'metallb-system';
export const LAB_POOL = 'lab-pool';

/** kube-proxy's ConfigMap as kubeadm writes it (the tutorials edit `strictARP` and `mode` in `config.conf`). */
export function kubeProxyConfigMap(plan: LabPlan): ManifestObject {
  const config = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    bindAddress: '0.0.0.0',
    bindAddressHardFail: false,
    clientConnection: { acceptContentTypes: '', burst: 0, contentType: '', kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf', qps: 0 },
    clusterCIDR: plan.clusterCIDRs.join(','),
    configSyncPeriod: '0s',
    conntrack: { maxPerCore: null, min: null, tcpBeLiberal: false, tcpCloseWaitTimeout: null, tcpEstablishedTimeout: null, udpStreamTimeout: '0s', udpTimeout: '0s' },
    detectLocal: { bridgeInterface: '', interfaceNamePrefix: '' },
    detectLocalMode: '',
    enableProfiling: false,
    healthzBindAddress: '',
    hostnameOverride: '',
    iptables: { localhostNodePorts: null, masqueradeAll: false, masqueradeBit: null, minSyncPeriod: '0s', syncPeriod: '0s' },
    ipvs: { excludeCIDRs: null, minSyncPeriod: '0s', scheduler: '', strictARP: false, syncPeriod: '0s', tcpFinTimeout: '0s', tcpTimeout: '0s', udpTimeout: '0s' },
    logging: { flushFrequency: 0, options: { json: { infoBufferSize: '0' }, text: { infoBufferSize: '0' } }, verbosity: 0 },
    metricsBindAddress: '',
    mode: 'nftables',
    nftables: { masqueradeAll: false, masqueradeBit: null, minSyncPeriod: '0s', syncPeriod: '0s' },
    nodePortAddresses: null,
    oomScoreAdj: null,
    portRange: '',
    showHiddenMetricsForAlpha: '',
    winkernel: { enableDSR: false, forwardHealthCheckVip: false, networkName: '', rootHnsEndpointName: '', sourceVip: '' },
  };
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ cluster: { 'certificate-authority': '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt', server: apiserverURL(plan) }, name: 'default' }],
    contexts: [{ context: { cluster: 'default', namespace: 'default', user: 'default' }, name: 'default' }],
    'current-context': 'default',
    users: [{ name: 'default', user: { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' } }],
  };
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'kube-proxy', namespace: 'kube-system', labels: { app: 'kube-proxy' } } as ManifestObject['metadata'],
    data: { 'config.conf': stringify(config, { nullStr: 'null' }), 'kubeconfig.conf': stringify(kubeconfig) },
  };
}

export async function bootstrapCluster(client: KubeClient, plan: LabPlan): Promise<void> {
  await new Applier(client).apply(kubeProxyConfigMap(plan));
}

/** The pool over the lab's Service range (both families) and an L2Advertisement for it. */
export function labPoolManifests(plan: LabPlan): ManifestObject[] {
  return [
    {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: LAB_POOL, namespace: METALLB_NAMESPACE },
      spec: { addresses: [plan.serviceRange.ipv4, plan.serviceRange.ipv6] },
    },
    {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'L2Advertisement',
      metadata: { name: 'lab-l2', namespace: METALLB_NAMESPACE },
      spec: { ipAddressPools: [LAB_POOL] },
    },
  ];
}

export const allInOnePath = (root: string): string => join(root, 'deploy', 'metallb-ts.yaml');

/** Applies deploy/metallb-ts.yaml, waits for the controller, then creates the pool (its webhook must answer first). */
export async function installMetallb(client: KubeClient, plan: LabPlan, root: string, opts: { timeoutMs: number; progress?: Progress }): Promise<void> {
  const applier = new Applier(client);
  const file = allInOnePath(root);
  await applier.applyAll(parseManifests(readFileSync(file, 'utf8'), file));
  opts.progress?.(`metallb-ts: applied ${file}`);
  await waitDeploymentAvailable(client, METALLB_NAMESPACE, 'controller', opts);
  // The webhook (failurePolicy: Fail) refuses metallb.io objects until the controller serves it; a Ready controller
  // serves it, but the API server may still be dialing an endpoint that is just appearing.
  const pool = labPoolManifests(plan);
  await waitFor(
    'IPAddressPool and L2Advertisement',
    async () => {
      await applier.applyAll(pool);
      return { done: true, state: `${plan.serviceRange.ipv4}, ${plan.serviceRange.ipv6}` };
    },
    { ...opts, isFatal: (err) => err instanceof ApiError && err.status >= 400 && err.status < 500 && !/webhook/i.test(err.message) },
  );
  await waitSpeakers(client, plan, opts);
}

/**
 * One Ready speaker pod per node. Speakers that keep crashing are reported, not waited for: the lab is still usable
 * (addresses are assigned) and `kubectl logs -n metallb-system ds/speaker` tells why.
 */
async function waitSpeakers(client: KubeClient, plan: LabPlan, opts: { timeoutMs: number; progress?: Progress }): Promise<void> {
  let crashing = '';
  await waitFor(
    'speaker pods',
    async () => {
      const pods = await listPods(client, METALLB_NAMESPACE, 'component=speaker');
      const ready = pods.filter(isReady).length;
      const restarts = pods.map((p) => Math.max(0, ...(p.status?.containerStatuses ?? []).map((c) => c.restartCount)));
      if (pods.length >= plan.nodes.length && ready === 0 && restarts.every((r) => r >= 2)) {
        crashing = [...new Set(pods.map(podState))].join(', ');
        return { done: true, state: `${pods.length} crash-looping (${crashing})` };
      }
      return { done: ready >= plan.nodes.length, state: `${ready}/${plan.nodes.length} ready` };
    },
    opts,
  );
  if (crashing) opts.progress?.('speaker pods do not run; see `kubectl logs -n metallb-system ds/speaker`: addresses are assigned but not announced');
}
