// BGP community values (`A:B`, `large:A:B:C`) and the Community alias objects.
import type { CommunityValue } from './types.js';

/**
 * MetalLB distinguishes two failures: a *format* error (wrong number of `:` fields) may be an alias that does not
 * exist yet, a *value* error (bad number, bad `large` marker) never is.
 */
export type CommunityParse =
  | { ok: true; value: CommunityValue }
  | { ok: false; kind: 'format' | 'value'; message: string };

const UINT16_MAX = 65535;
const UINT32_MAX = 4294967295;

function parseUint(text: string, max: number): number | undefined {
  // Go's strconv.ParseUint(s, 10, n): decimal digits only, no sign, no spaces.
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

export function parseCommunity(text: string): CommunityParse {
  const fields = text.split(':');
  const quoted = JSON.stringify(text);
  if (fields.length === 2) {
    const [a = '', b = ''] = fields;
    const high = parseUint(a, UINT16_MAX);
    const low = parseUint(b, UINT16_MAX);
    if (high === undefined || low === undefined) {
      return { ok: false, kind: 'value', message: `invalid community value ${quoted}: both parts of A:B must be numbers between 0 and 65535` };
    }
    return { ok: true, value: { kind: 'standard', high, low } };
  }
  if (fields.length === 4) {
    const [marker, a = '', b = '', c = ''] = fields;
    if (marker !== 'large') {
      return { ok: false, kind: 'value', message: `invalid community value ${quoted}: a large community must be written large:A:B:C` };
    }
    const g = parseUint(a, UINT32_MAX);
    const l1 = parseUint(b, UINT32_MAX);
    const l2 = parseUint(c, UINT32_MAX);
    if (g === undefined || l1 === undefined || l2 === undefined) {
      return { ok: false, kind: 'value', message: `invalid community value ${quoted}: each part of large:A:B:C must be a number between 0 and 4294967295` };
    }
    return { ok: true, value: { kind: 'large', globalAdministrator: g, localData1: l1, localData2: l2 } };
  }
  return { ok: false, kind: 'format', message: `invalid community format ${quoted}: expected A:B (16-bit numbers) or large:A:B:C (32-bit numbers)` };
}

/** Text form that parses back to the same value (unlike MetalLB's String(), which drops `large:`). */
export const formatCommunity = (c: CommunityValue): string =>
  c.kind === 'standard' ? `${c.high}:${c.low}` : `large:${c.globalAdministrator}:${c.localData1}:${c.localData2}`;

/** MetalLB's ordering: a standard `a:b` sorts as the large community (a<<16|b, 0, 0). */
export function compareCommunities(x: CommunityValue, y: CommunityValue): number {
  const key = (c: CommunityValue): [number, number, number] =>
    c.kind === 'standard' ? [c.high * 65536 + c.low, 0, 0] : [c.globalAdministrator, c.localData1, c.localData2];
  const [a, b] = [key(x), key(y)];
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  // Equal keys: standard first so that the order is total.
  return x.kind === y.kind ? 0 : x.kind === 'standard' ? -1 : 1;
}

export const sameCommunity = (x: CommunityValue, y: CommunityValue): boolean => formatCommunity(x) === formatCommunity(y);
