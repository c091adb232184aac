// Keeps the gossip thread's takeover plan (l2/takeover-plan.ts) up to date, off the hot path: whatever a plan
// depends on (a Service, its endpoints, the nodes, the config, the membership, this node's interfaces) marks it
// dirty; the dirty Services are dropped from the gossip thread's plan at once (in the same turn) and planned again
// a little later, all in one go. Each Service's plan comes from the pipeline's planKey (the same decide() and
// election as every reconcile); only the frames are made here, by the announcer.
import type { Logger } from '../log.js';
import type { PlannedTakeover } from './pipeline.js';
import type { GratuitousBatch, MemberPlan, TakeoverPlan } from './l2/takeover-plan.js';

export interface PlannedAddress {
  ip: string;
  interfaces: readonly string[] | 'all';
}

export interface TakeoverPlannerDeps {
  myNode: string;
  /** The live speakers (this one included); undefined while there is no membership to plan for. */
  live(): ReadonlySet<string> | undefined;
  /** Every Service key that may be planned. */
  keys(): Iterable<string>;
  /** The plan of one Service under `live` (AnnouncePipeline.planKey with the Service's inputs). */
  plan(key: string, live: ReadonlySet<string>): PlannedTakeover[];
  /** The addresses a planned takeover announces, with their interfaces (empty for protocols sending nothing). */
  addresses(p: PlannedTakeover): PlannedAddress[];
  /** The gratuitous frames announcing `entries` now (the announcer's), one batch per interface. */
  frames(entries: readonly PlannedAddress[]): GratuitousBatch[];
  /** To the gossip thread: a new plan (null: none), and the Services dropped from it. */
  publish(plan: TakeoverPlan | null): void;
  drop(keys: readonly string[] | 'all'): void;
  log: Logger;
  /** How long after the first change the plan is made again (default 250 ms). */
  delayMs?: number;
  timers?: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(h: unknown): void };
}

/** One Service's part of the plan, per member whose death gives it to this node: made once per change of it. */
interface KeyPlan {
  member: string;
  planned: PlannedTakeover[];
  /** Its gratuitous frames, per interface (frame length included, as the announcer keeps ARP and NDP apart). */
  batches: { ifname: string; frameLength: number; count: number; frames: Uint8Array }[];
}

const realTimers = {
  setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms).unref(),
  clearTimeout: (h: unknown): void => clearTimeout(h as NodeJS.Timeout | undefined),
};

/** Plans the main thread keeps, newest last, to find what a report of the gossip thread refers to. */
const KEPT_PLANS = 8;

export class TakeoverPlanner {
  /** Per Service, its plan under `plannedLive` (only Services some death would give to this node). */
  private readonly byKey = new Map<string, KeyPlan[]>();
  private plannedLive: string | undefined;
  private readonly dirty = new Set<string>();
  private allDirty = true;
  private readonly dropsPending = new Set<string>();
  private dropAllPending = false;
  private dropQueued = false;
  private timer: unknown;
  private nextId = 1;
  /** Counts changes: each Service's last change, the last change of everything, and each plan's, by this count. */
  private seq = 0;
  private readonly changedAt = new Map<string, number>();
  private allChangedAt = 0;
  private readonly published: { id: number; seq: number; byMember: Map<string, Map<string, PlannedTakeover[]>> }[] = [];
  private stopped = false;
  private readonly timers: NonNullable<TakeoverPlannerDeps['timers']>;

  constructor(private readonly d: TakeoverPlannerDeps) {
    this.timers = d.timers ?? realTimers;
  }

  /** The Service `key` (or its endpoints) changed. */
  touch(key: string): void {
    if (this.stopped) return;
    this.changedAt.set(key, ++this.seq);
    this.dirty.add(key);
    if (!this.dropAllPending) this.dropsPending.add(key);
    this.queueDrop();
    this.schedule();
  }

  /** Something every Service's plan depends on changed (nodes, config, membership, interfaces). */
  touchAll(): void {
    if (this.stopped) return;
    this.allChangedAt = ++this.seq;
    this.allDirty = true;
    this.dropAllPending = true;
    this.dropsPending.clear();
    this.queueDrop();
    this.schedule();
  }

  /** Makes the plan now (the timer does it after a change) and hands it to the gossip thread. */
  recompute(): void {
    if (this.stopped) return;
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    // Drops first: they concern the plan the gossip thread holds, which this one replaces.
    this.flushDrops();
    const live = this.d.live();
    if (!live) {
      this.byKey.clear();
      this.plannedLive = undefined;
      this.dirty.clear();
      this.allDirty = true;
      this.d.publish(null);
      return;
    }
    const liveKey = [...live].sort().join('\n');
    const keys = new Set(this.d.keys());
    const todo = this.allDirty || liveKey !== this.plannedLive ? keys : this.dirty;
    if (todo === keys) this.byKey.clear();
    for (const key of todo) {
      this.byKey.delete(key);
      if (!keys.has(key)) continue;
      try {
        const plans = this.planOne(key, live);
        if (plans.length > 0) this.byKey.set(key, plans);
      } catch (err) {
        // Left out of the plan: the main thread's own takeover pass handles it.
        this.d.log.debug({ service: key, err: (err as Error).message }, 'takeover plan: service left out');
      }
    }
    this.dirty.clear();
    this.allDirty = false;
    this.plannedLive = liveKey;
    const plan = this.build([...live].sort());
    this.d.publish(plan);
    this.d.log.debug({ planId: plan.id, live: plan.live, members: Object.fromEntries(Object.entries(plan.members).map(([m, mp]) => [m, mp.keys.length])) }, 'takeover plan: made');
  }

