// Adj-RIB-Out of one session (RFC 4271 §3.2): per prefix, what we want the peer to have and what it has, and a
// queue of the prefixes where the two differ. setAdvertisements diffs a whole new set against the current one, so
// callers can always hand over the full list and only the changes reach the wire. Built for 100,000 prefixes:
// one small record per prefix, attribute sets shared, no per-prefix work beyond a map lookup when nothing changed.
import type { IPFamily } from '../../net/ip.js';
import { parseIP } from '../../net/ip.js';
import { encodePrefix, ipv4Wire, wireText } from './nlri.js';
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
  /** Canonical prefix text. */
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

// One per prefix. Keyed by its NLRI bytes (a short flat string, for IPv6 after a marker octet no IPv4 NLRI starts
// with), not by its text: 100,000 of them must stay small.
interface Entry {
  readonly key: string;
  readonly family: IPFamily;
  /** NLRI bytes as latin1 (for IPv4 the key itself). */
  readonly wire: string;
  /** What we want the peer to have; undefined = withdrawn. */
  want: RouteAttributes | undefined;
  /** What the peer has (as far as what we wrote goes). */
  have: RouteAttributes | undefined;
  queued: boolean;
  /** During set(): the attributes this call gave the prefix. */
  staged: RouteAttributes | undefined;
}

const IPV6_KEY = '\xff';

const UINT16_MAX = 0xffff;
const UINT32_MAX = 0xffffffff;
const NO_COMMUNITIES: readonly number[] = Object.freeze([]);
const NO_LARGE: readonly (readonly [number, number, number])[] = Object.freeze([]);
const PLAIN_KEY = '|||';

function parseUint(text: string, max: number): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

export function parseStandardCommunity(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const parts = text.split(':');
  if (parts.length !== 2) return undefined;
  const high = parseUint(parts[0]!, UINT16_MAX);
  const low = parseUint(parts[1]!, UINT16_MAX);
  return high === undefined || low === undefined ? undefined : ((high << 16) | low) >>> 0;
}

export function parseLargeCommunity(text: string): [number, number, number] | undefined {
  if (typeof text !== 'string') return undefined;
  const parts = text.split(':');
  if (parts.length === 4 && parts[0] === 'large') parts.shift();
  if (parts.length !== 3) return undefined;
  const v = parts.map((p) => parseUint(p, UINT32_MAX));
  return v.every((x) => x !== undefined) ? [v[0]!, v[1]!, v[2]!] : undefined;
}

export const formatStandardCommunity = (c: number): string => `${c >>> 16}:${c & 0xffff}`;

const route = (e: Entry, attrs: RouteAttributes): Route => ({ text: wireText(e.family, e.wire), family: e.family, wire: e.wire, attrs });

export class AdjRibOut {
  private readonly entries = new Map<string, Entry>();
  private queue: Entry[] = [];
  private head = 0;
  private announcedCount = 0;
  private interned = new Map<string, RouteAttributes>();

  /**
   * Replaces the whole set. Returns one message per advertisement that was refused (bad prefix, community or next
   * hop); the others are applied. Duplicate prefixes merge as MetalLB's native speaker does: communities are
   * united, the first local preference and next hop stay.
   */
  set(ads: Iterable<Advertisement>): string[] {
    const errors: string[] = [];
    const interned = new Map<string, RouteAttributes>();
    for (const ad of ads) {
      const e = this.entryFor(ad);
      if (typeof e === 'string') {
        errors.push(e);
        continue;
      }
      const attrs = this.attributesOf(ad, interned);
      if (typeof attrs === 'string') {
        errors.push(`advertisement ${ad.prefix}: ${attrs}`);
        continue;
      }
      e.staged = e.staged ? this.merge(e.staged, attrs, interned) : attrs;
    }
    for (const e of this.entries.values()) {
      const want = e.staged;
      e.staged = undefined;
      if (want !== e.want) {
        e.want = want;
        this.enqueue(e);
      }
      if (!e.want && !e.have && !e.queued) this.entries.delete(e.key);
    }
    this.interned = interned;
    return errors;
  }

  private entryFor(ad: Advertisement): Entry | string {
    const text = ad?.prefix;
    if (typeof text !== 'string') return `advertisement ${JSON.stringify(text)}: not an IP prefix`;
    let family: IPFamily = 'IPv4';
    let wire = ipv4Wire(text);
    if (wire === null) {
      const p = encodePrefix(text);
      if (!p) return `advertisement ${JSON.stringify(text)}: not an IP prefix`;
      family = p.family;
      wire = p.wire;
    }
    const key = family === 'IPv4' ? wire : IPV6_KEY + wire;
    let e = this.entries.get(key);
    if (!e) {
      e = { key, family, wire, want: undefined, have: undefined, queued: false, staged: undefined };
      this.entries.set(key, e);
    }
    return e;
  }

