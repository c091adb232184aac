// reconcile("namespace/name") for Services: level-triggered and idempotent. The allocator says what the Service should
// look like; we write `status.loadBalancer.ingress` (status subresource) and the `metallb.io/ip-allocated-from-pool`
// annotation only where they differ, and emit the allocator's events on the Service.
//
// Startup and "reprocess all": the synthetic key REPROCESS_ALL converges every cached Service in `restoreOrder`
// (Services already holding addresses first) in one synchronous sweep, so addresses in use are claimed again before
// any new allocation can take them; the Services whose result differs from what they show are then enqueued to write
// it (the sweep's result is reused when the Service did not change meanwhile). Single-Service keys are ignored until
// the first sweep has run.
import { deprecatedAnnotations, type ConvergeResult } from '../allocator/index.js';
import type { Logger } from '../log.js';
import type { LoadBalancerIngress, Service } from '../k8s/types.js';
import { errorText, isConflict, isNotFound } from '../k8s/client.js';
import type { EventSink } from '../k8s/events.js';
import type { ReconcileOutcome } from './workqueue.js';

export const POOL_ANNOTATION = 'metallb.io/ip-allocated-from-pool';
/** Not a valid `namespace/name`, so it never collides with a Service key. */
export const REPROCESS_ALL = ' reprocess-all';

export interface ServiceAllocatorLike {
  handles(svc: Service): boolean;
  converge(svc: Service): ConvergeResult;
  release(key: string): boolean;
}

export interface ServiceCache {
  get(key: string): Service | undefined;
  list(): Service[];
  /** A newer version of a Service returned by our own write (optional write-through). */
  observeWrite?(svc: Service, basedOnResourceVersion: string | undefined): void;
}

export interface ServiceWriter {
  /** Writes `status.loadBalancer.ingress` through the status subresource; resolves with the updated Service. */
  writeStatus(svc: Service, ingress: LoadBalancerIngress[]): Promise<Service>;
  /** Sets (or removes, when `pool` is undefined) the pool annotation; resolves with the updated Service. */
  writePoolAnnotation(svc: Service, pool: string | undefined): Promise<Service>;
}

export interface UpdateCounters {
  updates: { inc(): void };
  updateErrors: { inc(): void };
}

export interface ServiceReconcilerDeps {
  allocator: ServiceAllocatorLike;
  restoreOrder: (services: readonly Service[]) => Service[];
  cache: ServiceCache;
  writer: ServiceWriter;
  events: EventSink;
  log: Logger;
  counters?: UpdateCounters;
  /** Puts a key on the work queue. */
  enqueue(key: string): void;
  /** Puts a key on the work queue after `ms`. */
  enqueueAfter?(key: string, ms: number): void;
  /** Shortest time between two full sweeps after the first (coalesces bursts of deletions). Default 250 ms. */
  minReprocessIntervalMs?: number;
  /** Called after anything that may change pool usage (for pool status and metrics). */
  onUsageChanged?(): void;
  /** Wait before retrying after a write conflict. Default 100 ms. */
  conflictRetryMs?: number;
}