  /**
   * The planned takeovers of a published plan for `member`, restricted to `keys` and to the Services unchanged since
   * the plan was made (a changed one is left to the main thread's own pass, on what it knows now); undefined when
   * the plan is not kept.
   */
  planned(planId: number, member: string, keys: readonly string[]): PlannedTakeover[] | undefined {
    const plan = this.published.find((p) => p.id === planId);
    const byKey = plan?.byMember.get(member);
    if (!plan || !byKey) return undefined;
    if (this.allChangedAt > plan.seq) return [];
    return keys.filter((k) => (this.changedAt.get(k) ?? 0) <= plan.seq).flatMap((k) => byKey.get(k) ?? []);
  }

  stop(): void {
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One Service: who would hand it over, and its frames (the costly part, kept until the Service changes). */
  private planOne(key: string, live: ReadonlySet<string>): KeyPlan[] {
    const byMember = new Map<string, PlannedTakeover[]>();
    for (const p of this.d.plan(key, live)) byMember.set(p.member, [...(byMember.get(p.member) ?? []), p]);
    const out: KeyPlan[] = [];
    for (const [member, planned] of byMember) {
      const addresses = planned.flatMap((p) => this.d.addresses(p));
      if (addresses.length === 0) continue;
      const batches = this.d.frames(addresses).map((b) => ({ ifname: b.ifname, frameLength: b.frameLength, count: b.count, frames: b.frames }));
      out.push({ member, planned, batches: batches.filter((b) => b.count > 0) });
    }
    return out;
  }

  private build(live: string[]): TakeoverPlan {
    const byMember = new Map<string, Map<string, PlannedTakeover[]>>();
    const members: Record<string, MemberPlan> = {};
    /** Per member, per interface and frame length: the frames of each key in order, and each key's count. */
    const parts = new Map<string, Map<string, { ifname: string; frameLength: number; frames: Uint8Array[]; counts: number[] }>>();
    for (const key of [...this.byKey.keys()].sort()) {
      for (const kp of this.byKey.get(key)!) {
        let m = byMember.get(kp.member);
        if (!m) byMember.set(kp.member, (m = new Map()));
        m.set(key, kp.planned);
        let mp = members[kp.member];
        if (!mp) members[kp.member] = mp = { keys: [], batches: [] };
        let ifs = parts.get(kp.member);
        if (!ifs) parts.set(kp.member, (ifs = new Map()));
        const index = mp.keys.length;
        mp.keys.push(key);
        for (const b of kp.batches) {
          const id = `${b.ifname}/${b.frameLength}`;
          let part = ifs.get(id);
          if (!part) ifs.set(id, (part = { ifname: b.ifname, frameLength: b.frameLength, frames: [], counts: [] }));
          while (part.counts.length < index) part.counts.push(0);
          part.counts.push(b.count);
          part.frames.push(b.frames);
        }
      }
    }
    for (const [member, ifs] of parts) {
      const mp = members[member]!;
      for (const part of ifs.values()) {
        while (part.counts.length < mp.keys.length) part.counts.push(0);
        mp.batches.push({ ifname: part.ifname, frameLength: part.frameLength, frames: Buffer.concat(part.frames), counts: part.counts });
      }
    }
    const id = this.nextId++;
    this.published.push({ id, seq: this.seq, byMember });
    if (this.published.length > KEPT_PLANS) this.published.shift();
    // Changes older than every kept plan tell nothing any more.
    const oldest = this.published[0]!.seq;
    for (const [k, at] of this.changedAt) if (at <= oldest) this.changedAt.delete(k);
    return { id, self: this.d.myNode, live, members };
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.recompute();
    }, this.d.delayMs ?? 250);
  }

  // Dropped within the turn that saw the change: a death declared meanwhile must not send a changed Service's frames.
  private queueDrop(): void {
    if (this.dropQueued) return;
    this.dropQueued = true;
    queueMicrotask(() => this.flushDrops());
  }

  private flushDrops(): void {
    this.dropQueued = false;
    if (this.dropAllPending) {
      this.d.drop('all');
      this.d.log.debug({ services: 'all' }, 'takeover plan: dropped');
    } else if (this.dropsPending.size > 0) {
      this.d.drop([...this.dropsPending]);
      this.d.log.debug({ services: this.dropsPending.size, keys: [...this.dropsPending].slice(0, 10) }, 'takeover plan: dropped');
    }
    this.dropAllPending = false;
    this.dropsPending.clear();
  }
}
