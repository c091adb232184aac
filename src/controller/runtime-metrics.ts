// Metrics both MetalLB processes expose with the same names (reference f.1): the k8s client counters, the config
// gauges, and controller-runtime's work-queue and reconcile metrics. Each process adds its own on top.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueObserver } from './workqueue.js';

export class RuntimeMetrics {
  readonly registry = new Registry();
  readonly updates: Counter;
  readonly updateErrors: Counter;
  readonly configLoaded: Gauge;
  readonly configStale: Gauge;
  private readonly queueDepth: Gauge<'name'>;
  private readonly queueAdds: Counter<'name'>;
  private readonly queueRetries: Counter<'name'>;
  private readonly reconciles: Counter<'controller' | 'result'>;
  private readonly reconcileErrors: Counter<'controller'>;
  private readonly reconcileTime: Histogram<'controller'>;
  private readonly depthSources = new Map<string, () => number>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const r = [this.registry];
    this.updates = new Counter({ name: 'metallb_k8s_client_updates_total', help: 'Number of k8s object updates that have been processed.', registers: r });
    this.updateErrors = new Counter({ name: 'metallb_k8s_client_update_errors_total', help: 'Number of k8s object updates that failed for some reason.', registers: r });
    this.configLoaded = new Gauge({ name: 'metallb_k8s_client_config_loaded_bool', help: '1 if the MetalLB configuration was successfully loaded at least once.', registers: r });
    this.configStale = new Gauge({ name: 'metallb_k8s_client_config_stale_bool', help: '1 if running on a stale configuration, because the latest config failed to load.', registers: r });
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

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
