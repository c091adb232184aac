// Runs BFD sessions over UDP (RFC 5881 single hop on port 3784, RFC 5883 multihop on 4784): packets leave from a
// port of their own per session (49152–65535) with TTL 255, and arrive on the shared well-known port, where they are
// matched to a session by Your Discriminator or, before the peer knows ours, by source address. Thread-agnostic:
// the BfdManager runs it in a worker thread so that a busy main event loop cannot delay packets.
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIPv6 } from 'node:net';
import { formatIP, parseIP } from '../../net/ip.js';
import { bindToDevice } from '../../net/tcp-md5.js';
import { attachMinimumTtl } from '../../net/socket-filter.js';
import { randomInt } from 'node:crypto';
import pino from 'pino';
import type { Logger } from '../../log.js';
import { MULTI_HOP_PORT, SINGLE_HOP_PORT, SOURCE_PORT_MAX, SOURCE_PORT_MIN, decodeControl, type StateName } from './packet.js';
import { BfdSession, realTimers, type BfdSessionStatus, type BfdTimers, type TimerHost } from './session.js';

export interface BfdSessionConfig extends BfdTimers {
  /** Identifies the session (the BGPPeer name). */
  key: string;
  peerAddress: string;
  /** Source address; default: whatever the kernel picks. */
  localAddress?: string;
  /** RFC 5883 (port 4784) instead of RFC 5881 (port 3784). */
  multihop: boolean;
  /** The BGPPeer's VRF (status, logs); `device` is what the sockets are bound to. */
  vrf?: string;
  /** Bind this session's sockets to this device (SO_BINDTODEVICE): the VRF's master device. */
  device?: string;
  /** Accepted for MetalLB compatibility; echo is not implemented (we advertise Required Min Echo RX 0). */
  echoMode?: boolean;
  /**
   * Multihop only: the least TTL (hop limit) a packet may arrive with (the BFDProfile's minimumTtl); unset: any.
   * Sessions sharing a listener (family, VRF) get the lowest of theirs. Single-hop packets must arrive with 255.
   */
  minimumTtl?: number;
}

export interface BfdStatus extends BfdSessionStatus {
  key: string;
  peerAddress: string;
  multihop: boolean;
  vrf?: string;
  /** Why the session has no sockets (it is Down and tried again with back-off), e.g. its VRF device is missing. */
  error?: string;
  /** Failed attempts to start it so far (with `error`). */
  attempts?: number;
}

export interface BfdEngineOptions {
  /** Ports to listen on (tests move them off the well-known ones). */
  ports?: { singleHop: number; multiHop: number };
  /** Where devices' ifindex is read (default /sys/class/net). */
  sysfs?: string;
  /** How often bound devices are checked for having been made again (default 1000 ms). */
  devicePollMs?: number;
}

/**
 * `remoteState` is the peer's state as last heard: a Down with the peer in AdminDown is the peer taking the session
 * down on purpose, not a failure (RFC 5882 §3.2); a local AdminDown is ours (the session removed or the engine closing).
 */
export type BfdStateListener = (key: string, state: StateName, diag: number, previous: StateName, remoteState: StateName) => void;

interface Running {
  config: BfdSessionConfig;
  session: BfdSession;
  tx: Socket;
}

/** A session whose sockets could not be made: tried again with back-off, and at once when its device appears. */
interface Failed {
  config: BfdSessionConfig;
  attempts: number;
  error: string;
  timer: unknown;
}

/** Back-off between attempts to start a failed session: 1 s doubling to 30 s. */
export const retryDelayMs = (attempts: number): number => Math.min(1000 * 2 ** Math.max(0, attempts - 1), 30_000);

const silent = pino({ level: 'silent' });

/** One spelling per address, so a datagram's source compares equal to the configured peer. */
function canonical(address: string): string {
  const ip = parseIP(address.split('%')[0] ?? '');
  return ip ? formatIP(ip) : address;
}
const TTL = 255;

