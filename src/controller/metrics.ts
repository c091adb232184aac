// The controller's Prometheus metrics, with MetalLB's names (reference f.1), in a registry of their own.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueObserver } from './workqueue.js';
import type { PoolStats } from '../allocator/index.js';

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly addressesTotal: Gauge<'pool'>;
  readonly ipv4AddressesTotal: Gauge<'pool'>;
  readonly ipv6AddressesTotal: Gauge<'pool'>;
  readonly addressesInUse: Gauge<'pool'>;
  readonly ipv4AddressesInUse: Gauge<'pool'>;
  readonly ipv6AddressesInUse: Gauge<'pool'>;
  readonly servicesAllocated: Gauge<'pool'>;
  readonly updates: Counter;
  readonly updateErrors: Counter;
  readonly configLoaded: Gauge;
  readonly configStale: Gauge;
  readonly isLeader: Gauge;
  private readonly knownPools = new Set<string>();
  private readonly queueDepth: Gauge<'name'>;
  private readonly queueAdds: Counter<'name'>;
  private readonly queueRetries: Counter<'name'>;
  private readonly reconciles: Counter<'controller' | 'result'>;
  private readonly reconcileErrors: Counter<'controller'>;
  private readonly reconcileTime: Histogram<'controller'>;
  private readonly depthSources = new Map<string, () => number>();
  private poolStatsSource: (() => readonly PoolStats[]) | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const r = [this.registry];
    const poolGauge = (name: string, help: string, collect?: () => void): Gauge<'pool'> =>
      new Gauge({ name, help, labelNames: ['pool'], registers: r, ...(collect ? { collect } : {}) });
    // The pool gauges are read from the allocator at scrape time (the first pool gauge's collect fills them all), so
    // they can never lag behind the Service status the controller has written.
    this.addressesTotal = poolGauge('metallb_allocator_addresses_total', 'Number of usable IP addresses, per pool', () => {
      if (this.poolStatsSource) this.setPoolStats(this.poolStatsSource());
    });
    this.ipv4AddressesTotal = poolGauge('metallb_allocator_ipv4_addresses_total', 'Number of usable IPv4 addresses, per pool');
    this.ipv6AddressesTotal = poolGauge('metallb_allocator_ipv6_addresses_total', 'Number of usable IPv6 addresses, per pool');
    this.addressesInUse = poolGauge('metallb_allocator_addresses_in_use_total', 'Number of IP addresses in use, per pool');
    this.ipv4AddressesInUse = poolGauge('metallb_allocator_ipv4_addresses_in_use_total', 'Number of IPv4 addresses in use, per pool');
    this.ipv6AddressesInUse = poolGauge('metallb_allocator_ipv6_addresses_in_use_total', 'Number of IPv6 addresses in use, per pool');
    this.servicesAllocated = poolGauge('metallb_allocator_services_allocated_total', 'Number of services allocated, per pool (registered by MetalLB, never set)');
    this.updates = new Counter({ name: 'metallb_k8s_client_updates_total', help: 'Number of k8s object updates that have been processed.', registers: r });
    this.updateErrors = new Counter({ name: 'metallb_k8s_client_update_errors_total', help: 'Number of k8s object updates that failed for some reason.', registers: r });
    this.configLoaded = new Gauge({ name: 'metallb_k8s_client_config_loaded_bool', help: '1 if the MetalLB configuration was successfully loaded at least once.', registers: r });
    this.configStale = new Gauge({ name: 'metallb_k8s_client_config_stale_bool', help: '1 if running on a stale configuration, because the latest config failed to load.', registers: r });
    this.isLeader = new Gauge({ name: 'metallb_controller_leader_bool', help: '1 if this controller instance is the leader (or leader election is off).', registers: r });
    // controller-runtime's work-queue and reconcile metrics, which MetalLB's controller also exposes.
    const depth = this.depthSources;
    this.queueDepth = new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: ['name'],
      registers: r,
      collect() {
        for (const [name, fn] of depth) this.set({ name }, fn());
      },
    });
    this.queueAdds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers: r });
    this.queueRetries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers: r });
    this.reconciles = new Counter({ name: 'controller_runtime_reconcile_total', help: 'Total number of reconciliations per controller', labelNames: ['controller', 'result'], registers: r });
    this.reconcileErrors = new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Total number of reconciliation errors per controller', labelNames: ['controller'], registers: r });
    this.reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    });
    this.configLoaded.set(0);
    this.configStale.set(0);
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** An observer for the work queue `name` (e.g. `service`), whose depth is read from `depthFn` at scrape time. */
  queueObserver(name: string, depthFn: () => number): QueueObserver {
    this.depthSources.set(name, depthFn);
    return {
      added: () => this.queueAdds.inc({ name }),
      retried: () => this.queueRetries.inc({ name }),
      finished: (result, seconds) => {
        this.reconciles.inc({ controller: name, result });
        if (result === 'error') this.reconcileErrors.inc({ controller: name });
        this.reconcileTime.observe({ controller: name }, seconds);
      },
    };
  }

  /** The pool gauges are computed from `source` at every scrape. */
  readPoolStatsFrom(source: () => readonly PoolStats[]): void {
    this.poolStatsSource = source;
  }

  /** Sets the per-pool gauges from the allocator; pools that disappeared lose their series. */
  setPoolStats(stats: readonly PoolStats[]): void {
    const seen = new Set<string>();
    const num = (b: bigint): number => Number(b);
    for (const s of stats) {
      seen.add(s.pool);
      const l = { pool: s.pool };
      this.ipv4AddressesTotal.set(l, num(s.ipv4Total));
      this.ipv6AddressesTotal.set(l, num(s.ipv6Total));
      this.addressesTotal.set(l, num(s.ipv4Total + s.ipv6Total));
      this.ipv4AddressesInUse.set(l, s.ipv4InUse);
      this.ipv6AddressesInUse.set(l, s.ipv6InUse);
      this.addressesInUse.set(l, s.ipv4InUse + s.ipv6InUse);
    }
    for (const p of this.knownPools) {
      if (seen.has(p)) continue;
      for (const g of [this.addressesTotal, this.ipv4AddressesTotal, this.ipv6AddressesTotal, this.addressesInUse, this.ipv4AddressesInUse, this.ipv6AddressesInUse]) {
        g.remove({ pool: p });
      }
    }
    this.knownPools.clear();
    for (const p of seen) this.knownPools.add(p);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
