// One BFD session in asynchronous mode (RFC 5880 §6): the state variables of §6.8.1, packet reception (§6.8.6),
// transmission (§6.8.7), the detection timer, the slow start while not Up (§6.8.3) and the Poll Sequence for timer
// changes (§6.5). Pure logic: time, timers, randomness and sending are handed in, so tests drive it with a fake clock.
import {
  Diag, STATE_NAMES, State, encodeControl,
  type ControlPacket, type StateName, type StateValue,
} from './packet.js';

/** MetalLB's BFDProfile, in milliseconds as the CRD has them. */
export interface BfdTimers {
  /** Required Min RX Interval: how fast we accept packets (10–60000 ms, default 300). */
  receiveInterval: number;
  /** Desired Min TX Interval (10–60000 ms, default 300). */
  transmitInterval: number;
  /** Detect Mult (2–255, default 3). */
  detectMultiplier: number;
  /** Wait for the peer's first packet before sending (the Passive role, §6.1). */
  passiveMode: boolean;
}

export interface TimerHost {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** In [0, 1). */
  random(): number;
}

export const realTimers: TimerHost = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
  random: Math.random,
};

/** §6.8.3: while not Up, packets go out at most once a second. */
const SLOW_TX_US = 1_000_000;

export interface BfdSessionStatus {
  state: StateName;
  remoteState: StateName;
  localDiag: number;
  localDiscriminator: number;
  remoteDiscriminator: number;
  /** The intervals in use, milliseconds. */
  txIntervalMs: number;
  detectionTimeMs: number;
  packetsSent: number;
  packetsReceived: number;
  upEvents: number;
  downEvents: number;
  pollActive: boolean;
}

export class BfdSession {
  // RFC 5880 §6.8.1 state variables.
  private sessionState: StateValue = State.DOWN;
  private remoteSessionState: StateValue = State.DOWN;
  private remoteDiscr = 0;
  private localDiag: number = Diag.NONE;
  /** µs: what we advertise (the slow start value while not Up). */
  private desiredMinTx: number;
  /** µs: what we advertise, and what detection uses (which lags behind a reduction until the Poll ends). */
  private requiredMinRx: number;
  private rxInUse: number;
  private remoteMinRx = 1;
  private remoteDesiredMinTx = 0;
  private remoteDemandMode = false;
  private remoteDetectMult = 0;
  private detectMult: number;
  /** µs: the interval actually used for sending, which lags behind desiredMinTx during a Poll Sequence that slows us down. */
  private txInUse: number;
  private pollActive = false;
  /** Values to apply once the Poll Sequence ends. */
  private pending: { desiredMinTx: number; requiredMinRx: number } | undefined;
  private txTimer: unknown;
  /** µs: the interval the pending transmit timer was computed from. */
  private scheduledWith = Infinity;
  private detectTimer: unknown;
  private stopped = false;
  /** stop()'s AdminDown packets: done when they are all out (or silence() ends them). */
  private lingering: Promise<void> | undefined;
  private endLinger: (() => void) | undefined;
  private timers: BfdTimers;
  private readonly counters = { packetsSent: 0, packetsReceived: 0, upEvents: 0, downEvents: 0 };

  constructor(
    readonly localDiscr: number,
    timers: BfdTimers,
    private readonly send: (packet: Buffer) => void,
    /** `remoteState`: the peer's state as last heard (AdminDown: the peer took the session down on purpose, RFC 5882 §3.2). */
    private readonly onState: (state: StateName, diag: number, previous: StateName, remoteState: StateName) => void,
    private readonly host: TimerHost = realTimers,
  ) {
    this.timers = { ...timers };
    this.detectMult = timers.detectMultiplier;
    this.requiredMinRx = timers.receiveInterval * 1000;
    this.rxInUse = this.requiredMinRx;
    this.desiredMinTx = Math.max(SLOW_TX_US, timers.transmitInterval * 1000);
    this.txInUse = this.desiredMinTx;
  }

  get state(): StateName {
    return STATE_NAMES[this.sessionState];
  }

  get remoteDiscriminator(): number {
    return this.remoteDiscr;
  }

  status(): BfdSessionStatus {
    return {
      state: this.state,
      remoteState: STATE_NAMES[this.remoteSessionState],
      localDiag: this.localDiag,
      localDiscriminator: this.localDiscr,
      remoteDiscriminator: this.remoteDiscr,
      txIntervalMs: this.txIntervalUs() / 1000,
      detectionTimeMs: this.detectionTimeUs() / 1000,
      pollActive: this.pollActive,
      ...this.counters,
    };
  }

  start(): void {
    this.scheduleTx();
  }

