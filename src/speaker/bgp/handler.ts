// The BGP protocol handler of the speaker's pipeline (src/speaker/protocol.ts): MetalLB's bgpController. It picks
// this node's BGPPeers, decides per Service with the policy (policy.ts), and keeps every session's advertisement set
// equal to the union of what the announced Services ask for. Changes from many Services in one turn of the event
// loop are sent as one diff per peer.
import type { BGPAdvertisement, Config } from '../../config/types.js';
import type { Node } from '../../k8s/types.js';
import type { Logger } from '../../log.js';
import type { IP, IPFamily } from '../../net/ip.js';
import type { AnnounceDecision, ProtocolHandler, ServiceAnnouncement, SetBalancerResult } from '../protocol.js';
import { isLocalPolicy, serviceLabels } from '../service-facts.js';
import {
  peerFamilies, peersForNode, serviceAdvertisements, sessionConfig, shouldAnnounceBGP, toAdvertisement,
  type PeerAdvertisement,
} from './policy.js';
import type { Advertisement } from './rib.js';
import type { PeerConfig } from './session.js';
import type { BgpSpeaker } from './speaker.js';

export interface BgpHandlerDeps {
  myNode: string;
  speaker: BgpSpeaker;
  ignoreExcludeLB: boolean;
  log: Logger;
  /** The peers carrying a Service changed (for its ServiceBGPStatus). */
  onStatusChange?(key: string): void;
}

interface Announced {
  ips: readonly IP[];
  ads: readonly BGPAdvertisement[];
}

export class BgpHandler implements ProtocolHandler {
  readonly protocol = 'bgp' as const;
  private config: Config | undefined;
  private myNode: Node | undefined;
  private peers: { name: string; families: IPFamily[] }[] = [];
  private readonly services = new Map<string, Announced>();
  /** Per Service, the peers its routes go to (ServiceBGPStatus). */
  private peersByService = new Map<string, readonly string[]>();
  /**
   * One array per distinct set of advertisements or peers, shared by every Service that has it: with 100,000
   * Services and a handful of BGPAdvertisements, an array of its own per Service is megabytes for nothing.
   */
  private sharedAds = new Map<string, readonly BGPAdvertisement[]>();
  private sharedPeers = new Map<string, readonly string[]>();
  private flushScheduled = false;

  constructor(private readonly d: BgpHandlerDeps) {}

  setConfig(config: Config): void {
    this.config = config;
    // Keyed by names: advertisements of an older config must not be handed out for the new one's.
    this.sharedAds = new Map();
    this.syncPeers();
  }

  setNode(node: Node): void {
    if (node.metadata?.name !== this.d.myNode) return;
    this.myNode = node;
    if (this.config) this.syncPeers();
  }

  shouldAnnounce(a: ServiceAnnouncement): AnnounceDecision {
    const d = shouldAnnounceBGP(this.d.myNode, this.input(a));
    return d.announce ? { announce: true } : { announce: false, reason: d.reason, message: d.message };
  }

  setBalancer(a: ServiceAnnouncement): SetBalancerResult {
    const d = shouldAnnounceBGP(this.d.myNode, this.input(a));
    if (!d.announce) {
      this.deleteBalancer(a.key);
      return { announced: [] };
    }
    this.services.set(a.key, { ips: a.parsed, ads: this.shareAds(d.ads) });
    this.scheduleFlush();
    return { announced: a.ips };
  }

  deleteBalancer(key: string): void {
    if (!this.services.delete(key)) return;
    this.scheduleFlush();
  }

  private shareAds(ads: readonly BGPAdvertisement[]): readonly BGPAdvertisement[] {
    const id = ads.map((ad) => ad.name).join('\n');
    const shared = this.sharedAds.get(id);
    if (shared && shared.length === ads.length && shared.every((ad, i) => ad === ads[i])) return shared;
    const mine = Object.freeze([...ads]);
    this.sharedAds.set(id, mine);
    return mine;
  }

