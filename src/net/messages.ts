// Link-layer messages the layer 2 speaker reads and writes: Ethernet II frames carrying ARP (RFC 826) or IPv6
// Neighbor Discovery (RFC 4861). Types and numbers only; parser.ts reads them, serializer.ts writes them.
// Address fields of parsed messages are views into the received buffer: valid while that buffer is.

/** IEEE 802 EtherTypes (IANA ieee-802-numbers). */
export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QinQ: 0x88a8,
  IPv6: 0x86dd,
} as const;

export const ETHERNET_HEADER_LENGTH = 14;
/** 802.3 minimum frame without FCS: shorter frames are padded (MetalLB's ethernet library does the same). */
export const ETHERNET_MIN_FRAME = 60;
export const BROADCAST_MAC: Buffer = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** Ethernet II header; 802.1Q/802.1ad tags are skipped and their VLAN IDs kept, outermost first. */
export interface EthernetHeader {
  readonly destination: Buffer;
  readonly source: Buffer;
  readonly vlanIds: readonly number[];
  readonly etherType: number;
  /** Offset of the payload in the frame. */
  readonly payloadOffset: number;
}

// RFC 826 "Packet format"
export const ArpHardwareType = { Ethernet: 1 } as const;
export const ArpOperation = { Request: 1, Reply: 2 } as const;
/** ar$hrd..ar$tpa for Ethernet/IPv4: 8 + 2 * (6 + 4). */
export const ARP_ETHERNET_IPV4_LENGTH = 28;

/** RFC 826 ARP packet, for hardware Ethernet and protocol IPv4 only (the only pair the speaker answers). */
export interface ArpPacket {
  /** ar$hrd */
  readonly hardwareType: number;
  /** ar$pro */
  readonly protocolType: number;
  /** ar$hln */
  readonly hardwareAddressLength: number;
  /** ar$pln */
  readonly protocolAddressLength: number;
  /** ar$op */
  readonly operation: number;
  /** ar$sha */
  readonly senderHardwareAddress: Buffer;
  /** ar$spa */
  readonly senderProtocolAddress: Buffer;
  /** ar$tha */
  readonly targetHardwareAddress: Buffer;
  /** ar$tpa */
  readonly targetProtocolAddress: Buffer;
}

// RFC 8200 §3 IPv6 Header Format
export const IPV6_HEADER_LENGTH = 40;
export const IpProtocol = { HopByHop: 0, ICMPv6: 58 } as const;

export interface Ipv6Header {
  readonly version: number;
  readonly trafficClass: number;
  readonly flowLabel: number;
  readonly payloadLength: number;
  readonly nextHeader: number;
  readonly hopLimit: number;
  readonly sourceAddress: Buffer;
  readonly destinationAddress: Buffer;
}

// RFC 4861 §4.3, §4.4 message types (ICMPv6, RFC 4443 §2.1)
export const Icmpv6Type = {
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  Redirect: 137,
} as const;

// RFC 4861 §4.6 option types
export const NdpOptionType = { SourceLinkLayerAddress: 1, TargetLinkLayerAddress: 2 } as const;

/** RFC 4861 §4.6: type, length in units of 8 octets (0 is invalid), value. */
export interface NdpOption {
  readonly type: number;
  /** Length in units of 8 octets, as on the wire. */
  readonly length: number;
  /** The option's bytes after type and length. */
  readonly data: Buffer;
}

/** NS and NA are 24 octets before their options (type, code, checksum, 4 octets, target address). */
export const NDP_MESSAGE_HEADER_LENGTH = 24;
/** RFC 4861 §4.6.1 link-layer address option for Ethernet: 8 octets. */
export const LINK_LAYER_OPTION_LENGTH = 8;

// RFC 4861 §4.3 Neighbor Solicitation Message Format
export interface NeighborSolicitation {
  readonly type: typeof Icmpv6Type.NeighborSolicitation;
  readonly code: number;
  readonly checksum: number;
  readonly targetAddress: Buffer;
  readonly options: readonly NdpOption[];
  /** RFC 4861 §4.6.1 Source Link-Layer Address option (6 bytes for Ethernet), if present. */
  readonly sourceLinkLayerAddress: Buffer | undefined;
}

// RFC 4861 §4.4 Neighbor Advertisement Message Format
export interface NeighborAdvertisement {
  readonly type: typeof Icmpv6Type.NeighborAdvertisement;
  readonly code: number;
  readonly checksum: number;
  /** R */
  readonly router: boolean;
  /** S */
  readonly solicited: boolean;
  /** O */
  readonly override: boolean;
  readonly targetAddress: Buffer;
  readonly options: readonly NdpOption[];
  /** RFC 4861 §4.6.1 Target Link-Layer Address option, if present. */
  readonly targetLinkLayerAddress: Buffer | undefined;
}

export type NdpMessage = NeighborSolicitation | NeighborAdvertisement;

export interface ArpFrame {
  readonly ethernet: EthernetHeader;
  readonly arp: ArpPacket;
}

export interface NdpFrame {
  readonly ethernet: EthernetHeader;
  readonly ipv6: Ipv6Header;
  readonly message: NdpMessage;
}

/** A parse either yields the message or says, in words, why the bytes are not one. */
export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };
