// List+watch caches of API objects. Handlers receive every change; the controller's handlers only enqueue keys.
// A watch that breaks is resumed from the last resourceVersion; a 410 Gone or a lost connection leads to a relist
// (diffed against the cache, so handlers see adds, updates and deletes as usual). A resource the server does not
// serve (CRD not installed yet) is logged once, counted as synced-and-empty, and retried until it appears.
import type { Logger } from '../log.js';
import type { KubeObject } from './types.js';
import { ApiError, errorText, isGone, isNotFound, type KubeClient, type WatchHandle } from './client.js';
import { LoopControl } from './loop.js';
import { apiVersionOf, collectionPath, type Resource } from './resources.js';

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

/** The cached objects an index function maps to `value` (client-go's Indexer, one value per object). */
export interface InformerIndex<T> {
  get(value: string): readonly T[];
}

interface IndexState<T> {
  fn(obj: T): string | undefined;
  /** Arrays, replaced on change: most values have one object, and a Map or Set each would cost ~200 bytes. */
  byValue: Map<string, readonly T[]>;
}

export interface InformerOptions<T extends KubeObject = KubeObject> {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size of list requests. Default 500. */
  pageSize?: number;
  /** Wait before retrying after an error starts here and doubles up to `maxRetryMs`. */
  minRetryMs?: number;
  maxRetryMs?: number;
  /** While the server does not serve the resource (404), list again this often. Default 3 s. */
  absentPollMs?: number;
  /** A resource never listed that stays 404 this long counts as empty (synced). Default 10 s. */
  absentGraceMs?: number;
  /**
   * false: never watch, list again every `pollIntervalMs` instead (for a ServiceAccount that may list but not watch,
   * like MetalLB's controller on Nodes and BGPPeers). Default true.
   */
  watch?: boolean;
  /** Interval between lists when `watch` is false. Default 30 s. */
  pollIntervalMs?: number;
  /**
   * Applied to every object before it is cached and handed to the handlers (controller-runtime's cache
   * TransformFunc): returns what the cache keeps, typically the object without the fields its readers never look at,
   * so that thousands of them do not keep managedFields and the like in memory. Must keep metadata.name, namespace
   * and resourceVersion (the cache key and the relist diff), and may return its argument changed or a new object.
   */
  transform?(obj: T): T;
}

