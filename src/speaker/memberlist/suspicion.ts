// Lifeguard suspicion (memberlist suspicion.go): a suspicion times out after `max` with no independent
// confirmations, shrinking towards `min` (logarithmically) as up to k other members confirm it.

/** memberlist remainingSuspicionTime. */
export function remainingSuspicionMs(n: number, k: number, elapsedMs: number, minMs: number, maxMs: number): number {
  const frac = Math.log(n + 1) / Math.log(k + 1);
  const raw = maxMs - frac * (maxMs - minMs);
  const timeout = Math.max(minMs, Math.floor(raw));
  return timeout - elapsedMs;
}

export class Suspicion {
  private readonly confirmations = new Set<string>();
  private n = 0;
  private timer: NodeJS.Timeout;
  private readonly start = performance.now();
  private done = false;

  /** `from` (the first accuser) never counts as a confirmation. */
  constructor(
    from: string,
    readonly k: number,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly onTimeout: (confirmations: number) => void,
  ) {
    this.confirmations.add(from);
    this.timer = setTimeout(() => this.fire(), k < 1 ? minMs : maxMs);
  }

  get confirmationCount(): number {
    return this.n;
  }

  /** Records a confirmation from another member; true if it was new (and so worth re-gossiping). */
  confirm(from: string): boolean {
    if (this.done || this.n >= this.k || this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    this.n++;
    const remaining = remainingSuspicionMs(this.n, this.k, performance.now() - this.start, this.minMs, this.maxMs);
    clearTimeout(this.timer);
    if (remaining > 0) this.timer = setTimeout(() => this.fire(), remaining);
    else this.fire();
    return true;
  }

  cancel(): void {
    this.done = true;
    clearTimeout(this.timer);
  }

  private fire(): void {
    if (this.done) return;
    // Decide after pending I/O: a refutation already waiting in the socket must win over the timer.
    setImmediate(() => {
      if (this.done) return;
      this.done = true;
      this.onTimeout(this.n);
    });
  }
}

/** Lifeguard local health (memberlist awareness.go): score 0..max-1 scales our own timeouts. */
export class Awareness {
  private score = 0;
  constructor(private readonly max: number) {}
  applyDelta(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }
  get healthScore(): number {
    return this.score;
  }
  scale(ms: number): number {
    return ms * (this.score + 1);
  }
}

interface QueuedBroadcast {
  node: string;
  msg: Buffer;
  transmits: number;
  id: number;
}

/** memberlist's TransmitLimitedQueue: fewest-transmitted first, a newer message about a node replaces older ones. */
export class BroadcastQueue {
  private items: QueuedBroadcast[] = [];
  private nextId = 0;
  queue(node: string, msg: Buffer): void {
    this.items = this.items.filter((b) => b.node !== node);
    this.items.push({ node, msg, transmits: 0, id: this.nextId++ });
  }
  get length(): number {
    return this.items.length;
  }
  /** Takes messages that fit in `limit` bytes (each costs `overhead` more), counting a transmit each. */
  take(overhead: number, limit: number, retransmitLimit: number): Buffer[] {
    if (this.items.length === 0) return [];
    this.items.sort((a, b) => a.transmits - b.transmits || b.id - a.id);
    const out: Buffer[] = [];
    let used = 0;
    for (const b of this.items) {
      if (used + overhead + b.msg.length > limit) continue;
      used += overhead + b.msg.length;
      out.push(b.msg);
      b.transmits++;
    }
    this.items = this.items.filter((b) => b.transmits < retransmitLimit);
    return out;
  }
  clear(): void {
    this.items = [];
  }
}
