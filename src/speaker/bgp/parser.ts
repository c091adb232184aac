// Incremental BGP message parser: feed it TCP chunks, it calls back once per complete message. Malformed input throws
// a NotificationError carrying the code, subcode and data RFC 4271 §6 (and RFC 7606 for UPDATEs) prescribe; errors
// that RFC 7606 handles without a session reset come back as notes on the UpdateMessage instead.
import { NotificationError } from './errors.js';
import {
  AFI, AsPathSegmentType, AttrFlag, AttrType, CapabilityCode, EXPECTED_FLAGS, ErrorCode, HEADER_LENGTH,
  HeaderSubcode, MARKER_LENGTH, MAX_MESSAGE_LENGTH, MIN_LENGTH, MessageType, OpenSubcode, OptionalParameterType,
  RouteRefreshSubcode, SAFI, UpdateSubcode,
  type AsPathSegment, type Capability, type Message, type OpenMessage, type PathAttribute, type UpdateErrorNote,
  type UpdateMessage,
} from './messages.js';
import { familyOfAfi, ipv4Text, ipv6Text, readPrefixes } from './nlri.js';
import { Reader } from './reader.js';

export interface ParserOptions {
  /** AS_PATH and AGGREGATOR carry 4-octet AS numbers (both sides sent the capability, RFC 6793 §4.1). */
  fourOctetAs: boolean;
  maxMessageLength: number;
}

export class Parser {
  readonly options: ParserOptions = { fourOctetAs: false, maxMessageLength: MAX_MESSAGE_LENGTH };
  private buffer: Buffer = Buffer.alloc(0);
  private stopped = false;

  /** Parses every complete message in what has arrived so far; keeps a partial one for the next chunk. */
  parse(chunk: Buffer, onMessage: (msg: Message) => void): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    while (!this.stopped && this.buffer.length - offset >= HEADER_LENGTH) {
      const length = checkHeader(this.buffer, offset, this.options.maxMessageLength);
      if (this.buffer.length - offset < length) break;
      const msg = parseMessage(this.buffer.subarray(offset, offset + length), this.options);
      offset += length;
      onMessage(msg);
    }
    this.buffer = this.stopped ? Buffer.alloc(0) : this.buffer.subarray(offset);
  }

  /** Discards what is buffered and ignores the rest of the current chunk (the session is ending). */
  stop(): void {
    this.stopped = true;
    this.buffer = Buffer.alloc(0);
  }

  get buffered(): number {
    return this.buffer.length;
  }
}

/** Parses exactly one message (header included); throws NotificationError for anything malformed. */
export function parseMessage(msg: Uint8Array, options: ParserOptions = { fourOctetAs: true, maxMessageLength: MAX_MESSAGE_LENGTH }): Message {
  const length = checkHeader(msg, 0, options.maxMessageLength);
  if (length !== msg.length) {
    throw new NotificationError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH, msg.subarray(16, 18),
      `length field ${length} but ${msg.length} bytes given`);
  }
  const type = msg[18]!;
  const r = new Reader(msg, HEADER_LENGTH, length);
  switch (type) {
    case MessageType.OPEN: return parseOpen(r);
    case MessageType.UPDATE: return parseUpdate(r, options.fourOctetAs);
    case MessageType.NOTIFICATION: return { type: 'notification', errorCode: r.u8(), errorSubcode: r.u8(), data: Buffer.from(r.bytes(r.remaining)) };
    case MessageType.KEEPALIVE: return { type: 'keepalive' };
    case MessageType.ROUTE_REFRESH: {
      // RFC 7313 §5: any length but 23 is an error whose data is the whole message.
      if (length !== 23) {
        throw new NotificationError(ErrorCode.ROUTE_REFRESH_MESSAGE, RouteRefreshSubcode.INVALID_MESSAGE_LENGTH, Buffer.from(msg),
          `ROUTE-REFRESH of ${length} bytes`);
      }
      return { type: 'route-refresh', afi: r.u16(), subtype: r.u8(), safi: r.u8() };
    }
  }
  throw new Error('unreachable: checkHeader accepts known types only');
}

