// Wires the controller together, controller-runtime style: informers keep caches and their handlers only put keys on
// work queues; reconcilers do the work. Two queues: `config` (one key, parses the whole config) and services
// (`namespace/name` keys plus the synthetic reprocess-all key). Only the leader processes Services and writes;
// a standby keeps its caches and config warm and serves the webhook.
//
// Before anything starts, the controller asks what its ServiceAccount may do (./permissions.ts): features whose
// permission is missing are off (one warning each, `metallb_controller_feature_enabled`), caches it may list but not
// watch are polled, and leader election without Leases falls back to running as the only leader.
import { oldestFirst } from './config-order.js';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ServiceAllocator, restoreOrder as allocatorRestoreOrder } from '../allocator/index.js';
import { parseConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ConfigMap, KubeObject, Namespace, Node, Secret, Service } from '../k8s/types.js';
import { errorText, isNotFound, type KubeClient } from '../k8s/client.js';
import { AccessReview } from '../k8s/access.js';
import { EventRecorder, type EventSink } from '../k8s/events.js';
import { FeatureGates } from '../k8s/features.js';
import { Informer, cacheKey, type InformerOptions } from '../k8s/informers.js';
import { KubeLeaseStore, LeaderElector } from '../k8s/leader-election.js';
import { CONFIG_RESOURCES, objectPath, R } from '../k8s/resources.js';
import { ConfigReconciler, type ParseFn } from './config-reconciler.js';
import { ConfigStateWriter } from './config-state.js';
import { ensureMemberlistSecret } from './memberlist-secret.js';
import { ControllerMetrics } from './metrics.js';
import { checkPermissions, CONTROLLER_FEATURES, type ControllerFeature, type ReadMode, type ReadPlan } from './permissions.js';
import { PoolStatusUpdater } from './pool-status.js';
import { startHealthServer, startMetricsServer, startWebhookServer, type RunningServer } from './servers.js';
import { REPROCESS_ALL, ServiceReconciler, type ServiceAllocatorLike, type ServiceWriter } from './service-reconciler.js';
import { loadServingCert, patchCABundle } from './webhook-cert.js';
import { WorkQueue } from './workqueue.js';

export type WebhookMode = 'enabled' | 'disabled' | 'onlywebhook';

export interface ControllerOptions {
  namespace: string;
  /** Name of the legacy ConfigMap (MetalLB's --config, default `config`). */
  legacyConfigMap?: string;
  lbClass?: string;
  /** -1 = no metrics server. */
  metricsPort: number;
  metricsHost?: string;
  /** -1 = no health server. */
  healthProbePort: number;
  healthProbeHost?: string;
  webhookPort: number;
  webhookHost?: string;
  webhookMode: WebhookMode;
  /** Lowest TLS version the webhook server accepts (default TLSv1.2). */
  webhookMinTLSVersion?: 'TLSv1.2' | 'TLSv1.3';
  certDir?: string;
  webhookSecretName: string;
  certServiceName: string;
  webhookConfigurationName: string;
  mlSecretName: string;
  /** Deployment owning the memberlist secret (`--deployment`), optional. */
  deployment?: string;
  leaderElect: boolean;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  identity?: string;
  /** Services reconciled concurrently. */
  workers: number;
  /** A config CRD not served at start counts as empty after this long (default 10 s). */
  crdAbsentGraceMs?: number;
  /** Interval between lists of what may be listed but not watched (default 30 s). */
  pollIntervalMs?: number;
  /** How often a refused services/status permission is asked about again (default 30 s). */
  permissionRecheckMs?: number;
}

export interface ControllerDeps {
  client: KubeClient;
  log: Logger;
  allocator?: ServiceAllocatorLike & { setPools: ServiceAllocator['setPools']; poolStats: ServiceAllocator['poolStats'] };
  restoreOrder?: (services: readonly Service[]) => Service[];
  parse?: ParseFn;
  /** Called when leadership is lost; the controller has stopped its work by then. */
  onFatal?(reason: string): void;
}

const CONFIG_KEY = 'config';

