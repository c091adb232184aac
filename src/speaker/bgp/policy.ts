// What a node advertises in BGP mode, MetalLB's semantics (reference e.1, speaker/bgp_controller.go), as pure
// functions of the parsed config, the Nodes, a Service and its endpoints: which BGPPeers this node opens sessions
// to, whether it announces a Service (or MetalLB's reason not to), and which prefixes, with which local preference
// and communities, go to which peer. The speaker and `metallb dry-run` both call these.
import { formatCommunity } from '../../config/community.js';
import type { BFDProfile, BGPAdvertisement, BGPPeer, CommunityValue, Config, Pool, Selector } from '../../config/types.js';
import type { Node } from '../../k8s/types.js';
import { formatIP, parseIP, prefixMask, type IP, type IPFamily } from '../../net/ip.js';
import type { ServiceEndpoint } from '../endpoints.js';
import { isExcludedFromBalancers, isNetworkUnavailable, nodeLabels } from '../nodes.js';
import type { Advertisement } from './rib.js';
import type { PeerConfig } from './session.js';

/** MetalLB's BGP withdraw reasons, in the order they are checked. */
export type BgpReason =
  | 'notOwner' | 'noMatchingAdvertisement' | 'conflictingAdvertisements' | 'nodeNetworkUnavailable'
  | 'nodeLabeledExcludeBalancers' | 'noLocalEndpoints' | 'noEndpoints';

const selects = (selectors: readonly Selector[], labels: Readonly<Record<string, string>>): boolean =>
  selectors.length === 0 || selectors.some((s) => s.matches(labels));

/**
 * Whether `node` is one of the advertisement's nodes. The nodeSelectors are matched against the node's current
 * labels when the Node is known (labels change without a config change); otherwise the set resolved at parse time.
 */
export function adSelectsNode(ad: Pick<BGPAdvertisement, 'nodes' | 'nodeSelectors'>, node: string, nodes: ReadonlyMap<string, Node>): boolean {
  const n = nodes.get(node);
  if (n) return selects(ad.nodeSelectors, nodeLabels(n));
  return ad.nodes ? ad.nodes.has(node) : true;
}

/** The BGPPeers whose sessions run on `node` (nodeSelectors; none = every node), in config order. */
export function peersForNode(config: Pick<Config, 'peers'>, node: string, nodes: ReadonlyMap<string, Node>): BGPPeer[] {
  return config.peers.filter((p) => adSelectsNode(p, node, nodes));
}

export interface BgpAnnounceInput {
  pool: Pool;
  config: Pick<Config, 'bgpAdvertisements'>;
  /** The Service's ingress addresses. */
  ips: readonly IP[];
  serviceLabels: Readonly<Record<string, string>>;
  localTrafficPolicy: boolean;
  endpoints: readonly ServiceEndpoint[];
  nodes: ReadonlyMap<string, Node>;
  ignoreExcludeLB: boolean;
}

export type BgpDecision =
  | { announce: true; ads: BGPAdvertisement[] }
  | { announce: false; reason: BgpReason; message: string };

/** The pool's advertisements that select `node` and match the Service (config order). */
export function adsForService(input: Pick<BgpAnnounceInput, 'pool' | 'config' | 'serviceLabels' | 'nodes'>, node: string): BGPAdvertisement[] {
  return input.config.bgpAdvertisements.filter((ad) => ad.pools.has(input.pool.name) && adSelectsNode(ad, node, input.nodes)
    && selects(ad.serviceSelectors, input.serviceLabels));
}

const peersOverlap = (a: BGPAdvertisement, b: BGPAdvertisement): boolean =>
  a.peers.length === 0 || b.peers.length === 0 || a.peers.some((p) => b.peers.includes(p));

const lengthFor = (ad: BGPAdvertisement, family: IPFamily): number => (family === 'IPv4' ? ad.aggregationLength : ad.aggregationLengthV6);

/**
 * Two advertisements that would send one prefix of this Service to one peer with different local preferences
 * (MetalLB's speaker-side checkBGPAdvConflicts, for advertisements with serviceSelectors).
 */
export function conflictingLocalPref(ads: readonly BGPAdvertisement[], ips: readonly IP[]): [BGPAdvertisement, BGPAdvertisement] | undefined {
  for (let i = 0; i < ads.length; i++) {
    for (let j = i + 1; j < ads.length; j++) {
      const a = ads[i]!;
      const b = ads[j]!;
      if (a.localPref === b.localPref || !peersOverlap(a, b)) continue;
      if (ips.some((ip) => lengthFor(a, ip.family) === lengthFor(b, ip.family))) return [a, b];
    }
  }
  return undefined;
}

