// The validated internal configuration model: what MetalLB's CRDs and legacy ConfigMap mean once parsed.
// Everything downstream (allocator, controller, speakers) reads only these types, never the raw objects.
import type { Prefix } from '../net/ip.js';

/** A validated label selector, ready to match. `text` is its canonical form (Kubernetes' selector string). */
export interface Selector {
  readonly text: string;
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
}

export interface ServiceAllocation {
  /** Lower positive first; 0 = after all positive. */
  priority: number;
  /** True when `namespaces` or `namespaceSelectors` was given: the service's namespace must then be in `namespaces`. */
  restrictsNamespaces: boolean;
  /** `namespaces` plus the namespaces matched by `namespaceSelectors` when the config was parsed. */
  namespaces: ReadonlySet<string>;
  /** Service labels; OR across selectors; empty = any service. */
  serviceSelectors: readonly Selector[];
}

export interface Pool {
  name: string;
  /** Every `addresses` entry in configured order; a range `a-b` is summarized to its prefixes, ascending. */
  prefixes: readonly Prefix[];
  /** `addresses` as written, for messages and conversions. */
  addresses: readonly string[];
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  /** undefined = a plain pool (takes part in the fallback of automatic allocation). */
  serviceAllocation?: ServiceAllocation;
  labels: Readonly<Record<string, string>>;
}

export type CommunityValue =
  | { kind: 'standard'; high: number; low: number }
  | { kind: 'large'; globalAdministrator: number; localData1: number; localData2: number };

export interface PreferredNodeSelector {
  weight: number;
  preference: Selector;
}

export interface L2Advertisement {
  name: string;
  /** Pools this advertisement applies to (resolved from ipAddressPools / ipAddressPoolSelectors). */
  pools: ReadonlySet<string>;
  /** Node names allowed to announce; undefined = every node. */
  nodes?: ReadonlySet<string>;
  nodeSelectors: readonly Selector[];
  /** Empty = all interfaces. */
  interfaces: readonly string[];
  serviceSelectors: readonly Selector[];
  preferredNodeSelectors: readonly PreferredNodeSelector[];
}

export interface BGPAdvertisement {
  name: string;
  pools: ReadonlySet<string>;
  aggregationLength: number;
  aggregationLengthV6: number;
  localPref: number;
  communities: readonly CommunityValue[];
  /** BGPPeer names; empty = all peers. */
  peers: readonly string[];
  nodes?: ReadonlySet<string>;
  nodeSelectors: readonly Selector[];
  serviceSelectors: readonly Selector[];
}

export interface BGPPeer {
  name: string;
  myASN: number;
  peerASN?: number;
  dynamicASN?: 'internal' | 'external';
  localASN?: number;
  peerAddress?: string;
  interface?: string;
  sourceAddress?: string;
  peerPort: number;
  /** Seconds; undefined = the speaker's default (90 s). */
  holdTime?: number;
  keepaliveTime?: number;
  connectTime?: number;
  routerID?: string;
  nodeSelectors: readonly Selector[];
  /** Resolved TCP-MD5 key (from `password` or `passwordSecret`). */
  password?: string;
  passwordSecret?: { name: string; namespace?: string };
  bfdProfile?: string;
  enableGracefulRestart: boolean;
  ebgpMultiHop: boolean;
  vrf?: string;
  /** Node names that open this session (resolved nodeSelectors); undefined = every node. */
  nodes?: ReadonlySet<string>;
  /** Deprecated v1beta2 field, kept for FRR-style behaviour; false when unset. */
  disableMP?: boolean;
  /** Advertise both families over one session (v1beta2); false when unset. */
  dualStackAddressFamily?: boolean;
}

export interface BFDProfile {
  name: string;
  receiveInterval: number;
  transmitInterval: number;
  detectMultiplier: number;
  echoInterval: number;
  echoMode: boolean;
  passiveMode: boolean;
  minimumTtl: number;
}

export interface Config {
  /** In the order the objects were given (sorted by name when read from the API). */
  pools: readonly Pool[];
  l2Advertisements: readonly L2Advertisement[];
  bgpAdvertisements: readonly BGPAdvertisement[];
  peers: readonly BGPPeer[];
  bfdProfiles: ReadonlyMap<string, BFDProfile>;
  communities: ReadonlyMap<string, CommunityValue>;
}

/** One problem with the configuration, naming the object, the field and what is wrong. */
export interface ConfigError {
  /** e.g. `IPAddressPool metallb-system/prod` or `ConfigMap metallb-system/config`. */
  object: string;
  /** JSON path inside the object, e.g. `spec.addresses[1]`; empty when the whole object is concerned. */
  field: string;
  message: string;
}

export const formatConfigError = (e: ConfigError): string =>
  e.field ? `${e.object}: ${e.field}: ${e.message}` : `${e.object}: ${e.message}`;
