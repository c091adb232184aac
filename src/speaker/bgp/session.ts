// One BGP session towards one peer: the RFC 4271 §8 state machine as MetalLB's speaker runs it (we always dial,
// never listen, so Active collapses into Connect and connection collisions cannot happen), its timers, and the
// Adj-RIB-Out that turns setAdvertisements() into UPDATEs.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import pino from 'pino';
import type { IPFamily } from '../../net/ip.js';
import type { Logger } from '../../log.js';
import { NotificationError } from './errors.js';
import { deriveNextHops, deriveRouterId, interfaceOf, type InterfaceTable, type NextHops } from './local-addresses.js';
import { defaultVrfs, vrfInterfaceTable, type Vrf, type VrfError, type VrfResolver } from '../../net/vrf.js';
import {
  AS_TRANS, BGP_VERSION, CeaseSubcode, DEFAULT_PORT, ErrorCode, FsmSubcode, OpenSubcode, RouteRefreshSubtype, SAFI,
  describeNotification,
  type Capability, type Message, type NotificationMessage, type OpenMessage, type RouteRefreshMessage, type UpdateMessage,
} from './messages.js';
import { afiOf, familyOfAfi } from './nlri.js';
import { UpdatePacker, type EncodingContext } from './packer.js';
import { Parser, peerAsOf } from './parser.js';
import { AdjRibOut, type Advertisement } from './rib.js';
import {
  serializeEndOfRib, serializeKeepalive, serializeNotification, serializeOpen, serializeRouteRefresh,
} from './serializer.js';
import { defaultConnector, TransportError, ttlUnsupportedReason, type Connector } from './transport.js';


export type SessionState = 'Idle' | 'Connect' | 'OpenSent' | 'OpenConfirm' | 'Established';

/** A peer as the session needs it: the BGPPeer fields that matter on the wire. */
export interface PeerConfig {
  /** The BGPPeer name; identifies the session. */
  name: string;
  peerAddress: string;
  peerPort?: number;
  sourceAddress?: string;
  myASN: number;
  /** Exactly one of peerASN / dynamicASN. */
  peerASN?: number;
  dynamicASN?: 'internal' | 'external';
  /** Speak as this AS instead of myASN (FRR's `local-as N no-prepend replace-as`). */
  localASN?: number;
  /** Seconds; default 90 (MetalLB's). 0 = no keepalives and no hold timer. */
  holdTime?: number;
  /** Seconds; default holdTime / 3. */
  keepaliveTime?: number;
  /** Seconds between connection attempts; default MetalLB's back-off (0, 1, 2, 4 … 120 s). */
  connectTime?: number;
  routerID?: string;
  password?: string;
  ebgpMultiHop?: boolean;
  vrf?: string;
  /** Offer graceful restart (RFC 4724) with forwarding state preserved (BGPPeer `enableGracefulRestart`). */
  gracefulRestart?: boolean;
  /** Seconds the peer keeps our routes while we restart (RFC 4724 §3 Restart Time); default 120, FRR's. */
  gracefulRestartTime?: number;
  /** Address families offered; default both. */
  families?: readonly IPFamily[];
  /** The BGPPeer's BFDProfile: a BFD session runs beside this one and its Down takes this one down. */
  bfd?: BfdProfileTimers;
}

/** A BFDProfile's values (milliseconds), as src/config parses them. */
export interface BfdProfileTimers {
  receiveInterval: number;
  transmitInterval: number;
  detectMultiplier: number;
  echoMode: boolean;
  passiveMode: boolean;
  minimumTtl: number;
}

export interface SessionOptions {
  /** The node's name: the last resort for the router ID. */
  nodeName: string;
  logger?: Logger;
  connector?: Connector;
  /** Looks up a peer's `vrf` on this node (default: the kernel's VRF devices). */
  vrfs?: VrfResolver;
  /** Dial + OPEN exchange must finish within this; default 10 s (MetalLB's). */
  connectTimeoutMs?: number;
  /** Routes per flush step, between which the event loop turns; default 20,000. */
  batchSize?: number;
}

/** The peer's graceful restart capability (RFC 4724 §3, RFC 8538 §2). */
export interface PeerGracefulRestart {
  restartTime: number;
  restartState: boolean;
  notification: boolean;
  /** Families for which the peer kept its forwarding state (F bit). */
  forwarding: IPFamily[];
}

/** What was agreed in the OPEN exchange. */
export interface Negotiated {
  localAddress: string;
  localRouterId: string;
  peerRouterId: string;
  peerASN: number;
  ibgp: boolean;
  holdTime: number;
  keepaliveTime: number;
  fourOctetAs: boolean;
  families: IPFamily[];
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  /** The peer's graceful restart capability, when it sent one. */
  peerGracefulRestart?: PeerGracefulRestart;
  /**
   * Graceful restart is in effect: both sides sent the capability. The peer then keeps our routes (stale) when the
   * connection drops without a NOTIFICATION, until we are back and have sent End-of-RIB.
   */
  gracefulRestart: boolean;
  /** Both sides set the N bit (RFC 8538): a NOTIFICATION other than a Hard Reset also keeps our routes at the peer. */
  gracefulNotification: boolean;
  /** The R bit we sent in this session's OPEN. */
  restartState: boolean;
  nextHops: NextHops;
}

