// The gossip member itself: hashicorp/memberlist's state machine (state.go) over Node's dgram and net.
// Runs in-process or inside a worker thread (see memberlist.ts); either way it owns its sockets and
// timers and reports membership changes as events.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { lookup as lookupCallback, type LookupOneOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { createHistogram, monitorEventLoopDelay, type IntervalHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { createServer, isIP, type Server, Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import { type TimingConfig, FAST_CONFIG, retransmitLimit, suspicionTimeoutMs, validateTiming } from './config.js';
import {
  type Alive,
  type Dead,
  decodeAck,
  decodeAlive,
  decodeDead,
  decodeIndirectPing,
  decodeNack,
  decodePing,
  decodeSuspect,
  encodeAck,
  encodeAlive,
  encodeDead,
  encodeErr,
  encodeIndirectPing,
  encodeNack,
  encodePing,
  encodeSuspect,
  type IndirectPingReq,
  MessageType,
  NodeState,
  type Ping,
  type PushNodeState,
  type Suspect,
} from './messages.js';
import { labelHeader, makeCompound, removeLabelHeader, type SecurityOptions, unwrapPacket, wrapPacket } from './packet.js';
import { encryptOverhead, Keyring } from './security.js';
import { encodePushPull, MAX_STREAM_BYTES, readStreamMessage, type StreamMessage, wrapStream } from './stream.js';
import { Awareness, BroadcastQueue, Suspicion } from './suspicion.js';
import { fastPathAction, shouldPing, ringNeighbours, backstopSilenceMs, watchDueAt, indirectRound, LocalHealth, reachErrorResult, relayAnswer, reachTimeoutMs, reachTimeoutResult, type ReachCheck, HOST_UP_GRACE_MS, suspicionVerdict } from './detector.js';

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

export interface VersionRange {
  min: number;
  max: number;
  cur: number;
}

export interface Member {
  name: string;
  addr: string;
  port: number;
  meta: Buffer;
  state: MemberState;
  incarnation: number;
  protocol: VersionRange;
  delegate: VersionRange;
}

/** Minimal structured logger (pino's shape). */
export interface MemberlistLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MemberlistOptions {
  /** Unique member name (MetalLB: the node name). */
  name: string;
  /** Address to listen on, UDP and TCP. A wildcard needs advertiseAddr. */
  bindAddr: string;
  /** Default 7946; 0 picks a free port. */
  bindPort?: number;
  /** Address and port other members use for us (memberlist AdvertiseAddr/Port). */
  advertiseAddr?: string;
  advertisePort?: number;
  /** Keyring: the first key encrypts, every key decrypts. Empty = unencrypted. 16, 24 or 32 bytes each. */
  secretKeys?: readonly Uint8Array[];
  /** memberlist Label: packets and streams carry it and must match. */
  label?: string;
  /** Over our FAST_CONFIG defaults; pass `{...LAN_CONFIG}` for MetalLB's timing. */
  timing?: Partial<TimingConfig>;
  /** Node meta (serf puts its tags here; MetalLB nothing). At most 512 bytes. */
  meta?: Uint8Array;
  /** memberlist ProtocolVersion (we speak 1..5); default 2, like memberlist. */
  protocolVersion?: number;
  /** Delegate protocol versions advertised; MetalLB has none (0,0,0). Serf clusters need serf's (2,5,x). */
  delegateVersion?: VersionRange;
  logger?: MemberlistLogger;
}

const PROTOCOL_MIN = 1;
const PROTOCOL_MAX = 5;
const META_MAX = 512;
const MAX_PUSH_PULL_CONCURRENT = 128;
/**
 * Listen queue of the gossip port (the kernel caps it at net.core.somaxconn, 4096 by default since Linux 5.4; Node's
 * default is 511). Peers' reach checks queue there while our process is stalled; a full queue drops their SYNs, which
 * they would take for a cut cable (detector.ts, RECHECK_BACKOFF_DOUBLINGS).
 */
const LISTEN_BACKLOG = 4096;
const NO_PAYLOAD = Buffer.alloc(0);
/** A reachability check whose timer ran late is re-armed this many times before it gives up as inconclusive. */
const REACH_REARMS = 5;

interface NodeRec {
  name: string;
  addr: Buffer;
  ip: string;
  port: number;
  meta: Buffer;
  incarnation: number;
  state: MemberState;
  stateChange: number;
  vsn: number[];
  failedProbes: number;
  /** Probes in flight; a new one starts each interval even while the last waits for indirect acks. */
  probing: number;
  /** Adaptive mode: when we last heard anything from it, its recent worst delay (decaying), last indirect probe. */
  lastHeard: number;
  jitter: number;
  jitterAt: number;
  indirectAt: number;
  /** When its last ping to us arrived (one pinger per pair: then we need not ping it). */
  pingedUsAt?: number;
  /** Adaptive mode: one of our ring neighbours (detector.ts ringNeighbours), watched closely; else pinged round robin. */
  monitored?: boolean;
  /** Fast path: the latest check of its host's reachability. */
  reach?: ReachProbe;
}

/** A reach check with what its verdict was based on (logged with a fast-path verdict). */
interface ReachProbe extends ReachCheck {
  /** The SYN-ACK timeout it was given (the base plus our own lateness). */
  timeoutMs: number;
  /** Times its timer ran late and was re-armed. */
  rearms: number;
  /** When the timeout made it unreachable (its connection is kept a while to see whether an answer still comes). */
  judgedAt?: number;
  /** The indirect round's own timing, logged with a fast-path verdict. */
  asked?: IndirectTiming;
}

/** When the fast path's relays were asked, how long they were given, and when their nacks came. */
interface IndirectTiming {
  at: number;
  waitMs: number;
  /** The member's tolerance, its own and our decayed worst delay, and our local-health allowance, when asked. */
  toleranceMs: number;
  memberJitterMs: number;
  ownJitterMs: number;
  allowanceMs: number;
  /** ms after `at` of each nack, in arrival order. */
  nackAfterMs: number[];
}

/** A suspicion in progress; `fast`: our own fast-path one (the member's host did not answer), with its evidence. */
interface SuspicionRec {
  timer: Suspicion;
  fast?: Record<string, number | string>;
}

/** What a dialled stream exchange reports (see MemberlistEngine.dial). */
interface DialHandlers {
  /** The connection is up: the request to send, or nothing to close it at once. */
  connected(): Buffer | undefined;
  reply(m: StreamMessage): void;
  /** Connect error, close before a whole reply, a reply too large or garbled. */
  failed(err: NodeJS.ErrnoException): void;
}

interface AckWaiter {
  acked: boolean;
  nacks: number;
  onAck?: () => void;
  /** ms our timers fired late while waiting (this member was starved of CPU). */
  late?: number;
  /** "ip:port" of the probed member: an ack from elsewhere came through a relay (counted as acks_indirect). */
  target?: string;
  /** `from`: who sent the nack ("ip:port"). */
  onNack?: (from: string) => void;
}

const nullLogger: MemberlistLogger = { debug() {}, info() {}, warn() {}, error() {} };
const stateNumber: Record<MemberState, number> = { alive: NodeState.alive, suspect: NodeState.suspect, dead: NodeState.dead, left: NodeState.left };

export class MemberlistError extends Error {
  override name = 'MemberlistError';
}

/**
 * dgram resolves every destination before a send, even an address literal (dns.lookup answers those a tick later).
 * We send only to literals, a few hundred packets a second: answer them at once.
 */
function literalLookup(host: string, opts: LookupOneOptions, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = isIP(host);
  if (family !== 0) cb(null, host, family);
  else lookupCallback(host, opts, cb);
}

export function ipToBytes(ip: string): Buffer {
  if (!isIP(ip)) throw new MemberlistError(`not an IP address: ${ip}`);
  return Buffer.from(ipaddr.parse(ip).toByteArray());
}

/** memberlist sends 4-byte IPv4 and 16-byte IPv6 addresses (IPv4-mapped ones shown as IPv4); '' if neither. */
export function bytesToIp(b: Uint8Array): string {
  // Every ping carries its sender's address: the IPv4 case without a parser.
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) return '';
  const addr = ipaddr.fromByteArray([...b]);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) return (addr as ipaddr.IPv6).toIPv4Address().toString();
  return addr.toString();
}

const hostPort = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/**
 * The event-loop delay metric samples every 20 ms: at 5 ms (until 2026-12-02) the sampling timer alone woke the
 * gossip thread 200 times a second.
 */
const LOOP_DELAY_RESOLUTION_MS = 20;

export class MemberlistEngine extends EventEmitter {
  readonly name: string;
  private readonly t: TimingConfig;
  private readonly log: MemberlistLogger;
  private readonly sec: SecurityOptions;
  private readonly bindAddr: string;
  private bindPort: number;
  private readonly advertiseIp: string;
  /** advertiseIp as the 4 or 16 bytes our pings carry. */
  private readonly selfAddr: Buffer;
  private advertisePort: number;
  private readonly vsn: number[];
  private readonly meta: Buffer;
  private udp?: UdpSocket;
  private tcp?: Server;
  private readonly nodes = new Map<string, NodeRec>();
  private readonly suspicions = new Map<string, SuspicionRec>();
  private readonly ackHandlers = new Map<number, AckWaiter>();
  private readonly broadcasts = new BroadcastQueue();
  private readonly awareness: Awareness;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly conns = new Set<Socket>();
  private seqNo = 0;
  private incarnation = 0;
  /** Per member, the close of its reach check's connection still open. */
  private readonly reachClosers = new Map<string, () => void>();
  /** Relayed pings (ping-req) whose answer waits for our own reach check of their target, by target name. */
  private readonly relayWaiters = new Map<string, Set<() => void>>();
  private probeIndex = 0;
  /** Ring monitoring (adaptive mode): bumped when a member enters or leaves the ring; the members pinged round robin. */
  private ringEpoch = 0;
  private ringSeenEpoch = -1;
  private roundRobin: NodeRec[] = [];
  private roundRobinAt = -Infinity;
  private pushPullActive = 0;
  private leaving = false;
  private leavingDone: Promise<void> = Promise.resolve();
  private stopped = false;
  private started = false;
  private probeTimer?: NodeJS.Timeout;
  private watchTimer?: NodeJS.Timeout;
  /** "ip:port" → member name, to credit any packet to its sender (adaptive mode). */
  private readonly byAddr = new Map<string, string>();
  /** Adaptive mode: pings sent recently (late acks still measure a member's delay). */
  private readonly sentPings = new Map<number, { node: string; sent: number }>();
  private ownJitter = 0;
  private ownJitterAt = 0;
  private lastTick = 0;
  private readonly health: LocalHealth;
  private readonly decryptWarned = new Map<string, number>();
  readonly counters: Record<string, number> = {};
  /** How late this member's own event loop runs: the first thing to look at when probes fail. */
  private loopDelay?: IntervalHistogram;
  /** Round trip of direct pings that were answered. */
  private readonly rtt: RecordableHistogram = createHistogram();
  /** Reach checks: connect to SYN-ACK as our loop saw it (our own lateness included). */
  private readonly reachRtt: RecordableHistogram = createHistogram();

