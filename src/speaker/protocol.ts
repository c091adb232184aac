// What an announcement protocol (layer 2, BGP) implements for the speaker's per-Service pipeline: MetalLB's
// speaker Protocol interface (SetConfig / ShouldAnnounce / SetBalancer / DeleteBalancer / SetNode).
import type { Config, Pool } from '../config/types.js';
import type { Node, Service } from '../k8s/types.js';
import type { IP } from '../net/ip.js';
import type { ServiceEndpoint } from './endpoints.js';

export type ProtocolName = 'layer2' | 'bgp';

/** Everything a protocol needs to decide about one Service holding addresses from one pool. */
export interface ServiceAnnouncement {
  /** `namespace/name` */
  key: string;
  service: Service;
  /** Ingress addresses in status order, as written there. */
  ips: readonly string[];
  parsed: readonly IP[];
  pool: Pool;
  config: Config;
  endpoints: readonly ServiceEndpoint[];
  /** Every Node known, by name. */
  nodes: ReadonlyMap<string, Node>;
  /**
   * Elect among these speakers instead of the live ones: a takeover plan asks "what if this member died" with the
   * same code that decides today.
   */
  speakers?: ReadonlySet<string>;
}

export type AnnounceDecision = { announce: true } | { announce: false; reason: string; message?: string };

export interface SetBalancerResult {
  /** The addresses now announced (fewer than asked when some cannot be, e.g. the interfaces are missing). */
  announced: readonly string[];
  /** Try again after this long (what was missing may appear). */
  retryAfterMs?: number;
}

export interface ProtocolHandler {
  readonly protocol: ProtocolName;
  /**
   * When a speaker leaves, announce what became ours at once, ahead of the reconciles (layer 2: only our gratuitous
   * packets move the clients' traffic; a BGP router routes around the dead node by itself).
   */
  readonly takesOverEarly?: boolean;
  /** A new config is in force (the pipeline has already checked it orphans nothing). */
  setConfig(config: Config): void;
  shouldAnnounce(a: ServiceAnnouncement): AnnounceDecision;
  /**
   * The node that announces the Service among `a.speakers` (or the live speakers), undefined when none may; for
   * protocols that take over early, whose announcement moves from node to node (layer 2's election winner).
   */
  owner?(a: ServiceAnnouncement): string | undefined;
  /** Announce (idempotent: called on every reconcile of an announced Service). */
  setBalancer(a: ServiceAnnouncement): SetBalancerResult | Promise<SetBalancerResult>;
  /** Stop announcing the Service; `reason` is MetalLB's withdraw reason. */
  deleteBalancer(key: string, reason: string): void | Promise<void>;
  /** A Node was added or changed (e.g. this node's labels: BGP sessions re-selected, memberlist rejoined). */
  setNode(node: Node): void;
}