/** `namespace/name` for namespaced objects, `name` for cluster-scoped ones. */
export const cacheKey = (o: KubeObject): string =>
  o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name ?? ''}` : (o.metadata?.name ?? '');

/** resourceVersions are opaque, but the API server's are integers; compare them only when they are. */
function numericRV(rv: string | undefined): bigint | undefined {
  return rv && /^\d{1,30}$/.test(rv) ? BigInt(rv) : undefined;
}

interface WatchEvent {
  type: string;
  object?: KubeObject & { code?: number; message?: string; reason?: string };
}

interface ListResponse {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: KubeObject[];
}

export class Informer<T extends KubeObject = KubeObject> {
  private readonly cache = new Map<string, T>();
  /** Keys whose cached object came from our own write, with its (numeric) resourceVersion. */
  private readonly writtenThrough = new Map<string, bigint>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private resourceVersion = '';
  private readonly ctl = new LoopControl();
  private watchHandle: WatchHandle | undefined;
  private syncedFlag = false;
  private absentFlag = false;
  private everListed = false;
  private absentSince: number | undefined;
  private readonly syncWaiters: (() => void)[] = [];
  private readonly indexes: IndexState<T>[] = [];
  /** One string for every object of the cache. */
  private readonly apiVersion: string;

  constructor(
    private readonly client: KubeClient,
    readonly resource: Resource,
    private readonly log: Logger,
    private readonly opts: InformerOptions<T> = {},
  ) {
    this.apiVersion = apiVersionOf(resource);
  }

  get name(): string {
    return `${this.resource.kind}${this.opts.namespace ? ` in ${this.opts.namespace}` : ''}`;
  }

  /** True once the first list succeeded (or the resource is known not to be served). */
  get synced(): boolean {
    return this.syncedFlag;
  }
  /** True while the server answers 404 for the resource (e.g. its CRD is not installed). */
  get absent(): boolean {
    return this.absentFlag;
  }

  addHandlers(h: InformerHandlers<T>): void {
    this.handlers.push(h);
  }

  /**
   * Keeps the cached objects findable by `fn(obj)` (undefined: not indexed), updated with the cache itself, so that
   * a lookup by, say, a label value does not scan every object.
   */
  addIndex(fn: (obj: T) => string | undefined): InformerIndex<T> {
    const ix: IndexState<T> = { fn, byValue: new Map() };
    this.indexes.push(ix);
    for (const obj of this.cache.values()) this.indexAdd(ix, obj);
    return { get: (value) => ix.byValue.get(value) ?? [] };
  }

  private indexAdd(ix: IndexState<T>, obj: T): void {
    const v = ix.fn(obj);
    if (v === undefined) return;
    const cur = ix.byValue.get(v);
    ix.byValue.set(v, cur ? [...cur, obj] : [obj]);
  }

  private indexRemove(ix: IndexState<T>, obj: T): void {
    const v = ix.fn(obj);
    if (v === undefined) return;
    const cur = ix.byValue.get(v);
    if (!cur) return;
    const next = cur.filter((o) => o !== obj);
    if (next.length > 0) ix.byValue.set(v, next);
    else ix.byValue.delete(v);
  }

  /** Every change of the cache goes through here and cacheDelete, which keep the indexes in step. */
  private cacheSet(key: string, obj: T): T | undefined {
    const old = this.cache.get(key);
    this.cache.set(key, obj);
    for (const ix of this.indexes) {
      if (old) this.indexRemove(ix, old);
      this.indexAdd(ix, obj);
    }
    return old;
  }

  private cacheDelete(key: string): T | undefined {
    const old = this.cache.get(key);
    if (old === undefined) return undefined;
    this.cache.delete(key);
    for (const ix of this.indexes) this.indexRemove(ix, old);
    return old;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }
  list(): T[] {
    return [...this.cache.values()];
  }
  keys(): string[] {
    return [...this.cache.keys()];
  }
  get size(): number {
    return this.cache.size;
  }

  /**
   * Replaces a cached object with a newer version we received from our own write (or read), so that reads before the
   * watch event arrives are not stale. Only applies when the cache still holds `basedOnResourceVersion`, or an older
   * version than `obj` (integer resourceVersions).
   */
  observeWrite(obj: T, basedOnResourceVersion: string | undefined): void {
    const key = cacheKey(obj);
    const cur = this.cache.get(key);
    if (!cur) return;
    if (cur.metadata?.resourceVersion !== basedOnResourceVersion) {
      const cached = numericRV(cur.metadata?.resourceVersion);
      const offered = numericRV(obj.metadata?.resourceVersion);
      if (cached === undefined || offered === undefined || offered <= cached) return;
    }
    this.cacheSet(key, this.prepare(obj));
    const rv = numericRV(obj.metadata?.resourceVersion);
    if (rv !== undefined) this.writtenThrough.set(key, rv);
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.syncedFlag) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.syncWaiters.push(resolve);
      signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
  }

  start(): void {
    this.ctl.start(() => this.run());
  }

  async stop(): Promise<void> {
    await this.ctl.stop(() => this.watchHandle?.abort());
  }

  /** What the cache keeps of an object the server sent. */
  private prepare(obj: T): T {
    // List items of built-in kinds come without kind/apiVersion; the parser and event recorder need them.
    if (!obj.kind) obj.kind = this.resource.kind;
    if (!obj.apiVersion) obj.apiVersion = this.apiVersion;
    return this.opts.transform ? this.opts.transform(obj) : obj;
  }

  private markSynced(): void {
    if (this.syncedFlag) return;
    this.syncedFlag = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    const minRetry = this.opts.minRetryMs ?? 500;
    const maxRetry = this.opts.maxRetryMs ?? 30_000;
    let retry = minRetry;
    let needList = true;
    // A failure that repeats is logged once (then at debug) until the informer works again.
    let failing: string | undefined;
    while (this.ctl.running) {
      try {
        if (needList) {
          const wasAbsent = this.absentFlag || this.absentSince !== undefined;
          await this.relist();
          needList = false;
          if (wasAbsent) {
            this.absentFlag = false;
            this.log.info({ resource: this.name }, 'resource is now served, watching it');
          }
        }
        if (this.opts.watch === false) {
          if (failing !== undefined) this.log.info({ resource: this.name }, 'list works again');
          failing = undefined;
          retry = minRetry;
          await this.ctl.sleep(this.opts.pollIntervalMs ?? 30_000);
          needList = true;
          continue;
        }
        const started = Date.now();
        const outcome = await this.watchOnce();
        if (outcome === 'gone') {
          needList = true;
          continue;
        }
        if (Date.now() - started > 1000) {
          retry = minRetry;
          if (failing !== undefined) this.log.info({ resource: this.name }, 'list/watch works again');
          failing = undefined;
        } else {
          // A watch the server ends at once: do not spin.
          await this.ctl.sleep(retry);
          retry = Math.min(retry * 2, maxRetry);
        }
      } catch (err) {
        if (!this.ctl.running) break;
        if (isNotFound(err)) {
          this.handleAbsent();
          // Poll for the resource to appear (a CRD installed later is picked up within a few seconds).
          needList = true;
          await this.ctl.sleep(Math.min(this.opts.absentPollMs ?? 3000, this.syncedFlag ? Infinity : 1000));
          continue;
        }
        const text = errorText(err);
        this.log[failing === text ? 'debug' : 'warn']({ resource: this.name, err: text, retryInMs: retry }, 'list/watch failed, retrying');
        failing = text;
        needList = true;
        await this.ctl.sleep(retry);
        retry = Math.min(retry * 2, maxRetry);
      }
    }
  }

  /**
   * The server answers 404 for the resource. Never listed yet: after `absentGraceMs` of 404s (an API server that is
   * starting may not serve CRDs for a few seconds) the resource counts as empty and synced. Listed before: the cache
   * is kept as it is (a CRD being deleted removes its objects first, and we see those deletions), so a transient 404
   * never looks like "every object is gone".
   */
  private handleAbsent(): void {
    const what = `${this.resource.plural}.${this.resource.group || 'core'}`;
    const now = Date.now();
    if (this.everListed) {
      if (!this.absentFlag) {
        this.absentFlag = true;
        this.log.warn({ resource: this.name }, `the API server no longer serves ${what}; keeping the last known objects and retrying`);
      }
      return;
    }
    const grace = this.opts.absentGraceMs ?? 10_000;
    if (this.absentSince === undefined) {
      this.absentSince = now;
      this.log.warn(
        { resource: this.name, apiVersion: apiVersionOf(this.resource), graceMs: grace },
        `the API server does not serve ${what} (CRD not installed?); treating it as empty if that lasts ${grace} ms, retrying until it appears`,
      );
    }
    if (!this.absentFlag && now - this.absentSince >= grace) {
      this.absentFlag = true;
      this.log.warn({ resource: this.name }, `${what} still not served: treating it as empty until it appears`);
      this.applyList([]);
      this.markSynced();
    }
  }

  private async relist(): Promise<void> {
    // Prepared page by page: with a transform, the full objects of a page are garbage before the next one arrives.
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.client.get<ListResponse>(collectionPath(this.resource, this.opts.namespace), {
        query: {
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
          limit: this.opts.pageSize ?? 500,
          continue: cont,
        },
        timeoutMs: 120_000,
      });
      for (const it of page.items ?? []) items.push(this.prepare(it as T));
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont && this.ctl.running);
    this.resourceVersion = rv;
    this.applyList(items);
    this.everListed = true;
    this.absentSince = undefined;
    this.markSynced();
  }

  /** Makes the cache equal to `items` (prepared), calling handlers for the differences. */
  private applyList(items: T[]): void {
    this.writtenThrough.clear();
    const seen = new Set<string>();
    for (const obj of items) {
      const key = cacheKey(obj);
      seen.add(key);
      const old = this.cacheSet(key, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj, old);
    }
    for (const [key, old] of [...this.cache]) {
      if (!seen.has(key)) {
        this.cacheDelete(key);
        this.emit('delete', old);
      }
    }
  }

  private emit(kind: 'add' | 'update' | 'delete', obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.add?.(obj);
        else if (kind === 'update') h.update?.(old as T, obj);
        else h.delete?.(obj);
      } catch (err) {
        this.log.error({ resource: this.name, object: cacheKey(obj), err: errorText(err) }, 'informer handler failed');
      }
    }
  }

  /** One watch request. 'gone' = the resourceVersion expired, relist needed; 'ended' = resume from the last version. */
  private async watchOnce(): Promise<'gone' | 'ended'> {
    let gone = false;
    const handle = this.client.watch(
      collectionPath(this.resource, this.opts.namespace),
      {
        resourceVersion: this.resourceVersion || undefined,
        allowWatchBookmarks: true,
        timeoutSeconds: 240 + Math.floor(Math.random() * 120),
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      },
      (raw) => {
        if (gone) return;
        const ev = raw as WatchEvent;
        const obj = ev.object;
        if (!obj) return;
        if (ev.type === 'ERROR') {
          if (obj.code === 410 || obj.reason === 'Expired' || obj.reason === 'Gone') {
            gone = true;
            handle.abort();
            return;
          }
          throw new ApiError(obj.code ?? 0, `watch ${this.name}: ${obj.message ?? 'error event'}`, obj.reason);
        }
        const rv = obj.metadata?.resourceVersion;
        if (ev.type === 'BOOKMARK') {
          if (rv) this.resourceVersion = rv;
          return;
        }
        const typed = this.prepare(obj as T);
        const key = cacheKey(typed);
        if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
          const mark = this.writtenThrough.get(key);
          if (mark !== undefined) {
            // The cache already holds a newer version from our own write: an older event must not replace it.
            const evRV = numericRV(rv);
            if (evRV !== undefined && evRV < mark) {
              if (rv) this.resourceVersion = rv;
              return;
            }
            this.writtenThrough.delete(key);
          }
          const old = this.cacheSet(key, typed);
          if (old) this.emit('update', typed, old);
          else this.emit('add', typed);
        } else if (ev.type === 'DELETED') {
          this.writtenThrough.delete(key);
          const old = this.cacheDelete(key);
          this.emit('delete', old ?? typed);
        }
        if (rv) this.resourceVersion = rv;
      },
    );
    this.watchHandle = handle;
    try {
      await handle.done;
    } catch (err) {
      if (isGone(err)) return 'gone';
      throw err;
    } finally {
      this.watchHandle = undefined;
    }
    return gone ? 'gone' : 'ended';
  }
}
