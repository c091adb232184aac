// Wires the speaker together, controller-runtime style (as src/controller/manager.ts does for the controller):
// informers keep caches and their handlers only put keys on work queues; reconcilers do the work.
//   config queue   one key: parse every config object (ConfigReconciler, shared with the controller), refuse a config
//                  that would orphan an announced address, hand it to the pipeline, reprocess every Service;
//   service queue  `namespace/name` keys plus the synthetic reprocess-all key: the per-Service pipeline;
//   node queue     this node's own changes (protocol handlers, memberlist rejoin);
//   status queue   ServiceL2Status objects, apart so that status writes never delay an announcement.
// Every resource MetalLB's speaker RBAC of some release may not grant (EndpointSlices, Namespaces, Secrets,
// config CRs, ServiceL2Status) is probed once: a 403 or a missing CRD turns the feature off with one warning.
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { parseConfig, type Config } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ConfigMap, EndpointSlice, Endpoints, KubeObject, Namespace, Node, Pod, Secret, Service } from '../k8s/types.js';
import { ApiError, errorText, type KubeClient } from '../k8s/client.js';
import { AccessReview, type Access } from '../k8s/access.js';
import { EventRecorder, type EventSink } from '../k8s/events.js';
import { Informer, cacheKey, type InformerIndex } from '../k8s/informers.js';
import { CONFIG_RESOURCES, collectionPath, R, type Resource } from '../k8s/resources.js';
import { ConfigReconciler, type ParseFn } from '../controller/config-reconciler.js';
import { oldestFirst } from '../controller/config-order.js';
import { ConfigStateWriter } from '../controller/config-state.js';
import { startMetricsServer, type RunningServer } from '../controller/servers.js';
import { startHealthThread } from './health-thread.js';
import { WorkQueue } from '../controller/workqueue.js';
import { fromEndpointSlices, fromEndpoints, type ServiceEndpoint } from './endpoints.js';
import { DisabledMembership, type Membership } from './membership.js';
import { SpeakerMetrics } from './metrics.js';
import { isNetworkUnavailable, isExcludedFromBalancers } from './nodes.js';
import { AnnouncePipeline, type ServiceInputs } from './pipeline.js';
import type { ProtocolHandler } from './protocol.js';
import type { SpeakerPart } from './part.js';
import { Layer2Handler, type Announcer } from './l2/layer2.js';
import { L2StatusWriter, type ServiceL2Status } from './l2/status.js';
import { LABEL_NODE, statusServiceKey, type OwnerReference } from './status-objects.js';
import { SERVICE_NAME_LABEL } from './l2/placement.js';
import type { TakeoverReport } from './l2/takeover-plan.js';
import { TakeoverPlanner } from './takeover-planner.js';
import { endpointSliceForSpeaker, endpointsForSpeaker, nodeForSpeaker, serviceForSpeaker, statusObjectForSpeaker, stripManagedFields } from './cache-transforms.js';

export interface SpeakerOptions {
  nodeName: string;
  namespace: string;
  /** The speaker pod (owner of ServiceL2Status objects); optional. */
  podName?: string;
  lbClass: string;
  ignoreExcludeLB: boolean;
  /** -1 = off. */
  metricsPort: number;
  metricsHost?: string;
  /** -1 = off. */
  healthProbePort: number;
  healthProbeHost?: string;
  /** Name of the legacy ConfigMap (`--config`, MetalLB ≤ v0.12). */
  legacyConfigMap: string;
  /** A config CRD not served at start counts as empty after this long (default 10 s). */
  crdAbsentGraceMs?: number;
  /** Services reconciled concurrently (default 4). */
  workers?: number;
  /** Write ServiceL2Status objects where the CRD and RBAC allow (default true). */
  l2Status?: boolean;
  /** Read Endpoints rather than EndpointSlices (MetalLB's --disable-epslices). */
  disableEndpointSlices?: boolean;
}

export interface SpeakerDeps {
  client: KubeClient;
  log: Logger;
  announcer: Announcer;
  membership?: Membership;
  metrics?: SpeakerMetrics;
  parse?: ParseFn;
  /** Other protocols (BGP), announced before layer 2 as in MetalLB. */
  handlers?: ProtocolHandler[];
  /** Parts running beside the pipeline (BGP sessions and status objects). */
  parts?: SpeakerPart[];
  /** Called when the speaker cannot go on (memberlist could not start): the process should exit. */
  onFatal?(reason: string): void;
}

