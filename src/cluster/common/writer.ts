// Typed writes for the cluster components: the REST paths of create/update/status/patch/delete in one place.
import { isNotFound, MERGE_PATCH, type KubeClient } from '../../k8s/client.js';
import { apiVersionOf, collectionPath, objectPath, type Resource } from '../../k8s/resources.js';
import type { Obj } from './types.js';

export interface DeleteOpts {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
}

const nsOf = (o: Obj): string | undefined => o.metadata?.namespace || undefined;

export class ObjectWriter {
  constructor(readonly client: KubeClient) {}

  create<T extends Obj>(r: Resource, namespace: string | undefined, body: T): Promise<T> {
    return this.client.post<T>(collectionPath(r, namespace), { apiVersion: apiVersionOf(r), kind: r.kind, ...body });
  }

  /** PUT of the whole object (optimistic concurrency on its resourceVersion when it has one). */
  update<T extends Obj>(r: Resource, o: T): Promise<T> {
    return this.client.put<T>(objectPath(r, nsOf(o), o.metadata?.name ?? ''), o);
  }

  /** PUT of `/status`. */
  updateStatus<T extends Obj>(r: Resource, o: T): Promise<T> {
    return this.client.put<T>(objectPath(r, nsOf(o), o.metadata?.name ?? '', 'status'), o);
  }

  mergePatch<T extends Obj>(r: Resource, namespace: string | undefined, name: string, patch: unknown, subresource?: string): Promise<T> {
    return this.client.request<T>('PATCH', objectPath(r, namespace, name, subresource), { body: patch, contentType: MERGE_PATCH });
  }

  /** DELETE; resolves false when the object was already gone. */
  async delete(r: Resource, namespace: string | undefined, name: string, opts: DeleteOpts = {}): Promise<boolean> {
    const body = Object.keys(opts).length ? { apiVersion: 'v1', kind: 'DeleteOptions', ...opts } : undefined;
    try {
      await this.client.delete(objectPath(r, namespace, name), body ? { body } : {});
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async get<T extends Obj>(r: Resource, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return await this.client.get<T>(objectPath(r, namespace, name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
