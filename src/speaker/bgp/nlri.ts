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
  const fast = encodeIPv4(text);
  if (fast !== null) return fast;
  return encodePrefixSlow(text);
}

/** The general path (src/net/ip's Go-compatible parser); the fast path must agree with it. */
export function encodePrefixSlow(text: string): EncodedPrefix | undefined {
  const p = parsePrefix(text);
  if (!p) return undefined;
  const bits = p.family === 'IPv4' ? 32 : 128;
  const octets = (p.length + 7) >> 3;
  let wire = String.fromCharCode(p.length);
  for (let i = 0; i < octets; i++) wire += String.fromCharCode(Number((p.network >> BigInt(bits - 8 * (i + 1))) & 0xffn));
  return { family: p.family, text: formatPrefix(p), wire };
}

/**
 * The common case without allocating anything but the result: `a.b.c.d/len` in plain decimal. Null when the text
 * is anything else, for the general parser to decide.
 */
function encodeIPv4(text: string): EncodedPrefix | null {
  const wire = ipv4Wire(text);
  if (wire === null) return null;
  // Canonical when the host bits were already zero, which is when the text is what the wire says.
  const length = wire.charCodeAt(0);
  const b = [1, 2, 3, 4].map((k) => (k < wire.length ? wire.charCodeAt(k) : 0));
  const canonical = `${b[0]}.${b[1]}.${b[2]}.${b[3]}/${length}`;
  return { family: 'IPv4', text: canonical === text ? text : canonical, wire };
}

/** The NLRI bytes (latin1) of `a.b.c.d/len` in plain decimal; null for anything else. */
export function ipv4Wire(text: string): string | null {
  const n = text.length;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return null; // a leading zero: let the general parser judge it
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return null;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return null;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c === 47) {
      break;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0 || i >= n - 1 || n - i > 3) return null;
  value = value * 256 + octet;
  let length = 0;
  for (let j = i + 1; j < n; j++) {
    const c = text.charCodeAt(j);
    if (c < 48 || c > 57) return null;
    length = length * 10 + (c - 48);
  }
  if (length > 32 || (n - i === 3 && text.charCodeAt(i + 1) === 48)) return null;
  const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
  const network = (value & mask) >>> 0;
  const b0 = network >>> 24;
  const b1 = (network >>> 16) & 255;
  const b2 = (network >>> 8) & 255;
  const b3 = network & 255;
  const octets = (length + 7) >> 3;
  return octets === 4 ? String.fromCharCode(length, b0, b1, b2, b3)
    : octets === 3 ? String.fromCharCode(length, b0, b1, b2)
      : octets === 2 ? String.fromCharCode(length, b0, b1)
        : octets === 1 ? String.fromCharCode(length, b0) : String.fromCharCode(length);
}

/** The prefix text of NLRI bytes (latin1). */
export function wireText(family: IPFamily, wire: string): string {
  const bits = family === 'IPv4' ? 32 : 128;
  let value = 0n;
  for (let i = 1; i < wire.length; i++) value = (value << 8n) | BigInt(wire.charCodeAt(i));
  value <<= BigInt(bits - 8 * (wire.length - 1));
  return `${formatIP({ family, value })}/${wire.charCodeAt(0)}`;
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
