// The layer 2 announcer (MetalLB internal/layer2/announcer.go): the set of addresses this node announces, ARP and
// NDP responders on the interfaces MetalLB's rules allow (rescanned every 10 s and on demand), and gratuitous
// ARP / unsolicited NA on MetalLB's schedule: at once, then every 1.1 s until 5 s after the last setBalancer of
// the address. Withdrawal sends nothing: the new owner's announcements move the traffic.
import { formatIP, parseIP, type IP } from '../../net/ip.js';
import { bytesEqual, formatIpBytes, formatMac, solicitedNodeMulticast } from '../../net/addresses.js';
import { EtherType } from '../../net/messages.js';
import { mergeSamples, type LatencySamples } from '../../net/latency-trace.js';
import { PacketSocket } from '../../net/packet-socket.js';
import { createLogger, type Logger } from '../../log.js';
import { AnnouncedIp, type DropReason, type FrameTransport, type InterfaceSelection, type L2Counters, type ResponderContext } from './announced.js';
import { ArpResponder } from './arp-responder.js';
import { loadExcludeRule, type ExcludeRule } from './exclude.js';
import { arpRequestFilter, neighborSolicitationFilter } from './filters.js';
import { classifyInterfaces, readLinks, type LinkInfo, type UsableInterface } from './interfaces.js';
import { MulticastMemberships } from './multicast.js';
import { NdpResponder } from './ndp-responder.js';
import { XdpResponder, XdpUnavailableError, xdpModesFor, type XdpSetting } from './xdp-responder.js';
import type { GratuitousBatch } from './takeover-plan.js';

export type { InterfaceSelection } from './announced.js';

export type OpenFrameSocket = (
  ifname: string,
  protocol: number,
  filter: Buffer,
  onFrame: (frame: Buffer, length: number) => void,
  onError: (err: Error) => void,
  options: { readonly traceLatency: boolean },
) => FrameTransport;

export interface AnnouncerOptions {
  readonly log?: Logger;
  /** Interfaces never used; default: read from excludeConfigPath (see exclude.ts). */
  readonly exclude?: ExcludeRule;
  readonly excludeConfigPath?: string;
  /** MetalLB: 10 s. */
  readonly scanIntervalMs?: number;
  /** MetalLB: 1100 ms. */
  readonly gratuitousIntervalMs?: number;
  /** MetalLB: 5 s after the last setBalancer of the address. */
  readonly gratuitousWindowMs?: number;
  /** Trace where the time of each answer goes (see latency()); for benchmarks and diagnosis. */
  readonly traceLatency?: boolean;
  /**
   * 'auto': ARP requests and neighbor solicitations for announced addresses are answered in the kernel by an XDP
   * program where it can be attached (xdp-responder.ts), the userspace responders doing the rest; 'off' (the default here, so that tests
   * with fake interfaces never attach anything to real ones): userspace answers everything. The speaker's
   * --l2-xdp sets it (default auto).
   */
  readonly xdp?: XdpSetting;
  /** Test seams: the interface list, the packet sockets, the multicast memberships, the clock. */
  readonly links?: () => readonly LinkInfo[];
  readonly openSocket?: OpenFrameSocket;
  readonly memberships?: MulticastMemberships;
  readonly now?: () => number;
  readonly timers?: IntervalTimers;
}

/** setInterval/clearInterval, replaceable by a test's own clock. */
export interface IntervalTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const realTimers: IntervalTimers = {
  // Unreferenced: the announcer's timers alone do not keep a process alive.
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout | undefined),
};

export type DropCounts = Record<DropReason, number>;

const openPacketSocket: OpenFrameSocket = (ifname, protocol, filter, onFrame, onError, { traceLatency }) =>
  PacketSocket.open({ ifname, protocol, filter, onFrame, onError, traceLatency });