  constructor(opts: MemberlistOptions) {
    super();
    if (!opts.name) throw new MemberlistError('memberlist: a member name is required');
    this.name = opts.name;
    this.t = { ...FAST_CONFIG, ...(opts.timing ?? {}) };
    validateTiming(this.t);
    this.log = opts.logger ?? nullLogger;
    const keys = opts.secretKeys ?? [];
    this.sec = {
      keyring: keys.length > 0 ? new Keyring(keys) : undefined,
      label: opts.label ?? '',
      verifyIncoming: this.t.gossipVerifyIncoming,
      verifyOutgoing: this.t.gossipVerifyOutgoing,
      encryptionVersion: (opts.protocolVersion ?? 2) === 1 ? 0 : 1,
    };
    if (Buffer.byteLength(this.sec.label) > 255) throw new MemberlistError('memberlist: label is longer than 255 bytes');
    this.bindAddr = opts.bindAddr;
    if (!isIP(this.bindAddr)) throw new MemberlistError(`memberlist: bindAddr "${opts.bindAddr}" is not an IP address`);
    this.bindPort = opts.bindPort ?? 7946;
    const wildcard = this.bindAddr === '0.0.0.0' || this.bindAddr === '::';
    if (wildcard && !opts.advertiseAddr) throw new MemberlistError('memberlist: binding to a wildcard address needs advertiseAddr');
    this.advertiseIp = opts.advertiseAddr ?? this.bindAddr;
    if (!isIP(this.advertiseIp)) throw new MemberlistError(`memberlist: advertiseAddr "${this.advertiseIp}" is not an IP address`);
    this.selfAddr = ipToBytes(this.advertiseIp);
    this.advertisePort = opts.advertisePort ?? this.bindPort;
    const pv = opts.protocolVersion ?? 2;
    if (pv < PROTOCOL_MIN || pv > PROTOCOL_MAX) throw new MemberlistError(`memberlist: protocol version ${pv} outside ${PROTOCOL_MIN}..${PROTOCOL_MAX}`);
    const d = opts.delegateVersion ?? { min: 0, max: 0, cur: 0 };
    this.vsn = [PROTOCOL_MIN, PROTOCOL_MAX, pv, d.min, d.max, d.cur];
    this.meta = Buffer.from(opts.meta ?? []);
    if (this.meta.length > META_MAX) throw new MemberlistError(`memberlist: node meta is ${this.meta.length} bytes, more than ${META_MAX}`);
    this.awareness = new Awareness(this.t.awarenessMaxMultiplier);
    this.health = new LocalHealth(this.t.reachTimeoutMs, this.t.localHealthHoldMs);
  }

  private count(key: string): void {
    this.counters[key] = (this.counters[key] ?? 0) + 1;
  }