/** RFC 4271 §6.1: marker, length and type checks; returns the message length. */
function checkHeader(b: Uint8Array, at: number, max: number): number {
  for (let i = 0; i < MARKER_LENGTH; i++) {
    if (b[at + i] !== 0xff) throw new NotificationError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, undefined, 'marker is not all ones');
  }
  const length = (b[at + 16]! << 8) | b[at + 17]!;
  const type = b[at + 18]!;
  const min = MIN_LENGTH[type];
  if (length < HEADER_LENGTH || length > max) {
    throw new NotificationError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH, Buffer.from(b.subarray(at + 16, at + 18)),
      `length ${length} outside ${HEADER_LENGTH}..${max}`);
  }
  if (min === undefined) {
    throw new NotificationError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_TYPE, Buffer.from([type]), `message type ${type}`);
  }
  if (length < min || (type === MessageType.KEEPALIVE && length !== HEADER_LENGTH)) {
    throw new NotificationError(ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH, Buffer.from(b.subarray(at + 16, at + 18)),
      `length ${length} is wrong for message type ${type}`);
  }
  return length;
}

const openError = (subcode: number, detail: string, data?: Uint8Array): NotificationError =>
  new NotificationError(ErrorCode.OPEN_MESSAGE, subcode, data, detail);

// RFC 4271 §4.2, §6.2
function parseOpen(r: Reader): OpenMessage {
  const version = r.u8();
  if (version !== 4) throw openError(OpenSubcode.UNSUPPORTED_VERSION_NUMBER, `version ${version}`, Buffer.from([0, 4]));
  const myAutonomousSystem = r.u16();
  const holdTime = r.u16();
  if (holdTime === 1 || holdTime === 2) throw openError(OpenSubcode.UNACCEPTABLE_HOLD_TIME, `hold time ${holdTime} s (must be 0 or at least 3)`);
  const id = r.bytes(4);
  const bgpIdentifier = ipv4Text(id);
  // RFC 6286 §2.2: a zero BGP Identifier is not valid.
  if (bgpIdentifier === '0.0.0.0') throw openError(OpenSubcode.BAD_BGP_IDENTIFIER, 'BGP Identifier 0.0.0.0');
  let optLength = r.u8();
  let extended = false;
  // RFC 9072 §2: a Non-Ext OP Type of 255 means the lengths that follow are 2 octets.
  if (optLength > 0 && r.remaining > 0 && r.buf[r.offset] === OptionalParameterType.EXTENDED_LENGTH) {
    r.u8();
    r.need(2, () => openError(OpenSubcode.UNSPECIFIC, 'extended optional parameters length missing'));
    optLength = r.u16();
    extended = true;
  }
  if (optLength !== r.remaining) {
    throw openError(OpenSubcode.UNSPECIFIC, `optional parameters length ${optLength} but ${r.remaining} octets follow`);
  }
  const capabilities: Capability[] = [];
  while (r.remaining > 0) {
    const headerLength = extended ? 3 : 2;
    r.need(headerLength, () => openError(OpenSubcode.UNSPECIFIC, 'truncated optional parameter'));
    const paramType = r.u8();
    const paramLength = extended ? r.u16() : r.u8();
    r.need(paramLength, () => openError(OpenSubcode.UNSPECIFIC, `optional parameter of ${paramLength} octets overruns the message`));
    const p = r.sub(paramLength);
    if (paramType !== OptionalParameterType.CAPABILITIES) {
      throw openError(OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER, `optional parameter type ${paramType}`);
    }
    while (p.remaining > 0) capabilities.push(parseCapability(p));
  }
  return { type: 'open', version, myAutonomousSystem, holdTime, bgpIdentifier, capabilities };
}

