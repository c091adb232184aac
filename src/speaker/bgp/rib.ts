// Adj-RIB-Out of one session (RFC 4271 §3.2): what we want the peer to have, what it has, and the prefixes whose
// difference is still to be sent. setAdvertisements diffs a whole new set against the current one, so callers can
// always hand over the full list and only the changes reach the wire.
import type { IPFamily } from '../../net/ip.js';
import { parseIP } from '../../net/ip.js';
import { encodePrefix } from './nlri.js';
import type { RouteAttributes, UpdatePacker } from './packer.js';

/** One route this node wants a peer to have. */
export interface Advertisement {
  /** `10.0.0.1/32`, `fd00::1/128`; host bits are masked off. */
  prefix: string;
  /** LOCAL_PREF for iBGP peers (eBGP peers never get it); unset = 100. */
  localPref?: number;
  /** RFC 1997 communities, `A:B` with 16-bit numbers. */
  communities?: readonly string[];
  /** RFC 8092 large communities, `A:B:C` (or `large:A:B:C`) with 32-bit numbers. */
  largeCommunities?: readonly string[];
  /** Next hop instead of the session's own address (same family as the prefix). */
  nextHop?: string;
}

export interface Route {
  /** Canonical prefix text: the key. */
  readonly text: string;
  readonly family: IPFamily;
  /** NLRI bytes as latin1. */
  readonly wire: string;
  readonly attrs: RouteAttributes;
}

/** What one flush did, for metrics and logs. */
export interface FlushResult {
  announced: number;
  withdrawn: number;
  /** Prefixes this session cannot carry (family not negotiated, or no next hop of that family). */
  unsendable: Route[];
}

const UINT16_MAX = 0xffff;
const UINT32_MAX = 0xffffffff;

function parseUint(text: string, max: number): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

export function parseStandardCommunity(text: string): number | undefined {
  const parts = text.split(':');
  if (parts.length !== 2) return undefined;
  const high = parseUint(parts[0]!, UINT16_MAX);
  const low = parseUint(parts[1]!, UINT16_MAX);
  return high === undefined || low === undefined ? undefined : ((high << 16) | low) >>> 0;
}

export function parseLargeCommunity(text: string): [number, number, number] | undefined {
  const parts = text.split(':');
  if (parts.length === 4 && parts[0] === 'large') parts.shift();
  if (parts.length !== 3) return undefined;
  const v = parts.map((p) => parseUint(p, UINT32_MAX));
  return v.every((x) => x !== undefined) ? [v[0]!, v[1]!, v[2]!] : undefined;
}

export const formatStandardCommunity = (c: number): string => `${c >>> 16}:${c & 0xffff}`;

interface ParsedAdvertisement {
  text: string;
  family: IPFamily;
  wire: string;
  std: number[];
  large: [number, number, number][];
  localPref?: number;
  nextHop?: string;
}

/** `known`: the route already held under this exact text, whose encoding can be reused (the usual case). */
function parseAdvertisement(ad: Advertisement, known: Route | undefined): ParsedAdvertisement | string {
  const prefix = known ?? (typeof ad.prefix === 'string' ? encodePrefix(ad.prefix) : undefined);
  if (!prefix) return `advertisement ${JSON.stringify(ad.prefix)}: not an IP prefix`;
  const std: number[] = [];
  for (const c of ad.communities ?? []) {
    const v = parseStandardCommunity(c);
    if (v === undefined) return `advertisement ${prefix.text}: community ${JSON.stringify(c)} is not A:B with 16-bit numbers`;
    std.push(v);
  }
  const large: [number, number, number][] = [];
  for (const c of ad.largeCommunities ?? []) {
    const v = parseLargeCommunity(c);
    if (!v) return `advertisement ${prefix.text}: large community ${JSON.stringify(c)} is not A:B:C with 32-bit numbers`;
    large.push(v);
  }
  if (ad.localPref !== undefined && !(Number.isInteger(ad.localPref) && ad.localPref >= 0 && ad.localPref <= UINT32_MAX)) {
    return `advertisement ${prefix.text}: local preference ${String(ad.localPref)} is not a 32-bit unsigned number`;
  }
  if (ad.nextHop !== undefined) {
    const nh = typeof ad.nextHop === 'string' ? parseIP(ad.nextHop) : undefined;
    if (!nh || nh.family !== prefix.family) return `advertisement ${prefix.text}: next hop ${JSON.stringify(ad.nextHop)} is not an ${prefix.family} address`;
  }
  return {
    text: prefix.text, family: prefix.family, wire: prefix.wire, std, large,
    ...(ad.localPref !== undefined ? { localPref: ad.localPref } : {}),
    ...(ad.nextHop !== undefined ? { nextHop: ad.nextHop } : {}),
  };
}

export class AdjRibOut {
  private desired = new Map<string, Route>();
  private readonly sent = new Map<string, Route>();
  private readonly dirty = new Set<string>();
  private interned = new Map<string, RouteAttributes>();