const CONFIG_KEY = 'config';
const NODE_KEY = 'node';
/** Not a valid `namespace/name`, so it never collides with a Service key. */
export const REPROCESS_ALL = ' reprocess-all';


const contentOf = (o: KubeObject): string => {
  const x = o as KubeObject & { spec?: unknown; data?: unknown; stringData?: unknown; type?: unknown };
  return JSON.stringify([x.spec, x.data, x.stringData, x.type, o.metadata?.labels, o.metadata?.name]);
};
const labelsOf = (o: KubeObject): string => JSON.stringify(o.metadata?.labels ?? {});
const serviceRelevant = (s: Service): string =>
  JSON.stringify([s.spec, s.status?.loadBalancer, s.metadata?.labels, s.metadata?.annotations, s.metadata?.deletionTimestamp !== undefined]);

/** Services elected per turn of the takeover pass (gratuitous packets go out after each). */
const TAKEOVER_CHUNK = 64;

export class Speaker {
  readonly metrics: SpeakerMetrics;
  readonly pipeline: AnnouncePipeline;
  readonly layer2: Layer2Handler;
  readonly configReconciler: ConfigReconciler;
  readonly ports: { metrics?: number; health?: number } = {};
  private readonly log: Logger;
  private readonly client: KubeClient;
  private readonly membership: Membership;
  private readonly recorder: EventRecorder;
  private readonly serviceQueue: WorkQueue<string>;
  private readonly configQueue: WorkQueue<string>;
  private readonly nodeQueue: WorkQueue<string>;
  private readonly statusQueue: WorkQueue<string>;
  private readonly statusWriter: L2StatusWriter;
  private readonly configState: ConfigStateWriter;
  private readonly handlers: ProtocolHandler[];
  private readonly announcer: Announcer;
  /** The gossip thread's takeover plan, when the membership and the announcer can carry one. */
  private readonly planner: TakeoverPlanner | undefined;
  private services: Informer<Service> | undefined;
  private slices: Informer<EndpointSlice> | undefined;
  private endpoints: Informer<Endpoints> | undefined;
  private nodes: Informer<Node> | undefined;
  private namespaces: Informer<Namespace> | undefined;
  private secrets: Informer<Secret> | undefined;
  private configMaps: Informer<ConfigMap> | undefined;
  private configInformers: Informer[] = [];
  private statuses: Informer<ServiceL2Status> | undefined;
  private statusIndex: InformerIndex<ServiceL2Status> | undefined;
  /** Each Service's EndpointSlices (an array: a Service has one or a few, and a Map each costs ~250 bytes). */
  private readonly sliceIndex = new Map<string, EndpointSlice[]>();
  private nodeMapCache: Map<string, Node> | undefined;
  private statusEnabled = false;
  private owner: OwnerReference | undefined;
  private servers: RunningServer[] = [];
  private servicesStarted = false;
  private membershipReady = false;
  private readonly onFatal: ((reason: string) => void) | undefined;
  private stopped = false;
  private readonly stopCtl = new AbortController();
  private readonly access: AccessReview;
  private readonly parts: SpeakerPart[];
  private firstPassDone: () => void = () => undefined;
  private readonly firstPass = new Promise<void>((resolve) => (this.firstPassDone = resolve));

