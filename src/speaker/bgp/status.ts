// ServiceBGPStatus objects, as MetalLB's ServiceBGPStatusReconciler writes them: every node that advertises a
// Service keeps one object for it (generateName `bgp-`, in the speaker namespace, labels metallb.io/node,
// metallb.io/service-name, metallb.io/service-namespace, owned by the speaker pod) whose status names the node,
// the Service and the BGPPeers the node means to advertise it to (sorted). Unlike ServiceL2Status, several nodes
// hold one each; a node only ever touches its own. No peers: the node's object is deleted. As for ServiceL2Status, an
// object is never patched outside its status (the roles grant no more): one of a previous speaker pod goes with that
// pod (garbage collector), and the deletion brings it back with the new owner.
// reconcile(serviceKey) is level-triggered and runs on a queue of its own, apart from announcing.
import type { Logger } from '../../log.js';
import type { KubeClient } from '../../k8s/client.js';
import { R } from '../../k8s/resources.js';
import { splitServiceKey, StatusObjects, type OwnerReference, type StatusObject } from '../status-objects.js';

export interface ServiceBGPStatusStatus {
  node: string;
  serviceName: string;
  serviceNamespace: string;
  peers: string[];
}

export type ServiceBGPStatus = StatusObject<ServiceBGPStatusStatus>;

export interface BgpStatusDeps {
  client: KubeClient;
  namespace: string;
  myNode: string;
  log: Logger;
  /** The BGPPeers this node advertises the Service to (empty: it does not advertise it). */
  peersFor(key: string): readonly string[];
  /** This node's ServiceBGPStatus objects (informer cache). */
  cached(): ServiceBGPStatus[];
  /** The cached objects about a Service key, and the cached object of a name (lookups without a scan). */
  cachedFor?(key: string): readonly ServiceBGPStatus[];
  cachedNamed?(name: string): ServiceBGPStatus | undefined;
  owner(): OwnerReference | undefined;
  counters?: { updates: { inc(): void }; updateErrors: { inc(): void } };
}

export function desiredBgpStatus(node: string, key: string, peers: readonly string[]): ServiceBGPStatusStatus {
  const [serviceNamespace, serviceName] = splitServiceKey(key);
  return { node, serviceName, serviceNamespace, peers: [...new Set(peers)].sort() };
}

const sameStatus = (a: Partial<ServiceBGPStatusStatus> | undefined, b: ServiceBGPStatusStatus): boolean =>
  !!a && a.node === b.node && a.serviceName === b.serviceName && a.serviceNamespace === b.serviceNamespace
  && JSON.stringify(a.peers ?? []) === JSON.stringify(b.peers);

export class BgpStatusWriter {
  private readonly objects: StatusObjects<ServiceBGPStatusStatus>;

  constructor(private readonly d: BgpStatusDeps) {
    this.objects = new StatusObjects({ ...d, resource: R.serviceBGPStatuses, generateName: 'bgp-' });
  }

  async reconcile(key: string): Promise<void> {
    const peers = this.d.peersFor(key);
    const [first, ...redundant] = this.objects.objectsFor(key, this.d.myNode);
    let mine: ServiceBGPStatus | undefined = first;
    if (peers.length === 0) {
      for (const o of [mine, ...redundant]) if (o) await this.objects.remove(o, key);
      return;
    }
    for (const o of redundant) await this.objects.remove(o, key);
    const owner = this.d.owner();
    // Written before this pod knew itself: made again with the owner, so that the garbage collector can find it.
    if (mine && owner && (mine.metadata?.ownerReferences ?? []).length === 0) {
      await this.objects.remove(mine, key);
      mine = undefined;
    }
    const status = desiredBgpStatus(this.d.myNode, key, peers);
    if (mine && sameStatus(mine.status, status)) return;
    await this.objects.write(key, this.d.myNode, mine?.metadata?.name, { ...status }, owner);
  }
}
