// Bulk UPDATE writing: as many prefixes as fit under the 4096-octet limit share one copy of their path attributes
// (RFC 4271 §4.3), written straight into large buffers so 100,000 routes cost a few hundred messages and no
// per-route allocation. The bytes are the same the general serializer writes (tests check that).
import type { IPFamily } from '../../net/ip.js';
import {
  AFI, AS_TRANS, AsPathSegmentType, AttrFlag, AttrType, HEADER_LENGTH, MARKER_LENGTH, MAX_MESSAGE_LENGTH, MessageType,
  Origin, SAFI, type PathAttribute,
} from './messages.js';
import { addressBytes } from './nlri.js';
import { writeAttribute } from './serializer.js';
import { Writer } from './writer.js';

/** What a route carries besides its prefix; interned per session, so equal sets are one object. */
export interface RouteAttributes {
  /** Sent to iBGP peers only (RFC 4271 §5.1.5). */
  readonly localPref?: number;
  /** RFC 1997 values (high << 16 | low), sorted, no duplicates. */
  readonly communities: readonly number[];
  /** RFC 8092 triples, sorted, no duplicates. */
  readonly largeCommunities: readonly (readonly [number, number, number])[];
  /** Overrides the session's next hop for this route's family. */
  readonly nextHop?: string;
}

/** How this session encodes attributes; fixed once the OPENs are exchanged. */
export interface EncodingContext {
  ibgp: boolean;
  /** The AS we speak as (myASN, or localASN when set). */
  localAsn: number;
  /** The peer sent the four-octet-as capability. */
  fourOctetAs: boolean;
  /** IPv4 NEXT_HOP when a route has no override; undefined when this session has none for IPv4 prefixes. */
  nextHopV4?: string;
  /** IPv6 next hop: global, and link-local when the peer shares our link (RFC 2545 §3). */
  nextHopV6?: { global: string; linkLocal?: string };
}

/** The path attributes (MP_REACH_NLRI aside) for a route with `attrs`, in type order (RFC 4271 §5). */
export function pathAttributesFor(attrs: RouteAttributes, family: IPFamily, ctx: EncodingContext): PathAttribute[] | undefined {
  const out: PathAttribute[] = [{ kind: 'origin', flags: AttrFlag.TRANSITIVE, origin: Origin.IGP }];
  const needsAs4 = !ctx.fourOctetAs && ctx.localAsn > 0xffff;
  const segments = ctx.ibgp ? [] : [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [needsAs4 ? AS_TRANS : ctx.localAsn] }];
  out.push({ kind: 'as-path', flags: AttrFlag.TRANSITIVE, segments });
  if (family === 'IPv4') {
    const nextHop = attrs.nextHop ?? ctx.nextHopV4;
    if (nextHop === undefined || nextHop.includes(':')) return undefined;
    out.push({ kind: 'next-hop', flags: AttrFlag.TRANSITIVE, nextHop });
  }
  if (ctx.ibgp) out.push({ kind: 'local-pref', flags: AttrFlag.TRANSITIVE, value: attrs.localPref ?? 100 });
  if (attrs.communities.length > 0) {
    out.push({ kind: 'communities', flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE, communities: attrs.communities });
  }
  // RFC 6793 §4.2.2: a NEW speaker talking to an OLD one carries the real path in AS4_PATH.
  if (needsAs4) out.push({ kind: 'as4-path', flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE, segments: [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [ctx.localAsn] }] });
  if (attrs.largeCommunities.length > 0) {
    out.push({ kind: 'large-communities', flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE, communities: attrs.largeCommunities });
  }
  return out;
}

/** The IPv6 next hop field: global, or global + link-local (RFC 2545 §3). */
export function ipv6NextHops(attrs: RouteAttributes, ctx: EncodingContext): string[] | undefined {
  if (attrs.nextHop !== undefined) return attrs.nextHop.includes(':') ? [attrs.nextHop] : undefined;
  if (!ctx.nextHopV6) return undefined;
  return ctx.nextHopV6.linkLocal ? [ctx.nextHopV6.global, ctx.nextHopV6.linkLocal] : [ctx.nextHopV6.global];
}

