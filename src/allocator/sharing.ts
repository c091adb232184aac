// Who uses which address, with which ports and sharing identity: MetalLB's sharingKeyForIP / portsInUse /
// servicesOnIP / poolIPsInUse, plus the indexes that make "first usable address in a prefix" cheap:
//  - per family, the occupied addresses as runs (first untouched address = one binary search);
//  - per (family, sharing key, backend key), the sorted addresses of that sharing group and, per port,
//    how many of them already carry it (so "every address of the group clashes" is answered in O(ports)).
import { formatIP, isBuggyIP, type IP, type IPFamily } from '../net/ip.js';
import { RunSet, SortedAddresses } from './ip-index.js';
import type { PortKey, SharingIdentity } from './types.js';

export interface AddressRecord extends SharingIdentity {
  readonly family: IPFamily;
  readonly value: bigint;
  sharing: string;
  backend: string;
  pool: string;
  /** Flat pairs [port, service key using it, port, key, ...]: a handful of entries, cheaper than a Map. */
  readonly ports: string[];
  /** Service keys using the address (usually one; a handful when shared). */
  readonly services: string[];
}

interface SharingGroup {
  readonly addresses: SortedAddresses;
  /** port -> number of addresses of the group on which that port is taken. */
  readonly portUse: Map<PortKey, number>;
  /**
   * port -> h such that every address of the group below h has that port taken. Lets repeated searches for the
   * same port start where the previous one stopped instead of rescanning the clashing addresses (amortized O(1)).
   */
  readonly hints: Map<PortKey, bigint>;
}

/** MetalLB's sharingOK: why `incoming` may not join an address held under `existing`; undefined = compatible. */
export function sharingConflict(existing: SharingIdentity, incoming: SharingIdentity): string | undefined {
  if (existing.sharing === '') return 'existing service does not allow sharing';
  if (incoming.sharing === '') return 'new service does not allow sharing';
  if (existing.sharing !== incoming.sharing) {
    return `sharing key ${JSON.stringify(incoming.sharing)} does not match existing sharing key ${JSON.stringify(existing.sharing)}`;
  }
  if (existing.backend !== incoming.backend) {
    return `backend key ${JSON.stringify(incoming.backend)} does not match existing sharing key ${JSON.stringify(existing.backend)}`;
  }
  return undefined;
}

/** A refusal to put a service on an address: MetalLB's message and a human one. */
export interface SharingRefusal {
  error: string;
  reason: string;
}

const recordKey = (family: IPFamily, v: bigint): number | bigint => (family === 'IPv4' ? Number(v) : v);

const groupKey = (family: IPFamily, id: SharingIdentity): string => `${family}\u0000${id.sharing}\u0000${id.backend}`;

export class AddressBook {
  // IPv4 keys are numbers (cheaper to hash than bigints), IPv6 keys bigints.
  private readonly records: Record<IPFamily, Map<number | bigint, AddressRecord>> = { IPv4: new Map(), IPv6: new Map() };
  private readonly occupied: Record<IPFamily, RunSet> = { IPv4: new RunSet(), IPv6: new RunSet() };
  private readonly groups = new Map<string, SharingGroup>();
  private readonly inUse = new Map<string, { IPv4: number; IPv6: number }>();

  get(ip: IP): AddressRecord | undefined {
    return this.records[ip.family].get(recordKey(ip.family, ip.value));
  }

  /** Distinct addresses in use per pool and family. */
  inUseFor(pool: string): { IPv4: number; IPv6: number } {
    return this.inUse.get(pool) ?? { IPv4: 0, IPv6: 0 };
  }