// RFC 5492 §4
function parseCapability(r: Reader): Capability {
  r.need(2, () => openError(OpenSubcode.UNSPECIFIC, 'truncated capability'));
  const code = r.u8();
  const length = r.u8();
  r.need(length, () => openError(OpenSubcode.UNSPECIFIC, `capability ${code} of ${length} octets overruns its parameter`));
  const v = r.sub(length);
  const bad = (): NotificationError => openError(OpenSubcode.UNSPECIFIC, `capability ${code} has a malformed value of ${length} octets`);
  switch (code) {
    case CapabilityCode.MULTIPROTOCOL: {
      if (length !== 4) throw bad();
      const afi = v.u16();
      v.u8();
      return { kind: 'multiprotocol', afi, safi: v.u8() };
    }
    case CapabilityCode.ROUTE_REFRESH:
      if (length !== 0) throw bad();
      return { kind: 'route-refresh' };
    case CapabilityCode.ENHANCED_ROUTE_REFRESH:
      if (length !== 0) throw bad();
      return { kind: 'enhanced-route-refresh' };
    case CapabilityCode.FOUR_OCTET_AS:
      if (length !== 4) throw bad();
      return { kind: 'four-octet-as', asn: v.u32() };
    case CapabilityCode.GRACEFUL_RESTART: {
      if (length < 2 || (length - 2) % 4 !== 0) throw bad();
      const word = v.u16();
      const families: { afi: number; safi: number; forwardingState: boolean }[] = [];
      while (v.remaining > 0) families.push({ afi: v.u16(), safi: v.u8(), forwardingState: (v.u8() & 0x80) !== 0 });
      return {
        kind: 'graceful-restart',
        restartState: (word & 0x8000) !== 0,
        notification: (word & 0x4000) !== 0,
        restartTime: word & 0xfff,
        families,
      };
    }
    default:
      return { kind: 'unknown', code, value: Buffer.from(v.bytes(length)) };
  }
}

const updateError = (subcode: number, detail: string, data?: Uint8Array): NotificationError =>
  new NotificationError(ErrorCode.UPDATE_MESSAGE, subcode, data, detail);

// RFC 4271 §4.3, §6.3 as revised by RFC 7606
function parseUpdate(r: Reader, fourOctetAs: boolean): UpdateMessage {
  const withdrawnLength = r.u16();
  if (withdrawnLength + 2 > r.remaining) {
    throw updateError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `withdrawn routes length ${withdrawnLength} overruns the message`);
  }
  const withdrawn = readPrefixes(r.sub(withdrawnLength), 'IPv4');
  if ('error' in withdrawn) throw updateError(UpdateSubcode.INVALID_NETWORK_FIELD, `withdrawn routes: ${withdrawn.error}`);
  const attrsLength = r.u16();
  if (attrsLength > r.remaining) {
    throw updateError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `total path attribute length ${attrsLength} overruns the message`);
  }
  const attrs = parseAttributes(r.sub(attrsLength), fourOctetAs);
  const nlri = readPrefixes(r, 'IPv4');
  if ('error' in nlri) throw updateError(UpdateSubcode.INVALID_NETWORK_FIELD, `NLRI: ${nlri.error}`);

  const errors = attrs.errors;
  // RFC 7606 §3 (d): missing well-known mandatory attributes make the UPDATE a withdrawal, not a reset.
  const kinds = new Set(attrs.list.map((a) => a.kind));
  const mpReach = attrs.list.find((a) => a.kind === 'mp-reach-nlri');
  const announces = nlri.prefixes.length > 0 || (mpReach !== undefined && mpReach.nlri.length > 0);
  if (announces) {
    const required: [PathAttribute['kind'], number][] = [['origin', AttrType.ORIGIN], ['as-path', AttrType.AS_PATH]];
    if (nlri.prefixes.length > 0) required.push(['next-hop', AttrType.NEXT_HOP]);
    for (const [kind, typeCode] of required) {
      if (!kinds.has(kind) && !errors.some((e) => e.typeCode === typeCode)) {
        errors.push({ action: 'treat-as-withdraw', typeCode, reason: `missing well-known attribute ${typeCode}` });
      }
    }
  }
  const out: UpdateMessage = { type: 'update', withdrawnRoutes: withdrawn.prefixes, pathAttributes: attrs.list, nlri: nlri.prefixes };
  if (errors.length > 0) out.errors = errors;
  return out;
}

interface ParsedAttributes {
  list: PathAttribute[];
  errors: UpdateErrorNote[];
}

