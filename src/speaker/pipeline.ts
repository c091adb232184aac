// The speaker's per-Service pipeline (MetalLB's speaker controller.SetBalancer, reference j): from one Service and
// what is known about the cluster, withdraw it with a reason or announce it through each protocol. Idempotent and
// level-triggered: the manager calls `reconcile` for a Service key whenever anything it depends on may have changed.
//
// Withdraw reasons, in order: serviceDeleted, notLoadBalancer, (loadBalancerClass: not handled by this speaker),
// noIPAllocated, invalidIP, ipNotAllowed, loadBalancerIPChanged (withdraw, then announce the new addresses); then
// per protocol the reason its shouldAnnounce gives.
import type { Config } from '../config/types.js';
import type { Node, Service } from '../k8s/types.js';
import type { EventSink } from '../k8s/events.js';
import type { Logger } from '../log.js';
import type { ServiceEndpoint } from './endpoints.js';
import type { ProtocolHandler, ProtocolName, ServiceAnnouncement } from './protocol.js';
import { ingressTexts, parseIngress, poolForIPs } from './service-facts.js';

export interface AnnouncedGauge {
  set(labels: { service: string; protocol: string; node: string; ip: string }, value: number): void;
  remove(labels: { service: string; protocol: string; node: string; ip: string }): void;
}

export interface PipelineDeps {
  myNode: string;
  /** In MetalLB's order: BGP first, then layer 2. */
  handlers: readonly ProtocolHandler[];
  /** --lb-class: "" handles Services without a class only. */
  loadBalancerClass: string;
  events: EventSink;
  announced: AnnouncedGauge;
  log: Logger;
}

export interface ServiceInputs {
  service: Service | undefined;
  endpoints: readonly ServiceEndpoint[];
  nodes: ReadonlyMap<string, Node>;
}

type Decision =
  | { withdraw: string; error?: string; ips?: readonly string[] }
  | { wait: true }
  | { announce: ServiceAnnouncement; ipsChanged: boolean };

/** In a takeover plan: `protocol` would announce the Service from this node once `member` is gone. */
export interface PlannedTakeover {
  member: string;
  protocol: ProtocolName;
  announcement: ServiceAnnouncement;
}

export interface ReconcileResult {
  /** Reconcile again after this long (a protocol could not announce everything yet). */
  retryAfterMs?: number;
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

export class AnnouncePipeline {
  private config: Config | undefined;
  /** Per protocol, the addresses announced per Service key. */
  private readonly announced = new Map<ProtocolName, Map<string, readonly string[]>>();
  /** The addresses each announced Service had when announced (MetalLB's svcIPs). */
  private readonly svcIPs = new Map<string, readonly string[]>();
  /**
   * Per protocol, the Services the takeover pass announced ahead of their reconcile (not yet in `announced`). The
   * speakers may change again before that reconcile runs (the dead node is back): the reconcile must then withdraw
   * them from the handler, or the address stays announced from here while another node owns it.
   */
  private readonly takenOver = new Map<ProtocolName, Set<string>>();

  constructor(private readonly d: PipelineDeps) {
    for (const h of d.handlers) {
      this.announced.set(h.protocol, new Map());
      this.takenOver.set(h.protocol, new Set());
    }
  }

  get hasConfig(): boolean {
    return this.config !== undefined;
  }

  /** Service keys announced by at least one protocol. */
  announcedKeys(): string[] {
    return [...this.svcIPs.keys()];
  }

  /** Addresses announced for `key` by `protocol` (empty when not announced). */
  announcedBy(protocol: ProtocolName, key: string): readonly string[] {
    return this.announced.get(protocol)?.get(key) ?? [];
  }

  /**
   * MetalLB's speaker SetConfig: a config under which an announced address belongs to no pool is refused (the
   * previous one stays in force); returns the reason, or undefined when the config is now in force.
   */
  checkConfig(config: Config): string | undefined {
    for (const [key, ips] of this.svcIPs) {
      const parsed = parseIngress(ips);
      if (!parsed || !poolForIPs(config.pools, parsed)) {
        return `service ${key} announces ${ips.join(', ')}, which would belong to no IPAddressPool`;
      }
    }
    return undefined;
  }

  setConfig(config: Config): void {
    for (const h of this.d.handlers) h.setConfig(config);
    this.config = config;
  }

  handles(svc: Service): boolean {
    const cls = typeof svc.spec?.loadBalancerClass === 'string' ? svc.spec.loadBalancerClass : '';
    return cls === this.d.loadBalancerClass;
  }

