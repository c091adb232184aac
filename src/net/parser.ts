// Reads Ethernet / ARP / IPv6 Neighbor Discovery frames from bytes. Nothing here throws on bad input: every
// function returns ParseResult, and a rejection names what is wrong (and the rule) so that a debug log of dropped
// frames explains itself. Address fields are views into the frame, not copies.
import { isMulticastIpv6, isSolicitedNodeMulticast, isUnspecifiedIpv6 } from './addresses.js';
import { icmpv6Checksum, icmpv6ChecksumValid } from './checksum.js';
import {
  ARP_ETHERNET_IPV4_LENGTH,
  ArpHardwareType,
  type ArpFrame,
  type ArpPacket,
  ETHERNET_HEADER_LENGTH,
  type EthernetHeader,
  EtherType,
  Icmpv6Type,
  IPV6_HEADER_LENGTH,
  IpProtocol,
  type Ipv6Header,
  LINK_LAYER_OPTION_LENGTH,
  NDP_MESSAGE_HEADER_LENGTH,
  type NdpFrame,
  type NdpMessage,
  type NdpOption,
  NdpOptionType,
  type ParseResult,
} from './messages.js';

const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });
const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;
const MAX_VLAN_TAGS = 2;

// IEEE 802.3 Ethernet II, IEEE 802.1Q tags
export function parseEthernet(frame: Buffer, length = frame.length): ParseResult<EthernetHeader> {
  if (length > frame.length) return fail(`frame length ${length} exceeds the ${frame.length}-byte buffer`);
  if (length < ETHERNET_HEADER_LENGTH) {
    return fail(`frame of ${length} bytes is shorter than an Ethernet header (${ETHERNET_HEADER_LENGTH})`);
  }
  let offset = 12;
  let etherType = frame.readUInt16BE(offset);
  const vlanIds: number[] = [];
  while (etherType === EtherType.VLAN || etherType === EtherType.QinQ) {
    if (vlanIds.length === MAX_VLAN_TAGS) return fail(`more than ${MAX_VLAN_TAGS} VLAN tags`);
    if (offset + 6 > length) return fail(`frame of ${length} bytes ends inside an 802.1Q tag`);
    vlanIds.push(frame.readUInt16BE(offset + 2) & 0x0fff);
    offset += 4;
    etherType = frame.readUInt16BE(offset);
  }
  if (etherType < 0x0600) return fail(`type/length field ${etherType} is an 802.3 length, not an Ethernet II EtherType`);
  return {
    ok: true,
    value: {
      destination: frame.subarray(0, 6),
      source: frame.subarray(6, 12),
      vlanIds,
      etherType,
      payloadOffset: offset + 2,
    },
  };
}

// RFC 826 "Packet format"
export function parseArp(frame: Buffer, offset: number, end: number): ParseResult<ArpPacket> {
  const available = end - offset;
  if (available < 8) return fail(`ARP packet of ${available} bytes is shorter than its fixed header (8)`);
  const hardwareType = frame.readUInt16BE(offset);
  const protocolType = frame.readUInt16BE(offset + 2);
  const hardwareAddressLength = frame[offset + 4]!;
  const protocolAddressLength = frame[offset + 5]!;
  if (hardwareType !== ArpHardwareType.Ethernet) return fail(`ARP hardware type ${hardwareType} is not Ethernet (1)`);
  if (protocolType !== EtherType.IPv4) return fail(`ARP protocol type ${hex4(protocolType)} is not IPv4 (0x0800)`);
  if (hardwareAddressLength !== 6) return fail(`ARP hardware address length ${hardwareAddressLength} is not 6 (Ethernet)`);
  if (protocolAddressLength !== 4) return fail(`ARP protocol address length ${protocolAddressLength} is not 4 (IPv4)`);
  if (available < ARP_ETHERNET_IPV4_LENGTH) {
    return fail(`ARP packet of ${available} bytes is truncated (Ethernet/IPv4 needs ${ARP_ETHERNET_IPV4_LENGTH})`);
  }
  return {
    ok: true,
    value: {
      hardwareType,
      protocolType,
      hardwareAddressLength,
      protocolAddressLength,
      operation: frame.readUInt16BE(offset + 6),
      senderHardwareAddress: frame.subarray(offset + 8, offset + 14),
      senderProtocolAddress: frame.subarray(offset + 14, offset + 18),
      targetHardwareAddress: frame.subarray(offset + 18, offset + 24),
      targetProtocolAddress: frame.subarray(offset + 24, offset + 28),
    },
  };
}