function parseAttributes(r: Reader, fourOctetAs: boolean): ParsedAttributes {
  const list: PathAttribute[] = [];
  const errors: UpdateErrorNote[] = [];
  const seen = new Set<number>();
  while (r.remaining > 0) {
    const start = r.offset;
    // RFC 7606 §4: too few octets for an attribute header, or a length past the end: treat-as-withdraw, and the
    // Total Attribute Length still locates the NLRI.
    if (r.remaining < 3 || ((r.buf[r.offset]! & AttrFlag.EXTENDED_LENGTH) !== 0 && r.remaining < 4)) {
      errors.push({ action: 'treat-as-withdraw', reason: `${r.remaining} trailing octets in the path attributes` });
      break;
    }
    const flags = r.u8();
    const typeCode = r.u8();
    const length = (flags & AttrFlag.EXTENDED_LENGTH) !== 0 ? r.u16() : r.u8();
    if (length > r.remaining) {
      if (typeCode === AttrType.MP_REACH_NLRI || typeCode === AttrType.MP_UNREACH_NLRI) {
        throw updateError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `attribute ${typeCode} of ${length} octets overruns the path attributes`,
          r.buf.subarray(start + 1, r.end));
      }
      errors.push({ action: 'treat-as-withdraw', typeCode, reason: `attribute ${typeCode} of ${length} octets overruns the path attributes` });
      break;
    }
    const v = r.sub(length);
    // RFC 4271 §6.3: the Data field of attribute errors is the attribute itself (type, length, value).
    const raw = (): Uint8Array => Buffer.from(r.buf.subarray(start + 1, v.end));
    const isMP = typeCode === AttrType.MP_REACH_NLRI || typeCode === AttrType.MP_UNREACH_NLRI;
    if (seen.has(typeCode)) {
      // RFC 7606 §3 (g)
      if (isMP) throw updateError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `attribute ${typeCode} appears twice`);
      errors.push({ action: 'attribute-discard', typeCode, reason: `attribute ${typeCode} repeated; the first is kept` });
      continue;
    }
    seen.add(typeCode);
    const expected = EXPECTED_FLAGS[typeCode];
    if (expected === undefined) {
      // RFC 4271 §6.3: an unrecognized well-known attribute resets the session; unknown optional ones are kept.
      if ((flags & AttrFlag.OPTIONAL) === 0) {
        throw updateError(UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, `unrecognized well-known attribute ${typeCode}`, raw());
      }
      list.push({ kind: 'other', flags, typeCode, value: Buffer.from(v.bytes(length)) });
      continue;
    }
    const flagsWrong = (flags & (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)) !== expected
      // The Partial bit is only meaningful on optional transitive attributes (RFC 4271 §4.3).
      || ((flags & AttrFlag.PARTIAL) !== 0 && expected !== (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE));
    if (flagsWrong) {
      if (isMP) throw updateError(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, `attribute ${typeCode} has flags 0x${flags.toString(16)}`, raw());
      // RFC 7606 §3 (c)
      errors.push({ action: 'treat-as-withdraw', typeCode, reason: `attribute ${typeCode} has flags 0x${flags.toString(16)}` });
      continue;
    }
    const result = parseKnownAttribute(typeCode, flags, v, length, fourOctetAs, raw);
    if ('error' in result) errors.push(result.error);
    else list.push(result.attribute);
  }
  return { list, errors };
}

type AttributeResult = { attribute: PathAttribute } | { error: UpdateErrorNote };

