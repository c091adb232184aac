// Offline layer 2 placement for `metallb dry-run`: which node would announce each Service, computed by the
// speaker's own election from the objects given (Nodes, EndpointSlices or Endpoints, the set of live speakers).
import type { Config } from '../../config/types.js';
import type { EndpointSlice, Endpoints, Node, Service } from '../../k8s/types.js';
import { parseIP, type IP } from '../../net/ip.js';
import { fromEndpointSlices, fromEndpoints, type ServiceEndpoint } from '../endpoints.js';
import { allowsSharedIP, isLocalPolicy, poolForIPs, serviceLabels } from '../service-facts.js';
import { electL2 } from './election.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export type Layer2Placement = { node: string } | { node: null; reason: string };

export interface PlacementInputs {
  config: Config;
  nodes: readonly Node[];
  endpointSlices: readonly EndpointSlice[];
  endpoints: readonly Endpoints[];
  /** Nodes whose speaker is up; undefined = every Node. */
  speakers?: readonly string[];
  ignoreExcludeLB: boolean;
}

const nsOf = (o: { metadata?: { namespace?: string } }): string => o.metadata?.namespace || 'default';

/** Indexes the backends given for each Service (`namespace/name`). Services with none given are absent. */
export function endpointsByService(slices: readonly EndpointSlice[], endpoints: readonly Endpoints[]): Map<string, ServiceEndpoint[]> {
  const bySlices = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!svc) continue;
    const key = `${nsOf(s)}/${svc}`;
    bySlices.set(key, [...(bySlices.get(key) ?? []), s]);
  }
  const out = new Map<string, ServiceEndpoint[]>();
  for (const [key, list] of bySlices) out.set(key, fromEndpointSlices(list));
  // Legacy Endpoints only where no slice speaks for the Service.
  for (const ep of endpoints) {
    const key = `${nsOf(ep)}/${ep.metadata?.name ?? ''}`;
    if (!out.has(key)) out.set(key, fromEndpoints(ep));
  }
  return out;
}

/**
 * The layer 2 placement of each Service holding `ips`, for those whose pool has an L2Advertisement; a Service
 * without any EndpointSlice/Endpoints in the input is taken to have a serving endpoint on no particular node.
 */
export function placeLayer2(inputs: PlacementInputs, services: readonly { service: Service; ips: readonly string[] }[]): Map<Service, Layer2Placement> {
  const nodes = new Map<string, Node>();
  for (const n of inputs.nodes) if (n.metadata?.name) nodes.set(n.metadata.name, n);
  const speakers = inputs.speakers ? new Set(inputs.speakers) : undefined;
  const backends = endpointsByService(inputs.endpointSlices, inputs.endpoints);
  const out = new Map<Service, Layer2Placement>();
  for (const { service, ips } of services) {
    const parsed = ips.map((t) => parseIP(t)).filter((x): x is IP => x !== undefined);
    if (parsed.length === 0 || parsed.length !== ips.length) continue;
    const pool = poolForIPs(inputs.config.pools, parsed);
    if (!pool) continue;
    const ads = inputs.config.l2Advertisements.filter((a) => a.pools.has(pool.name));
    if (ads.length === 0) continue;
    if (nodes.size === 0) {
      out.set(service, { node: null, reason: 'no Node objects in the input' });
      continue;
    }
    const key = `${nsOf(service)}/${service.metadata?.name ?? ''}`;
    const e = electL2({
      serviceLabels: serviceLabels(service),
      allowSharedIP: allowsSharedIP(service),
      localTrafficPolicy: isLocalPolicy(service),
      ips,
      ads,
      nodes,
      speakers,
      endpoints: backends.get(key) ?? [{ canServe: true, hasAddresses: true }],
      ignoreExcludeLB: inputs.ignoreExcludeLB,
    });
    out.set(service, e.winner ? { node: e.winner } : { node: null, reason: `${e.message ?? 'no node may announce it'} (${e.reason ?? 'notOwner'})` });
  }
  return out;
}