  /**
   * Stops for good (RFC 5880 §6.8.16): AdminDown with diagnostic Administratively Down. A peer that knows us keeps
   * hearing it at the agreed interval for a Detection Time (as it counts it for us), so that one lost packet does not
   * let its detection timer run out and report a failure that is none; a peer that never knew us gets one packet.
   * Resolves once the last packet is out (the caller may then close the socket).
   */
  stop(): Promise<void> {
    if (this.stopped) return this.lingering ?? Promise.resolve();
    // The interval in use while Up, before leaving Up puts the slow start values back.
    const interval = this.txIntervalUs() || this.txInUse;
    const linger = this.remoteDiscr !== 0 && this.sessionState !== State.ADMIN_DOWN;
    this.setState(State.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN);
    this.stopped = true;
    this.host.clearTimer(this.txTimer);
    this.host.clearTimer(this.detectTimer);
    if (this.timers.passiveMode && this.remoteDiscr === 0) return Promise.resolve();
    this.transmit(false);
    if (!linger) return Promise.resolve();
    const until = this.host.now() + (this.detectMult * interval) / 1000;
    this.lingering = new Promise<void>((resolve) => {
      this.endLinger = resolve;
      const next = (): void => {
        // §6.8.7 jitter, as for periodic packets.
        const ms = (interval / 1000) * (0.75 + this.host.random() * 0.15);
        this.txTimer = this.host.setTimer(() => {
          this.transmit(false);
          if (this.host.now() >= until) resolve();
          else next();
        }, ms);
      };
      next();
    });
    return this.lingering;
  }

  /** Ends the AdminDown packets of stop() now (the socket is going away); stop()'s promise resolves. */
  silence(): void {
    this.host.clearTimer(this.txTimer);
    this.endLinger?.();
  }

  /** New profile values; while Up, a Poll Sequence makes the peer agree before slower values take effect (§6.8.3). */
  setTimers(timers: BfdTimers): void {
    const old = this.timers;
    this.timers = { ...timers };
    this.detectMult = timers.detectMultiplier;
    if (old.transmitInterval === timers.transmitInterval && old.receiveInterval === timers.receiveInterval) return;
    if (this.sessionState !== State.UP) {
      this.requiredMinRx = timers.receiveInterval * 1000;
      this.rxInUse = this.requiredMinRx;
      this.desiredMinTx = Math.max(SLOW_TX_US, timers.transmitInterval * 1000);
      this.txInUse = this.desiredMinTx;
      return;
    }
    this.startPoll(timers.transmitInterval * 1000, timers.receiveInterval * 1000);
  }

  /** A packet for this session (already checked by decodeControl, and by the transport for its source). §6.8.6 */
  receive(p: ControlPacket): void {
    if (this.stopped) return;
    // We run without authentication.
    if (p.authenticationPresent) return;
    if (p.yourDiscriminator === 0 && p.state !== State.DOWN && p.state !== State.ADMIN_DOWN) return;
    if (p.yourDiscriminator !== 0 && p.yourDiscriminator !== this.localDiscr) return;
    this.counters.packetsReceived++;
    this.remoteDiscr = p.myDiscriminator;
    this.remoteSessionState = p.state;
    this.remoteDemandMode = p.demand;
    this.remoteMinRx = p.requiredMinRxInterval;
    this.remoteDesiredMinTx = p.desiredMinTxInterval;
    this.remoteDetectMult = p.detectMult;
    if (p.final && this.pollActive) this.endPoll();
    this.rescheduleIfFaster();
    this.armDetection();

    if (p.state === State.ADMIN_DOWN) {
      if (this.sessionState !== State.DOWN) this.setState(State.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN);
    } else if (this.sessionState === State.DOWN) {
      if (p.state === State.DOWN) this.setState(State.INIT, this.localDiag);
      else if (p.state === State.INIT) this.setState(State.UP, Diag.NONE);
    } else if (this.sessionState === State.INIT) {
      if (p.state === State.INIT || p.state === State.UP) this.setState(State.UP, Diag.NONE);
    } else if (this.sessionState === State.UP) {
      if (p.state === State.DOWN) this.setState(State.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN);
    }
    // §6.8.7: a Poll is answered at once with Final, outside the periodic schedule.
    if (p.poll) this.transmit(true);
  }

  private setState(next: StateValue, diag: number): void {
    const previous = this.sessionState;
    if (previous === next) return;
    this.sessionState = next;
    this.localDiag = diag;
    if (next === State.UP) {
      this.counters.upEvents++;
      // Leaving the slow start: our real rate, agreed through a Poll Sequence (§6.8.3).
      const fast = this.timers.transmitInterval * 1000;
      if (fast !== this.desiredMinTx) this.startPoll(fast, this.timers.receiveInterval * 1000, false);
    } else if (previous === State.UP) {
      this.counters.downEvents++;
      this.pollActive = false;
      this.pending = undefined;
      this.desiredMinTx = Math.max(SLOW_TX_US, this.timers.transmitInterval * 1000);
      this.txInUse = this.desiredMinTx;
    }
    if (next === State.DOWN || next === State.ADMIN_DOWN) this.host.clearTimer(this.detectTimer);
    this.onState(STATE_NAMES[next], diag, STATE_NAMES[previous], STATE_NAMES[this.remoteSessionState]);
    // A state change goes out at once, so the peer follows without waiting for the next tick.
    if (!this.stopped && next !== State.ADMIN_DOWN) this.transmit(false);
  }