/** An Ethernet frame carrying ARP for Ethernet/IPv4. */
export function parseArpFrame(frame: Buffer, length = frame.length): ParseResult<ArpFrame> {
  const eth = parseEthernet(frame, length);
  if (!eth.ok) return eth;
  if (eth.value.etherType !== EtherType.ARP) return fail(`EtherType ${hex4(eth.value.etherType)} is not ARP (0x0806)`);
  const arp = parseArp(frame, eth.value.payloadOffset, length);
  if (!arp.ok) return arp;
  return { ok: true, value: { ethernet: eth.value, arp: arp.value } };
}

// RFC 8200 §3 IPv6 Header Format
export function parseIpv6(frame: Buffer, offset: number, end: number): ParseResult<Ipv6Header> {
  const available = end - offset;
  if (available < IPV6_HEADER_LENGTH) return fail(`IPv6 packet of ${available} bytes is shorter than its header (40)`);
  const first = frame.readUInt32BE(offset);
  const version = first >>> 28;
  if (version !== 6) return fail(`IP version ${version} in an IPv6 frame`);
  const payloadLength = frame.readUInt16BE(offset + 4);
  if (payloadLength === 0) return fail('IPv6 payload length 0 (jumbograms are not used on a LAN)');
  if (payloadLength > available - IPV6_HEADER_LENGTH) {
    return fail(`IPv6 payload length ${payloadLength} exceeds the ${available - IPV6_HEADER_LENGTH} bytes received`);
  }
  return {
    ok: true,
    value: {
      version,
      trafficClass: (first >>> 20) & 0xff,
      flowLabel: first & 0xfffff,
      payloadLength,
      nextHeader: frame[offset + 6]!,
      hopLimit: frame[offset + 7]!,
      sourceAddress: frame.subarray(offset + 8, offset + 24),
      destinationAddress: frame.subarray(offset + 24, offset + 40),
    },
  };
}

// RFC 4861 §4.6 Option Formats
function parseOptions(frame: Buffer, offset: number, end: number): ParseResult<NdpOption[]> {
  const options: NdpOption[] = [];
  while (offset < end) {
    if (end - offset < 2) return fail('NDP option truncated before its length field');
    const type = frame[offset]!;
    const length = frame[offset + 1]!;
    // RFC 4861 §4.6: "Nodes MUST silently discard an ND packet that contains an option with length zero."
    if (length === 0) return fail(`NDP option type ${type} has length 0`);
    if (offset + length * 8 > end) return fail(`NDP option type ${type} (${length * 8} bytes) overruns the message`);
    options.push({ type, length, data: frame.subarray(offset + 2, offset + length * 8) });
    offset += length * 8;
  }
  return { ok: true, value: options };
}

/** RFC 4861 §4.6.1 link-layer address option of `type` (first one), as an Ethernet address. */
function linkLayerAddress(options: readonly NdpOption[], type: number, what: string): ParseResult<Buffer | undefined> {
  const option = options.find((o) => o.type === type);
  if (!option) return { ok: true, value: undefined };
  // RFC 2464 §6: for Ethernet the option is 8 octets (length 1).
  if (option.length * 8 !== LINK_LAYER_OPTION_LENGTH) {
    return fail(`${what} link-layer address option of ${option.length * 8} bytes is not an Ethernet address option (8)`);
  }
  return { ok: true, value: option.data.subarray(0, 6) };
}

/**
 * RFC 4861 §4.3 / §4.4 message, validated per §7.1.1 / §7.1.2: hop limit 255, ICMP checksum, code 0, length,
 * non-multicast target, options of non-zero length, and the rules on unspecified sources and multicast destinations.
 */