export class Announcer {
  private readonly log: Logger;
  private readonly exclude: ExcludeRule;
  private readonly scanIntervalMs: number;
  private readonly gratuitousIntervalMs: number;
  private readonly gratuitousWindowMs: number;
  private readonly links: () => readonly LinkInfo[];
  private readonly openSocket: OpenFrameSocket;
  private readonly memberships: MulticastMemberships;
  private readonly now: () => number;
  private readonly timers: IntervalTimers;
  private readonly traceLatency: boolean;

  /** Service -> its addresses (each address knows its holders and their selections). */
  private readonly byName = new Map<string, AnnouncedIp[]>();
  private readonly byText = new Map<string, AnnouncedIp>();
  private readonly byV4 = new Map<number, AnnouncedIp>();
  /** The IPv6 addresses announced (for the filters and multicast groups). */
  private readonly v6 = new Set<AnnouncedIp>();
  /** The same, by the addresses' last 32 bits: what answering looks up, without making a string. */
  private readonly byV6Low = new Map<number, AnnouncedIp[]>();
  private readonly counterTable = new Map<string, L2Counters>();
  private readonly arps = new Map<number, ArpResponder>();
  private readonly ndps = new Map<number, NdpResponder>();
  /** Per responder interface index, its XDP fast path (attached only while it answers for something). */
  private readonly xdps = new Map<number, XdpResponder>();
  /** Interfaces XDP could not be attached to (another program there...): userspace only, until their responder is remade. */
  private readonly xdpRefused = new Set<number>();
  private xdpSetting: XdpSetting;
  private nodeInterfaces: readonly string[] = [];
  private readonly interfaceListeners: (() => void)[] = [];

  /** Address -> time after which it is no longer announced gratuitously. */
  private readonly spamUntil = new Map<AnnouncedIp, number>();
  private spamTimer: unknown;
  private readonly immediate = new Set<AnnouncedIp>();
  /** Announce/withdraw log records, written after the turn's gratuitous frames have left. */
  private readonly pendingLogs: { event: 'announce' | 'withdraw'; name: string; ip: AnnouncedIp; selection: InterfaceSelection | undefined }[] = [];
  private flushQueued = false;
  private batch = Buffer.alloc(64 * 1024);

  private scanTimer: unknown;
  private closed = false;
  readonly drops: DropCounts = {
    malformed: 0,
    notRequest: 0,
    ethernetDestination: 0,
    noSourceLinkLayer: 0,
    notAnnounced: 0,
    notMatchInterface: 0,
    sendFailed: 0,
  };
  private readonly ctx: ResponderContext;

  constructor(options: AnnouncerOptions = {}) {
    this.log = options.log ?? createLogger('layer2');
    this.exclude = options.exclude ?? loadExcludeRule(options.excludeConfigPath);
    this.scanIntervalMs = options.scanIntervalMs ?? 10_000;
    this.gratuitousIntervalMs = options.gratuitousIntervalMs ?? 1100;
    this.gratuitousWindowMs = options.gratuitousWindowMs ?? 5000;
    this.links = options.links ?? (() => readLinks());
    this.openSocket = options.openSocket ?? openPacketSocket;
    this.memberships = options.memberships ?? new MulticastMemberships();
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? realTimers;
    this.traceLatency = options.traceLatency ?? false;
    this.xdpSetting = options.xdp ?? 'off';
    if (options.xdp === 'off') this.log.info({ xdp: 'off' }, 'ARP and NDP answered in userspace only (--l2-xdp off)');
    const debug = this.log.isLevelEnabled('debug');
    this.ctx = {
      lookupV4: (key) => this.byV4.get(key),
      lookupV6: (frame, offset) => {
        const bucket = this.byV6Low.get(frame.readUInt32BE(offset + 12));
        if (bucket) for (const ip of bucket) if (bytesEqual(frame, offset, ip.bytes, 0, 16)) return ip;
        return undefined;
      },
      dropped: (reason, ifname, detail) => {
        this.drops[reason]++;
        if (reason === 'sendFailed') this.log.warn({ interface: ifname, error: detail }, 'failed to send a layer 2 response');
        else if (debug && (reason === 'malformed' || reason === 'notMatchInterface')) {
          this.log.debug({ op: 'l2RequestIgnore', interface: ifname, reason, detail }, 'ignored a frame');
        }
      },
      traceAnswer: debug
        ? (ifname, ip, mac) =>
            this.log.debug({ interface: ifname, ip: ip.text, senderMAC: formatMac(mac) }, 'got a request for a service IP, sending a response')
        : undefined,
    };
    this.log.debug({ exclude: this.exclude.patterns, source: this.exclude.source }, 'layer 2 interface exclusions');
  }