  constructor(
    private readonly opts: SpeakerOptions,
    deps: SpeakerDeps,
  ) {
    this.log = deps.log;
    this.client = deps.client;
    this.metrics = deps.metrics ?? new SpeakerMetrics({ defaultMetrics: true });
    this.membership = deps.membership ?? new DisabledMembership();
    this.onFatal = deps.onFatal;
    this.parts = deps.parts ?? [];
    this.access = new AccessReview(this.client, this.log, { stopped: () => this.stopped });
    // Every informer's waitForSync listens on the stop signal.
    setMaxListeners(64, this.stopCtl.signal);
    this.recorder = new EventRecorder(this.client, this.log, { component: 'metallb-speaker', host: opts.nodeName || hostname() });
    const events: EventSink = this.recorder;

    this.layer2 = new Layer2Handler({
      myNode: opts.nodeName,
      announcer: deps.announcer,
      speakers: () => this.membership.usable(),
      ignoreExcludeLB: opts.ignoreExcludeLB,
      events,
      log: this.log,
      onStatusChange: (key) => {
        if (this.statusEnabled) this.statusQueue.add(key);
      },
    });
    this.handlers = [...(deps.handlers ?? []), this.layer2];
    this.pipeline = new AnnouncePipeline({
      myNode: opts.nodeName,
      handlers: this.handlers,
      loadBalancerClass: opts.lbClass,
      events,
      announced: this.metrics.announced,
      log: this.log,
    });

    this.serviceQueue = new WorkQueue<string>((key) => this.reconcileService(key), {
      concurrency: opts.workers ?? 4,
      baseDelayMs: 100,
      maxDelayMs: 30_000,
      observer: this.metrics.queueObserver('service', () => this.serviceQueue.length),
      onError: (key, err, failures, retryInMs) => {
        const level = failures > 3 ? 'warn' : 'debug';
        this.log[level]({ service: key === REPROCESS_ALL ? undefined : key, err: errorText(err), failures, retryInMs }, 'reconcile failed, will retry');
      },
    });
    this.configQueue = new WorkQueue<string>(async () => this.configReconciler.reconcile(), {
      baseDelayMs: 500,
      maxDelayMs: 30_000,
      observer: this.metrics.queueObserver('config', () => this.configQueue.length),
      onError: (_k, err, failures, retryInMs) => this.log.debug({ err: errorText(err), failures, retryInMs }, 'config reconcile failed, will retry'),
    });
    this.nodeQueue = new WorkQueue<string>(async () => this.reconcileOwnNode(), { baseDelayMs: 500 });
    this.statusQueue = new WorkQueue<string>((key) => this.statusWriter.reconcile(key), {
      concurrency: 4,
      baseDelayMs: 200,
      maxDelayMs: 30_000,
      observer: this.metrics.queueObserver('servicel2status', () => this.statusQueue.length),
      onError: (key, err, failures, retryInMs) => this.onStatusError(key, err, failures, retryInMs),
    });
    this.statusWriter = new L2StatusWriter({
      client: this.client,
      namespace: opts.namespace,
      myNode: opts.nodeName,
      log: this.log,
      statusFor: (key) => this.layer2.statusFor(key),
      cached: () => this.statuses?.list() ?? [],
      cachedFor: (key) => this.statusIndex?.get(key) ?? [],
      cachedNamed: (name) => this.statuses?.get(`${opts.namespace}/${name}`),
      owner: () => this.owner,
      counters: { updates: this.metrics.updates, updateErrors: this.metrics.updateErrors },
    });
    this.configState = new ConfigStateWriter({
      client: this.client,
      namespace: opts.namespace,
      log: this.log,
      canWrite: () => !this.stopped,
      name: `speaker-${opts.nodeName}`,
      labels: { 'metallb.io/component-type': 'speaker', 'metallb.io/node-name': opts.nodeName },
      conditionType: 'configReconcilerValid',
    });
    this.configReconciler = new ConfigReconciler({
      namespace: opts.namespace,
      parse: deps.parse ?? parseConfig,
      sources: {
        configObjects: () => this.configObjects(),
        cluster: () => ({ namespaces: this.namespaces?.list() ?? [], nodes: this.nodes?.list() ?? [], secrets: this.secrets?.list() ?? [] }),
      },
      // Every speaker and the controller read the same objects: only the controller reports config errors as events.
      events: { record: () => undefined },
      canWrite: () => false,
      log: this.log,
      metrics: this.metrics,
      relevant: (config) => config,
      accept: (config) => this.pipeline.checkConfig(config),
      onPoolsChanged: (config) => this.onConfig(config),
      onResult: (valid, errors) => this.configState.set(valid, errors),
    });
    this.metrics.readMembersFrom(() => this.membership.usable()?.size);
    if (this.membership.detectorFigures) this.metrics.readDetectorFrom(() => this.membership.detectorFigures?.() ?? Promise.resolve(undefined));
    const announcer = deps.announcer;
    if (announcer.counters) this.metrics.readL2CountersFrom(() => announcer.counters?.() ?? new Map());
    this.announcer = announcer;
    this.planner = this.makePlanner();
    this.membership.onChange((event, member, report) => {
      this.metrics.memberlistEvents.inc({ event });
      this.log.debug({ event, member }, 'speakers changed, reprocessing all services');
      if (event === 'leave') this.takeOver(member, report);
      this.requestReprocessAll();
    });
  }