/** Whether an update changed what the config parser reads (not just status / resourceVersion). */
function contentChanged(a: KubeObject, b: KubeObject): boolean {
  const pick = (o: KubeObject): string => {
    const x = o as KubeObject & { spec?: unknown; data?: unknown; stringData?: unknown; type?: unknown };
    return JSON.stringify([x.spec, x.data, x.stringData, x.type, o.metadata?.labels, o.metadata?.name]);
  };
  return pick(a) !== pick(b);
}
const labelsChanged = (a: KubeObject, b: KubeObject): boolean => JSON.stringify(a.metadata?.labels ?? {}) !== JSON.stringify(b.metadata?.labels ?? {});

export class Controller {
  readonly metrics = new ControllerMetrics({ defaultMetrics: true });
  readonly identity: string;
  private readonly log: Logger;
  private readonly client: KubeClient;
  private readonly allocator: NonNullable<ControllerDeps['allocator']>;
  private readonly parse: ParseFn;
  private readonly onFatal: ((reason: string) => void) | undefined;
  private readonly recorder: EventRecorder;
  private readonly events: EventSink;
  readonly features: FeatureGates<ControllerFeature>;
  private readonly access: AccessReview;
  private services: Informer<Service> | undefined;
  private namespaces: Informer<Namespace> | undefined;
  private nodes: Informer<Node> | undefined;
  private secrets: Informer<Secret> | undefined;
  private configMaps: Informer<ConfigMap> | undefined;
  private configInformers: Informer[] = [];
  private poolInformer: Informer | undefined;
  private readonly serviceQueue: WorkQueue<string>;
  private readonly configQueue: WorkQueue<string>;
  readonly serviceReconciler: ServiceReconciler;
  readonly configReconciler: ConfigReconciler;
  private readonly poolStatus: PoolStatusUpdater;
  private readonly configState: ConfigStateWriter;
  private elector: LeaderElector | undefined;
  private servers: RunningServer[] = [];
  private leader = false;
  private permissionsChecked = false;
  private servicesStarted = false;
  private stopped = false;
  private mlSecretTimer: NodeJS.Timeout | undefined;
  private caTimer: NodeJS.Timeout | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;
  readonly ports: { metrics?: number; health?: number; webhook?: number } = {};