  /** The interned attribute set of one advertisement, or what is wrong with it. */
  private attributesOf(ad: Advertisement, into: Map<string, RouteAttributes>): RouteAttributes | string {
    const plain = (ad.communities === undefined || ad.communities.length === 0) && (ad.largeCommunities === undefined || ad.largeCommunities.length === 0)
      && ad.localPref === undefined && ad.nextHop === undefined;
    if (plain) return this.intern(into, PLAIN_KEY, () => ({ communities: NO_COMMUNITIES, largeCommunities: NO_LARGE }));
    const std: number[] = [];
    for (const c of ad.communities ?? []) {
      const v = parseStandardCommunity(c);
      if (v === undefined) return `community ${JSON.stringify(c)} is not A:B with 16-bit numbers`;
      std.push(v);
    }
    const large: [number, number, number][] = [];
    for (const c of ad.largeCommunities ?? []) {
      const v = parseLargeCommunity(c);
      if (!v) return `large community ${JSON.stringify(c)} is not A:B:C with 32-bit numbers`;
      large.push(v);
    }
    if (ad.localPref !== undefined && !(Number.isInteger(ad.localPref) && ad.localPref >= 0 && ad.localPref <= UINT32_MAX)) {
      return `local preference ${String(ad.localPref)} is not a 32-bit unsigned number`;
    }
    if (ad.nextHop !== undefined) {
      const nh = typeof ad.nextHop === 'string' ? parseIP(ad.nextHop) : undefined;
      const family = ad.prefix.includes(':') ? 'IPv6' : 'IPv4';
      if (!nh || nh.family !== family) return `next hop ${JSON.stringify(ad.nextHop)} is not an ${family} address`;
    }
    return this.build(into, ad.localPref, std, large, ad.nextHop);
  }

  private build(into: Map<string, RouteAttributes>, localPref: number | undefined, std: readonly number[], large: readonly (readonly [number, number, number])[], nextHop: string | undefined): RouteAttributes {
    const communities = [...new Set(std)].sort((a, b) => a - b);
    const byKey = new Map(large.map((l) => [l.join(':'), l] as const));
    const largeCommunities = [...byKey.values()].sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    const key = `${localPref ?? ''}|${communities.join(',')}|${largeCommunities.map((l) => l.join(':')).join(',')}|${nextHop ?? ''}`;
    return this.intern(into, key, () => ({
      communities: communities.length ? communities : NO_COMMUNITIES,
      largeCommunities: largeCommunities.length ? largeCommunities : NO_LARGE,
      ...(localPref !== undefined ? { localPref } : {}),
      ...(nextHop !== undefined ? { nextHop } : {}),
    }));
  }

  /** Equal attribute sets are one object, also across set() calls, so unchanged routes compare equal by identity. */
  private intern(into: Map<string, RouteAttributes>, key: string, make: () => RouteAttributes): RouteAttributes {
    let a = into.get(key);
    if (a) return a;
    a = this.interned.get(key) ?? make();
    into.set(key, a);
    return a;
  }

  private merge(first: RouteAttributes, next: RouteAttributes, into: Map<string, RouteAttributes>): RouteAttributes {
    return this.build(into, first.localPref, [...first.communities, ...next.communities],
      [...first.largeCommunities, ...next.largeCommunities], first.nextHop);
  }

  private enqueue(e: Entry): void {
    if (e.queued) return;
    e.queued = true;
    this.queue.push(e);
  }

  /** The session went down: the peer holds nothing; everything wanted is pending again. */
  reset(): void {
    for (const e of this.queue) e.queued = false;
    this.queue = [];
    this.head = 0;
    this.announcedCount = 0;
    for (const e of this.entries.values()) {
      e.have = undefined;
      if (e.want) this.enqueue(e);
      else this.entries.delete(e.key);
    }
  }

  /** ROUTE-REFRESH (RFC 2918 §4): everything of `family` the peer holds is sent again. */
  resend(family: IPFamily): void {
    for (const e of this.entries.values()) {
      if (e.family !== family || !e.have) continue;
      e.have = undefined;
      this.announcedCount--;
      this.enqueue(e);
    }
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  get announced(): number {
    return this.announcedCount;
  }

  /** Prefixes we want advertised. */
  get size(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.want) n++;
    return n;
  }

  /** What the peer holds (or is being sent), for status and tests. */
  *sentRoutes(): IterableIterator<Route> {
    for (const e of this.entries.values()) if (e.have) yield route(e, e.have);
  }

  *desiredRoutes(): IterableIterator<Route> {
    for (const e of this.entries.values()) if (e.want) yield route(e, e.want);
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
    const end = Math.min(this.queue.length, this.head + max);
    for (; this.head < end; this.head++) {
      const e = this.queue[this.head]!;
      e.queued = false;
      const want = e.want;
      const have = e.have;
      if (want && families.has(e.family) && packer.canAnnounce(want, e.family)) {
        if (have === want) continue;
        let g = groups.get(want);
        if (!g) groups.set(want, (g = { v4: [], v6: [] }));
        (e.family === 'IPv4' ? g.v4 : g.v6).push(e.wire);
        if (!have) this.announcedCount++;
        e.have = want;
        continue;
      }
      if (want) unsendable.push(route(e, want));
      if (have) {
        (e.family === 'IPv4' ? withdrawV4 : withdrawV6).push(e.wire);
        e.have = undefined;
        this.announcedCount--;
      }
      if (!want) this.entries.delete(e.key);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
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
