// A takeover plan: for each other live speaker, the gratuitous frames this node sends the moment that speaker dies
// (the Services whose layer 2 owner it is and that this node's election gives to this node once it is gone).
// The speaker's main thread computes it ahead of time (src/speaker/takeover-planner.ts); the gossip thread, which
// declares the death, holds it and sends the frames at once (takeover-sender.ts), before the main thread even hears.
//
// A plan is only ever used for the membership it was computed for: at the death of `member`, the live set just
// before it must be the plan's. Two deaths at once, a rejoin, a speaker joining: the plan does not hold and the
// main thread's own takeover pass (today's path) does the work. Services that changed since the plan are dropped
// from it at once (`drop`), before the main thread computes them again.

/** Gratuitous frames for one interface, `frameLength` bytes each, laid end to end. */
export interface GratuitousBatch {
  ifname: string;
  frameLength: number;
  count: number;
  frames: Uint8Array;
  /** For each entry asked for (in order), how many of the frames are its (0: not announced on this interface). */
  perEntry: number[];
}

/** The frames one member's death makes this node send, per Service key. */
export interface MemberPlan {
  /** The Services taken over, in frame order. */
  keys: string[];
  batches: {
    ifname: string;
    frameLength: number;
    frames: Uint8Array;
    /** Frames of each key of `keys`, in order. */
    counts: number[];
  }[];
}

export interface TakeoverPlan {
  /** Increases with every plan the main thread makes. */
  id: number;
  /** This node's speaker (memberlist) name. */
  self: string;
  /** The live speakers (this one included) the plan was computed for, sorted. */
  live: string[];
  /** By member name; members whose death gives this node nothing are absent. */
  members: Record<string, MemberPlan>;
}

/** What the gossip thread sent for a death (the main thread then takes the same Services into its announcer). */
export interface TakeoverReport {
  planId: number;
  member: string;
  /** The live speakers right after the death (this one included). */
  live: string[];
  /** The Services whose frames were sent. */
  keys: string[];
  /** Frames that left (sendmmsg's count) and the interfaces that failed. */
  frames: number;
  errors: { ifname: string; error: string }[];
  /** Wall-clock ms: the death was declared, the frames were handed to the kernel. */
  detectedAt: number;
  sentAt: number;
}

/** One interface's frames, ready for sendmmsg. */
export interface FramesToSend {
  ifname: string;
  frameLength: number;
  count: number;
  frames: Buffer;
}

export interface PlannedSend {
  planId: number;
  member: string;
  keys: string[];
  batches: FramesToSend[];
}

/**
 * The kept keys' frames in passes: the first frame of every key, then every second one, and so on. A key's frames on
 * one interface are its address's gratuitous request and reply (ARP; a Service has one address per family), and a
 * client's neighbour entry is updated by the first: in a thousand-Service takeover (7 ms of frames on the lab's LAN)
 * every address's first frame is out in half the time, instead of some keys waiting for all the others' pairs.
 */
function firstFramesFirst(b: { frameLength: number; frames: Uint8Array; counts: readonly number[] }, keep: readonly boolean[], count: number): Buffer {
  const frames = Buffer.allocUnsafe(count * b.frameLength);
  const starts: number[] = [];
  let from = 0;
  let passes = 0;
  b.counts.forEach((c, i) => {
    starts.push(from);
    from += (c ?? 0) * b.frameLength;
    if (keep[i]) passes = Math.max(passes, c ?? 0);
  });
  let to = 0;
  for (let pass = 0; pass < passes; pass++) {
    b.counts.forEach((c, i) => {
      if (!keep[i] || (c ?? 0) <= pass) return;
      const at = starts[i]! + pass * b.frameLength;
      frames.set(b.frames.subarray(at, at + b.frameLength), to);
      to += b.frameLength;
    });
  }
  return frames;
}

const sameMembers = (a: readonly string[], b: ReadonlySet<string>): boolean => a.length === b.size && a.every((n) => b.has(n));

/** The gossip thread's copy of the plan: kept, narrowed by drops, and used at most once. */
export class TakeoverPlanHolder {
  private plan: TakeoverPlan | undefined;
  private readonly dropped = new Set<string>();

  get planId(): number | undefined {
    return this.plan?.id;
  }

  /** A new plan (null: none) replaces the previous one and the keys dropped from it. */
  set(plan: TakeoverPlan | null): void {
    this.plan = plan ?? undefined;
    this.dropped.clear();
  }

  /** These Services (or everything) changed since the plan was made: their frames must not go out. */
  drop(keys: readonly string[] | 'all'): void {
    if (!this.plan) return;
    if (keys === 'all') {
      this.plan = undefined;
      this.dropped.clear();
      return;
    }
    for (const k of keys) this.dropped.add(k);
  }

  /**
   * `member` has just died or left; `liveNow` are the live speakers after that. Returns what to send when the plan
   * was made for exactly the membership before the death, undefined otherwise. Either way the plan is used up: the
   * membership it was made for is gone.
   */
  takeFor(member: string, liveNow: Iterable<string>): PlannedSend | undefined {
    const plan = this.plan;
    if (!plan) return undefined;
    this.plan = undefined;
    const dropped = new Set(this.dropped);
    this.dropped.clear();
    const before = new Set(liveNow);
    before.add(plan.self);
    if (member === plan.self || before.has(member)) return undefined;
    before.add(member);
    if (!sameMembers(plan.live, before)) return undefined;
    const mp = plan.members[member];
    if (!mp) return { planId: plan.id, member, keys: [], batches: [] };
    const keep = mp.keys.map((k) => !dropped.has(k));
    const batches: FramesToSend[] = [];
    for (const b of mp.batches) {
      let count = 0;
      mp.keys.forEach((_k, i) => {
        if (keep[i]) count += b.counts[i] ?? 0;
      });
      if (count === 0) continue;
      batches.push({ ifname: b.ifname, frameLength: b.frameLength, count, frames: firstFramesFirst(b, keep, count) });
    }
    return { planId: plan.id, member, keys: mp.keys.filter((_k, i) => keep[i]), batches };
  }
}
