// MetalLB's internal/allocator: who holds which addresses, Assign / Allocate / AllocateFromPool /
// AllocateFromPoolForAdditionalFamily / Unassign / SetPools, with the same checks and error messages.
// Differences: pools are tried in a deterministic order (see PoolSet), and finding a free address never walks
// the used addresses (see AddressBook).
import type { Pool } from '../config/types.js';
import { formatIP, prefixContains, prefixFirst, prefixLast, type IP, type IPFamily } from '../net/ip.js';
import { PoolSet, poolAdmits, poolCapacity, whyNotAdmitted } from './pool-set.js';
import { AddressBook } from './sharing.js';
import { goQuoteList } from './service-view.js';
import { fail, familyText, type AllocOutcome, type AllocationRequest, type Holding } from './types.js';

interface Candidates {
  pool: Pool;
  IPv4?: IP;
  IPv6?: IP;
}

export interface PoolUsage {
  pool: string;
  ipv4Total: bigint;
  ipv6Total: bigint;
  ipv4InUse: number;
  ipv6InUse: number;
}

const quoteIPs = (ips: readonly IP[]): string => goQuoteList(ips.map(formatIP));
const sortV4First = (ips: readonly IP[]): IP[] =>
  ips.length === 2 && ips[0]!.family === 'IPv6' && ips[1]!.family === 'IPv4' ? [ips[1]!, ips[0]!] : [...ips];

/** Why automatic allocation does not try `pool` for `req`, for people. */
const whyNotEligible = (pool: Pool, req: AllocationRequest): string =>
  !pool.autoAssign ? `pool ${pool.name} has autoAssign: false` : (whyNotAdmitted(pool, req) ?? `pool ${pool.name} is not eligible`);

const BOTH: readonly IPFamily[] = ['IPv4', 'IPv6'];
const ONLY_V4: readonly IPFamily[] = ['IPv4'];
const ONLY_V6: readonly IPFamily[] = ['IPv6'];

/** Re-assigning exactly what is held (the steady state of every converge) changes nothing. */
function sameHolding(h: Holding, pool: string, ips: readonly IP[], req: AllocationRequest): boolean {
  if (h.pool !== pool || h.sharing !== req.sharing || h.backend !== req.backend) return false;
  if (h.ips.length !== ips.length || h.ports.length !== req.ports.length) return false;
  for (let i = 0; i < ips.length; i++) if (h.ips[i]!.family !== ips[i]!.family || h.ips[i]!.value !== ips[i]!.value) return false;
  for (let i = 0; i < h.ports.length; i++) if (h.ports[i] !== req.ports[i]) return false;
  return true;
}

export class Allocator {
  private poolSet = new PoolSet([]);
  private readonly book = new AddressBook();
  private readonly holdings = new Map<string, Holding>();

  get pools(): PoolSet {
    return this.poolSet;
  }

  holding(key: string): Holding | undefined {
    return this.holdings.get(key);
  }

  /**
   * MetalLB's SetPools: holdings whose addresses are no longer in one pool are dropped, holdings whose addresses
   * now belong to a differently named pool move to it. Returns the keys of the dropped holdings.
   */
  setPools(pools: readonly Pool[]): string[] {
    this.poolSet = new PoolSet(pools);
    const dropped: string[] = [];
    for (const [key, h] of [...this.holdings]) {
      const pool = this.poolSet.poolFor(h.ips);
      if (!pool) {
        this.unassign(key);
        dropped.push(key);
      } else if (pool.name !== h.pool) {
        this.record(key, { ...h, pool: pool.name });
      }
    }
    return dropped;
  }

  /** Frees the addresses of `key`; true when it held some. */
  unassign(key: string): boolean {
    const h = this.holdings.get(key);
    if (!h) return false;
    for (const ip of h.ips) this.book.removeUser(ip, key);
    this.holdings.delete(key);
    return true;
  }

  private record(key: string, h: Holding): void {
    this.unassign(key);
    for (const ip of h.ips) this.book.addUser(ip, key, h.ports, h, h.pool);
    this.holdings.set(key, h);
  }

