// The BGP side of one node's speaker: one Session per configured peer, keyed by the BGPPeer name, and what each
// should advertise. The speaker manager feeds it peers (from config) and advertisements (from the policy) and
// reads back session state for status objects and metrics.
import { EventEmitter } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../../log.js';
import { BfdManager, type BfdManagerEvents, type BfdManagerOptions } from '../bfd/manager.js';
import type { BfdSessionConfig, BfdStatus } from '../bfd/engine.js';
import type { StateName } from '../bfd/packet.js';
import { peerOnLink } from './local-addresses.js';
import { defaultVrfs, vrfInterfaceTable, type Vrf } from '../../net/vrf.js';

import { CeaseSubcode } from './messages.js';
import { AdjRibOut, type Advertisement } from './rib.js';
import { Session, type PeerConfig, type SessionOptions, type SessionState, type SessionStats } from './session.js';

export interface PeerStatus {
  /** BGPPeer name. */
  name: string;
  /** `addr:port` (`[v6]:port`), MetalLB's `peer` metric label. */
  peer: string;
  config: PeerConfig;
  stats: SessionStats;
}

export interface BgpSpeakerEvents {
  /** A session changed state. */
  session: [name: string, state: SessionState, previous: SessionState, reason: string | undefined];
  /** A session has written every pending change (`announced` prefixes held by the peer). */
  advertised: [name: string, announced: number];
  /** The peer's BFD session changed state; `remoteState`: the BFD peer's, as last heard. */
  bfd: [name: string, state: StateName, remoteState: StateName | undefined];
}

/**
 * What a BFD state change means for the BGP session (RFC 5882 §3.2): `up`; `failed` (the path is down: tear the
 * session down); `administrative` (BFD stops watching the path on purpose, ours or the peer's AdminDown: not a failure,
 * the BGP session runs on as if BFD were not configured, until BFD is Up again); `none` (Init, or Down from a
 * session that was not Up).
 */
export function bfdSignal(state: StateName, previous: StateName, remoteState: StateName | undefined): 'up' | 'failed' | 'administrative' | 'none' {
  if (state === 'Up') return 'up';
  if (state === 'AdminDown' || (state === 'Down' && remoteState === 'AdminDown')) return 'administrative';
  if (state === 'Down' && previous !== 'AdminDown') return 'failed';
  return 'none';
}

/** What the speaker needs of a BfdManager (tests hand in their own). */
export interface BfdController {
  configure(sessions: readonly BfdSessionConfig[]): Promise<void>;
  status(): Promise<BfdStatus[]>;
  close(): Promise<void>;
  on(event: 'state', listener: (...args: BfdManagerEvents['state']) => void): unknown;
}

export type BgpSpeakerOptions = Omit<SessionOptions, 'logger'> & {
  logger?: Logger;
  /** How BFD runs (default: in a worker thread). */
  bfd?: BfdManagerOptions;
  /**
   * Hold End-of-RIB back until setRibComplete() (`metallb speaker`: until every Service has been decided once).
   * Default false: the advertisements given are the whole set from the start.
   */
  holdEndOfRib?: boolean;
  /** Makes the BFD manager (default: a BfdManager with `bfd`). */
  bfdManager?: () => BfdController;
  /** How often the VRFs of peers whose BFD waits for them are looked up again (default 5000 ms). */
  vrfRecheckMs?: number;
};

/** MetalLB's peer label: Go's net.JoinHostPort. */
export const peerLabel = (c: Pick<PeerConfig, 'peerAddress' | 'peerPort'>): string =>
  c.peerAddress.includes(':') ? `[${c.peerAddress}]:${c.peerPort ?? 179}` : `${c.peerAddress}:${c.peerPort ?? 179}`;

export class BgpSpeaker extends EventEmitter<BgpSpeakerEvents> {
  private readonly sessions = new Map<string, Session>();
  private bfd: BfdController | undefined;
  private readonly bfdStates = new Map<string, StateName>();
  private bfdChain: Promise<void> = Promise.resolve();
  private peers: readonly PeerConfig[] = [];
  /** Peers whose BFD session waits for their VRF to exist. */
  private readonly bfdWaitingForVrf = new Set<string>();
  private vrfRecheck: NodeJS.Timeout | undefined;
  /** Advertisements for peers that have no session (yet), kept as a session would (compact, already parsed). */
  private readonly waiting = new Map<string, AdjRibOut>();
  private closed = false;
  /** Peers (BGPPeer names) that have had an Established session in this process: their next OPENs are no restarts. */
  private readonly establishedOnce = new Set<string>();
  private ribComplete: boolean;

