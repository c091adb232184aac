// Writes BGP messages (RFC 4271 §4). The general path, used for OPEN, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH and
// for UPDATEs in tests and fake peers; the speaker's bulk UPDATEs come from UpdatePacker, which writes the same bytes.
import {
  AFI, AttrFlag, AttrType, CapabilityCode, HEADER_LENGTH, MARKER_LENGTH, MAX_MESSAGE_LENGTH, MessageType,
  OptionalParameterType,
  type Capability, type Message, type NotificationMessage, type OpenMessage, type PathAttribute, type RouteRefreshMessage,
  type UpdateMessage, type AsPathSegment,
} from './messages.js';
import { addressBytes, prefixBytes } from './nlri.js';
import { Writer } from './writer.js';

export interface SerializeOptions {
  /** AS numbers in AS_PATH and AGGREGATOR take 4 octets (both sides sent the capability, RFC 6793 §4.1). */
  fourOctetAs: boolean;
}

const MARKER = Buffer.alloc(MARKER_LENGTH, 0xff);

/** Header + body; `type` may be any octet so that tests can build unknown types. */
export function frame(type: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
  MARKER.copy(out, 0);
  out.writeUInt16BE(HEADER_LENGTH + body.length, 16); // RFC 4271 §4.1 Length
  out[18] = type;
  out.set(body, HEADER_LENGTH);
  return out;
}

export function serialize(msg: Message, opts: SerializeOptions = { fourOctetAs: true }): Buffer {
  switch (msg.type) {
    case 'open': return serializeOpen(msg);
    case 'update': return serializeUpdate(msg, opts);
    case 'notification': return serializeNotification(msg);
    case 'keepalive': return serializeKeepalive();
    case 'route-refresh': return serializeRouteRefresh(msg);
  }
}

const KEEPALIVE = frame(MessageType.KEEPALIVE, new Uint8Array(0));

// RFC 4271 §4.4: a header alone.
export const serializeKeepalive = (): Buffer => KEEPALIVE;

// RFC 4271 §4.5
export function serializeNotification(n: Omit<NotificationMessage, 'type'>): Buffer {
  const w = new Writer(2 + n.data.length);
  w.u8(n.errorCode).u8(n.errorSubcode);
  // A NOTIFICATION must fit in one message; data beyond that is cut rather than never sent.
  w.bytes(n.data.subarray(0, MAX_MESSAGE_LENGTH - HEADER_LENGTH - 2));
  return frame(MessageType.NOTIFICATION, w.result());
}

// RFC 2918 §3, RFC 7313 §3.2
export function serializeRouteRefresh(m: Omit<RouteRefreshMessage, 'type'>): Buffer {
  return frame(MessageType.ROUTE_REFRESH, Buffer.from([m.afi >> 8, m.afi & 0xff, m.subtype, m.safi]));
}

// RFC 4271 §4.2, capabilities in one Optional Parameter of type 2 (RFC 5492 §4)
export function serializeOpen(open: Omit<OpenMessage, 'type'>): Buffer {
  const caps = new Writer();
  for (const c of open.capabilities) writeCapability(caps, c);
  const capBytes = caps.result();
  const w = new Writer(64);
  w.u8(open.version).u16(open.myAutonomousSystem).u16(open.holdTime).bytes(addressBytes(open.bgpIdentifier));
  if (capBytes.length === 0) {
    w.u8(0);
  } else if (capBytes.length <= 255 - 2) {
    w.u8(capBytes.length + 2).u8(OptionalParameterType.CAPABILITIES).u8(capBytes.length).bytes(capBytes);
  } else {
    // RFC 9072 §2: Non-Ext OP Len 255, Non-Ext OP Type 255, then a 2-octet Extended Opt. Parm. Length.
    w.u8(255).u8(OptionalParameterType.EXTENDED_LENGTH).u16(capBytes.length + 3);
    w.u8(OptionalParameterType.CAPABILITIES).u16(capBytes.length).bytes(capBytes);
  }
  return frame(MessageType.OPEN, w.result());
}

function writeCapability(w: Writer, c: Capability): void {
  switch (c.kind) {
    case 'multiprotocol': // RFC 4760 §8
      w.u8(CapabilityCode.MULTIPROTOCOL).u8(4).u16(c.afi).u8(0).u8(c.safi);
      return;
    case 'route-refresh': // RFC 2918 §2
      w.u8(CapabilityCode.ROUTE_REFRESH).u8(0);
      return;
    case 'enhanced-route-refresh': // RFC 7313 §3
      w.u8(CapabilityCode.ENHANCED_ROUTE_REFRESH).u8(0);
      return;
    case 'graceful-restart': { // RFC 4724 §3, N bit RFC 8538 §2
      w.u8(CapabilityCode.GRACEFUL_RESTART).u8(2 + 4 * c.families.length);
      const flags = (c.restartState ? 0x8 : 0) | (c.notification ? 0x4 : 0);
      w.u16((flags << 12) | (c.restartTime & 0xfff));
      for (const f of c.families) w.u16(f.afi).u8(f.safi).u8(f.forwardingState ? 0x80 : 0);
      return;
    }
    case 'four-octet-as': // RFC 6793 §3
      w.u8(CapabilityCode.FOUR_OCTET_AS).u8(4).u32(c.asn);
      return;
    case 'unknown':
      w.u8(c.code).u8(c.value.length).bytes(c.value);
      return;
  }
}

