// Fast address text <-> IP conversion for the allocator's hot path (every converge reads cluster and ingress IPs
// and writes ingress IPs). Same results as net/ip.ts parseIP / formatIP (which go through ipaddr.js and cost
// several µs per call); anything unusual falls back to them.
import { formatIP, parseIP, type IP } from '../net/ip.js';

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
    // Leading zeros: let the reference parser decide.
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
  // IPv4-mapped addresses are IPv4 for Go: leave them to the reference parser.
  if (v >> 32n === 0xffffn) return undefined;
  return v;
}

/** Same as net/ip parseIP, fast for the usual forms. */
export function parseAddr(text: string): IP | undefined {
  if (text.length === 0) return undefined;
  if (text.indexOf(':') < 0) {
    const v = parseV4(text);
    return v !== undefined ? { family: 'IPv4', value: v } : parseIP(text);
  }
  if (text.indexOf('.') < 0 && text.indexOf('%') < 0) {
    const v = parseV6(text);
    if (v !== undefined) return { family: 'IPv6', value: v };
  }
  return parseIP(text);
}

/** Same as net/ip formatIP (Go / RFC 5952 text), fast. */
export function formatAddr(ip: IP): string {
  if (ip.family === 'IPv4') return formatIP(ip);
  const groups = new Array<number>(8);
  let v = ip.value;
  for (let i = 7; i >= 0; i--) {
    groups[i] = Number(v & 0xffffn);
    v >>= 16n;
  }
  // IPv4-mapped and other special forms: reference formatter.
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return formatIP(ip);
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