interface EncodedAttributes {
  /** Everything but MP_REACH_NLRI. */
  attrs: Buffer;
  /** IPv6 only: the MP_REACH_NLRI value up to its NLRI (AFI, SAFI, next hop, reserved). */
  mpReachHead?: Buffer;
}

const CHUNK = 256 * 1024;

/** Copies a latin1 NLRI string into the buffer; for a few octets a JS loop beats a call into Buffer.write. */
function put(b: Buffer, p: number, wire: string): number {
  for (let k = 0; k < wire.length; k++) b[p++] = wire.charCodeAt(k);
  return p;
}
const MP_ATTR_HEADER = 4; // flags, type, 2-octet length: MP attributes always use Extended Length here

/** Writes UPDATEs for one session into big buffers; `take()` hands them to the socket. */
export class UpdatePacker {
  private readonly cache = new Map<RouteAttributes, { v4?: EncodedAttributes | null; v6?: EncodedAttributes | null }>();
  private buf = Buffer.allocUnsafe(CHUNK);
  private pos = 0;
  private out: Buffer[] = [];
  /** UPDATE messages written since construction. */
  messages = 0;

  constructor(
    private readonly ctx: EncodingContext,
    private readonly maxLength = MAX_MESSAGE_LENGTH,
  ) {}

  /** Encoded attributes, or null when this session cannot carry `family` routes with these attributes (no next hop). */
  private encoded(attrs: RouteAttributes, family: IPFamily): EncodedAttributes | null {
    let entry = this.cache.get(attrs);
    if (!entry) this.cache.set(attrs, (entry = {}));
    const key = family === 'IPv4' ? 'v4' : 'v6';
    const have = entry[key];
    if (have !== undefined) return have;
    let result: EncodedAttributes | null = null;
    const list = pathAttributesFor(attrs, family, this.ctx);
    const nextHops = family === 'IPv6' ? ipv6NextHops(attrs, this.ctx) : [];
    if (list && nextHops) {
      const w = new Writer(128);
      for (const a of list) writeAttribute(w, a, { fourOctetAs: this.ctx.fourOctetAs });
      result = { attrs: w.result() };
      if (family === 'IPv6') {
        const head = new Writer(40);
        head.u16(AFI.IPV6).u8(SAFI.UNICAST);
        const end = head.lengthField(1);
        for (const nh of nextHops) head.bytes(addressBytes(nh));
        end();
        head.u8(0); // Reserved
        result.mpReachHead = head.result();
      }
    }
    entry[key] = result;
    return result;
  }

  /** False when routes of this family with these attributes cannot be sent on this session (no usable next hop). */
  canAnnounce(attrs: RouteAttributes, family: IPFamily): boolean {
    return this.encoded(attrs, family) !== null;
  }

  /** Forgets cached encodings of attribute sets no longer in use. */
  retain(inUse: ReadonlySet<RouteAttributes>): void {
    for (const k of this.cache.keys()) if (!inUse.has(k)) this.cache.delete(k);
  }

  private reserve(): void {
    if (this.buf.length - this.pos >= this.maxLength) return;
    if (this.pos > 0) this.out.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(CHUNK);
    this.pos = 0;
  }

  private header(start: number, length: number): void {
    this.buf.fill(0xff, start, start + MARKER_LENGTH);
    this.buf.writeUInt16BE(length, start + 16);
    this.buf[start + 18] = MessageType.UPDATE;
    this.messages++;
  }