const keyOf = (svc: Service): string => `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;

/** Whether the Service's ingress list already is exactly `[{ip}...]` for `ips` (ipMode set by the server is fine). */
export function ingressMatches(svc: Service, ips: readonly string[]): boolean {
  const cur: unknown = svc.status?.loadBalancer?.ingress ?? [];
  // A status of the wrong shape (not a list, null entries) simply does not match: it is rewritten.
  if (!Array.isArray(cur) || cur.length !== ips.length) return false;
  return cur.every((c: LoadBalancerIngress | null, i) => c?.ip === ips[i] && !c.hostname);
}

export class ServiceReconciler {
  private firstPassDone = false;
  private lastSweep = 0;
  private readonly pending = new Map<string, { rv: string | undefined; result: ConvergeResult }>();

  constructor(private readonly d: ServiceReconcilerDeps) {}

  get ready(): boolean {
    return this.firstPassDone;
  }

  /** Asks for every Service to be converged again (coalesced on the queue). */
  requestReprocessAll(): void {
    const wait = this.lastSweep + (this.d.minReprocessIntervalMs ?? 250) - Date.now();
    if (this.firstPassDone && wait > 0 && this.d.enqueueAfter) this.d.enqueueAfter(REPROCESS_ALL, wait);
    else this.d.enqueue(REPROCESS_ALL);
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    if (key === REPROCESS_ALL) {
      this.reprocessAll();
      return;
    }
    if (!this.firstPassDone) return; // covered by the first full pass
    const { allocator, cache, log } = this.d;
    const svc = cache.get(key);
    if (!svc || !allocator.handles(svc)) {
      this.pending.delete(key);
      if (allocator.release(key)) {
        const why = svc ? 'service no longer handled by this controller (loadBalancerClass)' : 'service deleted';
        log.info({ service: key }, `${why}, addresses released`);
        this.d.onUsageChanged?.();
        this.requestReprocessAll();
      }
      return;
    }
    let result: ConvergeResult;
    const p = this.pending.get(key);
    this.pending.delete(key);
    if (p && p.rv === svc.metadata?.resourceVersion) {
      result = p.result;
    } else {
      try {
        result = allocator.converge(svc);
      } catch (err) {
        log.error({ service: key, err: errorText(err) }, 'internal error converging service');
        this.d.events.record(svc, 'Warning', 'InternalError', `internal error: ${errorText(err)}`);
        throw err;
      }
    }
    return await this.apply(key, svc, result);
  }

  /** Converges every Service in restore order, then enqueues those with something to write. */
  private reprocessAll(): void {
    const { allocator, cache, log } = this.d;
    const all = cache.list();
    const handled: Service[] = [];
    for (const svc of all) {
      if (allocator.handles(svc)) handled.push(svc);
      else allocator.release(keyOf(svc));
    }
    this.pending.clear();
    const started = Date.now();
    let failed = 0;
    const toWrite: string[] = [];
    for (const svc of this.d.restoreOrder(handled)) {
      const key = keyOf(svc);
      let result: ConvergeResult;
      try {
        result = allocator.converge(svc);
      } catch (err) {
        failed++;
        log.error({ service: key, err: errorText(err) }, 'internal error converging service');
        toWrite.push(key); // its own reconcile reports the error and retries
        continue;
      }
      // The sweep is this Service's reconcile: only those with something to write or report are queued.
      const unchanged =
        result.events.length === 0 &&
        !result.reprocessAll &&
        ingressMatches(svc, result.ingress) &&
        svc.metadata?.annotations?.[POOL_ANNOTATION] === result.pool;
      if (unchanged) continue;
      // Events belong to this converge: report them now (the write may later use a fresher converge).
      for (const ev of result.events) this.d.events.record(svc, ev.type, ev.reason, ev.message);
      this.pending.set(key, { rv: svc.metadata?.resourceVersion, result: { ...result, events: [] } });
      toWrite.push(key);
    }
    const first = !this.firstPassDone;
    this.firstPassDone = true;
    this.lastSweep = Date.now();
    log.info(
      { services: all.length, handled: handled.length, toWrite: toWrite.length, failed, ms: Date.now() - started, first },
      first ? 'initial sync: all services converged' : 'reprocessed all services',
    );
    for (const key of toWrite) this.d.enqueue(key);
    this.d.onUsageChanged?.();
  }

  private async apply(key: string, svc: Service, result: ConvergeResult): Promise<ReconcileOutcome | void> {
    const { log, writer, counters } = this.d;
    for (const ev of result.events) this.d.events.record(svc, ev.type, ev.reason, ev.message);
    if (result.pendingReason && result.ingress.length === 0) log.debug({ service: key, reason: result.pendingReason }, 'service has no address');
    let cur = svc;
    const needStatus = !ingressMatches(cur, result.ingress);
    const curPool = cur.metadata?.annotations?.[POOL_ANNOTATION];
    const needPool = curPool !== result.pool;
    try {
      if (needStatus) {
        const before = cur.metadata?.resourceVersion;
        const updated = await writer.writeStatus(cur, result.ingress.map((ip) => ({ ip })));
        counters?.updates.inc();
        this.d.cache.observeWrite?.(updated, before);
        cur = updated;
      }
      if (needPool) {
        const before = cur.metadata?.resourceVersion;
        const updated = await writer.writePoolAnnotation(cur, result.pool);
        counters?.updates.inc();
        this.d.cache.observeWrite?.(updated, before);
        cur = updated;
      }
    } catch (err) {
      if (isNotFound(err)) return; // deleted meanwhile; the delete event follows
      counters?.updateErrors.inc();
      if (isConflict(err)) {
        log.debug({ service: key }, 'conflict writing service, retrying with a fresh copy');
        return { requeueAfterMs: this.d.conflictRetryMs ?? 100 };
      }
      log.warn({ service: key, err: errorText(err) }, 'could not update service');
      throw err;
    }
    if (needStatus || needPool) {
      // Like MetalLB: each update of a Service that still uses the old annotation prefix reminds its owner.
      const deprecated = deprecatedAnnotations(svc);
      if (deprecated.length > 0) {
        const renames = deprecated.map((a) => `"${a}" (use "metallb.io/${a.slice(a.indexOf('/') + 1)}")`).join(', ');
        this.d.events.record(svc, 'Warning', 'deprecatedAnnotation', `deprecated annotations: ${renames}`);
      }
      if (result.ingress.length > 0) log.info({ service: key, ingress: result.ingress, pool: result.pool }, 'service updated');
      else log.info({ service: key, reason: result.pendingReason }, 'service addresses cleared');
      this.d.onUsageChanged?.();
    }
    if (result.reprocessAll) this.requestReprocessAll();
  }
}