  private startPoll(desiredMinTx: number, requiredMinRx: number, sendNow = true): void {
    // Faster sending may start at once; slower sending and a different receive rate wait for the Final.
    if (desiredMinTx < this.txInUse) this.txInUse = desiredMinTx;
    if (requiredMinRx > this.rxInUse) this.rxInUse = requiredMinRx;
    this.desiredMinTx = desiredMinTx;
    this.pending = { desiredMinTx, requiredMinRx };
    this.requiredMinRx = requiredMinRx;
    this.pollActive = true;
    this.rescheduleIfFaster();
    if (sendNow) this.transmit(false);
  }

  private endPoll(): void {
    this.pollActive = false;
    if (this.pending) {
      this.txInUse = this.pending.desiredMinTx;
      this.rxInUse = this.pending.requiredMinRx;
      this.pending = undefined;
    }
    this.rescheduleIfFaster();
  }

  /** The interval just got shorter than the one the pending timer was set with: start over with the new one. */
  private rescheduleIfFaster(): void {
    if (this.txIntervalUs() < this.scheduledWith) this.scheduleTx();
  }

  /** §6.8.7: max(our Desired Min TX in use, the peer's Required Min RX). 0 = the peer wants no periodic packets. */
  private txIntervalUs(): number {
    if (this.remoteMinRx === 0) return 0;
    return Math.max(this.txInUse, this.remoteMinRx);
  }

  /** §6.8.4, asynchronous mode: the peer's Detect Mult × max(our Required Min RX, its Desired Min TX). */
  private detectionTimeUs(): number {
    return this.remoteDetectMult * Math.max(this.rxInUse, this.remoteDesiredMinTx);
  }

  private armDetection(): void {
    this.host.clearTimer(this.detectTimer);
    const ms = this.detectionTimeUs() / 1000;
    if (ms <= 0) return;
    this.detectTimer = this.host.setTimer(() => this.detectionExpired(), ms);
  }

  private detectionExpired(): void {
    if (this.stopped) return;
    // §6.8.1: a Detection Time without packets forgets the peer's discriminator.
    this.remoteDiscr = 0;
    this.remoteSessionState = State.DOWN;
    if (this.sessionState === State.INIT || this.sessionState === State.UP) this.setState(State.DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED);
  }

  private scheduleTx(): void {
    this.host.clearTimer(this.txTimer);
    if (this.stopped) return;
    const interval = this.txIntervalUs();
    this.scheduledWith = interval === 0 ? Infinity : interval;
    if (interval === 0) {
      // The peer asked for no packets; look again in a second in case that changes.
      this.txTimer = this.host.setTimer(() => this.scheduleTx(), 1000);
      return;
    }
    // §6.8.7 jitter: 75–100 % of the interval, at most 90 % with a Detect Mult of 1.
    const max = this.detectMult === 1 ? 0.9 : 1;
    const ms = (interval / 1000) * (0.75 + this.host.random() * (max - 0.75));
    this.txTimer = this.host.setTimer(() => {
      this.periodic();
      this.scheduleTx();
    }, ms);
  }

  private periodic(): void {
    // §6.8.7: nothing while passive and the peer is unknown; nothing periodic in Demand mode with both Up.
    if (this.timers.passiveMode && this.remoteDiscr === 0) return;
    if (this.remoteDemandMode && this.sessionState === State.UP && this.remoteSessionState === State.UP && !this.pollActive) return;
    this.transmit(false);
  }

  private transmit(final: boolean): void {
    if (this.timers.passiveMode && this.remoteDiscr === 0) return;
    // A fresh buffer each time: the socket may still hold the previous one.
    const packet = encodeControl({
      diag: this.localDiag,
      state: this.sessionState,
      poll: this.pollActive && !final,
      final,
      detectMult: this.detectMult,
      myDiscriminator: this.localDiscr,
      yourDiscriminator: this.remoteDiscr,
      desiredMinTxInterval: this.desiredMinTx,
      requiredMinRxInterval: this.requiredMinRx,
      // We do not take Echo packets (echo mode is not implemented).
      requiredMinEchoRxInterval: 0,
    });
    this.counters.packetsSent++;
    this.send(packet);
  }
}
