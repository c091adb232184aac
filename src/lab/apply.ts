// Server-side apply of manifests (what `kubectl apply --server-side` does): kinds are mapped to resources through API
// discovery, re-read when a kind is unknown (CRDs applied a moment ago become served shortly after).
import { parseAllDocuments } from 'yaml';
import { ApiError, type KubeClient } from '../k8s/client.js';

export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** The objects of a multi-document YAML text (`List` kinds flattened, empty documents skipped). */
export function parseManifests(text: string, source: string): ManifestObject[] {
  const out: ManifestObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new ManifestError(`${source}: ${doc.errors[0]?.message ?? 'invalid YAML'}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    const push = (v: unknown): void => {
      const o = v as Partial<ManifestObject> | null;
      if (!o || typeof o !== 'object' || typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') {
        throw new ManifestError(`${source}: a document is not a Kubernetes object (apiVersion, kind and metadata.name are required)`);
      }
      out.push(o as ManifestObject);
    };
    const v = value as { kind?: unknown; items?: unknown };
    if (typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items)) v.items.forEach(push);
    else push(value);
  }
  return out;
}

export class Applier {
  private readonly cache = new Map<string, ApiResource[]>();

  constructor(
    private readonly client: KubeClient,
    private readonly fieldManager = 'metallb-lab',
  ) {}

  private async resources(apiVersion: string, refresh: boolean): Promise<ApiResource[]> {
    if (!refresh && this.cache.has(apiVersion)) return this.cache.get(apiVersion) ?? [];
    const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    try {
      const list = await this.client.get<{ resources?: ApiResource[] }>(path);
      const res = (list.resources ?? []).filter((r) => !r.name.includes('/'));
      this.cache.set(apiVersion, res);
      return res;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return [];
      throw err;
    }
  }

  /** The REST path of an object; waits up to `timeoutMs` for its kind to be served (a CRD being established). */
  async pathOf(obj: ManifestObject, timeoutMs = 20_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (let refresh = false; ; refresh = true) {
      const r = (await this.resources(obj.apiVersion, refresh)).find((x) => x.kind === obj.kind);
      if (r) {
        const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
        const ns = r.namespaced ? `/namespaces/${encodeURIComponent(obj.metadata.namespace ?? 'default')}` : '';
        return `${base}${ns}/${r.name}/${encodeURIComponent(obj.metadata.name)}`;
      }
      if (Date.now() > until) throw new ManifestError(`${obj.kind} ${obj.metadata.name}: the API server does not serve kind ${obj.kind} in ${obj.apiVersion}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  async apply(obj: ManifestObject): Promise<void> {
    const path = await this.pathOf(obj);
    await this.client.request('PATCH', path, {
      body: JSON.stringify(obj),
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: this.fieldManager, force: true },
    });
  }

  async applyAll(objs: readonly ManifestObject[]): Promise<void> {
    for (const o of objs) await this.apply(o);
  }
}
