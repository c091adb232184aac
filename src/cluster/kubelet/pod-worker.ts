// One pod on this node: its sandbox (network namespace and addresses, cgroup, volumes), its init and regular
// containers as processes with restarts and back-off, probes, graceful termination, and the status it reports.
// `sync` is level-triggered and idempotent: the kubelet's work queue calls it whenever anything about the pod
// changes (the API object, a process exit, a probe result, a back-off timer).
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { errorText, isNotFound, type KubeClient } from '../../k8s/client.js';
import type { EventSink, EventType } from '../../k8s/events.js';
import type { CgroupLimits, CgroupManager } from './cgroups.js';
import { buildEnv, ContainerConfigError, expand, expandArgs, type EnvSources } from './env.js';
import type { ImageStore } from './image-store.js';
import { knownImagesText, matchImage, resolveLaunch, type ImageMatch } from './images.js';
import type { PodIPAM } from './ipam.js';
import { hostView, materializePlan, removeHostDirIfUnused } from './mount-fs.js';
import { MountPlanError, planMounts, setupScript, type MountRequest } from './mounts.js';
import { createSandboxNet, deleteSandboxNet, netnsMounted, sandboxId, vethExists } from './netns.js';
import { ContainerInstance } from './instance.js';
import { identityOf, setprivArgs } from './security.js';
import { milliCPU, quantityOr } from './quantity.js';
import { ContainerProcess, executableProblem, type ExitInfo } from './runtime.js';
import { computePodStatus, statusFingerprint } from './status.js';
import { podFullName, podKey, type Container, type ContainerState, type ContainerStateTerminated, type ContainerStatus, type Pod, type PodStatus } from './types.js';
import { VolumeError, type PreparedPodVolumes, type VolumeManager } from './volumes.js';

export interface WorkerDeps {
  log: Logger;
  events: EventSink;
  client: KubeClient;
  nodeName: string;
  nodeIPs: string[];
  netnsPrefix: string;
  rootDir: string;
  ipam: PodIPAM;
  cgroups: CgroupManager;
  volumes: VolumeManager;
  images: ImageStore;
  env: EnvSources;
  restartBackoff: { baseMs: number; maxMs: number };
  /** Multiplies probe delays and periods (tests); 1 in production. */
  probeTimeScale: number;
  /** CPU time the built-in web images spend per request. */
  imageCpuMsPerRequest: number;
  logMaxBytes: number;
  enqueue(uid: string, afterMs?: number): void;
  /** Whether a sandbox id is in use (by another pod of this kubelet or on the host). */
  sandboxIdTaken(id: string, uid: string): boolean;
  /** Host directories other pods of this kubelet still use. */
  hostDirInUse(dir: string, exceptUid: string): boolean;
}

type Kind = 'init' | 'sidecar' | 'regular';

interface CState {
  name: string;
  kind: Kind;
  spec: Container;
  restartCount: number;
  instance?: ContainerInstance;
  /** The instance that ended and has not been replaced yet. */
  terminated?: ContainerStateTerminated;
  /** The instance before the current one (lastState). */
  lastTerminated?: ContainerStateTerminated;
  waiting?: { reason: string; message?: string };
  backoffMs: number;
  lastStartAt?: number;
  pullBackoffMs: number;
  nextPullAt?: number;
  image: string;
  imageID: string;
  starting?: boolean;
  /** Restart whatever the restart policy says (its definition changed). */
  forceRestart?: boolean;
}

export interface SandboxRecord {
  uid: string;
  namespace: string;
  name: string;
  hostNetwork: boolean;
  netns?: string;
  veth?: string;
  ips: string[];
  hostDirs: string[];
}