export interface SessionStats {
  state: SessionState;
  /** performance.now() of the last state change. */
  since: number;
  opensSent: number;
  opensReceived: number;
  updatesSent: number;
  updatesReceived: number;
  keepalivesSent: number;
  keepalivesReceived: number;
  notificationsSent: number;
  notificationsReceived: number;
  routeRefreshReceived: number;
  /** Families whose End-of-RIB we sent in this session (after the initial advertisement, RFC 4724 §2). */
  endOfRibSent: IPFamily[];
  /** Families whose End-of-RIB the peer sent in this session. */
  endOfRibReceived: IPFamily[];
  /** Prefixes the peer holds from us. */
  announced: number;
  /** Prefixes whose change is not on the wire yet (MetalLB's pending prefixes). */
  pending: number;
  /** Prefixes this session cannot carry (address family not negotiated, or no next hop of that family). */
  unsendable: number;
  /** Times the session reached Established. */
  establishedCount: number;
  lastError?: string;
  negotiated?: Negotiated;
}

export interface SessionEvents {
  state: [state: SessionState, previous: SessionState, reason: string | undefined];
  /** Every pending change has been handed to the socket (after the initial set, End-of-RIB included). */
  advertised: [announced: number];
}

const BACKOFF_MAX_MS = 120_000;
/** FRR's default `bgp graceful-restart restart-time`, what MetalLB's FRR mode offers. */
export const DEFAULT_RESTART_TIME = 120;
/**
 * Cease subcodes that end graceful restart at an RFC 8538 peer (sent as Hard Reset when both sides set the N bit):
 * the RFC's §5.1 list (Maximum Prefixes, Administrative Shutdown, Peer De-configured, Administrative Reset, as FRR
 * does by default) plus BFD Down, whose forwarding path is gone. A SIGTERM'd speaker (Administrative Shutdown) or a
 * removed BGPPeer thus withdraws at once, as without graceful restart; Other Configuration Change (a BGPPeer edit)
 * keeps the routes while the new session comes up.
 */
const HARD_RESET_CEASES: ReadonlySet<number> = new Set([
  CeaseSubcode.MAXIMUM_PREFIXES, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.PEER_DECONFIGURED,
  CeaseSubcode.ADMINISTRATIVE_RESET, CeaseSubcode.HARD_RESET, CeaseSubcode.BFD_DOWN,
]);
const CLOSE_GRACE_MS = 1000;
const HIGH_WATER = 4 * 1024 * 1024;

/** The TTL of a session with no router between us and the peer: a packet that crosses one dies there. */
export const SINGLE_HOP_TTL = 1;
/** The TTL of eBGP multihop and iBGP sessions (FRR's: `ebgp-multihop` without a count, and iBGP peers). */
export const MULTI_HOP_TTL = 255;

/**
 * The TTL our packets to this peer leave with, as FRR sets it: eBGP is single hop (TTL 1, so a peer that is not
 * directly connected is never reached by accident) unless `ebgpMultiHop`; iBGP crosses routers (255). With
 * `dynamicASN` the kind of session is known before the peer's OPEN: `internal` is iBGP.
 */
export function sessionTtl(cfg: Pick<PeerConfig, 'myASN' | 'localASN' | 'peerASN' | 'dynamicASN' | 'ebgpMultiHop'>): number {
  const ibgp = cfg.peerASN !== undefined ? cfg.peerASN === (cfg.localASN ?? cfg.myASN) : cfg.dynamicASN === 'internal';
  return ibgp || cfg.ebgpMultiHop === true ? MULTI_HOP_TTL : SINGLE_HOP_TTL;
}

/** MetalLB's retry schedule: 0 s, then 1, 2, 4 … seconds, at most 120 (internal/bgp/native/backoff.go). */
export function backoffDelay(failures: number, connectTime?: number): number {
  if (failures <= 0) return 0;
  if (connectTime !== undefined && connectTime > 0) return connectTime * 1000;
  return Math.min(1000 * 2 ** (failures - 1), BACKOFF_MAX_MS);
}

const silent = pino({ level: 'silent' });

/**
 * Codes of a failed attempt that mean the node's VRF cannot be used: the VRF lookup's own (VrfError: no such device,
 * not a VRF master, not a device name), a source address outside the VRF (resolveVrf), and the native binding's
 * ENODEV when the device went away between the lookup and SO_BINDTODEVICE.
 */
const VRF_UNUSABLE_CODES: ReadonlySet<string> = new Set(['ENODEV', 'ENOTVRF', 'EINVAL', 'EADDRNOTAVAIL']);

/** How a new Session starts, as the BgpSpeaker owning it knows (defaults: a new process, its routes all known). */
export interface SessionStart {
  /**
   * Set the R bit in the OPEN until this session is first Established. RFC 4724 §4.1: the bit says "the BGP speaker
   * has restarted". We keep no state file: the first session to a peer since this process started is taken as a
   * restart, because from the peer's side that is what it is whenever an earlier process of ours talked to it (a
   * crash, a kill, a pod restart), and the other case (the very first start) costs nothing: the R bit only tells the
   * peer not to wait for our End-of-RIB before sending its own routes, and its stale routes from us, when it has
   * any, are handled by the F bit and our End-of-RIB alone. Later sessions of the same process are not restarts.
   */
  restarting?: boolean;
  /** Every advertisement is known (see Session.setRibComplete); default true. */
  ribComplete?: boolean;
}

