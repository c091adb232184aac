// A de-duplicating, rate-limited work queue with client-go's guarantees:
// - a key is queued at most once however often it is added (dirty set);
// - a key is never processed by two workers at once; added while processing, it is processed again afterwards;
// - a failed key is retried after an exponential per-key backoff, reset by a success;
// - up to `concurrency` different keys are processed at the same time.

export interface ReconcileOutcome {
  /** Process the key again after this long (not an error: the backoff is not increased). */
  requeueAfterMs?: number;
}

export type Reconciler<K> = (key: K) => Promise<ReconcileOutcome | void>;

export interface WorkQueueOptions<K> {
  concurrency?: number;
  /** First retry delay after a failure; doubles per consecutive failure. Default 5 ms. */
  baseDelayMs?: number;
  /** Longest retry delay. Default 60 s. */
  maxDelayMs?: number;
  /** Called when the reconciler throws (before the retry is scheduled). */
  onError?(key: K, err: unknown, failures: number, retryInMs: number): void;
  /** Observes the queue (metrics). */
  observer?: QueueObserver;
}

export interface QueueObserver {
  /** A key was added (also when already queued). */
  added?(): void;
  /** A key was scheduled again after a failure. */
  retried?(): void;
  /** One reconcile finished. */
  finished?(result: 'success' | 'error' | 'requeue_after', seconds: number): void;
}

export class WorkQueue<K = string> {
  private readonly queue: K[] = [];
  private head = 0;
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly failures = new Map<K, number>();
  private readonly timers = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  private running = false;
  private shuttingDown = false;
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly reconcile: Reconciler<K>,
    private readonly opts: WorkQueueOptions<K> = {},
  ) {
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 60_000;
  }

  /** Keys waiting to be processed (not counting those being processed or waiting for a retry timer). */
  get length(): number {
    return this.queue.length - this.head;
  }
  get processingCount(): number {
    return this.active;
  }
  /** Consecutive failures of `key`. */
  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  add(key: K): void {
    if (this.shuttingDown) return;
    this.opts.observer?.added?.();
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.pump();
  }

  /** Adds the key after `ms` (an earlier pending add wins). */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const cur = this.timers.get(key);
    if (cur && cur.at <= at) return;
    if (cur) clearTimeout(cur.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    this.timers.set(key, { at, timer });
  }

  /** Adds the key after its backoff delay and counts a failure. Returns the delay. */
  addRateLimited(key: K): number {
    this.opts.observer?.retried?.();
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = this.backoff(n);
    this.addAfter(key, delay);
    return delay;
  }

  /** The retry delay after `n` consecutive failures. */
  private backoff(n: number): number {
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(n - 1, 40));
  }

  /** Resets the failure count of `key`. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Stops taking keys and waits for the ones in progress. Queued keys are dropped. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.running = false;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await this.idle();
  }

  /** Resolves when nothing is queued or in progress (retry timers are not waited for). */
  idle(): Promise<void> {
    if (this.active === 0 && (this.length === 0 || !this.running)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private take(): K | undefined {
    if (this.head >= this.queue.length) return undefined;
    const key = this.queue[this.head] as K;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return key;
  }

  private pump(): void {
    while (this.running && this.active < this.concurrency) {
      const key = this.take();
      if (key === undefined) break;
      this.dirty.delete(key);
      this.processing.add(key);
      this.active++;
      void this.process(key);
    }
    if (this.active === 0 && (this.length === 0 || !this.running)) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async process(key: K): Promise<void> {
    const started = performance.now();
    const done = (r: 'success' | 'error' | 'requeue_after'): void => this.opts.observer?.finished?.(r, (performance.now() - started) / 1000);
    try {
      const out = await this.reconcile(key);
      this.forget(key);
      if (out && out.requeueAfterMs !== undefined) {
        done('requeue_after');
        this.addAfter(key, out.requeueAfterMs);
      } else {
        done('success');
      }
    } catch (err) {
      done('error');
      const n = (this.failures.get(key) ?? 0) + 1;
      const delay = this.backoff(n);
      try {
        this.opts.onError?.(key, err, n, delay);
      } catch {
        /* a logging failure must not stop the queue */
      }
      if (!this.shuttingDown) this.addRateLimited(key);
    } finally {
      this.processing.delete(key);
      this.active--;
      if (this.dirty.has(key) && !this.shuttingDown) this.queue.push(key);
      // Let other keys' microtasks run between items, then continue.
      setImmediate(() => this.pump());
    }
  }
}
