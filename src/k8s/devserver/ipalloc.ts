// Cluster IP and node port allocators (kube-apiserver's service IP range / node port range), pure and synchronous.
import ipaddr from 'ipaddr.js';

export type Family = 'IPv4' | 'IPv6';

function toBig(bytes: number[]): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBig(n: bigint, len: number): number[] {
  const out: number[] = new Array<number>(len).fill(0);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** Parse an IP strictly (no IPv4 shorthand like `10.1`); returns the canonical text and family. */
export function parseIP(s: string): { ip: string; family: Family; value: bigint } | undefined {
  if (typeof s !== 'string' || s === '') return undefined;
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) {
    const a = ipaddr.IPv4.parse(s);
    return { ip: a.toString(), family: 'IPv4', value: toBig(a.toByteArray()) };
  }
  if (s.includes(':') && ipaddr.IPv6.isValid(s)) {
    const a = ipaddr.IPv6.parse(s);
    return { ip: a.toString(), family: 'IPv6', value: toBig(a.toByteArray()) };
  }
  return undefined;
}

export class CidrAllocator {
  readonly family: Family;
  readonly cidr: string;
  private readonly base: bigint;
  private readonly size: bigint;
  private readonly len: number;
  private readonly used = new Set<string>();
  private cursor = 1n;

  constructor(cidr: string) {
    let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
    try {
      parsed = ipaddr.parseCIDR(cidr);
    } catch {
      throw new Error(`invalid CIDR "${cidr}"`);
    }
    const [addr, prefix] = parsed;
    this.family = addr.kind() === 'ipv4' ? 'IPv4' : 'IPv6';
    const bits = this.family === 'IPv4' ? 32 : 128;
    this.len = bits / 8;
    if (bits - prefix < 2) throw new Error(`service CIDR "${cidr}" is too small`);
    const hostBits = BigInt(bits - prefix);
    this.size = 1n << hostBits;
    this.base = (toBig(addr.toByteArray()) >> hostBits) << hostBits;
    this.cidr = `${ipaddr.fromByteArray(fromBig(this.base, this.len)).toString()}/${prefix}`;
  }

  private offsetOf(ip: string): bigint | undefined {
    const p = parseIP(ip);
    if (!p || p.family !== this.family) return undefined;
    const off = p.value - this.base;
    if (off < 0n || off >= this.size) return undefined;
    return off;
  }

  private usable(off: bigint): boolean {
    if (off <= 0n) return false; // the network address
    if (this.family === 'IPv4' && off === this.size - 1n) return false; // broadcast
    return off < this.size;
  }

  contains(ip: string): boolean {
    const off = this.offsetOf(ip);
    return off !== undefined && this.usable(off);
  }

  isAllocated(ip: string): boolean {
    const p = parseIP(ip);
    return p !== undefined && this.used.has(p.ip);
  }

  /** Reserve a specific IP: 'ok', 'range' (not in the CIDR), or 'taken'. */
  reserve(ip: string): 'ok' | 'range' | 'taken' {
    const off = this.offsetOf(ip);
    if (off === undefined || !this.usable(off)) return 'range';
    const canon = parseIP(ip)!.ip;
    if (this.used.has(canon)) return 'taken';
    this.used.add(canon);
    return 'ok';
  }

  /** Allocate the next free IP, or undefined when the range is full. */
  allocate(): string | undefined {
    const capacity = this.size - (this.family === 'IPv4' ? 2n : 1n);
    if (BigInt(this.used.size) >= capacity) return undefined;
    for (let tries = 0n; tries < this.size; tries++) {
      let off = this.cursor;
      this.cursor = this.cursor + 1n >= this.size ? 1n : this.cursor + 1n;
      if (!this.usable(off)) continue;
      const ip = ipaddr.fromByteArray(fromBig(this.base + off, this.len)).toString();
      if (!this.used.has(ip)) {
        this.used.add(ip);
        return ip;
      }
      off++;
    }
    return undefined;
  }

  release(ip: string): void {
    const p = parseIP(ip);
    if (p) this.used.delete(p.ip);
  }

  allocatedCount(): number {
    return this.used.size;
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