  /** Binds UDP and TCP, announces ourselves alive (to nobody yet) and starts probing and gossip. */
  async start(): Promise<void> {
    if (this.started) throw new MemberlistError('memberlist: already started');
    this.started = true;
    const family = isIP(this.bindAddr) === 6 ? 'udp6' : 'udp4';
    this.tcp = createServer((c) => this.handleConn(c));
    this.tcp.on('error', (err) => this.log.error({ err: err.message }, 'memberlist TCP listener error'));
    await new Promise<void>((resolve, reject) => {
      this.tcp!.once('error', reject);
      this.tcp!.listen({ host: this.bindAddr, port: this.bindPort, backlog: LISTEN_BACKLOG }, () => {
        this.tcp!.off('error', reject);
        resolve();
      });
    });
    const tcpAddr = this.tcp.address();
    if (this.bindPort === 0 && tcpAddr && typeof tcpAddr === 'object') {
      this.bindPort = tcpAddr.port;
      if (this.advertisePort === 0) this.advertisePort = tcpAddr.port;
    }
    const udp = createSocket({ type: family, reuseAddr: false, lookup: literalLookup });
    this.udp = udp;
    udp.on('message', (msg, rinfo) => this.ingestPacket(msg, rinfo));
    udp.on('error', (err) => this.log.error({ err: err.message }, 'memberlist UDP socket error'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: this.bindAddr, port: this.bindPort }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    try {
      udp.setRecvBufferSize(2 * 1024 * 1024);
    } catch {
      // Best effort: a smaller kernel limit only means fewer queued packets under bursts.
    }
    this.aliveNode({ Incarnation: this.nextIncarnation(), Node: this.name, Addr: this.selfAddr, Port: this.advertisePort, Meta: this.meta, Vsn: Uint8Array.from(this.vsn) }, true);
    this.loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
    this.loopDelay.enable();
    this.scheduleProbe();
    if (this.t.adaptive) this.scheduleWatch();
    this.every(this.t.gossipIntervalMs, () => this.gossip());
    if (this.t.pushPullIntervalMs > 0) this.every(this.t.pushPullIntervalMs, () => void this.periodicPushPull());
    this.log.info({ name: this.name, bind: hostPort(this.bindAddr, this.bindPort), advertise: hostPort(this.advertiseIp, this.advertisePort), encrypted: !!this.sec.keyring, probeIntervalMs: this.t.probeIntervalMs }, 'memberlist started');
  }

  get port(): number {
    return this.bindPort;
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref?.();
    this.timers.push(t);
  }

  /**
   * The fast path's watch. While no member is silent, it sleeps until the first one could have been silent for
   * reachCheckAfterMs (each packet moves that time on), so a check starts within a millisecond of the silence passing
   * it, not up to a poll later (until 2026-12-02 it polled every quarter interval always: 400 wakeups a second). While
   * a member is silent past that (a check or an indirect round in progress, whose deadlines are times too), it polls
   * four times per probe interval. Its own lateness feeds local health.
   */
  private scheduleWatch(): void {
    if (this.stopped || this.t.reachTimeoutMs <= 0) return;
    const now = performance.now();
    // Whole milliseconds, rounded up: a timer fires on the loop's millisecond clock, and one that fired before the
    // silence was due would only look again a millisecond later.
    const delay = Math.max(1, Math.ceil(watchDueAt(now, this.watchedLastHeard(), this.t.reachCheckAfterMs, this.t.probeIntervalMs) - now));
    const expected = now + delay;
    this.watchTimer = setTimeout(() => {
      const lateness = Math.max(0, performance.now() - expected);
      // After the packets that arrived while we were not running are read: they end silences.
      setImmediate(() => {
        const at = performance.now();
        this.health.noteTick(lateness, at);
        if (!this.stopped && !this.leaving) {
          for (const n of this.watched()) this.fastPath(n, at);
        }
        this.scheduleWatch();
      });
    }, delay);
  }

  /** The members the fast path watches: our ring neighbours (every other member in a small cluster). */
  private *watched(): Generator<NodeRec> {
    this.refreshRing();
    for (const n of this.nodes.values()) if (n.monitored && n.name !== this.name && (n.state === 'alive' || n.state === 'suspect')) yield n;
  }

  /**
   * Works out our ring neighbours again after the membership changed. One that becomes a neighbour is taken as heard
   * now: until then it was pinged only round robin, and its silence so far says nothing.
   */
  private refreshRing(): void {
    if (this.ringSeenEpoch === this.ringEpoch) return;
    this.ringSeenEpoch = this.ringEpoch;
    const now = performance.now();
    const inRing: NodeRec[] = [];
    for (const n of this.nodes.values()) {
      if (n.state === 'alive' || n.state === 'suspect') inRing.push(n);
      else n.monitored = false;
    }
    const near = ringNeighbours(inRing.map((n) => n.name), this.name, Math.max(1, Math.floor(this.t.monitoredPeers / 2)));
    this.roundRobin = [];
    for (const n of inRing) {
      if (n.name === this.name) continue;
      const monitored = near.has(n.name);
      if (monitored && !n.monitored) n.lastHeard = Math.max(n.lastHeard, now);
      n.monitored = monitored;
      if (!monitored) this.roundRobin.push(n);
    }
  }

  private *watchedLastHeard(): Generator<number> {
    for (const n of this.watched()) yield n.lastHeard;
  }

  private scheduleProbe(): void {
    if (this.stopped) return;
    if (this.t.adaptive) {
      const expected = performance.now() + this.t.probeIntervalMs;
      this.probeTimer = setTimeout(() => {
        const lateness = Math.max(0, performance.now() - expected);
        // Judge silences only after the packets that arrived while we were not running are read.
        setImmediate(() => this.adaptiveTick(lateness));
        this.scheduleProbe();
      }, this.t.probeIntervalMs);
      return;
    }
    // Lifeguard: a struggling member probes less often, so it accuses less.
    this.probeTimer = setTimeout(() => {
      this.probe();
      this.scheduleProbe();
    }, this.awareness.scale(this.t.probeIntervalMs));
  }

  private decayed(value: number, at: number, now: number): number {
    return value * Math.pow(0.5, (now - at) / this.t.jitterHalfLifeMs);
  }

  private noteDelay(n: NodeRec, ms: number, now: number): void {
    n.jitter = Math.max(this.decayed(n.jitter, n.jitterAt, now), ms);
    n.jitterAt = now;
  }

  /** Silence tolerated from n before suspecting it. */
  tolerance(n: NodeRec, now = performance.now()): number {
    const worst = Math.max(this.decayed(n.jitter, n.jitterAt, now), this.decayed(this.ownJitter, this.ownJitterAt, now));
    return Math.max(this.t.suspectAfterSilenceMs, this.t.jitterFactor * worst);
  }

  private heard(name: string, now: number): void {
    const n = this.nodes.get(name);
    if (n) n.lastHeard = now;
  }

  /** Adaptive mode, every interval: ping each member, and suspect those silent past their tolerance. */
  private adaptiveTick(lateness: number): void {
    if (this.stopped || this.leaving) return;
    const now = performance.now();
    this.ownJitter = Math.max(this.decayed(this.ownJitter, this.ownJitterAt, now), lateness);
    this.ownJitterAt = now;
    this.health.noteTick(lateness, now);
    for (const [seq, p] of this.sentPings) {
      if (now - p.sent > 5000) {
        this.sentPings.delete(seq);
        this.ackHandlers.delete(seq);
      }
    }
    const self = this.selfAddr;
    this.pingRoundRobin(now, self);
    for (const n of this.watched()) {
      const silence = now - n.lastHeard;
      const tol = this.tolerance(n, now);
      const needIndirect = silence > Math.max(this.t.probeTimeoutMs, tol / 2) && now - n.indirectAt > Math.max(this.t.probeIntervalMs, tol / 2);
      const leftToPeer = !needIndirect && n.state === 'alive' && this.t.onePingerPerPair && !shouldPing(this.name, n.name, now, n.pingedUsAt, this.t.probeIntervalMs);
      if (leftToPeer) this.count('pings_left_to_peer');
      const sent = leftToPeer ? undefined : this.pingOnce(n, self);
      if (sent && needIndirect) {
        const { seq, ping } = sent;
        // Other routes, so a lossy path between the two of us alone never condemns it.
        n.indirectAt = now;
        this.count('indirect_probes');
        const peers = this.pickNodes(this.t.indirectChecks, (p) => p.name !== this.name && p.name !== n.name && p.state === 'alive');
        for (const p of peers) this.sendTo(p, encodeIndirectPing({ SeqNo: seq, Target: n.addr, Port: n.port, Node: n.name, Nack: false, SourceAddr: self, SourcePort: this.advertisePort, SourceNode: this.name }));
        if (!this.t.disableTcpPings && (n.vsn[1] ?? 0) >= 3) {
          void this.tcpPing(n, ping, now + Math.max(tol, this.t.probeIntervalMs)).then((ok) => {
            if (ok) this.heard(n.name, performance.now());
          });
        }
      }
      if (n.state === 'alive' && silence > tol) {
        this.count('probes_failed');
        this.log.debug({ member: n.name, silenceMs: Math.round(silence), toleranceMs: Math.round(tol) }, 'memberlist: member silent, suspecting it');
        this.suspectNode({ Incarnation: n.incarnation, Node: n.name, From: this.name });
      }
    }
  }

  /**
   * Adaptive mode in a cluster larger than our ring neighbourhood: one other member pinged every gossip interval, in
   * turn, and suspected after two cycles of silence (detector.ts backstopSilenceMs): the backstop for a partition no
   * close watch spans.
   */
  private pingRoundRobin(now: number, self: Buffer): void {
    this.refreshRing();
    const others = this.roundRobin;
    if (others.length === 0 || now - this.roundRobinAt < this.t.gossipIntervalMs) return;
    this.roundRobinAt = now;
    const n = others[this.probeIndex++ % others.length]!;
    this.probeIndex %= others.length;
    if (n.state !== 'alive' && n.state !== 'suspect') return;
    this.count('pings_round_robin');
    this.pingOnce(n, self);
    const silence = now - n.lastHeard;
    const limit = backstopSilenceMs(others.length, this.t.gossipIntervalMs, this.tolerance(n, now));
    if (n.state === 'alive' && silence > limit) {
      this.count('probes_failed');
      this.log.debug({ member: n.name, silenceMs: Math.round(silence), toleranceMs: Math.round(limit), roundRobin: others.length }, 'memberlist: member outside our ring neighbours silent, suspecting it');
      this.suspectNode({ Incarnation: n.incarnation, Node: n.name, From: this.name });
    }
  }

  /** An adaptive-mode ping: its ack makes n heard and measures its delay. */
  private pingOnce(n: NodeRec, self: Buffer): { seq: number; ping: Ping } {
    const seq = this.nextSeq();
    const sent = performance.now();
    this.sentPings.set(seq, { node: n.name, sent });
    const w: AckWaiter = { acked: false, nacks: 0, target: `${n.ip}:${n.port}` };
    w.onAck = () => {
      const at = performance.now();
      this.heard(n.name, at);
      const rtt = at - sent;
      this.rtt.record(Math.max(1, Math.round(rtt * 1e6)));
      this.noteDelay(n, rtt, at);
      this.sentPings.delete(seq);
      this.ackHandlers.delete(seq);
    };
    this.ackHandlers.set(seq, w);
    const ping: Ping = { SeqNo: seq, Node: n.name, SourceAddr: self, SourcePort: this.advertisePort, SourceNode: this.name };
    if (n.state === 'alive') this.sendTo(n, encodePing(ping));
    else {
      const [c] = makeCompound([encodePing(ping), encodeSuspect({ Incarnation: n.incarnation, Node: n.name, From: this.name })]);
      this.rawSend(n.ip, n.port, c!, n.vsn[1] ?? 0);
    }
    return { seq, ping };
  }

  /** The fast path (detector.ts): check a silent member's host, and accuse it when the host does not answer. */
  private fastPath(n: NodeRec, now: number): void {
    // A relay's check of a member we hold dead (or gone) answers its requester; it accuses or asks nobody.
    if (n.state !== 'alive' && n.state !== 'suspect') return;
    const action = fastPathAction(this.t, now, n.lastHeard, n.reach);
    if (action === 'check') {
      this.checkReach(n);
      // At once, not after our check fails: the relays' answers are then already on their way.
      this.askOthers(n, now);
    } else if (action === 'ask') this.askOthers(n, now);
    else if (action === 'accuse') this.accuseUnreachable(n, now);
  }

  /**
   * The fast path's indirect probe (detector.ts IndirectRound): members that can reach n ping it for us. A relayed ack
   * makes n heard (no accusation); without one by the deadline the accusation goes ahead.
   */
  private askOthers(n: NodeRec, now: number): void {
    const check = n.reach;
    if (!check || check.indirect) return;
    const peers = this.pickNodes(this.t.indirectChecks, (p) => p.name !== this.name && p.name !== n.name && p.state === 'alive');
    // The deadline is as long as a reach check of ours plus the relay's probe timeout: a relay of ours nacks only once
    // its own reach check found the host down (detector.ts indirectRound, relayAnswer). Relays that said nothing get
    // until giveUpAt, twice half the silence we tolerate from n and at least RELAY_SILENCE_MIN_MS.
    const tol = this.tolerance(n, now);
    const allowance = this.health.allowance(now);
    const reachWait = reachTimeoutMs(this.t.reachTimeoutMs, allowance);
    const expectedNacks = peers.filter((p) => (p.vsn[1] ?? 0) >= 4).length;
    const round = indirectRound(now, peers.length, expectedNacks, { toleranceMs: tol, reachWaitMs: reachWait, probeTimeoutMs: this.t.probeTimeoutMs });
    const wait = round.deadline - now;
    check.indirect = round;
    const timing: IndirectTiming = {
      at: now, waitMs: wait, toleranceMs: tol, allowanceMs: allowance, nackAfterMs: [],
      memberJitterMs: this.decayed(n.jitter, n.jitterAt, now), ownJitterMs: this.decayed(this.ownJitter, this.ownJitterAt, now),
    };
    check.asked = timing;
    if (peers.length > 0) {
      this.count('fast_indirect_rounds');
      const seq = this.nextSeq();
      const nackedBy = new Set<string>();
      const w: AckWaiter = {
        acked: false,
        nacks: 0,
        target: `${n.ip}:${n.port}`,
        onAck: () => {
          this.ackHandlers.delete(seq);
          this.heard(n.name, performance.now());
        },
        onNack: (from) => {
          // Each relay counts once: the round is decided when every relay asked has said no.
          if (nackedBy.has(from)) return;
          nackedBy.add(from);
          round.nacks++;
          timing.nackAfterMs.push(performance.now() - now);
          // Judged now rather than at the watch's next poll, once the packets read with this one are handled (an ack
          // from the member among them ends its silence first).
          setImmediate(() => {
            if (n.reach === check) this.fastPath(n, performance.now());
          });
        },
      };
      this.ackHandlers.set(seq, w);
      // A late ack is still proof of life for a while.
      const expire = setTimeout(() => this.ackHandlers.delete(seq), Math.max(1000, this.t.probeIntervalMs * 10));
      expire.unref?.();
      const self = this.selfAddr;
      for (const p of peers) {
        this.sendTo(p, encodeIndirectPing({ SeqNo: seq, Target: n.addr, Port: n.port, Node: n.name, Nack: (p.vsn[1] ?? 0) >= 4, SourceAddr: self, SourcePort: this.advertisePort, SourceNode: this.name }));
      }
    }
    this.fastPath(n, now);
  }

  private accuseUnreachable(n: NodeRec, now: number): void {
    if ((n.state !== 'alive' && n.state !== 'suspect') || this.suspicions.get(n.name)?.fast || this.stopped || this.leaving) return;
    this.count('fast_suspicions');
    const evidence = this.fastEvidence(n, now);
    this.log.info({ member: n.name, ...evidence }, 'memberlist: member silent and its host unreachable, suspecting it');
    this.suspectNode({ Incarnation: n.incarnation, Node: n.name, From: this.name }, evidence);
  }

  /**
   * What a fast-path accusation rests on, in ms (one log line per verdict): the silence, our reach check (its result,
   * how long it waited, its timeout and re-arms), and the relays' round — how long they were given (`relayWaitMs`: our
   * reach wait plus the relay's probe timeout), the member's tolerance and the delays behind it (they set only the
   * give-up time now), when their nacks came, and the round's deadline and give-up time, all after the check started.
   */
  private fastEvidence(n: NodeRec, now: number): Record<string, number | string> {
    const r = n.reach;
    const ms = (x: number): number => Math.round(x * 10) / 10;
    const e: Record<string, number | string> = {
      silenceMs: Math.round(now - n.lastHeard),
      reach: r?.result ?? 'none',
      waitedMs: r ? Math.round(now - r.startedAt) : 0,
      timeoutMs: Math.round(r?.timeoutMs ?? 0),
      rearms: r?.rearms ?? 0,
      askedOthers: r?.indirect?.peers ?? 0,
      nacks: r?.indirect?.nacks ?? 0,
      toleranceNowMs: Math.round(this.tolerance(n, now)),
    };
    const a = r?.asked;
    if (r && a && r.indirect) {
      Object.assign(e, {
        expectedNacks: r.indirect.expectedNacks,
        askedAfterMs: ms(a.at - r.startedAt),
        relayWaitMs: ms(a.waitMs),
        toleranceMs: Math.round(a.toleranceMs),
        memberJitterMs: ms(a.memberJitterMs),
        ownJitterMs: ms(a.ownJitterMs),
        allowanceMs: ms(a.allowanceMs),
        nackAfterMs: a.nackAfterMs.map(ms).join(','),
        deadlineMs: ms(r.indirect.deadline - r.startedAt),
        giveUpMs: ms(r.indirect.giveUpAt - r.startedAt),
        decidedBy: r.indirect.peers === 0 ? 'no relays' : r.indirect.nacks >= r.indirect.peers ? 'every relay nacked' : now >= r.indirect.giveUpAt && r.indirect.nacks < r.indirect.expectedNacks ? 'give-up time' : 'deadline and nacks',
      });
    }
    return e;
  }

  /**
   * A TCP connect to the member's gossip port: the SYN-ACK (or RST) comes from its host's kernel, however starved its
   * process is. Once connected, a memberlist TCP ping (protocol ≥ 3), whose ack proves the member itself alive.
   */
  private checkReach(n: NodeRec): void {
    const ping: Ping = { SeqNo: this.nextSeq(), Node: n.name, SourceAddr: this.selfAddr, SourcePort: this.advertisePort, SourceNode: this.name };
    const started = performance.now();
    // Lifeguard: after our own timers ran late, the check waits that much longer before it counts as no answer.
    const timeout = reachTimeoutMs(this.t.reachTimeoutMs, this.health.allowance(started));
    const prev = n.reach;
    const round = prev && prev.startedAt >= n.lastHeard ? (prev.round ?? 0) + 1 : 0;
    const check: ReachProbe = { startedAt: started, result: 'pending', timeoutMs: timeout, rearms: 0, round };
    n.reach = check;
    this.count('reach_checks');
    if (timeout > this.t.reachTimeoutMs) this.count('reach_checks_stretched');
    // A new check replaces the previous one: close its connection, or a member that accepts but never answers (a
    // hung process) collects one open connection per recheck from every peer.
    this.reachClosers.get(n.name)?.();
    const done = (): void => {
      clearTimeout(timer);
      clearTimeout(giveUp);
      if (this.reachClosers.get(n.name) === done) this.reachClosers.delete(n.name);
      close();
    };
    this.reachClosers.set(n.name, done);
    const settle = (): void => {
      if (check.result !== 'unreachable' && check.result !== 'refused') return;
      this.count(`reach_${check.result}`);
      // Relays waiting for this evidence answer their requesters now.
      for (const wake of [...(this.relayWaiters.get(n.name) ?? [])]) wake();
      // Judge at once rather than at the next tick.
      if (n.reach === check) this.fastPath(n, performance.now());
    };
    const arm = (): NodeJS.Timeout => {
      const from = performance.now();
      return setTimeout(() => {
        const late = Math.max(0, performance.now() - from - timeout);
        // After pending I/O: a SYN-ACK that arrived while we were not running wins.
        setImmediate(() => {
          const r = reachTimeoutResult(check.result, late, timeout);
          if (r === 'inconclusive' && check.rearms < REACH_REARMS) {
            // We were not running when the answer was due: give it the full timeout again, from now.
            check.rearms++;
            this.count('reach_rearmed');
            timer = arm();
            return;
          }
          if (r === 'unreachable' && check.result === 'pending') check.judgedAt = performance.now();
          check.result = r;
          if (r === 'inconclusive') this.count('reach_inconclusive');
          // The connection stays open until giveUp: an answer after the verdict is logged (a timeout too short).
          settle();
        });
      }, timeout);
    };
    let timer = arm();
    const giveUp = setTimeout(done, Math.max(1000, this.t.probeIntervalMs * 10));
    giveUp.unref?.();
    const close = this.dial(n.ip, n.port, 4096, {
      connected: () => {
        const at = performance.now();
        this.reachRtt.record(Math.max(1, Math.round((at - started) * 1e6)));
        this.count('reach_connected');
        if (check.judgedAt !== undefined) {
          this.count('reach_answered_late');
          this.log.info({ member: n.name, answeredAfterMs: Math.round(at - started), timeoutMs: Math.round(timeout), rearms: check.rearms, judgedAfterMs: Math.round(check.judgedAt - started), accused: this.suspicions.get(n.name)?.fast !== undefined || n.state === 'dead' }, 'memberlist: a host judged unreachable answered after the timeout');
        } else if (check.result === 'pending' || check.result === 'inconclusive') check.result = 'connected';
        return (n.vsn[1] ?? 0) >= 3 ? encodePing(ping) : undefined;
      },
      reply: (m) => {
        if (m.kind === 'ack' && m.ack.SeqNo === ping.SeqNo) this.heard(n.name, performance.now());
        done();
      },
      failed: (err) => {
        // A garbled reply or a close proves nothing; connect errors say what the network thinks of the host.
        if (check.result === 'pending' || check.result === 'inconclusive') {
          const r = reachErrorResult(err.code);
          if (r !== 'inconclusive' || check.result === 'pending') check.result = r;
        }
        settle();
        done();
      },
    });
  }

  private nextIncarnation(): number {
    return ++this.incarnation;
  }
  private nextSeq(): number {
    this.seqNo = (this.seqNo + 1) >>> 0;
    return this.seqNo;
  }

  /** Every known member, ourselves included, with its state (memberlist Members() is the alive and suspect ones). */
  members(): Member[] {
    return [...this.nodes.values()].map((n) => this.toMember(n));
  }

  localMember(): Member {
    return this.toMember(this.nodes.get(this.name)!);
  }

  private toMember(n: NodeRec): Member {
    const v = n.vsn;
    return {
      name: n.name,
      addr: n.ip,
      port: n.port,
      meta: Buffer.from(n.meta),
      state: n.state,
      incarnation: n.incarnation,
      protocol: { min: v[0] ?? 0, max: v[1] ?? 0, cur: v[2] ?? 0 },
      delegate: { min: v[3] ?? 0, max: v[4] ?? 0, cur: v[5] ?? 0 },
    };
  }

  /** Latency figures (ms): event-loop delay and direct-ping round trip percentiles. */
  latency(): Record<string, number> {
    const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
    const d = this.loopDelay;
    // The histogram holds whole sampling intervals: the delay is what exceeds the interval.
    const late = (ns: number): number => ms(Math.max(0, ns - LOOP_DELAY_RESOLUTION_MS * 1e6));
    return {
      loop_delay_p50_ms: d ? late(d.percentile(50)) : 0,
      loop_delay_p99_ms: d ? late(d.percentile(99)) : 0,
      loop_delay_max_ms: d ? late(d.max) : 0,
      ping_rtt_p50_ms: this.rtt.count ? ms(this.rtt.percentile(50)) : 0,
      ping_rtt_p99_ms: this.rtt.count ? ms(this.rtt.percentile(99)) : 0,
      ping_rtt_max_ms: this.rtt.count ? ms(this.rtt.max) : 0,
      reach_connect_p50_ms: this.reachRtt.count ? ms(this.reachRtt.percentile(50)) : 0,
      reach_connect_p99_ms: this.reachRtt.count ? ms(this.reachRtt.percentile(99)) : 0,
      reach_connect_max_ms: this.reachRtt.count ? ms(this.reachRtt.max) : 0,
    };
  }

  healthScore(): number {
    return this.awareness.healthScore;
  }

  private emitEvent(kind: 'join' | 'leave' | 'update' | 'suspect', n: NodeRec): void {
    const m = this.toMember(n);
    try {
      this.emit(kind, m);
    } catch (err) {
      this.log.error({ err: (err as Error).message, event: kind, member: n.name }, 'memberlist event handler threw');
    }
  }

  // ---------------------------------------------------------------- sending

  private packetRoom(): number {
    return this.t.udpBufferSize - 2 - Buffer.byteLength(this.sec.label) - (this.sec.label ? 2 : 0) - (this.sec.keyring && this.sec.verifyOutgoing ? encryptOverhead(this.sec.encryptionVersion) : 0);
  }

  private rawSend(ip: string, port: number, msg: Buffer, pmax: number): void {
    if (this.stopped || !this.udp) return;
    let wire: Buffer;
    try {
      wire = wrapPacket(msg, this.sec, { crc: pmax >= 5, compress: this.t.enableCompression && msg.length > 64 });
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'memberlist: cannot build packet');
      return;
    }
    this.udp.send(wire, port, ip, (err) => {
      if (err) {
        this.count('udp_send_errors');
        this.log.debug({ to: hostPort(ip, port), err: err.message }, 'memberlist: UDP send failed');
      }
    });
  }

