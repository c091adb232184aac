// Pod address management for one node: one address per family from the node's podCIDRs for each pod, handed out
// round-robin (like CNI host-local) so that a freed address is not reused at once while Endpoints, conntrack and
// neighbour caches may still name it. The state is written to disk before an address is used, so a kubelet restart
// never gives an address held by a running pod to another one.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatIP, formatPrefix, parseIP, parsePrefix, prefixContains, prefixFirst, prefixLast, type IPFamily, type Prefix } from '../../net/ip.js';

export class IPAMError extends Error {
  override name = 'IPAMError';
}

export interface PodAddresses {
  /** In the order of the node's podCIDRs (the first is the pod's primary IP). */
  ips: string[];
}

interface Pool {
  prefix: Prefix;
  first: bigint;
  last: bigint;
  /** Last address handed out (the next search starts after it). */
  cursor: bigint;
  used: Map<bigint, string>;
}

interface StateFile {
  version: 1;
  podCIDRs: string[];
  cursors: Record<string, string>;
  allocations: Record<string, string[]>;
}

/** Parses `--pod-cidr` values: at most one IPv4 and one IPv6 prefix. Throws IPAMError naming the bad one. */
export function parsePodCIDRs(list: readonly string[]): Prefix[] {
  const out: Prefix[] = [];
  for (const text of list) {
    const p = parsePrefix(text.trim());
    if (!p) throw new IPAMError(`pod CIDR "${text}" is not an IPv4 or IPv6 prefix`);
    if (out.some((q) => q.family === p.family)) throw new IPAMError(`more than one ${p.family} pod CIDR given ("${text}")`);
    const hostBits = (p.family === 'IPv4' ? 32 : 128) - p.length;
    if (hostBits < 2) throw new IPAMError(`pod CIDR "${text}" is too small to hold pod addresses`);
    out.push(p);
  }
  return out;
}

export class PodIPAM {
  private readonly pools: Pool[];
  private readonly owners = new Map<string, string[]>();

  constructor(
    prefixes: Prefix[],
    private readonly file?: string,
  ) {
    this.pools = prefixes.map((prefix) => {
      // .0 (network) and .1 are kept back, and IPv4's broadcast address.
      const first = prefixFirst(prefix) + 2n;
      const last = prefix.family === 'IPv4' ? prefixLast(prefix) - 1n : prefixLast(prefix);
      return { prefix, first, last, cursor: first - 1n, used: new Map() };
    });
    if (file && existsSync(file)) this.load(file);
  }

  get podCIDRs(): string[] {
    return this.pools.map((p) => formatPrefix(p.prefix));
  }

  families(): IPFamily[] {
    return this.pools.map((p) => p.prefix.family);
  }

  /** The addresses of `owner`, allocating them on first call. Persisted before it returns. */
  allocate(owner: string): PodAddresses {
    const have = this.owners.get(owner);
    if (have) return { ips: [...have] };
    const ips: string[] = [];
    const taken: [Pool, bigint][] = [];
    for (const pool of this.pools) {
      const ip = this.nextFree(pool);
      if (ip === undefined) {
        for (const [p, v] of taken) p.used.delete(v);
        throw new IPAMError(`no free address left in pod CIDR ${formatPrefix(pool.prefix)}`);
      }
      pool.used.set(ip, owner);
      pool.cursor = ip;
      taken.push([pool, ip]);
      ips.push(formatIP({ family: pool.prefix.family, value: ip }));
    }
    this.owners.set(owner, ips);
    this.save();
    return { ips: [...ips] };
  }

  /** Re-registers addresses known to belong to `owner` (adoption after a restart); false if one is held by another. */
  claim(owner: string, ips: string[]): boolean {
    const parsed = ips.map((t) => parseIP(t));
    const entries: [Pool, bigint][] = [];
    for (const ip of parsed) {
      if (!ip) return false;
      const pool = this.pools.find((p) => prefixContains(p.prefix, ip));
      if (!pool) return false;
      const holder = pool.used.get(ip.value);
      if (holder !== undefined && holder !== owner) return false;
      entries.push([pool, ip.value]);
    }
    for (const [pool, v] of entries) pool.used.set(v, owner);
    this.owners.set(owner, ips);
    this.save();
    return true;
  }

  release(owner: string): void {
    const ips = this.owners.get(owner);
    if (!ips) return;
    for (const t of ips) {
      const ip = parseIP(t);
      if (!ip) continue;
      for (const pool of this.pools) if (pool.used.get(ip.value) === owner) pool.used.delete(ip.value);
    }
    this.owners.delete(owner);
    this.save();
  }

  addressesOf(owner: string): string[] | undefined {
    const ips = this.owners.get(owner);
    return ips ? [...ips] : undefined;
  }

  ownersList(): string[] {
    return [...this.owners.keys()];
  }

  private nextFree(pool: Pool): bigint | undefined {
    const size = pool.last - pool.first + 1n;
    if (BigInt(pool.used.size) >= size) return undefined;
    let c = pool.cursor;
    // A /64 is never full in practice; the bound only guards a full small pool.
    for (let i = 0n; i < size; i++) {
      c = c >= pool.last ? pool.first : c + 1n;
      if (!pool.used.has(c)) return c;
    }
    return undefined;
  }

  private load(file: string): void {
    let st: StateFile;
    try {
      st = JSON.parse(readFileSync(file, 'utf8')) as StateFile;
    } catch (err) {
      throw new IPAMError(`IPAM state ${file} is unreadable (${(err as Error).message}); move it away to start over`);
    }
    for (const pool of this.pools) {
      const cur = parseIP(st.cursors?.[formatPrefix(pool.prefix)] ?? '');
      if (cur && prefixContains(pool.prefix, cur)) pool.cursor = cur.value;
    }
    for (const [owner, ips] of Object.entries(st.allocations ?? {})) {
      const kept: string[] = [];
      for (const t of ips) {
        const ip = parseIP(t);
        const pool = ip && this.pools.find((p) => prefixContains(p.prefix, ip));
        if (!ip || !pool) continue;
        pool.used.set(ip.value, owner);
        kept.push(t);
      }
      if (kept.length > 0) this.owners.set(owner, kept);
    }
  }

  private save(): void {
    if (!this.file) return;
    const st: StateFile = {
      version: 1,
      podCIDRs: this.podCIDRs,
      cursors: Object.fromEntries(this.pools.map((p) => [formatPrefix(p.prefix), formatIP({ family: p.prefix.family, value: p.cursor })])),
      allocations: Object.fromEntries(this.owners),
    };
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(st, null, 1)}\n`);
    renameSync(tmp, this.file);
  }
}