  /** Every config object: CRs of each kind oldest first, then the legacy ConfigMap. */
  configObjects(): KubeObject[] {
    const out: KubeObject[] = [];
    for (const inf of this.configInformers) out.push(...inf.list().sort(oldestFirst));
    const cm = this.configMaps?.get(`${this.opts.namespace}/${this.opts.legacyConfigMap}`);
    if (cm) out.push(cm);
    return out;
  }

  /** Every Node by name (rebuilt after a Node event). */
  nodeMap(): Map<string, Node> {
    if (!this.nodeMapCache) {
      const m = new Map<string, Node>();
      for (const n of this.nodes?.list() ?? []) if (n.metadata?.name) m.set(n.metadata.name, n);
      this.nodeMapCache = m;
    }
    return this.nodeMapCache;
  }

  endpointsFor(key: string): ServiceEndpoint[] {
    if (this.slices) return fromEndpointSlices(this.sliceIndex.get(key) ?? []);
    return fromEndpoints(this.endpoints?.get(key));
  }

  private makePlanner(): TakeoverPlanner | undefined {
    const membership = this.membership;
    const announcer = this.announcer;
    if (!membership.setTakeoverPlan || !membership.dropTakeoverPlan || !announcer.gratuitousFrames) return undefined;
    const planner = new TakeoverPlanner({
      myNode: this.opts.nodeName,
      log: this.log,
      // Nothing is planned before every cache is synced and the membership joined (maybeStartServices): a node
      // missing from a half-listed cache would move its Services here.
      live: () => (this.servicesStarted && !this.stopped ? membership.usable() : undefined),
      keys: () => this.services?.keys() ?? [],
      plan: (key, live) => this.pipeline.planKey(key, this.inputsFor(key), live),
      addresses: (p) => (p.protocol === 'layer2' ? this.layer2.planned(p.announcement) : []),
      frames: (entries) => announcer.gratuitousFrames?.(entries) ?? [],
      publish: (plan) => membership.setTakeoverPlan?.(plan),
      drop: (keys) => membership.dropTakeoverPlan?.(keys),
    });
    announcer.onInterfacesChanged?.(() => planner.touchAll());
    return planner;
  }

  private inputsFor(key: string): ServiceInputs {
    return { service: this.services?.get(key), endpoints: this.endpointsFor(key), nodes: this.nodeMap() };
  }

  /** A Service or its endpoints changed: reconcile it, and keep it out of the takeover plan until planned again. */
  private serviceChanged(key: string): void {
    this.planner?.touch(key);
    this.serviceQueue.add(key);
  }

  /**
   * A speaker left: announce what is now ours at once, in one pass over every Service, ahead of the reconciles
   * (a thousand of them take a second on a busy node; the client waits for the gratuitous ARP, not for the status).
   */
  private takeOver(member: string, report?: TakeoverReport): void {
    if (!this.servicesStarted || this.stopped) return;
    const heard = Date.now();
    const taken: string[] = [];
    if (report) {
      // The gossip thread sent the plan's frames already: the announcer takes the same Services in one update,
      // without electing again; the pass below only looks at what the plan did not cover.
      const planned = this.planner?.planned(report.planId, report.member, report.keys);
      if (planned) taken.push(...this.pipeline.applyPlanned(planned));
      const timing = { detectedAt: report.detectedAt, sentMs: report.sentAt - report.detectedAt, heardMs: heard - report.detectedAt, appliedMs: Date.now() - report.detectedAt };
      if (planned) this.log.info({ member, planId: report.planId, services: report.keys.length, applied: taken.length, frames: report.frames, ...timing, ...(report.errors.length ? { errors: report.errors } : {}) }, 'takeover plan: frames sent by the gossip thread, services announced');
      else this.log.warn({ member, planId: report.planId, services: report.keys.length, ...timing }, 'takeover plan: the gossip thread sent frames of a plan no longer kept; the reconciles settle those services');
    }
    const keys = [...(this.services?.keys() ?? [])];
    const inputs = (k: string): ServiceInputs => this.inputsFor(k);
    void (async () => {
      const planned = taken.length;
      for (let i = 0; i < keys.length; i += TAKEOVER_CHUNK) {
        taken.push(...this.pipeline.takeOver(keys.slice(i, i + TAKEOVER_CHUNK), inputs));
        // The announcer sends a turn's gratuitous packets in a microtask: yield to it (and to nothing else) so each
        // chunk's addresses go out while the next chunk is elected.
        await Promise.resolve();
      }
      for (const k of taken) this.serviceQueue.add(k);
      if (taken.length > planned) this.log.info({ member, services: taken.length - planned, heardAt: heard, passMs: Date.now() - heard }, 'took over services ahead of their reconciles');
    })();
  }

