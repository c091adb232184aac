// The kubelet: registers the Node and keeps its Lease, watches the pods bound to it (fieldSelector
// spec.nodeName=<node>) and the Secrets, ConfigMaps and Services they read, and runs one idempotent sync per pod
// from a de-duplicating work queue (keyed by pod uid). A restart adopts what the previous run left: sandboxes of
// pods that still exist keep their network namespace and addresses; everything else is removed.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { errorText, isNotFound, KubeClient, loadKubeConfig } from '../../k8s/client.js';
import { EventRecorder } from '../../k8s/events.js';
import { Informer } from '../../k8s/informers.js';
import { R, type Resource } from '../../k8s/resources.js';
import type { ConfigMap, Secret, Service } from '../../k8s/types.js';
import { WorkQueue } from '../../controller/workqueue.js';
import { CgroupManager } from './cgroups.js';
import type { EnvSources } from './env.js';
import { ImageStore } from './image-store.js';
import { parsePodCIDRs, PodIPAM } from './ipam.js';
import { removeHostDirIfUnused } from './mount-fs.js';
import { deleteSandboxNet, ensureNodeNetwork, processesInNetns, removeNodeNetwork } from './netns.js';
import { NodeAgent, type Taint } from './node.js';
import { PodWorker, type SandboxRecord } from './pod-worker.js';
import { KubeletServer, type LogTarget } from './server.js';
import { StatsProvider } from './stats.js';
import { TokenManager } from './tokens.js';
import type { Pod } from './types.js';
import { VolumeManager } from './volumes.js';
import { formatPrefix } from '../../net/ip.js';

export interface KubeletOptions {
  kubeconfig?: string;
  nodeName: string;
  nodeIPs: string[];
  podCIDRs: string[];
  rootDir: string;
  netnsPrefix: string;
  port: number;
  /** Addresses the HTTP endpoint listens on (default: the node IPs). */
  address?: string[];
  cgroupParent: string;
  maxPods: number;
  labels: Record<string, string>;
  taints: Taint[];
  cpuCapacity?: number;
  memoryCapacity?: number;
  restartBackoffBaseMs: number;
  restartBackoffMaxMs: number;
  probeTimeScale: number;
  imageCpuMsPerRequest: number;
  containerLogMaxBytes: number;
  nodeStatusUpdateMs: number;
  nodeStatusReportMs: number;
  leaseDurationSeconds: number;
  statsIntervalMs: number;
  /** Grace period for pods when the kubelet itself stops. */
  shutdownGraceSeconds: number;
  /** On stop, also remove sandboxes, addresses, cgroups (tests, `lab down`); otherwise they stay for adoption. */
  teardownOnExit: boolean;
  log: Logger;
}

const core = (plural: string, kind: string): Resource => ({ group: '', version: 'v1', plural, kind, namespaced: true });
const PODS = core('pods', 'Pod');

const kill = (pid: number): void => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
};

export class Kubelet {
  readonly client: KubeClient;
  private readonly log: Logger;
  private readonly pods: Informer<Pod>;
  private readonly secrets: Informer<Secret>;
  private readonly configMaps: Informer<ConfigMap>;
  private readonly services: Informer<Service>;
  private readonly byUid = new Map<string, Pod>();
  private readonly workers = new Map<string, PodWorker>();
  private readonly adopted = new Map<string, SandboxRecord>();
  private readonly queue: WorkQueue<string>;
  private readonly ipam: PodIPAM;
  private readonly cgroups: CgroupManager;
  private readonly events: EventRecorder;
  readonly node: NodeAgent;
  private readonly volumes: VolumeManager;
  private readonly tokens: TokenManager;
  private readonly images: ImageStore;
  private readonly server: KubeletServer;
  private readonly stats: StatsProvider;
  private readonly saCache = new Map<string, { at: number; value: boolean | undefined }>();
  private readonly envSources: EnvSources;
  private stopping = false;
  /** The port the HTTP endpoint listens on. */
  port = 0;

