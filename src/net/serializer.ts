// Writes Ethernet / ARP / IPv6 Neighbor Discovery frames into a caller's buffer at an offset and returns the
// number of bytes written, so that a responder reuses one transmit buffer and a takeover fills one batch buffer.
import { copyBytes } from './addresses.js';
import { icmpv6Checksum } from './checksum.js';
import {
  type NdpOption,
  ARP_ETHERNET_IPV4_LENGTH,
  ArpHardwareType,
  ETHERNET_HEADER_LENGTH,
  ETHERNET_MIN_FRAME,
  EtherType,
  Icmpv6Type,
  IPV6_HEADER_LENGTH,
  IpProtocol,
  LINK_LAYER_OPTION_LENGTH,
  NDP_MESSAGE_HEADER_LENGTH,
  NdpOptionType,
} from './messages.js';

/** Bytes an ARP frame takes (padded to the Ethernet minimum). */
export const ARP_FRAME_LENGTH = ETHERNET_MIN_FRAME;
/** Bytes an NS/NA frame with one link-layer address option takes. */
export const NDP_FRAME_LENGTH = ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH + NDP_MESSAGE_HEADER_LENGTH + LINK_LAYER_OPTION_LENGTH;

// IEEE 802.3 Ethernet II header
export function writeEthernetHeader(buf: Buffer, offset: number, destination: Uint8Array, source: Uint8Array, etherType: number): number {
  copyBytes(destination, 0, buf, offset, 6);
  copyBytes(source, 0, buf, offset + 6, 6);
  buf.writeUInt16BE(etherType, offset + 12);
  return ETHERNET_HEADER_LENGTH;
}

export interface ArpFields {
  /** ar$op */
  readonly operation: number;
  /** ar$sha */
  readonly senderHardwareAddress: Uint8Array;
  /** ar$spa */
  readonly senderProtocolAddress: Uint8Array;
  /** ar$tha */
  readonly targetHardwareAddress: Uint8Array;
  /** ar$tpa */
  readonly targetProtocolAddress: Uint8Array;
}

// RFC 826 "Packet format", Ethernet/IPv4
export function writeArp(buf: Buffer, offset: number, arp: ArpFields): number {
  buf.writeUInt16BE(ArpHardwareType.Ethernet, offset);
  buf.writeUInt16BE(EtherType.IPv4, offset + 2);
  buf[offset + 4] = 6;
  buf[offset + 5] = 4;
  buf.writeUInt16BE(arp.operation, offset + 6);
  copyBytes(arp.senderHardwareAddress, 0, buf, offset + 8, 6);
  copyBytes(arp.senderProtocolAddress, 0, buf, offset + 14, 4);
  copyBytes(arp.targetHardwareAddress, 0, buf, offset + 18, 6);
  copyBytes(arp.targetProtocolAddress, 0, buf, offset + 24, 4);
  return ARP_ETHERNET_IPV4_LENGTH;
}

/** A whole ARP frame, zero-padded to 60 bytes; returns 60. */
export function writeArpFrame(buf: Buffer, offset: number, destination: Uint8Array, source: Uint8Array, arp: ArpFields): number {
  let n = writeEthernetHeader(buf, offset, destination, source, EtherType.ARP);
  n += writeArp(buf, offset + n, arp);
  buf.fill(0, offset + n, offset + ARP_FRAME_LENGTH);
  return ARP_FRAME_LENGTH;
}

export interface Ipv6Fields {
  readonly payloadLength: number;
  readonly nextHeader: number;
  readonly hopLimit: number;
  readonly sourceAddress: Uint8Array;
  readonly destinationAddress: Uint8Array;
  readonly trafficClass?: number;
  readonly flowLabel?: number;
}

// RFC 8200 §3 IPv6 Header Format
export function writeIpv6Header(buf: Buffer, offset: number, ip: Ipv6Fields): number {
  buf.writeUInt32BE(((6 << 28) | ((ip.trafficClass ?? 0) << 20) | (ip.flowLabel ?? 0)) >>> 0, offset);
  buf.writeUInt16BE(ip.payloadLength, offset + 4);
  buf[offset + 6] = ip.nextHeader;
  buf[offset + 7] = ip.hopLimit;
  copyBytes(ip.sourceAddress, 0, buf, offset + 8, 16);
  copyBytes(ip.destinationAddress, 0, buf, offset + 24, 16);
  return IPV6_HEADER_LENGTH;
}

