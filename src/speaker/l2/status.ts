// ServiceL2Status objects, as MetalLB's Layer2StatusReconciler writes them: the node announcing a Service keeps one
// object (generateName `l2-`, in the speaker namespace, labels metallb.io/node, metallb.io/service-name,
// metallb.io/service-namespace, owned by the speaker pod) with status.node/serviceName/serviceNamespace and
// status.interfaces (only when the advertisements name interfaces). It deletes the objects other nodes left for
// that Service (a dead node cannot); a node that stops announcing deletes its own.
// reconcile(serviceKey) is level-triggered; it runs on a queue of its own so status writes never delay announcing.
import type { Logger } from '../../log.js';
import type { KubeObject } from '../../k8s/types.js';
import { errorText, isNotFound, type KubeClient } from '../../k8s/client.js';
import { collectionPath, objectPath, R } from '../../k8s/resources.js';
import type { L2Status } from './layer2.js';

export const LABEL_NODE = 'metallb.io/node';
export const LABEL_SERVICE_NAME = 'metallb.io/service-name';
export const LABEL_SERVICE_NAMESPACE = 'metallb.io/service-namespace';

export interface ServiceL2StatusStatus {
  node: string;
  serviceName: string;
  serviceNamespace: string;
  interfaces?: { name: string }[];
}

export interface ServiceL2Status extends KubeObject {
  status?: Partial<ServiceL2StatusStatus>;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export interface L2StatusDeps {
  client: KubeClient;
  namespace: string;
  myNode: string;
  log: Logger;
  /** What this node announces for the Service (undefined: not announcing it). */
  statusFor(key: string): L2Status | undefined;
  /** The ServiceL2Status objects of the namespace (informer cache). */
  cached(): ServiceL2Status[];
  /** The speaker pod, owner of the objects (none when unknown). */
  owner(): OwnerReference | undefined;
  counters?: { updates: { inc(): void }; updateErrors: { inc(): void } };
}

/** The status MetalLB's buildDesiredStatus produces (interfaces sorted: Go iterates a set, we keep it stable). */
export function desiredStatus(node: string, key: string, s: L2Status): ServiceL2StatusStatus {
  const [serviceNamespace = '', serviceName = ''] = splitKey(key);
  const out: ServiceL2StatusStatus = { node, serviceName, serviceNamespace };
  if (s.interfaces !== 'all' && s.interfaces.length > 0) out.interfaces = [...s.interfaces].sort().map((name) => ({ name }));
  return out;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return i < 0 ? ['', key] : [key.slice(0, i), key.slice(i + 1)];
}

const sameStatus = (a: Partial<ServiceL2StatusStatus> | undefined, b: ServiceL2StatusStatus): boolean =>
  !!a && a.node === b.node && a.serviceName === b.serviceName && a.serviceNamespace === b.serviceNamespace
  && JSON.stringify(a.interfaces ?? []) === JSON.stringify(b.interfaces ?? []);

/** The service key a status object is about, from its labels (undefined when they are incomplete). */
export function statusServiceKey(o: ServiceL2Status): string | undefined {
  const l = o.metadata?.labels;
  const name = l?.[LABEL_SERVICE_NAME];
  const ns = l?.[LABEL_SERVICE_NAMESPACE];
  if (!name || ns === undefined || !l?.[LABEL_NODE]) return undefined;
  return `${ns}/${name}`;
}

export class L2StatusWriter {
  /** Objects we created that the cache may not show yet, by name. */
  private readonly created = new Map<string, ServiceL2Status>();
  /** Objects we deleted that the cache may still show. */
  private readonly deleted = new Set<string>();
  /** Names we deleted ourselves, so their delete events are not taken for someone else's. */
  private readonly deletedByUs = new Set<string>();
  /** Per Service, how often someone else removed our object lately (for the back-off). */
  private readonly externalDeletes = new Map<string, { count: number; last: number }>();

  constructor(private readonly d: L2StatusDeps) {}

