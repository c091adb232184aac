// The bookkeeping shared by the speaker's per-Service status objects (ServiceL2Status, ServiceBGPStatus): MetalLB's
// speakers keep one object per Service and node, made with generateName and labelled with the node and the Service,
// owned by the speaker pod. The informer cache lags behind our own writes, so what we created and deleted is
// remembered until the cache shows it; without that a quick second reconcile would create a duplicate or delete
// an object twice. The object is never written outside its status (MetalLB's roles grant no more): a create, then a
// merge patch of the status subresource.
import type { Logger } from '../log.js';
import type { KubeObject } from '../k8s/types.js';
import { errorText, isNotFound, type KubeClient } from '../k8s/client.js';
import { apiVersionOf, collectionPath, objectPath, type Resource } from '../k8s/resources.js';

export const LABEL_NODE = 'metallb.io/node';
export const LABEL_SERVICE_NAME = 'metallb.io/service-name';
export const LABEL_SERVICE_NAMESPACE = 'metallb.io/service-namespace';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export interface StatusObject<S> extends KubeObject {
  status?: Partial<S>;
}

export interface StatusObjectsDeps<S> {
  client: KubeClient;
  namespace: string;
  log: Logger;
  resource: Resource;
  /** `l2-`, `bgp-`: MetalLB's prefixes. */
  generateName: string;
  /** The objects of the namespace the speaker watches (informer cache). */
  cached(): StatusObject<S>[];
  /**
   * The cached objects about a Service key (an index of the informer by statusServiceKey) and the cached object of
   * a name. With them a reconcile looks at its Service's objects only; without, it scans them all (100,000 Services
   * and as many objects: minutes of CPU and a heap filled with copies of the cache's list).
   */
  cachedFor?(key: string): readonly StatusObject<S>[];
  cachedNamed?(name: string): StatusObject<S> | undefined;
  counters?: { updates: { inc(): void }; updateErrors: { inc(): void } };
}

export function splitServiceKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return i < 0 ? ['', key] : [key.slice(0, i), key.slice(i + 1)];
}

/** The service key a status object is about, from its labels (undefined when they are incomplete). */
export function statusServiceKey(o: KubeObject): string | undefined {
  const l = o.metadata?.labels;
  const name = l?.[LABEL_SERVICE_NAME];
  const ns = l?.[LABEL_SERVICE_NAMESPACE];
  if (!name || ns === undefined || !l?.[LABEL_NODE]) return undefined;
  return `${ns}/${name}`;
}

export class StatusObjects<S> {
  /** Objects we created that the cache may not show yet, by name. */
  private readonly created = new Map<string, StatusObject<S>>();
  /** Objects we deleted that the cache may still show. */
  private readonly deleted = new Set<string>();
  /** Names we deleted ourselves, so that their delete events are not taken for someone else's. */
  private readonly deletedByUs = new Set<string>();

  constructor(private readonly d: StatusObjectsDeps<S>) {}

  /** The objects about `key` (of `node` only, when given), as far as we know, oldest first. */
  objectsFor(key: string, node?: string): StatusObject<S>[] {
    let cached: readonly StatusObject<S>[];
    let inCache: (name: string) => boolean;
    const { cachedFor, cachedNamed } = this.d;
    if (cachedFor && cachedNamed) {
      cached = cachedFor(key);
      inCache = (name) => cachedNamed(name) !== undefined;
    } else {
      cached = this.d.cached();
      const names = new Set(cached.map((o) => o.metadata?.name));
      inCache = (name) => names.has(name);
    }
    for (const name of [...this.created.keys()]) if (inCache(name)) this.created.delete(name);
    for (const name of [...this.deleted]) if (!inCache(name)) this.deleted.delete(name);
    return [...cached, ...this.created.values()]
      .filter((o) => !this.deleted.has(o.metadata?.name ?? '') && statusServiceKey(o) === key
        && (node === undefined || o.metadata?.labels?.[LABEL_NODE] === node))
      .sort((a, b) => String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? ''))
        || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  }

  /**
   * Writes `node`'s status about `key`: into the object `name`, or into a new one when `name` is undefined. A create
   * ignores `status`, so the status is always a second request, a merge patch (a field set to null removes it).
   */
  async write(key: string, node: string, name: string | undefined, status: Record<string, unknown>, owner: OwnerReference | undefined): Promise<void> {
    const { client, namespace, resource } = this.d;
    const [serviceNamespace, serviceName] = splitServiceKey(key);
    try {
      if (!name) {
        const made = await client.post<StatusObject<S>>(collectionPath(resource, namespace), {
          apiVersion: apiVersionOf(resource),
          kind: resource.kind,
          metadata: {
            generateName: this.d.generateName,
            namespace,
            labels: { [LABEL_NODE]: node, [LABEL_SERVICE_NAME]: serviceName, [LABEL_SERVICE_NAMESPACE]: serviceNamespace },
            ...(owner ? { ownerReferences: [owner] } : {}),
          },
          spec: {},
        });
        name = made.metadata?.name ?? '';
        this.created.set(name, { ...made, status: {} });
        this.d.counters?.updates.inc();
      }
      let updated: StatusObject<S>;
      try {
        updated = await client.mergePatch<StatusObject<S>>(objectPath(resource, namespace, name, 'status'), { status });
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
      this.d.log.debug({ service: key, object: `${namespace}/${name}`, status }, `${resource.kind} written`);
    } catch (err) {
      this.d.counters?.updateErrors.inc();
      throw err;
    }
  }

  async remove(o: StatusObject<S>, key: string): Promise<void> {
    const name = o.metadata?.name ?? '';
    this.deletedByUs.add(name);
    if (this.deletedByUs.size > 10_000) this.deletedByUs.clear();
    try {
      await this.d.client.delete(objectPath(this.d.resource, this.d.namespace, name));
      this.d.counters?.updates.inc();
    } catch (err) {
      if (!isNotFound(err)) {
        this.d.counters?.updateErrors.inc();
        this.d.log.warn({ service: key, object: `${this.d.namespace}/${name}`, err: errorText(err) }, `could not delete a ${this.d.resource.kind}`);
        throw err;
      }
    }
    this.created.delete(name);
    this.deleted.add(name);
  }

  /** Whether a delete event for `name` was our own deletion (answered once per name). */
  wasDeletedByUs(name: string): boolean {
    return this.deletedByUs.delete(name);
  }
}