export class Session extends EventEmitter<SessionEvents> {
  private _state: SessionState = 'Idle';
  private since = performance.now();
  private generation = 0;
  private socket: Socket | undefined;
  private parser: Parser | undefined;
  private abort: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private lastReceived = 0;
  private failures = 0;
  private stopped = true;
  private bfdSeenUp = false;
  private bfdBlocked = false;
  private negotiated: Negotiated | undefined;
  private packer: UpdatePacker | undefined;
  private rib: AdjRibOut;
  private pumping = false;
  private pumpScheduled = false;
  private endOfRibSent = false;
  private endOfRibReceived: IPFamily[] = [];
  private restarting: boolean;
  private ribComplete: boolean;
  private endOfRibTimer: NodeJS.Timeout | undefined;
  private readonly refreshing = new Set<IPFamily>();
  private unsendable = 0;
  private readonly counters = {
    opensSent: 0, opensReceived: 0, updatesSent: 0, updatesReceived: 0, keepalivesSent: 0, keepalivesReceived: 0,
    notificationsSent: 0, notificationsReceived: 0, routeRefreshReceived: 0, establishedCount: 0,
  };
  private lastError: string | undefined;
  private readonly log: Logger;
  private readonly connector: Connector;
  private readonly connectTimeoutMs: number;
  private readonly batchSize: number;

  /** `rib`: the advertisements gathered before this session existed (see BgpSpeaker). */
  constructor(
    readonly config: PeerConfig,
    private readonly opts: SessionOptions,
    rib?: AdjRibOut,
    start: SessionStart = {},
  ) {
    super();
    this.restarting = start.restarting ?? true;
    this.ribComplete = start.ribComplete ?? true;
    this.rib = rib ?? new AdjRibOut();
    this.log = (opts.logger ?? silent).child({ peer: config.name, peerAddress: `${config.peerAddress}:${this.port}`, ...(config.vrf ? { vrf: config.vrf } : {}) });
    this.connector = opts.connector ?? defaultConnector;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.batchSize = opts.batchSize ?? 20_000;
  }

  get state(): SessionState {
    return this._state;
  }

  get port(): number {
    return this.config.peerPort ?? DEFAULT_PORT;
  }

  /** The AS we speak as. */
  get localAsn(): number {
    return this.config.localASN ?? this.config.myASN;
  }

  get holdTime(): number {
    return this.config.holdTime ?? 90;
  }

  get restartTime(): number {
    return Math.min(this.config.gracefulRestartTime ?? DEFAULT_RESTART_TIME, 0xfff);
  }