  requestReprocessAll(): void {
    this.planner?.touchAll();
    this.serviceQueue.add(REPROCESS_ALL);
  }

  private onConfig(config: Config): void {
    this.pipeline.setConfig(config);
    this.requestReprocessAll();
    this.maybeStartServices();
  }

  private async reconcileService(key: string): Promise<{ requeueAfterMs?: number } | void> {
    if (key === REPROCESS_ALL) {
      const keys = new Set([...(this.services?.keys() ?? []), ...this.pipeline.announcedKeys()]);
      for (const k of keys) this.serviceQueue.add(k);
      return;
    }
    const r = await this.pipeline.reconcile(key, { service: this.services?.get(key), endpoints: this.endpointsFor(key), nodes: this.nodeMap() });
    return r.retryAfterMs !== undefined ? { requeueAfterMs: r.retryAfterMs } : undefined;
  }

  private async reconcileOwnNode(): Promise<void> {
    const me = this.nodes?.get(this.opts.nodeName);
    if (!me) return;
    for (const h of this.handlers) h.setNode(me);
    this.membership.rejoin();
  }

  private statusWarned = false;
  private onStatusError(key: string, err: unknown, failures: number, retryInMs: number): void {
    if (err instanceof ApiError && err.status === 403) {
      // RBAC lets us read them but not write them: stop trying.
      this.statusEnabled = false;
      if (!this.statusWarned) {
        this.statusWarned = true;
        this.log.warn({ err: errorText(err) }, 'cannot write ServiceL2Status objects; layer 2 status reporting turned off');
      }
      return;
    }
    this.log[failures > 3 ? 'warn' : 'debug']({ service: key, err: errorText(err), failures, retryInMs }, 'ServiceL2Status update failed, will retry');
  }

  /** Reasons for not being ready; empty = ready. */
  notReady(): string[] {
    const r: string[] = [];
    const unsynced = this.allInformers().filter((i) => !i.synced).map((i) => i.name);
    if (unsynced.length) r.push(`caches not synced: ${unsynced.join(', ')}`);
    if (!this.configReconciler.loaded) r.push('no valid configuration loaded yet');
    if (!this.membershipReady) r.push('memberlist not joined yet');
    return r;
  }

  private allInformers(): Informer[] {
    return [this.services, this.slices, this.endpoints, this.nodes, this.namespaces, this.secrets, this.configMaps, ...this.configInformers, this.statuses]
      .filter((i): i is Informer => i !== undefined) as Informer[];
  }

  /** Lists one object to learn whether the server serves `r` and RBAC lets us read it; retries other failures. */
  private probe(r: Resource, namespace?: string): Promise<Access> {
    return this.access.probeList(r, namespace);
  }

