// IP addresses and prefixes as bigints, so that an IPv6 /64 costs the same as an IPv4 /32.
// Text forms follow Go's net package (MetalLB's): strict dotted quad, RFC 5952 for IPv6.
import ipaddr from 'ipaddr.js';

export type IPFamily = 'IPv4' | 'IPv6';

export interface IP {
  readonly family: IPFamily;
  readonly value: bigint;
}

export interface Prefix {
  readonly family: IPFamily;
  /** The network address (host bits zero). */
  readonly network: bigint;
  readonly length: number;
}

export const familyBits = (family: IPFamily): number => (family === 'IPv4' ? 32 : 128);

/** Parses one address; undefined for anything Go's net.ParseIP would refuse (whitespace, zones, octal forms). */
export function parseIP(text: string): IP | undefined {
  if (text.includes('%') || text.trim() !== text || text === '') return undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { family: 'IPv4', value: bytesToBigInt(ipaddr.IPv4.parse(text).toByteArray()) };
  }
  if (!text.includes(':') || !ipaddr.IPv6.isValid(text)) return undefined;
  const v6 = ipaddr.IPv6.parse(text);
  // Go treats IPv4-mapped IPv6 as IPv4.
  if (v6.isIPv4MappedAddress()) {
    return { family: 'IPv4', value: bytesToBigInt(v6.toIPv4Address().toByteArray()) };
  }
  return { family: 'IPv6', value: bytesToBigInt(v6.toByteArray()) };
}

export function formatIP(ip: IP): string {
  if (ip.family === 'IPv4') {
    const v = Number(ip.value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const bytes = bigIntToBytes(ip.value, 16);
  return ipaddr.fromByteArray(bytes).toString();
}

/** Parses `addr/len` like Go's net.ParseCIDR: host bits are allowed and masked off. */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIP(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!ip || !/^[0-9]{1,3}$/.test(lenText)) return undefined;
  const length = Number(lenText);
  if (length > familyBits(ip.family)) return undefined;
  // Go rejects an IPv4-mapped address with an IPv4-sized mask written in IPv6 form; keep it simple: the family of the text wins.
  if (ip.family === 'IPv4' && text.slice(0, slash).includes(':')) return undefined;
  return { family: ip.family, network: ip.value & prefixMask(ip.family, length), length };
}

export function formatPrefix(p: Prefix): string {
  return `${formatIP({ family: p.family, value: p.network })}/${p.length}`;
}

export function prefixMask(family: IPFamily, length: number): bigint {
  const bits = BigInt(familyBits(family));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(length))) - 1n);
}

export const prefixFirst = (p: Prefix): bigint => p.network;
export const prefixLast = (p: Prefix): bigint => p.network | ((1n << BigInt(familyBits(p.family) - p.length)) - 1n);
export const prefixSize = (p: Prefix): bigint => 1n << BigInt(familyBits(p.family) - p.length);

export function prefixContains(p: Prefix, ip: IP): boolean {
  return p.family === ip.family && (ip.value & prefixMask(p.family, p.length)) === p.network;
}

/** Either contains the other (MetalLB's overlap rule). */
export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  return prefixFirst(a) <= prefixLast(b) && prefixFirst(b) <= prefixLast(a);
}

/** The minimal list of prefixes covering [start, end], ascending (what Go's ipaddr.Summarize returns). */
export function summarizeRange(start: IP, end: IP): Prefix[] {
  if (start.family !== end.family || start.value > end.value) return [];
  const bits = familyBits(start.family);
  const out: Prefix[] = [];
  let cur = start.value;
  while (cur <= end.value) {
    // The largest block aligned at cur that does not pass end.
    let hostBits = 0;
    while (hostBits < bits) {
      const size = 1n << BigInt(hostBits + 1);
      if ((cur & (size - 1n)) !== 0n || cur + size - 1n > end.value) break;
      hostBits++;
    }
    out.push({ family: start.family, network: cur, length: bits - hostBits });
    cur += 1n << BigInt(hostBits);
  }
  return out;
}

/** MetalLB's avoidBuggyIPs: an IPv4 address ending in .0 or .255, whatever the prefix length. */
export const isBuggyIP = (ip: IP): boolean => ip.family === 'IPv4' && ((ip.value & 255n) === 0n || (ip.value & 255n) === 255n);

export function compareIP(a: IP, b: IP): number {
  if (a.family !== b.family) return a.family === 'IPv4' ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

function bytesToBigInt(bytes: number[]): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function bigIntToBytes(value: bigint, length: number): number[] {
  const out = new Array<number>(length);
  let v = value;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 255n);
    v >>= 8n;
  }
  return out;
}