  /**
   * Replaces the whole set. Returns one message per advertisement that was refused (bad prefix, community or next
   * hop); the others are applied. Duplicate prefixes merge as MetalLB's native speaker does: communities are
   * united, the first local preference and next hop stay.
   */
  set(ads: readonly Advertisement[]): string[] {
    const errors: string[] = [];
    const parsed = new Map<string, ParsedAdvertisement>();
    for (const ad of ads) {
      const p = parseAdvertisement(ad, typeof ad.prefix === 'string' ? this.desired.get(ad.prefix) : undefined);
      if (typeof p === 'string') {
        errors.push(p);
        continue;
      }
      const first = parsed.get(p.text);
      if (!first) {
        parsed.set(p.text, p);
        continue;
      }
      first.std.push(...p.std);
      first.large.push(...p.large);
    }
    const next = new Map<string, Route>();
    const interned = new Map<string, RouteAttributes>();
    for (const [text, p] of parsed) {
      const attrs = this.intern(interned, p.localPref, p.std, p.large, p.nextHop);
      const old = this.desired.get(text);
      if (old && old.attrs === attrs) {
        next.set(text, old);
        continue;
      }
      next.set(text, { text, family: p.family, wire: p.wire, attrs });
      this.dirty.add(text);
    }
    for (const key of this.desired.keys()) if (!next.has(key)) this.dirty.add(key);
    this.desired = next;
    this.interned = interned;
    return errors;
  }

  /** One object per distinct attribute set, reusing the previous set's objects so unchanged routes compare equal. */
  private intern(into: Map<string, RouteAttributes>, localPref: number | undefined, std: number[], large: [number, number, number][], nextHop: string | undefined): RouteAttributes {
    const communities = [...new Set(std)].sort((a, b) => a - b);
    const largeCommunities = large.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    const key = `${localPref ?? ''}|${communities.join(',')}|${largeCommunities.map((l) => l.join(':')).join(',')}|${nextHop ?? ''}`;
    const have = into.get(key) ?? this.interned.get(key);
    if (have) {
      into.set(key, have);
      return have;
    }
    const attrs: RouteAttributes = {
      communities,
      largeCommunities,
      ...(localPref !== undefined ? { localPref } : {}),
      ...(nextHop !== undefined ? { nextHop } : {}),
    };
    into.set(key, attrs);
    return attrs;
  }

  /** The session went down: the peer holds nothing; everything wanted is pending again. */
  reset(): void {
    this.sent.clear();
    this.dirty.clear();
    for (const key of this.desired.keys()) this.dirty.add(key);
  }

  /** ROUTE-REFRESH (RFC 2918 §4): everything of `family` the peer holds is sent again. */
  resend(family: IPFamily): void {
    for (const [key, route] of this.sent) {
      if (route.family !== family) continue;
      this.sent.delete(key);
      this.dirty.add(key);
    }
  }

  get pending(): number {
    return this.dirty.size;
  }

  get announced(): number {
    return this.sent.size;
  }

  get size(): number {
    return this.desired.size;
  }

  /** What the peer holds (or is being sent), for status and tests. */
  sentRoutes(): IterableIterator<Route> {
    return this.sent.values();
  }

  desiredRoutes(): IterableIterator<Route> {
    return this.desired.values();
  }

  /** The attribute sets in use, so the packer can drop encodings of the others. */
  attributeSets(): Set<RouteAttributes> {
    return new Set(this.interned.values());
  }

  /**
   * Writes up to `max` pending prefixes into `packer`: announcements grouped by attribute set, withdrawals by family.
   * `families` are the address families negotiated with the peer.
   */
  flush(packer: UpdatePacker, families: ReadonlySet<IPFamily>, max: number): FlushResult {
    const groups = new Map<RouteAttributes, { v4: string[]; v6: string[] }>();
    const withdrawV4: string[] = [];
    const withdrawV6: string[] = [];
    const unsendable: Route[] = [];
    let n = 0;
    for (const key of this.dirty) {
      if (n++ >= max) break;
      this.dirty.delete(key);
      const want = this.desired.get(key);
      const have = this.sent.get(key);
      const sendable = want !== undefined && families.has(want.family) && packer.canAnnounce(want.attrs, want.family);
      if (want && sendable) {
        if (have && have.attrs === want.attrs) continue;
        let g = groups.get(want.attrs);
        if (!g) groups.set(want.attrs, (g = { v4: [], v6: [] }));
        (want.family === 'IPv4' ? g.v4 : g.v6).push(want.wire);
        this.sent.set(key, want);
        continue;
      }
      if (want) unsendable.push(want);
      if (have) {
        (have.family === 'IPv4' ? withdrawV4 : withdrawV6).push(have.wire);
        this.sent.delete(key);
      }
    }
    if (withdrawV4.length > 0) packer.withdraw('IPv4', withdrawV4);
    if (withdrawV6.length > 0) packer.withdraw('IPv6', withdrawV6);
    let announced = 0;
    for (const [attrs, g] of groups) {
      if (g.v4.length > 0) announced += packer.announce('IPv4', attrs, g.v4);
      if (g.v6.length > 0) announced += packer.announce('IPv6', attrs, g.v6);
    }
    return { announced, withdrawn: withdrawV4.length + withdrawV6.length, unsendable };
  }
}