const CONTAINER_ID_SCHEME = 'metallb-lab';
const isoNow = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export class PodWorker {
  readonly uid: string;
  pod: Pod;
  private readonly containers = new Map<string, CState>();
  sandbox?: SandboxRecord;
  private sandboxReady = false;
  private sandboxRetryAt = 0;
  private sandboxBackoffMs = 1000;
  private volumes?: PreparedPodVolumes;
  private volumeRetryMs = 1000;
  private startTime: string;
  private terminating?: Promise<void>;
  private terminated = false;
  private networkReleased = false;
  /**
   * The last status this kubelet wrote: what it sent, what the API server stored, and the object's resourceVersion
   * after the write. A sync can see a pod older than that write (the watch has not delivered it yet); writing again then
   * would be redundant. But a status changed by someone else after the write (the node lifecycle controller marking the
   * pod not ready) must be corrected, or the pod stays not ready for ever.
   */
  private lastWrite?: { sent: string; stored: string; resourceVersion?: string };
  /** Whether this kubelet started any container of the pod. */
  private ranHere = false;
  /** A phase the kubelet decided on (activeDeadlineSeconds). */
  private forced?: { phase: 'Failed'; reason: string; message?: string };
  private readonly log: Logger;
  /** Set after the pod is gone: its directory and addresses are released. */
  finished = false;

  constructor(
    pod: Pod,
    private readonly d: WorkerDeps,
    adopted?: SandboxRecord,
  ) {
    this.pod = pod;
    this.uid = pod.metadata.uid ?? '';
    this.log = d.log.child({ pod: podKey(pod), uid: this.uid });
    this.startTime = pod.status?.startTime ?? isoNow();
    if (adopted) this.sandbox = adopted;
    const restartOf = (name: string, list: ContainerStatus[] | undefined): number => list?.find((s) => s.name === name)?.restartCount ?? 0;
    for (const c of pod.spec.initContainers ?? []) this.addContainer(c, c.restartPolicy === 'Always' ? 'sidecar' : 'init', restartOf(c.name, pod.status?.initContainerStatuses));
    for (const c of pod.spec.containers) this.addContainer(c, 'regular', restartOf(c.name, pod.status?.containerStatuses));
    // After a kubelet restart: init containers the API already saw succeed are not run again.
    for (const s of pod.status?.initContainerStatuses ?? []) {
      const c = this.containers.get(s.name);
      if (c && c.kind === 'init' && s.state.terminated?.exitCode === 0) c.terminated = s.state.terminated;
    }
    // The previous kubelet's containers were stopped; their last states carry over.
    for (const s of [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]) {
      const c = this.containers.get(s.name);
      if (!c || c.terminated) continue;
      if (s.state.running && adopted) {
        c.lastTerminated = { exitCode: 137, reason: 'Error', message: 'stopped by a kubelet restart', startedAt: s.state.running.startedAt, finishedAt: isoNow(), ...(s.containerID ? { containerID: s.containerID } : {}) };
        c.restartCount++;
      } else if (s.lastState.terminated) {
        c.lastTerminated = s.lastState.terminated;
      }
    }
  }

  private addContainer(spec: Container, kind: Kind, restartCount: number): void {
    const m = spec.image ? matchImage(spec.image) : undefined;
    this.containers.set(spec.name, {
      name: spec.name,
      kind,
      spec,
      restartCount,
      backoffMs: 0,
      pullBackoffMs: 0,
      image: m?.ref.canonical ?? spec.image ?? '',
      imageID: '',
      waiting: { reason: 'ContainerCreating' },
    });
  }

  get hostNetwork(): boolean {
    return this.pod.spec.hostNetwork === true;
  }

  get podIPs(): string[] {
    if (this.hostNetwork) return [...this.d.nodeIPs];
    return this.sandboxReady || (this.networkReleased && this.sandbox) ? [...(this.sandbox?.ips ?? [])] : [];
  }

  private get podDir(): string {
    return this.d.volumes.podDir(this.uid);
  }

  private event(type: EventType, reason: string, message: string): void {
    this.d.events.record(this.pod, type, reason, message);
  }

  // ---------- the sync loop ----------

  /** Brings the pod to its desired state; returns when to look again (ms), if a timer is needed. */
  async sync(pod: Pod | undefined): Promise<number | undefined> {
    if (pod) this.pod = pod;
    const deleting = pod !== undefined && !!pod.metadata.deletionTimestamp;
    if (!pod || deleting) {
      // Termination runs in the background (it may wait a grace period); its end queues the pod again.
      if (!this.terminating) {
        const grace = deleting ? (pod!.metadata.deletionGracePeriodSeconds ?? this.gracePeriodSeconds()) : this.gracePeriodSeconds();
        this.terminating = this.terminate(grace, deleting ? 'deleted' : 'removed from the API server').finally(() => this.d.enqueue(this.uid));
      }
      if (pod) await this.writeStatus();
      if (!this.terminated) return undefined;
      await this.teardown();
      if (deleting) await this.deleteFromApi();
      return undefined;
    }
    // A pod the API already shows finished (before a kubelet restart) is not run again.
    const apiPhase = pod.status?.phase;
    if ((apiPhase === 'Succeeded' || apiPhase === 'Failed') && !this.ranHere) {
      this.terminated = true;
      await this.releaseNetwork();
      return undefined;
    }
    let next: number | undefined;
    const want = (ms: number | undefined): void => {
      if (ms !== undefined && ms >= 0) next = next === undefined ? ms : Math.min(next, ms);
    };
    // activeDeadlineSeconds: the pod fails once it was active longer.
    const deadline = pod.spec.activeDeadlineSeconds;
    if (deadline !== undefined && !this.forced) {
      const left = Date.parse(this.startTime) + deadline * 1000 - Date.now();
      if (left <= 0) {
        this.forced = { phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' };
        this.event('Normal', 'DeadlineExceeded', this.forced.message!);
      } else want(left);
    }
    this.applySpecChanges(pod);
    const phase = this.currentPhase();
    const restarting = [...this.containers.values()].some((c) => c.forceRestart);
    if ((phase === 'Succeeded' || phase === 'Failed') && (!restarting || this.forced)) {
      await this.finishTerminalPod();
      await this.writeStatus();
      return undefined;
    }
    // 1. Sandbox (network namespace and addresses).
    if (!this.sandboxReady) {
      if (Date.now() < this.sandboxRetryAt) want(this.sandboxRetryAt - Date.now());
      else await this.createSandbox().catch((err: unknown) => want(this.sandboxFailed(err)));
    }
    if (!this.sandboxReady) {
      await this.writeStatus();
      return next;
    }
    this.d.cgroups.ensurePod(this.uid, this.podLimits());
    // 2. Volumes (refreshed on every sync: Secret and ConfigMap updates reach running containers).
    try {
      this.volumes = await this.d.volumes.prepare(this.pod);
      this.volumeRetryMs = 1000;
      if (this.volumes.refreshAt !== undefined) want(this.volumes.refreshAt - Date.now());
    } catch (err) {
      const msg = err instanceof VolumeError ? err.message : `MountVolume.SetUp failed: ${errorText(err)}`;
      this.event('Warning', 'FailedMount', msg);
      this.log.warn({ err: msg }, 'volume setup failed');
      want(this.volumeRetryMs);
      this.volumeRetryMs = Math.min(this.volumeRetryMs * 2, 30_000);
    }
    // 3. Containers: init containers in order, then the regular ones.
    if (this.volumes) {
      let initDone = true;
      for (const c of this.byKind('init', 'sidecar')) {
        if (c.kind === 'sidecar') {
          want(await this.ensureRunning(c, true));
          if (!(c.instance && c.instance.started)) {
            initDone = false;
            break;
          }
          continue;
        }
        if (c.terminated?.exitCode === 0) continue;
        initDone = false;
        if (c.instance || c.starting) break;
        if (c.terminated && (this.pod.spec.restartPolicy ?? 'Always') === 'Never') break;
        want(await this.ensureRunning(c, true));
        break;
      }
      for (const c of this.byKind('regular')) {
        if (!initDone) {
          if (!c.instance && !c.terminated && !c.lastTerminated) c.waiting = { reason: 'PodInitializing' };
          continue;
        }
        const policy = this.pod.spec.restartPolicy ?? 'Always';
        const restart = !c.terminated || c.forceRestart === true || policy === 'Always' || (policy === 'OnFailure' && c.terminated.exitCode !== 0);
        if (restart) want(await this.ensureRunning(c, c.terminated !== undefined));
      }
    }
    const after = this.currentPhase();
    if ((after === 'Succeeded' || after === 'Failed') && ![...this.containers.values()].some((c) => c.forceRestart)) await this.finishTerminalPod();
    await this.writeStatus();
    return next;
  }

  /**
   * The API allows changing a container's image on a live pod: the kubelet restarts that container with the new
   * definition (a "definition changed" Killing event), without back-off.
   */
  private applySpecChanges(pod: Pod): void {
    for (const spec of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
      const c = this.containers.get(spec.name);
      if (!c || JSON.stringify(c.spec) === JSON.stringify(spec)) continue;
      c.spec = spec;
      const m = spec.image ? matchImage(spec.image) : undefined;
      c.image = m?.ref.canonical ?? spec.image ?? '';
      c.pullBackoffMs = 0;
      c.nextPullAt = undefined;
      if (c.kind === 'init' && c.terminated?.exitCode === 0) continue;
      c.backoffMs = 0;
      c.forceRestart = true;
      if (c.instance) void c.instance.stop(this.gracePeriodSeconds(), `Container ${c.name} definition changed, will be restarted`);
      else if (c.waiting?.reason === 'CrashLoopBackOff' || c.waiting?.reason === 'ImagePullBackOff' || c.waiting?.reason === 'ErrImagePull') c.waiting = { reason: 'ContainerCreating' };
    }
  }

  private byKind(...kinds: Kind[]): CState[] {
    return [...this.containers.values()].filter((c) => kinds.includes(c.kind));
  }

  private gracePeriodSeconds(): number {
    return this.pod.spec.terminationGracePeriodSeconds ?? 30;
  }

  private currentPhase(): string {
    return this.buildStatus().phase ?? 'Pending';
  }

  // ---------- sandbox ----------

  private async createSandbox(): Promise<void> {
    if (this.hostNetwork) {
      this.sandbox = { uid: this.uid, namespace: this.pod.metadata.namespace ?? '', name: this.pod.metadata.name ?? '', hostNetwork: true, ips: [], hostDirs: this.sandbox?.hostDirs ?? [] };
      this.saveRecord();
      this.sandboxReady = true;
      return;
    }
    let rec = this.sandbox;
    if (!rec || !rec.netns || !rec.veth) {
      const id = sandboxId(this.uid, (x) => this.d.sandboxIdTaken(x, this.uid));
      rec = { uid: this.uid, namespace: this.pod.metadata.namespace ?? '', name: this.pod.metadata.name ?? '', hostNetwork: false, netns: `${this.d.netnsPrefix}${id}`, veth: `veth${id}`, ips: [], hostDirs: this.sandbox?.hostDirs ?? [] };
    }
    const { ips } = this.d.ipam.allocate(this.uid);
    rec.ips = ips;
    this.sandbox = rec;
    this.saveRecord();
    // An adopted sandbox whose namespace and veth survived the restart is kept as it is.
    if (!(netnsMounted(rec.netns!) && vethExists(rec.veth!))) await createSandboxNet({ netns: rec.netns!, veth: rec.veth!, ips });
    this.sandboxReady = true;
    this.sandboxBackoffMs = 1000;
    this.log.info({ netns: rec.netns, ips }, 'pod sandbox ready');
  }

  private sandboxFailed(err: unknown): number {
    const msg = errorText(err);
    this.event('Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${msg}`);
    this.log.warn({ err: msg }, 'creating the pod sandbox failed');
    const wait = this.sandboxBackoffMs;
    this.sandboxRetryAt = Date.now() + wait;
    this.sandboxBackoffMs = Math.min(wait * 2, 60_000);
    return wait;
  }

  private saveRecord(): void {
    if (!this.sandbox) return;
    mkdirSync(this.podDir, { recursive: true });
    writeFileSync(join(this.podDir, 'sandbox.json'), `${JSON.stringify(this.sandbox)}\n`);
  }

  private podLimits(): CgroupLimits {
    const sum = (res: 'cpu' | 'memory', kind: 'limits' | 'requests'): number | undefined => {
      let total = 0;
      for (const c of this.pod.spec.containers) {
        const v = quantityOr(c.resources?.[kind]?.[res] ?? (kind === 'requests' ? c.resources?.limits?.[res] : undefined));
        if (v === undefined) {
          if (kind === 'limits') return undefined;
          continue;
        }
        total += v;
      }
      return total;
    };
    const cpuL = sum('cpu', 'limits');
    const cpuR = sum('cpu', 'requests');
    const mem = sum('memory', 'limits');
    return {
      ...(cpuL ? { cpuLimitMilli: milliCPU(cpuL) } : {}),
      ...(cpuR ? { cpuRequestMilli: milliCPU(cpuR) } : {}),
      ...(mem ? { memoryLimitBytes: mem } : {}),
    };
  }

  private containerLimits(c: Container): CgroupLimits {
    const cpuL = quantityOr(c.resources?.limits?.cpu);
    const cpuR = quantityOr(c.resources?.requests?.cpu ?? c.resources?.limits?.cpu);
    const mem = quantityOr(c.resources?.limits?.memory);
    return {
      ...(cpuL ? { cpuLimitMilli: milliCPU(cpuL) } : {}),
      ...(cpuR ? { cpuRequestMilli: milliCPU(cpuR) } : {}),
      ...(mem ? { memoryLimitBytes: mem } : {}),
    };
  }

  // ---------- containers ----------

  /** Starts `c` if it is not running, honouring the restart back-off. Returns ms until it should be looked at again. */
  private async ensureRunning(c: CState, isRestart: boolean): Promise<number | undefined> {
    if (c.instance || c.starting) return undefined;
    const now = Date.now();
    if (c.nextPullAt !== undefined && now < c.nextPullAt) return c.nextPullAt - now;
    if (isRestart && c.terminated) {
      if (c.backoffMs > 0 && c.lastStartAt !== undefined) {
        // A container that ran long enough (twice the longest back-off) starts over from the first delay.
        const ranFor = Date.parse(c.terminated.finishedAt ?? '') - c.lastStartAt;
        if (ranFor > 2 * this.d.restartBackoff.maxMs) c.backoffMs = 0;
      }
      if (c.backoffMs > 0 && c.lastStartAt !== undefined && now < c.lastStartAt + c.backoffMs) {
        const reason = 'CrashLoopBackOff';
        const message = `back-off ${Math.round(c.backoffMs / 1000)}s restarting failed container=${c.name} pod=${podFullName(this.pod)}`;
        if (c.waiting?.reason !== reason) this.event('Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${podFullName(this.pod)}`);
        c.waiting = { reason, message };
        return c.lastStartAt + c.backoffMs - now;
      }
      c.backoffMs = c.backoffMs === 0 ? this.d.restartBackoff.baseMs : Math.min(c.backoffMs * 2, this.d.restartBackoff.maxMs);
    }
    c.starting = true;
    try {
      return await this.start(c, isRestart);
    } finally {
      c.starting = false;
    }
  }

  private async start(c: CState, isRestart: boolean): Promise<number | undefined> {
    c.forceRestart = false;
    const m = c.spec.image ? matchImage(c.spec.image) : undefined;
    if (!m) return this.pullFailed(c);
    c.pullBackoffMs = 0;
    c.nextPullAt = undefined;
    this.event('Normal', 'Pulled', `Container image "${c.spec.image}" already present on machine`);
    let env: Record<string, string>;
    let argv: string[];
    let execPrefix: string[];
    try {
      execPrefix = setprivArgs(this.pod, c.spec, m.spec.user ?? { uid: 0, gid: 0 });
      env = this.containerEnv(c, m, identityOf(this.pod, c.spec, m.spec.user ?? { uid: 0, gid: 0 }).uid);
      argv = await this.argvFor(c, m, env);
    } catch (err) {
      if (err instanceof ContainerConfigError) {
        c.waiting = { reason: 'CreateContainerConfigError', message: err.message };
        this.event('Warning', 'Failed', `Error: ${err.message}`);
        return 10_000;
      }
      throw err;
    }
    c.image = m.ref.canonical;
    const launchProblem = executableProblem(argv[0] ?? '', env);
    const restartIndex = isRestart && c.terminated ? c.restartCount + 1 : c.restartCount;
    const logPath = this.logPath(c.name, restartIndex);
    mkdirSync(join(logPath, '..'), { recursive: true });
    this.pruneLogs(c.name, restartIndex);
    let script: string;
    try {
      // The image's WORKDIR when the manifest sets none: this project's image (and MetalLB's, which run it) work in
      // the installation directory, like the container image's /app.
      const workingDir = c.spec.workingDir || (m.id.startsWith('metallb') ? this.d.images.root : undefined);
      script = this.prepareContainerDir(c, env, workingDir, execPrefix);
    } catch (err) {
      if (err instanceof MountPlanError || err instanceof VolumeError) {
        c.waiting = { reason: 'CreateContainerError', message: err.message };
        this.event('Warning', 'Failed', `Error: ${err.message}`);
        return 10_000;
      }
      throw err;
    }
    if (isRestart && c.terminated) {
      c.lastTerminated = c.terminated;
      c.terminated = undefined;
      c.restartCount++;
    }
    c.lastStartAt = Date.now();
    if (launchProblem) {
      // The runtime cannot start the process: StartError, like a runtime's exec failure.
      const t = iso(new Date());
      c.terminated = { exitCode: 128, reason: 'StartError', message: `failed to create task for container: failed to start: ${launchProblem}`, startedAt: '1970-01-01T00:00:00Z', finishedAt: t };
      c.waiting = undefined;
      this.event('Warning', 'Failed', `Error: ${c.terminated.message}`);
      if (c.backoffMs === 0) c.backoffMs = this.d.restartBackoff.baseMs;
      return 0;
    }
    this.ranHere = true;
    const proc = new ContainerProcess({
      ...(this.hostNetwork ? {} : { netns: this.sandbox!.netns! }),
      script,
      argv,
      env,
      logPath,
      logMaxBytes: this.d.logMaxBytes,
    });
    const inst = new ContainerInstance(c.spec, proc, env, logPath, execPrefix, {
      event: (type, reason, message) => this.event(type, reason, message),
      changed: () => this.d.enqueue(this.uid),
      podIP: () => this.podIPs[0] ?? '127.0.0.1',
      killStrays: () => this.killStrays(c.name),
      graceSeconds: () => this.gracePeriodSeconds(),
      probeTimeScale: this.d.probeTimeScale,
    });
    c.instance = inst;
    c.waiting = undefined;
    c.imageID = await this.d.images.imageID(m);
    this.event('Normal', 'Created', `Created container: ${c.name}`);
    this.event('Normal', 'Started', `Started container ${c.name}`);
    this.log.info({ container: c.name, pid: proc.pid, restartCount: c.restartCount, argv }, 'container started');
    void proc.exited.then((info) => this.onExit(c, inst, info));
    void inst.activate();
    return undefined;
  }

  private pullFailed(c: CState): number {
    const known = knownImagesText();
    const image = c.spec.image ?? '';
    const now = Date.now();
    if (c.waiting?.reason === 'ErrImagePull' || c.waiting?.reason === 'ImagePullBackOff') {
      c.pullBackoffMs = c.pullBackoffMs === 0 ? this.d.restartBackoff.baseMs : Math.min(c.pullBackoffMs * 2, this.d.restartBackoff.maxMs);
    } else {
      c.pullBackoffMs = this.d.restartBackoff.baseMs;
    }
    const why = image === '' ? 'the container names no image' : `image "${image}" is not available in this lab (there is no registry); the lab runs these images: ${known}`;
    this.event('Warning', 'Failed', `Failed to pull image "${image}": ${why}`);
    this.event('Warning', 'Failed', 'Error: ErrImagePull');
    c.waiting = { reason: 'ErrImagePull', message: why };
    // The next look shows the back-off, as the kubelet does between pull attempts.
    const backoffStart = now + Math.min(1000, c.pullBackoffMs);
    c.nextPullAt = now + c.pullBackoffMs;
    setTimeout(() => {
      if (c.waiting?.reason === 'ErrImagePull' && !c.instance) {
        c.waiting = { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}": ErrImagePull: ${why}` };
        this.event('Normal', 'BackOff', `Back-off pulling image "${image}"`);
        this.event('Warning', 'Failed', 'Error: ImagePullBackOff');
        this.d.enqueue(this.uid);
      }
    }, backoffStart - now).unref();
    return c.pullBackoffMs;
  }

  /** Image environment, then the manifest's (with the kubelet's sources and $(VAR) expansion). */
  private containerEnv(c: CState, m: ImageMatch, uid: number): Record<string, string> {
    // The downward API reads the addresses the kubelet knows, not the (maybe not yet written) API status.
    const ips = this.podIPs;
    const view: Pod = {
      ...this.pod,
      status: {
        ...this.pod.status,
        hostIP: this.d.nodeIPs[0] ?? '',
        hostIPs: this.d.nodeIPs.map((ip) => ({ ip })),
        ...(ips.length > 0 ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}),
      },
    };
    const built = buildEnv(view, c.spec, this.d.env);
    if (built.skippedKeys.length > 0) {
      this.event('Warning', 'InvalidEnvironmentVariableNames', `Keys [${built.skippedKeys.join(', ')}] from the EnvFrom were skipped since they are invalid environment variable names.`);
    }
    const base: Record<string, string> = { ...m.spec.env };
    if (m.id === 'nginx' || m.id === 'echo-hname' || m.id === 'echo-ip') base.METALLB_LAB_CPU_MS_PER_REQUEST = String(this.d.imageCpuMsPerRequest);
    base.HOSTNAME = this.hostname();
    base.HOME = uid === 0 ? '/root' : '/';
    return { ...base, ...built.env };
  }

  private hostname(): string {
    if (this.hostNetwork) return this.d.nodeName;
    return (this.pod.spec.hostname || this.pod.metadata.name || '').slice(0, 63);
  }

  private async argvFor(c: CState, m: ImageMatch, env: Record<string, string>): Promise<string[]> {
    const launch = resolveLaunch(m, expandArgs(c.spec.command, env), expandArgs(c.spec.args, env));
    switch (launch.kind) {
      case 'builtin': {
        const img = await this.d.images.get(launch.program);
        return [process.execPath, img.path, ...launch.args];
      }
      case 'metallb':
        return [process.execPath, this.d.images.metallbBin, ...launch.args];
      case 'host':
        return launch.argv;
    }
  }

  /** Writes the container's setup script (mount plan, hostname, cgroup) and returns its path. */
  private prepareContainerDir(c: CState, env: Record<string, string>, workingDir: string | undefined, execPrefix: string[]): string {
    const dir = join(this.podDir, 'containers', c.name);
    mkdirSync(dir, { recursive: true });
    const requests: MountRequest[] = [];
    const vols = this.volumes!;
    const mounts = [...(c.spec.volumeMounts ?? []), ...(vols.extraMounts.get(c.name) ?? [])];
    for (const vm of mounts) {
      const v = vols.volumes.get(vm.name);
      if (!v) throw new VolumeError(vm.name, `volume "${vm.name}" is not defined in the pod`);
      let source = v.path;
      const sub = vm.subPathExpr ? expand(vm.subPathExpr, (n) => env[n]) : vm.subPath;
      if (sub) {
        if (sub.startsWith('/') || sub.split('/').includes('..')) throw new VolumeError(vm.name, `subPath "${sub}" must be a relative path without ".."`);
        source = join(v.path, sub);
        if (!existsSync(source)) mkdirSync(source, { recursive: true, mode: 0o755 });
      }
      const kind = statSync(source).isDirectory() ? 'dir' : 'file';
      requests.push({ source, sourceKind: kind, target: vm.mountPath, readOnly: vm.readOnly === true || v.forceReadOnly });
    }
    if (!this.hostNetwork && !mounts.some((m) => m.mountPath === '/etc/hosts')) {
      const hosts = join(this.podDir, 'etc-hosts');
      writeFileSync(hosts, this.hostsFile());
      requests.push({ source: hosts, sourceKind: 'file', target: '/etc/hosts', readOnly: false });
    }
    const plan = planMounts(requests, hostView, join(dir, 'shadow'), workingDir);
    // Top-level directories the plan needs on the host are recorded before they are made, so a crash cannot leak them.
    if (plan.hostDirs.some((h) => !this.sandbox!.hostDirs.includes(h))) {
      for (const h of plan.hostDirs) if (!this.sandbox!.hostDirs.includes(h)) this.sandbox!.hostDirs.push(h);
      this.saveRecord();
    }
    materializePlan(plan);
    const procs = this.d.cgroups.ensureContainer(this.uid, c.name, this.containerLimits(c.spec));
    // Every container sees the interfaces of its network namespace in /sys, like a container does: its pod's, or for
    // hostNetwork the node's (in the lab the kubelet only enters the node's network namespace, so the /sys it
    // inherits shows the machine's interfaces, and a hostNetwork speaker would announce with the machine's MACs).
    const keepDir = join(dir, 'sys-cgroup');
    mkdirSync(keepDir, { recursive: true });
    const freshSysfs = { keepDir, readOnly: !(c.spec as { securityContext?: { privileged?: boolean } }).securityContext?.privileged };
    const script = setupScript({ plan, hostname: this.hostname(), cgroupProcs: procs, execPrefix, freshSysfs, ...(workingDir ? { workingDir } : {}) });
    const path = join(dir, 'setup.sh');
    writeFileSync(path, script, { mode: 0o755 });
    return path;
  }

  private hostsFile(): string {
    const name = this.hostname();
    const lines = [
      '# Kubernetes-managed hosts file.',
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'fe00::0\tip6-mcastprefix',
      'fe00::1\tip6-allnodes',
      'fe00::2\tip6-allrouters',
    ];
    for (const ip of this.sandbox?.ips ?? []) lines.push(`${ip}\t${name}`);
    return `${lines.join('\n')}\n`;
  }

  logDir(container: string): string {
    const md = this.pod.metadata;
    return join(this.d.rootDir, 'logs', `${md.namespace ?? ''}_${md.name ?? ''}_${this.uid}`, container);
  }

  private logPath(container: string, restart: number): string {
    return join(this.logDir(container), `${restart}.log`);
  }

  /** Keeps the logs of the current and the previous instance only. */
  private pruneLogs(container: string, current: number): void {
    const dir = this.logDir(container);
    try {
      for (const f of readdirSync(dir)) {
        const n = Number(f.split('.')[0]);
        if (Number.isInteger(n) && n < current - 1) rmSync(join(dir, f), { force: true });
      }
    } catch {
      /* none yet */
    }
  }

  /** SIGKILLs what is left in a container's cgroup (or the whole pod's): what escaped its process group. */
  private killStrays(container?: string): void {
    for (const pid of this.d.cgroups.processes(this.uid, container)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  private onExit(c: CState, inst: ContainerInstance, info: ExitInfo): void {
    inst.ended();
    // Whatever escaped the process group (a daemon that called setsid) goes with the container.
    this.killStrays(c.name);
    const reason = info.exitCode === 0 ? 'Completed' : 'Error';
    c.terminated = {
      exitCode: info.exitCode,
      ...(info.signal !== undefined ? { signal: info.signal } : {}),
      reason,
      startedAt: inst.startedAt,
      finishedAt: iso(info.finishedAt),
      containerID: `${CONTAINER_ID_SCHEME}://${inst.proc.id}`,
    };
    if (c.instance === inst) c.instance = undefined;
    this.log.info({ container: c.name, exitCode: info.exitCode, signal: info.signal, stopping: inst.stopping }, 'container exited');
    this.d.enqueue(this.uid);
  }

  /** Stops every container (regular ones first, then sidecars, then init), each with the grace period. */
  async terminate(graceSeconds: number, why: string): Promise<void> {
    const stopAll = async (kinds: Kind[]): Promise<void> => {
      await Promise.all(
        this.byKind(...kinds)
          .filter((c) => c.instance)
          .map((c) => c.instance!.stop(graceSeconds, why)),
      );
    };
    if (this.byKind('regular', 'sidecar', 'init').some((c) => c.instance)) this.log.info({ graceSeconds, why }, 'stopping pod');
    await stopAll(['regular']);
    await stopAll(['sidecar', 'init']);
    // Anything left in the pod's cgroups.
    this.killStrays();
    this.terminated = true;
  }

  /** A pod that reached Succeeded or Failed: containers stopped, its network and addresses released. */
  private async finishTerminalPod(): Promise<void> {
    if (!this.terminated) await this.terminate(this.gracePeriodSeconds(), 'pod completed');
    await this.releaseNetwork();
  }

  private async releaseNetwork(): Promise<void> {
    if (this.networkReleased) return;
    const rec = this.sandbox;
    if (rec && rec.netns && rec.veth) await deleteSandboxNet({ netns: rec.netns, veth: rec.veth });
    this.d.ipam.release(this.uid);
    this.networkReleased = true;
    this.sandboxReady = false;
  }

  /** Everything the pod had on this node: processes, network, addresses, cgroups, volumes, logs. */
  async teardown(): Promise<void> {
    if (this.finished) return;
    await this.releaseNetwork().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'removing the pod network failed'));
    this.d.cgroups.removePod(this.uid);
    for (const dir of this.sandbox?.hostDirs ?? []) if (!this.d.hostDirInUse(dir, this.uid)) removeHostDirIfUnused(dir);
    await this.d.volumes.teardown(this.uid);
    const md = this.pod.metadata;
    rmSync(join(this.d.rootDir, 'logs', `${md.namespace ?? ''}_${md.name ?? ''}_${this.uid}`), { recursive: true, force: true });
    this.finished = true;
    this.log.info('pod torn down');
  }

  /** After graceful termination: the kubelet removes the object (grace period 0, only this uid). */
  private async deleteFromApi(): Promise<void> {
    const md = this.pod.metadata;
    try {
      await this.d.client.delete(`/api/v1/namespaces/${encodeURIComponent(md.namespace ?? '')}/pods/${encodeURIComponent(md.name ?? '')}`, {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: this.uid } },
      });
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof Error && /precondition|409/i.test(err.message))) throw err;
    }
  }

  // ---------- status ----------

  private containerStatus(c: CState): ContainerStatus {
    const inst = c.instance;
    let state: ContainerState;
    if (inst && inst.proc.running) state = { running: { startedAt: inst.startedAt } };
    else if (c.waiting) state = { waiting: { reason: c.waiting.reason, ...(c.waiting.message ? { message: c.waiting.message } : {}) } };
    else if (c.terminated) state = { terminated: c.terminated };
    else state = { waiting: { reason: 'ContainerCreating' } };
    // In back-off, the last run is shown as lastState.
    const last = state.waiting && c.terminated ? c.terminated : c.lastTerminated;
    const s: ContainerStatus = {
      name: c.name,
      state,
      lastState: last ? { terminated: last } : {},
      ready: !!inst?.reportedReady,
      restartCount: c.restartCount,
      image: c.image,
      imageID: c.imageID,
      started: !!(inst && inst.proc.running && inst.started),
    };
    const id = inst ? inst.proc.id : c.terminated?.containerID?.replace(/^.*:\/\//, '');
    if (id) s.containerID = `${CONTAINER_ID_SCHEME}://${id}`;
    return s;
  }

  buildStatus(): PodStatus {
    const initStatuses = this.byKind('init', 'sidecar').map((c) => ({ status: this.containerStatus(c), sidecar: c.kind === 'sidecar' }));
    const statuses = this.byKind('regular').map((c) => this.containerStatus(c));
    return computePodStatus({
      pod: this.pod,
      initStatuses,
      statuses,
      sandboxReady: this.sandboxReady,
      hostIPs: this.d.nodeIPs,
      podIPs: this.podIPs,
      startTime: this.startTime,
      now: isoNow(),
      ...(this.forced ? { forcedPhase: this.forced } : {}),
    });
  }

  /** PATCHes pods/status when what the kubelet reports differs from what the API server holds. */
  async writeStatus(): Promise<void> {
    if (this.finished) return;
    // A container being replaced for a changed definition is between two runs: no phase to report from that.
    if ([...this.containers.values()].some((c) => c.forceRestart && !c.instance)) return;
    const status = this.buildStatus();
    const fp = statusFingerprint(status);
    const held = statusFingerprint(this.pod.status);
    if (fp === held) return;
    if (this.lastWrite?.sent === fp && (held === this.lastWrite.stored || resourceVersionBefore(this.pod.metadata.resourceVersion, this.lastWrite.resourceVersion))) return;
    const patch: Record<string, unknown> = { ...status };
    for (const k of ['reason', 'message', 'podIP', 'podIPs', 'initContainerStatuses'] as const) {
      if (patch[k] === undefined && this.pod.status?.[k] !== undefined) patch[k] = null;
    }
    const md = this.pod.metadata;
    try {
      const updated = await this.d.client.mergePatch<Pod>(`/api/v1/namespaces/${encodeURIComponent(md.namespace ?? '')}/pods/${encodeURIComponent(md.name ?? '')}/status`, { status: patch });
      if (updated?.metadata?.uid === this.uid) {
        this.pod = { ...this.pod, status: updated.status ?? status };
        const rv = updated.metadata.resourceVersion;
        this.lastWrite = { sent: fp, stored: statusFingerprint(this.pod.status), ...(rv ? { resourceVersion: rv } : {}) };
      } else this.lastWrite = { sent: fp, stored: fp };
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  // ---------- views for the HTTP endpoint and stats ----------

  /** The log file `kubectl logs [--previous]` reads for a container; undefined when there is no such container. */
  logTarget(container: string, previous: boolean): { file?: { path: string; running: boolean }; waitingReason?: string } | undefined {
    const c = this.containers.get(container);
    if (!c) return undefined;
    const ran = c.instance !== undefined || c.terminated !== undefined;
    const waitingReason = c.waiting?.reason ?? 'ContainerCreating';
    if (!ran && !previous) return { waitingReason };
    const n = previous ? (ran ? c.restartCount - 1 : c.restartCount - 1) : c.restartCount;
    const path = this.logPath(container, n);
    if (n < 0 || !existsSync(path)) return previous ? {} : { waitingReason };
    return { file: { path, running: !previous && !!c.instance?.proc.running } };
  }

  /** Whether the instance writing `path` is still running. */
  instanceRunning(container: string, path: string): boolean {
    const inst = this.containers.get(container)?.instance;
    return !!inst && inst.proc.running && inst.logPath === path;
  }

  containerNames(): string[] {
    return [...this.containers.keys()];
  }

  /** Containers with a process (for stats). */
  runningContainers(): { name: string; startTime: string }[] {
    return [...this.containers.values()].filter((c) => c.instance?.proc.running).map((c) => ({ name: c.name, startTime: c.instance!.startedAt }));
  }

  get podStartTime(): string {
    return this.startTime;
  }
}

/**
 * Whether `seen` is an older version of the object than `written`. Resource versions are opaque to clients in general;
 * the lab's API server (the only one this kubelet talks to) issues increasing integers, and anything else counts as
 * not older, so the kubelet writes again rather than leave a status it did not write.
 */
function resourceVersionBefore(seen: string | undefined, written: string | undefined): boolean {
  if (!seen || !written || !/^\d+$/.test(seen) || !/^\d+$/.test(written)) return false;
  return BigInt(seen) < BigInt(written);
}
