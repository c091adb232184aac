// What the lab and the tests ask of a router daemon (BIRD 2, FRR, GoBGP), independent of which one runs: the
// peering it should have, and the routes it holds, normalized to one shape.

export type RouterDaemon = 'bird' | 'frr' | 'gobgp';
export const ROUTER_DAEMONS: readonly RouterDaemon[] = ['bird', 'frr', 'gobgp'];

export interface RouterNeighborSpec {
  /** Identifies the neighbor in the daemon's config (a protocol name for BIRD); letters, digits, `_`. */
  name: string;
  address: string;
  /** The neighbor's AS. */
  asn: number;
  /** TCP-MD5 key. */
  password?: string;
  /** Run BFD towards this neighbor (BIRD, FRR). */
  bfd?: boolean;
  /** eBGP multihop TTL; undefined = directly connected. */
  multihop?: number;
  /** Wait for the neighbor to connect (default true: MetalLB's speakers dial, routers listen). */
  passive?: boolean;
  /** Seconds; the daemon's default when unset. */
  holdTime?: number;
  /** Address families to exchange; default both. */
  families?: readonly ('ipv4' | 'ipv6')[];
  /** Routes from `RouterSpec.originate` are sent to this neighbor (default: nothing is sent to neighbors). */
  exportOriginated?: boolean;
  /**
   * Keep this neighbor's routes through its restart (RFC 4724 receiving speaker) for up to `restartTime` seconds
   * (default 120). BIRD and FRR do so by default and ignore this; GoBGP only with it (as a helper: it does not
   * restart gracefully itself).
   */
  gracefulRestart?: { restartTime?: number };
  /** Configured but shut down until `Router.enableNeighbor` (BIRD only; the benchmark starts the clock that way). */
  disabled?: boolean;
}

export interface BfdTiming {
  transmitIntervalMs: number;
  receiveIntervalMs: number;
  detectMultiplier: number;
}

export interface RouterSpec {
  asn: number;
  routerId: string;
  neighbors: readonly RouterNeighborSpec[];
  /** Install received routes in the kernel, with every equal path as an ECMP next hop (default false). */
  kernel?: boolean;
  /** BFD timers towards neighbors with `bfd` (default 300 ms × 3, MetalLB's BFDProfile defaults). */
  bfd?: BfdTiming;
  /** Prefixes this router originates (the benchmark's sending side). */
  originate?: readonly string[];
  /** Local address to listen on / dial from; default any. */
  localAddress?: string;
  /** BGP port to listen on (default 179; FRR and GoBGP); lets two daemons share a namespace. */
  port?: number;
}

/** One path to one prefix, as the daemon holds it. */
export interface RouteEntry {
  prefix: string;
  /** Next hops as the daemon reports them (BGP next hop attribute: global, then link-local for IPv6). */
  nextHops: string[];
  asPath: number[];
  localPref?: number;
  /** `A:B` */
  communities: string[];
  /** `A:B:C` */
  largeCommunities: string[];
  /** Address of the neighbor it came from. */
  from?: string;
  /** Kept from a neighbor whose session went down while graceful restart runs (RFC 4724 §4.2); FRR and GoBGP mark it per path. */
  stale?: boolean;
}

export type NeighborState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established' | 'Unknown';

/** Graceful restart (RFC 4724) towards one neighbor, as the router sees it. */
export interface NeighborGracefulRestart {
  /** The router holds this neighbor's routes through a restart: its restart timer runs, or it waits for End-of-RIB. */
  active: boolean;
  /** The neighbor's last OPEN had the R bit (it said it had restarted). */
  peerRestarted: boolean;
  /** Families the neighbor said it kept forwarding for (F bit). */
  peerForwarding: ('ipv4' | 'ipv6')[];
}

export interface BfdPeerState {
  address: string;
  state: 'Up' | 'Down' | 'Init' | 'AdminDown' | 'Unknown';
  /** RFC 5883 (not bound to an interface) rather than RFC 5881; absent when the daemon does not say. */
  multihop?: boolean;
}

/** A process of the daemon, in start order. */
export interface DaemonProcess {
  name: string;
  argv: string[];
  /** The daemon drops privileges itself; the process must be able to read `files` under `dir` as this user. */
  owner?: string;
  /** A file the daemon creates once it accepts commands. */
  readyFile?: string;
}

/** Everything needed to run one daemon: files to write under `dir`, processes to start. Pure data. */
export interface RouterLayout {
  daemon: RouterDaemon;
  dir: string;
  files: Record<string, string>;
  processes: DaemonProcess[];
}