export type NdpFields =
  | {
      readonly type: typeof Icmpv6Type.NeighborSolicitation;
      readonly targetAddress: Uint8Array;
      /** Omitted for duplicate address detection (source ::). */
      readonly sourceLinkLayerAddress?: Uint8Array;
      /** Further options (e.g. the RFC 7527 nonce of the kernel's DAD probes), written after the address option. */
      readonly otherOptions?: readonly NdpOption[];
    }
  | {
      readonly type: typeof Icmpv6Type.NeighborAdvertisement;
      readonly router: boolean;
      readonly solicited: boolean;
      readonly override: boolean;
      readonly targetAddress: Uint8Array;
      readonly targetLinkLayerAddress?: Uint8Array;
      readonly otherOptions?: readonly NdpOption[];
    };

// RFC 4861 §4.3 / §4.4 message with its §4.6.1 link-layer address option; checksum left zero (see writeNdpFrame).
export function writeNdpMessage(buf: Buffer, offset: number, msg: NdpFields): number {
  buf[offset] = msg.type;
  buf[offset + 1] = 0;
  buf.writeUInt16BE(0, offset + 2);
  const flags = msg.type === Icmpv6Type.NeighborAdvertisement ? (msg.router ? 0x80 : 0) | (msg.solicited ? 0x40 : 0) | (msg.override ? 0x20 : 0) : 0;
  buf.writeUInt32BE(flags << 24, offset + 4);
  copyBytes(msg.targetAddress, 0, buf, offset + 8, 16);
  let n = NDP_MESSAGE_HEADER_LENGTH;
  const lla = msg.type === Icmpv6Type.NeighborSolicitation ? msg.sourceLinkLayerAddress : msg.targetLinkLayerAddress;
  if (lla) {
    buf[offset + n] = msg.type === Icmpv6Type.NeighborSolicitation ? NdpOptionType.SourceLinkLayerAddress : NdpOptionType.TargetLinkLayerAddress;
    buf[offset + n + 1] = 1;
    copyBytes(lla, 0, buf, offset + n + 2, 6);
    n += LINK_LAYER_OPTION_LENGTH;
  }
  for (const o of msg.otherOptions ?? []) {
    buf[offset + n] = o.type;
    buf[offset + n + 1] = o.length;
    copyBytes(o.data, 0, buf, offset + n + 2, o.length * 8 - 2);
    n += o.length * 8;
  }
  return n;
}

export interface NdpFrameFields {
  readonly destination: Uint8Array;
  readonly source: Uint8Array;
  readonly sourceAddress: Uint8Array;
  readonly destinationAddress: Uint8Array;
  readonly message: NdpFields;
  readonly trafficClass?: number;
  readonly flowLabel?: number;
}

/** A whole NS/NA frame: Ethernet, IPv6 (hop limit 255, RFC 4861 §7.1), the message and its ICMPv6 checksum. */
export function writeNdpFrame(buf: Buffer, offset: number, f: NdpFrameFields): number {
  const ipOffset = offset + writeEthernetHeader(buf, offset, f.destination, f.source, EtherType.IPv6);
  const icmpOffset = ipOffset + IPV6_HEADER_LENGTH;
  const length = writeNdpMessage(buf, icmpOffset, f.message);
  writeIpv6Header(buf, ipOffset, {
    payloadLength: length,
    nextHeader: IpProtocol.ICMPv6,
    hopLimit: 255,
    sourceAddress: f.sourceAddress,
    destinationAddress: f.destinationAddress,
    trafficClass: f.trafficClass,
    flowLabel: f.flowLabel,
  });
  buf.writeUInt16BE(icmpv6Checksum(buf, icmpOffset, length, f.sourceAddress, f.destinationAddress), icmpOffset + 2);
  return icmpOffset + length - offset;
}