  /** MetalLB's Assign: checks, then (re)records the holding. */
  assign(req: AllocationRequest, ipsIn: readonly IP[]): AllocOutcome {
    const ips = sortV4First(ipsIn);
    const pool = this.poolSet.poolFor(ips);
    if (!pool) return fail(`${quoteIPs(ips)} is not allowed in config`, this.whyNotInConfig(ips));
    if (!poolAdmits(pool, req)) {
      return fail(`pool ${pool.name} not compatible for ip assignment`, whyNotAdmitted(pool, req) ?? `pool ${pool.name} does not admit this service`);
    }
    if (ips.length > 2) return fail(`more than two addresses ${quoteIPs(ips)}`);
    if (ips.length === 2 && ips[0]!.family === ips[1]!.family) {
      return fail(`${JSON.stringify(formatIP(ips[0]!))} ${JSON.stringify(formatIP(ips[1]!))} has the same family`);
    }
    for (const ip of ips) {
      const refusal = this.book.check(req.key, ip, req.ports, req);
      if (refusal) return fail(refusal.error, refusal.reason);
    }
    const held = this.holdings.get(req.key);
    if (held && sameHolding(held, pool.name, ips, req)) return { ok: true, ips: [...held.ips], pool: held.pool };
    this.record(req.key, { pool: pool.name, ips, texts: ips.map(formatIP), ports: req.ports, sharing: req.sharing, backend: req.backend });
    return { ok: true, ips, pool: pool.name };
  }

  private whyNotInConfig(ips: readonly IP[]): string {
    const parts: string[] = [];
    let owner: Pool | undefined;
    for (const ip of ips) {
      const text = formatIP(ip);
      const p = this.poolSet.poolContaining(ip);
      if (p) {
        if (owner && owner !== p) parts.push(`${text} is in pool ${p.name}, not in pool ${owner.name}: both addresses must come from one pool`);
        owner ??= p;
        continue;
      }
      const buggy = this.poolSet.pools.find((pl) => pl.avoidBuggyIPs && pl.prefixes.some((pr) => prefixContains(pr, ip)));
      parts.push(buggy ? `${text} is skipped by pool ${buggy.name} (avoidBuggyIPs: addresses ending in .0 or .255)` : `${text} is not in any IPAddressPool`);
    }
    return parts.length > 0 ? parts.join('; ') : `${quoteIPs(ips)} is not allowed in config`;
  }

  /** The first usable address of each wanted family in `pool` for `req` (MetalLB's getFreeIPsFromPool). */
  private candidates(pool: Pool, req: AllocationRequest, want: readonly IPFamily[]): Candidates {
    const out: Candidates = { pool };
    for (const pr of pool.prefixes) {
      const fam = pr.family;
      if (out[fam] !== undefined || !want.includes(fam)) continue;
      const lo = prefixFirst(pr);
      const hi = prefixLast(pr);
      const untouched = this.book.firstUntouched(fam, lo, hi, pool.avoidBuggyIPs);
      const shareable = this.book.firstShareable(
        fam, lo, untouched === undefined ? hi : untouched - 1n, pool.avoidBuggyIPs, req.key, req.ports, req,
      );
      const v = shareable ?? untouched;
      if (v !== undefined) out[fam] = { family: fam, value: v };
    }
    return out;
  }

  private wanted(req: AllocationRequest): readonly IPFamily[] {
    return req.family === 'dual' ? BOTH : req.family === 'IPv4' ? ONLY_V4 : ONLY_V6;
  }

  /** MetalLB's findBestPoolForService. */
  private bestPool(pools: readonly Pool[], req: AllocationRequest): Candidates | undefined {
    const want = this.wanted(req);
    const secondary: IPFamily = req.primaryFamily === 'IPv4' ? 'IPv6' : 'IPv4';
    let primaryCand: Candidates | undefined;
    let secondaryCand: Candidates | undefined;
    for (const pool of pools) {
      const c = this.candidates(pool, req, want);
      if (req.family !== 'dual') {
        if (c[req.family]) return c;
        continue;
      }
      if (c.IPv4 && c.IPv6) return c;
      if (req.policy !== 'PreferDualStack') continue;
      if (c[req.primaryFamily] && !primaryCand) primaryCand = c;
      if (c[secondary] && !secondaryCand) secondaryCand = c;
    }
    return primaryCand ?? secondaryCand;
  }

  /** MetalLB's selectIPsForFamilyAndPolicy. */
  private select(c: Candidates, req: AllocationRequest): IP[] | undefined {
    if (req.family === 'IPv4') return c.IPv4 ? [c.IPv4] : undefined;
    if (req.family === 'IPv6') return c.IPv6 ? [c.IPv6] : undefined;
    if (req.policy === 'RequireDualStack') return c.IPv4 && c.IPv6 ? [c.IPv4, c.IPv6] : undefined;
    if (req.policy === 'PreferDualStack') {
      if (c.IPv4 && c.IPv6) return [c.IPv4, c.IPv6];
      if (c.IPv4) return [c.IPv4];
      if (c.IPv6) return [c.IPv6];
    }
    return undefined;
  }

