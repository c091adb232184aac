// Which speakers are alive: MetalLB's speakerlist. With memberlist on (both --ml-bindaddr and --ml-labels set) the
// candidates for layer 2 are the memberlist members; the speaker finds its peers by listing the pods matching
// --ml-labels in its namespace (only `list` is needed: MetalLB's oldest RBAC grants nothing else) and joins their
// IPs, again every few minutes and whenever its own Node changes. Off: every Node is a candidate.
import type { Logger } from '../log.js';
import type { Pod } from '../k8s/types.js';
import { errorText } from '../k8s/client.js';
import type { TakeoverPlan, TakeoverReport } from './l2/takeover-plan.js';

export type MembershipEvent = 'join' | 'leave' | 'update';

export interface Membership {
  /** Memberlist is on. */
  readonly enabled: boolean;
  /** Names of the live speakers (this node included); undefined when memberlist is off. */
  usable(): ReadonlySet<string> | undefined;
  /**
   * Called after the live set changed. `takeover`: the gossip thread already sent a takeover plan's frames for
   * this death (the live set is the one it saw right after).
   */
  onChange(cb: (event: MembershipEvent, member: string, takeover?: TakeoverReport) => void): void;
  /** Gives the gossip thread the frames to send when a member dies (absent: no plans are made). */
  setTakeoverPlan?(plan: TakeoverPlan | null): void;
  /** These Services (or all) changed since the plan: their frames must not go out. */
  dropTakeoverPlan?(keys: readonly string[] | 'all'): void;
  /** The failure detector's counters and latency figures (memberlist's `counters`), for the metrics. */
  detectorFigures?(): Promise<Record<string, number> | undefined>;
  start(): Promise<void>;
  /** Join the peers again (own Node changed, partition suspected). */
  rejoin(): void;
  /** Tell the others we go (they re-elect at once), waiting at most `timeoutMs`. */
  leave(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

export class DisabledMembership implements Membership {
  readonly enabled = false;
  usable(): undefined {
    return undefined;
  }
  onChange(): void {}
  async start(): Promise<void> {}
  rejoin(): void {}
  async leave(): Promise<void> {}
  async stop(): Promise<void> {}
}

/** The memberlist implementation (src/speaker/memberlist), as the speaker uses it. */
export interface MemberlistLike {
  join(addrs: readonly string[]): Promise<number>;
  liveMembers(): Promise<string[]>;
  leave(timeoutMs: number): Promise<void>;
  shutdown(): Promise<void>;
  on(event: MembershipEvent, listener: (member: { name: string }) => void): unknown;
  on(event: 'takeover', listener: (report: TakeoverReport) => void): unknown;
  setTakeoverPlan?(plan: TakeoverPlan | null): void;
  dropTakeoverPlan?(keys: readonly string[] | 'all'): void;
  counters?(): Promise<Record<string, number>>;
}

export interface SpeakerListDeps {
  nodeName: string;
  log: Logger;
  create(): Promise<MemberlistLike>;
  /** The pods matching --ml-labels in the speaker namespace. */
  listPods(): Promise<Pod[]>;
  /** Port peers listen on (their --ml-bindport; MetalLB assumes all speakers use the same). */
  peerPort: number;
  /** Pod list refresh (MetalLB: 5 min) and join retry while a known peer is missing (MetalLB: 1 min, when alone). */
  refreshMs?: number;
  retryMs?: number;
}

/** Pod IPs worth joining: running (or pending with an IP) pods other than terminating ones. */
export function peerAddresses(pods: readonly Pod[], port: number): string[] {
  const out = new Set<string>();
  for (const p of pods) {
    if (p.metadata?.deletionTimestamp) continue;
    const phase = p.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const ips = p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : []);
    // One address per pod suffices (memberlist advertises a single address); prefer the first (primary) one.
    const ip = ips.find((x) => typeof x === 'string' && x !== '');
    if (ip) out.add(ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
  }
  return [...out].sort();
}

export class SpeakerList implements Membership {
  readonly enabled = true;
  private ml: MemberlistLike | undefined;
  private live: Set<string>;
  private readonly listeners: ((event: MembershipEvent, member: string, takeover?: TakeoverReport) => void)[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private joining: Promise<void> | undefined;
  private stopped = false;
  private refreshSeq = 0;
  /** Peer addresses from the last pod list: a speaker cut off from the API server can still find its peers. */
  private knownPeers: string[] = [];

  constructor(private readonly d: SpeakerListDeps) {
    this.live = new Set([d.nodeName]);
  }

  usable(): ReadonlySet<string> {
    return this.live;
  }

  onChange(cb: (event: MembershipEvent, member: string, takeover?: TakeoverReport) => void): void {
    this.listeners.push(cb);
  }

  setTakeoverPlan(plan: TakeoverPlan | null): void {
    if (!this.stopped) this.ml?.setTakeoverPlan?.(plan);
  }

  dropTakeoverPlan(keys: readonly string[] | 'all'): void {
    this.ml?.dropTakeoverPlan?.(keys);
  }

  async detectorFigures(): Promise<Record<string, number> | undefined> {
    if (this.stopped || !this.ml?.counters) return undefined;
    // A scrape never waits long for a busy (or hung) gossip thread: its figures are left out this time.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, 1000, undefined);
      timer.unref?.();
    });
    try {
      return await Promise.race([this.ml.counters(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The gossip thread sent a plan's frames for a death: the live set it saw right after is in force now (no round
   * trip to read it), and the listeners hear the leave with the report. The leave event that follows finds
   * nothing changed.
   */
  private tookOver(report: TakeoverReport): void {
    if (this.stopped) return;
    this.refreshSeq++; // a refresh under way read the members before the death
    const next = new Set(report.live);
    next.add(this.d.nodeName);
    this.live = next;
    this.d.log.info({ event: 'leave', member: report.member, members: [...next].sort(), planId: report.planId, services: report.keys.length }, `memberlist: ${report.member} left; takeover plan sent by the gossip thread`);
    for (const l of this.listeners) l('leave', report.member, report);
  }

  async start(): Promise<void> {
    this.ml = await this.d.create();
    for (const ev of ['join', 'leave', 'update'] as const) {
      this.ml.on(ev, (m) => void this.refresh(ev, m.name));
    }
    this.ml.on('takeover', (r) => this.tookOver(r));
    this.d.log.info({ node: this.d.nodeName }, 'memberlist started');
    // Until the first join, this node would see itself alone and elect itself for everything: the caller waits.
    this.rejoin();
    await this.joining;
    this.refreshTimer = setInterval(() => this.rejoin(), this.d.refreshMs ?? 300_000);
    this.refreshTimer.unref();
    // A partition heals only by a join: memberlist stops talking to members it declared dead. While fewer speakers
    // are alive than pods were listed, join again (MetalLB retries once a minute, and only when alone).
    this.retryTimer = setInterval(() => {
      if (this.live.size < Math.max(2, this.knownPeers.length)) this.rejoin();
    }, this.d.retryMs ?? 10_000);
    this.retryTimer.unref();
  }

  /** Re-reads the live set after an event; listeners hear only real changes. */
  private async refresh(event: MembershipEvent, member: string): Promise<void> {
    if (!this.ml || this.stopped) return;
    const seq = ++this.refreshSeq;
    let names: string[];
    try {
      names = await this.ml.liveMembers();
    } catch (err) {
      this.d.log.warn({ err: errorText(err) }, 'memberlist: could not read members');
      return;
    }
    if (seq !== this.refreshSeq || this.stopped) return; // a newer refresh is on its way
    const next = new Set(names);
    next.add(this.d.nodeName);
    const changed = next.size !== this.live.size || [...next].some((n) => !this.live.has(n));
    this.live = next;
    this.d.log.info({ event, member, members: [...next].sort() }, `memberlist: ${member} ${event === 'join' ? 'joined' : event === 'leave' ? 'left' : 'updated'}`);
    if (changed || event === 'update') for (const l of this.listeners) l(event, member);
  }

  rejoin(): void {
    if (this.joining || this.stopped || !this.ml) return;
    const ml = this.ml;
    this.joining = (async () => {
      try {
        let addrs: string[];
        try {
          addrs = peerAddresses(await this.d.listPods(), this.d.peerPort);
          this.knownPeers = addrs;
        } catch (err) {
          if (this.knownPeers.length === 0) throw err;
          this.d.log.debug({ err: errorText(err) }, 'memberlist: cannot list the speaker pods, joining the peers known before');
          addrs = this.knownPeers;
        }
        if (addrs.length === 0) return;
        const n = await ml.join(addrs);
        this.d.log.info({ peers: addrs, answered: n }, 'memberlist: joined');
        await this.refresh('join', this.d.nodeName);
      } catch (err) {
        this.d.log.warn({ err: errorText(err) }, 'memberlist: join failed, retrying later');
      } finally {
        this.joining = undefined;
      }
    })();
  }

  async leave(timeoutMs: number): Promise<void> {
    if (!this.ml) return;
    try {
      await this.ml.leave(timeoutMs);
    } catch (err) {
      this.d.log.warn({ err: errorText(err) }, 'memberlist: leave failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.retryTimer) clearInterval(this.retryTimer);
    await this.ml?.shutdown().catch(() => undefined);
  }
}
