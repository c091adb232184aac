// The controller-manager: builds the selected controllers on shared informers, starts the informers, then each
// controller's workers once its caches are synced. Like kube-controller-manager's `--controllers`.
import type { Logger } from '../../log.js';
import type { KubeClient } from '../../k8s/client.js';
import type { Runnable } from '../common/runtime.js';
import { createContext, type ControllerContext } from './context.js';
import { DaemonSetController } from './daemonset.js';
import { DeploymentController } from './deployment.js';
import { EndpointsController } from './endpoints.js';
import { EndpointSliceController } from './endpointslice.js';
import { GarbageCollector } from './garbagecollector.js';
import { HorizontalController, HPA_DEFAULTS, type HPAOptions } from './hpa/horizontal.js';
import { NamespaceController } from './namespace.js';
import { NodeLifecycleController } from './nodelifecycle.js';
import { PodGCController } from './podgc.js';
import { ReplicaSetController } from './replicaset.js';
import { RootCAPublisher } from './rootca.js';
import { ServiceAccountController } from './serviceaccount.js';

export interface ManagerOptions {
  /** Controller names, `*` for all, `-name` to leave one out (kube-controller-manager's --controllers). */
  controllers: string[];
  workers: number;
  /** PEM of the API server CA for `kube-root-ca.crt`; without it that controller does not run. */
  rootCA?: string;
  nodeMonitorGracePeriodMs: number;
  /** How often the garbage collector looks for new resource types (default 30 s). */
  gcRediscoverMs?: number;
  /** The --horizontal-pod-autoscaler-* settings (defaults: upstream's). */
  hpa?: Partial<HPAOptions>;
  /** How long a node must be gone before its pods are deleted (default 40 s, upstream's fixed quarantine). */
  podGCQuarantineMs?: number;
}

type Factory = (ctx: ControllerContext, o: ManagerOptions) => Runnable | undefined;

/** Every controller this manager knows, by kube-controller-manager's names. */
export const CONTROLLERS: Record<string, Factory> = {
  deployment: (ctx) => new DeploymentController(ctx),
  replicaset: (ctx) => new ReplicaSetController(ctx),
  daemonset: (ctx) => new DaemonSetController(ctx),
  garbagecollector: (ctx, o) => new GarbageCollector(ctx, o.gcRediscoverMs ? { rediscoverMs: o.gcRediscoverMs } : {}),
  namespace: (ctx) => new NamespaceController(ctx),
  endpointslice: (ctx) => new EndpointSliceController(ctx),
  endpoint: (ctx) => new EndpointsController(ctx),
  serviceaccount: (ctx) => new ServiceAccountController(ctx),
  'root-ca-cert-publisher': (ctx, o) => (o.rootCA ? new RootCAPublisher(ctx, o.rootCA) : undefined),
  nodelifecycle: (ctx, o) => new NodeLifecycleController(ctx, { gracePeriodMs: o.nodeMonitorGracePeriodMs }),
  horizontalpodautoscaling: (ctx, o) => new HorizontalController(ctx, { ...HPA_DEFAULTS, ...o.hpa }),
  podgc: (ctx, o) => new PodGCController(ctx, { quarantineMs: o.podGCQuarantineMs ?? 40_000 }),
};

/** Resolves `*,-foo,bar` against the known names; throws on an unknown name. */
export function selectControllers(spec: readonly string[]): string[] {
  const known = Object.keys(CONTROLLERS);
  const on = new Set<string>();
  const off = new Set<string>();
  for (const raw of spec) {
    const s = raw.trim();
    if (s === '') continue;
    if (s === '*') {
      for (const k of known) on.add(k);
      continue;
    }
    const neg = s.startsWith('-');
    const name = neg ? s.slice(1) : s;
    if (!known.includes(name)) throw new Error(`unknown controller "${name}" (known: ${known.join(', ')})`);
    (neg ? off : on).add(name);
  }
  return known.filter((k) => on.has(k) && !off.has(k));
}

export class ControllerManager {
  readonly ctx: ControllerContext;
  readonly running: Runnable[] = [];

  constructor(
    client: KubeClient,
    private readonly log: Logger,
    private readonly opts: ManagerOptions,
  ) {
    this.ctx = createContext(client, log, opts.workers);
  }

  async start(): Promise<void> {
    const names = selectControllers(this.opts.controllers);
    for (const name of names) {
      const c = CONTROLLERS[name]!(this.ctx, this.opts);
      if (!c) {
        this.log.warn({ controller: name }, 'controller not started (missing configuration, e.g. --root-ca-file)');
        continue;
      }
      this.running.push(c);
    }
    this.ctx.informers.start();
    this.log.info({ controllers: this.running.map((c) => c.name) }, 'starting controllers');
    // each controller starts its workers when its own caches are synced
    for (const c of this.running) void c.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.running.map((c) => c.stop()));
    await this.ctx.informers.stop();
    await this.ctx.flushEvents();
  }
}