/** MetalLB's BGP ShouldAnnounce for `node` (reference e.1), with the ads to use when it does. */
export function shouldAnnounceBGP(node: string, input: BgpAnnounceInput): BgpDecision {
  const poolAds = input.config.bgpAdvertisements.filter((ad) => ad.pools.has(input.pool.name));
  if (!poolAds.some((ad) => adSelectsNode(ad, node, input.nodes))) {
    return { announce: false, reason: 'notOwner', message: poolAds.length === 0 ? `no BGPAdvertisement selects pool ${input.pool.name}` : `no BGPAdvertisement of pool ${input.pool.name} selects node ${node}` };
  }
  const ads = adsForService(input, node);
  if (ads.length === 0) {
    return { announce: false, reason: 'noMatchingAdvertisement', message: `the serviceSelectors of the BGPAdvertisements of pool ${input.pool.name} that select node ${node} exclude the service` };
  }
  const conflict = conflictingLocalPref(ads, input.ips);
  if (conflict) {
    return {
      announce: false, reason: 'conflictingAdvertisements',
      message: `BGPAdvertisements ${conflict[0].name} and ${conflict[1].name} would send the same prefix to the same peer with local preferences ${conflict[0].localPref} and ${conflict[1].localPref}`,
    };
  }
  const me = input.nodes.get(node);
  if (isNetworkUnavailable(me)) return { announce: false, reason: 'nodeNetworkUnavailable', message: `node ${node} has the NetworkUnavailable condition` };
  if (!input.ignoreExcludeLB && isExcludedFromBalancers(me)) {
    return { announce: false, reason: 'nodeLabeledExcludeBalancers', message: `node ${node} is labelled node.kubernetes.io/exclude-from-external-load-balancers` };
  }
  const healthy = (e: ServiceEndpoint): boolean => e.canServe && e.hasAddresses;
  if (input.localTrafficPolicy && !input.endpoints.some((e) => healthy(e) && e.nodeName === node)) {
    return { announce: false, reason: 'noLocalEndpoints', message: `no serving endpoint on node ${node} (externalTrafficPolicy: Local)` };
  }
  if (!input.endpoints.some(healthy)) return { announce: false, reason: 'noEndpoints', message: 'the service has no serving endpoint' };
  return { announce: true, ads };
}

/** One route of one Service to one peer. */
export interface PeerAdvertisement {
  /** BGPPeer name. */
  peer: string;
  /** The address masked to the advertisement's aggregation length. */
  prefix: string;
  /** 0 = unset (iBGP peers then get 100). */
  localPref: number;
  /** `A:B` and `large:A:B:C`, MetalLB's order (LessThan). */
  communities: string[];
}

/** MetalLB's Community ordering: `a:b` as the large community (a<<16|b, 0, 0). */
function communityKey(c: CommunityValue): [number, number, number] {
  return c.kind === 'standard' ? [c.high * 65536 + c.low, 0, 0] : [c.globalAdministrator, c.localData1, c.localData2];
}

function sortedCommunities(list: readonly CommunityValue[]): CommunityValue[] {
  const seen = new Map<string, CommunityValue>();
  for (const c of list) seen.set(formatCommunity(c), c);
  return [...seen.values()].sort((x, y) => {
    const a = communityKey(x);
    const b = communityKey(y);
    return a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || (x.kind === y.kind ? 0 : x.kind === 'standard' ? -1 : 1);
  });
}

export function maskedPrefix(ip: IP, length: number): string {
  return `${formatIP({ family: ip.family, value: ip.value & prefixMask(ip.family, length) })}/${length}`;
}

/**
 * MetalLB's SetBalancer + adsForPeer: for each address × advertisement, the aggregated prefix with the ad's local
 * preference and communities, to each of `peers` the ad names (all when it names none). `peers` are this node's
 * sessions; a peer only gets the families its session carries (`families`).
 */
export function serviceAdvertisements(
  ips: readonly IP[], ads: readonly BGPAdvertisement[], peers: readonly { name: string; families: readonly IPFamily[] }[],
): PeerAdvertisement[] {
  const out: PeerAdvertisement[] = [];
  for (const ip of ips) {
    for (const ad of ads) {
      const prefix = maskedPrefix(ip, lengthFor(ad, ip.family));
      const communities = sortedCommunities(ad.communities).map(formatCommunity);
      for (const p of peers) {
        if (ad.peers.length > 0 && !ad.peers.includes(p.name)) continue;
        if (!p.families.includes(ip.family)) continue;
        out.push({ peer: p.name, prefix, localPref: ad.localPref, communities });
      }
    }
  }
  return out;
}