  /** MetalLB's Allocate: pinned pools by priority, then plain autoAssign pools (by name), else "no available IPs". */
  allocate(req: AllocationRequest): AllocOutcome {
    const held = this.holdings.get(req.key);
    if (held) return this.assign(req, held.ips);
    const pinned = this.poolSet.pinnedFor(req);
    for (const list of [pinned, this.poolSet.plain]) {
      const c = this.bestPool(list, req);
      if (!c) continue;
      const ips = this.select(c, req);
      const r = ips && this.assign(req, ips);
      if (r && r.ok) return r;
    }
    return fail('no available IPs', this.explainNoIPs(req, [...pinned, ...this.poolSet.plain], true));
  }

  /** MetalLB's AllocateFromPool (the `address-pool` annotation). */
  allocateFromPool(req: AllocationRequest, poolName: string): AllocOutcome {
    const held = this.holdings.get(req.key);
    if (held) {
      const fam = held.ips.length === 2 ? 'dual' : held.ips[0]!.family;
      if (req.policy !== 'PreferDualStack' && fam !== req.family) {
        return fail(`IP for wrong family assigned alloc ${familyText(fam)} service family ${familyText(req.family)}`);
      }
      return this.assign(req, held.ips);
    }
    const pool = this.poolSet.byName.get(poolName);
    if (!pool) {
      return fail(`unknown pool ${JSON.stringify(poolName)}`, `the requested IPAddressPool ${JSON.stringify(poolName)} does not exist`);
    }
    const c = this.candidates(pool, req, this.wanted(req));
    const ips = this.select(c, req);
    if (!ips) {
      return fail(`no available IPs in pool ${pool.name} for ${familyText(req.family)} IPFamily`, this.explainNoIPs(req, [pool]));
    }
    return this.assign(req, ips);
  }

  /** MetalLB's AllocateFromPoolForAdditionalFamily: add the missing family from the same pool. */
  allocateAdditional(req: AllocationRequest, existing: IP, poolName: string): AllocOutcome {
    const fam: IPFamily = existing.family === 'IPv4' ? 'IPv6' : 'IPv4';
    const pool = this.poolSet.byName.get(poolName);
    if (!pool) return fail(`unknown pool ${JSON.stringify(poolName)}`);
    const c = this.candidates(pool, req, [fam]);
    const ip = c[fam];
    if (!ip) return fail(`no available IPs in pool ${pool.name} for ${familyText(fam)} IPFamily`);
    return this.assign(req, [existing, ip]);
  }

  /** A sentence for people: why no pool could give `req` its addresses. */
  explainNoIPs(req: AllocationRequest, tried: readonly Pool[], automatic = false): string {
    const famWords = req.family === 'dual'
      ? (req.policy === 'RequireDualStack' ? 'both an IPv4 and an IPv6 address' : 'an IPv4 or IPv6 address')
      : `an ${req.family} address`;
    if (this.poolSet.size === 0) return 'no IPAddressPool is configured';
    const seen = new Set<string>();
    const details: string[] = [];
    for (const pool of tried) {
      if (seen.has(pool.name)) continue;
      seen.add(pool.name);
      const fams = this.wanted(req);
      const parts: string[] = [];
      const cap = poolCapacity(pool);
      const used = this.book.inUseFor(pool.name);
      for (const f of fams) {
        if (cap[f] === 0n) parts.push(`no ${f} range`);
        else parts.push(`${f} ${used[f]} of ${cap[f]} in use`);
      }
      details.push(`pool ${pool.name} (${parts.join(', ')})`);
    }
    if (details.length === 0) {
      const excluded = this.poolSet.pools.map((p) => whyNotEligible(p, req));
      return `no IPAddressPool admits this service for automatic allocation: ${excluded.join('; ')}`;
    }
    const sharing = req.sharing !== '' ? ` (no address shareable under key ${JSON.stringify(req.sharing)} without a port clash either)` : '';
    let out = `no pool has ${famWords} free for this service${sharing}: ${details.join('; ')}`;
    if (automatic) {
      const others = this.poolSet.pools.filter((p) => !seen.has(p.name)).map((p) => whyNotEligible(p, req));
      if (others.length > 0) out += `; not eligible: ${others.join('; ')}`;
    }
    return out;
  }

  /** Pool capacity and distinct addresses in use, in configured order. */
  stats(): PoolUsage[] {
    return [...this.poolSet.byName.values()].map((p) => {
      const cap = poolCapacity(p);
      const used = this.book.inUseFor(p.name);
      return { pool: p.name, ipv4Total: cap.IPv4, ipv6Total: cap.IPv6, ipv4InUse: used.IPv4, ipv6InUse: used.IPv6 };
    });
  }
}
