// Public entry of the allocator: one ServiceAllocator per controller, fed with the pools and with every Service.
// Behaviour contract: MetalLB's controller/service.go + internal/allocator (see docs/allocation.md for differences).
import type { Pool } from '../config/types.js';
import type { Service } from '../k8s/types.js';
import { Allocator, type PoolUsage } from './allocator.js';
import { convergeService, type ConvergeResult, type ServiceEvent } from './converge.js';
import { ANNOTATION_IP_ALLOCATED_FROM_POOL, viewService } from './service-view.js';

export type { ConvergeResult, ServiceEvent } from './converge.js';
export type { Holding, AllocationRequest, ServiceFamily } from './types.js';
export { Allocator } from './allocator.js';
export {
  ANNOTATION_ADDRESS_POOL,
  ANNOTATION_ALLOW_SHARED_IP,
  ANNOTATION_IP_ALLOCATED_FROM_POOL,
  ANNOTATION_LOADBALANCER_IPS,
  deprecatedAnnotations,
  serviceProblems,
  viewService,
} from './service-view.js';

export type { PoolUsage as PoolStats } from './allocator.js';

export interface AllocatorOptions {
  /** `--lb-class`: "" handles Services without a loadBalancerClass only. */
  loadBalancerClass?: string;
}

const eventSig = (e: ServiceEvent): string => `${e.type}\u0000${e.reason}\u0000${e.message}`;
/** Events describing a lasting failure: reported once, not again while the same failure persists. */
const isFailure = (e: ServiceEvent): boolean => e.type === 'Warning' || e.reason === 'AdditionalAssignFailed';

export class ServiceAllocator {
  private readonly core = new Allocator();
  /** Per Service, the failure events of its last converge: not repeated while nothing changes. */
  private readonly reported = new Map<string, Set<string>>();

  constructor(readonly options: AllocatorOptions = {}) {}

  /** The underlying allocator (read-only use: diagnostics and tests). */
  get allocator(): Allocator {
    return this.core;
  }

  /** Replaces the pools; existing assignments stay where they are still allowed. Callers then converge every Service. */
  setPools(pools: readonly Pool[]): void {
    this.core.setPools(pools);
    // A new config may change every answer: let failures be reported again.
    this.reported.clear();
  }

  /** Whether this allocator is responsible for the Service at all (loadBalancerClass filter). */
  handles(svc: Service): boolean {
    const wanted = this.options.loadBalancerClass ?? '';
    const cls = typeof svc.spec?.loadBalancerClass === 'string' ? svc.spec.loadBalancerClass : '';
    return cls === wanted;
  }

  /**
   * Level-triggered and idempotent: the desired state of one Service given everything known.
   * Callers must check `handles` first: for a Service of another loadBalancerClass this frees what we held and
   * returns the Service's current status and pool annotation unchanged (nothing to write).
   */
  converge(svc: Service): ConvergeResult {
    const view = viewService(svc);
    if (!this.handles(svc)) {
      const freed = this.release(view.key);
      const pool = svc.metadata?.annotations?.[ANNOTATION_IP_ALLOCATED_FROM_POOL];
      const out: ConvergeResult = {
        ingress: view.currentTexts,
        events: [],
        reprocessAll: freed,
        pendingReason: `loadBalancerClass ${JSON.stringify(view.loadBalancerClass ?? '')} is not handled by this controller`,
      };
      if (pool !== undefined) out.pool = pool;
      return out;
    }
    const r = convergeService(this.core, view);
    let events = r.events;
    const seen = this.reported.get(view.key);
    if (events.length > 0 || r.quietEvents.length > 0 || seen) {
      const now = new Set<string>();
      events = [];
      for (const e of r.events) {
        const sig = eventSig(e);
        if (isFailure(e)) {
          now.add(sig);
          if (seen?.has(sig)) continue;
        }
        events.push(e);
      }
      for (const e of r.quietEvents) now.add(eventSig(e));
      if (now.size > 0) this.reported.set(view.key, now);
      else if (seen) this.reported.delete(view.key);
    }
    const out: ConvergeResult = { ingress: r.ingress, events, reprocessAll: r.reprocessAll };
    if (r.pool !== undefined) out.pool = r.pool;
    if (r.pendingReason !== undefined) out.pendingReason = r.pendingReason;
    return out;
  }

  /** The Service is gone: free its addresses. True when an address was freed. */
  release(key: string): boolean {
    this.reported.delete(key);
    return this.core.unassign(key);
  }

  poolStats(): PoolUsage[] {
    return this.core.stats();
  }
}

/** Number of `status.loadBalancer.ingress[]` entries with an IP. */
function ingressIPCount(svc: Service): number {
  const ing = svc.status?.loadBalancer?.ingress;
  if (!Array.isArray(ing)) return 0;
  let n = 0;
  for (const e of ing) if (e && typeof e === 'object' && typeof e.ip === 'string' && e.ip !== '') n++;
  return n;
}

/** The order to converge Services in at startup or on reprocess-all: those already holding addresses first (most first), stable. */
export function restoreOrder<T extends Service>(services: readonly T[]): T[] {
  return services
    .map((svc, i) => ({ svc, i, n: ingressIPCount(svc) }))
    .sort((a, b) => b.n - a.n || a.i - b.i)
    .map((x) => x.svc);
}
