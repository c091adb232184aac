// Writes a controller made that its informer cache does not show yet (client-go's ControllerExpectations, kept
// level-triggered): a reconcile asks whether the cache already reflects every pod it created or deleted, and does not
// create or delete more until it does, so a lagging cache never leads to duplicates. A write never observed (the
// object was created and removed before the watch saw it) stops counting after `ttlMs`.

export type CacheState = 'absent' | 'present' | 'terminating';

interface Pending {
  creates: Map<string, number>;
  deletes: Map<string, number>;
}

export class Expectations {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  private entry(key: string): Pending {
    let p = this.pending.get(key);
    if (!p) this.pending.set(key, (p = { creates: new Map(), deletes: new Map() }));
    return p;
  }

  expectCreated(key: string, name: string): void {
    this.entry(key).creates.set(name, this.now() + this.ttlMs);
  }

  expectDeleted(key: string, name: string): void {
    this.entry(key).deletes.set(name, this.now() + this.ttlMs);
  }

  /** Whether the cache reflects every recorded write of `key`; drops the writes it reflects (or that expired). */
  satisfied(key: string, state: (name: string) => CacheState): boolean {
    const p = this.pending.get(key);
    if (!p) return true;
    const now = this.now();
    for (const [name, deadline] of p.creates) if (state(name) !== 'absent' || deadline <= now) p.creates.delete(name);
    for (const [name, deadline] of p.deletes) if (state(name) !== 'present' || deadline <= now) p.deletes.delete(name);
    if (p.creates.size === 0 && p.deletes.size === 0) {
      this.pending.delete(key);
      return true;
    }
    return false;
  }

  /** Milliseconds until the earliest recorded write of `key` stops counting (for a safety requeue). */
  nextExpiry(key: string): number | undefined {
    const p = this.pending.get(key);
    if (!p) return undefined;
    const all = [...p.creates.values(), ...p.deletes.values()];
    return all.length ? Math.max(0, Math.min(...all) - this.now()) : undefined;
  }

  forget(key: string): void {
    this.pending.delete(key);
  }
}