  /**
   * What MetalLB's speaker decides for a Service before asking the protocols: withdraw it (and why), wait for a
   * config, or announce it (with whether its addresses changed since it was announced). No side effects.
   */
  private decide(key: string, inputs: ServiceInputs): Decision {
    const svc = inputs.service;
    if (!svc) return { withdraw: 'serviceDeleted' };
    if (svc.spec?.type !== 'LoadBalancer') return { withdraw: 'notLoadBalancer' };
    if (!this.handles(svc)) return { withdraw: 'loadBalancerClass' };
    const config = this.config;
    if (!config) return { wait: true }; // every Service is reprocessed once a config arrives
    const ips = ingressTexts(svc);
    if (ips.length === 0) return { withdraw: 'noIPAllocated' };
    const parsed = parseIngress(ips);
    if (!parsed) return { withdraw: 'invalidIP', error: 'invalid LoadBalancer IP in the service status', ips };
    const pool = poolForIPs(config.pools, parsed);
    if (!pool) return { withdraw: 'ipNotAllowed', error: 'the service\'s IP is not allowed by the configuration (in no IPAddressPool)', ips };
    const before = this.svcIPs.get(key);
    return {
      announce: { key, service: svc, ips, parsed, pool, config, endpoints: inputs.endpoints, nodes: inputs.nodes },
      ipsChanged: before !== undefined && !sameSet(before, ips),
    };
  }

  async reconcile(key: string, inputs: ServiceInputs): Promise<ReconcileResult> {
    const d = this.decide(key, inputs);
    if ('wait' in d) return {};
    if ('withdraw' in d) {
      if (d.error) this.d.log.error({ service: key, ips: d.ips }, d.error);
      return this.withdrawAll(key, d.withdraw);
    }
    if (d.ipsChanged) await this.withdrawAll(key, 'loadBalancerIPChanged');
    const a = d.announce;
    const { ips, pool, service: svc } = a;
    let retryAfterMs: number | undefined;
    for (const h of this.d.handlers) {
      const decision = h.shouldAnnounce(a);
      if (!decision.announce) {
        await this.withdraw(h, key, decision.reason, decision.message);
        continue;
      }
      const result = await h.setBalancer(a);
      if (result.retryAfterMs !== undefined) retryAfterMs = Math.min(retryAfterMs ?? Infinity, result.retryAfterMs);
      if (result.announced.length === 0) {
        await this.withdraw(h, key, 'announceFailed');
        continue;
      }
      this.markAnnounced(h.protocol, key, svc, ips, result.announced, pool.name);
    }
    return retryAfterMs === undefined ? {} : { retryAfterMs };
  }

  /**
   * After the speakers changed (a node died or left), what this node must now announce goes out before anything
   * else: the layer 2 decision for every Service in one synchronous pass, and a setBalancer (gratuitous ARP/NA, sent
   * in one batch by the announcer) for each Service newly ours. The per-Service reconciles that follow do the rest
   * (status, events, metrics) and find these announced already (setBalancer is idempotent). Returns the keys taken
   * over, to be reconciled first. Withdrawals are not urgent and are left to the reconciles.
   */
  takeOver(keys: Iterable<string>, inputs: (key: string) => ServiceInputs): string[] {
    if (!this.config) return [];
    const taken: string[] = [];
    const settled = (h: ProtocolHandler, key: string): boolean => this.announcedBy(h.protocol, key).length > 0 || this.takenOver.get(h.protocol)?.has(key) === true;
    for (const key of keys) {
      try {
        // Announced already (a takeover plan took it): no need to gather its inputs and decide.
        if (this.d.handlers.every((h) => !h.takesOverEarly || settled(h, key))) continue;
        const d = this.decide(key, inputs(key));
        if (!('announce' in d) || d.ipsChanged) continue;
        const a = d.announce;
        for (const h of this.d.handlers) {
          if (!h.takesOverEarly || settled(h, key)) continue;
          if (!h.shouldAnnounce(a).announce) continue;
          taken.push(this.announceEarly(h, a));
        }
      } catch (err) {
        this.d.log.debug({ service: key, err: (err as Error).message }, 'takeover pass: left to the reconcile');
      }
    }
    return taken;
  }

  /**
   * The takeover plan of one Service under the live speakers `live`: for the protocols that take over early, the
   * member whose death alone would make this node announce it (its owner now, when removing it from `live` makes
   * this node the owner), by the same decide() and election as reconcile and takeOver. Removing a speaker only
   * removes a candidate, so no other member's death can move the Service here.
   */
  planKey(key: string, inputs: ServiceInputs, live: ReadonlySet<string>): PlannedTakeover[] {
    if (!this.config) return [];
    const d = this.decide(key, inputs);
    if (!('announce' in d) || d.ipsChanged) return [];
    const out: PlannedTakeover[] = [];
    for (const h of this.d.handlers) {
      if (!h.takesOverEarly || !h.owner) continue;
      const owner = h.owner({ ...d.announce, speakers: live });
      if (owner === undefined || owner === this.d.myNode || !live.has(owner)) continue;
      const without = new Set(live);
      without.delete(owner);
      const announcement: ServiceAnnouncement = { ...d.announce, speakers: without };
      if (h.shouldAnnounce(announcement).announce) out.push({ member: owner, protocol: h.protocol, announcement });
    }
    return out;
  }