  /** MetalLB's checkSharing: may service `svc` with these ports and identity use `ip`? */
  check(svc: string, ip: IP, ports: readonly PortKey[], id: SharingIdentity): SharingRefusal | undefined {
    const rec = this.get(ip);
    if (!rec) return undefined;
    const conflict = sharingConflict(rec, id);
    if (conflict !== undefined) {
      const others = rec.services.filter((s) => s !== svc).sort();
      if (others.length > 0) {
        return {
          error: `can't change sharing key for ${JSON.stringify(svc)}, address also in use by ${others.join(',')}`,
          reason: `${formatIP(ip)} is in use by ${others.join(', ')} and cannot be shared: ${conflict}`,
        };
      }
    }
    for (const port of ports) {
      const owner = portOwner(rec, port);
      if (owner !== undefined && owner !== svc) {
        return {
          error: `port ${port} is already in use on ${JSON.stringify(formatIP(ip))}`,
          reason: `${formatIP(ip)} is shared, but port ${port} is already used there by ${owner}`,
        };
      }
    }
    return undefined;
  }

  /** Records `svc` as a user of `ip`. The caller has checked sharing. */
  addUser(ip: IP, svc: string, ports: readonly PortKey[], id: SharingIdentity, pool: string): void {
    const map = this.records[ip.family];
    let rec = map.get(recordKey(ip.family, ip.value));
    if (!rec) {
      rec = { family: ip.family, value: ip.value, sharing: id.sharing, backend: id.backend, pool, ports: [], services: [] };
      map.set(recordKey(ip.family, ip.value), rec);
      this.occupied[ip.family].add(ip.value);
      this.countInUse(pool, ip.family, 1);
      this.joinGroup(rec);
    } else {
      if (rec.pool !== pool) {
        this.countInUse(rec.pool, ip.family, -1);
        this.countInUse(pool, ip.family, 1);
        rec.pool = pool;
      }
      if (rec.sharing !== id.sharing || rec.backend !== id.backend) {
        // MetalLB keeps the identity of the last service assigned (only differs when the sole user changes its key).
        this.leaveGroup(rec);
        rec.sharing = id.sharing;
        rec.backend = id.backend;
        this.joinGroup(rec);
      }
    }
    if (!rec.services.includes(svc)) rec.services.push(svc);
    const group = this.groupOf(rec);
    for (const port of ports) {
      const i = portIndex(rec, port);
      if (i < 0) {
        if (group) group.portUse.set(port, (group.portUse.get(port) ?? 0) + 1);
        rec.ports.push(port, svc);
      } else {
        rec.ports[i + 1] = svc;
      }
    }
  }

  /** Forgets `svc` on `ip`; the address becomes free when nobody uses it any more. */
  removeUser(ip: IP, svc: string): void {
    const map = this.records[ip.family];
    const rec = map.get(recordKey(ip.family, ip.value));
    const at = rec ? rec.services.indexOf(svc) : -1;
    if (!rec || at < 0) return;
    rec.services.splice(at, 1);
    const group = this.groupOf(rec);
    for (let i = rec.ports.length - 2; i >= 0; i -= 2) {
      if (rec.ports[i + 1] !== svc) continue;
      const port = rec.ports[i]!;
      rec.ports.splice(i, 2);
      if (group) {
        decrement(group.portUse, port);
        const h = group.hints.get(port);
        if (h !== undefined && rec.value < h) group.hints.set(port, rec.value);
      }
    }
    if (rec.services.length === 0) {
      // Deviation: MetalLB drops the sharing key as soon as no *port* remains, even if a port-less service still
      // holds the address; we keep the record while any service holds it, so it is never handed out twice.
      this.leaveGroup(rec);
      map.delete(recordKey(ip.family, ip.value));
      this.occupied[ip.family].delete(ip.value);
      this.countInUse(rec.pool, ip.family, -1);
    }
  }

  /** First address in [lo, hi] that nobody uses, skipping .0/.255 IPv4 addresses when `avoidBuggy`. */
  firstUntouched(family: IPFamily, lo: bigint, hi: bigint, avoidBuggy: boolean): bigint | undefined {
    const occ = this.occupied[family];
    let x: bigint | undefined = lo;
    for (;;) {
      x = occ.firstAbsent(x, hi);
      if (x === undefined) return undefined;
      if (avoidBuggy && family === 'IPv4' && isBuggyIP({ family, value: x })) {
        x++;
        continue;
      }
      return x;
    }
  }

