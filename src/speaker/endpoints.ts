// A Service's backends as the announcement rules see them, read from EndpointSlices or, on clusters (or RBAC) without
// them, from the legacy Endpoints object. MetalLB's epslices.EndpointCanServe: an endpoint can serve when its
// `ready` condition is unset or true, or when it is `serving` (a terminating pod still answering).
import type { Endpoint, EndpointSlice, Endpoints } from '../k8s/types.js';

export interface ServiceEndpoint {
  /** Node the endpoint runs on; undefined when the slice does not say. */
  nodeName?: string;
  canServe: boolean;
  /** At least one address (BGP only announces endpoints that have one). */
  hasAddresses: boolean;
}

export function endpointCanServe(ep: Endpoint): boolean {
  const c = ep.conditions ?? {};
  if (c.ready === undefined || c.ready === null || c.ready === true) return true;
  return c.serving === true;
}

export function fromEndpointSlices(slices: readonly EndpointSlice[]): ServiceEndpoint[] {
  const out: ServiceEndpoint[] = [];
  for (const s of slices) {
    if (!Array.isArray(s.endpoints)) continue;
    for (const ep of s.endpoints) {
      if (!ep || typeof ep !== 'object') continue;
      const e: ServiceEndpoint = { canServe: endpointCanServe(ep), hasAddresses: Array.isArray(ep.addresses) && ep.addresses.length > 0 };
      if (typeof ep.nodeName === 'string' && ep.nodeName !== '') e.nodeName = ep.nodeName;
      out.push(e);
    }
  }
  return out;
}

/** core/v1 Endpoints: `addresses` are ready, `notReadyAddresses` are not (Endpoints has no `serving`). */
export function fromEndpoints(ep: Endpoints | undefined): ServiceEndpoint[] {
  const out: ServiceEndpoint[] = [];
  if (!ep || !Array.isArray(ep.subsets)) return out;
  for (const subset of ep.subsets) {
    if (!subset || typeof subset !== 'object') continue;
    for (const [list, ready] of [[subset.addresses, true], [subset.notReadyAddresses, false]] as const) {
      if (!Array.isArray(list)) continue;
      for (const a of list) {
        if (!a || typeof a !== 'object') continue;
        const e: ServiceEndpoint = { canServe: ready, hasAddresses: typeof a.ip === 'string' && a.ip !== '' };
        if (typeof a.nodeName === 'string' && a.nodeName !== '') e.nodeName = a.nodeName;
        out.push(e);
      }
    }
  }
  return out;
}