  /**
   * A takeover plan's Services were just announced from another thread (its gratuitous frames are out): the
   * handlers take them now, without electing again, and they are recorded as taken over so that their reconciles
   * withdraw any that is not ours after all (the plan was made from what this node knew a moment before).
   * Returns the keys to reconcile first.
   */
  applyPlanned(planned: Iterable<PlannedTakeover>): string[] {
    if (!this.config) return [];
    const taken: string[] = [];
    for (const p of planned) {
      const h = this.d.handlers.find((x) => x.protocol === p.protocol);
      const key = p.announcement.key;
      if (!h || this.announcedBy(h.protocol, key).length > 0) continue;
      try {
        taken.push(this.announceEarly(h, p.announcement));
      } catch (err) {
        this.d.log.debug({ service: key, err: (err as Error).message }, 'takeover plan: left to the reconcile');
      }
    }
    return taken;
  }

  /**
   * Announces `a` through `h` ahead of its reconcile (takeOver, applyPlanned) and records it as taken over, so
   * that the reconcile withdraws it should it not be ours after all. Returns its key. A synchronous throw reaches
   * the caller; an asynchronous failure is left to the reconcile that follows, which reports it.
   */
  private announceEarly(h: ProtocolHandler, a: ServiceAnnouncement): string {
    const r = h.setBalancer(a);
    if (r instanceof Promise) r.catch(() => undefined);
    this.takenOver.get(h.protocol)?.add(a.key);
    return a.key;
  }

  private markAnnounced(protocol: ProtocolName, key: string, svc: Service, ips: readonly string[], now: readonly string[], pool: string): void {
    const byKey = this.announced.get(protocol) as Map<string, readonly string[]>;
    const prev = byKey.get(key);
    // One frozen copy when what is announced is the Service's addresses (the usual case), kept by both maps.
    const cur = this.svcIPs.get(key);
    const svcIPs = cur && sameList(cur, ips) ? cur : Object.freeze([...ips]);
    byKey.set(key, sameList(now, ips) ? svcIPs : Object.freeze([...now]));
    this.takenOver.get(protocol)?.delete(key);
    this.svcIPs.set(key, svcIPs);
    const labels = (ip: string): { service: string; protocol: string; node: string; ip: string } => ({ service: key, protocol, node: this.d.myNode, ip });
    for (const ip of prev ?? []) if (!now.includes(ip)) this.d.announced.remove(labels(ip));
    for (const ip of now) this.d.announced.set(labels(ip), 1);
    if (prev && sameSet(prev, now)) return;
    this.d.log.info({ service: key, ips: now, protocol, pool, node: this.d.myNode }, 'service has IP, announcing');
    // MetalLB records this on every successful reconcile; we record each change of what is announced, which
    // keeps the same message and reason without an API write per reconcile.
    this.d.events.record(svc, 'Normal', 'nodeAssigned', `announcing from node ${JSON.stringify(this.d.myNode)} with protocol ${JSON.stringify(protocol)}`);
  }

  private async withdrawAll(key: string, reason: string): Promise<ReconcileResult> {
    for (const h of this.d.handlers) await this.withdraw(h, key, reason);
    return {};
  }

  private async withdraw(h: ProtocolHandler, key: string, reason: string, message?: string): Promise<void> {
    const byKey = this.announced.get(h.protocol) as Map<string, readonly string[]>;
    const ips = byKey.get(key);
    if (!ips) {
      // Announced by the takeover pass only: no bookkeeping to undo, but the handler announces it.
      if (this.takenOver.get(h.protocol)?.delete(key)) {
        await h.deleteBalancer(key, reason);
        this.d.log.info({ service: key, protocol: h.protocol, reason, ...(message ? { detail: message } : {}) }, 'withdrawing service announcement taken over before its reconcile');
      }
      return;
    }
    this.takenOver.get(h.protocol)?.delete(key);
    await h.deleteBalancer(key, reason);
    for (const ip of ips) this.d.announced.remove({ service: key, protocol: h.protocol, node: this.d.myNode, ip });
    byKey.delete(key);
    if ([...this.announced.values()].some((m) => m.has(key))) return;
    this.d.log.info({ service: key, ips: this.svcIPs.get(key), protocol: h.protocol, reason, ...(message ? { detail: message } : {}) }, 'withdrawing service announcement');
    this.svcIPs.delete(key);
  }

  /** Withdraws everything (shutdown). */
  async withdrawEverything(reason: string): Promise<void> {
    const keys = new Set(this.announcedKeys());
    for (const taken of this.takenOver.values()) for (const k of taken) keys.add(k);
    for (const key of keys) await this.withdrawAll(key, reason);
  }
}