function parseKnownAttribute(
  typeCode: number, flags: number, v: Reader, length: number, fourOctetAs: boolean, raw: () => Uint8Array,
): AttributeResult {
  const withdraw = (reason: string): AttributeResult => ({ error: { action: 'treat-as-withdraw', typeCode, reason } });
  const discard = (reason: string): AttributeResult => ({ error: { action: 'attribute-discard', typeCode, reason } });
  switch (typeCode) {
    case AttrType.ORIGIN: { // RFC 7606 §7.1
      if (length !== 1) return withdraw(`ORIGIN of ${length} octets`);
      const origin = v.u8();
      if (origin > 2) return withdraw(`ORIGIN value ${origin}`);
      return { attribute: { kind: 'origin', flags, origin } };
    }
    case AttrType.AS_PATH: { // RFC 7606 §7.2
      const segments = readSegments(v, fourOctetAs ? 4 : 2);
      if (typeof segments === 'string') return withdraw(`AS_PATH: ${segments}`);
      return { attribute: { kind: 'as-path', flags, segments } };
    }
    case AttrType.AS4_PATH: { // RFC 6793 §6: a malformed AS4_PATH is discarded
      const segments = readSegments(v, 4);
      if (typeof segments === 'string') return discard(`AS4_PATH: ${segments}`);
      return { attribute: { kind: 'as4-path', flags, segments } };
    }
    case AttrType.NEXT_HOP: // RFC 7606 §7.3
      if (length !== 4) return withdraw(`NEXT_HOP of ${length} octets`);
      return { attribute: { kind: 'next-hop', flags, nextHop: ipv4Text(v.bytes(4)) } };
    case AttrType.MULTI_EXIT_DISC: // RFC 7606 §7.4
      if (length !== 4) return withdraw(`MULTI_EXIT_DISC of ${length} octets`);
      return { attribute: { kind: 'multi-exit-disc', flags, value: v.u32() } };
    case AttrType.LOCAL_PREF: // RFC 7606 §7.5
      if (length !== 4) return withdraw(`LOCAL_PREF of ${length} octets`);
      return { attribute: { kind: 'local-pref', flags, value: v.u32() } };
    case AttrType.ATOMIC_AGGREGATE: // RFC 7606 §7.6
      if (length !== 0) return discard(`ATOMIC_AGGREGATE of ${length} octets`);
      return { attribute: { kind: 'atomic-aggregate', flags } };
    case AttrType.AGGREGATOR: { // RFC 7606 §7.7
      const asLength = fourOctetAs ? 4 : 2;
      if (length !== asLength + 4) return discard(`AGGREGATOR of ${length} octets`);
      const asn = asLength === 4 ? v.u32() : v.u16();
      return { attribute: { kind: 'aggregator', flags, asn, address: ipv4Text(v.bytes(4)) } };
    }
    case AttrType.AS4_AGGREGATOR: // RFC 6793 §6
      if (length !== 8) return discard(`AS4_AGGREGATOR of ${length} octets`);
      return { attribute: { kind: 'other', flags, typeCode, value: Buffer.from(v.bytes(8)) } };
    case AttrType.COMMUNITIES: { // RFC 7606 §7.8
      if (length === 0 || length % 4 !== 0) return withdraw(`COMMUNITIES of ${length} octets`);
      const communities: number[] = [];
      while (v.remaining > 0) communities.push(v.u32());
      return { attribute: { kind: 'communities', flags, communities } };
    }
    case AttrType.LARGE_COMMUNITY: { // RFC 8092 §6
      if (length === 0 || length % 12 !== 0) return withdraw(`LARGE_COMMUNITY of ${length} octets`);
      const communities: [number, number, number][] = [];
      while (v.remaining > 0) communities.push([v.u32(), v.u32(), v.u32()]);
      return { attribute: { kind: 'large-communities', flags, communities } };
    }
    case AttrType.ORIGINATOR_ID: // RFC 7606 §7.9
      if (length !== 4) return withdraw(`ORIGINATOR_ID of ${length} octets`);
      return { attribute: { kind: 'other', flags, typeCode, value: Buffer.from(v.bytes(4)) } };
    case AttrType.CLUSTER_LIST: // RFC 7606 §7.10
      if (length === 0 || length % 4 !== 0) return withdraw(`CLUSTER_LIST of ${length} octets`);
      return { attribute: { kind: 'other', flags, typeCode, value: Buffer.from(v.bytes(length)) } };
    case AttrType.EXTENDED_COMMUNITIES: // RFC 7606 §7.14
      if (length === 0 || length % 8 !== 0) return withdraw(`EXTENDED_COMMUNITIES of ${length} octets`);
      return { attribute: { kind: 'other', flags, typeCode, value: Buffer.from(v.bytes(length)) } };
    case AttrType.MP_REACH_NLRI:
      return parseMpReach(flags, v, length, raw);
    case AttrType.MP_UNREACH_NLRI: {
      if (length < 3) throw updateError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `MP_UNREACH_NLRI of ${length} octets`, raw());
      const afi = v.u16();
      const safi = v.u8();
      const family = familyOfAfi(afi);
      if (!family || safi !== SAFI.UNICAST) {
        return { attribute: { kind: 'mp-unreach-nlri', flags, afi, safi, withdrawnRoutes: [] } };
      }
      const routes = readPrefixes(v, family);
      if ('error' in routes) throw updateError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `MP_UNREACH_NLRI: ${routes.error}`, raw());
      return { attribute: { kind: 'mp-unreach-nlri', flags, afi, safi, withdrawnRoutes: routes.prefixes } };
    }
  }
  throw new Error(`unreachable: attribute type ${typeCode} has expected flags but no parser`);
}

