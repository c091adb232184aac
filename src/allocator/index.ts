// Public entry of the allocator. STUB: the allocator work replaces the bodies; keep the signatures.
import type { Pool } from '../config/types.js';
import type { Service } from '../k8s/types.js';

export interface ServiceEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What one Service should look like after converging it (MetalLB's convergeBalancer). */
export interface ConvergeResult {
  /** Desired `status.loadBalancer.ingress[].ip`, v4 before v6; empty = no addresses (state cleared). */
  ingress: string[];
  /** Desired `metallb.io/ip-allocated-from-pool`; undefined = remove it. */
  pool?: string;
  events: ServiceEvent[];
  /** True when this change freed or moved an address, so every other Service should be converged again. */
  reprocessAll: boolean;
  /** Why the Service is left without addresses, for people (dry-run table, logs). */
  pendingReason?: string;
}

export interface PoolStats {
  pool: string;
  ipv4Total: bigint;
  ipv6Total: bigint;
  ipv4InUse: number;
  ipv6InUse: number;
}

export interface AllocatorOptions {
  /** `--lb-class`: "" handles Services without a loadBalancerClass only. */
  loadBalancerClass?: string;
}

export class ServiceAllocator {
  constructor(readonly options: AllocatorOptions = {}) {}
  /** Replaces the pools; existing assignments stay where they are still allowed. Callers then converge every Service. */
  setPools(pools: readonly Pool[]): void { void pools; throw new Error('not implemented yet'); }
  /** Whether this allocator is responsible for the Service at all (loadBalancerClass filter). */
  handles(svc: Service): boolean { void svc; throw new Error('not implemented yet'); }
  /** Level-triggered and idempotent: the desired state of one Service given everything known. */
  converge(svc: Service): ConvergeResult { void svc; throw new Error('not implemented yet'); }
  /** The Service is gone: free its addresses. True when an address was freed. */
  release(key: string): boolean { void key; throw new Error('not implemented yet'); }
  poolStats(): PoolStats[] { throw new Error('not implemented yet'); }
}

/** The order to converge Services in at startup or on reprocess-all: those already holding addresses first. */
export function restoreOrder<T extends Service>(services: readonly T[]): T[] {
  void services;
  throw new Error('not implemented yet');
}