  /** The objects about `key`, as far as we know. */
  private objectsFor(key: string): ServiceL2Status[] {
    const cached = this.d.cached();
    const names = new Set(cached.map((o) => o.metadata?.name));
    for (const name of [...this.created.keys()]) if (names.has(name)) this.created.delete(name);
    for (const name of [...this.deleted]) if (!names.has(name)) this.deleted.delete(name);
    return [...cached, ...this.created.values()]
      .filter((o) => !this.deleted.has(o.metadata?.name ?? '') && statusServiceKey(o) === key)
      .sort((a, b) => String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  }

  async reconcile(key: string): Promise<void> {
    const { myNode } = this.d;
    const want = this.d.statusFor(key);
    const objects = this.objectsFor(key);
    if (!want) {
      // Not announcing: remove only our own (the new owner removes the others').
      for (const o of objects) if (o.metadata?.labels?.[LABEL_NODE] === myNode) await this.remove(o, key);
      return;
    }
    let mine: ServiceL2Status | undefined;
    for (const o of objects) {
      if (!mine && o.metadata?.labels?.[LABEL_NODE] === myNode) mine = o;
      else await this.remove(o, key); // other nodes' objects, or a duplicate of ours
    }
    const status = desiredStatus(myNode, key, want);
    if (mine && sameStatus(mine.status, status)) return;
    const [serviceNamespace, serviceName] = splitKey(key);
    const labels = { [LABEL_NODE]: myNode, [LABEL_SERVICE_NAME]: serviceName, [LABEL_SERVICE_NAMESPACE]: serviceNamespace };
    const owner = this.d.owner();
    let name = mine?.metadata?.name;
    try {
      if (!name) {
        const made = await this.d.client.post<ServiceL2Status>(collectionPath(R.serviceL2Statuses, this.d.namespace), {
          apiVersion: 'metallb.io/v1beta1',
          kind: 'ServiceL2Status',
          metadata: { generateName: 'l2-', namespace: this.d.namespace, labels, ...(owner ? { ownerReferences: [owner] } : {}) },
          spec: {},
        });
        name = made.metadata?.name ?? '';
        this.created.set(name, { ...made, status: {} });
        this.d.counters?.updates.inc();
      }
      // The status subresource: a create ignores `status`, so it is always written by a second request.
      let updated: ServiceL2Status;
      try {
        // A merge patch only removes a field set to null: an all-interfaces status drops the list that way.
        const patch = { status: { ...status, interfaces: status.interfaces ?? null } };
        updated = await this.d.client.mergePatch<ServiceL2Status>(objectPath(R.serviceL2Statuses, this.d.namespace, name, 'status'), patch);
      } catch (err) {
        // Deleted meanwhile (by a user, or by another node): forget it; the retry creates a new one.
        if (isNotFound(err)) {
          this.created.delete(name);
          this.deleted.add(name);
        }
        throw err;
      }
      if (this.created.has(name)) this.created.set(name, updated);
      this.d.counters?.updates.inc();
      this.d.log.debug({ service: key, object: `${this.d.namespace}/${name}`, status }, 'ServiceL2Status written');
    } catch (err) {
      this.d.counters?.updateErrors.inc();
      throw err;
    }
  }

  /**
   * Our object for `key` was deleted. By us: nothing to do (undefined). By someone else: how long to wait before
   * writing it again. Two nodes that both believe they announce (a memberlist partition) delete each other's
   * objects on every write; the growing wait (1 s, 2 s … 60 s) keeps that to a trickle until the partition heals.
   */
  deletedExternally(key: string, name: string): number | undefined {
    if (this.deletedByUs.delete(name)) return undefined;
    const now = Date.now();
    const prev = this.externalDeletes.get(key);
    const count = prev && now - prev.last < 120_000 ? prev.count + 1 : 1;
    this.externalDeletes.set(key, { count, last: now });
    return Math.min(60_000, 1000 * 2 ** (count - 1));
  }

  private async remove(o: ServiceL2Status, key: string): Promise<void> {
    const name = o.metadata?.name ?? '';
    this.deletedByUs.add(name);
    if (this.deletedByUs.size > 10_000) this.deletedByUs.clear();
    try {
      await this.d.client.delete(objectPath(R.serviceL2Statuses, this.d.namespace, name));
      this.d.counters?.updates.inc();
    } catch (err) {
      if (!isNotFound(err)) {
        this.d.counters?.updateErrors.inc();
        this.d.log.warn({ service: key, object: `${this.d.namespace}/${name}`, err: errorText(err) }, 'could not delete a ServiceL2Status');
        throw err;
      }
    }
    this.created.delete(name);
    this.deleted.add(name);
  }
}