  constructor(private readonly opts: BgpSpeakerOptions) {
    super();
    this.ribComplete = !opts.holdEndOfRib;
  }

  /** Every advertisement is known now: sessions may send End-of-RIB (see Session.setRibComplete). */
  setRibComplete(): void {
    if (this.ribComplete) return;
    this.ribComplete = true;
    this.opts.logger?.info({ event: 'ribComplete', peers: [...this.sessions.keys()] }, 'every Service decided: End-of-RIB may go to the peers');
    for (const s of this.sessions.values()) s.setRibComplete(true);
  }

  /**
   * The peers this node should have. New ones start dialling; removed ones get a Cease (Peer De-configured);
   * changed ones (any field) are closed (Other Configuration Change) and started anew, as MetalLB does.
   */
  setPeers(peers: readonly PeerConfig[]): void {
    if (this.closed) return;
    const wanted = new Map<string, PeerConfig>();
    for (const p of peers) wanted.set(p.name, p);
    for (const [name, session] of this.sessions) {
      const next = wanted.get(name);
      if (next && isDeepStrictEqual(next, session.config)) continue;
      this.sessions.delete(name);
      this.waiting.set(name, session.detachAdvertisements());
      void session.stop(next ? CeaseSubcode.OTHER_CONFIGURATION_CHANGE : CeaseSubcode.PEER_DECONFIGURED);
      session.removeAllListeners('state');
      session.removeAllListeners('advertised');
    }
    for (const [name, config] of wanted) {
      if (this.sessions.has(name)) continue;
      const session = new Session(structuredClone(config), this.opts, this.waiting.get(name), {
        restarting: !this.establishedOnce.has(name), ribComplete: this.ribComplete,
      });
      this.waiting.delete(name);
      // A replacement session learns that BFD is already Up, so that a later Down still counts.
      if (config.bfd && this.bfdStates.get(name) === 'Up') session.setBfdState(true);
      session.on('state', (state, previous, reason) => {
        // The VRF exists now (the session got through it): its BFD session can start.
        if (state === 'OpenSent' && this.bfdWaitingForVrf.has(name)) this.configureBfd(this.peers);
        if (state === 'Established') this.establishedOnce.add(name);
        this.emit('session', name, state, previous, reason);
      });
      session.on('advertised', (announced) => this.emit('advertised', name, announced));
      this.sessions.set(name, session);
      session.start();
    }
    this.peers = [...wanted.values()];
    this.configureBfd(this.peers);
  }