  /** Sends one message, piggybacking pending broadcasts when there is room (net.go sendMsg). */
  private sendMsg(ip: string, port: number, msg: Buffer, pmax = 0): void {
    const room = this.packetRoom() - msg.length - 2 - 5;
    const extra = this.broadcasts.take(2, room, retransmitLimit(this.t.retransmitMult, this.estNumNodes()));
    if (extra.length === 0) return this.rawSend(ip, port, msg, pmax);
    for (const c of makeCompound([msg, ...extra])) this.rawSend(ip, port, c, pmax);
  }

  private sendTo(n: NodeRec, msg: Buffer): void {
    this.sendMsg(n.ip, n.port, msg, n.vsn[1] ?? 0);
  }

  /** Queues for gossip and, for failure-detection news, also tells members straight away. */
  private broadcast(node: string, msg: Buffer, direct: boolean): void {
    this.broadcasts.queue(node, msg);
    if (!direct || this.t.directBroadcastFanout <= 0) return;
    const targets = this.pickNodes(this.t.directBroadcastFanout, (n) => n.name !== this.name && (n.state === 'alive' || n.state === 'suspect'));
    for (const n of targets) this.rawSend(n.ip, n.port, msg, n.vsn[1] ?? 0);
  }

  private estNumNodes(): number {
    return Math.max(1, this.nodes.size);
  }

