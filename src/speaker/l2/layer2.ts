// The layer 2 protocol handler: elects (election.ts) and drives the ARP/NDP announcer for the Services this node
// wins. A node whose advertisements name interfaces it does not have reports `announceFailed` and does not announce
// those addresses (the election is not redone: MetalLB's behaviour, so all speakers keep agreeing).
import type { Config } from '../../config/types.js';
import type { Node } from '../../k8s/types.js';
import type { EventSink } from '../../k8s/events.js';
import type { Logger } from '../../log.js';
import type { AnnounceDecision, ProtocolHandler, ServiceAnnouncement, SetBalancerResult } from '../protocol.js';
import { allowsSharedIP, isLocalPolicy, serviceLabels } from '../service-facts.js';
import { interfacesForNode, shouldAnnounceL2, type L2Decision } from './election.js';
import type { GratuitousBatch } from './takeover-plan.js';

/** The ARP/NDP announcer (src/speaker/l2/announcer.ts); ref-counted by name. */
export interface Announcer {
  setBalancer(name: string, ip: string, interfaces: readonly string[] | 'all'): void;
  deleteBalancer(name: string): void;
  /** The interfaces this node would announce `ip` on, given the advertisements' list. */
  interfacesFor(ip: string, interfaces: readonly string[] | 'all'): string[];
  /** Packet counters per address (metallb_layer2_*). */
  counters?(): ReadonlyMap<string, Readonly<{ requestsReceived: number; responsesSent: number; gratuitousSent: number }>>;
  /** Closes the packet sockets (shutdown). */
  close?(): void;
  /** The gratuitous frames that would announce these addresses now, one batch per interface (takeover plans). */
  gratuitousFrames?(entries: readonly { ip: string; interfaces: readonly string[] | 'all' }[]): GratuitousBatch[];
  /** Calls `cb` whenever the interfaces frames are sent on (or their MACs) change. */
  onInterfacesChanged?(cb: () => void): void;
}

export interface L2Status {
  /** 'all' or the advertisements' interface names (ServiceL2Status lists them only in the latter case). */
  interfaces: readonly string[] | 'all';
  ips: readonly string[];
}

export interface Layer2Deps {
  myNode: string;
  announcer: Announcer;
  /** Live speakers (memberlist members), or undefined when memberlist is disabled. */
  speakers(): ReadonlySet<string> | undefined;
  ignoreExcludeLB: boolean;
  events: EventSink;
  log: Logger;
  /** What this node announces for a Service changed (for its ServiceL2Status). */
  onStatusChange?(key: string): void;
  /** Interfaces are rescanned this often by the announcer; a missing interface is looked for again after it. */
  interfaceRetryMs?: number;
}

export class Layer2Handler implements ProtocolHandler {
  readonly protocol = 'layer2' as const;
  readonly takesOverEarly = true;
  private readonly status = new Map<string, L2Status>();

  constructor(private readonly d: Layer2Deps) {}

  setConfig(_config: Config): void {
    // Nothing to keep: every Service is reprocessed with the new config.
  }

  setNode(_node: Node): void {
    // Memberlist rejoin on own-node changes is the membership's job.
  }

  /** What this node announces for `key`, if anything. */
  statusFor(key: string): L2Status | undefined {
    return this.status.get(key);
  }

  private elect(a: ServiceAnnouncement): L2Decision {
    return shouldAnnounceL2(this.d.myNode, {
      serviceLabels: serviceLabels(a.service),
      allowSharedIP: allowsSharedIP(a.service),
      localTrafficPolicy: isLocalPolicy(a.service),
      ips: a.ips,
      ads: a.config.l2Advertisements.filter((ad) => ad.pools.has(a.pool.name)),
      nodes: a.nodes,
      speakers: a.speakers ?? this.d.speakers(),
      endpoints: a.endpoints,
      ignoreExcludeLB: this.d.ignoreExcludeLB,
    });
  }

  shouldAnnounce(a: ServiceAnnouncement): AnnounceDecision {
    const decision = this.elect(a);
    if (decision.announce) return { announce: true };
    return { announce: false, reason: decision.reason, message: decision.message };
  }

  owner(a: ServiceAnnouncement): string | undefined {
    return this.elect(a).election.winner;
  }

  /** The interfaces this node announces the Service's addresses on (MetalLB's ipAdvertisementFor). */
  private interfacesFor(a: ServiceAnnouncement): readonly string[] | 'all' {
    const ads = a.config.l2Advertisements
      .filter((ad) => ad.pools.has(a.pool.name))
      .filter((ad) => ad.serviceSelectors.length === 0 || ad.serviceSelectors.some((s) => s.matches(serviceLabels(a.service))));
    return interfacesForNode(ads, this.d.myNode, a.nodes);
  }

  private usable(ip: string, interfaces: readonly string[] | 'all'): boolean {
    return interfaces === 'all' || this.d.announcer.interfacesFor(ip, interfaces).length > 0;
  }

  /**
   * What setBalancer would hand the announcer for `a`, without doing it: the addresses it can announce on this
   * node and their interfaces (a takeover plan's content).
   */
  planned(a: ServiceAnnouncement): { ip: string; interfaces: readonly string[] | 'all' }[] {
    const interfaces = this.interfacesFor(a);
    return a.ips.filter((ip) => this.usable(ip, interfaces)).map((ip) => ({ ip, interfaces }));
  }

  setBalancer(a: ServiceAnnouncement): SetBalancerResult {
    const interfaces = this.interfacesFor(a);
    const announced: string[] = [];
    let missing = false;
    const prev = this.status.get(a.key);
    const usable = (ip: string): boolean => this.usable(ip, interfaces);
    // An address announced before that can no longer be (its interface went away) is dropped first: the announcer
    // only withdraws whole names.
    if (prev && prev.ips.some((ip) => !usable(ip))) this.d.announcer.deleteBalancer(a.key);
    for (const ip of a.ips) {
      if (!usable(ip)) {
        missing = true;
        this.d.log.warn({ service: a.key, ip, interfaces, node: this.d.myNode }, 'the interfaces specified to announce the LB IP do not exist on this node');
        this.d.events.record(a.service, 'Warning', 'announceFailed',
          `the interfaces specified by LB IP ${JSON.stringify(ip)} doesn't exist in assigned node ${JSON.stringify(this.d.myNode)} with protocol "layer2"`);
        continue;
      }
      this.d.announcer.setBalancer(a.key, ip, interfaces);
      announced.push(ip);
    }
    if (announced.length > 0) {
      const next: L2Status = { interfaces, ips: announced };
      this.status.set(a.key, next);
      if (!prev || JSON.stringify(prev) !== JSON.stringify(next)) this.d.onStatusChange?.(a.key);
    }
    return missing ? { announced, retryAfterMs: this.d.interfaceRetryMs ?? 10_000 } : { announced };
  }

  deleteBalancer(key: string, reason: string): void {
    this.d.announcer.deleteBalancer(key);
    this.d.log.debug({ service: key, reason, protocol: 'layer2' }, 'layer2: stopped announcing');
    if (this.status.delete(key)) this.d.onStatusChange?.(key);
  }
}