export function parseNdp(frame: Buffer, ipv6: Ipv6Header, offset: number): ParseResult<NdpMessage> {
  if (ipv6.nextHeader !== IpProtocol.ICMPv6) {
    return fail(`IPv6 next header ${ipv6.nextHeader} is not ICMPv6 (58); extension headers before NDP are not accepted`);
  }
  const length = ipv6.payloadLength;
  const end = offset + length;
  if (length < 4) return fail(`ICMPv6 message of ${length} bytes is shorter than its header (4)`);
  const type = frame[offset]!;
  const code = frame[offset + 1]!;
  const checksum = frame.readUInt16BE(offset + 2);
  if (type !== Icmpv6Type.NeighborSolicitation && type !== Icmpv6Type.NeighborAdvertisement) {
    return fail(`ICMPv6 type ${type} is not a neighbor solicitation (135) or advertisement (136)`);
  }
  const name = type === Icmpv6Type.NeighborSolicitation ? 'neighbor solicitation' : 'neighbor advertisement';
  if (ipv6.hopLimit !== 255) return fail(`${name} with hop limit ${ipv6.hopLimit} (must be 255: it may come from off-link)`);
  if (length < NDP_MESSAGE_HEADER_LENGTH) return fail(`${name} of ${length} bytes is shorter than 24`);
  if (!icmpv6ChecksumValid(frame, offset, length, ipv6.sourceAddress, ipv6.destinationAddress)) {
    const expected = icmpv6Checksum(frame, offset, length, ipv6.sourceAddress, ipv6.destinationAddress);
    return fail(`${name} checksum ${hex4(checksum)} is wrong (expected ${hex4(expected)})`);
  }
  if (code !== 0) return fail(`${name} with ICMP code ${code} (must be 0)`);
  const targetAddress = frame.subarray(offset + 8, offset + 24);
  if (isMulticastIpv6(targetAddress)) return fail(`${name} for a multicast target address`);
  const options = parseOptions(frame, offset + NDP_MESSAGE_HEADER_LENGTH, end);
  if (!options.ok) return options;

  if (type === Icmpv6Type.NeighborSolicitation) {
    const slla = linkLayerAddress(options.value, NdpOptionType.SourceLinkLayerAddress, 'source');
    if (!slla.ok) return slla;
    if (isUnspecifiedIpv6(ipv6.sourceAddress)) {
      // §7.1.1: from the unspecified address (duplicate address detection) only to a solicited-node group, no SLLA.
      if (!isSolicitedNodeMulticast(ipv6.destinationAddress)) {
        return fail('neighbor solicitation from :: not sent to a solicited-node multicast address');
      }
      if (slla.value) return fail('neighbor solicitation from :: carries a source link-layer address option');
    }
    return {
      ok: true,
      value: { type, code, checksum, targetAddress, options: options.value, sourceLinkLayerAddress: slla.value },
    };
  }
  const flags = frame[offset + 4]!;
  const solicited = (flags & 0x40) !== 0;
  // §7.1.2: "If the IP Destination Address is a multicast address the Solicited flag is zero."
  if (solicited && isMulticastIpv6(ipv6.destinationAddress)) return fail('solicited neighbor advertisement sent to a multicast address');
  const tlla = linkLayerAddress(options.value, NdpOptionType.TargetLinkLayerAddress, 'target');
  if (!tlla.ok) return tlla;
  return {
    ok: true,
    value: {
      type,
      code,
      checksum,
      router: (flags & 0x80) !== 0,
      solicited,
      override: (flags & 0x20) !== 0,
      targetAddress,
      options: options.value,
      targetLinkLayerAddress: tlla.value,
    },
  };
}

/** An Ethernet frame carrying an IPv6 neighbor solicitation or advertisement. */
export function parseNdpFrame(frame: Buffer, length = frame.length): ParseResult<NdpFrame> {
  const eth = parseEthernet(frame, length);
  if (!eth.ok) return eth;
  if (eth.value.etherType !== EtherType.IPv6) return fail(`EtherType ${hex4(eth.value.etherType)} is not IPv6 (0x86dd)`);
  const ip = parseIpv6(frame, eth.value.payloadOffset, length);
  if (!ip.ok) return ip;
  const message = parseNdp(frame, ip.value, eth.value.payloadOffset + IPV6_HEADER_LENGTH);
  if (!message.ok) return message;
  return { ok: true, value: { ethernet: eth.value, ipv6: ip.value, message: message.value } };
}

