// Offline BGP placement for `metallb dry-run`: what each node would advertise to each of its peers for each Service,
// from the speaker's own policy (policy.ts) and the objects given (Nodes, EndpointSlices or Endpoints, live speakers).
import type { Config } from '../../config/types.js';
import type { Node, Service } from '../../k8s/types.js';
import { parseIP, type IP } from '../../net/ip.js';
import { isLocalPolicy, poolForIPs, serviceLabels } from '../service-facts.js';
import { endpointsByService, type PlacementInputs } from '../l2/placement.js';
import { clusterAdvertisements } from './policy.js';

/** One route: `node` advertises `prefix` to BGPPeer `peer` (localPref 0 = unset). */
export interface BgpPlacement {
  node: string;
  peer: string;
  prefix: string;
  localPref: number;
  communities: string[];
}

const nsOf = (o: { metadata?: { namespace?: string } }): string => o.metadata?.namespace || 'default';

/**
 * Every node's routes for each Service holding `ips` whose pool has a BGPAdvertisement (absent otherwise; an empty
 * list when no node would advertise it). A Service without EndpointSlices/Endpoints in the input is taken to have a
 * serving endpoint on no particular node.
 */
export function placeBgp(inputs: Omit<PlacementInputs, 'config'> & { config: Config }, services: readonly { service: Service; ips: readonly string[] }[]): Map<Service, BgpPlacement[]> {
  const nodes = new Map<string, Node>();
  const live = inputs.speakers ? new Set(inputs.speakers) : undefined;
  for (const n of inputs.nodes) if (n.metadata?.name && (!live || live.has(n.metadata.name))) nodes.set(n.metadata.name, n);
  const backends = endpointsByService(inputs.endpointSlices, inputs.endpoints);
  const out = new Map<Service, BgpPlacement[]>();
  for (const { service, ips } of services) {
    const parsed = ips.map((t) => parseIP(t)).filter((x): x is IP => x !== undefined);
    if (parsed.length === 0 || parsed.length !== ips.length) continue;
    const pool = poolForIPs(inputs.config.pools, parsed);
    if (!pool || !inputs.config.bgpAdvertisements.some((a) => a.pools.has(pool.name))) continue;
    const key = `${nsOf(service)}/${service.metadata?.name ?? ''}`;
    const routes = clusterAdvertisements({
      pool, config: inputs.config, ips: parsed, serviceLabels: serviceLabels(service), localTrafficPolicy: isLocalPolicy(service),
      endpoints: backends.get(key) ?? [{ canServe: true, hasAddresses: true }], nodes, ignoreExcludeLB: inputs.ignoreExcludeLB,
    });
    out.set(service, routes.map((r) => ({ node: r.node, peer: r.peer, prefix: r.prefix, localPref: r.localPref, communities: r.communities })));
  }
  return out;
}