  /** First interface scan, then one every scanIntervalMs. */
  start(): this {
    if (this.closed) throw new Error('announcer: start() after close()');
    this.rescan();
    this.scanTimer ??= this.timers.setInterval(() => this.rescan(), this.scanIntervalMs);
    return this;
  }

  /**
   * Announces `ip` for `name` (a service key) on the selected interfaces. Calling it again for the same name and
   * address updates the interfaces; any call restarts the gratuitous window of the address (MetalLB).
   * A name may hold several addresses (dual stack); several names may share one address (ref-counted).
   */
  setBalancer(name: string, ip: string, interfaces: InterfaceSelection): void {
    const parsed = parseIP(ip);
    if (!parsed) throw new Error(`setBalancer(${JSON.stringify(name)}): ${JSON.stringify(ip)} is not an IP address`);
    const text = formatIP(parsed);
    const selection: InterfaceSelection = interfaces === 'all' ? 'all' : [...new Set(interfaces)].sort();
    let announced = this.byText.get(text);
    const previous = announced?.holders.get(name);
    if (previous === undefined) {
      announced = this.acquire(text, parsed, name, selection);
      const list = this.byName.get(name);
      if (list) list.push(announced);
      else this.byName.set(name, [announced]);
      this.pendingLogs.push({ event: 'announce', name, ip: announced, selection });
      this.filtersDirty = true;
    } else if (!sameSelection(previous, selection)) {
      announced!.holders.set(name, selection);
      announced!.recompute();
      this.pendingLogs.push({ event: 'announce', name, ip: announced!, selection });
      this.filtersDirty = true;
    }
    this.triggerGratuitous(announced!);
  }

  /** Stops announcing every address of `name`; addresses other names still hold stay announced. Sends nothing. */
  deleteBalancer(name: string): void {
    const list = this.byName.get(name);
    if (!list) return;
    this.byName.delete(name);
    this.filtersDirty = true;
    for (const ip of list) {
      this.release(ip, name);
      this.pendingLogs.push({ event: 'withdraw', name, ip, selection: undefined });
    }
    this.queueFlush();
  }

  /** Whether `name` has announcements (MetalLB's AnnounceName). */
  announceName(name: string): boolean {
    return this.byName.has(name);
  }

  /** What `name` announces (for the ServiceL2Status objects). */
  announcements(name: string): { ip: string; interfaces: InterfaceSelection }[] {
    return (this.byName.get(name) ?? []).map((ip) => ({ ip: ip.text, interfaces: ip.holders.get(name)! }));
  }

  /**
   * The interfaces of this node, from the last scan, that `interfaces` selects: every interface not excluded by
   * name, up or not (MetalLB's GetInterfaces). The speaker reports `announceFailed` when a selection of names
   * matches none of them; 'all' matches even a node with no interface, as in MetalLB. The address does not
   * change the answer (MetalLB does not pick interfaces by subnet); it is there for the logs of callers.
   */
  interfacesFor(_ip: string, interfaces: InterfaceSelection): string[] {
    if (interfaces === 'all') return [...this.nodeInterfaces];
    const wanted = new Set(interfaces);
    return this.nodeInterfaces.filter((n) => wanted.has(n));
  }

