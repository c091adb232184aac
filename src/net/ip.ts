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

/**
 * Parses one address; undefined for anything Go's net.ParseIP would refuse (whitespace, zones, octal forms).
 * The usual forms take a fast path (the allocator parses every cluster and ingress IP it sees); anything else
 * goes through ipaddr.js.
 */
export function parseIP(text: string): IP | undefined {
  if (text.length === 0) return undefined;
  if (text.indexOf(':') < 0) {
    const v = parseV4(text);
    if (v !== undefined) return { family: 'IPv4', value: v };
  } else if (text.indexOf('.') < 0 && text.indexOf('%') < 0) {
    const v = parseV6(text);
    if (v !== undefined) return { family: 'IPv6', value: v };
  }
  return parseIPWithLibrary(text);
}

/** The reference parser the fast path must agree with. */
export function parseIPWithLibrary(text: string): IP | undefined {
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
  const groups = new Array<number>(8);
  let v = ip.value;
  for (let i = 7; i >= 0; i--) {
    groups[i] = Number(v & 0xffffn);
    v >>= 16n;
  }
  // IPv4-mapped and other special forms: reference formatter.
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return formatIPWithLibrary(ip);
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += groups[i]!.toString(16);
  }
  return out;
}

/** The reference formatter (RFC 5952 through ipaddr.js) the fast path must agree with. */
export function formatIPWithLibrary(ip: IP): string {
  if (ip.family === 'IPv4') return formatIP(ip);
  return ipaddr.fromByteArray(bigIntToBytes(ip.value, 16)).toString();
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

// Fast paths for the usual textual forms; undefined means "let the library decide".
const DOT = 46;
const COLON = 58;

function parseV4(text: string): bigint | undefined {
  let value = 0;
  let part = -1;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0) return undefined;
      value = value * 256 + part;
      parts++;
      part = -1;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return undefined;
    // Leading zeros: let the library decide.
    if (digits > 0 && part === 0) return undefined;
    part = part < 0 ? c - 48 : part * 10 + (c - 48);
    if (part > 255) return undefined;
    digits++;
  }
  return parts === 4 ? BigInt(value) : undefined;
}

function hexGroup(s: string): number | undefined {
  if (s.length === 0 || s.length > 4) return undefined;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return undefined;
    v = v * 16 + d;
  }
  return v;
}

/** Plain hex-group IPv6 (with at most one `::`, no embedded IPv4, no zone); undefined = use the reference parser. */
function parseV6(text: string): bigint | undefined {
  const dbl = text.indexOf('::');
  if (dbl >= 0 && text.indexOf('::', dbl + 1) >= 0) return undefined;
  const head = dbl >= 0 ? text.slice(0, dbl) : text;
  const tail = dbl >= 0 ? text.slice(dbl + 2) : '';
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const total = headGroups.length + tailGroups.length;
  if (dbl >= 0 ? total > 7 : total !== 8) return undefined;
  let v = 0n;
  for (const g of headGroups) {
    const n = hexGroup(g);
    if (n === undefined) return undefined;
    v = (v << 16n) | BigInt(n);
  }
  v <<= 16n * BigInt(8 - total);
  for (const g of tailGroups) {
    const n = hexGroup(g);
    if (n === undefined) return undefined;
    v = (v << 16n) | BigInt(n);
  }
  // IPv4-mapped addresses are IPv4 for Go: leave them to the library.
  if (v >> 32n === 0xffffn) return undefined;
  return v;
}