  private pickNodes(k: number, filter: (n: NodeRec) => boolean): NodeRec[] {
    const all = [...this.nodes.values()].filter(filter);
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    return all.slice(0, k);
  }

  // ---------------------------------------------------------------- receiving packets

  private ingestPacket(buf: Buffer, from: RemoteInfo): void {
    this.count('udp_received');
    let unwrapped;
    try {
      unwrapped = unwrapPacket(buf, this.sec);
    } catch (err) {
      const e = err as Error;
      const reason = e.name === 'DecryptError' ? 'decrypt' : 'malformed';
      this.drop(reason, from.address, e.message);
      return;
    }
    if (unwrapped.truncated > 0) this.count('udp_truncated_parts');
    if (this.t.adaptive) {
      const sender = this.byAddr.get(`${from.address}:${from.port}`);
      if (sender) this.heard(sender, performance.now());
    }
    for (const m of unwrapped.messages) {
      try {
        this.handleMessage(m.type, m.body, from);
      } catch (err) {
        this.drop('malformed', from.address, `message type ${m.type}: ${(err as Error).message}`);
      }
    }
  }

  private drop(reason: string, from: string, detail: string): void {
    this.count(`dropped_${reason}`);
    if (reason === 'decrypt') {
      // The usual cause is a peer with another key: say so once a minute per source, not per packet.
      const last = this.decryptWarned.get(from) ?? 0;
      if (Date.now() - last > 60_000) {
        this.decryptWarned.set(from, Date.now());
        this.log.warn({ from, reason: detail }, this.sec.keyring ? 'memberlist: gossip that no installed key decrypts (a peer with another memberlist secret?); dropping it' : 'memberlist: dropping gossip');
        return;
      }
    }
    this.log.debug({ from, reason, detail }, 'memberlist: dropped packet');
  }

  private handleMessage(type: number, body: Buffer, from: RemoteInfo): void {
    switch (type) {
      case MessageType.ping:
        return this.handlePing(decodePing(body), from);
      case MessageType.indirectPing:
        return this.handleIndirectPing(decodeIndirectPing(body), from);
      case MessageType.ackResp:
        return this.handleAck(decodeAck(body).SeqNo, from);
      case MessageType.nackResp: {
        const w = this.ackHandlers.get(decodeNack(body).SeqNo);
        this.count('nacks_received');
        if (w) {
          w.nacks++;
          w.onNack?.(`${from.address}:${from.port}`);
        }
        return;
      }
      case MessageType.suspect:
        return this.suspectNode(decodeSuspect(body));
      case MessageType.alive: {
        const a = decodeAlive(body);
        if (a.Port === 0) a.Port = this.bindPort;
        return this.aliveNode(a, false);
      }
      case MessageType.dead:
        return this.deadNode(decodeDead(body));
      case MessageType.user:
        this.count('user_messages_ignored');
        return;
      default:
        this.drop('unknown_type', from.address, `message type ${type} not supported over UDP`);
    }
  }

  private replyAddr(srcAddr: Uint8Array | undefined, srcPort: number | undefined, from: RemoteInfo): [string, number] {
    if (srcAddr && srcAddr.length > 0 && srcPort) {
      const ip = bytesToIp(srcAddr);
      if (ip) return [ip, srcPort];
    }
    return [from.address, from.port];
  }

  private handlePing(p: Ping, from: RemoteInfo): void {
    if (p.Node !== '' && p.Node !== this.name) {
      this.drop('wrong_node', from.address, `ping for ${p.Node}, we are ${this.name}`);
      return;
    }
    const [ip, port] = this.replyAddr(p.SourceAddr, p.SourcePort, from);
    const src = p.SourceNode ? this.nodes.get(p.SourceNode) : undefined;
    // Its own ping from its own address: while these keep coming, it is this pair's pinger (shouldPing).
    if (src && src.ip === from.address) src.pingedUsAt = performance.now();
    this.sendMsg(ip, port, encodeAck({ SeqNo: p.SeqNo, Payload: NO_PAYLOAD }), src?.vsn[1] ?? 0);
  }

  private handleIndirectPing(ind: IndirectPingReq, from: RemoteInfo): void {
    const port = ind.Port || this.bindPort;
    const target = bytesToIp(ind.Target);
    if (!target) throw new Error('indirect ping with an invalid target address');
    const [replyIp, replyPort] = this.replyAddr(ind.SourceAddr, ind.SourcePort, from);
    const requester = ind.SourceNode ? this.nodes.get(ind.SourceNode) : undefined;
    const seq = this.nextSeq();
    this.count('indirect_pings_received');
    const waiter: AckWaiter = {
      acked: false,
      nacks: 0,
      onAck: () => {
        this.count('indirect_acks_relayed');
        this.sendMsg(replyIp, replyPort, encodeAck({ SeqNo: ind.SeqNo, Payload: Buffer.alloc(0) }), requester?.vsn[1] ?? 0);
      },
    };
    this.ackHandlers.set(seq, waiter);
    // A nack after our probe timeout, as memberlist sends it: the requester counts only the nacks that arrive before
    // its probe interval ends (one probe timeout after it asked us), so a later one tells it nothing and costs it
    // health. A late ack is still relayed for a while: under load a late answer is still proof of life.
    const sendNack = (): void => {
      this.count('indirect_nacks_sent');
      this.sendMsg(replyIp, replyPort, encodeNack({ SeqNo: ind.SeqNo }), requester?.vsn[1] ?? 0);
    };
    const askedAt = performance.now();
    if (!ind.Nack) {
      // Nothing to say before an ack.
    } else if (!this.t.adaptive || this.t.reachTimeoutMs <= 0) {
      const nack = setTimeout(() => {
        if (!waiter.acked) sendNack();
      }, this.t.probeTimeoutMs);
      nack.unref?.();
    } else {
      // Our fast path's relay (detector.ts relayAnswer): a nack says the host did not answer our own reach check
      // either. Judged after pending I/O, like our own verdicts, so an ack or SYN-ACK that came while we were not
      // running counts.
      const reachWait = reachTimeoutMs(this.t.reachTimeoutMs, this.health.allowance(askedAt));
      const judgeUntil = askedAt + 2 * (this.t.reachCheckAfterMs + reachWait) + this.t.probeIntervalMs;
      // The requester asks once it has heard nothing for reachCheckAfterMs; our own silence may be shorter, and our
      // own check would start only once it is that long. Checking at once, the nack (if the host is down) comes one
      // reach timeout after the ask, and the requester's verdict no longer waits for our own watch to notice.
      // A check of the current silence that is pending or found the host down already answers; one that found it up
      // (before this ask) does not: the host may have gone since (relayAnswer).
      const targetRec = this.nodes.get(ind.Node);
      const r = targetRec?.reach;
      const answersAlready = r !== undefined && r.startedAt >= targetRec!.lastHeard && (r.result === 'pending' || r.result === 'unreachable' || r.result === 'refused');
      // Whatever state we hold it in: a member we declared dead may be what the requester still sees alive (our
      // verdict came first), and only our own check of it now is evidence for a nack.
      if (targetRec && targetRec.name !== this.name && !answersAlready) {
        this.count('relay_reach_checks');
        this.checkReach(targetRec);
      }
      let poll: NodeJS.Timeout | undefined;
      // A poll's judgement may already be queued (setImmediate) when a wake answers: one answer per ask.
      let finished = false;
      const waiters = this.relayWaiters.get(ind.Node) ?? new Set<() => void>();
      this.relayWaiters.set(ind.Node, waiters);
      const finish = (): void => {
        finished = true;
        clearTimeout(poll);
        waiters.delete(judgeNow);
        if (waiters.size === 0 && this.relayWaiters.get(ind.Node) === waiters) this.relayWaiters.delete(ind.Node);
      };
      const judgeNow = (): void => {
        if (finished) return;
        if (waiter.acked || this.stopped) return finish();
        const now = performance.now();
        // Never before our own ping had its probe timeout, as memberlist. A wake or a poll can come earlier than that
        // by performance.now() (libuv times timers from the loop's cached clock): judge again then, or nothing would.
        const early = this.t.probeTimeoutMs - (now - askedAt);
        if (early > 0) return schedule(early + 0.5);
        const answer = relayAnswer(now, askedAt, this.nodes.get(ind.Node), judgeUntil);
        if (answer === 'wait') return schedule();
        finish();
        if (answer === 'nack') return sendNack();
        if (answer === 'ack') {
          waiter.acked = true;
          this.count('indirect_acks_heard');
          this.sendMsg(replyIp, replyPort, encodeAck({ SeqNo: ind.SeqNo, Payload: Buffer.alloc(0) }), requester?.vsn[1] ?? 0);
          return;
        }
        this.count('indirect_nacks_withheld');
      };
      // Polled every probe timeout, and woken at once when our reach check of the target settles.
      const schedule = (ms = this.t.probeTimeoutMs): void => {
        clearTimeout(poll);
        poll = setTimeout(() => setImmediate(judgeNow), Math.max(1, ms));
        poll.unref?.();
      };
      waiters.add(judgeNow);
      schedule();
    }
    const expire = setTimeout(() => this.ackHandlers.delete(seq), Math.max(1000, this.t.probeIntervalMs));
    expire.unref?.();
    const [sip, sport] = [this.advertiseIp, this.advertisePort];
    const targetNode = this.nodes.get(ind.Node);
    this.sendMsg(target, port, encodePing({ SeqNo: seq, Node: ind.Node, SourceAddr: ipToBytes(sip), SourcePort: sport, SourceNode: this.name }), targetNode?.vsn[1] ?? 0);
  }

