// ServiceL2Status objects, as MetalLB's Layer2StatusReconciler writes them: the node announcing a Service keeps one
// object (generateName `l2-`, in the speaker namespace, labels metallb.io/node, metallb.io/service-name,
// metallb.io/service-namespace, owned by the speaker pod) with status.node/serviceName/serviceNamespace and
// status.interfaces (only when the advertisements name interfaces). It deletes the objects other nodes left for
// that Service (a dead node cannot); a node that stops announcing deletes its own.
// reconcile(serviceKey) is level-triggered; it runs on a queue of its own so status writes never delay announcing.
import type { Logger } from '../../log.js';
import type { KubeClient } from '../../k8s/client.js';
import { R } from '../../k8s/resources.js';
import { LABEL_NODE, splitServiceKey, StatusObjects, type OwnerReference, type StatusObject } from '../status-objects.js';
import type { L2Status } from './layer2.js';

export interface ServiceL2StatusStatus {
  node: string;
  serviceName: string;
  serviceNamespace: string;
  interfaces?: { name: string }[];
}

export type ServiceL2Status = StatusObject<ServiceL2StatusStatus>;

export interface L2StatusDeps {
  client: KubeClient;
  namespace: string;
  myNode: string;
  log: Logger;
  /** What this node announces for the Service (undefined: not announcing it). */
  statusFor(key: string): L2Status | undefined;
  /** The ServiceL2Status objects of the namespace (informer cache). */
  cached(): ServiceL2Status[];
  /** The cached objects about a Service key, and the cached object of a name (lookups without a scan). */
  cachedFor?(key: string): readonly ServiceL2Status[];
  cachedNamed?(name: string): ServiceL2Status | undefined;
  /** The speaker pod, owner of the objects (none when unknown). */
  owner(): OwnerReference | undefined;
  counters?: { updates: { inc(): void }; updateErrors: { inc(): void } };
}

/** The status MetalLB's buildDesiredStatus produces (interfaces sorted: Go iterates a set, we keep it stable). */
export function desiredStatus(node: string, key: string, s: L2Status): ServiceL2StatusStatus {
  const [serviceNamespace, serviceName] = splitServiceKey(key);
  const out: ServiceL2StatusStatus = { node, serviceName, serviceNamespace };
  if (s.interfaces !== 'all' && s.interfaces.length > 0) out.interfaces = [...s.interfaces].sort().map((name) => ({ name }));
  return out;
}

const sameStatus = (a: Partial<ServiceL2StatusStatus> | undefined, b: ServiceL2StatusStatus): boolean =>
  !!a && a.node === b.node && a.serviceName === b.serviceName && a.serviceNamespace === b.serviceNamespace
  && JSON.stringify(a.interfaces ?? []) === JSON.stringify(b.interfaces ?? []);

export class L2StatusWriter {
  private readonly objects: StatusObjects<ServiceL2StatusStatus>;
  /** Per Service, how often someone else removed our object lately (for the back-off). */
  private readonly externalDeletes = new Map<string, { count: number; last: number }>();

  constructor(private readonly d: L2StatusDeps) {
    this.objects = new StatusObjects({ ...d, resource: R.serviceL2Statuses, generateName: 'l2-' });
  }

  async reconcile(key: string): Promise<void> {
    const { myNode } = this.d;
    const want = this.d.statusFor(key);
    const objects = this.objects.objectsFor(key);
    if (!want) {
      // Not announcing: remove only our own (the new owner removes the others').
      for (const o of objects) if (o.metadata?.labels?.[LABEL_NODE] === myNode) await this.objects.remove(o, key);
      return;
    }
    let mine: ServiceL2Status | undefined;
    for (const o of objects) {
      if (!mine && o.metadata?.labels?.[LABEL_NODE] === myNode) mine = o;
      else await this.objects.remove(o, key); // other nodes' objects, or a duplicate of ours
    }
    const status = desiredStatus(myNode, key, want);
    if (mine && sameStatus(mine.status, status)) return;
    // An all-interfaces status drops the list with a null (merge patch).
    await this.objects.write(key, myNode, mine?.metadata?.name, { ...status, interfaces: status.interfaces ?? null }, this.d.owner());
  }

  /**
   * Our object for `key` was deleted. By us: nothing to do (undefined). By someone else: how long to wait before
   * writing it again. Two nodes that both believe they announce (a memberlist partition) delete each other's
   * objects on every write; the growing wait (1 s, 2 s … 60 s) keeps that to a trickle until the partition heals.
   */
  deletedExternally(key: string, name: string): number | undefined {
    if (this.objects.wasDeletedByUs(name)) return undefined;
    const now = Date.now();
    const prev = this.externalDeletes.get(key);
    const count = prev && now - prev.last < 120_000 ? prev.count + 1 : 1;
    this.externalDeletes.set(key, { count, last: now });
    return Math.min(60_000, 1000 * 2 ** (count - 1));
  }
}
