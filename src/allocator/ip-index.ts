// Ordered sets of addresses (bigints) that answer "first free address at or after X" without walking
// allocated addresses one by one. Used per address family; IPv6 /64s cost the same as IPv4 /24s.

/** Index of the last element of `arr` that is <= v, or -1. `arr` is sorted ascending. */
function lastAtOrBelow(arr: readonly bigint[], v: bigint): number {
  let lo = 0;
  let hi = arr.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! <= v) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * A set of addresses kept as sorted, disjoint, non-adjacent runs [start, end].
 * Sequential allocation keeps a handful of runs whatever the number of addresses,
 * and the first free address after any point is found with one binary search.
 */
export class RunSet {
  private readonly starts: bigint[] = [];
  private readonly ends: bigint[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Number of runs (for tests and benchmarks). */
  get runs(): number {
    return this.starts.length;
  }

  has(v: bigint): boolean {
    const i = lastAtOrBelow(this.starts, v);
    return i >= 0 && this.ends[i]! >= v;
  }

  /** Adds v; false when it was already there. */
  add(v: bigint): boolean {
    const i = lastAtOrBelow(this.starts, v);
    if (i >= 0 && this.ends[i]! >= v) return false;
    this.count++;
    const joinsLeft = i >= 0 && this.ends[i]! + 1n === v;
    const joinsRight = i + 1 < this.starts.length && this.starts[i + 1]! === v + 1n;
    if (joinsLeft && joinsRight) {
      this.ends[i] = this.ends[i + 1]!;
      this.starts.splice(i + 1, 1);
      this.ends.splice(i + 1, 1);
    } else if (joinsLeft) {
      this.ends[i] = v;
    } else if (joinsRight) {
      this.starts[i + 1] = v;
    } else if (i + 1 === this.starts.length) {
      this.starts.push(v);
      this.ends.push(v);
    } else {
      this.starts.splice(i + 1, 0, v);
      this.ends.splice(i + 1, 0, v);
    }
    return true;
  }

  /** Removes v; false when it was not there. */
  delete(v: bigint): boolean {
    const i = lastAtOrBelow(this.starts, v);
    if (i < 0 || this.ends[i]! < v) return false;
    this.count--;
    const s = this.starts[i]!;
    const e = this.ends[i]!;
    if (s === v && e === v) {
      this.starts.splice(i, 1);
      this.ends.splice(i, 1);
    } else if (s === v) {
      this.starts[i] = v + 1n;
    } else if (e === v) {
      this.ends[i] = v - 1n;
    } else {
      this.ends[i] = v - 1n;
      this.starts.splice(i + 1, 0, v + 1n);
      this.ends.splice(i + 1, 0, e);
    }
    return true;
  }

  /** The first address in [lo, hi] that is NOT in the set, or undefined. O(log runs). */
  firstAbsent(lo: bigint, hi: bigint): bigint | undefined {
    if (lo > hi) return undefined;
    const i = lastAtOrBelow(this.starts, lo);
    // Runs are non-adjacent, so the address after a run is always absent.
    const x = i >= 0 && this.ends[i]! >= lo ? this.ends[i]! + 1n : lo;
    return x <= hi ? x : undefined;
  }
}

/** A sorted set of addresses (the addresses of one sharing group, per family). */
export class SortedAddresses {
  /** Ascending; read-only for callers. */
  readonly items: bigint[] = [];

  get size(): number {
    return this.items.length;
  }

  add(v: bigint): void {
    const i = lastAtOrBelow(this.items, v);
    if (i >= 0 && this.items[i] === v) return;
    if (i + 1 === this.items.length) this.items.push(v);
    else this.items.splice(i + 1, 0, v);
  }

  delete(v: bigint): void {
    const i = lastAtOrBelow(this.items, v);
    if (i >= 0 && this.items[i] === v) this.items.splice(i, 1);
  }

  /** Index of the first address >= v (items.length when none). */
  firstIndexAtOrAbove(v: bigint): number {
    const i = lastAtOrBelow(this.items, v);
    return i >= 0 && this.items[i] === v ? i : i + 1;
  }
}
