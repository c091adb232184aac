// One running instance of a container: its process, its probes (startup holds liveness and readiness; results flip
// started/ready or stop the instance), its postStart and preStop hooks, and how it is stopped (preStop, SIGTERM to
// the process group, the grace period, SIGKILL). The pod worker owns instances and learns of changes through
// `InstanceHooks`.
import type { EventType } from '../../k8s/events.js';
import { execInContainer, httpProbe, ProbeWorker, tcpProbe, type ProbeTarget, type ProbeType } from './probes.js';
import type { ContainerProcess } from './runtime.js';
import type { Container, LifecycleHandler } from './types.js';

export interface InstanceHooks {
  event(type: EventType, reason: string, message: string): void;
  /** Something the pod status shows changed (ready, started, stopping). */
  changed(): void;
  /** Address probes and hooks use when they name no host. */
  podIP(): string;
  /** SIGKILLs what is left in the container's cgroup. */
  killStrays(): void;
  /** The pod's termination grace period, seconds. */
  graceSeconds(): number;
  probeTimeScale: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ContainerInstance {
  readonly startedAt: string;
  readonly probes: ProbeWorker[] = [];
  /** False until the startup probe succeeds (true without one). */
  started: boolean;
  /** False until the readiness probe succeeds (true without one). */
  ready: boolean;
  /** Why the kubelet is stopping it, once it is. */
  stopping?: string;
  /** The setup script finished the container's namespaces (exec hooks may enter them). */
  private setUp = false;

  constructor(
    readonly spec: Container,
    readonly proc: ContainerProcess,
    readonly env: Record<string, string>,
    readonly logPath: string,
    /** `setpriv …` the workload runs through: exec hooks and probes run as the container's user too. */
    readonly execPrefix: string[],
    private readonly hooks: InstanceHooks,
  ) {
    this.startedAt = proc.startedAt.toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.started = !spec.startupProbe;
    this.ready = !spec.readinessProbe;
  }

  get running(): boolean {
    return this.proc.running;
  }

  /** Ready as the container status reports it. */
  get reportedReady(): boolean {
    return this.running && this.started && this.ready && !this.stopping;
  }

  /** Probes and the postStart hook enter the container's namespaces: they start once those are complete. */
  async activate(): Promise<void> {
    if (!(await this.proc.whenSetUp())) return;
    this.setUp = true;
    if (!this.running || this.stopping) return;
    this.startProbes();
    if (this.spec.lifecycle?.postStart) await this.runPostStart(this.spec.lifecycle.postStart);
  }

  target(): ProbeTarget | undefined {
    if (!this.running) return undefined;
    return { podIP: this.hooks.podIP(), container: this.spec, pid: this.proc.pid, env: this.env, execPrefix: this.execPrefix };
  }

  private startProbes(): void {
    const make = (type: ProbeType): ProbeWorker | undefined => {
      const p = type === 'liveness' ? this.spec.livenessProbe : type === 'readiness' ? this.spec.readinessProbe : this.spec.startupProbe;
      if (!p) return undefined;
      return new ProbeWorker(
        type,
        p,
        () => this.target(),
        {
          changed: (t, ok) => this.probeChanged(t, ok),
          failed: (t, message) => {
            if (this.stopping || !this.running) return;
            const what = t === 'liveness' ? 'Liveness' : t === 'readiness' ? 'Readiness' : 'Startup';
            this.hooks.event('Warning', 'Unhealthy', `${what} probe failed: ${message}`);
          },
        },
        this.hooks.probeTimeScale,
      );
    };
    const startup = make('startup');
    const liveness = make('liveness');
    const readiness = make('readiness');
    for (const w of [startup, liveness, readiness]) if (w) this.probes.push(w);
    if (startup) {
      liveness?.setPaused(true);
      readiness?.setPaused(true);
    }
    for (const w of this.probes) w.start();
  }

  private probeChanged(type: ProbeType, ok: boolean): void {
    if (this.stopping || !this.running) return;
    const name = this.spec.name;
    if (type === 'readiness') {
      this.ready = ok;
    } else if (type === 'startup') {
      if (ok) {
        this.started = true;
        for (const w of this.probes) if (w.type !== 'startup') w.setPaused(false);
      } else {
        void this.stop(this.spec.startupProbe?.terminationGracePeriodSeconds ?? this.hooks.graceSeconds(), `Container ${name} failed startup probe, will be restarted`);
      }
    } else if (!ok) {
      void this.stop(this.spec.livenessProbe?.terminationGracePeriodSeconds ?? this.hooks.graceSeconds(), `Container ${name} failed liveness probe, will be restarted`);
    }
    this.hooks.changed();
  }

  /** Runs a lifecycle handler; the error text, or undefined on success. */
  async runHandler(h: LifecycleHandler, timeoutMs: number): Promise<string | undefined> {
    if (h.exec) {
      const r = await execInContainer(h.exec.command ?? [], { pid: this.proc.pid, env: this.env, execPrefix: this.execPrefix }, timeoutMs);
      if (r.timedOut) return `command ${JSON.stringify(h.exec.command)} timed out`;
      return r.code === 0 ? undefined : `command ${JSON.stringify(h.exec.command ?? [])} exited with ${r.code}: ${r.output.trim()}`;
    }
    const t = this.target();
    if (!t) return undefined;
    if (h.httpGet) {
      const r = await httpProbe(h.httpGet, t, timeoutMs);
      return r.ok ? undefined : r.message;
    }
    if (h.tcpSocket) {
      const r = await tcpProbe(h.tcpSocket, t, timeoutMs);
      return r.ok ? undefined : r.message;
    }
    if (h.sleep) await sleep(Math.min(timeoutMs, h.sleep.seconds * 1000));
    return undefined;
  }

  private async runPostStart(h: LifecycleHandler): Promise<void> {
    const err = await this.runHandler(h, 30_000);
    if (err && this.running) {
      this.hooks.event('Warning', 'FailedPostStartHook', `PostStartHook failed: ${err}`);
      await this.stop(this.hooks.graceSeconds(), 'FailedPostStartHook');
    }
  }

  /** preStop hook, SIGTERM, the grace period, SIGKILL; resolves when the process is gone. */
  async stop(graceSeconds: number, why: string): Promise<void> {
    if (!this.running) return;
    if (this.stopping) {
      await this.proc.exited;
      return;
    }
    this.stopping = why;
    this.ready = false;
    for (const p of this.probes) p.stop();
    this.hooks.changed();
    const deadline = Date.now() + Math.max(0, graceSeconds) * 1000;
    this.hooks.event('Normal', 'Killing', why.startsWith('Container ') ? why : `Stopping container ${this.spec.name}`);
    // A container stopped before its setup finished has not started: no preStop (an exec hook would enter the
    // node's or a half-built mount namespace).
    const pre = this.setUp ? this.spec.lifecycle?.preStop : undefined;
    if (pre && graceSeconds > 0) {
      const err = await this.runHandler(pre, Math.max(1, deadline - Date.now()));
      if (err) this.hooks.event('Warning', 'FailedPreStopHook', `PreStopHook failed: ${err}`);
    }
    this.proc.signal('SIGTERM');
    const left = deadline - Date.now();
    const done = await Promise.race([this.proc.exited.then(() => true), sleep(Math.max(0, left)).then(() => false)]);
    if (!done) {
      this.proc.signal('SIGKILL');
      this.hooks.killStrays();
    }
    await this.proc.exited;
  }

  /** After the process ended: probes stop. */
  ended(): void {
    for (const p of this.probes) p.stop();
  }
}
