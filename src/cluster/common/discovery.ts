// API discovery: which resources the server serves (preferred version of each group), with their verbs. The garbage
// collector and the namespace controller act on every resource type, custom resources included.
import type { KubeClient } from '../../k8s/client.js';
import type { Resource } from '../../k8s/resources.js';

export interface DiscoveredResource extends Resource {
  verbs: string[];
}

interface APIResourceList {
  resources?: { name: string; kind: string; namespaced: boolean; verbs?: string[] }[];
}

interface APIGroupList {
  groups?: { name: string; preferredVersion?: { version: string }; versions?: { version: string }[] }[];
}

/** Resources (not subresources) of the core group and of every group's preferred version. */
export async function discoverResources(client: KubeClient): Promise<DiscoveredResource[]> {
  const out: DiscoveredResource[] = [];
  const add = (group: string, version: string, list: APIResourceList): void => {
    for (const r of list.resources ?? []) {
      if (r.name.includes('/')) continue;
      out.push({ group, version, plural: r.name, kind: r.kind, namespaced: r.namespaced, verbs: r.verbs ?? [] });
    }
  };
  add('', 'v1', await client.get<APIResourceList>('/api/v1'));
  const groups = await client.get<APIGroupList>('/apis');
  await Promise.all(
    (groups.groups ?? []).map(async (g) => {
      const version = g.preferredVersion?.version ?? g.versions?.[0]?.version;
      if (!version) return;
      try {
        add(g.name, version, await client.get<APIResourceList>(`/apis/${g.name}/${version}`));
      } catch {
        // a group served by an extension API server that is down (metrics.k8s.io while metrics-server restarts):
        // the rest of the discovery stays usable, as client-go's partial discovery results are
      }
    }),
  );
  return out;
}

/** `group/kind` → resource, for resolving ownerReferences (apiVersion + kind). */
export function byGroupKind(resources: readonly DiscoveredResource[]): Map<string, DiscoveredResource> {
  const m = new Map<string, DiscoveredResource>();
  for (const r of resources) if (!m.has(`${r.group}/${r.kind}`)) m.set(`${r.group}/${r.kind}`, r);
  return m;
}

export const groupOfApiVersion = (apiVersion: string): string => (apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '');
