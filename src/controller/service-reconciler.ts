// reconcile("namespace/name") for Services: level-triggered and idempotent. The allocator says what the Service should
// look like; where `status.loadBalancer.ingress` or the `metallb.io/ip-allocated-from-pool` annotation differ, we write
// both in ONE update (PUT) of the `services/status` subresource, as MetalLB does: its roles grant nothing else on
// Services (kube-apiserver's Service status strategy keeps the metadata a status update carries). A 409 (the Service
// changed since our copy) is answered by reading it again, converging that copy and writing again. The allocator's
// events are emitted on the Service.
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
import { alwaysOn, type FeatureSwitch } from '../k8s/features.js';
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
  /**
   * Writes `svc` with its allocation (`withAllocation`) as one update of the status subresource, conditional on
   * `svc`'s resourceVersion; resolves with the updated Service.
   */
  write(svc: Service): Promise<Service>;
  /** The Service as the API server has it now; undefined when it is gone. */
  read(namespace: string, name: string): Promise<Service | undefined>;
}

/** `svc` showing `ingress` and the pool annotation (removed when `pool` is undefined); everything else unchanged. */
export function withAllocation(svc: Service, ingress: readonly string[], pool: string | undefined): Service {
  const annotations = { ...(svc.metadata?.annotations ?? {}) };
  if (pool === undefined) delete annotations[POOL_ANNOTATION];
  else annotations[POOL_ANNOTATION] = pool;
  const loadBalancer: { ingress?: LoadBalancerIngress[] } = { ...(svc.status?.loadBalancer ?? {}) };
  if (ingress.length > 0) loadBalancer.ingress = ingress.map((ip) => ({ ip }));
  else delete loadBalancer.ingress;
  return { ...svc, metadata: { ...svc.metadata, annotations }, status: { ...svc.status, loadBalancer } };
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
  /** Wait before retrying after conflicts persisted through `conflictAttempts` re-reads. Default 100 ms. */
  conflictRetryMs?: number;
  /** Re-read / re-converge / write rounds after a 409 before handing the key back to the queue. Default 3. */
  conflictAttempts?: number;
  /**
   * The `service-status` feature: off while the API server refuses our writes (403). Services are then converged but
   * not written, and written all at once when `unblock()` is called (the permission came back).
   */
  serviceStatus?: FeatureSwitch;
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
  /** Services waiting for the permission to write them. */
  private readonly blocked = new Set<string>();
  private readonly serviceStatus: FeatureSwitch;

  constructor(private readonly d: ServiceReconcilerDeps) {
    this.serviceStatus = d.serviceStatus ?? alwaysOn('service-status');
  }

  /** Services converged but not written because writing was refused. */
  get blockedCount(): number {
    return this.blocked.size;
  }

  /** Writing is allowed again: every Service held back is reconciled. */
  unblock(): void {
    const keys = [...this.blocked];
    this.blocked.clear();
    for (const k of keys) this.d.enqueue(k);
  }

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
    const { log, writer, counters, allocator } = this.d;
    for (const ev of result.events) this.d.events.record(svc, ev.type, ev.reason, ev.message);
    if (result.pendingReason && result.ingress.length === 0) log.debug({ service: key, reason: result.pendingReason }, 'service has no address');
    let cur = svc;
    let res = result;
    let wrote = false;
    const attempts = this.d.conflictAttempts ?? 3;
    for (let attempt = 0; ; attempt++) {
      if (ingressMatches(cur, res.ingress) && cur.metadata?.annotations?.[POOL_ANNOTATION] === res.pool) break;
      if (!this.serviceStatus.enabled) {
        this.blocked.add(key);
        return;
      }
      try {
        const before = cur.metadata?.resourceVersion;
        const updated = await writer.write(withAllocation(cur, res.ingress, res.pool));
        counters?.updates.inc();
        this.d.cache.observeWrite?.(updated, before);
        cur = updated;
        wrote = true;
        break;
      } catch (err) {
        if (isNotFound(err)) return; // deleted meanwhile; the delete event follows
        counters?.updateErrors.inc();
        if (this.serviceStatus.offIfForbidden(err)) {
          this.blocked.add(key);
          return;
        }
        if (!isConflict(err)) {
          log.warn({ service: key, err: errorText(err) }, 'could not update service');
          throw err;
        }
        if (attempt + 1 >= attempts) {
          log.debug({ service: key, attempts }, 'conflicts writing service, retrying later');
          return { requeueAfterMs: this.d.conflictRetryMs ?? 100 };
        }
        // The Service changed since our copy (its owner edited it, or our cache lags): converge what it is now.
        const ns = cur.metadata?.namespace ?? '';
        const name = cur.metadata?.name ?? '';
        log.debug({ service: key, attempt }, 'conflict writing service, converging a fresh copy');
        const fresh = await writer.read(ns, name);
        if (!fresh) return;
        this.d.cache.observeWrite?.(fresh, cur.metadata?.resourceVersion);
        if (!allocator.handles(fresh)) {
          this.d.enqueue(key); // released by its own reconcile
          return;
        }
        res = allocator.converge(fresh);
        for (const ev of res.events) this.d.events.record(fresh, ev.type, ev.reason, ev.message);
        cur = fresh;
      }
    }
    if (wrote) {
      this.serviceStatus.enable();
      // Like MetalLB: each update of a Service that still uses the old annotation prefix reminds its owner.
      const deprecated = deprecatedAnnotations(svc);
      if (deprecated.length > 0) {
        const renames = deprecated.map((a) => `"${a}" (use "metallb.io/${a.slice(a.indexOf('/') + 1)}")`).join(', ');
        this.d.events.record(cur, 'Warning', 'deprecatedAnnotation', `deprecated annotations: ${renames}`);
      }
      if (res.ingress.length > 0) log.info({ service: key, ingress: res.ingress, pool: res.pool }, 'service updated');
      else log.info({ service: key, reason: res.pendingReason }, 'service addresses cleared');
      this.d.onUsageChanged?.();
    }
    if (result.reprocessAll || res.reprocessAll) this.requestReprocessAll();
  }
}