  constructor(
    private readonly opts: ControllerOptions,
    deps: ControllerDeps,
  ) {
    this.log = deps.log;
    this.client = deps.client;
    this.identity = opts.identity ?? `${hostname()}_${randomUUID()}`;
    this.allocator = deps.allocator ?? new ServiceAllocator({ loadBalancerClass: opts.lbClass });
    this.metrics.readPoolStatsFrom(() => this.allocator.poolStats());
    this.parse = deps.parse ?? parseConfig;
    this.onFatal = deps.onFatal;
    const restore = deps.restoreOrder ?? allocatorRestoreOrder;
    this.features = new FeatureGates({ component: 'controller', registry: this.metrics.registry, log: this.log, features: CONTROLLER_FEATURES });
    this.access = new AccessReview(this.client, this.log, { stopped: () => this.stopped });
    this.recorder = new EventRecorder(this.client, this.log, { component: 'metallb-controller', host: hostname(), feature: this.features.switch('events') });
    this.events = {
      record: (obj, type, reason, message) => {
        if (this.leader) this.recorder.record(obj, type, reason, message);
      },
    };
    const ns = opts.namespace;

    this.configQueue = new WorkQueue<string>(
      async () => {
        this.configReconciler.reconcile();
      },
      { concurrency: 1, baseDelayMs: 500, maxDelayMs: 30_000, observer: this.metrics.queueObserver('config', () => this.configQueue.length) },
    );
    this.serviceQueue = new WorkQueue<string>((key) => this.serviceReconciler.reconcile(key), {
      concurrency: opts.workers,
      baseDelayMs: 100,
      maxDelayMs: 60_000,
      observer: this.metrics.queueObserver('service', () => this.serviceQueue.length),
      onError: (key, err, failures, retryInMs) => {
        const level = failures > 3 ? 'warn' : 'debug';
        this.log[level]({ service: key === REPROCESS_ALL ? undefined : key, err: errorText(err), failures, retryInMs }, 'reconcile failed, will retry');
      },
    });

    this.poolStatus = new PoolStatusUpdater({
      stats: () => this.allocator.poolStats(),
      poolObjects: () => (this.poolInformer?.list() ?? []) as (KubeObject & { status?: Record<string, unknown> })[],
      // An update (PUT) of the status subresource: MetalLB's roles (v0.14+) grant `update`, not `patch`.
      writeStatus: async (pool, status) => {
        const p = pool as KubeObject & { status?: Record<string, unknown> };
        const updated = await this.client.put<KubeObject>(objectPath(R.ipAddressPools, ns, p.metadata?.name ?? '', 'status'), { ...p, status: { ...p.status, ...status } });
        this.poolInformer?.observeWrite(updated, p.metadata?.resourceVersion);
      },
      canWrite: () => this.leader,
      feature: this.features.switch('pool-status'),
      log: this.log,
      debounceMs: 500,
    });

    this.configState = new ConfigStateWriter({ client: this.client, namespace: ns, log: this.log, canWrite: () => this.leader, feature: this.features.switch('configuration-state') });

    // Status and pool annotation in one update of services/status, the only write MetalLB's roles allow on Services.
    const writer: ServiceWriter = {
      write: (svc) => this.client.put<Service>(objectPath(R.services, svc.metadata?.namespace, svc.metadata?.name ?? '', 'status'), svc),
      read: async (namespace, name) => {
        try {
          return await this.client.get<Service>(objectPath(R.services, namespace, name));
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      },
    };
    // The Service cache is made in start(), once the permissions are known.
    this.serviceReconciler = new ServiceReconciler({
      allocator: this.allocator,
      restoreOrder: restore,
      cache: {
        get: (key) => this.services?.get(key),
        list: () => this.services?.list() ?? [],
        observeWrite: (svc, rv) => this.services?.observeWrite(svc, rv),
      },
      writer,
      events: this.events,
      log: this.log,
      counters: { updates: this.metrics.updates, updateErrors: this.metrics.updateErrors },
      enqueue: (key) => this.serviceQueue.add(key),
      enqueueAfter: (key, ms) => this.serviceQueue.addAfter(key, ms),
      onUsageChanged: () => this.poolStatus.trigger(),
      serviceStatus: this.features.switch('service-status'),
    });
    this.configReconciler = new ConfigReconciler({
      namespace: ns,
      parse: this.parse,
      sources: { configObjects: () => this.configObjects(), cluster: () => this.clusterContext() },
      allocator: this.allocator,
      events: this.events,
      log: this.log,
      metrics: this.metrics,
      onPoolsChanged: () => {
        this.serviceReconciler.requestReprocessAll();
        this.poolStatus.trigger();
        this.maybeStartServices();
      },
      canWrite: () => this.leader,
      onResult: (valid, errors) => this.configState.set(valid, errors),
    });
  }

  /** Creates the caches the ServiceAccount allows, as it allows them (watched or polled). */
  private createInformers(plan: ReadPlan): void {
    const o = this.opts;
    const ns = o.namespace;
    const how = (m: ReadMode, extra: InformerOptions = {}): InformerOptions => ({ ...extra, ...(m === 'list' ? { watch: false, pollIntervalMs: o.pollIntervalMs ?? 30_000 } : {}) });
    // Services are the controller's job: their cache is made even when listing is refused (it logs and retries).
    if (o.webhookMode !== 'onlywebhook') this.services = new Informer<Service>(this.client, R.services, this.log, how(plan.services, { pageSize: 1000 }));
    if (plan.namespaces !== 'forbidden') this.namespaces = new Informer<Namespace>(this.client, R.namespaces, this.log, how(plan.namespaces));
    if (plan.nodes !== 'forbidden') this.nodes = new Informer<Node>(this.client, R.nodes, this.log, how(plan.nodes));
    if (plan.secrets !== 'forbidden') this.secrets = new Informer<Secret>(this.client, R.secrets, this.log, how(plan.secrets, { namespace: ns }));
    if (plan.configMaps !== 'forbidden') this.configMaps = new Informer<ConfigMap>(this.client, R.configMaps, this.log, how(plan.configMaps, { namespace: ns }));
    CONFIG_RESOURCES.forEach((r, i) => {
      const m = plan.config[i] ?? 'watch';
      if (m === 'forbidden') return;
      const inf = new Informer(this.client, r, this.log, how(m, { namespace: ns, absentGraceMs: o.crdAbsentGraceMs }));
      this.configInformers.push(inf);
      if (r === R.ipAddressPools) this.poolInformer = inf;
    });
    this.wireHandlers();
  }

  /** Watch handlers: enqueue only. */
  private wireHandlers(): void {
    const enqueueConfig = (): void => this.configQueue.add(CONFIG_KEY);
    for (const inf of this.configInformers) {
      inf.addHandlers({ add: enqueueConfig, delete: enqueueConfig, update: (a, b) => contentChanged(a, b) && enqueueConfig() });
    }
    const legacy = this.legacyConfigMap;
    this.configMaps?.addHandlers({
      add: (o) => o.metadata?.name === legacy && enqueueConfig(),
      delete: (o) => o.metadata?.name === legacy && enqueueConfig(),
      update: (a, b) => b.metadata?.name === legacy && contentChanged(a, b) && enqueueConfig(),
    });
    this.secrets?.addHandlers({ add: enqueueConfig, delete: enqueueConfig, update: (a, b) => contentChanged(a, b) && enqueueConfig() });
    for (const inf of [this.namespaces, this.nodes].filter((i) => i !== undefined) as Informer[]) {
      inf.addHandlers({ add: enqueueConfig, delete: enqueueConfig, update: (a, b) => labelsChanged(a, b) && enqueueConfig() });
    }
    this.services?.addHandlers({
      add: (s) => this.serviceQueue.add(cacheKey(s)),
      update: (_a, b) => this.serviceQueue.add(cacheKey(b)),
      delete: (s) => this.serviceQueue.add(cacheKey(s)),
    });
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** MetalLB's --config (<= v0.12): the legacy ConfigMap's name. */
  private get legacyConfigMap(): string {
    return this.opts.legacyConfigMap ?? 'config';
  }

  /** Every config object, CRs of each kind oldest first, then the legacy ConfigMap. */
  configObjects(): KubeObject[] {
    const out: KubeObject[] = [];
    for (const inf of this.configInformers) out.push(...inf.list().sort(oldestFirst));
    const cm = this.configMaps?.get(`${this.opts.namespace}/${this.legacyConfigMap}`);
    if (cm) out.push(cm);
    return out;
  }

  clusterContext(): { namespaces: Namespace[]; nodes: Node[]; secrets: Secret[] } {
    return { namespaces: this.namespaces?.list() ?? [], nodes: this.nodes?.list() ?? [], secrets: this.secrets?.list() ?? [] };
  }

  private allInformers(): Informer[] {
    return [this.services, this.namespaces, this.nodes, this.secrets, this.configMaps, ...this.configInformers].filter((i) => i !== undefined) as Informer[];
  }

  /** Reasons for not being ready; empty = ready. */
  notReady(): string[] {
    const r: string[] = [];
    const unsynced = this.allInformers().filter((i) => !i.synced).map((i) => i.name);
    if (unsynced.length) r.push(`caches not synced: ${unsynced.join(', ')}`);
    if (!this.permissionsChecked) r.push('permissions not checked yet');
    if (!this.configReconciler.loaded) r.push('no valid configuration loaded yet');
    return r;
  }

  async start(): Promise<void> {
    const o = this.opts;
    if (o.metricsPort >= 0) {
      const s = await startMetricsServer(o.metricsPort, o.metricsHost, () => this.metrics.text(), this.metrics.registry.contentType, this.log);
      this.servers.push(s);
      this.ports.metrics = s.port;
      this.log.info({ port: s.port, endpoint: 'metrics' }, `metrics server listening on port ${s.port}`);
    }
    if (o.healthProbePort >= 0) {
      const s = await startHealthServer(o.healthProbePort, o.healthProbeHost, { notReady: () => this.notReady() });
      this.servers.push(s);
      this.ports.health = s.port;
      this.log.info({ port: s.port, endpoint: 'health' }, `health probe server listening on port ${s.port}`);
    }
    const certFromDir = o.certDir !== undefined && existsSync(join(o.certDir, 'tls.crt')) && existsSync(join(o.certDir, 'tls.key'));
    const plan = await checkPermissions(
      this.access,
      this.features,
      {
        namespace: o.namespace,
        leaderElect: o.leaderElect && o.webhookMode !== 'onlywebhook',
        leaseName: o.leaseName,
        mlSecretName: o.webhookMode === 'onlywebhook' ? '' : o.mlSecretName,
        webhookSecretName: o.webhookSecretName,
        webhookSecret: o.webhookMode !== 'disabled' && !certFromDir,
        webhookConfigurationName: o.webhookConfigurationName,
      },
      this.log,
    );
    if (this.stopped) return;
    this.permissionsChecked = true;
    this.createInformers(plan);
    for (const inf of this.allInformers()) inf.start();
    if (o.webhookMode !== 'disabled') void this.runWebhook();
    // The config is parsed once every cache it reads has been listed.
    const configInputs = this.allInformers().filter((i) => i !== (this.services as Informer | undefined));
    void Promise.all(configInputs.map((i) => i.waitForSync())).then(() => {
      if (this.stopped) return;
      this.log.info({}, 'config caches synced');
      this.configQueue.start();
      this.configQueue.add(CONFIG_KEY);
    });
    if (o.webhookMode === 'onlywebhook') {
      this.log.info({}, 'webhook-only mode: not reconciling services');
      return;
    }
    void this.services?.waitForSync().then(() => {
      this.log.info({ services: this.services?.size }, 'service cache synced');
      this.maybeStartServices();
    });
    if (o.leaderElect && !this.features.enabled('leader-election')) {
      this.log.info({ identity: this.identity }, 'leading alone (leader election is off)');
      this.becomeLeader();
    } else if (o.leaderElect) {
      this.elector = new LeaderElector(new KubeLeaseStore(this.client, o.namespace, o.leaseName), {
        identity: this.identity,
        leaseDurationMs: o.leaseDurationMs,
        renewDeadlineMs: o.renewDeadlineMs,
        retryPeriodMs: o.retryPeriodMs,
        log: this.log,
        onStartedLeading: () => this.becomeLeader(),
        onStoppedLeading: () => {
          this.leader = false;
          this.metrics.isLeader.set(0);
          void this.stopWork().then(() => this.onFatal?.('leader election lost'));
        },
        onNewLeader: (id) => {
          if (id !== this.identity) this.log.info({ leader: id }, 'another instance is the leader; standing by');
        },
        // A refusal the access review did not foresee: give up on the Lease before ever leading, and lead alone.
        onForbidden: (err) => {
          if (this.leader || this.stopped) return;
          this.features.switch('leader-election').offIfForbidden(err);
          const elector = this.elector;
          this.elector = undefined;
          void elector?.stop();
          this.becomeLeader();
        },
      });
      this.metrics.isLeader.set(0);
      this.log.info({ identity: this.identity, lease: `${o.namespace}/${o.leaseName}` }, 'leader election: campaigning');
      this.elector.start();
    } else {
      this.becomeLeader();
    }
  }

  /** Loads the serving certificate and starts the webhook server; retries (API server down, ...) until stopped. */
  private async runWebhook(): Promise<void> {
    const o = this.opts;
    let delay = 1000;
    while (!this.stopped) {
      try {
        const secretFeature = this.features.switch('webhook-certificate-secret');
        const bundleFeature = this.features.switch('webhook-ca-bundle');
        const cert = await loadServingCert(
          this.client,
          {
            namespace: o.namespace,
            certDir: o.certDir,
            secretName: o.webhookSecretName,
            serviceName: o.certServiceName,
            webhookConfigurationName: o.webhookConfigurationName,
            canWrite: true,
            secretFeature,
            bundleFeature,
          },
          this.log,
        );
        if (this.stopped) return;
        const s = await startWebhookServer(
          o.webhookPort,
          o.webhookHost,
          cert,
          { namespace: o.namespace, parse: this.parse, configObjects: () => this.configObjects(), cluster: () => this.clusterContext() },
          this.log,
          o.webhookMinTLSVersion,
        );
        if (this.stopped) {
          await s.close();
          return;
        }
        this.servers.push(s);
        this.ports.webhook = s.port;
        this.log.info({ port: s.port, endpoint: 'webhook', cert: cert.source }, `webhook server listening on port ${s.port} (HTTPS)`);
        // The ValidatingWebhookConfiguration may be created (or rewritten by a re-install) after we started:
        // keep its CA bundle in line. A GET by name every 10 s (the RBAC allows no list/watch on it).
        const ca = cert.ca;
        if (ca && cert.source !== 'cert-dir') {
          this.caTimer = setInterval(() => {
            if (this.stopped || !bundleFeature.enabled || (!this.leader && o.webhookMode !== 'onlywebhook')) return;
            void patchCABundle(this.client, o.webhookConfigurationName, ca, this.log, bundleFeature);
          }, 10_000);
          this.caTimer.unref();
        }
        return;
      } catch (err) {
        this.log.error({ err: errorText(err), retryInMs: delay }, 'webhook: could not start, retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  private becomeLeader(): void {
    if (this.stopped) return;
    this.leader = true;
    this.metrics.isLeader.set(1);
    void this.ensureMlSecret();
    // Config errors found while standing by were not reported as events; report them now.
    this.configReconciler.forgetReported();
    this.configState.resync();
    this.configQueue.add(CONFIG_KEY);
    this.serviceReconciler.requestReprocessAll();
    this.maybeStartServices();
  }

  private async ensureMlSecret(): Promise<void> {
    if (this.stopped || !this.leader || !this.opts.mlSecretName || !this.features.enabled('memberlist-secret')) return;
    try {
      let owner;
      if (this.opts.deployment) {
        const dep = await this.client
          .get<KubeObject>(objectPath(R.deployments, this.opts.namespace, this.opts.deployment))
          .catch(() => undefined);
        if (dep?.metadata?.uid) owner = { apiVersion: 'apps/v1', kind: 'Deployment', name: this.opts.deployment, uid: dep.metadata.uid };
      }
      await ensureMemberlistSecret(this.client, this.opts.namespace, this.opts.mlSecretName, this.log, owner);
    } catch (err) {
      if (this.features.switch('memberlist-secret').offIfForbidden(err)) return;
      this.log.warn({ secret: `${this.opts.namespace}/${this.opts.mlSecretName}`, err: errorText(err) }, 'could not ensure the memberlist secret, retrying in 10s');
      this.mlSecretTimer = setTimeout(() => void this.ensureMlSecret(), 10_000);
    }
  }

  /** Services are processed once we lead, the Service cache is synced and a config is loaded. */
  private maybeStartServices(): void {
    if (this.servicesStarted || this.stopped || !this.leader) return;
    if (!this.services?.synced || !this.configReconciler.loaded) return;
    this.servicesStarted = true;
    this.serviceQueue.add(REPROCESS_ALL);
    this.serviceQueue.start();
    this.log.info({}, 'processing services');
    this.scheduleRecheck();
  }

  /**
   * While writing Services is refused, ask again every 30 s; once allowed (or when the server cannot say), the
   * Services held back are written.
   */
  private scheduleRecheck(): void {
    if (this.recheckTimer || this.stopped) return;
    this.recheckTimer = setInterval(() => {
      if (this.stopped || this.features.enabled('service-status') || this.serviceReconciler.blockedCount === 0) return;
      void this.access.can({ verb: 'update', resource: R.services, subresource: 'status' }).then((ok) => {
        if (ok === false || this.stopped) return;
        // No answer (no access reviews): try; a refused write turns it off again, quietly this time.
        this.features.enable('service-status');
        this.serviceReconciler.unblock();
      });
    }, this.opts.permissionRecheckMs ?? 30_000);
    this.recheckTimer.unref();
  }

  private async stopWork(): Promise<void> {
    if (this.mlSecretTimer) clearTimeout(this.mlSecretTimer);
    if (this.caTimer) clearInterval(this.caTimer);
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    this.poolStatus.stop();
    this.configState.stop();
    await Promise.all([this.serviceQueue.shutdown(), this.configQueue.shutdown()]);
  }

  /** Stops watches and work, releases the lease, closes the servers. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.stopWork();
    await Promise.all(this.allInformers().map((i) => i.stop()));
    await Promise.race([this.recorder.flush(), new Promise((r) => setTimeout(r, 1000))]);
    if (this.elector) await this.elector.stop();
    this.leader = false;
    await Promise.all(this.servers.map((s) => s.close()));
    this.client.close();
  }
}