  /**
   * First address in [lo, hi] already used by the sharing group of `id` on which none of `ports` is taken.
   * Precondition: `svc` holds no address of this family (callers unassign before searching).
   */
  firstShareable(
    family: IPFamily, lo: bigint, hi: bigint, avoidBuggy: boolean,
    svc: string, ports: readonly PortKey[], id: SharingIdentity,
  ): bigint | undefined {
    if (id.sharing === '' || lo > hi) return undefined;
    const group = this.groups.get(groupKey(family, id));
    if (!group || group.addresses.size === 0) return undefined;
    for (const port of ports) if ((group.portUse.get(port) ?? 0) >= group.addresses.size) return undefined;
    const map = this.records[family];
    const addrs = group.addresses;
    const items = addrs.items;
    // Start past the addresses known to clash on one of the ports.
    let start = lo;
    for (const port of ports) {
      const h = group.hints.get(port);
      if (h !== undefined && h > start) start = h;
    }
    // With a single port, what this scan learns moves that port's hint forward, provided the scan covers every
    // group address from the old hint on (no group address between the hint and `lo`).
    const single = ports.length === 1 ? ports[0]! : undefined;
    let learn = false;
    if (single !== undefined) {
      const h = group.hints.get(single) ?? -1n;
      learn = h >= lo || addrs.firstIndexAtOrAbove(h < 0n ? 0n : h) === addrs.firstIndexAtOrAbove(lo);
    }
    let i = addrs.firstIndexAtOrAbove(start);
    outer: for (; i < items.length && items[i]! <= hi; i++) {
      const v = items[i]!;
      if (avoidBuggy && family === 'IPv4' && isBuggyIP({ family, value: v })) {
        learn = false;
        continue;
      }
      const rec = map.get(recordKey(family, v));
      if (!rec) {
        learn = false;
        continue;
      }
      for (const port of ports) {
        const owner = portOwner(rec, port);
        if (owner !== undefined && owner !== svc) continue outer;
      }
      if (learn) group.hints.set(single!, v);
      return v;
    }
    if (learn) group.hints.set(single!, hi + 1n);
    return undefined;
  }

  private groupOf(rec: AddressRecord): SharingGroup | undefined {
    return rec.sharing === '' ? undefined : this.groups.get(groupKey(rec.family, rec));
  }

  private joinGroup(rec: AddressRecord): void {
    if (rec.sharing === '') return;
    const k = groupKey(rec.family, rec);
    let g = this.groups.get(k);
    if (!g) {
      g = { addresses: new SortedAddresses(), portUse: new Map(), hints: new Map() };
      this.groups.set(k, g);
    }
    g.addresses.add(rec.value);
    // A new address below a hint, without that port, invalidates the hint beyond it.
    for (const [port, h] of g.hints) if (rec.value < h && portIndex(rec, port) < 0) g.hints.set(port, rec.value);
    for (let i = 0; i < rec.ports.length; i += 2) g.portUse.set(rec.ports[i]!, (g.portUse.get(rec.ports[i]!) ?? 0) + 1);
  }

  private leaveGroup(rec: AddressRecord): void {
    if (rec.sharing === '') return;
    const k = groupKey(rec.family, rec);
    const g = this.groups.get(k);
    if (!g) return;
    g.addresses.delete(rec.value);
    for (let i = 0; i < rec.ports.length; i += 2) decrement(g.portUse, rec.ports[i]!);
    if (g.addresses.size === 0) this.groups.delete(k);
  }

  private countInUse(pool: string, family: IPFamily, delta: number): void {
    let c = this.inUse.get(pool);
    if (!c) {
      c = { IPv4: 0, IPv6: 0 };
      this.inUse.set(pool, c);
    }
    c[family] += delta;
    if (c.IPv4 === 0 && c.IPv6 === 0) this.inUse.delete(pool);
  }
}

function portIndex(rec: AddressRecord, port: PortKey): number {
  const p = rec.ports;
  for (let i = 0; i < p.length; i += 2) if (p[i] === port) return i;
  return -1;
}

function portOwner(rec: AddressRecord, port: PortKey): string | undefined {
  const i = portIndex(rec, port);
  return i < 0 ? undefined : rec.ports[i + 1];
}

function decrement(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