  constructor(private readonly o: KubeletOptions) {
    this.log = o.log;
    const access = loadKubeConfig(o.kubeconfig);
    this.client = new KubeClient(access, { userAgent: `kubelet/${o.nodeName} (metallb-ts)` });
    const prefixes = parsePodCIDRs(o.podCIDRs);
    this.ipam = new PodIPAM(prefixes, join(o.rootDir, 'ipam.json'));
    this.cgroups = new CgroupManager(o.cgroupParent, o.nodeName);
    this.events = new EventRecorder(this.client, this.log, { component: 'kubelet', host: o.nodeName });
    this.node = new NodeAgent(this.client, this.log, {
      nodeName: o.nodeName,
      nodeIPs: o.nodeIPs,
      podCIDRs: prefixes.map(formatPrefix),
      labels: o.labels,
      taints: o.taints,
      kubeletPort: o.port,
      maxPods: o.maxPods,
      ...(o.cpuCapacity !== undefined ? { cpuCapacity: o.cpuCapacity } : {}),
      ...(o.memoryCapacity !== undefined ? { memoryCapacity: o.memoryCapacity } : {}),
      rootDir: o.rootDir,
      leaseDurationSeconds: o.leaseDurationSeconds,
      leaseRenewMs: Math.max(1000, (o.leaseDurationSeconds * 1000) / 4),
      statusUpdateMs: o.nodeStatusUpdateMs,
      statusReportMs: o.nodeStatusReportMs,
    });
    this.pods = new Informer<Pod>(this.client, PODS, this.log, { fieldSelector: `spec.nodeName=${o.nodeName}` });
    this.secrets = new Informer<Secret>(this.client, R.secrets, this.log);
    this.configMaps = new Informer<ConfigMap>(this.client, R.configMaps, this.log);
    this.services = new Informer<Service>(this.client, R.services, this.log);
    this.tokens = new TokenManager(this.client, this.log);
    this.images = new ImageStore(join(o.rootDir, 'images'));
    this.envSources = {
      secret: (ns, name) => this.secrets.get(`${ns}/${name}`),
      configMap: (ns, name) => this.configMaps.get(`${ns}/${name}`),
      services: (ns) => this.services.list().filter((s) => s.metadata?.namespace === ns || s.metadata?.namespace === 'default'),
      nodeAllocatable: this.node.allocatableNumbers,
    };
    this.volumes = new VolumeManager(o.rootDir, {
      ...this.envSources,
      tokens: this.tokens,
      ...(access.ca ? { fallbackCA: access.ca } : {}),
      serviceAccountAutomount: (ns, name) => this.serviceAccountAutomount(ns, name),
    });
    this.queue = new WorkQueue<string>((uid) => this.reconcile(uid), {
      concurrency: 4,
      baseDelayMs: 500,
      maxDelayMs: 30_000,
      onError: (uid, err, failures, retryInMs) => {
        const pod = this.byUid.get(uid);
        this.log.warn({ pod: pod ? `${pod.metadata.namespace}/${pod.metadata.name}` : undefined, uid, err: errorText(err), failures, retryInMs }, 'pod sync failed');
      },
    });
    this.server = new KubeletServer(
      {
        pods: () => [...this.byUid.values()],
        logTarget: (ns, name, container, previous) => this.logTarget(ns, name, container, previous),
        stillRunning: (ns, name, container, path) => this.findWorker(ns, name)?.instanceRunning(container, path) ?? false,
        summary: () => this.stats.summary(),
        resourceMetrics: () => this.stats.resourceMetrics(),
      },
      this.log,
    );
    this.stats = new StatsProvider(this.cgroups, o.nodeName, o.memoryCapacity ?? this.node.allocatableNumbers.memory, new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), () =>
      [...this.workers.values()]
        .filter((w) => !w.finished)
        .map((w) => ({
          name: w.pod.metadata.name ?? '',
          namespace: w.pod.metadata.namespace ?? '',
          uid: w.uid,
          startTime: w.podStartTime,
          ...(w.sandbox?.veth ? { veth: w.sandbox.veth } : {}),
          containers: w.runningContainers(),
        })),
    );
  }

  async start(): Promise<void> {
    const o = this.o;
    await ensureNodeNetwork();
    this.cgroups.init();
    if (this.cgroups.version === 'none') this.log.warn('no usable cgroups: pods run without resource limits and /stats/summary has no CPU or memory figures');
    this.port = await this.server.listen(o.address ?? o.nodeIPs, o.port);
    this.log.info({ addresses: o.address ?? o.nodeIPs, port: this.port }, 'kubelet endpoint listening');
    await this.registerNode();
    if (this.stopping) return;
    this.node.start();
    const enqueuePod = (p: Pod): void => {
      const uid = p.metadata.uid;
      if (!uid) return;
      this.byUid.set(uid, p);
      this.queue.add(uid);
    };
    this.pods.addHandlers({
      add: enqueuePod,
      update: (_o, n) => enqueuePod(n),
      delete: (p) => {
        const uid = p.metadata.uid;
        if (!uid) return;
        this.byUid.delete(uid);
        this.queue.add(uid);
      },
    });
    // A changed Secret or ConfigMap may feed a volume or an environment: look at the namespace's pods again.
    const nsChanged = (obj: { metadata?: { namespace?: string } }): void => {
      const ns = obj.metadata?.namespace;
      for (const [uid, p] of this.byUid) if (p.metadata.namespace === ns) this.queue.add(uid);
    };
    for (const inf of [this.secrets, this.configMaps] as Informer<Secret | ConfigMap>[]) {
      inf.addHandlers({ add: nsChanged, update: (_o, n) => nsChanged(n), delete: nsChanged });
    }
    for (const inf of [this.secrets, this.configMaps, this.services, this.pods] as Informer[]) inf.start();
    await Promise.all([this.pods, this.secrets, this.configMaps, this.services].map((i: Informer) => i.waitForSync()));
    await this.adopt();
    this.stats.start(o.statsIntervalMs);
    this.queue.start();
    this.log.info({ node: o.nodeName, pods: this.byUid.size, cgroups: this.cgroups.version }, 'kubelet running');
  }

  /** Registers the Node, retrying (as the kubelet does) while the API server is not reachable or refuses. */
  private async registerNode(): Promise<void> {
    let wait = 500;
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.node.register();
        return;
      } catch (err) {
        this.log.warn({ node: this.o.nodeName, attempt, retryInMs: wait, err: errorText(err) }, 'registering the node failed; retrying');
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 10_000);
      }
    }
  }

  private findWorker(ns: string, name: string): PodWorker | undefined {
    for (const w of this.workers.values()) if (!w.finished && w.pod.metadata.namespace === ns && w.pod.metadata.name === name) return w;
    return undefined;
  }

  private logTarget(ns: string, name: string, container: string | undefined, previous: boolean): LogTarget | 'no-pod' | 'no-container' | { defaultContainerNeeded: string[] } {
    const w = this.findWorker(ns, name);
    if (!w) return 'no-pod';
    let c = container;
    if (!c) {
      const names = w.pod.spec.containers.map((x) => x.name);
      const def = w.pod.metadata.annotations?.['kubectl.kubernetes.io/default-container'];
      if (def && w.containerNames().includes(def)) c = def;
      else if (names.length === 1) c = names[0];
      else return { defaultContainerNeeded: names };
    }
    const t = w.logTarget(c!, previous);
    return t ?? 'no-container';
  }

  private async serviceAccountAutomount(ns: string, name: string): Promise<boolean | undefined> {
    const key = `${ns}/${name}`;
    const hit = this.saCache.get(key);
    if (hit && Date.now() - hit.at < 60_000) return hit.value;
    let value: boolean | undefined;
    try {
      const sa = await this.client.get<{ automountServiceAccountToken?: boolean }>(`/api/v1/namespaces/${encodeURIComponent(ns)}/serviceaccounts/${encodeURIComponent(name)}`);
      value = sa.automountServiceAccountToken;
    } catch (err) {
      if (!isNotFound(err)) this.log.debug({ serviceAccount: key, err: errorText(err) }, 'reading the service account failed');
    }
    this.saCache.set(key, { at: Date.now(), value });
    return value;
  }

  private workerDeps(): ConstructorParameters<typeof PodWorker>[1] {
    const o = this.o;
    return {
      log: this.log,
      events: this.events,
      client: this.client,
      nodeName: o.nodeName,
      nodeIPs: o.nodeIPs,
      netnsPrefix: o.netnsPrefix,
      rootDir: o.rootDir,
      ipam: this.ipam,
      cgroups: this.cgroups,
      volumes: this.volumes,
      images: this.images,
      env: this.envSources,
      restartBackoff: { baseMs: o.restartBackoffBaseMs, maxMs: o.restartBackoffMaxMs },
      probeTimeScale: o.probeTimeScale,
      imageCpuMsPerRequest: o.imageCpuMsPerRequest,
      logMaxBytes: o.containerLogMaxBytes,
      enqueue: (uid, afterMs) => (afterMs ? this.queue.addAfter(uid, afterMs) : this.queue.add(uid)),
      sandboxIdTaken: (id, uid) => {
        for (const w of this.workers.values()) if (w.uid !== uid && w.sandbox?.veth === `veth${id}`) return true;
        return existsSync(`/run/netns/${o.netnsPrefix}${id}`);
      },
      hostDirInUse: (dir, exceptUid) => {
        for (const w of this.workers.values()) if (w.uid !== exceptUid && !w.finished && w.sandbox?.hostDirs.includes(dir)) return true;
        return false;
      },
    };
  }

  private async reconcile(uid: string): Promise<{ requeueAfterMs: number } | void> {
    if (this.stopping) return;
    const pod = this.byUid.get(uid);
    let w = this.workers.get(uid);
    if (!w) {
      if (!pod) return;
      w = new PodWorker(pod, this.workerDeps(), this.adopted.get(uid));
      this.adopted.delete(uid);
      this.workers.set(uid, w);
    }
    const next = await w.sync(pod);
    if (w.finished) {
      this.workers.delete(uid);
      this.tokens.forgetPod(uid);
      return;
    }
    if (next !== undefined) return { requeueAfterMs: Math.max(0, next) };
  }

  /** What a previous run left behind: sandboxes of pods still here are adopted, all else is removed. */
  private async adopt(): Promise<void> {
    const podsDir = join(this.o.rootDir, 'pods');
    const records = new Map<string, SandboxRecord>();
    if (existsSync(podsDir)) {
      for (const uid of readdirSync(podsDir)) {
        const f = join(podsDir, uid, 'sandbox.json');
        try {
          records.set(uid, JSON.parse(readFileSync(f, 'utf8')) as SandboxRecord);
        } catch {
          // A pod directory without a readable record: nothing to adopt, remove it.
          if (!this.byUid.has(uid)) rmSync(join(podsDir, uid), { recursive: true, force: true });
        }
      }
    }
    for (const [uid, rec] of records) {
      // The previous kubelet's processes lost their log pipes with it: they are stopped and started again.
      for (const pid of this.cgroups.processes(uid)) kill(pid);
      if (rec.netns) for (const pid of processesInNetns(rec.netns)) kill(pid);
      const pod = this.byUid.get(uid);
      if (pod && !pod.metadata.deletionTimestamp && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
        if (rec.ips.length > 0 && !this.ipam.claim(uid, rec.ips)) {
          this.log.warn({ uid, ips: rec.ips }, 'an adopted pod address is held by another pod; the pod gets new addresses');
          rec.ips = [];
        }
        this.adopted.set(uid, rec);
        this.log.info({ pod: `${rec.namespace}/${rec.name}`, uid, netns: rec.netns, ips: rec.ips }, 'adopting the sandbox of a pod from the previous run');
        continue;
      }
      await this.removeLeftover(uid, rec);
    }
    for (const owner of this.ipam.ownersList()) if (!records.has(owner) && !this.byUid.has(owner)) this.ipam.release(owner);
    for (const id of this.cgroups.listPods()) {
      if (records.has(id)) continue;
      for (const pid of this.cgroups.processes(id)) kill(pid);
      this.cgroups.removePod(id);
    }
  }

  private async removeLeftover(uid: string, rec: SandboxRecord): Promise<void> {
    this.log.info({ pod: `${rec.namespace}/${rec.name}`, uid, netns: rec.netns }, 'removing what a pod that no longer runs here left');
    if (rec.netns && rec.veth) await deleteSandboxNet({ netns: rec.netns, veth: rec.veth }).catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'removing a leftover sandbox failed'));
    this.ipam.release(uid);
    this.cgroups.removePod(uid);
    await this.volumes.teardown(uid);
    rmSync(join(this.o.rootDir, 'logs', `${rec.namespace}_${rec.name}_${uid}`), { recursive: true, force: true });
    for (const d of rec.hostDirs ?? []) removeHostDirIfUnused(d);
  }

  /** Stops the kubelet: pods' processes are stopped; with teardownOnExit their sandboxes are removed too. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.queue.shutdown();
    await Promise.all([this.pods, this.secrets, this.configMaps, this.services].map((i: Informer) => i.stop()));
    await this.node.stop();
    this.stats.stop();
    await this.server.close();
    const grace = this.o.shutdownGraceSeconds;
    await Promise.all(
      [...this.workers.values()].map(async (w) => {
        await w.terminate(Math.min(grace, w.pod.spec.terminationGracePeriodSeconds ?? 30), 'kubelet stopping').catch(() => undefined);
        if (this.o.teardownOnExit) await w.teardown().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'teardown failed'));
      }),
    );
    if (this.o.teardownOnExit) {
      for (const [uid, rec] of this.adopted) await this.removeLeftover(uid, rec);
      await removeNodeNetwork();
    }
    // The pods' processes are gone: their cgroups are empty and a restart makes new ones.
    this.cgroups.removeNode();
    await this.events.flush();
    this.client.close();
  }
}