  /**
   * Announces `wires` (NLRI bytes as latin1 strings) with `attrs`, packing as many per UPDATE as fit. Returns how
   * many were written (all of them, unless the attributes cannot be sent on this session: then 0).
   */
  announce(family: IPFamily, attrs: RouteAttributes, wires: readonly string[]): number {
    const enc = this.encoded(attrs, family);
    if (!enc) return 0;
    let i = 0;
    while (i < wires.length) {
      this.reserve();
      const b = this.buf;
      const start = this.pos;
      const limit = start + this.maxLength;
      let p = start + HEADER_LENGTH;
      b.writeUInt16BE(0, p); // Withdrawn Routes Length
      p += 2;
      const attrLengthAt = p;
      p += 2;
      if (family === 'IPv4') {
        enc.attrs.copy(b, p);
        p += enc.attrs.length;
        b.writeUInt16BE(enc.attrs.length, attrLengthAt);
        while (i < wires.length && p + wires[i]!.length <= limit) p = put(b, p, wires[i++]!);
      } else {
        // RFC 7606 §5.1: MP_REACH_NLRI first; its NLRI fill the room the other attributes leave.
        const head = enc.mpReachHead!;
        const mpAt = p;
        b[p] = AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH;
        b[p + 1] = AttrType.MP_REACH_NLRI;
        p += MP_ATTR_HEADER;
        head.copy(b, p);
        p += head.length;
        const nlriLimit = limit - enc.attrs.length;
        while (i < wires.length && p + wires[i]!.length <= nlriLimit) p = put(b, p, wires[i++]!);
        b.writeUInt16BE(p - mpAt - MP_ATTR_HEADER, mpAt + 2);
        enc.attrs.copy(b, p);
        p += enc.attrs.length;
        b.writeUInt16BE(p - attrLengthAt - 2, attrLengthAt);
      }
      this.header(start, p - start);
      this.pos = p;
    }
    return wires.length;
  }

  /** Withdraws `wires`, as many per UPDATE as fit. */
  withdraw(family: IPFamily, wires: readonly string[]): void {
    let i = 0;
    while (i < wires.length) {
      this.reserve();
      const b = this.buf;
      const start = this.pos;
      const limit = start + this.maxLength;
      let p = start + HEADER_LENGTH;
      if (family === 'IPv4') {
        const lengthAt = p;
        p += 2;
        const roomEnd = limit - 2; // the Total Path Attribute Length follows
        while (i < wires.length && p + wires[i]!.length <= roomEnd) p = put(b, p, wires[i++]!);
        b.writeUInt16BE(p - lengthAt - 2, lengthAt);
        b.writeUInt16BE(0, p);
        p += 2;
      } else {
        b.writeUInt16BE(0, p);
        p += 2;
        const attrLengthAt = p;
        p += 2;
        const mpAt = p;
        b[p] = AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH;
        b[p + 1] = AttrType.MP_UNREACH_NLRI;
        p += MP_ATTR_HEADER;
        b.writeUInt16BE(AFI.IPV6, p);
        b[p + 2] = SAFI.UNICAST;
        p += 3;
        while (i < wires.length && p + wires[i]!.length <= limit) p = put(b, p, wires[i++]!);
        b.writeUInt16BE(p - mpAt - MP_ATTR_HEADER, mpAt + 2);
        b.writeUInt16BE(p - attrLengthAt - 2, attrLengthAt);
      }
      this.header(start, p - start);
      this.pos = p;
    }
  }

  /** Appends an already framed message (End-of-RIB, KEEPALIVE) in order with the UPDATEs. */
  raw(message: Buffer): void {
    this.reserve();
    message.copy(this.buf, this.pos);
    this.pos += message.length;
  }

  /** Bytes written so far, not yet taken. */
  get pendingBytes(): number {
    return this.out.reduce((n, b) => n + b.length, 0) + this.pos;
  }

  /** The written bytes, in order; the packer starts afresh. */
  take(): Buffer[] {
    if (this.pos > 0) {
      this.out.push(this.buf.subarray(0, this.pos));
      // The taken bytes must not be overwritten while the socket still holds them: go on after them.
      this.buf = this.buf.subarray(this.pos);
      this.pos = 0;
    }
    const out = this.out;
    this.out = [];
    return out;
  }
}
