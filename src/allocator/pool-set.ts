// The configured pools, indexed for the allocator: by name, by address, and in the order automatic
// allocation tries them. Pure data built once per setPools.
import type { Pool } from '../config/types.js';
import { familyBits, isBuggyIP, prefixContains, prefixFirst, prefixLast, type IP, type IPFamily, type Prefix } from '../net/ip.js';
import type { AllocationRequest } from './types.js';

interface PrefixEntry {
  first: bigint;
  last: bigint;
  pool: Pool;
}

/** Whether `pool`'s serviceAllocation admits the service (MetalLB's isPoolCompatibleWithService, plus our namespace rule). */
export function poolAdmits(pool: Pool, req: Pick<AllocationRequest, 'namespace' | 'labels'>): boolean {
  const sa = pool.serviceAllocation;
  if (!sa) return true;
  // Deliberate improvement over MetalLB: a pool restricted by namespaces/namespaceSelectors admits only the
  // resolved namespaces, even when that set is empty (MetalLB then admits every namespace).
  if ((sa.restrictsNamespaces || sa.namespaces.size > 0) && !sa.namespaces.has(req.namespace)) return false;
  if (sa.serviceSelectors.length > 0) return sa.serviceSelectors.some((s) => s.matches(req.labels));
  return true;
}

/** Why `pool` does not admit the service, for people; undefined when it does. */
export function whyNotAdmitted(pool: Pool, req: Pick<AllocationRequest, 'namespace' | 'labels'>): string | undefined {
  const sa = pool.serviceAllocation;
  if (!sa) return undefined;
  if ((sa.restrictsNamespaces || sa.namespaces.size > 0) && !sa.namespaces.has(req.namespace)) {
    const list = [...sa.namespaces].sort();
    return list.length === 0
      ? `pool ${pool.name} is restricted to namespaces and its namespace selectors match no namespace`
      : `pool ${pool.name} only serves namespaces ${list.join(', ')}`;
  }
  if (sa.serviceSelectors.length > 0 && !sa.serviceSelectors.some((s) => s.matches(req.labels))) {
    return `pool ${pool.name} only serves services matching ${sa.serviceSelectors.map((s) => `{${s.text}}`).join(' or ')}`;
  }
  return undefined;
}

/** Priority order for pinned pools: positive ascending, 0 (unset) last; ties by pool name (MetalLB: unspecified). */
function comparePinned(a: Pool, b: Pool): number {
  const pa = a.serviceAllocation?.priority ?? 0;
  const pb = b.serviceAllocation?.priority ?? 0;
  const ka = pa > 0 ? pa : Number.POSITIVE_INFINITY;
  const kb = pb > 0 ? pb : Number.POSITIVE_INFINITY;
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export class PoolSet {
  readonly byName: ReadonlyMap<string, Pool>;
  /** Pools with a serviceAllocation and autoAssign, in priority order (ties by name). */
  readonly pinnedCandidates: readonly Pool[];
  /** Pools without serviceAllocation and with autoAssign, by name: the plain fallback (MetalLB: random order). */
  readonly plain: readonly Pool[];
  private readonly index: Record<IPFamily, PrefixEntry[]>;
  /** When prefixes overlap (should have been rejected by config validation) lookups fall back to a linear scan. */
  private readonly overlapping: boolean;

  constructor(readonly pools: readonly Pool[]) {
    const byName = new Map<string, Pool>();
    for (const p of pools) if (!byName.has(p.name)) byName.set(p.name, p);
    this.byName = byName;
    const unique = [...byName.values()];
    this.pinnedCandidates = unique.filter((p) => p.serviceAllocation && p.autoAssign).sort(comparePinned);
    this.plain = unique
      .filter((p) => !p.serviceAllocation && p.autoAssign)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.index = { IPv4: [], IPv6: [] };
    for (const p of unique) {
      for (const pr of p.prefixes) this.index[pr.family].push({ first: prefixFirst(pr), last: prefixLast(pr), pool: p });
    }
    let overlapping = false;
    for (const fam of ['IPv4', 'IPv6'] as const) {
      const list = this.index[fam];
      list.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
      for (let i = 1; i < list.length; i++) if (list[i]!.first <= list[i - 1]!.last) overlapping = true;
    }
    this.overlapping = overlapping;
  }

  get size(): number {
    return this.byName.size;
  }

  /** The pool whose prefixes contain `ip` (buggy addresses excluded in avoidBuggyIPs pools), or undefined. */
  poolContaining(ip: IP): Pool | undefined {
    const list = this.index[ip.family];
    if (this.overlapping) {
      for (const p of this.pools) if (poolHolds(p, ip)) return p;
      return undefined;
    }
    let lo = 0;
    let hi = list.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.first <= ip.value) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return undefined;
    const e = list[found]!;
    if (ip.value > e.last) return undefined;
    if (e.pool.avoidBuggyIPs && isBuggyIP(ip)) return undefined;
    return e.pool;
  }

  /** MetalLB's poolFor: the pool that holds ALL of `ips`, or undefined. */
  poolFor(ips: readonly IP[]): Pool | undefined {
    if (ips.length === 0) return undefined;
    if (this.overlapping) return this.pools.find((p) => ips.every((ip) => poolHolds(p, ip)));
    const p = this.poolContaining(ips[0]!);
    if (!p) return undefined;
    for (let i = 1; i < ips.length; i++) if (this.poolContaining(ips[i]!) !== p) return undefined;
    return p;
  }

  /** Pinned pools for a service (c.2): autoAssign pools with a serviceAllocation that admits it, by priority. */
  pinnedFor(req: Pick<AllocationRequest, 'namespace' | 'labels'>): Pool[] {
    if (this.pinnedCandidates.length === 0) return [];
    return this.pinnedCandidates.filter((p) => poolAdmits(p, req));
  }
}

export function poolHolds(p: Pool, ip: IP): boolean {
  if (p.avoidBuggyIPs && isBuggyIP(ip)) return false;
  return p.prefixes.some((pr) => prefixContains(pr, ip));
}

/** Capacity of one prefix per MetalLB's poolCount, but exact (bigint) instead of saturating at MaxInt64. */
export function prefixCapacity(pr: Prefix, avoidBuggyIPs: boolean): bigint {
  const hostBits = familyBits(pr.family) - pr.length;
  let size = 1n << BigInt(hostBits);
  if (avoidBuggyIPs && pr.family === 'IPv4') {
    if (pr.length <= 24) {
      size -= (1n << BigInt(24 - pr.length)) * 2n;
    } else {
      if (isBuggyIP({ family: 'IPv4', value: prefixFirst(pr) })) size--;
      const last = prefixLast(pr);
      if (last !== prefixFirst(pr) && isBuggyIP({ family: 'IPv4', value: last })) size--;
    }
  }
  return size;
}

export function poolCapacity(p: Pool): { IPv4: bigint; IPv6: bigint } {
  const out = { IPv4: 0n, IPv6: 0n };
  for (const pr of p.prefixes) out[pr.family] += prefixCapacity(pr, p.avoidBuggyIPs);
  return out;
}