  /** Per address text, the counters behind metallb_layer2_*; kept after withdrawal (Prometheus counters). */
  counters(): ReadonlyMap<string, Readonly<L2Counters>> {
    for (const x of this.xdps.values()) x.syncCounters();
    return this.counterTable;
  }

  /**
   * The gratuitous frames that would announce `entries` now, on the responders' interfaces each selects, one batch
   * per interface (a takeover plan sends them from another thread). Touches nothing announced.
   */
  gratuitousFrames(entries: readonly { ip: string; interfaces: InterfaceSelection }[]): GratuitousBatch[] {
    const ips = entries.map((e) => {
      const parsed = parseIP(e.ip);
      if (!parsed) return undefined;
      const ip = new AnnouncedIp(formatIP(parsed), parsed.family === 'IPv4' ? 4 : 6, ipBytes(parsed), { requestsReceived: 0, responsesSent: 0, gratuitousSent: 0 });
      ip.holders.set('', e.interfaces);
      ip.recompute();
      return ip;
    });
    const out: GratuitousBatch[] = [];
    const batch = (r: ArpResponder | NdpResponder, family: 4 | 6, perIp: number, frameLength: number): void => {
      const perEntry = ips.map((ip) => (ip && ip.family === family && ip.matches(r.name) ? perIp : 0));
      const count = perEntry.reduce((a, b) => a + b, 0);
      if (count === 0) return;
      const frames = Buffer.alloc(count * frameLength);
      let offset = 0;
      ips.forEach((ip, i) => {
        if (!ip || perEntry[i] === 0) return;
        r.writeGratuitous(frames, offset, ip);
        offset += perIp * frameLength;
      });
      out.push({ ifname: r.name, frameLength, count, frames, perEntry });
    };
    for (const r of this.arps.values()) batch(r, 4, ArpResponder.framesPerAddress, ArpResponder.frameLength);
    for (const r of this.ndps.values()) batch(r, 6, NdpResponder.framesPerAddress, NdpResponder.frameLength);
    return out;
  }

  /** `cb` runs after a rescan changed the interfaces, their responders or their MACs. */
  onInterfacesChanged(cb: () => void): void {
    this.interfaceListeners.push(cb);
  }

  /** The interfaces with an ARP / NDP responder now. */
  responders(): { arp: string[]; ndp: string[] } {
    return { arp: [...this.arps.values()].map((r) => r.name).sort(), ndp: [...this.ndps.values()].map((r) => r.name).sort() };
  }

  /** The interfaces where XDP answers ARP now, with its attach mode. */
  xdpInterfaces(): { name: string; mode: string; addresses: number }[] {
    return [...this.xdps.values()]
      .filter((x) => x.answered().length > 0)
      .map((x) => ({ name: x.name, mode: x.mode ?? 'unknown', addresses: x.answered().length }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** With traceLatency: the answers' latencies since the previous call, ARP and NDP apart, all interfaces. */
  latency(): { arp: LatencySamples; ndp: LatencySamples } {
    return {
      arp: mergeSamples([...this.arps.values()].map((r) => r.latency())),
      ndp: mergeSamples([...this.ndps.values()].map((r) => r.latency())),
    };
  }

  /** Re-reads the interfaces now: new ones get responders, gone/down/excluded ones lose theirs. */
  rescan(): void {
    if (this.closed) return;
    let links: readonly LinkInfo[];
    try {
      links = this.links();
    } catch (err) {
      this.log.error({ op: 'getInterfaces', error: (err as Error).message }, "couldn't list interfaces");
      return;
    }
    const scan = classifyInterfaces(links, this.exclude.regexp);
    const before = this.interfaceFingerprint();
    this.nodeInterfaces = scan.names;
    const keepArp = new Set<number>();
    const keepNdp = new Set<number>();
    for (const iface of scan.usable) {
      if (iface.arp) {
        keepArp.add(iface.index);
        this.ensureArp(iface);
      }
      if (iface.ndp) {
        keepNdp.add(iface.index);
        this.ensureNdp(iface);
      }
    }
    for (const [index, r] of this.arps) if (!keepArp.has(index)) this.dropArp(index, r);
    for (const [index, r] of this.ndps) if (!keepNdp.has(index)) this.dropNdp(index, r);
    if (this.interfaceFingerprint() !== before) {
      for (const cb of this.interfaceListeners) {
        try {
          cb();
        } catch (err) {
          this.log.error({ error: (err as Error).message }, 'interface change listener failed');
        }
      }
    }
  }

  private interfaceFingerprint(): string {
    const responders = (m: ReadonlyMap<number, ArpResponder | NdpResponder>): string[] => [...m].map(([i, r]) => `${i}:${r.name}:${r.mac.toString('hex')}`);
    return JSON.stringify([this.nodeInterfaces, responders(this.arps), responders(this.ndps)]);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timers.clearInterval(this.scanTimer);
    this.timers.clearInterval(this.spamTimer);
    for (const [index, r] of this.arps) this.dropArp(index, r);
    for (const [index, r] of this.ndps) this.dropNdp(index, r);
    this.memberships.close();
    this.writeLogs();
  }

  // --- the address table ---

  private acquire(text: string, parsed: IP, name: string, selection: InterfaceSelection): AnnouncedIp {
    const family = parsed.family === 'IPv4' ? 4 : 6;
    let ip = this.byText.get(text);
    if (!ip) {
      let counters = this.counterTable.get(text);
      if (!counters) {
        counters = { requestsReceived: 0, responsesSent: 0, gratuitousSent: 0 };
        this.counterTable.set(text, counters);
      }
      ip = new AnnouncedIp(text, family, ipBytes(parsed), counters);
      this.byText.set(text, ip);
    }
    ip.holders.set(name, selection);
    ip.recompute();
    if (ip.refs === 1) {
      if (family === 4) this.byV4.set(ip.v4Key, ip);
      else {
        this.v6.add(ip);
        const bucket = this.byV6Low.get(ip.v6Low);
        if (bucket) bucket.push(ip);
        else this.byV6Low.set(ip.v6Low, [ip]);
        for (const r of this.ndps.values()) this.joinGroup(r.name, ip);
      }
    }
    return ip;
  }

  private release(ip: AnnouncedIp, name: string): void {
    ip.holders.delete(name);
    ip.recompute();
    if (ip.refs > 0) return;
    this.byText.delete(ip.text);
    this.spamUntil.delete(ip);
    this.immediate.delete(ip);
    if (ip.family === 4) this.byV4.delete(ip.v4Key);
    else {
      this.v6.delete(ip);
      const bucket = this.byV6Low.get(ip.v6Low)!.filter((other) => other !== ip);
      if (bucket.length) this.byV6Low.set(ip.v6Low, bucket);
      else this.byV6Low.delete(ip.v6Low);
      const group = formatIpBytes(solicitedNodeMulticast(ip.bytes), 0, 16);
      for (const r of this.ndps.values()) this.memberships.leave(group, r.name);
    }
  }

  private writeLogs(): void {
    if (!this.log.isLevelEnabled('info')) {
      this.pendingLogs.length = 0;
      return;
    }
    for (const { event, name, ip, selection } of this.pendingLogs.splice(0)) {
      const responders = ip.family === 4 ? this.arps.values() : this.ndps.values();
      const interfaces = event === 'announce' ? [...responders].map((r) => r.name).filter((n) => ip.matches(n)).sort() : undefined;
      this.log.info(
        event === 'announce'
          ? { event: 'layer2Announce', service: name, ip: ip.text, interfaces, selection }
          : { event: 'layer2Withdraw', service: name, ip: ip.text },
        event === 'announce' ? 'announcing service IP' : 'withdrawing service IP',
      );
    }
  }

  // --- gratuitous ARP / unsolicited NA ---

  private triggerGratuitous(ip: AnnouncedIp): void {
    const known = this.spamUntil.has(ip);
    this.spamUntil.set(ip, this.now() + this.gratuitousWindowMs);
    if (!this.spamTimer) this.spamTimer = this.timers.setInterval(() => this.gratuitousTick(), this.gratuitousIntervalMs);
    // At once only for an address not already in its window (MetalLB): a reconcile storm does not multiply bursts.
    if (!known) this.immediate.add(ip);
    this.queueFlush();
  }

  /**
   * Every setBalancer/deleteBalancer of the current turn (a takeover of many addresses) is settled in one
   * microtask: the gratuitous frames first, one batch per interface, then the log lines.
   */
  /** The announced addresses or their interfaces changed since the responders' filters were last set. */
  private filtersDirty = false;

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      if (this.closed) return;
      // Only when an address or its interfaces changed: a reconcile's setBalancer mostly repeats what is announced.
      const dirty = this.filtersDirty;
      this.filtersDirty = false;
      // The userspace responders take the new set at once (less what XDP answers already), then the gratuitous
      // frames leave, and only then are the XDP programs generated again (tens of ms for 1,000 addresses: the
      // verifier), after which the userspace filters leave the kernel's share out again. No address goes
      // unanswered meanwhile, and a takeover's announcements do not wait for the verifier.
      if (dirty) {
        for (const r of this.arps.values()) this.refilter(r);
        for (const r of this.ndps.values()) this.refilter(r);
      }
      if (this.immediate.size) {
        const due = [...this.immediate];
        this.immediate.clear();
        this.sendGratuitous(due);
      }
      if (dirty && this.xdpSetting === 'auto') {
        for (const index of new Set([...this.arps.keys(), ...this.ndps.keys()])) this.updateXdp(index);
        for (const r of this.arps.values()) this.refilter(r);
        for (const r of this.ndps.values()) this.refilter(r);
      }
      this.writeLogs();
    });
  }

