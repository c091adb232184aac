// Internal vocabulary of the allocator. Everything here is plain data; behaviour lives in the sibling modules.
import type { IP, IPFamily } from '../net/ip.js';
import type { IPFamilyPolicy } from '../k8s/types.js';

/** MetalLB's ipfamily.Family of a service or of a set of addresses. */
export type ServiceFamily = IPFamily | 'dual';

/** MetalLB's text for a family, used inside error messages ("no suitable pool for ipv4 IPFamily"). */
export const familyText = (f: ServiceFamily): string => (f === 'IPv4' ? 'ipv4' : f === 'IPv6' ? 'ipv6' : 'dual');

/** One (protocol, port) pair of a Service, as `TCP/80`. Two services clash on an IP when they share one of these. */
export type PortKey = string;

/** What decides whether two services may share an address: the sharing key and the backend key. */
export interface SharingIdentity {
  /** `metallb.io/allow-shared-ip`; "" = does not share. */
  readonly sharing: string;
  /** "" for externalTrafficPolicy Cluster, else the sorted pod selector (`a=b,c=d`). */
  readonly backend: string;
}

/** What the allocator needs to know about a service for assignment decisions (derived by service-view.ts). */
export interface AllocationRequest extends SharingIdentity {
  /** `namespace/name`. */
  readonly key: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ports: readonly PortKey[];
  readonly family: ServiceFamily;
  readonly policy: IPFamilyPolicy;
  /** The family tried first for PreferDualStack when no pool has both: IPv6 only when `ipFamilies[0]` is IPv6. */
  readonly primaryFamily: IPFamily;
}

/** A service's current holding, as recorded in memory (MetalLB's `alloc`). */
export interface Holding extends SharingIdentity {
  readonly pool: string;
  /** v4 first when dual. */
  readonly ips: readonly IP[];
  /** `ips` as text (formatted once). */
  readonly texts: readonly string[];
  readonly ports: readonly PortKey[];
}

/** Result of an allocator operation: either addresses or a MetalLB-style error message plus a human explanation. */
export type AllocOutcome =
  | { ok: true; ips: IP[]; pool: string }
  | { ok: false; error: string; reason: string };

export const fail = (error: string, reason?: string): AllocOutcome => ({ ok: false, error, reason: reason ?? error });
