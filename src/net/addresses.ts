// Link-layer and IP address bytes: MAC text, IPv4/IPv6 text <-> bytes, and the IPv6 multicast mappings NDP needs.
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/** "aa:bb:cc:dd:ee:ff" (also with '-'), case-insensitive; undefined if it is not six octets. */
export function parseMac(text: string): Buffer | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text.trim());
  if (!m) return undefined;
  return Buffer.from(m.slice(1).map((h) => parseInt(h, 16)));
}

/** Lower-case colon form of the 6 bytes at `offset`. */
export function formatMac(buf: Uint8Array, offset = 0): string {
  let out = '';
  for (let i = 0; i < 6; i++) {
    if (i) out += ':';
    out += (buf[offset + i] ?? 0).toString(16).padStart(2, '0');
  }
  return out;
}

/** 4 or 16 bytes for an IPv4 / IPv6 literal (no zone); undefined otherwise. IPv4-mapped IPv6 stays 16 bytes. */
export function ipToBytes(text: string): Buffer | undefined {
  if (isIPv4(text)) return Buffer.from(ipaddr.IPv4.parse(text).toByteArray());
  if (isIPv6(text) && !text.includes('%')) return Buffer.from(ipaddr.IPv6.parse(text).toByteArray());
  return undefined;
}

/** Dotted quad or RFC 5952 text for 4 or 16 bytes at `offset`. */
export function formatIpBytes(buf: Uint8Array, offset: number, length: 4 | 16): string {
  if (length === 4) return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  return ipaddr.fromByteArray(Array.from(buf.subarray(offset, offset + 16))).toString();
}

/** RFC 4291 §2.7.1: solicited-node multicast address ff02::1:ffXX:XXXX of an IPv6 address (its low 24 bits). */
export function solicitedNodeMulticast(address: Uint8Array): Buffer {
  const group = Buffer.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0]);
  group[13] = address[13]!;
  group[14] = address[14]!;
  group[15] = address[15]!;
  return group;
}

/** RFC 2464 §7: the Ethernet destination of an IPv6 multicast packet is 33:33 followed by the group's low 32 bits. */
export function ipv6MulticastMac(group: Uint8Array): Buffer {
  return Buffer.from([0x33, 0x33, group[12]!, group[13]!, group[14]!, group[15]!]);
}

/** ff02::1, the all-nodes address unsolicited advertisements go to (RFC 4861 §7.2.6). */
export const ALL_NODES_MULTICAST: Buffer = Buffer.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

export const isMulticastIpv6 = (address: Uint8Array, offset = 0): boolean => address[offset] === 0xff;

export function isUnspecifiedIpv6(address: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 16; i++) if (address[offset + i] !== 0) return false;
  return true;
}

/** True if bytes [offset, offset+16) are a solicited-node multicast address (ff02::1:ffXX:XXXX). */
export function isSolicitedNodeMulticast(address: Uint8Array, offset = 0): boolean {
  if (address[offset] !== 0xff || address[offset + 1] !== 0x02) return false;
  for (let i = 2; i < 11; i++) if (address[offset + i] !== 0) return false;
  return address[offset + 11] === 0x01 && address[offset + 12] === 0xff;
}

export function bytesEqual(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}

/** Byte copy for the few-byte fields of frames (cheaper than Buffer#copy at these sizes). */
export function copyBytes(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number, length: number): void {
  for (let i = 0; i < length; i++) dst[dstOffset + i] = src[srcOffset + i]!;
}