  private gratuitousTick(): void {
    const now = this.now();
    const due: AnnouncedIp[] = [];
    for (const [ip, until] of this.spamUntil) {
      if (now > until) this.spamUntil.delete(ip);
      else due.push(ip);
    }
    if (due.length) this.sendGratuitous(due);
    if (this.spamUntil.size === 0) {
      this.timers.clearInterval(this.spamTimer);
      this.spamTimer = undefined;
    }
  }

  private sendGratuitous(ips: readonly AnnouncedIp[]): void {
    if (this.closed) return;
    const v4 = ips.filter((ip) => ip.refs > 0 && ip.family === 4);
    const v6 = ips.filter((ip) => ip.refs > 0 && ip.family === 6);
    if (v4.length) for (const r of this.arps.values()) this.sendBurst(r, v4, ArpResponder.framesPerAddress, ArpResponder.frameLength);
    if (v6.length) for (const r of this.ndps.values()) this.sendBurst(r, v6, NdpResponder.framesPerAddress, NdpResponder.frameLength);
  }

  private sendBurst(r: ArpResponder | NdpResponder, ips: readonly AnnouncedIp[], perIp: number, frameLength: number): void {
    const mine = ips.filter((ip) => ip.matches(r.name));
    if (!mine.length) return;
    const bytes = mine.length * perIp * frameLength;
    if (this.batch.length < bytes) this.batch = Buffer.alloc(bytes);
    mine.forEach((ip, i) => r.writeGratuitous(this.batch, i * perIp * frameLength, ip));
    let sent = 0;
    try {
      sent = r.sendBatch(this.batch, mine.length * perIp);
    } catch (err) {
      this.log.error({ op: 'gratuitousAnnounce', interface: r.name, error: (err as Error).message }, 'failed to send gratuitous announcements');
    }
    // Counted per frame that left, attributed address by address in order.
    for (let i = 0; i < mine.length && sent > 0; i++) {
      const n = Math.min(perIp, sent);
      mine[i]!.counters.gratuitousSent += n;
      sent -= n;
    }
  }

