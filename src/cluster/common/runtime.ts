// The controller-runtime shape for the cluster components: shared informers (one list+watch per resource however many
// controllers read it), indexes over their caches, and a reconcile loop per controller (a de-duplicating work queue
// feeding a level-triggered `reconcile(key)`). Informer handlers only map an event to keys to enqueue.
import type { Logger } from '../../log.js';
import { errorText, type KubeClient } from '../../k8s/client.js';
import { Informer, cacheKey, type InformerOptions } from '../../k8s/informers.js';
import type { Resource } from '../../k8s/resources.js';
import { WorkQueue, type ReconcileOutcome } from '../../controller/workqueue.js';
import type { Obj } from './types.js';

export type { ReconcileOutcome };

const resourceId = (r: Resource, o: InformerOptions): string =>
  `${r.group}/${r.version}/${r.plural}|${o.namespace ?? ''}|${o.labelSelector ?? ''}|${o.fieldSelector ?? ''}`;

/** One shared Informer per (resource, namespace, selectors). Informers asked for after `start` start at once. */
export class InformerFactory {
  private readonly informers = new Map<string, Informer>();
  private started = false;

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
  ) {}

  get<T extends Obj>(resource: Resource, opts: InformerOptions = {}): Informer<T> {
    const id = resourceId(resource, opts);
    let inf = this.informers.get(id);
    if (!inf) {
      inf = new Informer(this.client, resource, this.log, { pageSize: 500, ...opts });
      this.informers.set(id, inf);
      if (this.started) inf.start();
    }
    return inf as unknown as Informer<T>;
  }

  /** Informers already created, e.g. to stop one whose resource went away. */
  has(resource: Resource, opts: InformerOptions = {}): boolean {
    return this.informers.has(resourceId(resource, opts));
  }

  async drop(resource: Resource, opts: InformerOptions = {}): Promise<void> {
    const id = resourceId(resource, opts);
    const inf = this.informers.get(id);
    if (!inf) return;
    this.informers.delete(id);
    await inf.stop();
  }

  start(): void {
    this.started = true;
    for (const inf of this.informers.values()) inf.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }
}

/**
 * A secondary index over an informer's cache (client-go's Indexer): `fn` gives the index values of an object, `get`
 * returns the cached objects with that value. Kept up to date by the informer's handlers, before any controller's
 * handler that was registered later runs.
 */
export class Index<T extends Obj> {
  private readonly byValue = new Map<string, Map<string, T>>();
  private readonly valuesOf = new Map<string, string[]>();

  constructor(
    informer: Informer<T>,
    private readonly fn: (o: T) => string[],
  ) {
    for (const o of informer.list()) this.put(o);
    informer.addHandlers({ add: (o) => this.put(o), update: (_old, o) => this.put(o), delete: (o) => this.remove(o) });
  }

  get(value: string): T[] {
    const m = this.byValue.get(value);
    return m ? [...m.values()] : [];
  }

  count(value: string): number {
    return this.byValue.get(value)?.size ?? 0;
  }

  private put(o: T): void {
    this.remove(o);
    const key = cacheKey(o);
    const values = this.fn(o);
    this.valuesOf.set(key, values);
    for (const v of values) {
      let m = this.byValue.get(v);
      if (!m) this.byValue.set(v, (m = new Map()));
      m.set(key, o);
    }
  }

  private remove(o: T): void {
    const key = cacheKey(o);
    for (const v of this.valuesOf.get(key) ?? []) {
      const m = this.byValue.get(v);
      m?.delete(key);
      if (m && m.size === 0) this.byValue.delete(v);
    }
    this.valuesOf.delete(key);
  }
}

export interface LoopOptions {
  workers?: number;
  /** Informers whose caches must be filled before the first reconcile. */
  waitFor: Informer[];
}

/** A work queue and its reconciler, started once the informers it reads have synced. */
export class ReconcileLoop {
  readonly queue: WorkQueue<string>;
  private stopped = false;

  constructor(
    readonly name: string,
    private readonly log: Logger,
    reconcile: (key: string) => Promise<ReconcileOutcome | void>,
    private readonly opts: LoopOptions,
  ) {
    this.queue = new WorkQueue<string>(reconcile, {
      concurrency: opts.workers ?? 2,
      baseDelayMs: 5,
      maxDelayMs: 30_000,
      onError: (key, err, failures, retryInMs) => {
        const level = failures > 5 ? 'warn' : 'info';
        log[level]({ controller: name, key, err: errorText(err), failures, retryInMs }, 'reconcile failed, retrying');
      },
    });
  }

  enqueue = (key: string): void => {
    if (key) this.queue.add(key);
  };

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms);
  }

  async start(): Promise<void> {
    await Promise.all(this.opts.waitFor.map((i) => i.waitForSync()));
    if (this.stopped) return;
    this.log.info({ controller: this.name }, 'caches synced, starting workers');
    this.queue.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.shutdown();
  }
}

/** What every controller exposes to the manager. */
export interface Runnable {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