  stats(): SessionStats {
    return {
      state: this._state,
      since: this.since,
      ...this.counters,
      endOfRibSent: this.endOfRibSent && this.negotiated ? [...this.negotiated.families] : [],
      endOfRibReceived: [...this.endOfRibReceived],
      announced: this.rib.announced,
      pending: this.rib.pending,
      unsendable: this.unsendable,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.negotiated ? { negotiated: this.negotiated } : {}),
    };
  }

  /** Takes this session's advertisements away (to a session replacing it); it is left with none. */
  detachAdvertisements(): AdjRibOut {
    const rib = this.rib;
    this.rib = new AdjRibOut();
    rib.reset();
    return rib;
  }

  /** What the peer holds from us (prefix texts), for tests and status. */
  announcedPrefixes(): string[] {
    return [...this.rib.sentRoutes()].map((r) => r.text);
  }

  /** Starts dialling (at once; later attempts follow the back-off). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.scheduleConnect(0);
  }

  /**
   * Ends the session for good: a Cease NOTIFICATION with `subcode` (RFC 4486) and, for shutdowns and resets, a
   * message (RFC 9003); no reconnection. Resolves once the connection is closed.
   */
  async stop(subcode: number = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, message = ''): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    if (this._state === 'Idle' || this._state === 'Connect') {
      this.down('stopped', undefined);
      return;
    }
    const closed = socket ? new Promise<void>((resolve) => socket.once('close', () => resolve())) : Promise.resolve();
    let data: Uint8Array = new Uint8Array(0);
    if (message && (subcode === CeaseSubcode.ADMINISTRATIVE_SHUTDOWN || subcode === CeaseSubcode.ADMINISTRATIVE_RESET)) {
      const text = Buffer.from(message, 'utf8').subarray(0, 255);
      data = Buffer.concat([Buffer.from([text.length]), text]);
    }
    this.down('stopped', new NotificationError(ErrorCode.CEASE, subcode, data, message || undefined));
    await closed;
  }

  /**
   * Whether every advertisement this node should make is known (the speaker has decided every Service since it
   * started). Until then the session sends what it has but holds back End-of-RIB: after a restart the peer drops
   * our stale routes at End-of-RIB (RFC 4724 §4.2), so an early one would withdraw Services not decided yet.
   */
  setRibComplete(complete: boolean): void {
    if (this.ribComplete === complete) return;
    this.ribComplete = complete;
    if (complete) {
      clearTimeout(this.endOfRibTimer);
      this.schedulePump();
    }
  }

  /** Replaces what this session advertises; only the difference is sent. Returns the refused advertisements' errors. */
  setAdvertisements(ads: Iterable<Advertisement>): string[] {
    const errors = this.rib.set(ads);
    this.packer?.retain(this.rib.attributeSets());
    this.schedulePump();
    return errors;
  }

  /**
   * BFD state of this peer's BFD session. Down after having been up tears the session down at once (Cease, BFD Down,
   * RFC 9384) and keeps it down until BFD is up again; then it dials at once.
   */
  setBfdState(up: boolean): void {
    if (up) {
      this.bfdSeenUp = true;
      if (!this.bfdBlocked) return;
      this.bfdBlocked = false;
      this.failures = 0;
      if (this._state === 'Idle' && !this.stopped) this.scheduleConnect(0);
      return;
    }
    if (!this.bfdSeenUp || this.bfdBlocked) return;
    this.bfdBlocked = true;
    clearTimeout(this.retryTimer);
    if (this._state !== 'Idle') this.down('BFD session down', new NotificationError(ErrorCode.CEASE, CeaseSubcode.BFD_DOWN, undefined, 'BFD session down'));
  }

  /**
   * This peer's BFD session is not running (removed, or waiting for its VRF to exist): a hold-down by an earlier BFD
   * Down ends, and the session runs as it does before BFD was ever Up. A BFD session that does not run cannot say
   * the path is down: RFC 5882 §3.2 has clients act only on a transition to Down of a session in operation, never on
   * one administratively gone; FRR's bgpd likewise only tears a session down on BFD Up -> Down and does not gate the
   * connection on BFD. Holding it would also deadlock a VRF peer: BFD restarts once the VRF is back, which the
   * BGP session's own connection attempt (through the VRF) is what notices.
   */
  bfdUnavailable(): void {
    this.bfdSeenUp = false;
    if (!this.bfdBlocked) return;
    this.bfdBlocked = false;
    this.failures = 0;
    this.log.info({ event: 'bfdHoldReleased' }, 'BFD session not running: the BGP session is no longer held down by it');
    if (this._state === 'Idle' && !this.stopped) this.scheduleConnect(0);
  }

  private setState(state: SessionState, reason?: string): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.since = performance.now();
    if (state === 'Established') this.log.info({ event: 'sessionUp', negotiated: summary(this.negotiated) }, 'BGP session established');
    else if (previous === 'Established') this.log.warn({ event: 'sessionDown', reason }, 'BGP session down');
    else this.log.debug({ event: 'stateChange', from: previous, to: state, reason }, 'BGP state change');
    this.emit('state', state, previous, reason);
  }

  private scheduleConnect(delayMs: number): void {
    clearTimeout(this.retryTimer);
    if (this.stopped || this.bfdBlocked) return;
    this.retryTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private async connect(): Promise<void> {
    const gen = ++this.generation;
    this.setState('Connect');
    const abort = (this.abort = new AbortController());
    this.connectTimer = setTimeout(() => {
      if (gen !== this.generation) return;
      abort.abort();
      // RFC 4271 §8.2.2: the OPEN exchange timing out is a Hold Timer expiry.
      const err = this.socket ? new NotificationError(ErrorCode.HOLD_TIMER_EXPIRED, 0, undefined, 'no OPEN exchange within the connect timeout') : undefined;
      this.down(`connect timeout (${this.connectTimeoutMs} ms)`, err);
    }, this.connectTimeoutMs);
    let socket: Socket;
    let interfaces: InterfaceTable | undefined;
    try {
      // Looked up at every attempt: a VRF created after the BGPPeer is picked up by the next retry.
      const vrf = this.config.vrf ? this.resolveVrf(this.config.vrf) : undefined;
      if (vrf) interfaces = vrfInterfaceTable(vrf);
      this.warnIfTtlUnsettable();
      socket = await this.connector({
        peerAddress: this.config.peerAddress,
        peerPort: this.port,
        ...(this.config.sourceAddress ? { sourceAddress: this.config.sourceAddress } : {}),
        ...(this.config.password ? { password: this.config.password } : {}),
        ...(vrf ? { vrf: vrf.name, device: vrf.device } : {}),
        ttl: this.ttl,
      }, abort.signal);
    } catch (err) {
      if (gen === this.generation) this.down(this.explainConnectError(err as Error & { code?: string }), undefined, (err as { code?: unknown }).code);
      return;
    }
    if (gen !== this.generation) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    socket.setNoDelay(true);
    const parser = (this.parser = new Parser());
    socket.on('data', (chunk: Buffer) => this.onData(gen, parser, chunk));
    socket.on('error', (err) => {
      if (gen === this.generation) this.down(`connection error: ${err.message}`, undefined);
    });
    socket.on('close', () => {
      if (gen === this.generation) this.down('connection closed by the peer', undefined);
    });
    const localAddress = socket.localAddress ?? '';
    const localRouterId = deriveRouterId({
      ...(this.config.routerID ? { configured: this.config.routerID } : {}), localAddress, nodeName: this.opts.nodeName, ...(interfaces ? { table: interfaces } : {}),
    });
    this.pendingLocal = { localAddress, localRouterId, ...(interfaces ? { interfaces } : {}) };
    this.write(serializeOpen(this.openMessage(localRouterId)));
    this.counters.opensSent++;
    this.setState('OpenSent');
  }

  private pendingLocal: { localAddress: string; localRouterId: string; interfaces?: InterfaceTable } | undefined;

  /** See sessionTtl. */
  get ttl(): number {
    return sessionTtl(this.config);
  }

  private ttlWarned = false;

  private warnIfTtlUnsettable(): void {
    if (this.ttlWarned || this.connector !== defaultConnector) return;
    const reason = ttlUnsupportedReason();
    if (reason === undefined) return;
    this.ttlWarned = true;
    this.log.warn({ event: 'ttlUnsupported', ttl: this.ttl, err: reason }, `BGP packets leave with the system's TTL instead of ${this.ttl}`);
  }

  /**
   * A single-hop eBGP SYN towards a peer behind a router dies there (TTL 1): the router's ICMP Time Exceeded fails
   * the connect with EHOSTUNREACH, which alone would not tell the operator what to change.
   */
  private explainConnectError(err: Error & { code?: string }): string {
    if (err.code !== 'EHOSTUNREACH' || this.ttl !== SINGLE_HOP_TTL) return err.message;
    return `${err.message}; single-hop eBGP sends with TTL 1, a peer that is not directly connected needs ebgpMultiHop: true`;
  }

  /** The peer's VRF on this node; a missing VRF, or a source address outside it, fails the attempt with why. */
  private resolveVrf(name: string): Vrf {
    let vrf: Vrf;
    try {
      vrf = (this.opts.vrfs ?? defaultVrfs)(name);
    } catch (err) {
      throw new TransportError((err as Error).message, (err as VrfError).code ?? 'ENODEV');
    }
    const src = this.config.sourceAddress;
    if (src && !interfaceOf(src, vrfInterfaceTable(vrf))) {
      throw new TransportError(`source address ${src} is not on an interface of VRF ${JSON.stringify(name)} (${vrf.interfaces.join(', ') || 'it has none'})`, 'EADDRNOTAVAIL');
    }
    return vrf;
  }

  private openMessage(bgpIdentifier: string): Omit<OpenMessage, 'type'> {
    const families = this.config.families ?? ['IPv4', 'IPv6'];
    const capabilities: Capability[] = families.map((f) => ({ kind: 'multiprotocol', afi: afiOf(f), safi: SAFI.UNICAST }));
    capabilities.push({ kind: 'route-refresh' }, { kind: 'enhanced-route-refresh' }, { kind: 'four-octet-as', asn: this.localAsn });
    if (this.config.gracefulRestart) {
      capabilities.push({
        kind: 'graceful-restart',
        restartState: this.restarting,
        notification: true,
        restartTime: this.restartTime,
        // The F bit is honest: the node forwards (kube-proxy, the kernel) whether this process runs or not, so
        // traffic the peer keeps sending along our stale routes while we restart still reaches the Service.
        families: families.map((f) => ({ afi: afiOf(f), safi: SAFI.UNICAST, forwardingState: true })),
      });
    }
    return {
      version: BGP_VERSION,
      myAutonomousSystem: this.localAsn > 0xffff ? AS_TRANS : this.localAsn,
      holdTime: this.holdTime,
      bgpIdentifier,
      capabilities,
    };
  }

  private onData(gen: number, parser: Parser, chunk: Buffer): void {
    if (gen !== this.generation) return;
    this.lastReceived = performance.now();
    try {
      parser.parse(chunk, (msg) => {
        if (gen === this.generation) this.onMessage(msg);
      });
    } catch (err) {
      if (gen !== this.generation) return;
      if (err instanceof NotificationError) {
        this.log.warn({ event: 'malformedMessage', code: err.code, subcode: err.subcode }, `received a malformed message: ${err.message}`);
        this.down(`malformed message: ${err.message}`, err);
        return;
      }
      this.log.error({ event: 'internalError', err }, 'BGP session failed on a received message');
      this.down(`internal error: ${(err as Error).message}`, new NotificationError(ErrorCode.CEASE, 0));
    }
  }

  private onMessage(msg: Message): void {
    if (msg.type === 'notification') return this.onNotification(msg);
    switch (this._state) {
      case 'OpenSent':
        if (msg.type === 'open') return this.onOpen(msg);
        throw new NotificationError(ErrorCode.FSM, FsmSubcode.UNEXPECTED_IN_OPENSENT, undefined, `${msg.type} before OPEN`);
      case 'OpenConfirm':
        if (msg.type === 'keepalive') {
          this.counters.keepalivesReceived++;
          return this.onEstablished();
        }
        throw new NotificationError(ErrorCode.FSM, FsmSubcode.UNEXPECTED_IN_OPENCONFIRM, undefined, `${msg.type} in OpenConfirm`);
      case 'Established':
        switch (msg.type) {
          case 'keepalive':
            this.counters.keepalivesReceived++;
            return;
          case 'update':
            return this.onUpdate(msg);
          case 'route-refresh':
            return this.onRouteRefresh(msg);
          case 'open':
            throw new NotificationError(ErrorCode.FSM, FsmSubcode.UNEXPECTED_IN_ESTABLISHED, undefined, 'OPEN in Established');
        }
        return;
      default:
        return;
    }
  }

  private onNotification(n: NotificationMessage): void {
    this.counters.notificationsReceived++;
    let text = describeNotification(n.errorCode, n.errorSubcode);
    // RFC 9003: a shutdown communication (length octet + UTF-8) after Cease / Administrative Shutdown or Reset.
    if (n.errorCode === ErrorCode.CEASE && (n.errorSubcode === 2 || n.errorSubcode === 4) && n.data.length > 0 && n.data[0]! + 1 <= n.data.length) {
      const message = Buffer.from(n.data.subarray(1, 1 + n.data[0]!)).toString('utf8');
      if (message) text += `: "${message}"`;
    }
    this.log.warn({ event: 'notificationReceived', code: n.errorCode, subcode: n.errorSubcode, data: Buffer.from(n.data).toString('hex') }, `peer sent NOTIFICATION: ${text}`);
    this.down(`peer sent NOTIFICATION: ${text}`, undefined);
  }

  private onOpen(open: OpenMessage): void {
    this.counters.opensReceived++;
    const peerASN = peerAsOf(open);
    const local = this.pendingLocal!;
    const cfg = this.config;
    if (cfg.peerASN !== undefined && peerASN !== cfg.peerASN) {
      throw new NotificationError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS, undefined, `peer is AS ${peerASN}, configured peerASN is ${cfg.peerASN}`);
    }
    if (cfg.peerASN === undefined && cfg.dynamicASN === 'internal' && peerASN !== this.localAsn) {
      throw new NotificationError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS, undefined, `peer is AS ${peerASN}, dynamicASN internal wants ${this.localAsn}`);
    }
    if (cfg.peerASN === undefined && cfg.dynamicASN === 'external' && peerASN === this.localAsn) {
      throw new NotificationError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS, undefined, `peer is AS ${peerASN}, our own, but dynamicASN is external`);
    }
    const ibgp = peerASN === this.localAsn;
    // RFC 6286 §2.2: within an AS the two identifiers must differ.
    if (ibgp && open.bgpIdentifier === local.localRouterId) {
      throw new NotificationError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_BGP_IDENTIFIER, undefined, `peer uses our BGP identifier ${open.bgpIdentifier}`);
    }
    const ours = this.config.families ?? ['IPv4', 'IPv6'];
    const peerMp = open.capabilities.filter((c): c is Extract<Capability, { kind: 'multiprotocol' }> => c.kind === 'multiprotocol');
    // RFC 4760 §8: without the capability, only IPv4 unicast is spoken.
    const theirs = peerMp.length === 0
      ? new Set<IPFamily>(['IPv4'])
      : new Set(peerMp.filter((c) => c.safi === SAFI.UNICAST).map((c) => familyOfAfi(c.afi)).filter((f): f is IPFamily => f !== undefined));
    const families = ours.filter((f) => theirs.has(f));
    if (families.length === 0) {
      const data = Buffer.concat(ours.map((f) => Buffer.from([1, 4, 0, afiOf(f), 0, SAFI.UNICAST])));
      throw new NotificationError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSUPPORTED_CAPABILITY, data, `no address family in common (we offer ${ours.join(', ')})`);
    }
    const holdTime = Math.min(this.holdTime, open.holdTime);
    let keepaliveTime = this.config.keepaliveTime ?? this.holdTime / 3;
    if (holdTime < this.holdTime) keepaliveTime = Math.min(keepaliveTime, holdTime / 3);
    if (holdTime === 0) keepaliveTime = 0;
    const fourOctetAs = open.capabilities.some((c) => c.kind === 'four-octet-as');
    const gr = open.capabilities.find((c): c is Extract<Capability, { kind: 'graceful-restart' }> => c.kind === 'graceful-restart');
    this.negotiated = {
      localAddress: local.localAddress,
      localRouterId: local.localRouterId,
      peerRouterId: open.bgpIdentifier,
      peerASN,
      ibgp,
      holdTime,
      keepaliveTime,
      fourOctetAs,
      families,
      routeRefresh: open.capabilities.some((c) => c.kind === 'route-refresh'),
      enhancedRouteRefresh: open.capabilities.some((c) => c.kind === 'enhanced-route-refresh'),
      ...(gr ? {
        peerGracefulRestart: {
          restartTime: gr.restartTime, restartState: gr.restartState, notification: gr.notification,
          forwarding: gr.families.filter((f) => f.forwardingState && f.safi === SAFI.UNICAST).map((f) => familyOfAfi(f.afi)).filter((f): f is IPFamily => f !== undefined),
        },
      } : {}),
      gracefulRestart: gr !== undefined && cfg.gracefulRestart === true,
      gracefulNotification: gr !== undefined && gr.notification && cfg.gracefulRestart === true,
      restartState: cfg.gracefulRestart === true && this.restarting,
      nextHops: deriveNextHops(local.localAddress, cfg.peerAddress, local.interfaces),
    };
    this.parser!.options.fourOctetAs = fourOctetAs;
    this.write(serializeKeepalive());
    this.counters.keepalivesSent++;
    this.setState('OpenConfirm');
    this.armHoldTimer();
  }

  private onEstablished(): void {
    const n = this.negotiated!;
    clearTimeout(this.connectTimer);
    this.failures = 0;
    this.counters.establishedCount++;
    const ctx: EncodingContext = {
      ibgp: n.ibgp,
      localAsn: this.localAsn,
      fourOctetAs: n.fourOctetAs,
      ...(n.nextHops.v4 ? { nextHopV4: n.nextHops.v4 } : {}),
      ...(n.nextHops.v6 ? { nextHopV6: n.nextHops.v6 } : {}),
    };
    this.packer = new UpdatePacker(ctx);
    this.rib.reset();
    this.endOfRibSent = false;
    this.endOfRibReceived = [];
    this.unsendable = 0;
    this.restarting = false;
    if (!this.ribComplete) {
      // Not forever: a speaker that cannot decide its Services (no API server) must not keep the peer's stale routes
      // past the time we asked it to keep them.
      const gen = this.generation;
      this.endOfRibTimer = setTimeout(() => {
        if (gen !== this.generation || this.ribComplete) return;
        this.log.warn({ event: 'endOfRibForced', afterSeconds: this.restartTime }, 'not every Service decided yet: End-of-RIB sent anyway');
        this.ribComplete = true;
        this.schedulePump();
      }, this.restartTime * 1000);
    }
    if (n.keepaliveTime > 0) {
      const gen = this.generation;
      this.keepaliveTimer = setInterval(() => {
        if (gen !== this.generation) return;
        this.write(serializeKeepalive());
        this.counters.keepalivesSent++;
      }, n.keepaliveTime * 1000);
    }
    this.setState('Established');
    this.schedulePump();
  }

  private armHoldTimer(): void {
    clearTimeout(this.holdTimer);
    const hold = this.negotiated?.holdTime ?? 0;
    if (hold === 0) return;
    const gen = this.generation;
    const holdMs = hold * 1000;
    const check = (): void => {
      if (gen !== this.generation) return;
      const idle = performance.now() - this.lastReceived;
      if (idle >= holdMs) {
        this.down(`hold timer expired (${hold} s)`, new NotificationError(ErrorCode.HOLD_TIMER_EXPIRED, 0));
        return;
      }
      this.holdTimer = setTimeout(check, holdMs - idle);
    };
    this.holdTimer = setTimeout(check, holdMs);
  }

  private onUpdate(u: UpdateMessage): void {
    this.counters.updatesReceived++;
    const eor = endOfRibFamily(u);
    if (eor) {
      // RFC 4724 §2. We learn no routes, so there is no route selection to finish; the peer is in sync with us.
      if (!this.endOfRibReceived.includes(eor)) this.endOfRibReceived.push(eor);
      this.log.info({ event: 'endOfRibReceived', family: eor }, 'peer sent End-of-RIB');
      return;
    }
    // We learn no routes (as MetalLB); RFC 7606 problems are worth a line, they do not end the session.
    if (u.errors) {
      this.log.warn({ event: 'updateError', errors: u.errors }, `peer sent an UPDATE with errors handled by ${u.errors.map((e) => e.action).join(', ')}`);
    }
  }

  // RFC 2918 §4, RFC 7313 §4
  private onRouteRefresh(m: RouteRefreshMessage): void {
    this.counters.routeRefreshReceived++;
    const family = familyOfAfi(m.afi);
    const n = this.negotiated!;
    if (!family || m.safi !== SAFI.UNICAST || !n.families.includes(family)) {
      this.log.info({ event: 'routeRefreshIgnored', afi: m.afi, safi: m.safi }, 'ROUTE-REFRESH for an address family not negotiated: ignored');
      return;
    }
    if (m.subtype !== RouteRefreshSubtype.NORMAL) return; // BoRR/EoRR demarcate the peer's own re-advertisement
    this.log.info({ event: 'routeRefresh', family }, 'peer asked for our routes again');
    if (n.enhancedRouteRefresh) {
      this.write(serializeRouteRefresh({ afi: m.afi, subtype: RouteRefreshSubtype.BEGIN, safi: m.safi }));
      this.refreshing.add(family);
    }
    this.rib.resend(family);
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this._state !== 'Established') return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  /** Sends pending changes in batches, yielding between them and waiting when the socket is backed up. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const gen = this.generation;
    try {
      while (gen === this.generation && this._state === 'Established') {
        const packer = this.packer!;
        const socket = this.socket!;
        if (this.rib.pending > 0) {
          const before = packer.messages;
          const r = this.rib.flush(packer, new Set(this.negotiated!.families), this.batchSize);
          if (r.unsendable.length > 0) {
            this.unsendable += r.unsendable.length;
            this.log.warn({ event: 'unsendablePrefixes', count: r.unsendable.length, examples: r.unsendable.slice(0, 5).map((x) => x.text), families: this.negotiated!.families },
              'prefixes this session cannot carry (address family not negotiated, or no next hop of that family)');
          }
          this.counters.updatesSent += packer.messages - before;
        }
        if (this.rib.pending === 0) this.finishRound(packer);
        for (const b of packer.take()) socket.write(b);
        if (this.rib.pending === 0) {
          this.emit('advertised', this.rib.announced);
          break;
        }
        if (socket.writableLength > HIGH_WATER) await drained(socket);
        else await nextTurn();
      }
    } finally {
      this.pumping = false;
    }
  }

  /** After the initial advertisement: End-of-RIB per family (RFC 4724 §2); after a refresh: EoRR (RFC 7313 §4). */
  private finishRound(packer: UpdatePacker): void {
    const n = this.negotiated!;
    if (!this.endOfRibSent && this.ribComplete) {
      this.endOfRibSent = true;
      if (n.gracefulRestart) this.log.info({ event: 'endOfRibSent', families: n.families, announced: this.rib.announced }, 'End-of-RIB sent: the peer drops our routes it still holds as stale');
      for (const f of n.families) packer.raw(serializeEndOfRib(afiOf(f), SAFI.UNICAST));
    }
    for (const f of this.refreshing) packer.raw(serializeRouteRefresh({ afi: afiOf(f), subtype: RouteRefreshSubtype.END, safi: SAFI.UNICAST }));
    this.refreshing.clear();
  }

  private write(buf: Buffer): void {
    this.socket?.write(buf);
  }

  /**
   * Leaves the connection: sends `notification` first when there is one (then half-closes; the socket is destroyed
   * after a grace period), forgets everything negotiated, and schedules the next attempt unless stopped.
   */
  private down(reason: string, notification: NotificationError | undefined, code?: unknown): void {
    const wasEstablished = this._state === 'Established';
    // RFC 8538 §3: with the N bit on both sides, a Cease that must end graceful restart goes as a Hard Reset
    // carrying the original code, subcode and data.
    if (notification && this.negotiated?.gracefulNotification && notification.code === ErrorCode.CEASE && HARD_RESET_CEASES.has(notification.subcode) &&
      notification.subcode !== CeaseSubcode.HARD_RESET) {
      notification = new NotificationError(ErrorCode.CEASE, CeaseSubcode.HARD_RESET,
        Buffer.concat([Buffer.from([notification.code, notification.subcode]), notification.data]), `hard reset for ${notification.message}`);
    }
    this.generation++;
    clearTimeout(this.connectTimer);
    clearTimeout(this.endOfRibTimer);
    clearTimeout(this.holdTimer);
    clearInterval(this.keepaliveTimer);
    this.abort?.abort();
    this.abort = undefined;
    this.parser?.stop();
    this.parser = undefined;
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      if (notification && !socket.destroyed) {
        this.counters.notificationsSent++;
        this.log.info({ event: 'notificationSent', code: notification.code, subcode: notification.subcode }, `sending NOTIFICATION: ${notification.message}`);
        socket.end(serializeNotification({ errorCode: notification.code, errorSubcode: notification.subcode, data: notification.data }));
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      } else {
        socket.destroy();
      }
    }
    this.negotiated = undefined;
    this.packer = undefined;
    this.pendingLocal = undefined;
    this.refreshing.clear();
    this.rib.reset();
    const repeated = reason === this.lastError;
    if (reason !== 'stopped') this.lastError = reason;
    this.setState('Idle', reason);
    if (this.stopped) return;
    // A session that was up comes back at once; failed attempts back off.
    if (wasEstablished) this.failures = 0;
    else this.failures++;
    const delay = backoffDelay(this.failures, this.config.connectTime);
    if (!wasEstablished) this.log.debug({ event: 'retry', inMs: delay, reason }, 'BGP connection failed; retrying');
    // A node-side problem the operator must fix (no such VRF, a source address outside it) is said once, loudly.
    // Decided from the error's code, not its text: a refused or timed-out connection in a VRF names the VRF too.
    if (!repeated && this.config.vrf && typeof code === 'string' && VRF_UNUSABLE_CODES.has(code)) {
      this.log.warn({ event: 'vrfUnusable', code, reason }, `BGP session cannot start: ${reason}`);
    }
    this.scheduleConnect(delay);
  }
}

/** The family of an End-of-RIB marker (RFC 4724 §2), or undefined for any other UPDATE. */
export function endOfRibFamily(u: UpdateMessage): IPFamily | undefined {
  if (u.nlri.length > 0 || u.withdrawnRoutes.length > 0) return undefined;
  if (u.pathAttributes.length === 0) return 'IPv4';
  const [a] = u.pathAttributes;
  if (u.pathAttributes.length === 1 && a!.kind === 'mp-unreach-nlri' && a.withdrawnRoutes.length === 0 && a.safi === SAFI.UNICAST) return familyOfAfi(a.afi);
  return undefined;
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

function summary(n: Negotiated | undefined): Record<string, unknown> | undefined {
  if (!n) return undefined;
  return {
    peerASN: n.peerASN, peerRouterId: n.peerRouterId, localRouterId: n.localRouterId, localAddress: n.localAddress, holdTime: n.holdTime,
    keepaliveTime: n.keepaliveTime, families: n.families, fourOctetAs: n.fourOctetAs, ibgp: n.ibgp,
  };
}

