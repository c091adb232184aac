// NLRI prefixes on the wire (RFC 4271 §4.3, RFC 4760 §5): a length octet, then the fewest octets that hold that
// many bits. Host bits are masked off, as the RFC says trailing bits are irrelevant.
import ipaddr from 'ipaddr.js';
import { formatIP, formatPrefix, parsePrefix, type IPFamily } from '../../net/ip.js';
import { AFI } from './messages.js';
import type { Reader } from './reader.js';

export const afiOf = (family: IPFamily): number => (family === 'IPv4' ? AFI.IPV4 : AFI.IPV6);
export const familyOfAfi = (afi: number): IPFamily | undefined =>
  afi === AFI.IPV4 ? 'IPv4' : afi === AFI.IPV6 ? 'IPv6' : undefined;

export interface EncodedPrefix {
  family: IPFamily;
  /** Canonical text (`10.0.0.0/24`): host bits zeroed, RFC 5952 for IPv6. */
  text: string;
  /** The NLRI bytes as a latin1 string: compact to keep by the hundred thousand and quick to copy into a Buffer. */
  wire: string;
}

/** Undefined when the text is not a prefix. */
export function encodePrefix(text: string): EncodedPrefix | undefined {
  const p = parsePrefix(text);
  if (!p) return undefined;
  const bits = p.family === 'IPv4' ? 32 : 128;
  const octets = (p.length + 7) >> 3;
  let wire = String.fromCharCode(p.length);
  for (let i = 0; i < octets; i++) wire += String.fromCharCode(Number((p.network >> BigInt(bits - 8 * (i + 1))) & 0xffn));
  return { family: p.family, text: formatPrefix(p), wire };
}

/** The wire bytes of one prefix. */
export function prefixBytes(text: string): Buffer {
  const e = encodePrefix(text);
  if (!e) throw new Error(`not a prefix: ${JSON.stringify(text)}`);
  return Buffer.from(e.wire, 'latin1');
}

/**
 * Reads prefixes until the reader is exhausted. Returns an error text for a length beyond the family's bits or a
 * prefix that runs past the end; the caller turns it into the NOTIFICATION its context calls for.
 */
export function readPrefixes(r: Reader, family: IPFamily): { prefixes: string[] } | { error: string } {
  const bits = family === 'IPv4' ? 32 : 128;
  const prefixes: string[] = [];
  while (r.remaining > 0) {
    const length = r.u8();
    if (length > bits) return { error: `prefix length ${length} is longer than ${bits} bits` };
    const octets = (length + 7) >> 3;
    if (r.remaining < octets) return { error: `prefix /${length} needs ${octets} octets, ${r.remaining} left` };
    let value = 0n;
    for (let i = 0; i < octets; i++) value = (value << 8n) | BigInt(r.u8());
    value <<= BigInt(bits - 8 * octets);
    const hostBits = BigInt(bits - length);
    value = (value >> hostBits) << hostBits;
    prefixes.push(`${formatIP({ family, value })}/${length}`);
  }
  return { prefixes };
}

export function ipv4Text(b: Uint8Array, at = 0): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** RFC 5952 text of 16 octets; IPv4-mapped addresses (GoBGP's next hop for IPv6 routes over IPv4) stay IPv6. */
export function ipv6Text(b: Uint8Array, at = 0): string {
  return new ipaddr.IPv6(Array.from(b.subarray(at, at + 16))).toRFC5952String();
}

/** 4 or 16 bytes of an address in text form (an IPv6 text is always 16 bytes); throws on anything else. */
export function addressBytes(text: string): Buffer {
  if (text.includes(':')) {
    if (!ipaddr.IPv6.isValid(text)) throw new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
    return Buffer.from(ipaddr.IPv6.parse(text).toByteArray());
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  return Buffer.from(ipaddr.IPv4.parse(text).toByteArray());
}