/** Closing a dgram socket twice throws. */
function closeQuietly(s: Socket): void {
  try {
    s.close();
  } catch {
    // closed already
  }
}

export class BfdEngine {
  private readonly sessions = new Map<string, Running>();
  private readonly byDiscriminator = new Map<number, Running>();
  private readonly rx = new Map<string, Socket>();
  private readonly failed = new Map<string, Failed>();
  /** ifindex of each device sockets are bound to, as last seen (undefined: the device is missing). */
  private readonly deviceIndex = new Map<string, number | undefined>();
  private devicePoll: NodeJS.Timeout | undefined;
  /** configure() and retries run one at a time, so that a retry never races a reconfiguration of its session. */
  private serial: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly ports: { singleHop: number; multiHop: number };
  private readonly sysfs: string;
  private readonly devicePollMs: number;

  constructor(
    private readonly onState: BfdStateListener,
    private readonly log: Logger = silent,
    private readonly host: TimerHost = realTimers,
    opts: BfdEngineOptions['ports'] | BfdEngineOptions = {},
  ) {
    const o: BfdEngineOptions = 'singleHop' in opts ? { ports: opts } : opts;
    this.ports = o.ports ?? { singleHop: SINGLE_HOP_PORT, multiHop: MULTI_HOP_PORT };
    this.sysfs = o.sysfs ?? '/sys/class/net';
    this.devicePollMs = o.devicePollMs ?? 1000;
  }

  private run<T>(op: () => Promise<T>): Promise<T> {
    const done = this.serial.then(op);
    this.serial = done.then(() => undefined, () => undefined);
    return done;
  }

  /** The sessions wanted: new ones start, removed ones say AdminDown and stop, changed timers go through a Poll. */
  configure(configs: readonly BfdSessionConfig[]): Promise<void> {
    return this.run(() => this.reconfigure(configs));
  }

  private async reconfigure(configs: readonly BfdSessionConfig[]): Promise<void> {
    if (this.closed) return;
    const wanted = new Map(configs.map((c) => [c.key, c]));
    // Sessions still failing are tried again below, at once, with what is wanted now.
    const previousAttempts = new Map<string, Failed>();
    for (const [key, f] of this.failed) {
      this.host.clearTimer(f.timer);
      if (wanted.has(key)) previousAttempts.set(key, f);
    }
    this.failed.clear();
    for (const [key, r] of this.sessions) {
      const next = wanted.get(key);
      if (next && canonical(next.peerAddress) === r.config.peerAddress && next.multihop === r.config.multihop && next.localAddress === r.config.localAddress &&
        next.device === r.config.device) continue;
      this.remove(key);
    }
    for (const c of configs) {
      const have = this.sessions.get(c.key);
      if (have) {
        have.session.setTimers(c);
        have.config = c;
        continue;
      }
      try {
        await this.add(c);
      } catch (err) {
        // One session that cannot have its sockets (its VRF device went away, no privilege) must not keep the others
        // from starting; it is tried again on its own.
        this.failedToStart(c, err as Error, previousAttempts.get(c.key));
      }
    }
    this.closeUnusedListeners();
    this.watchDevices();
    this.applyTtlFilters();
  }

  /** Records a failed start, says why (loudly the first time and when the reason changes), and schedules a retry. */
  private failedToStart(config: BfdSessionConfig, err: Error, previous: Failed | undefined): void {
    const attempts = (previous?.attempts ?? 0) + 1;
    const delay = retryDelayMs(attempts);
    const fields = { event: 'bfdSessionFailed', peer: config.key, peerAddress: config.peerAddress, ...(config.vrf ? { vrf: config.vrf } : {}),
      ...(config.device ? { device: config.device } : {}), err: err.message, code: (err as NodeJS.ErrnoException).code, attempts, retryInMs: delay };
    if (previous?.error === err.message) this.log.debug(fields, 'BFD session still cannot be started');
    else this.log.warn(fields, 'BFD session could not be started; retrying');
    const f: Failed = { config, attempts, error: err.message, timer: undefined };
    f.timer = this.host.setTimer(() => void this.retry(config.key, f), delay);
    (f.timer as { unref?: () => void } | undefined)?.unref?.();
    this.failed.set(config.key, f);
  }

  private retry(key: string, f: Failed): Promise<void> {
    return this.run(async () => {
      if (this.closed || this.failed.get(key) !== f) return;
      this.host.clearTimer(f.timer);
      this.failed.delete(key);
      try {
        await this.add(f.config);
      } catch (err) {
        this.failedToStart(f.config, err as Error, f);
        return;
      }
      this.log.info({ event: 'bfdSessionStarted', peer: key, ...(f.config.vrf ? { vrf: f.config.vrf } : {}), attempts: f.attempts + 1 },
        'BFD session started after failed attempts');
      this.watchDevices();
    });
  }

  status(): BfdStatus[] {
    const running = [...this.sessions.values()].map((r) => ({
      key: r.config.key, peerAddress: r.config.peerAddress, multihop: r.config.multihop, ...(r.config.vrf ? { vrf: r.config.vrf } : {}), ...r.session.status(),
    }));
    const failing = [...this.failed.values()].map(({ config: c, error, attempts }): BfdStatus => ({
      key: c.key, peerAddress: canonical(c.peerAddress), multihop: c.multihop, ...(c.vrf ? { vrf: c.vrf } : {}),
      state: 'Down', remoteState: 'Down', localDiag: 0, localDiscriminator: 0, remoteDiscriminator: 0, txIntervalMs: 0, detectionTimeMs: 0,
      packetsSent: 0, packetsReceived: 0, upEvents: 0, downEvents: 0, pollActive: false, error, attempts,
    }));
    return [...running, ...failing];
  }