// --- allocation-free checks for responders' hot paths. They accept exactly what the parsers above accept (a test
// compares them on captured and mutated frames); on a rejection, call the parser to learn why.

/** Offset of the payload after the Ethernet header and up to two VLAN tags, or -1 (too short / 802.3 / 3 tags). */
function ethernetPayloadOffset(frame: Buffer, length: number): number {
  if (length < ETHERNET_HEADER_LENGTH || length > frame.length) return -1;
  let offset = 12;
  let tags = 0;
  let etherType = (frame[offset]! << 8) | frame[offset + 1]!;
  while (etherType === EtherType.VLAN || etherType === EtherType.QinQ) {
    if (tags === MAX_VLAN_TAGS || offset + 6 > length) return -1;
    tags++;
    offset += 4;
    etherType = (frame[offset]! << 8) | frame[offset + 1]!;
  }
  return etherType < 0x0600 ? -1 : offset;
}

/** Offset of the ARP packet when parseArpFrame would accept the frame, else -1. */
export function arpPacketOffset(frame: Buffer, length: number): number {
  const typeOffset = ethernetPayloadOffset(frame, length);
  if (typeOffset < 0 || ((frame[typeOffset]! << 8) | frame[typeOffset + 1]!) !== EtherType.ARP) return -1;
  const off = typeOffset + 2;
  if (length - off < ARP_ETHERNET_IPV4_LENGTH) return -1;
  if (((frame[off]! << 8) | frame[off + 1]!) !== ArpHardwareType.Ethernet) return -1;
  if (((frame[off + 2]! << 8) | frame[off + 3]!) !== EtherType.IPv4) return -1;
  return frame[off + 4] === 6 && frame[off + 5] === 4 ? off : -1;
}

/**
 * When parseNdpFrame would accept the frame as a neighbor solicitation: fills `at` with [IPv6 header offset,
 * ICMPv6 offset, source link-layer address offset (the 6 bytes) or -1] and returns true.
 */
export function scanNeighborSolicitation(frame: Buffer, length: number, at: Int32Array): boolean {
  const typeOffset = ethernetPayloadOffset(frame, length);
  if (typeOffset < 0 || ((frame[typeOffset]! << 8) | frame[typeOffset + 1]!) !== EtherType.IPv6) return false;
  const ip = typeOffset + 2;
  if (length - ip < IPV6_HEADER_LENGTH || frame[ip]! >> 4 !== 6) return false;
  const payloadLength = (frame[ip + 4]! << 8) | frame[ip + 5]!;
  if (payloadLength === 0 || payloadLength > length - ip - IPV6_HEADER_LENGTH) return false;
  if (frame[ip + 6] !== IpProtocol.ICMPv6 || frame[ip + 7] !== 255) return false;
  const icmp = ip + IPV6_HEADER_LENGTH;
  if (payloadLength < NDP_MESSAGE_HEADER_LENGTH || frame[icmp] !== Icmpv6Type.NeighborSolicitation) return false;
  if (!icmpv6ChecksumValid(frame, icmp, payloadLength, frame, frame, ip + 8, ip + 24)) return false;
  if (frame[icmp + 1] !== 0 || frame[icmp + 8] === 0xff) return false;
  const end = icmp + payloadLength;
  let slla = -1;
  for (let o = icmp + NDP_MESSAGE_HEADER_LENGTH; o < end; ) {
    if (end - o < 2) return false;
    const optionLength = frame[o + 1]! * 8;
    if (optionLength === 0 || o + optionLength > end) return false;
    if (frame[o] === NdpOptionType.SourceLinkLayerAddress && slla < 0) {
      if (optionLength !== LINK_LAYER_OPTION_LENGTH) return false;
      slla = o + 2;
    }
    o += optionLength;
  }
  if (isUnspecifiedIpv6(frame, ip + 8) && (slla >= 0 || !isSolicitedNodeMulticast(frame, ip + 24))) return false;
  at[0] = ip;
  at[1] = icmp;
  at[2] = slla;
  return true;
}