  // --- responders ---

  /**
   * Narrows the responder's socket filter to the addresses announced on its interface (filters.ts). Sockets open
   * with the filter that takes every request, so a filter that cannot be narrowed (an addon built before
   * packetSetFilter) only costs wake-ups; one that cannot be widened again is put back to that.
   */
  private refilter(r: ArpResponder | NdpResponder): void {
    const inKernel = new Set(this.xdps.get(r.index)?.answered() ?? []);
    const filter =
      r instanceof ArpResponder
        ? arpRequestFilter([...this.byV4.values()].filter((ip) => ip.matches(r.name) && !inKernel.has(ip)).map((ip) => ip.v4Key))
        : neighborSolicitationFilter([...this.v6].filter((ip) => ip.matches(r.name) && !inKernel.has(ip)).map((ip) => ip.bytes));
    try {
      r.setFilter(filter);
    } catch (err) {
      this.log.warn({ op: 'setFilter', interface: r.name, error: (err as Error).message }, 'could not narrow the responder socket filter to the announced addresses');
      try {
        r.setFilter(r instanceof ArpResponder ? arpRequestFilter() : neighborSolicitationFilter());
      } catch {
        // The socket keeps the filter it was opened with, which takes every request.
      }
    }
  }

  private ensureArp(iface: UsableInterface): void {
    const existing = this.arps.get(iface.index);
    if (existing && existing.name === iface.name && existing.mac.equals(iface.mac)) return;
    if (existing) this.dropArp(iface.index, existing);
    try {
      const r = new ArpResponder(iface.name, iface.index, iface.mac, this.ctx).attach((onFrame) =>
        this.openSocket(iface.name, EtherType.ARP, arpRequestFilter(), onFrame, (err) =>
          this.log.warn({ interface: iface.name, error: err.message }, 'ARP responder receive error'),
          { traceLatency: this.traceLatency },
        ),
      );
      this.arps.set(iface.index, r);
      this.updateXdp(iface.index);
      this.refilter(r);
      this.log.info({ event: 'createARPResponder', interface: iface.name }, 'created ARP responder for interface');
    } catch (err) {
      this.log.error({ op: 'createARPResponder', interface: iface.name, error: (err as Error).message }, 'failed to create ARP responder');
    }
  }

  private ensureNdp(iface: UsableInterface): void {
    const existing = this.ndps.get(iface.index);
    if (existing && existing.name === iface.name && existing.mac.equals(iface.mac)) return;
    if (existing) this.dropNdp(iface.index, existing);
    let r: NdpResponder;
    try {
      r = new NdpResponder(iface.name, iface.index, iface.mac, this.ctx).attach((onFrame) =>
        this.openSocket(iface.name, EtherType.IPv6, neighborSolicitationFilter(), onFrame, (err) =>
          this.log.warn({ interface: iface.name, error: err.message }, 'NDP responder receive error'),
          { traceLatency: this.traceLatency },
        ),
      );
    } catch (err) {
      this.log.error({ op: 'createNDPResponder', interface: iface.name, error: (err as Error).message }, 'failed to create NDP responder');
      return;
    }
    this.ndps.set(iface.index, r);
    this.updateXdp(iface.index);
    this.refilter(r);
    this.log.info({ event: 'createNDPResponder', interface: iface.name }, 'created NDP responder for interface');
    // Addresses announced before this interface appeared need their groups here too (MetalLB only joins at
    // setBalancer, so a late interface stays deaf to multicast solicitations behind a filtering NIC).
    for (const ip of this.v6) this.joinGroup(iface.name, ip);
  }

