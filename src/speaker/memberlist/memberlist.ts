// The speaker's handle on gossip membership. By default the protocol runs in a worker thread (see
// worker.ts), so failure detection keeps its timing however busy the speaker's own event loop is;
// `inProcess: true` runs it on the caller's loop (unit tests, tools).
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { bundleEntryURL } from '../../bundle.js';
import { type Member, MemberlistEngine, MemberlistError, type MemberlistLogger, type MemberlistOptions } from './engine.js';
import { attachTakeoverSender, type TakeoverSender } from '../l2/takeover-sender.js';
import type { TakeoverPlan, TakeoverReport } from '../l2/takeover-plan.js';

export type { Member, MemberState, MemberlistLogger, MemberlistOptions, VersionRange } from './engine.js';

export interface MemberlistEvents {
  join: [Member];
  leave: [Member];
  update: [Member];
  suspect: [Member];
  /** A takeover plan's frames were sent for a death (before that death's 'leave'). */
  takeover: [TakeoverReport];
}

export interface CreateOptions extends MemberlistOptions {
  inProcess?: boolean;
  /** Which levels the worker forwards to `logger` (default info and up); debug is chatty at 10 ms probing. */
  logLevels?: Array<keyof MemberlistLogger>;
  /**
   * Signals on which the gossip thread leaves by itself at once (with `leaveTimeoutMs`), without waiting for the
   * main thread's handler, which runs only when the main event loop gets to it (seconds on a busy speaker). Its
   * takeover plan is dropped first. Worker only; needs the native addon (without it, the main thread's leave does).
   */
  leaveOnSignals?: readonly NodeJS.Signals[];
  leaveTimeoutMs?: number;
  /**
   * With `leaveOnSignals`: a second one of them ends the whole process at once with this exit status, from the
   * gossip thread (the main thread's own handler may be seconds late, or never run if that thread is stuck). A daemon
   * whose operator expects "second SIGTERM = now" sets it (the speaker: 1); without it, later signals are ignored here.
   */
  exitOnRepeatedSignal?: number;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/**
 * A memberlist member: `await Memberlist.create(opts)` binds and starts; then join(), members(),
 * leave(), shutdown(), and events 'join' / 'leave' (dead or left) / 'update' (meta) / 'suspect'.
 */
export class Memberlist extends EventEmitter<MemberlistEvents> {
  private engine?: MemberlistEngine;
  private takeover?: TakeoverSender;
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private snapshot: Member[] = [];
  private closed = false;
  /** The bound port (useful with bindPort 0). */
  port = 0;

  private constructor(readonly name: string) {
    super();
  }

  static async create(opts: CreateOptions): Promise<Memberlist> {
    const m = new Memberlist(opts.name);
    if (opts.inProcess) {
      // Validate and start on this loop.
      const engine = new MemberlistEngine(opts);
      m.engine = engine;
      m.takeover = attachTakeoverSender(engine, (r) => m.emit('takeover', r), opts.logger);
      for (const ev of ['join', 'leave', 'update', 'suspect'] as const) engine.on(ev, (member: Member) => m.emit(ev, member));
      await engine.start();
      m.port = engine.port;
      return m;
    }
    // Fail fast on bad options in the caller's thread, with the caller's stack.
    const status = opts.exitOnRepeatedSignal;
    if (status !== undefined && !(Number.isInteger(status) && status >= 0 && status <= 255)) throw new MemberlistError(`memberlist: exitOnRepeatedSignal ${status} is not an exit status (0..255)`);
    new MemberlistEngine({ ...opts, logger: undefined, leaveOnSignals: undefined, leaveTimeoutMs: undefined, exitOnRepeatedSignal: undefined } as MemberlistOptions);
    const { logger, inProcess: _inProcess, logLevels, leaveOnSignals, leaveTimeoutMs, exitOnRepeatedSignal, ...options } = opts;
    const workerData = { options, logLevels: logLevels ?? ['info', 'warn', 'error'], leaveOnSignals: leaveOnSignals ?? [], leaveTimeoutMs: leaveTimeoutMs ?? 1000, exitOnRepeatedSignal };
    let worker: Worker;
    if (import.meta.url.endsWith('.ts')) {
      // Running from TypeScript sources (tests, `npm run metallb`): a worker does not inherit the tsx
      // loader, so it registers it before loading the worker module.
      // tsx is resolved here: an eval'd worker resolves bare names from the working directory, which in a lab pod is /.
      const url = new URL('./worker.ts', import.meta.url).href;
      const tsx = import.meta.resolve('tsx/esm/api');
      worker = new Worker(`import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(url)}); })`, { eval: true, workerData });
    } else {
      worker = new Worker(bundleEntryURL('memberlist-worker') ?? new URL('./worker.js', import.meta.url), { workerData });
    }
    m.worker = worker;
    worker.on('message', (msg: { id?: number; result?: unknown; error?: string; event?: keyof MemberlistEvents; member?: Member; log?: keyof MemberlistLogger; obj?: object; msg?: string; takeover?: TakeoverReport }) => {
      if (msg.takeover) m.emit('takeover', msg.takeover);
      else if (msg.log && logger) logger[msg.log](msg.obj ?? {}, msg.msg ?? '');
      else if (msg.event && msg.member) m.emit(msg.event, revive(msg.member));
      else if (msg.id !== undefined) {
        const p = m.pending.get(msg.id);
        m.pending.delete(msg.id);
        if (msg.error !== undefined) p?.reject(new MemberlistError(msg.error));
        else p?.resolve(msg.result);
      }
    });
    worker.on('error', (err) => {
      logger?.error({ err: err.message }, 'memberlist worker failed');
      for (const p of m.pending.values()) p.reject(err);
      m.pending.clear();
    });
    m.port = (await m.call('start')) as number;
    return m;
  }