  private sharePeers(peers: readonly string[]): readonly string[] {
    const id = peers.join('\n');
    let shared = this.sharedPeers.get(id);
    if (!shared) this.sharedPeers.set(id, (shared = Object.freeze([...peers])));
    return shared;
  }

  /** The BGPPeers that carry `key`'s routes from this node (MetalLB's PeersForService). */
  peersFor(key: string): readonly string[] {
    return this.peersByService.get(key) ?? [];
  }

  /** This node's routes to each peer right now, in the policy's form (for status and debugging). */
  advertisementsByPeer(): Map<string, PeerAdvertisement[]> {
    const out = new Map<string, PeerAdvertisement[]>(this.peers.map((p) => [p.name, []]));
    for (const s of this.services.values()) {
      for (const a of serviceAdvertisements(s.ips, s.ads, this.peers)) out.get(a.peer)?.push(a);
    }
    return out;
  }

  private input(a: ServiceAnnouncement): Parameters<typeof shouldAnnounceBGP>[1] {
    return {
      pool: a.pool, config: a.config, ips: a.parsed, serviceLabels: serviceLabels(a.service), localTrafficPolicy: isLocalPolicy(a.service),
      endpoints: a.endpoints, nodes: a.nodes, ignoreExcludeLB: this.d.ignoreExcludeLB,
    };
  }

  /** The sessions this node should have under the current config and its own labels. */
  private syncPeers(): void {
    const config = this.config;
    if (!config) return;
    const me = new Map<string, Node>(this.myNode ? [[this.d.myNode, this.myNode]] : []);
    const selected = peersForNode(config, this.d.myNode, me);
    const sessions: PeerConfig[] = [];
    const peers: { name: string; families: IPFamily[] }[] = [];
    for (const p of selected) {
      const s = sessionConfig(p, config.bfdProfiles);
      if (!s) {
        this.d.log.warn({ event: 'peerSkipped', peer: p.name }, `BGPPeer ${p.name} has no peerAddress (unnumbered BGP is not supported by the native speaker)`);
        continue;
      }
      sessions.push(s);
      peers.push({ name: p.name, families: peerFamilies(p) });
    }
    this.peers = peers;
    this.d.speaker.setPeers(sessions);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Hands each session the union of the announced Services' routes; the session sends the difference. */
  private flush(): void {
    const byPeer = new Map<string, Advertisement[]>(this.peers.map((p) => [p.name, []]));
    const peersByService = new Map<string, readonly string[]>();
    // Peer sets of the previous flush that no Service has any more are dropped.
    const sharedBefore = this.sharedPeers;
    this.sharedPeers = new Map();
    for (const [key, s] of this.services) {
      const peers = new Set<string>();
      for (const a of serviceAdvertisements(s.ips, s.ads, this.peers)) {
        byPeer.get(a.peer)?.push(toAdvertisement(a));
        peers.add(a.peer);
      }
      const sorted = [...peers].sort();
      const id = sorted.join('\n');
      const known = this.sharedPeers.get(id) ?? sharedBefore.get(id);
      if (known) this.sharedPeers.set(id, known);
      peersByService.set(key, known ?? this.sharePeers(sorted));
    }
    for (const [peer, ads] of byPeer) {
      const errors = this.d.speaker.setAdvertisements(peer, ads);
      if (errors.length > 0) this.d.log.error({ event: 'advertisementRefused', peer, errors: errors.slice(0, 10) }, `${errors.length} advertisements refused`);
    }
    const before = this.peersByService;
    this.peersByService = peersByService;
    if (!this.d.onStatusChange) return;
    for (const key of new Set([...before.keys(), ...peersByService.keys()])) {
      const a = before.get(key) ?? [];
      const b = peersByService.get(key) ?? [];
      if (a.length !== b.length || a.some((x, i) => x !== b[i])) this.d.onStatusChange(key);
    }
  }
}
