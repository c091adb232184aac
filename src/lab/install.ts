// What `lab up` installs unless --no-loadbalancer: metallb-ts from deploy/ with an IPAddressPool over the lab's
// Service range and an L2Advertisement. (kubeadm's kube-proxy ConfigMap is the API server's --kube-proxy-configmap.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, type KubeClient } from '../k8s/client.js';
import { Applier, parseManifests, type ManifestObject } from './apply.js';
import type { LabPlan } from './plan.js';
import { isReady, listPods, podState, waitDeploymentAvailable, waitFor, type Progress } from './wait.js';

export const METALLB_NAMESPACE = 'metallb-system';
export const LAB_POOL = 'lab-pool';

/** The lab's BGPPeers' hold time where the router has no BFD (GoBGP): MetalLB's 90 s default would take that long. */
export const LAB_NO_BFD_HOLD_TIME = '3s';

/**
 * BGP mode: a BGPPeer per router address (MetalLB's native sessions carry the family of the peer's address), with a
 * BFDProfile where the router runs BFD (else a 3 s hold time, so a dead node is still routed around within seconds),
 * and a BGPAdvertisement of the pool.
 */
export function labBgpManifests(plan: LabPlan): ManifestObject[] {
  const g = plan.bgp!;
  const bfd = g.daemon !== 'gobgp';
  const peer = (name: string, address: string): ManifestObject => ({
    apiVersion: 'metallb.io/v1beta2',
    kind: 'BGPPeer',
    metadata: { name, namespace: METALLB_NAMESPACE },
    spec: { myASN: g.nodeAsn, peerASN: g.routerAsn, peerAddress: address, ...(bfd ? { bfdProfile: 'lab-bfd' } : { holdTime: LAB_NO_BFD_HOLD_TIME }) },
  });
  return [
    ...(bfd ? [{
      apiVersion: 'metallb.io/v1beta1',
      kind: 'BFDProfile',
      metadata: { name: 'lab-bfd', namespace: METALLB_NAMESPACE },
      spec: { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3 },
    }] : []),
    peer('lab-router', plan.router.ipv4),
    peer('lab-router-v6', plan.router.ipv6),
    {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'BGPAdvertisement',
      metadata: { name: 'lab-bgp', namespace: METALLB_NAMESPACE },
      spec: { ipAddressPools: [LAB_POOL] },
    },
  ];
}

/** The pool over the lab's Service range (both families) and an L2Advertisement for it (BGP mode: peers and a BGPAdvertisement). */
export function labPoolManifests(plan: LabPlan): ManifestObject[] {
  const pool: ManifestObject = {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name: LAB_POOL, namespace: METALLB_NAMESPACE },
    spec: { addresses: [plan.serviceRange.ipv4, plan.serviceRange.ipv6] },
  };
  if (plan.mode === 'bgp' && plan.bgp) return [pool, ...labBgpManifests(plan)];
  return [
    pool,
    {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'L2Advertisement',
      metadata: { name: 'lab-l2', namespace: METALLB_NAMESPACE },
      spec: { ipAddressPools: [LAB_POOL] },
    },
  ];
}

export const allInOnePath = (root: string): string => join(root, 'deploy', 'metallb-ts.yaml');

/** What the Helm chart's `speaker.xdp: true` grants the speaker on top of the manifests' NET_RAW and SYS_NICE. */
export const SPEAKER_XDP_CAPABILITIES = ['BPF', 'NET_ADMIN'];

/** The speaker DaemonSet of `objects` with the chart's `speaker.xdp` capabilities added, so ARP and NDP are answered by XDP. */
export function withSpeakerXdp(objects: ManifestObject[]): ManifestObject[] {
  let found = false;
  const out = objects.map((o) => {
    if (o.kind !== 'DaemonSet' || o.metadata?.name !== 'speaker') return o;
    found = true;
    const ds = structuredClone(o) as ManifestObject & { spec: { template: { spec: { containers: Array<{ name: string; securityContext?: { capabilities?: { add?: string[] } } }> } } } };
    const speaker = ds.spec.template.spec.containers.find((c) => c.name === 'speaker');
    if (!speaker) throw new Error('the speaker DaemonSet has no container named speaker');
    const caps = ((speaker.securityContext ??= {}).capabilities ??= {});
    caps.add = [...new Set([...(caps.add ?? []), ...SPEAKER_XDP_CAPABILITIES])];
    return ds;
  });
  if (!found) throw new Error('no speaker DaemonSet among the manifests');
  return out;
}

/** Applies deploy/metallb-ts.yaml, waits for the controller, then creates the pool (its webhook must answer first). */
export async function installMetallb(client: KubeClient, plan: LabPlan, root: string, opts: { timeoutMs: number; progress?: Progress; speakerXdp?: boolean }): Promise<void> {
  const applier = new Applier(client);
  const file = allInOnePath(root);
  const manifests = parseManifests(readFileSync(file, 'utf8'), file);
  await applier.applyAll(opts.speakerXdp ? withSpeakerXdp(manifests) : manifests);
  opts.progress?.(`metallb-ts: applied ${file}${opts.speakerXdp ? ` (the speaker granted ${SPEAKER_XDP_CAPABILITIES.join(' and ')}: ARP and NDP answered by XDP)` : ''}`);
  await waitDeploymentAvailable(client, METALLB_NAMESPACE, 'controller', opts);
  // The webhook (failurePolicy: Fail) refuses metallb.io objects until the controller serves it; a Ready controller
  // serves it, but the API server may still be dialing an endpoint that is just appearing.
  const pool = labPoolManifests(plan);
  await waitFor(
    plan.mode === 'bgp' ? 'IPAddressPool, BGPPeers and BGPAdvertisement' : 'IPAddressPool and L2Advertisement',
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