// RFC 4271 §4.3
export function serializeUpdate(u: Omit<UpdateMessage, 'type'>, opts: SerializeOptions = { fourOctetAs: true }): Buffer {
  const w = new Writer(256);
  const endWithdrawn = w.lengthField(2);
  for (const p of u.withdrawnRoutes) w.bytes(prefixBytes(p));
  endWithdrawn();
  const endAttrs = w.lengthField(2);
  for (const a of u.pathAttributes) writeAttribute(w, a, opts);
  endAttrs();
  for (const p of u.nlri) w.bytes(prefixBytes(p));
  return frame(MessageType.UPDATE, w.result());
}

/** One path attribute: flags, type, 1- or 2-octet length (Extended Length when the value needs it), value. */
export function writeAttribute(w: Writer, a: PathAttribute, opts: SerializeOptions): void {
  const value = attributeValue(a, opts);
  const typeCode = a.kind === 'other' ? a.typeCode : TYPE_OF[a.kind];
  const extended = value.length > 255 || (a.flags & AttrFlag.EXTENDED_LENGTH) !== 0;
  const flags = extended ? a.flags | AttrFlag.EXTENDED_LENGTH : a.flags & ~AttrFlag.EXTENDED_LENGTH;
  w.u8(flags).u8(typeCode);
  if (extended) w.u16(value.length);
  else w.u8(value.length);
  w.bytes(value);
}

const TYPE_OF: Record<Exclude<PathAttribute['kind'], 'other'>, number> = {
  'origin': AttrType.ORIGIN,
  'as-path': AttrType.AS_PATH,
  'next-hop': AttrType.NEXT_HOP,
  'multi-exit-disc': AttrType.MULTI_EXIT_DISC,
  'local-pref': AttrType.LOCAL_PREF,
  'atomic-aggregate': AttrType.ATOMIC_AGGREGATE,
  'aggregator': AttrType.AGGREGATOR,
  'communities': AttrType.COMMUNITIES,
  'mp-reach-nlri': AttrType.MP_REACH_NLRI,
  'mp-unreach-nlri': AttrType.MP_UNREACH_NLRI,
  'as4-path': AttrType.AS4_PATH,
  'large-communities': AttrType.LARGE_COMMUNITY,
};

function attributeValue(a: PathAttribute, opts: SerializeOptions): Uint8Array {
  const w = new Writer(32);
  switch (a.kind) {
    case 'origin':
      w.u8(a.origin);
      break;
    case 'as-path':
      writeSegments(w, a.segments, opts.fourOctetAs);
      break;
    case 'as4-path':
      writeSegments(w, a.segments, true);
      break;
    case 'next-hop':
      w.bytes(addressBytes(a.nextHop));
      break;
    case 'multi-exit-disc':
    case 'local-pref':
      w.u32(a.value);
      break;
    case 'atomic-aggregate':
      break;
    case 'aggregator':
      if (opts.fourOctetAs) w.u32(a.asn);
      else w.u16(a.asn);
      w.bytes(addressBytes(a.address));
      break;
    case 'communities':
      for (const c of a.communities) w.u32(c);
      break;
    case 'large-communities':
      for (const [g, l1, l2] of a.communities) w.u32(g).u32(l1).u32(l2);
      break;
    case 'mp-reach-nlri': { // RFC 4760 §3
      w.u16(a.afi).u8(a.safi);
      const endNextHop = w.lengthField(1);
      for (const nh of a.nextHops) w.bytes(addressBytes(nh));
      endNextHop();
      w.u8(0); // Reserved
      for (const p of a.nlri) w.bytes(prefixBytes(p));
      break;
    }
    case 'mp-unreach-nlri': // RFC 4760 §4
      w.u16(a.afi).u8(a.safi);
      for (const p of a.withdrawnRoutes) w.bytes(prefixBytes(p));
      break;
    case 'other':
      w.bytes(a.value);
      break;
  }
  return w.result();
}

function writeSegments(w: Writer, segments: readonly AsPathSegment[], fourOctet: boolean): void {
  for (const s of segments) {
    w.u8(s.type).u8(s.asns.length);
    for (const asn of s.asns) {
      if (fourOctet) w.u32(asn);
      else w.u16(asn);
    }
  }
}

/** End-of-RIB marker (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an empty MP_UNREACH_NLRI for the others. */
export function serializeEndOfRib(afi: number, safi: number): Buffer {
  if (afi === AFI.IPV4 && safi === 1) return serializeUpdate({ withdrawnRoutes: [], pathAttributes: [], nlri: [] });
  return serializeUpdate({
    withdrawnRoutes: [],
    pathAttributes: [{ kind: 'mp-unreach-nlri', flags: AttrFlag.OPTIONAL, afi, safi, withdrawnRoutes: [] }],
    nlri: [],
  });
}
