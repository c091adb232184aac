// The announcer's table of addresses, shared with the responders: what each address is announced on and its
// counters. Responders look addresses up straight from received frames (IPv4 as a 32-bit number, IPv6 by its last
// 32 bits then its 16 bytes), so a request costs no string formatting and no allocation.
import { sumWords } from '../../net/checksum.js';
import type { LatencySamples } from '../../net/latency-trace.js';

/** Per address, MetalLB's metallb_layer2_{requests_received,responses_sent,gratuitous_sent}. */
export interface L2Counters {
  requestsReceived: number;
  responsesSent: number;
  gratuitousSent: number;
}

/** The interfaces an address may be announced on: the union of its L2Advertisements' `interfaces`, or all. */
export type InterfaceSelection = readonly string[] | 'all';

export class AnnouncedIp {
  /** The services announcing it, with the interfaces each selects. */
  readonly holders = new Map<string, InterfaceSelection>();
  /** The union of the holders' selections (kept by recompute()). */
  allInterfaces = false;
  interfaces: ReadonlySet<string> = new Set();
  /** The address's 16-bit words summed (RFC 1071), for the checksums of IPv6 answers. */
  readonly wordSum: number;

  constructor(
    /** Go's text form (MetalLB's metric label and log field). */
    readonly text: string,
    readonly family: 4 | 6,
    readonly bytes: Buffer,
    readonly counters: L2Counters,
  ) {
    this.wordSum = sumWords(bytes, 0, bytes.length);
  }

  get refs(): number {
    return this.holders.size;
  }

  recompute(): void {
    let all = false;
    const names = new Set<string>();
    for (const sel of this.holders.values()) {
      if (sel === 'all') all = true;
      else for (const n of sel) names.add(n);
    }
    this.allInterfaces = all;
    this.interfaces = names;
  }

  /** MetalLB's IPAdvertisement.matchInterface over every announcement of the address. */
  matches(ifname: string): boolean {
    return this.allInterfaces || this.interfaces.has(ifname);
  }

  get v4Key(): number {
    return this.bytes.readUInt32BE(0);
  }

  /** The IPv6 lookup's first key: the last 32 bits (they tell a node's service addresses apart). */
  get v6Low(): number {
    return this.bytes.readUInt32BE(12);
  }
}

/** Why a responder did not answer a frame (MetalLB's dropReason, plus malformed). */
export type DropReason = 'malformed' | 'notRequest' | 'ethernetDestination' | 'noSourceLinkLayer' | 'notAnnounced' | 'notMatchInterface' | 'sendFailed';

/** What responders need from the announcer. */
export interface ResponderContext {
  lookupV4(key: number): AnnouncedIp | undefined;
  /** The announced IPv6 address in bytes [offset, offset + 16) of `frame`. */
  lookupV6(frame: Buffer, offset: number): AnnouncedIp | undefined;
  dropped(reason: DropReason, ifname: string, detail: string | undefined): void;
  /** A request answered (for debug logs); only called when debug logging is on. */
  readonly traceAnswer: ((ifname: string, ip: AnnouncedIp, requesterMac: Buffer) => void) | undefined;
}

/** The frame I/O a responder uses: a PacketSocket in production, a fake in unit tests. */
export interface FrameTransport {
  send(frame: Buffer, offset: number, length: number): void;
  sendBatch(buf: Buffer, stride: number, count: number): number;
  close(): void;
  /** Replaces the kernel-side filter (a PacketSocket's BPF program); absent in fakes that filter nothing. */
  setFilter?(filter: Buffer): void;
  /** Traced answer latencies since the previous call, when the transport traces them. */
  latency?(): LatencySamples;
}