/** The session's form of a route: local preference 0 means unset; large communities apart. */
export function toAdvertisement(a: Omit<PeerAdvertisement, 'peer'>): Advertisement {
  const communities = a.communities.filter((c) => !c.startsWith('large:'));
  const largeCommunities = a.communities.filter((c) => c.startsWith('large:')).map((c) => c.slice('large:'.length));
  return {
    prefix: a.prefix,
    ...(a.localPref ? { localPref: a.localPref } : {}),
    ...(communities.length ? { communities } : {}),
    ...(largeCommunities.length ? { largeCommunities } : {}),
  };
}

/**
 * The address families a peer's session carries: MetalLB (FRR modes) activates the family of the peer's address
 * only, both with `dualStackAddressFamily`.
 */
export function peerFamilies(peer: Pick<BGPPeer, 'peerAddress' | 'dualStackAddressFamily'>): IPFamily[] {
  if (peer.dualStackAddressFamily) return ['IPv4', 'IPv6'];
  const ip = peer.peerAddress ? parseIP(peer.peerAddress) : undefined;
  return [ip?.family ?? 'IPv4'];
}

/** A BGPPeer as the session needs it; undefined for peers the native speaker cannot run (no peerAddress). */
export function sessionConfig(peer: BGPPeer, profiles: ReadonlyMap<string, BFDProfile>): PeerConfig | undefined {
  if (!peer.peerAddress) return undefined;
  const profile = peer.bfdProfile ? profiles.get(peer.bfdProfile) : undefined;
  const cfg: PeerConfig = {
    name: peer.name,
    peerAddress: peer.peerAddress,
    peerPort: peer.peerPort,
    myASN: peer.myASN,
    ebgpMultiHop: peer.ebgpMultiHop,
    gracefulRestart: peer.enableGracefulRestart,
    families: peerFamilies(peer),
  };
  if (peer.peerASN !== undefined) cfg.peerASN = peer.peerASN;
  if (peer.dynamicASN !== undefined) cfg.dynamicASN = peer.dynamicASN;
  if (peer.localASN !== undefined) cfg.localASN = peer.localASN;
  if (peer.sourceAddress !== undefined) cfg.sourceAddress = peer.sourceAddress;
  if (peer.holdTime !== undefined) cfg.holdTime = peer.holdTime;
  if (peer.keepaliveTime !== undefined) cfg.keepaliveTime = peer.keepaliveTime;
  if (peer.connectTime !== undefined) cfg.connectTime = peer.connectTime;
  if (peer.routerID !== undefined) cfg.routerID = peer.routerID;
  if (peer.password !== undefined) cfg.password = peer.password;
  if (peer.vrf !== undefined) cfg.vrf = peer.vrf;
  if (profile) {
    cfg.bfd = {
      receiveInterval: profile.receiveInterval, transmitInterval: profile.transmitInterval, detectMultiplier: profile.detectMultiplier,
      echoMode: profile.echoMode, passiveMode: profile.passiveMode, minimumTtl: profile.minimumTtl,
    };
  }
  return cfg;
}

/** What one node advertises for one Service: the dry-run's `bgp` entries. */
export interface NodeServiceAdvertisement extends PeerAdvertisement {
  node: string;
}

/**
 * Every node's advertisements of one Service (`metallb dry-run`): for each known node that announces it (MetalLB's
 * ShouldAnnounce), the routes to each peer that node has a session with.
 */
export function clusterAdvertisements(
  input: Omit<BgpAnnounceInput, 'config'> & { config: Pick<Config, 'bgpAdvertisements' | 'peers'> },
): NodeServiceAdvertisement[] {
  const out: NodeServiceAdvertisement[] = [];
  for (const node of [...input.nodes.keys()].sort()) {
    const d = shouldAnnounceBGP(node, input);
    if (!d.announce) continue;
    const peers = peersForNode(input.config, node, input.nodes).filter((p) => p.peerAddress).map((p) => ({ name: p.name, families: peerFamilies(p) }));
    for (const a of serviceAdvertisements(input.ips, d.ads, peers)) out.push({ node, ...a });
  }
  return out;
}