  private call(op: string, ...args: unknown[]): Promise<unknown> {
    if (!this.worker) return Promise.reject(new MemberlistError('memberlist: no worker'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker!.postMessage({ id, op, args });
    });
  }

  /**
   * Hands the gossip thread a takeover plan (null: none): the frames it sends itself the moment a member dies
   * (src/speaker/l2/takeover-plan.ts). Fire and forget.
   */
  setTakeoverPlan(plan: TakeoverPlan | null): void {
    if (this.closed) return;
    if (this.takeover) this.takeover.setPlan(plan);
    else this.worker?.postMessage({ takeoverPlan: plan });
  }

  /** These Services (or all) changed: the gossip thread must not send their planned frames. */
  dropTakeoverPlan(keys: readonly string[] | 'all'): void {
    if (this.closed) return;
    if (this.takeover) this.takeover.drop(keys);
    else this.worker?.postMessage({ takeoverDrop: keys === 'all' ? 'all' : [...keys] });
  }

  /** Joins through the given addresses ("ip", "ip:port", "[v6]:port", "host"); resolves with how many answered. */
  async join(addrs: readonly string[]): Promise<number> {
    if (this.engine) return this.engine.join(addrs);
    return (await this.call('join', [...addrs])) as number;
  }

  /** Every known member with its state; MetalLB's candidates are those 'alive' or 'suspect'. */
  async members(): Promise<Member[]> {
    if (this.engine) return this.engine.members();
    if (this.closed) return this.snapshot;
    this.snapshot = ((await this.call('members')) as Member[]).map(revive);
    return this.snapshot;
  }

  /** Names of members alive or suspect (memberlist's Members(), what MetalLB's election uses). */
  async liveMembers(): Promise<string[]> {
    return (await this.members()).filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => m.name);
  }

  async counters(): Promise<Record<string, number>> {
    if (this.engine) return { ...this.engine.counters, ...this.engine.latency() };
    return (await this.call('counters')) as Record<string, number>;
  }

  /** Lifeguard local health: 0 is healthy; higher means we slowed our own probing. */
  async healthScore(): Promise<number> {
    if (this.engine) return this.engine.healthScore();
    return (await this.call('healthScore')) as number;
  }

  /** Tells everyone we leave (they react at once) and waits for gossip to repeat it, at most timeoutMs. */
  async leave(timeoutMs: number): Promise<void> {
    if (this.engine) return this.engine.leave(timeoutMs);
    await this.call('leave', timeoutMs);
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    if (this.engine) {
      this.closed = true;
      this.takeover?.close();
      return this.engine.shutdown();
    }
    try {
      this.snapshot = ((await this.call('members')) as Member[]).map(revive);
      await this.call('shutdown');
    } finally {
      this.closed = true;
      await this.worker?.terminate();
    }
  }
}

// Buffers cross the thread boundary as plain Uint8Arrays.
function revive(m: Member): Member {
  return { ...m, meta: Buffer.from(m.meta) };
}