// RFC 4760 §3; a malformed one cannot be told apart from its NLRI, hence a reset (RFC 7606 §5.3, §7.11).
function parseMpReach(flags: number, v: Reader, length: number, raw: () => Uint8Array): AttributeResult {
  const fail = (detail: string): NotificationError => updateError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, `MP_REACH_NLRI: ${detail}`, raw());
  if (length < 5) throw fail(`${length} octets`);
  const afi = v.u16();
  const safi = v.u8();
  const nextHopLength = v.u8();
  if (nextHopLength + 1 > v.remaining) throw fail(`next hop length ${nextHopLength} overruns the attribute`);
  const nh = v.bytes(nextHopLength);
  v.u8(); // Reserved
  const family = familyOfAfi(afi);
  if (!family || safi !== SAFI.UNICAST) {
    return { attribute: { kind: 'mp-reach-nlri', flags, afi, safi, nextHops: [], nlri: [] } };
  }
  const nlri = readPrefixes(v, family);
  if ('error' in nlri) throw fail(nlri.error);
  // RFC 2545 §3 (16 or 32 octets for IPv6); RFC 8950 carries IPv6 next hops for IPv4 NLRI the same way.
  let nextHops: string[];
  if (nextHopLength === 4 && afi === AFI.IPV4) nextHops = [ipv4Text(nh)];
  else if (nextHopLength === 16) nextHops = [ipv6Text(nh)];
  else if (nextHopLength === 32) nextHops = [ipv6Text(nh), ipv6Text(nh, 16)];
  else {
    // RFC 7606 §7.11: the NLRI could be located, so only these routes are lost.
    return { error: { action: 'treat-as-withdraw', typeCode: AttrType.MP_REACH_NLRI, reason: `next hop of ${nextHopLength} octets for AFI ${afi}` } };
  }
  return { attribute: { kind: 'mp-reach-nlri', flags, afi, safi, nextHops, nlri: nlri.prefixes } };
}

function readSegments(v: Reader, asLength: 2 | 4): AsPathSegment[] | string {
  const segments: AsPathSegment[] = [];
  while (v.remaining > 0) {
    if (v.remaining < 2) return 'truncated segment header';
    const type = v.u8();
    const count = v.u8();
    if (type < AsPathSegmentType.AS_SET || type > AsPathSegmentType.AS_CONFED_SET) return `segment type ${type}`;
    if (count === 0) return 'empty segment';
    if (v.remaining < count * asLength) return `segment of ${count} AS numbers overruns the attribute`;
    const asns: number[] = [];
    for (let i = 0; i < count; i++) asns.push(asLength === 4 ? v.u32() : v.u16());
    segments.push({ type, asns });
  }
  return segments;
}

/** The peer's real AS: the four-octet-as capability when present, else the OPEN's 2-octet field (RFC 6793 §4.1). */
export function peerAsOf(open: OpenMessage): number {
  const cap = open.capabilities.find((c) => c.kind === 'four-octet-as');
  return cap && cap.kind === 'four-octet-as' ? cap.asn : open.myAutonomousSystem;
}