  /**
   * Every session says AdminDown; resolves once they have for a Detection Time, or after `lingerMs` (default 1 s: a
   * stopping process should not wait for slow timers), whichever is first.
   */
  close(lingerMs = 1000): Promise<void> {
    // Said at once, so that queued retries and configurations do nothing; done after the one in progress.
    this.closed = true;
    return this.run(async () => {
      this.shutdown();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(this.stopping.values()), new Promise<void>((resolve) => (timer = setTimeout(resolve, lingerMs)))]);
      clearTimeout(timer);
      for (const r of this.stopping.keys()) {
        r.session.silence();
        closeQuietly(r.tx);
      }
      this.stopping.clear();
    });
  }

  private shutdown(): void {
    for (const f of this.failed.values()) this.host.clearTimer(f.timer);
    this.failed.clear();
    clearInterval(this.devicePoll);
    this.devicePoll = undefined;
    for (const key of [...this.sessions.keys()]) this.remove(key);
    for (const s of this.rx.values()) s.close();
    this.rx.clear();
  }

  private ifindex(device: string): number | undefined {
    try {
      return Number(readFileSync(join(this.sysfs, device, 'ifindex'), 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  /**
   * Watches the devices sockets are bound to (sysfs, no netlink in Node): SO_BINDTODEVICE holds an ifindex, so a
   * device deleted and made again (a VRF re-created) leaves our sockets bound to nothing. Sends notice (ENODEV), but a
   * passive session whose peer went silent sends nothing and its listener hears nothing, so the device's return is
   * what must rebind them; it also starts at once the sessions that failed for want of it.
   */
  private watchDevices(): void {
    const devices = new Set<string>();
    for (const r of this.sessions.values()) if (r.config.device) devices.add(r.config.device);
    for (const f of this.failed.values()) if (f.config.device) devices.add(f.config.device);
    for (const d of this.deviceIndex.keys()) if (!devices.has(d)) this.deviceIndex.delete(d);
    for (const d of devices) if (!this.deviceIndex.has(d)) this.deviceIndex.set(d, this.ifindex(d));
    if (devices.size === 0 || this.closed) {
      clearInterval(this.devicePoll);
      this.devicePoll = undefined;
      return;
    }
    this.devicePoll ??= setInterval(() => this.pollDevices(), this.devicePollMs);
    this.devicePoll.unref?.();
  }

  private pollDevices(): void {
    for (const [device, seen] of this.deviceIndex) {
      const now = this.ifindex(device);
      if (now === seen) continue;
      this.deviceIndex.set(device, now);
      if (now === undefined) {
        this.log.info({ event: 'bfdDeviceGone', device }, 'a device BFD sessions are bound to is gone');
        continue;
      }
      this.rebindDevice(device, seen);
      for (const [key, f] of this.failed) if (f.config.device === device) void this.retry(key, f);
    }
  }

  /** Binds every socket of `device` again, by name: the kernel takes the device's new ifindex. */
  private rebindDevice(device: string, previousIndex: number | undefined): void {
    const sockets: Socket[] = [];
    for (const r of this.sessions.values()) if (r.config.device === device) sockets.push(r.tx);
    for (const [key, s] of this.rx) if (key.split('/')[2] === device) sockets.push(s);
    if (sockets.length === 0) return;
    try {
      for (const s of sockets) bindToDevice(s, device);
    } catch (err) {
      // Gone again already: the next change of its ifindex tries again.
      this.deviceIndex.set(device, undefined);
      this.log.debug({ event: 'bfdRebindFailed', device, err: (err as Error).message }, 'BFD sockets not bound again yet');
      return;
    }
    this.log.info({ event: 'bfdRebound', device, sockets: sockets.length, ...(previousIndex !== undefined ? { previousIndex } : {}) },
      'BFD sockets bound again to a re-created device');
  }

  private async add(config: BfdSessionConfig): Promise<void> {
    const c = { ...config, peerAddress: canonical(config.peerAddress) };
    const family = isIPv6(c.peerAddress) ? 'udp6' : 'udp4';
    await this.listen(family, c.multihop ? this.ports.multiHop : this.ports.singleHop, c.device, c.multihop ? c.minimumTtl ?? 1 : 255);
    const tx = await this.bindSource(family, c.localAddress, c.device);
    const port = c.multihop ? this.ports.multiHop : this.ports.singleHop;
    let discr: number;
    do discr = randomInt(1, 0xffffffff); while (this.byDiscriminator.has(discr));
    const session = new BfdSession(discr, c, (packet) => {
      tx.send(packet, port, c.peerAddress, (err) => {
        // A cut link shows up here as EHOSTUNREACH/ENETUNREACH; the detection timer is what decides.
        if (err) this.log.debug({ event: 'bfdSendFailed', peer: c.key, err: err.message }, 'BFD packet not sent');
        if (c.device && (err as NodeJS.ErrnoException | null)?.code === 'ENODEV') this.rebind(c.key, tx);
      });
    }, (state, diag, previous, remoteState) => {
      this.log.info({ event: 'bfdState', peer: c.key, peerAddress: c.peerAddress, ...(c.vrf ? { vrf: c.vrf } : {}), state, previous, diag, remoteState },
        `BFD session ${previous} -> ${state}`);
      this.onState(c.key, state, diag, previous, remoteState);
    }, this.host);
    const r: Running = { config: c, session, tx };
    this.sessions.set(c.key, r);
    this.byDiscriminator.set(discr, r);
    if (c.echoMode) this.log.info({ peer: c.key }, 'BFD echo mode is not implemented; asynchronous mode only');
    this.applyTtlFilters();
    session.start();
  }

  /**
   * SO_BINDTODEVICE holds the device's index, not its name: once the VRF device is deleted, the session's sockets
   * stay bound to an index that no longer exists (sends fail with ENODEV, nothing is received), even after a VRF of
   * the same name is made again, and the BGP session, held down by BFD, would wait for ever. Binding again by name
   * takes the new device; while there is none, it fails and is tried again at the next packet.
   */
  private rebind(key: string, tx: Socket): void {
    const r = this.sessions.get(key);
    if (!r || r.tx !== tx || !r.config.device) return;
    const { device, vrf, multihop, peerAddress } = r.config;
    const family = isIPv6(peerAddress) ? 'udp6' : 'udp4';
    const listener = this.rx.get(`${family}/${multihop ? this.ports.multiHop : this.ports.singleHop}/${device}`);
    try {
      bindToDevice(tx, device);
      if (listener) bindToDevice(listener, device);
    } catch (err) {
      this.log.debug({ event: 'bfdRebindFailed', peer: key, device, err: (err as Error).message }, 'BFD sockets not bound again yet');
      return;
    }
    this.log.info({ event: 'bfdRebound', peer: key, device, ...(vrf ? { vrf } : {}) }, 'BFD sockets bound again to a re-created VRF device');
  }

  private remove(key: string): void {
    const r = this.sessions.get(key);
    if (!r) return;
    this.sessions.delete(key);
    this.byDiscriminator.delete(r.session.localDiscr);
    // The socket stays until the AdminDown packets have gone (a Detection Time), then a moment for the last to leave.
    const done = r.session.stop().then(() => new Promise<void>((resolve) => setTimeout(resolve, 100).unref())).then(() => {
      if (this.stopping.delete(r)) closeQuietly(r.tx);
    });
    this.stopping.set(r, done);
  }

  /** Removed sessions still saying AdminDown, and when they are done. */
  private readonly stopping = new Map<Running, Promise<void>>();

  /** A socket of its own per session, from 49152–65535 (RFC 5881 §4), TTL 255 (§5). */
  private async bindSource(family: 'udp4' | 'udp6', address: string | undefined, device: string | undefined): Promise<Socket> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const s = createSocket({ type: family });
      const port = randomInt(SOURCE_PORT_MIN, SOURCE_PORT_MAX + 1);
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind({ port, ...(address ? { address } : {}), exclusive: true }, () => {
            s.off('error', reject);
            resolve();
          });
        });
        // The port is ours alone (exclusive), so binding to the device after bind() races with nobody.
        if (device) bindToDevice(s, device);
        s.setTTL(TTL);
        s.on('error', (err) => this.log.warn({ event: 'bfdSocketError', err: err.message }, 'BFD socket error'));
        // Replies come to the well-known port, never here; anything arriving is dropped.
        s.on('message', () => undefined);
        return s;
      } catch (err) {
        try {
          s.close();
        } catch {
          // not open
        }
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    throw new Error('no free BFD source port in 49152-65535');
  }

  /**
   * One listener per family, port and VRF: a socket outside the VRF does not see the VRF's packets (unless the
   * udp_l3mdev_accept sysctl says so), and one bound to the VRF sees only those. Both share the port through
   * SO_REUSEADDR; the kernel hands each packet to the socket bound to its VRF.
   */
  /** `minimumTtl`: the listener's TTL check from the start (applyTtlFilters keeps it right afterwards). */
  private async listen(family: 'udp4' | 'udp6', port: number, device: string | undefined, minimumTtl: number): Promise<void> {
    const key = `${family}/${port}/${device ?? ''}`;
    if (this.rx.has(key)) return;
    const s = createSocket({ type: family, reuseAddr: true, ...(family === 'udp6' ? { ipv6Only: true } : {}) });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, () => {
        s.off('error', reject);
        resolve();
      });
    });
    if (device) {
      try {
        bindToDevice(s, device);
      } catch (err) {
        s.close();
        throw err;
      }
    }
    // At once, before this turn ends: a packet the kernel queues before the filter is there is not checked.
    this.attachTtlFilter(s, family, key, minimumTtl);
    s.on('error', (err) => this.log.warn({ event: 'bfdSocketError', port, err: err.message }, 'BFD socket error'));
    s.on('message', (msg, rinfo) => this.onPacket(msg, canonical(rinfo.address), port === this.ports.multiHop, device));
    this.rx.set(key, s);
  }

  /** The TTL each listener socket's kernel filter keeps from. */
  private readonly ttlFilters = new WeakMap<Socket, number>();
  private ttlFilterWarned = false;

  /**
   * RFC 5881 §5: a single-hop packet must arrive with TTL 255 (it cannot have crossed a router); RFC 5883: a multihop
   * one with at least the profile's minimumTtl (the lowest of the sessions sharing the listener). Checked by a
   * socket filter in the kernel (Node cannot read a datagram's TTL); re-attached only when the value changes.
   */
  private applyTtlFilters(): void {
    for (const [key, socket] of this.rx) {
      const [family, port, device = ''] = key.split('/') as ['udp4' | 'udp6', string, string?];
      const multihop = port === String(this.ports.multiHop);
      let minimum = 255;
      if (multihop) {
        for (const r of this.sessions.values()) {
          if (!r.config.multihop || (r.config.device ?? '') !== device || (isIPv6(r.config.peerAddress) ? 'udp6' : 'udp4') !== family) continue;
          minimum = Math.min(minimum, r.config.minimumTtl ?? 1);
        }
      }
      this.attachTtlFilter(socket, family, key, minimum);
    }
  }

  private attachTtlFilter(socket: Socket, family: 'udp4' | 'udp6', key: string, minimum: number): void {
    if (this.ttlFilters.get(socket) === minimum) return;
    try {
      const discarded = attachMinimumTtl(socket, family, minimum);
      this.ttlFilters.set(socket, minimum);
      this.log.debug({ event: 'bfdTtlFilter', listener: key, minimumTtl: minimum, discarded }, 'BFD receive TTL check set');
    } catch (err) {
      if (!this.ttlFilterWarned) {
        this.ttlFilterWarned = true;
        this.log.warn({ event: 'bfdTtlCheckUnavailable', err: (err as Error).message }, 'BFD packets are accepted whatever their TTL');
      }
    }
  }

  private closeUnusedListeners(): void {
    for (const [key, s] of this.rx) {
      const [family, port, device = ''] = key.split('/');
      const used = [...this.sessions.values()].some((r) =>
        (isIPv6(r.config.peerAddress) ? 'udp6' : 'udp4') === family && String(r.config.multihop ? this.ports.multiHop : this.ports.singleHop) === port &&
        (r.config.device ?? '') === device);
      if (!used) {
        s.close();
        this.rx.delete(key);
      }
    }
  }

  private onPacket(msg: Buffer, from: string, multihop: boolean, device: string | undefined): void {
    const p = decodeControl(msg);
    if (typeof p === 'string') {
      this.log.debug({ event: 'bfdDiscard', from, reason: p }, 'BFD packet discarded');
      return;
    }
    // Your Discriminator picks the session; before the peer knows it, the source address does (§6.8.6). Either
    // way the source must be the session's peer (the TTL was checked by the listener's filter).
    let r = p.yourDiscriminator !== 0 ? this.byDiscriminator.get(p.yourDiscriminator) : undefined;
    if (!r && p.yourDiscriminator === 0) {
      for (const x of this.sessions.values()) if (x.config.peerAddress === from && x.config.multihop === multihop && x.config.device === device) r = x;
    }
    // Arriving in another VRF than the session's is not from its peer, whatever the address says.
    if (!r || r.config.peerAddress !== from || r.config.device !== device) {
      this.log.debug({ event: 'bfdDiscard', from, yourDiscriminator: p.yourDiscriminator }, 'BFD packet for no session');
      return;
    }
    r.session.receive(p);
  }
}
