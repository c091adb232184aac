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

// Per prefix, a slot in parallel typed arrays rather than an object: 100,000 prefixes must stay small (a Map entry,
// the key string and ~21 bytes of arrays each, against ~150 bytes with an object per prefix). The key is the NLRI
// bytes as a latin1 string (for IPv6 after a marker octet no IPv4 NLRI starts with), which for IPv4 is also the
// wire form. Attribute sets are referred to by a small number; 0 = none (withdrawn / not sent).
const QUEUED = 1;
const IPV6 = 2;
/** ROUTE-REFRESH: announce again even though the peer has it (`have` stays what the peer holds). */
const RESEND = 4;

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

export class AdjRibOut {
  /** Prefix key -> slot. */
  private readonly index = new Map<string, number>();
  /** Slot -> key (undefined: a free slot). For IPv4 the key is the NLRI wire string itself. */
  private keys: (string | undefined)[] = [];
  /** Slot -> attribute set id: what we want the peer to have; 0 = withdrawn. */
  private want = new Uint32Array(0);
  /** Slot -> attribute set id: what the peer has (as far as what we wrote goes). */
  private have = new Uint32Array(0);
  /** Slot -> attribute set id this set() call gave the prefix (0 between calls). */
  private staged = new Uint32Array(0);
  /** Slot -> QUEUED | IPV6 | RESEND. */
  private flags = new Uint8Array(0);
  private readonly freeSlots: number[] = [];
  /** Slots whose want and have differ, in the order they changed. */
  private queue = new Int32Array(0);
  private queueLength = 0;
  private head = 0;
  private announcedCount = 0;
  private interned = new Map<string, RouteAttributes>();
  /** Attribute set id -> set (index 0 unused); ids are stable while a set is in use, so equal ids mean equal sets. */
  private attrs: (RouteAttributes | undefined)[] = [undefined];
  private readonly attrIds = new Map<RouteAttributes, number>();
  private readonly freeAttrIds: number[] = [];

  /**
   * Replaces the whole set. Returns one message per advertisement that was refused (bad prefix, community or next
   * hop); the others are applied. Duplicate prefixes merge as MetalLB's native speaker does: communities are
   * united, the first local preference and next hop stay.
   */
  set(ads: Iterable<Advertisement>): string[] {
    const errors: string[] = [];
    const interned = new Map<string, RouteAttributes>();
    for (const ad of ads) {
      const slot = this.slotFor(ad);
      if (typeof slot === 'string') {
        errors.push(slot);
        continue;
      }
      const attrs = this.attributesOf(ad, interned);
      if (typeof attrs === 'string') {
        errors.push(`advertisement ${ad.prefix}: ${attrs}`);
        continue;
      }
      const before = this.staged[slot]!;
      this.staged[slot] = this.idOf(before ? this.merge(this.attrs[before]!, attrs, interned) : attrs);
    }
    for (let slot = 0; slot < this.keys.length; slot++) {
      if (this.keys[slot] === undefined) continue;
      const want = this.staged[slot]!;
      this.staged[slot] = 0;
      if (want !== this.want[slot]) {
        this.want[slot] = want;
        this.enqueue(slot);
      }
      if (!want && !this.have[slot] && !(this.flags[slot]! & QUEUED)) this.release(slot);
    }
    this.interned = interned;
    this.collectAttributeIds();
    return errors;
  }

  private slotFor(ad: Advertisement): number | string {
    const text = ad?.prefix;
    if (typeof text !== 'string') return `advertisement ${JSON.stringify(text)}: not an IP prefix`;
    let ipv6 = false;
    let wire = ipv4Wire(text);
    if (wire === null) {
      const p = encodePrefix(text);
      if (!p) return `advertisement ${JSON.stringify(text)}: not an IP prefix`;
      ipv6 = p.family === 'IPv6';
      wire = p.wire;
    }
    const key = ipv6 ? IPV6_KEY + wire : wire;
    let slot = this.index.get(key);
    if (slot === undefined) {
      slot = this.freeSlots.pop() ?? this.grow();
      this.keys[slot] = key;
      this.flags[slot] = ipv6 ? IPV6 : 0;
      this.index.set(key, slot);
    }
    return slot;
  }

