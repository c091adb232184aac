// What the HPA controller asks the API server: the target's `scale` subresource (its resource found by discovery,
// like client-go's RESTMapper + scale client), and pod metrics from the resource metrics API (metrics.k8s.io, served
// by metrics-server behind its APIService). Errors carry client-go's wording, which the HPA's events and conditions
// quote.
import { ApiError, type KubeClient } from '../../../k8s/client.js';
import { milliOf } from '../../common/quantity.js';
import type { PodMetricsInfo } from './replica-calculator.js';
import type { Scale } from './types.js';

/** client-go's message for a failed request: the Status message, or its generic text for a body that is none. */
export function clientGoMessage(err: unknown, verb: string, qualifiedResource: string): string {
  if (!(err instanceof ApiError)) return err instanceof Error ? err.message : String(err);
  const body = err.body as { kind?: string; message?: string } | undefined;
  if (body && typeof body === 'object' && body.kind === 'Status' && body.message) return body.message;
  const generic: Record<number, string> = {
    401: 'Unauthorized',
    403: 'forbidden',
    404: 'the server could not find the requested resource',
    409: 'the server reported a conflict',
    429: 'the server has received too many requests and has asked us to try again later',
    500: 'an error on the server has prevented the request from succeeding',
    503: 'the server is currently unable to handle the request',
    504: 'the server was unable to return a response in the time allotted, but may still be processing the request',
  };
  if (err.status === 0) return err.message.replace(/^[A-Z]+ \S+: /, '');
  return `${generic[err.status] ?? `an error on the server ("${String(body ?? '').trim().slice(0, 100)}") has prevented the request from succeeding`} (${verb} ${qualifiedResource})`;
}

export interface Mapping {
  group: string;
  version: string;
  resource: string;
}

interface ApiResource {
  name: string;
  kind: string;
}

const gvPath = (group: string, version: string): string => (group ? `/apis/${group}/${version}` : `/api/${version}`);

/** Kind → resource through discovery, cached, re-read on a miss (RESTMapper.RESTMappings). */
export class ScaleClient {
  private readonly lists = new Map<string, { at: number; resources: ApiResource[] }>();

  constructor(private readonly client: KubeClient) {}

  private async resources(group: string, version: string, fresh: boolean): Promise<ApiResource[]> {
    const key = `${group}/${version}`;
    const hit = this.lists.get(key);
    if (hit && !fresh) return hit.resources;
    try {
      const l = await this.client.get<{ resources?: ApiResource[] }>(gvPath(group, version));
      const resources = (l.resources ?? []).filter((r) => !r.name.includes('/'));
      this.lists.set(key, { at: Date.now(), resources });
      return resources;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return [];
      throw err;
    }
  }

  private async versions(group: string): Promise<string[]> {
    if (group === '') return ['v1'];
    try {
      const g = await this.client.get<{ versions?: { version: string }[]; preferredVersion?: { version: string } }>(`/apis/${group}`);
      const vs = (g.versions ?? []).map((v) => v.version);
      const pref = g.preferredVersion?.version;
      return pref ? [pref, ...vs.filter((v) => v !== pref)] : vs;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return [];
      throw err;
    }
  }

  /** Every served resource of this group and kind, preferred version first; throws `no matches for kind …`. */
  async mappings(group: string, kind: string): Promise<Mapping[]> {
    for (const fresh of [false, true]) {
      const out: Mapping[] = [];
      for (const version of await this.versions(group)) {
        const r = (await this.resources(group, version, fresh)).find((x) => x.kind === kind);
        if (r) out.push({ group, version, resource: r.name });
      }
      if (out.length) return out;
    }
    throw new Error(`no matches for kind "${kind}" in group "${group}"`);
  }

  private path(ns: string, m: Mapping, name: string): string {
    return `${gvPath(m.group, m.version)}/namespaces/${encodeURIComponent(ns)}/${m.resource}/${encodeURIComponent(name)}/scale`;
  }

  async get(ns: string, m: Mapping, name: string): Promise<Scale> {
    try {
      return await this.client.get<Scale>(this.path(ns, m, name));
    } catch (err) {
      throw new Error(clientGoMessage(err, 'get', `${m.resource}.${m.group}`));
    }
  }

  async update(ns: string, m: Mapping, scale: Scale): Promise<Scale> {
    try {
      return await this.client.put<Scale>(this.path(ns, m, scale.metadata?.name ?? ''), scale);
    } catch (err) {
      throw new Error(clientGoMessage(err, 'update', `${m.resource}.${m.group}`));
    }
  }
}

interface PodMetricsItem {
  metadata?: { name?: string };
  timestamp?: string;
  window?: string;
  containers?: { name: string; usage?: Record<string, string> }[];
}

/** A Go duration (`15.003s`, `1m0s`, `500ms`) in ms. */
export function parseGoDurationMs(d: string | undefined): number {
  if (!d) return 0;
  let ms = 0;
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * (units[m[2]!] ?? 0);
  return ms;
}

export class ResourceMetricsClient {
  constructor(private readonly client: KubeClient) {}

  /** GetResourceMetric: per pod the sum over containers (or the named one), in milli-units. */
  async getResourceMetric(resource: string, namespace: string, selector: string, container: string): Promise<{ metrics: PodMetricsInfo; timestamp: number }> {
    let items: PodMetricsItem[];
    try {
      const l = await this.client.get<{ items?: PodMetricsItem[] }>(`/apis/metrics.k8s.io/v1beta1/namespaces/${encodeURIComponent(namespace)}/pods`, { query: { labelSelector: selector } });
      items = l.items ?? [];
    } catch (err) {
      throw new Error(`unable to fetch metrics from resource metrics API: ${clientGoMessage(err, 'get', 'pods.metrics.k8s.io')}`);
    }
    if (items.length === 0) throw new Error('no metrics returned from resource metrics API');
    const metrics: PodMetricsInfo = new Map();
    for (const m of items) {
      const name = m.metadata?.name ?? '';
      const timestamp = Date.parse(m.timestamp ?? '') || 0;
      const windowMs = parseGoDurationMs(m.window);
      const containers = m.containers ?? [];
      if (container !== '') {
        const c = containers.find((x) => x.name === container);
        const v = c ? milliOf(c.usage?.[resource]) : undefined;
        if (c === undefined || v === undefined) throw new Error(`failed to get container metrics: container ${container} not present in metrics for pod ${namespace}/${name}`);
        metrics.set(name, { timestamp, windowMs, value: Number(v) });
        continue;
      }
      let sum = 0;
      let missing = containers.length === 0;
      for (const c of containers) {
        const v = milliOf(c.usage?.[resource]);
        if (v === undefined) {
          missing = true;
          break;
        }
        sum += Number(v);
      }
      if (!missing) metrics.set(name, { timestamp, windowMs, value: sum });
    }
    return { metrics, timestamp: Date.parse(items[0]!.timestamp ?? '') || 0 };
  }
}