  async start(): Promise<void> {
    const o = this.opts;
    const ns = o.namespace;
    if (o.metricsPort >= 0) {
      const s = await startMetricsServer(o.metricsPort, o.metricsHost, () => this.metrics.text(), this.metrics.registry.contentType, this.log);
      this.servers.push(s);
      this.ports.metrics = s.port;
      this.log.info({ port: s.port, endpoint: 'metrics' }, `metrics server listening on port ${s.port}`);
    }
    if (o.healthProbePort >= 0) {
      // Off the main thread: a busy event loop (CPUs saturated, 1,000 Services) is not a dead speaker (health-thread.ts).
      const s = await startHealthThread(o.healthProbePort, o.healthProbeHost, { notReady: () => this.notReady() });
      this.servers.push(s);
      this.ports.health = s.port;
      this.log.info({ port: s.port, endpoint: 'health' }, `health probe server listening on port ${s.port}`);
    }

    // What this install lets us read (MetalLB's RBAC differs from release to release).
    const [slices, namespaces, secrets, configMaps, statuses, ...crs] = await Promise.all([
      o.disableEndpointSlices ? Promise.resolve<Access>('forbidden') : this.probe(R.endpointSlices),
      this.probe(R.namespaces),
      this.probe(R.secrets, ns),
      this.probe(R.configMaps, ns),
      o.l2Status === false ? Promise.resolve<Access>('forbidden') : this.probe(R.serviceL2Statuses, ns),
      ...CONFIG_RESOURCES.map((r) => this.probe(r, ns)),
    ]);
    if (this.stopped) return;
    const warnOff = (what: string, access: Access, consequence: string): void => {
      this.log.warn({ resource: what, access }, `${access === 'forbidden' ? 'not allowed to read' : 'the API server does not serve'} ${what}: ${consequence}`);
    };

    this.services = new Informer<Service>(this.client, R.services, this.log, { pageSize: 1000, transform: serviceForSpeaker });
    this.nodes = new Informer<Node>(this.client, R.nodes, this.log, { transform: nodeForSpeaker });
    if (slices === 'ok') {
      this.slices = new Informer<EndpointSlice>(this.client, R.endpointSlices, this.log, { pageSize: 1000, transform: endpointSliceForSpeaker });
    } else {
      if (!o.disableEndpointSlices) warnOff('endpointslices.discovery.k8s.io', slices, 'reading the legacy Endpoints objects instead');
      this.endpoints = new Informer<Endpoints>(this.client, R.endpoints, this.log, { pageSize: 1000, transform: endpointsForSpeaker });
    }
    if (namespaces === 'ok') this.namespaces = new Informer<Namespace>(this.client, R.namespaces, this.log, { transform: stripManagedFields });
    else warnOff('namespaces', namespaces, 'pool namespaceSelectors resolve to no namespace (they do not affect announcements)');
    if (secrets === 'ok') this.secrets = new Informer<Secret>(this.client, R.secrets, this.log, { namespace: ns, transform: stripManagedFields });
    else warnOff(`secrets in ${ns}`, secrets, 'BGPPeer passwordSecret references cannot be resolved');
    if (configMaps === 'ok') this.configMaps = new Informer<ConfigMap>(this.client, R.configMaps, this.log, { namespace: ns, transform: stripManagedFields });
    else warnOff(`configmaps in ${ns}`, configMaps, `the legacy ConfigMap ${o.legacyConfigMap} cannot be read`);
    CONFIG_RESOURCES.forEach((r, i) => {
      if (crs[i] === 'forbidden') {
        warnOff(`${r.plural}.${r.group}`, 'forbidden', 'treated as having no objects');
        return;
      }
      // A CRD not installed (yet) is handled by the informer: empty after a grace period, picked up once served.
      this.configInformers.push(new Informer(this.client, r, this.log, { namespace: ns, absentGraceMs: o.crdAbsentGraceMs, transform: stripManagedFields }));
    });
    if (statuses === 'ok') {
      this.statusEnabled = true;
      this.statuses = new Informer<ServiceL2Status>(this.client, R.serviceL2Statuses, this.log, { namespace: ns, transform: statusObjectForSpeaker });
      this.statusIndex = this.statuses.addIndex(statusServiceKey);
    } else if (o.l2Status !== false) {
      warnOff('servicel2statuses.metallb.io', statuses, 'layer 2 status objects are not written (MetalLB < v0.14 has no such CRD)');
    }
    this.wireHandlers();
    void this.resolveOwner();
    await Promise.all(this.parts.map((p) => p.start({
      client: this.client, namespace: ns, nodeName: o.nodeName, log: this.log, access: this.access, metrics: this.metrics,
      owner: () => this.owner, signal: this.stopCtl.signal, firstPass: this.firstPass,
    })));

    for (const inf of this.allInformers()) inf.start();
    this.nodeQueue.start();
    this.statusQueue.start();
    // Services wait for the first memberlist join: before it this node would see itself alone and elect itself.
    void this.membership.start().then(
      () => {
        this.membershipReady = true;
        this.maybeStartServices();
      },
      (err: unknown) => {
        this.log.error({ err: errorText(err) }, 'memberlist failed to start');
        this.onFatal?.(`memberlist failed to start: ${errorText(err)}`);
      },
    );

    const configInputs = [this.nodes, this.namespaces, this.secrets, this.configMaps, ...this.configInformers].filter((i): i is Informer => i !== undefined) as Informer[];
    void Promise.all(configInputs.map((i) => i.waitForSync(this.stopCtl.signal))).then(() => {
      if (this.stopped) return;
      this.log.info({}, 'config caches synced');
      this.configQueue.start();
      this.configQueue.add(CONFIG_KEY);
    }, () => undefined);
    const serviceInputs = [this.services, this.nodes, this.slices ?? this.endpoints].filter((i): i is Informer => i !== undefined) as Informer[];
    void Promise.all(serviceInputs.map((i) => i.waitForSync(this.stopCtl.signal))).then(() => {
      this.log.info({ services: this.services?.size }, 'service caches synced');
      this.maybeStartServices();
    }, () => undefined);
  }

