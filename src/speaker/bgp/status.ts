// ServiceBGPStatus objects, as MetalLB's ServiceBGPStatusReconciler writes them: every node that advertises a
// Service keeps one object for it (generateName `bgp-`, in the speaker namespace, labels metallb.io/node,
// metallb.io/service-name, metallb.io/service-namespace, owned by the speaker pod) whose status names the node,
// the Service and the BGPPeers the node means to advertise it to (sorted). Unlike ServiceL2Status, several nodes
// hold one each; a node only ever touches its own. No peers: the node's object is deleted. As for ServiceL2Status, an
// object is never patched outside its status (the roles grant no more): one of a previous speaker pod goes with that
// pod (garbage collector), and the deletion brings it back with the new owner.
// reconcile(serviceKey) is level-triggered and runs on a queue of its own, apart from announcing.
import type { Logger } from '../../log.js';
import type { KubeObject } from '../../k8s/types.js';
import { errorText, isNotFound, type KubeClient } from '../../k8s/client.js';
import { collectionPath, objectPath, R } from '../../k8s/resources.js';
import { LABEL_NODE, LABEL_SERVICE_NAME, LABEL_SERVICE_NAMESPACE, statusServiceKey, type OwnerReference } from '../l2/status.js';

export interface ServiceBGPStatusStatus {
  node: string;
  serviceName: string;
  serviceNamespace: string;
  peers: string[];
}

export interface ServiceBGPStatus extends KubeObject {
  status?: Partial<ServiceBGPStatusStatus>;
}

export interface BgpStatusDeps {
  client: KubeClient;
  namespace: string;
  myNode: string;
  log: Logger;
  /** The BGPPeers this node advertises the Service to (empty: it does not advertise it). */
  peersFor(key: string): readonly string[];
  /** This node's ServiceBGPStatus objects (informer cache). */
  cached(): ServiceBGPStatus[];
  owner(): OwnerReference | undefined;
  counters?: { updates: { inc(): void }; updateErrors: { inc(): void } };
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return i < 0 ? ['', key] : [key.slice(0, i), key.slice(i + 1)];
}

export function desiredBgpStatus(node: string, key: string, peers: readonly string[]): ServiceBGPStatusStatus {
  const [serviceNamespace, serviceName] = splitKey(key);
  return { node, serviceName, serviceNamespace, peers: [...new Set(peers)].sort() };
}

const sameStatus = (a: Partial<ServiceBGPStatusStatus> | undefined, b: ServiceBGPStatusStatus): boolean =>
  !!a && a.node === b.node && a.serviceName === b.serviceName && a.serviceNamespace === b.serviceNamespace
  && JSON.stringify(a.peers ?? []) === JSON.stringify(b.peers);

export class BgpStatusWriter {
  /** Objects we created that the cache may not show yet, by name. */
  private readonly created = new Map<string, ServiceBGPStatus>();
  /** Objects we deleted that the cache may still show. */
  private readonly deleted = new Set<string>();

  constructor(private readonly d: BgpStatusDeps) {}

  /** This node's objects about `key`, oldest first. */
  private objectsFor(key: string): ServiceBGPStatus[] {
    const cached = this.d.cached();
    const names = new Set(cached.map((o) => o.metadata?.name));
    for (const name of [...this.created.keys()]) if (names.has(name)) this.created.delete(name);
    for (const name of [...this.deleted]) if (!names.has(name)) this.deleted.delete(name);
    return [...cached, ...this.created.values()]
      .filter((o) => !this.deleted.has(o.metadata?.name ?? '') && statusServiceKey(o) === key && o.metadata?.labels?.[LABEL_NODE] === this.d.myNode)
      .sort((a, b) => String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  }

  async reconcile(key: string): Promise<void> {
    const peers = this.d.peersFor(key);
    const [first, ...redundant] = this.objectsFor(key);
    let mine: ServiceBGPStatus | undefined = first;
    if (peers.length === 0) {
      for (const o of [mine, ...redundant]) if (o) await this.remove(o, key);
      return;
    }
    for (const o of redundant) await this.remove(o, key);
    const status = desiredBgpStatus(this.d.myNode, key, peers);
    const owner = this.d.owner();
    // Written before this pod knew itself: made again with the owner, so that the garbage collector can find it.
    if (mine && owner && (mine.metadata?.ownerReferences ?? []).length === 0) {
      await this.remove(mine, key);
      mine = undefined;
    }
    if (mine && sameStatus(mine.status, status)) return;
    const [serviceNamespace, serviceName] = splitKey(key);
    const labels = { [LABEL_NODE]: this.d.myNode, [LABEL_SERVICE_NAME]: serviceName, [LABEL_SERVICE_NAMESPACE]: serviceNamespace };
    let name = mine?.metadata?.name;
    try {
      if (!name) {
        const made = await this.d.client.post<ServiceBGPStatus>(collectionPath(R.serviceBGPStatuses, this.d.namespace), {
          apiVersion: 'metallb.io/v1beta1',
          kind: 'ServiceBGPStatus',
          metadata: { generateName: 'bgp-', namespace: this.d.namespace, labels, ...(owner ? { ownerReferences: [owner] } : {}) },
          spec: {},
        });
        name = made.metadata?.name ?? '';
        this.created.set(name, { ...made, status: {} });
        this.d.counters?.updates.inc();
      }
      // The status subresource: a create ignores `status`, so it is written by a second request.
      let updated: ServiceBGPStatus;
      try {
        updated = await this.d.client.mergePatch<ServiceBGPStatus>(objectPath(R.serviceBGPStatuses, this.d.namespace, name, 'status'), { status });
      } catch (err) {
        if (isNotFound(err)) {
          // Deleted meanwhile: forget it; the retry creates a new one.
          this.created.delete(name);
          this.deleted.add(name);
        }
        throw err;
      }
      if (this.created.has(name)) this.created.set(name, updated);
      this.d.counters?.updates.inc();
      this.d.log.debug({ service: key, object: `${this.d.namespace}/${name}`, peers: status.peers }, 'ServiceBGPStatus written');
    } catch (err) {
      this.d.counters?.updateErrors.inc();
      throw err;
    }
  }

  private async remove(o: ServiceBGPStatus, key: string): Promise<void> {
    const name = o.metadata?.name ?? '';
    try {
      await this.d.client.delete(objectPath(R.serviceBGPStatuses, this.d.namespace, name));
      this.d.counters?.updates.inc();
    } catch (err) {
      if (!isNotFound(err)) {
        this.d.counters?.updateErrors.inc();
        this.d.log.warn({ service: key, object: `${this.d.namespace}/${name}`, err: errorText(err) }, 'could not delete a ServiceBGPStatus');
        throw err;
      }
    }
    this.created.delete(name);
    this.deleted.add(name);
  }
}