  private handleAck(seq: number, from?: RemoteInfo): void {
    const w = this.ackHandlers.get(seq);
    if (!w || w.acked) return;
    w.acked = true;
    if (w.target && from && `${from.address}:${from.port}` !== w.target) this.count('acks_indirect');
    w.onAck?.();
  }

  // ---------------------------------------------------------------- probing

  private probe(): void {
    if (this.stopped || this.leaving) return;
    const candidates = [...this.nodes.values()].filter((n) => n.name !== this.name && (n.state === 'alive' || n.state === 'suspect'));
    if (candidates.length === 0) return;
    const count = 1;
    for (let i = 0; i < count; i++) {
      const n = candidates[(this.probeIndex + i) % candidates.length]!;
      if (n.probing < 2) void this.probeNode(n);
    }
    this.probeIndex = (this.probeIndex + count) % Math.max(1, candidates.length);
  }

  /** Resolves true on an ack, false at `ms`; the check runs after pending I/O, so a late timer never beats a received ack. */
  private waitAck(w: AckWaiter, ms: number): Promise<boolean> {
    if (w.acked) return Promise.resolve(true);
    const wait = Math.max(0, ms);
    const from = performance.now();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const prev = w.onAck;
      w.onAck = () => {
        prev?.();
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      timer = setTimeout(() => {
        // How late our own loop ran: a probe we could not time is no evidence against the target.
        w.late = (w.late ?? 0) + Math.max(0, performance.now() - from - wait);
        setImmediate(() => resolve(w.acked));
      }, wait);
    });
  }

  private async probeNode(n: NodeRec): Promise<void> {
    n.probing++;
    const seq = this.nextSeq();
    const w: AckWaiter = { acked: false, nacks: 0, target: `${n.ip}:${n.port}` };
    this.ackHandlers.set(seq, w);
    try {
      const interval = this.awareness.scale(this.t.probeIntervalMs);
      const deadline = performance.now() + interval;
      const ping: Ping = { SeqNo: seq, Node: n.name, SourceAddr: this.selfAddr, SourcePort: this.advertisePort, SourceNode: this.name };
      if (n.state === 'alive') {
        this.sendTo(n, encodePing(ping));
      } else {
        // Tell a suspect it is suspected, so it can refute at once.
        const [c] = makeCompound([encodePing(ping), encodeSuspect({ Incarnation: n.incarnation, Node: n.name, From: this.name })]);
        this.rawSend(n.ip, n.port, c!, n.vsn[1] ?? 0);
      }
      const sent = process.hrtime.bigint();
      if (await this.waitAck(w, this.t.probeTimeoutMs)) {
        this.rtt.record(Number(process.hrtime.bigint() - sent) || 1);
        this.awareness.applyDelta(-1);
        n.failedProbes = 0;
        return;
      }
      if (this.stopped) return;
      const peers = this.pickNodes(this.t.indirectChecks, (p) => p.name !== this.name && p.name !== n.name && p.state === 'alive');
      let expectedNacks = 0;
      for (const p of peers) {
        const nack = (p.vsn[1] ?? 0) >= 4;
        if (nack) expectedNacks++;
        this.sendTo(p, encodeIndirectPing({ SeqNo: seq, Target: n.addr, Port: n.port, Node: n.name, Nack: nack, SourceAddr: this.selfAddr, SourcePort: this.advertisePort, SourceNode: this.name }));
      }
      const tcp = !this.t.disableTcpPings && (n.vsn[1] ?? 0) >= 3 ? this.tcpPing(n, ping, deadline) : Promise.resolve(false);
      const acked = await this.waitAck(w, deadline - performance.now());
      if (acked || (await tcp)) {
        if (!acked) this.log.warn({ member: n.name }, 'memberlist: reached member over TCP but UDP probes failed; network may be misconfigured');
        n.failedProbes = 0;
        return;
      }
      if (this.stopped || this.leaving) return;
      if ((w.late ?? 0) > this.t.probeTimeoutMs) {
        // We were not running when the answer was due: inconclusive, and a sign of our own ill health.
        this.count('probes_inconclusive');
        this.awareness.applyDelta(1);
        return;
      }
      this.awareness.applyDelta(expectedNacks > 0 ? Math.max(0, expectedNacks - w.nacks) : 1);
      n.failedProbes++;
      this.count('probes_failed');
      if (n.failedProbes >= this.t.failedProbesToSuspect && (n.state === 'alive' || n.state === 'suspect')) {
        this.log.debug({ member: n.name, failedProbes: n.failedProbes }, 'memberlist: no ack, suspecting member');
        this.suspectNode({ Incarnation: n.incarnation, Node: n.name, From: this.name });
      }
    } finally {
      this.ackHandlers.delete(seq);
      n.probing--;
    }
  }

  /** net.go sendPingAndWaitForAck: a ping over TCP, for networks that lose UDP. */
  private async tcpPing(n: NodeRec, ping: Ping, deadline: number): Promise<boolean> {
    const ms = deadline - performance.now();
    if (ms <= 0) return false;
    try {
      const msg = await this.streamRequest(n.ip, n.port, encodePing(ping), ms);
      return msg.kind === 'ack' && msg.ack.SeqNo === ping.SeqNo;
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- state machine (state.go)

  private refute(me: NodeRec, accused: number): void {
    let inc = this.nextIncarnation();
    if (accused >= inc) {
      this.incarnation = accused + 1;
      inc = this.incarnation;
    }
    me.incarnation = inc;
    this.awareness.applyDelta(1);
    this.count('refutes');
    const a: Alive = { Incarnation: inc, Node: me.name, Addr: me.addr, Port: me.port, Meta: me.meta, Vsn: Uint8Array.from(me.vsn) };
    this.broadcast(me.name, encodeAlive(a), true);
  }

  private aliveNode(a: Alive, bootstrap: boolean): void {
    if (this.leaving && a.Node === this.name) return;
    if (a.Vsn.length >= 3) {
      const [pmin, pmax] = [a.Vsn[0]!, a.Vsn[1]!];
      if (pmin === 0 || pmax === 0 || pmin > pmax) {
        this.log.warn({ member: a.Node, vsn: [...a.Vsn] }, 'memberlist: ignoring alive message with invalid protocol versions');
        return;
      }
    }
    if (!a.Node) return;
    const ip = bytesToIp(a.Addr);
    if (!ip) {
      this.log.warn({ member: a.Node }, 'memberlist: ignoring alive message with an invalid address');
      return;
    }
    let n = this.nodes.get(a.Node);
    let updatesNode = false;
    if (!n) {
      n = { name: a.Node, addr: Buffer.from(a.Addr), ip, port: a.Port, meta: Buffer.from(a.Meta), incarnation: 0, state: 'dead', stateChange: performance.now(), vsn: [...a.Vsn], failedProbes: 0, probing: 0, lastHeard: performance.now(), jitter: this.t.initialJitterMs, jitterAt: performance.now(), indirectAt: 0 };
      this.nodes.set(a.Node, n);
    } else if (!n.addr.equals(a.Addr) || n.port !== a.Port) {
      const canReclaim = this.t.deadNodeReclaimMs > 0 && performance.now() - n.stateChange > this.t.deadNodeReclaimMs;
      if (n.state === 'left' || (n.state === 'dead' && canReclaim)) {
        this.log.info({ member: a.Node, old: hostPort(n.ip, n.port), new: hostPort(ip, a.Port) }, 'memberlist: updating address for left or failed member');
        updatesNode = true;
      } else {
        this.count('conflicts');
        this.log.error({ member: a.Node, mine: hostPort(n.ip, n.port), theirs: hostPort(ip, a.Port), state: n.state }, 'memberlist: conflicting address for member');
        return;
      }
    }
    const isLocal = n.name === this.name;
    if (a.Incarnation <= n.incarnation && !isLocal && !updatesNode) return;
    if (a.Incarnation < n.incarnation && isLocal) return;
    this.clearSuspicion(a.Node);
    const oldState = n.state;
    const oldMeta = n.meta;
    if (!bootstrap && isLocal) {
      const same = a.Incarnation === n.incarnation && Buffer.from(a.Meta).equals(n.meta) && Buffer.from(a.Vsn).equals(Buffer.from(n.vsn));
      if (same) return;
      this.refute(n, a.Incarnation);
      this.log.warn({ incarnation: a.Incarnation }, 'memberlist: refuting an alive message about ourselves');
    } else {
      this.broadcast(a.Node, encodeAlive(a), false);
      if (a.Vsn.length > 0) n.vsn = [...a.Vsn];
      n.incarnation = a.Incarnation;
      n.meta = Buffer.from(a.Meta);
      this.byAddr.delete(`${n.ip}:${n.port}`);
      n.addr = Buffer.from(a.Addr);
      n.ip = ip;
      n.port = a.Port;
      this.byAddr.set(`${ip}:${a.Port}`, n.name);
      n.failedProbes = 0;
      if (n.state !== 'alive') n.lastHeard = performance.now();
      if (n.state !== 'alive') {
        n.state = 'alive';
        n.stateChange = performance.now();
        this.ringEpoch++;
      }
    }
    if (oldState === 'dead' || oldState === 'left') {
      if (!isLocal || bootstrap) this.log.info({ member: n.name, addr: hostPort(n.ip, n.port) }, 'memberlist: member joined');
      this.emitEvent('join', n);
    } else if (!oldMeta.equals(n.meta)) {
      this.emitEvent('update', n);
    }
  }

  private clearSuspicion(node: string): void {
    const s = this.suspicions.get(node);
    if (s) {
      s.timer.cancel();
      this.suspicions.delete(node);
    }
  }

  /**
   * `fast`: our own fast-path accusation with its evidence (the member's host did not answer): a short suspicion with
   * no confirmations to wait for, which also replaces a slower suspicion already running.
   */
  private suspectNode(s: Suspect, fast?: Record<string, number | string>): void {
    const n = this.nodes.get(s.Node);
    if (!n) return;
    if (s.Incarnation < n.incarnation) return;
    const shortens = fast !== undefined && this.t.adaptive;
    const running = this.suspicions.get(s.Node);
    if (running) {
      if (!shortens || running.fast) {
        if (running.timer.confirm(s.From)) this.broadcast(s.Node, encodeSuspect(s), false);
        return;
      }
      // Someone's suspicion runs on the slow timing; our own network evidence shortens it.
      this.clearSuspicion(s.Node);
    } else {
      if (n.state !== 'alive') return;
      if (n.name === this.name) {
        this.refute(n, s.Incarnation);
        this.log.warn({ from: s.From }, 'memberlist: refuting a suspect message');
        return;
      }
    }
    // Our own suspicions go to everyone at once: they are the others' confirmations.
    this.broadcast(s.Node, encodeSuspect(s), s.From === this.name);
    n.incarnation = s.Incarnation;
    if (n.state === 'alive') {
      n.state = 'suspect';
      n.stateChange = performance.now();
      this.count('suspicions');
      this.emitEvent('suspect', n);
    }
    const num = this.estNumNodes();
    let k = this.t.suspicionMult - 2;
    let min = suspicionTimeoutMs(this.t.suspicionMult, num, this.t.probeIntervalMs);
    if (shortens) {
      // The network's own answer is the evidence: no confirmations to wait for, only time for a refutation in flight.
      k = 0;
      min = this.t.unreachableSuspicionMs;
    } else if (this.t.adaptive) {
      // Wait for the confirmations the cluster can give, and half as long again as we tolerated silence.
      k = Math.max(0, Math.min(this.t.suspicionConfirmations, num - 2));
      min = Math.max(min, this.tolerance(n) / 2);
    } else if (num - 2 < k) {
      k = 0;
    }
    const max = shortens ? min : this.t.suspicionMaxTimeoutMult * min;
    this.startSuspicion(n, s.From, k, min, max, shortens ? fast : undefined);
  }

  private startSuspicion(n: NodeRec, from: string, k: number, min: number, max: number, fast: Record<string, number | string> | undefined): void {
    const name = n.name;
    const changeTime = n.stateChange;
    const startedAt = performance.now();
    const timer = new Suspicion(from, k, min, max, (confirmations) => {
      const cur = this.nodes.get(name);
      if (!cur || cur.state !== 'suspect' || cur.stateChange !== changeTime || this.suspicions.get(name)?.timer !== timer) return;
      const now = performance.now();
      if (this.t.adaptive && from !== this.name && !cur.monitored) {
        // Someone else's suspicion of a member we do not watch closely: what we last heard of it is a round robin's
        // worth old, and would fail a member its watchers hold alive (a starved one whose host answers them). Their
        // verdict decides, through the dead message they send everyone, or our own round robin's.
        this.count('suspicions_left_to_watchers');
        this.suspicions.delete(name);
        cur.state = 'alive';
        return;
      }
      const hostUp = cur.reach !== undefined && cur.reach.result === 'connected' && cur.reach.startedAt >= cur.lastHeard;
      if (this.t.adaptive && suspicionVerdict(now, cur.lastHeard, startedAt, this.t.suspectAfterSilenceMs, hostUp ? HOST_UP_GRACE_MS : 0) === 'hold') {
        // It has spoken since we suspected it: hold the verdict, it will refute (it hears the accusation
        // with every ping), and the next silence starts a new suspicion.
        this.count('suspicions_held');
        this.suspicions.delete(name);
        cur.state = 'alive';
        return;
      }
      // What decided it, so that a false verdict in a log can be traced to its path.
      const why = fast ? { path: 'fast', ...fast } : { path: 'slow', silenceMs: Math.round(now - cur.lastHeard), toleranceMs: Math.round(this.tolerance(cur, now)) };
      this.log.info({ member: name, confirmations, suspectedForMs: Math.round(now - changeTime), ...why }, 'memberlist: marking member as failed, suspect timeout reached');
      this.deadNode({ Incarnation: cur.incarnation, Node: name, From: this.name });
    });
    this.suspicions.set(name, { timer, ...(fast ? { fast } : {}) });
  }

  private deadNode(d: Dead): void {
    const n = this.nodes.get(d.Node);
    if (!n) return;
    if (d.Incarnation < n.incarnation) return;
    this.clearSuspicion(d.Node);
    if (n.state === 'dead' || n.state === 'left') return;
    if (n.name === this.name && !this.leaving) {
      this.refute(n, d.Incarnation);
      this.log.warn({ from: d.From }, 'memberlist: refuting a dead message');
      return;
    }
    this.broadcast(d.Node, encodeDead(d), d.From === this.name);
    n.incarnation = d.Incarnation;
    n.state = d.Node === d.From ? 'left' : 'dead';
    n.stateChange = performance.now();
    this.ringEpoch++;
    if (n.name !== this.name) {
      this.count(n.state === 'left' ? 'members_left' : 'members_failed');
      this.log.info({ member: n.name, state: n.state, from: d.From }, n.state === 'left' ? 'memberlist: member left' : 'memberlist: member failed');
    }
    this.emitEvent('leave', n);
  }

  // ---------------------------------------------------------------- gossip

  private gossip(): void {
    if (this.stopped) return;
    const now = performance.now();
    // memberlist forgets dead and left members once gossip to the dead is over.
    for (const [name, n] of this.nodes) {
      if (name !== this.name && (n.state === 'dead' || n.state === 'left') && now - n.stateChange > this.t.gossipToTheDeadMs) {
        this.nodes.delete(name);
        this.clearSuspicion(name);
      }
    }
    if (this.broadcasts.length === 0) return;
    const targets = this.pickNodes(this.t.gossipNodes, (n) => {
      if (n.name === this.name) return false;
      if (n.state === 'alive' || n.state === 'suspect') return true;
      return n.state === 'dead' && now - n.stateChange <= this.t.gossipToTheDeadMs;
    });
    const limit = retransmitLimit(this.t.retransmitMult, this.estNumNodes());
    for (const n of targets) {
      const msgs = this.broadcasts.take(2, this.packetRoom() - 5, limit);
      if (msgs.length === 0) return;
      if (msgs.length === 1) this.rawSend(n.ip, n.port, msgs[0]!, n.vsn[1] ?? 0);
      else for (const c of makeCompound(msgs)) this.rawSend(n.ip, n.port, c, n.vsn[1] ?? 0);
    }
  }

  // ---------------------------------------------------------------- push/pull (TCP)

  private localState(): PushNodeState[] {
    return [...this.nodes.values()].map((n) => ({ Name: n.name, Addr: n.addr, Port: n.port, Meta: n.meta, Incarnation: n.incarnation, State: stateNumber[n.state], Vsn: Uint8Array.from(n.vsn) }));
  }

  private localStateMessage(join: boolean): Buffer {
    const nodes = this.localState();
    return encodePushPull({ Nodes: nodes.length, UserStateLen: 0, Join: join }, nodes, Buffer.alloc(0));
  }

  /** state.go verifyProtocol: every alive member must understand every other's current versions. */
  private verifyProtocol(remote: readonly PushNodeState[]): void {
    let maxpmin = 0, minpmax = 255, maxdmin = 0, mindmax = 255;
    const consider = (v: ArrayLike<number>): void => {
      if (v.length < 6) return;
      maxpmin = Math.max(maxpmin, v[0]!);
      minpmax = Math.min(minpmax, v[1]!);
      maxdmin = Math.max(maxdmin, v[3]!);
      mindmax = Math.min(mindmax, v[4]!);
    };
    for (const r of remote) if (r.State === NodeState.alive) consider(r.Vsn);
    for (const n of this.nodes.values()) if (n.state === 'alive') consider(n.vsn);
    const check = (name: string, v: ArrayLike<number>): void => {
      const pcur = v.length > 2 ? v[2]! : 0;
      const dcur = v.length > 5 ? v[5]! : 0;
      if (pcur < maxpmin || pcur > minpmax) throw new MemberlistError(`member '${name}' protocol version (${pcur}) is incompatible: [${maxpmin}, ${minpmax}]`);
      if (dcur < maxdmin || dcur > mindmax) throw new MemberlistError(`member '${name}' delegate protocol version (${dcur}) is incompatible: [${maxdmin}, ${mindmax}]`);
    };
    for (const r of remote) check(r.Name, r.Vsn);
    for (const n of this.nodes.values()) check(n.name, n.vsn);
  }

  private mergeRemoteState(remote: readonly PushNodeState[]): void {
    this.verifyProtocol(remote);
    for (const r of remote) {
      if (r.Vsn.length > 0 && r.Vsn.length < 6) throw new MemberlistError(`member '${r.Name}' has a malformed version vector`);
      const port = r.Port || this.bindPort;
      switch (r.State) {
        case NodeState.alive:
          this.aliveNode({ Incarnation: r.Incarnation, Node: r.Name, Addr: r.Addr, Port: port, Meta: r.Meta, Vsn: r.Vsn }, false);
          break;
        case NodeState.left:
          this.deadNode({ Incarnation: r.Incarnation, Node: r.Name, From: r.Name });
          break;
        case NodeState.dead:
        case NodeState.suspect:
          // A remote opinion of death only makes us suspect: we check for ourselves.
          this.suspectNode({ Incarnation: r.Incarnation, Node: r.Name, From: this.name });
          break;
        default:
          break;
      }
    }
  }

  private handleConn(c: Socket): void {
    this.count('tcp_accepted');
    if (this.stopped) {
      c.destroy();
      return;
    }
    this.conns.add(c);
    c.setTimeout(this.t.tcpTimeoutMs);
    c.on('timeout', () => c.destroy());
    c.on('error', () => c.destroy());
    c.on('close', () => this.conns.delete(c));
    const from = c.remoteAddress ?? '?';
    let buf: Buffer = Buffer.alloc(0);
    let label: string | undefined;
    let done = false;
    const fail = (reason: string, detail: string, reply: boolean): void => {
      done = true;
      this.drop(reason, from, `TCP: ${detail}`);
      if (reply) c.end(wrapStream(encodeErr({ Error: detail }), this.sec, false));
      else c.destroy();
    };
    c.on('data', (chunk: Buffer) => {
      if (done) return;
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length > MAX_STREAM_BYTES + 5 + 257) return fail('malformed', 'stream message too large', false);
      try {
        if (label === undefined) {
          if (buf[0] === MessageType.hasLabel && (buf.length < 2 || buf.length < 2 + buf[1]!)) return;
          const r = removeLabelHeader(buf);
          label = r.label;
          buf = r.rest;
          if (label !== this.sec.label) return fail('label', `discarding stream with unacceptable label "${label}"`, false);
        }
        const read = readStreamMessage(buf, this.sec);
        if (read === null) return;
        done = true;
        const m = read.message;
        if (m.kind === 'pushPull') {
          if (this.pushPullActive >= MAX_PUSH_PULL_CONCURRENT) return fail('busy', 'too many pending push/pull requests', false);
          this.pushPullActive++;
          try {
            c.end(wrapStream(this.localStateMessage(m.header.Join), this.sec, this.t.enableCompression));
            this.mergeRemoteState(m.nodes);
          } finally {
            this.pushPullActive--;
          }
          this.count('push_pull_received');
        } else if (m.kind === 'ping') {
          if (m.ping.Node !== '' && m.ping.Node !== this.name) return fail('wrong_node', `ping for ${m.ping.Node}`, false);
          c.end(wrapStream(encodeAck({ SeqNo: m.ping.SeqNo, Payload: Buffer.alloc(0) }), this.sec, this.t.enableCompression));
        } else if (m.kind === 'user') {
          this.count('user_messages_ignored');
          c.end();
        } else {
          fail('unknown_type', `unexpected stream message ${m.kind === 'unknown' ? m.type : m.kind}`, false);
        }
      } catch (err) {
        const e = err as Error;
        fail(e.name === 'DecryptError' ? 'decrypt' : 'malformed', e.message, true);
      }
    });
  }

  /**
   * One stream exchange: dials, sends what `h.connected` returns (behind our label header), reads one message back.
   * Exactly one of `reply` and `failed` is called, unless the returned close() comes first.
   */
  private dial(ip: string, port: number, maxReplyBytes: number, h: DialHandlers): () => void {
    const c = new Socket();
    this.conns.add(c);
    let buf: Buffer = Buffer.alloc(0);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      this.conns.delete(c);
      c.destroy();
    };
    const fail = (err: NodeJS.ErrnoException): void => {
      if (closed) return;
      close();
      h.failed(err);
    };
    c.on('error', fail);
    c.on('close', () => fail(new MemberlistError(`connection to ${hostPort(ip, port)} closed before a reply`)));
    c.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length > maxReplyBytes) return fail(new MemberlistError(`reply from ${hostPort(ip, port)} too large`));
      let r: ReturnType<typeof readStreamMessage>;
      try {
        r = readStreamMessage(buf, this.sec);
      } catch (err) {
        return fail(err as Error);
      }
      if (!r || closed) return;
      close();
      h.reply(r.message);
    });
    c.connect({ host: ip, port }, () => {
      if (closed) return;
      const request = h.connected();
      if (request === undefined) return close();
      c.write(Buffer.concat([labelHeader(this.sec.label), wrapStream(request, this.sec, this.t.enableCompression)]));
    });
    return close;
  }

  /** Dials, sends one stream message, reads one back within `timeoutMs`. */
  private streamRequest(ip: string, port: number, plain: Buffer, timeoutMs: number): Promise<StreamMessage> {
    return new Promise((resolve, reject) => {
      const close = this.dial(ip, port, MAX_STREAM_BYTES + 5, {
        connected: () => plain,
        reply: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        failed: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      const timer = setTimeout(() => {
        close();
        reject(new MemberlistError(`timed out after ${Math.round(timeoutMs)} ms talking to ${hostPort(ip, port)}`));
      }, timeoutMs);
    });
  }

  private async pushPullWith(ip: string, port: number, join: boolean): Promise<void> {
    const reply = await this.streamRequest(ip, port, this.localStateMessage(join), this.t.tcpTimeoutMs);
    if (reply.kind === 'err') throw new MemberlistError(`remote error: ${reply.err.Error}`);
    if (reply.kind !== 'pushPull') throw new MemberlistError(`unexpected reply to push/pull from ${hostPort(ip, port)}`);
    this.mergeRemoteState(reply.nodes);
  }

  private async periodicPushPull(): Promise<void> {
    if (this.stopped || this.leaving) return;
    const [n] = this.pickNodes(1, (x) => x.name !== this.name && x.state === 'alive');
    if (!n) return;
    try {
      await this.pushPullWith(n.ip, n.port, false);
    } catch (err) {
      this.log.debug({ member: n.name, err: (err as Error).message }, 'memberlist: push/pull failed');
    }
  }

  /** Joins through each address ("ip", "ip:port", "[v6]:port", "host"); resolves with how many answered. */
  async join(addrs: readonly string[]): Promise<number> {
    if (!this.started || this.stopped) throw new MemberlistError('memberlist: join before start or after shutdown');
    const results = await Promise.all(
      addrs.map(async (a) => {
        try {
          const [host, port] = parseHostPort(a, this.bindPort);
          const ips = isIP(host) ? [host] : (await lookup(host, { all: true })).map((r) => r.address);
          for (const ip of ips) {
            try {
              await this.pushPullWith(ip, port, true);
              return true;
            } catch (err) {
              this.log.warn({ addr: hostPort(ip, port), err: (err as Error).message }, 'memberlist: failed to join');
            }
          }
        } catch (err) {
          this.log.warn({ addr: a, err: (err as Error).message }, 'memberlist: failed to join');
        }
        return false;
      }),
    );
    return results.filter(Boolean).length;
  }

  /** Broadcasts that we leave (a dead message from ourselves) and waits until it is out, or timeoutMs. */
  async leave(timeoutMs: number): Promise<void> {
    if (this.stopped) throw new MemberlistError('memberlist: leave after shutdown');
    // A second leave (the speaker's main thread after its gossip thread left on the signal) waits for the first.
    if (this.leaving) return this.leavingDone;
    this.leaving = true;
    this.leavingDone = this.leaveNow(timeoutMs);
    return this.leavingDone;
  }

  private async leaveNow(timeoutMs: number): Promise<void> {
    const me = this.nodes.get(this.name)!;
    const d: Dead = { Incarnation: me.incarnation, Node: me.name, From: me.name };
    // Everyone hears it at once (graceful handover in a few ms), and gossip repeats it for lost packets.
    const wire = encodeDead(d);
    this.deadNode(d);
    for (const n of this.nodes.values()) if (n.name !== this.name && (n.state === 'alive' || n.state === 'suspect')) this.rawSend(n.ip, n.port, wire, n.vsn[1] ?? 0);
    const alive = [...this.nodes.values()].some((n) => n.name !== this.name && n.state === 'alive');
    if (!alive) return;
    const until = Date.now() + timeoutMs;
    while (this.broadcasts.length > 0 && Date.now() < until && !this.stopped) await new Promise((r) => setTimeout(r, Math.min(this.t.gossipIntervalMs, 50)));
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    if (this.watchTimer) clearTimeout(this.watchTimer);
    this.loopDelay?.disable();
    for (const t of this.timers) clearInterval(t);
    for (const s of this.suspicions.values()) s.timer.cancel();
    this.suspicions.clear();
    for (const c of this.conns) c.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
    ]);
    this.log.info({ name: this.name }, 'memberlist stopped');
  }
}

export function parseHostPort(a: string, defaultPort: number): [string, number] {
  const s = a.trim();
  let host = s;
  let port = defaultPort;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) {
    host = v6[1]!;
    if (v6[2]) port = Number(v6[2]);
  } else if (isIP(s) === 6) {
    host = s;
  } else if (s.includes(':')) {
    const i = s.lastIndexOf(':');
    host = s.slice(0, i);
    port = Number(s.slice(i + 1));
  }
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new MemberlistError(`invalid member address "${a}"`);
  return [host, port];
}
