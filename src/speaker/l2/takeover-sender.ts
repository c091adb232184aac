// Sends a takeover plan's frames from the thread that declares the death (the memberlist gossip thread, which runs at
// a high priority while the speaker's main thread may be starved). It keeps one send-only packet socket per
// interface the plan names, opened when the plan arrives, so that a death costs one sendmmsg per interface.
import { assemble, encode, ret } from '../../net/bpf.js';
import { PacketSocket } from '../../net/packet-socket.js';
import { TakeoverPlanHolder, type PlannedSend, type TakeoverPlan, type TakeoverReport } from './takeover-plan.js';

/** Where the frames go: a packet socket bound to one interface in production, a recorder in tests. */
export interface FrameSink {
  sendBatch(buf: Buffer, stride: number, count: number): number;
  close(): void;
}

export type OpenFrameSink = (ifname: string) => FrameSink;

export interface SenderLogger {
  warn(obj: object, msg: string): void;
}

// Bound to no EtherType and filtering everything: the socket only sends.
const RECEIVE_NOTHING = encode(assemble([ret(0)]));

export const openSendSocket: OpenFrameSink = (ifname) =>
  PacketSocket.open({ ifname, protocol: 0, filter: RECEIVE_NOTHING, bufferSize: 64, receiveBufferBytes: 0, ref: false, onFrame: () => undefined });

export class TakeoverSender {
  private readonly holder = new TakeoverPlanHolder();
  private readonly sinks = new Map<string, FrameSink>();
  private closed = false;

  constructor(
    private readonly open: OpenFrameSink,
    private readonly log?: SenderLogger,
  ) {}

  get planId(): number | undefined {
    return this.holder.planId;
  }

  /** A new plan (null: none); sockets are opened for its interfaces now, not at the death. */
  setPlan(plan: TakeoverPlan | null): void {
    if (this.closed) return;
    this.holder.set(plan);
    const wanted = new Set<string>();
    for (const mp of Object.values(plan?.members ?? {})) for (const b of mp.batches) wanted.add(b.ifname);
    for (const [ifname, sink] of this.sinks) {
      if (wanted.has(ifname)) continue;
      sink.close();
      this.sinks.delete(ifname);
    }
    for (const ifname of wanted) this.sink(ifname);
  }

  drop(keys: readonly string[] | 'all'): void {
    this.holder.drop(keys);
  }

  /**
   * `member` died or left and `liveNow` are the live members after: sends the plan's frames if it holds for that
   * membership. Returns the report for the main thread, or undefined when the plan did not hold (or there was none).
   */
  onDeath(member: string, liveNow: readonly string[], detectedAt = Date.now()): TakeoverReport | undefined {
    if (this.closed) return undefined;
    const planned = this.holder.takeFor(member, liveNow);
    if (!planned) return undefined;
    const { frames, errors } = this.send(planned);
    return { planId: planned.planId, member, live: [...liveNow], keys: planned.keys, frames, errors, detectedAt, sentAt: Date.now() };
  }

  close(): void {
    this.closed = true;
    this.holder.set(null);
    for (const sink of this.sinks.values()) sink.close();
    this.sinks.clear();
  }

  private send(planned: PlannedSend): { frames: number; errors: { ifname: string; error: string }[] } {
    let frames = 0;
    const errors: { ifname: string; error: string }[] = [];
    for (const b of planned.batches) {
      try {
        const sink = this.sink(b.ifname);
        if (!sink) throw new Error('no socket');
        frames += sink.sendBatch(b.frames, b.frameLength, b.count);
      } catch (err) {
        errors.push({ ifname: b.ifname, error: (err as Error).message });
        // The interface may have been re-created: open it again next time.
        this.sinks.get(b.ifname)?.close();
        this.sinks.delete(b.ifname);
      }
    }
    return { frames, errors };
  }

  private sink(ifname: string): FrameSink | undefined {
    let sink = this.sinks.get(ifname);
    if (sink) return sink;
    try {
      sink = this.open(ifname);
    } catch (err) {
      this.log?.warn({ interface: ifname, err: (err as Error).message }, 'takeover plan: cannot open a packet socket; the main thread will announce on this interface');
      return undefined;
    }
    this.sinks.set(ifname, sink);
    return sink;
  }
}

/** The gossip engine as the sender sees it: its leave event (a member died or left) and its member list. */
export interface DeathSource {
  on(event: 'leave', listener: (member: { name: string }) => void): unknown;
  members(): readonly { name: string; state: string }[];
}

/** Names of the members alive or suspect: the speakers the main thread elects among (memberlist's Members()). */
export function liveNames(members: readonly { name: string; state: string }[]): string[] {
  return members.filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => m.name);
}

/**
 * Sends the plan's frames from the engine's own leave event, before anything else hears of the death; `report`
 * gets what was sent (call it before forwarding the leave event itself, so the main thread learns of both in order).
 */
export function attachTakeoverSender(engine: DeathSource, report: (r: TakeoverReport) => void, log?: SenderLogger, open: OpenFrameSink = openSendSocket): TakeoverSender {
  const sender = new TakeoverSender(open, log);
  engine.on('leave', (member) => {
    if (sender.planId === undefined) return;
    const detectedAt = Date.now();
    const r = sender.onDeath(member.name, liveNames(engine.members()), detectedAt);
    if (r) report(r);
  });
  return sender;
}