  private wireHandlers(): void {
    const enqueueConfig = (): void => this.configQueue.add(CONFIG_KEY);
    for (const inf of this.configInformers) {
      inf.addHandlers({ add: enqueueConfig, delete: enqueueConfig, update: (a, b) => contentOf(a) !== contentOf(b) && enqueueConfig() });
    }
    const cmName = this.opts.legacyConfigMap;
    this.configMaps?.addHandlers({
      add: (c) => c.metadata?.name === cmName && enqueueConfig(),
      delete: (c) => c.metadata?.name === cmName && enqueueConfig(),
      update: (a, b) => b.metadata?.name === cmName && contentOf(a) !== contentOf(b) && enqueueConfig(),
    });
    this.secrets?.addHandlers({ add: enqueueConfig, delete: enqueueConfig, update: (a, b) => contentOf(a) !== contentOf(b) && enqueueConfig() });
    this.namespaces?.addHandlers({ add: enqueueConfig, delete: enqueueConfig, update: (a, b) => labelsOf(a) !== labelsOf(b) && enqueueConfig() });

    const me = this.opts.nodeName;
    const nodeEvent = (n: Node, labels: boolean): void => {
      this.nodeMapCache = undefined;
      if (labels) enqueueConfig();
      if (labels && n.metadata?.name === me) this.nodeQueue.add(NODE_KEY);
      this.requestReprocessAll();
    };
    this.nodes?.addHandlers({
      add: (n) => nodeEvent(n, true),
      delete: (n) => nodeEvent(n, true),
      update: (a, b) => {
        this.nodeMapCache = undefined;
        const labels = labelsOf(a) !== labelsOf(b);
        const availability = isNetworkUnavailable(a) !== isNetworkUnavailable(b) || isExcludedFromBalancers(a) !== isExcludedFromBalancers(b);
        if (labels || availability) nodeEvent(b, labels);
      },
    });

    this.services?.addHandlers({
      add: (s) => this.serviceChanged(cacheKey(s)),
      update: (a, b) => serviceRelevant(a) !== serviceRelevant(b) && this.serviceChanged(cacheKey(b)),
      delete: (s) => this.serviceChanged(cacheKey(s)),
    });
    const sliceService = (s: EndpointSlice): string | undefined => {
      const svc = s.metadata?.labels?.[SERVICE_NAME_LABEL];
      return svc ? `${s.metadata?.namespace ?? ''}/${svc}` : undefined;
    };
    const indexSlice = (s: EndpointSlice, present: boolean): void => {
      const svc = sliceService(s);
      if (!svc) return;
      const name = s.metadata?.name;
      // Replaced, never changed in place (endpointsFor's callers may hold the previous array); order kept.
      const cur = this.sliceIndex.get(svc) ?? [];
      const i = cur.findIndex((x) => x.metadata?.name === name);
      const next = present ? (i < 0 ? [...cur, s] : cur.map((x, j) => (j === i ? s : x))) : cur.filter((_, j) => j !== i);
      if (next.length > 0) this.sliceIndex.set(svc, next);
      else this.sliceIndex.delete(svc);
      this.serviceChanged(svc);
    };
    this.slices?.addHandlers({
      add: (s) => indexSlice(s, true),
      update: (a, b) => {
        if (sliceService(a) !== sliceService(b)) indexSlice(a, false);
        indexSlice(b, true);
      },
      delete: (s) => indexSlice(s, false),
    });
    this.endpoints?.addHandlers({
      add: (e) => this.serviceChanged(cacheKey(e)),
      update: (a, b) => JSON.stringify((a as Endpoints).subsets) !== JSON.stringify((b as Endpoints).subsets) && this.serviceChanged(cacheKey(b)),
      delete: (e) => this.serviceChanged(cacheKey(e)),
    });
    // Our own status objects changed by someone else (deleted, edited): converge them again (a deletion after a
    // growing wait: see L2StatusWriter.deletedExternally).
    const ownKey = (o: ServiceL2Status): string | undefined => {
      const key = statusServiceKey(o);
      return key && o.metadata?.labels?.[LABEL_NODE] === me && this.statusEnabled ? key : undefined;
    };
    this.statuses?.addHandlers({
      add: (o) => {
        const key = ownKey(o);
        if (key) this.statusQueue.add(key);
      },
      update: (_a, b) => {
        const key = ownKey(b);
        if (key) this.statusQueue.add(key);
      },
      delete: (o) => {
        const key = ownKey(o);
        if (!key) return;
        const wait = this.statusWriter.deletedExternally(key, o.metadata?.name ?? '');
        if (wait !== undefined) this.statusQueue.addAfter(key, wait);
      },
    });
  }