  private joinGroup(ifname: string, ip: AnnouncedIp): void {
    const group = formatIpBytes(solicitedNodeMulticast(ip.bytes), 0, 16);
    try {
      this.memberships.join(group, ifname);
    } catch (err) {
      this.log.error(
        { op: 'watchMulticastGroup', interface: ifname, ip: ip.text, error: (err as Error).message },
        'failed to watch NDP multicast group for IP, NDP responder will not respond to requests for this address',
      );
    }
  }

  /**
   * Makes the XDP program of interface `index` answer for the addresses announced there: IPv4 if it has an ARP
   * responder, IPv6 if it has an NDP responder (before the userspace filters are narrowed to the others, so that no
   * request goes unanswered in between). Any failure leaves the addresses to userspace: everywhere when XDP is
   * unusable on this node, else on this interface.
   */
  private updateXdp(index: number): void {
    const arp = this.arps.get(index);
    const ndp = this.ndps.get(index);
    const r = arp ?? ndp;
    let x = this.xdps.get(index);
    if (x && (!r || x.name !== r.name || !x.mac.equals(r.mac))) {
      x.detach();
      this.xdps.delete(index);
      x = undefined;
    }
    if (this.closed) {
      x?.detach();
      this.xdps.delete(index);
      return;
    }
    if (!r || this.xdpSetting !== 'auto' || this.xdpRefused.has(index)) return;
    const wanted = [
      ...(arp ? [...this.byV4.values()].filter((ip) => ip.matches(r.name)) : []),
      ...(ndp ? [...this.v6].filter((ip) => ip.matches(r.name)) : []),
    ];
    if (!x) {
      if (wanted.length === 0) return;
      x = new XdpResponder(r.name, index, r.mac, xdpModesFor(r.name));
      this.xdps.set(index, x);
    }
    const wasAttached = x.answered().length > 0;
    try {
      x.update(wanted);
      const attached = x.answered().length > 0;
      if (attached !== wasAttached) {
        this.log.info(
          { event: attached ? 'xdpAttach' : 'xdpDetach', interface: r.name, mode: x.mode },
          attached ? 'answering ARP and NDP in the kernel (XDP) on this interface' : 'XDP detached: nothing announced on this interface',
        );
      }
    } catch (err) {
      x.detach();
      this.xdps.delete(index);
      if (err instanceof XdpUnavailableError) {
        this.xdpSetting = 'off';
        for (const other of this.xdps.values()) other.detach();
        this.xdps.clear();
        for (const a of this.arps.values()) this.refilter(a);
        for (const n of this.ndps.values()) this.refilter(n);
        this.log.info({ xdp: 'unavailable', reason: err.message }, 'ARP and NDP answered in userspace: XDP cannot be used on this node');
      } else {
        this.xdpRefused.add(index);
        this.log.info({ interface: r.name, reason: (err as Error).message }, 'ARP and NDP answered in userspace on this interface: XDP could not be attached');
      }
    }
  }

  private dropArp(index: number, r: ArpResponder): void {
    r.close();
    this.arps.delete(index);
    if (!this.ndps.has(index)) this.xdpRefused.delete(index);
    this.updateXdp(index);
    this.log.info({ event: 'deleteARPResponder', interface: r.name }, 'deleted ARP responder for interface');
  }

  private dropNdp(index: number, r: NdpResponder): void {
    r.close();
    this.ndps.delete(index);
    if (!this.arps.has(index)) this.xdpRefused.delete(index);
    this.updateXdp(index);
    this.memberships.leaveAll(r.name);
    this.log.info({ event: 'deleteNDPResponder', interface: r.name }, 'deleted NDP responder for interface');
  }

}

function ipBytes(ip: IP): Buffer {
  if (ip.family === 'IPv4') {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(Number(ip.value));
    return out;
  }
  return Buffer.from(ip.value.toString(16).padStart(32, '0'), 'hex');
}

function sameSelection(a: InterfaceSelection, b: InterfaceSelection): boolean {
  if (a === 'all' || b === 'all') return a === b;
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