  /** One BFD session per peer with a profile; its Up/Down reaches the BGP session. */
  private configureBfd(peers: readonly PeerConfig[]): void {
    const withBfd = peers.filter((p) => p.bfd);
    for (const key of this.bfdStates.keys()) if (!withBfd.some((p) => p.name === key)) this.bfdStates.delete(key);
    if (withBfd.length === 0 && !this.bfd) return;
    if (!this.bfd) {
      this.bfd = this.opts.bfdManager?.() ?? new BfdManager({ ...(this.opts.logger ? { logger: this.opts.logger } : {}), ...this.opts.bfd });
      this.bfd.on('state', (key, state, diag, previous, remoteState) => {
        this.bfdStates.set(key, state);
        const session = this.sessions.get(key);
        const signal = bfdSignal(state, previous, remoteState);
        if (signal === 'up') session?.setBfdState(true);
        else if (signal === 'failed') session?.setBfdState(false);
        else if (signal === 'administrative' && session) {
          this.opts.logger?.info({ event: 'bfdAdminDown', peer: key, by: state === 'AdminDown' ? 'local' : 'peer', diag },
            'BFD session administratively down: the BGP session is not affected');
          session.bfdUnavailable();
        }
        this.emit('bfd', key, state, remoteState);
      });
    }
    const bfd = this.bfd;
    const sessions: BfdSessionConfig[] = [];
    const wasWaiting = new Set(this.bfdWaitingForVrf);
    this.bfdWaitingForVrf.clear();
    for (const p of withBfd) {
      let vrf: Vrf | undefined;
      if (p.vrf) {
        try {
          vrf = (this.opts.vrfs ?? defaultVrfs)(p.vrf);
        } catch (err) {
          // The BGP session reports why; BFD follows once the VRF is there (looked up again below, and when the BGP
          // session gets through the VRF). Meanwhile no BFD session runs, so none may hold the BGP session down.
          if (!wasWaiting.has(p.name)) {
            this.opts.logger?.warn({ event: 'bfdWaitingForVrf', peer: p.name, vrf: p.vrf, err: (err as Error).message }, 'BFD session not started: no usable VRF');
          }
          this.bfdWaitingForVrf.add(p.name);
          this.bfdStates.delete(p.name);
          this.sessions.get(p.name)?.bfdUnavailable();
          continue;
        }
      }
      sessions.push({
        key: p.name,
        peerAddress: p.peerAddress,
        ...(p.sourceAddress ? { localAddress: p.sourceAddress } : {}),
        ...(vrf ? { vrf: vrf.name, device: vrf.device } : {}),
        // RFC 5883 when the peer is not on one of our links (in its VRF) or eBGP multihop says so; RFC 5881 otherwise.
        multihop: p.ebgpMultiHop === true || !peerOnLink(p.peerAddress, vrf ? vrfInterfaceTable(vrf) : undefined),
        ...p.bfd!,
      });
    }
    this.bfdChain = this.bfdChain.then(() => bfd.configure(sessions)).catch((err: Error) => {
      this.opts.logger?.error({ event: 'bfdConfigFailed', err: err.message }, 'BFD sessions could not be set up');
    });
    this.watchWaitingVrfs();
  }

  /**
   * While some peer's BFD waits for its VRF, the VRF is looked up again now and then, so that BFD starts when the VRF
   * (device) is back even if the BGP session cannot get through yet (the peer down, a long connect back-off).
   */
  private watchWaitingVrfs(): void {
    if (this.bfdWaitingForVrf.size === 0 || this.closed) {
      clearInterval(this.vrfRecheck);
      this.vrfRecheck = undefined;
      return;
    }
    this.vrfRecheck ??= setInterval(() => {
      const resolve = this.opts.vrfs ?? defaultVrfs;
      const back = this.peers.some((p) => {
        if (!p.vrf || !this.bfdWaitingForVrf.has(p.name)) return false;
        try {
          resolve(p.vrf);
          return true;
        } catch {
          return false;
        }
      });
      if (back) this.configureBfd(this.peers);
    }, this.opts.vrfRecheckMs ?? 5000);
    this.vrfRecheck.unref();
  }

  /** BFD sessions' state and counters. */
  async bfdStatus(): Promise<BfdStatus[]> {
    await this.bfdChain;
    return this.bfd ? this.bfd.status() : [];
  }

  /**
   * Everything `peer` (a BGPPeer name) should carry from this node; the session sends only the difference from
   * the previous set. Kept for peers not configured yet. Returns the refused advertisements' errors.
   */
  setAdvertisements(peer: string, ads: Iterable<Advertisement>): string[] {
    const session = this.sessions.get(peer);
    if (session) return session.setAdvertisements(ads);
    let rib = this.waiting.get(peer);
    if (!rib) this.waiting.set(peer, (rib = new AdjRibOut()));
    const errors = rib.set(ads);
    if (rib.size === 0) this.waiting.delete(peer);
    return errors;
  }

  /** Tells the peer's session about its BFD session (see Session.setBfdState). */
  setBfdState(peer: string, up: boolean): void {
    this.sessions.get(peer)?.setBfdState(up);
  }

  session(peer: string): Session | undefined {
    return this.sessions.get(peer);
  }

  status(): PeerStatus[] {
    return [...this.sessions.entries()].map(([name, s]) => ({ name, peer: peerLabel(s.config), config: s.config, stats: s.stats() }));
  }

  /** Closes every session with Cease / Administrative Shutdown and `message` (RFC 9003). */
  async close(message = 'speaker shutting down'): Promise<void> {
    this.closed = true;
    clearInterval(this.vrfRecheck);
    this.vrfRecheck = undefined;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.stop(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, message)));
    await this.bfdChain;
    await this.bfd?.close();
  }
}