  /** A new slot at the end, growing the arrays by doubling. */
  private grow(): number {
    const slot = this.keys.length;
    this.keys.push(undefined);
    if (slot >= this.want.length) {
      const cap = Math.max(64, this.want.length * 2);
      const widen = <T extends Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(cap);
        b.set(a);
        return b;
      };
      this.want = widen(this.want, (n) => new Uint32Array(n));
      this.have = widen(this.have, (n) => new Uint32Array(n));
      this.staged = widen(this.staged, (n) => new Uint32Array(n));
      this.flags = widen(this.flags, (n) => new Uint8Array(n));
    }
    return slot;
  }

  private release(slot: number): void {
    this.index.delete(this.keys[slot]!);
    this.keys[slot] = undefined;
    this.want[slot] = 0;
    this.have[slot] = 0;
    this.staged[slot] = 0;
    this.flags[slot] = 0;
    this.freeSlots.push(slot);
  }

  private idOf(attrs: RouteAttributes): number {
    let id = this.attrIds.get(attrs);
    if (id === undefined) {
      id = this.freeAttrIds.pop() ?? this.attrs.length;
      this.attrs[id] = attrs;
      this.attrIds.set(attrs, id);
    }
    return id;
  }

  /** Frees the ids of attribute sets no prefix uses any more (a scan, only when they pile up). */
  private collectAttributeIds(): void {
    if (this.attrIds.size <= 2 * this.interned.size + 16) return;
    const used = new Set<number>();
    for (let slot = 0; slot < this.keys.length; slot++) {
      if (this.want[slot]) used.add(this.want[slot]!);
      if (this.have[slot]) used.add(this.have[slot]!);
    }
    for (const [attrs, id] of this.attrIds) {
      if (used.has(id)) continue;
      this.attrIds.delete(attrs);
      this.attrs[id] = undefined;
      this.freeAttrIds.push(id);
    }
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

  private enqueue(slot: number): void {
    if (this.flags[slot]! & QUEUED) return;
    this.flags[slot]! |= QUEUED;
    if (this.queueLength === this.queue.length) {
      const grown = new Int32Array(Math.max(64, this.queue.length * 2));
      grown.set(this.queue);
      this.queue = grown;
    }
    this.queue[this.queueLength++] = slot;
  }

  private clearQueue(): void {
    this.queue = new Int32Array(0);
    this.queueLength = 0;
    this.head = 0;
  }

  private familyOf(slot: number): IPFamily {
    return this.flags[slot]! & IPV6 ? 'IPv6' : 'IPv4';
  }

  /** NLRI bytes as latin1 (the key, without the IPv6 marker). */
  private wireOf(slot: number): string {
    const key = this.keys[slot]!;
    return this.flags[slot]! & IPV6 ? key.slice(1) : key;
  }

  private route(slot: number, attrs: number): Route {
    const family = this.familyOf(slot);
    const wire = this.wireOf(slot);
    return { text: wireText(family, wire), family, wire, attrs: this.attrs[attrs]! };
  }

  /** The session went down: the peer holds nothing; everything wanted is pending again. */
  reset(): void {
    for (let i = this.head; i < this.queueLength; i++) this.flags[this.queue[i]!]! &= ~(QUEUED | RESEND);
    this.clearQueue();
    this.announcedCount = 0;
    for (let slot = 0; slot < this.keys.length; slot++) {
      if (this.keys[slot] === undefined) continue;
      this.have[slot] = 0;
      if (this.want[slot]) this.enqueue(slot);
      else this.release(slot);
    }
  }

  /**
   * ROUTE-REFRESH (RFC 2918 §4): everything of `family` the peer holds is sent again. What the peer holds is kept
   * (only marked to be sent again): a prefix withdrawn before the next flush must still reach the peer as a withdrawal.
   */
  resend(family: IPFamily): void {
    for (let slot = 0; slot < this.keys.length; slot++) {
      if (this.keys[slot] === undefined || !this.have[slot] || this.familyOf(slot) !== family) continue;
      this.flags[slot]! |= RESEND;
      this.enqueue(slot);
    }
  }

  get pending(): number {
    return this.queueLength - this.head;
  }

  get announced(): number {
    return this.announcedCount;
  }

  /** Prefixes we want advertised. */
  get size(): number {
    let n = 0;
    for (let slot = 0; slot < this.keys.length; slot++) if (this.keys[slot] !== undefined && this.want[slot]) n++;
    return n;
  }

  /** What the peer holds (or is being sent), for status and tests. */
  *sentRoutes(): IterableIterator<Route> {
    for (const slot of this.index.values()) if (this.have[slot]) yield this.route(slot, this.have[slot]!);
  }

  *desiredRoutes(): IterableIterator<Route> {
    for (const slot of this.index.values()) if (this.want[slot]) yield this.route(slot, this.want[slot]!);
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
    const groups = new Map<number, { v4: string[]; v6: string[] }>();
    const withdrawV4: string[] = [];
    const withdrawV6: string[] = [];
    const unsendable: Route[] = [];
    const end = Math.min(this.queueLength, this.head + max);
    for (; this.head < end; this.head++) {
      const slot = this.queue[this.head]!;
      const resend = (this.flags[slot]! & RESEND) !== 0;
      this.flags[slot]! &= ~(QUEUED | RESEND);
      const want = this.want[slot]!;
      const have = this.have[slot]!;
      const family = this.familyOf(slot);
      if (want && families.has(family) && packer.canAnnounce(this.attrs[want]!, family)) {
        if (have === want && !resend) continue;
        let g = groups.get(want);
        if (!g) groups.set(want, (g = { v4: [], v6: [] }));
        (family === 'IPv4' ? g.v4 : g.v6).push(this.wireOf(slot));
        if (!have) this.announcedCount++;
        this.have[slot] = want;
        continue;
      }
      if (want) unsendable.push(this.route(slot, want));
      if (have) {
        (family === 'IPv4' ? withdrawV4 : withdrawV6).push(this.wireOf(slot));
        this.have[slot] = 0;
        this.announcedCount--;
      }
      if (!want) this.release(slot);
    }
    if (this.head === this.queueLength) {
      this.clearQueue();
    } else if (this.head > 4096 && this.head * 2 > this.queueLength) {
      this.queue = this.queue.slice(this.head, this.queueLength);
      this.queueLength -= this.head;
      this.head = 0;
    }
    if (withdrawV4.length > 0) packer.withdraw('IPv4', withdrawV4);
    if (withdrawV6.length > 0) packer.withdraw('IPv6', withdrawV6);
    let announced = 0;
    for (const [id, g] of groups) {
      const attrs = this.attrs[id]!;
      if (g.v4.length > 0) announced += packer.announce('IPv4', attrs, g.v4);
      if (g.v6.length > 0) announced += packer.announce('IPv6', attrs, g.v6);
    }
    return { announced, withdrawn: withdrawV4.length + withdrawV6.length, unsendable };
  }
}
