// Cluster IP and node port allocators (kube-apiserver's service IP range / node port range), pure and synchronous.
import { formatIP, formatPrefix, parseIP, parsePrefix, prefixContains, prefixSize, type IPFamily, type Prefix } from '../../net/ip.js';

/** The canonical text of an IP (Go's form), or undefined when it is not one. */
export const canonicalIP = (s: string): string | undefined => {
  const p = parseIP(s);
  return p && formatIP(p);
};

export class CidrAllocator {
  readonly family: IPFamily;
  readonly cidr: string;
  private readonly prefix: Prefix;
  private readonly size: bigint;
  private readonly used = new Set<string>();
  private cursor = 1n;

  constructor(cidr: string) {
    const p = parsePrefix(cidr);
    if (!p) throw new Error(`invalid CIDR "${cidr}"`);
    this.prefix = p;
    this.family = p.family;
    this.size = prefixSize(p);
    if (this.size < 4n) throw new Error(`service CIDR "${cidr}" is too small`);
    this.cidr = formatPrefix(p);
  }

  private offsetOf(ip: string): bigint | undefined {
    const p = parseIP(ip);
    if (!p || !prefixContains(this.prefix, p)) return undefined;
    return p.value - this.prefix.network;
  }

  private usable(off: bigint): boolean {
    if (off <= 0n) return false; // the network address
    if (this.family === 'IPv4' && off === this.size - 1n) return false; // broadcast
    return off < this.size;
  }

  /** The first usable address (the `kubernetes` Service's cluster IP). */
  firstIP(): string {
    return formatIP({ family: this.family, value: this.prefix.network + 1n });
  }

  isAllocated(ip: string): boolean {
    const c = canonicalIP(ip);
    return c !== undefined && this.used.has(c);
  }

  /** Reserve a specific IP: 'ok', 'range' (not in the CIDR), or 'taken'. */
  reserve(ip: string): 'ok' | 'range' | 'taken' {
    const off = this.offsetOf(ip);
    if (off === undefined || !this.usable(off)) return 'range';
    const canon = canonicalIP(ip)!;
    if (this.used.has(canon)) return 'taken';
    this.used.add(canon);
    return 'ok';
  }

  /** Allocate the next free IP, or undefined when the range is full. */
  allocate(): string | undefined {
    const capacity = this.size - (this.family === 'IPv4' ? 2n : 1n);
    if (BigInt(this.used.size) >= capacity) return undefined;
    for (let tries = 0n; tries < this.size; tries++) {
      const off = this.cursor;
      this.cursor = this.cursor + 1n >= this.size ? 1n : this.cursor + 1n;
      if (!this.usable(off)) continue;
      const ip = formatIP({ family: this.family, value: this.prefix.network + off });
      if (!this.used.has(ip)) {
        this.used.add(ip);
        return ip;
      }
    }
    return undefined;
  }

  release(ip: string): void {
    const c = canonicalIP(ip);
    if (c !== undefined) this.used.delete(c);
  }
}

export class PortAllocator {
  private readonly used = new Set<number>();
  private cursor: number;

  constructor(
    readonly lo: number,
    readonly hi: number,
  ) {
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1 && hi <= 65535 && lo <= hi)) throw new Error(`invalid port range ${lo}-${hi}`);
    this.cursor = lo;
  }

  static parse(range: string): PortAllocator {
    const m = /^(\d+)-(\d+)$/.exec(range.trim());
    if (!m) throw new Error(`invalid port range "${range}" (want e.g. 30000-32767)`);
    return new PortAllocator(Number(m[1]), Number(m[2]));
  }

  get range(): string {
    return `${this.lo}-${this.hi}`;
  }

  reserve(p: number): 'ok' | 'range' | 'taken' {
    if (!(p >= this.lo && p <= this.hi)) return 'range';
    if (this.used.has(p)) return 'taken';
    this.used.add(p);
    return 'ok';
  }

  allocate(): number | undefined {
    const n = this.hi - this.lo + 1;
    if (this.used.size >= n) return undefined;
    for (let i = 0; i < n; i++) {
      const p = this.cursor;
      this.cursor = this.cursor >= this.hi ? this.lo : this.cursor + 1;
      if (!this.used.has(p)) {
        this.used.add(p);
        return p;
      }
    }
    return undefined;
  }

  release(p: number): void {
    this.used.delete(p);
  }

  isAllocated(p: number): boolean {
    return this.used.has(p);
  }
}