  /** The speaker pod, for ownerReferences (list by name: MetalLB's oldest RBAC allows `list` only). */
  private async resolveOwner(): Promise<void> {
    const name = this.opts.podName;
    if (!name) {
      this.log.info({}, 'no --pod-name / METALLB_POD_NAME: ServiceL2Status objects get no owner reference');
      return;
    }
    let delay = 1000;
    while (!this.stopped) {
      try {
        const list = await this.client.get<{ items?: Pod[] }>(collectionPath(R.pods, this.opts.namespace), { query: { fieldSelector: `metadata.name=${name}` } });
        const pod = list.items?.find((p) => p.metadata?.name === name);
        if (pod?.metadata?.uid) {
          this.owner = { apiVersion: 'v1', kind: 'Pod', name, uid: pod.metadata.uid };
          // Objects written before we knew the owner get it now.
          for (const key of this.pipeline.announcedKeys()) if (this.statusEnabled) this.statusQueue.add(key);
          for (const p of this.parts) p.ownerKnown?.();
          return;
        }
        this.log.warn({ pod: `${this.opts.namespace}/${name}` }, 'speaker pod not found; ServiceL2Status objects get no owner reference');
        return;
      } catch (err) {
        if (err instanceof ApiError && err.status === 403) {
          this.log.warn({ err: errorText(err) }, 'not allowed to list pods: ServiceL2Status objects get no owner reference');
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  /** Services are processed once their caches are synced and a config is loaded. */
  private maybeStartServices(): void {
    if (this.servicesStarted || this.stopped) return;
    const inputs = [this.services, this.nodes, this.slices ?? this.endpoints];
    if (inputs.some((i) => !i?.synced) || !this.configReconciler.loaded || !this.membershipReady) return;
    this.servicesStarted = true;
    this.requestReprocessAll();
    this.serviceQueue.start();
    void this.serviceQueue.idle().then(() => this.firstPassDone());
    this.log.info({ node: this.opts.nodeName }, 'processing services');
    // Status objects this node left behind (e.g. before a restart) are checked once.
    if (this.statusEnabled) {
      void this.statuses?.waitForSync(this.stopCtl.signal).then(() => {
        for (const o of this.statuses?.list() ?? []) {
          const key = statusServiceKey(o);
          if (key && o.metadata?.labels?.[LABEL_NODE] === this.opts.nodeName) this.statusQueue.add(key);
        }
      }, () => undefined);
    }
  }

  /**
   * Graceful stop (SIGTERM): stop announcing decisions, tell the other speakers we leave so they take over at once
   * (within `leaveTimeoutMs`), then close everything. Announcements are not withdrawn explicitly: the new owners'
   * gratuitous packets move the traffic (MetalLB does the same).
   */
  async stop(leaveTimeoutMs = 1000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A death seen while we leave must not send this node's frames.
    this.planner?.stop();
    this.membership.dropTakeoverPlan?.('all');
    this.stopCtl.abort();
    await Promise.all([this.serviceQueue.shutdown(), this.configQueue.shutdown(), this.nodeQueue.shutdown()]);
    await Promise.all([this.membership.leave(leaveTimeoutMs), ...this.parts.map((p) => p.stop())]);
    await this.membership.stop();
    try {
      this.announcer.close?.();
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'could not close the announcer');
    }
    await this.statusQueue.shutdown();
    this.configState.stop();
    await Promise.all(this.allInformers().map((i) => i.stop()));
    await Promise.race([this.recorder.flush(), new Promise((r) => setTimeout(r, 300))]);
    await Promise.all(this.servers.map((s) => s.close()));
    this.client.close();
  }
}
