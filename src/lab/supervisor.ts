// The lab's supervisor: one detached process per lab that runs every component, restarts a crashed one with back-off,
// re-reads the node list on SIGHUP (`lab node add|remove`) and stops everything in order on SIGTERM.
// Each component runs in its own cgroup under the lab's (found by `lab down` even if this process is killed).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import { componentProcsFiles } from './cgroup.js';
import { LAB_ENV } from './cleanup.js';
import { componentServerURL, componentSpecs, metallbBin, type ComponentSpec } from './components.js';
import { readIdentities, writeComponentKubeconfigs } from './credentials.js';
import { paths, readState, writeJson, type LabState, type ProcessRecord } from './state.js';

/** Restart delay after the n-th consecutive failure (n ≥ 1): 1 s, 2 s, 4 s … 30 s, like a kubelet's back-off. */
export function restartDelayMs(consecutiveFailures: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, consecutiveFailures - 1));
}

/** A run this long counts as healthy: the next failure starts the back-off again. */
export const HEALTHY_RUN_MS = 60_000;

/** Puts the process into its cgroups, then becomes the command (so the pid recorded is the component's). */
const CGROUP_EXEC = 'for f in $MLB_CGROUP_PROCS; do echo $$ > "$f" || exit 111; done; exec "$@"';

export function commandLine(spec: ComponentSpec, state: LabState): string[] {
  const node = [process.execPath, metallbBin(state.root), ...spec.args];
  // Only the network namespace: a kubelet in a mount namespace of its own would create its pods' namespaces
  // (`ip netns add` bind mounts) where the host cannot see them (`ip netns`, `lab down`, tests). Containers get a
  // sysfs of their own network namespace from the kubelet, so hostNetwork pods see the node's interfaces.
  return spec.netns ? ['nsenter', `--net=/run/netns/${spec.netns}`, '--', ...node] : node;
}

class Component {
  child?: ChildProcess;
  restarts = 0;
  failures = 0;
  startedAt = 0;
  lastExit?: string;
  timer?: NodeJS.Timeout;
  wanted = true;

  constructor(
    public spec: ComponentSpec,
    private readonly sup: Supervisor,
  ) {}

  start(): void {
    this.timer = undefined;
    if (!this.wanted) return;
    const { state, log } = this.sup;
    const argv = commandLine(this.spec, state);
    const out = openSync(paths(state.plan.stateDir).log(this.spec.name), 'a');
    try {
      this.child = spawn('sh', ['-c', CGROUP_EXEC, 'sh', ...argv], {
        stdio: ['ignore', out, out],
        cwd: state.root,
        env: {
          ...process.env,
          [LAB_ENV]: state.plan.name,
          MLB_CGROUP_PROCS: componentProcsFiles(state.plan.cgroup, this.spec.name).join(' '),
        },
      });
    } finally {
      closeSync(out);
    }
    this.startedAt = Date.now();
    log.info({ component: this.spec.name, pid: this.child.pid, restarts: this.restarts }, 'started');
    const child = this.child;
    child.once('error', (err) => log.error({ component: this.spec.name, err: err.message }, 'cannot start'));
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.lastExit = signal ? `signal ${signal}` : `exit code ${code}`;
      if (!this.wanted) {
        this.sup.changed();
        return;
      }
      const ran = Date.now() - this.startedAt;
      this.failures = ran >= HEALTHY_RUN_MS ? 1 : this.failures + 1;
      const delay = restartDelayMs(this.failures);
      log.warn({ component: this.spec.name, exit: this.lastExit, ranMs: ran, restartInMs: delay }, 'exited; restarting');
      this.restarts++;
      this.timer = setTimeout(() => this.start(), delay);
      this.sup.changed();
    });
    this.sup.changed();
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs: number): Promise<void> {
    this.wanted = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  record(): ProcessRecord {
    return {
      name: this.spec.name,
      pid: this.child?.pid ?? null,
      restarts: this.restarts,
      state: this.child ? 'running' : this.wanted ? 'backoff' : 'stopped',
      ...(this.startedAt ? { startedAt: new Date(this.startedAt).toISOString() } : {}),
      ...(this.lastExit ? { lastExit: this.lastExit } : {}),
    };
  }
}

export class Supervisor {
  readonly components = new Map<string, Component>();
  private stopping = false;
  private writeTimer?: NodeJS.Timeout;

  constructor(
    public state: LabState,
    readonly log: Logger,
  ) {}

  /**
   * Starts the API server first and the rest once it serves (its admin kubeconfig is written after it listens, and its
   * CA exists then): components started earlier would only fail and wait out a back-off.
   */
  async start(): Promise<void> {
    const p = paths(this.state.plan.stateDir);
    mkdirSync(p.logs, { recursive: true });
    writeFileSync(p.supervisorPid, `${process.pid}\n`);
    const all = componentSpecs(this.state);
    await this.reconcile(all.filter((s) => s.tier === 0));
    while (!existsSync(p.kubeconfig) && !this.stopping) await new Promise((r) => setTimeout(r, 50));
    if (this.stopping) return;
    writeComponentKubeconfigs(this.state.plan, componentServerURL(this.state.plan), readIdentities(p.pki));
    await this.reconcile(all);
  }

  /** Starts what is wanted and not running, stops what is no longer wanted (node removed). */
  reconcile(specs: readonly ComponentSpec[]): Promise<void> {
    const wanted = new Map(specs.map((s) => [s.name, s]));
    const stops: Promise<void>[] = [];
    for (const [name, c] of this.components) {
      if (wanted.has(name)) continue;
      this.components.delete(name);
      stops.push(c.stop(5000));
    }
    for (const spec of specs) {
      if (this.components.has(spec.name)) continue;
      const c = new Component(spec, this);
      this.components.set(spec.name, c);
      c.start();
    }
    this.changed();
    return Promise.all(stops).then(() => this.changed());
  }

  /** SIGHUP: the state file changed (nodes added or removed). */
  async reload(): Promise<void> {
    if (this.stopping) return;
    const st = readState(this.state.plan.stateDir);
    if (!st) {
      this.log.error({ stateDir: this.state.plan.stateDir }, 'state file unreadable; keeping the current components');
      return;
    }
    this.state = st;
    await this.reconcile(componentSpecs(st));
  }

  /** Stops node components, then controllers, then the API server. */
  async stop(): Promise<void> {
    this.stopping = true;
    const tiers = [...new Set([...this.components.values()].map((c) => c.spec.tier))].sort((a, b) => b - a);
    for (const tier of tiers) {
      await Promise.all([...this.components.values()].filter((c) => c.spec.tier === tier).map((c) => c.stop(5000)));
    }
    this.writeNow();
  }

  /** Records the processes (debounced): `lab status` reads them. */
  changed(): void {
    if (this.writeTimer) return;
    this.writeTimer = setTimeout(() => this.writeNow(), 50);
  }

  private writeNow(): void {
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    try {
      writeJson(paths(this.state.plan.stateDir).processes, [...this.components.values()].map((c) => c.record()));
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot write processes.json');
    }
  }
}

/** `metallb lab supervise`: runs until SIGTERM/SIGINT. */
export async function runSupervisor(stateDir: string, log: Logger): Promise<void> {
  const state = readState(stateDir);
  if (!state) throw new Error(`no lab state in ${stateDir}`);
  for (const f of componentProcsFiles(state.plan.cgroup, 'supervisor')) writeFileSync(f, `${process.pid}\n`);
  const sup = new Supervisor(state, log);
  sup.start().then(
    () => log.info({ lab: state.plan.name, components: [...sup.components.keys()] }, 'supervisor running'),
    (err: unknown) => log.error({ err: String(err) }, 'starting the components failed'),
  );
  await new Promise<void>((resolve) => {
    let done = false;
    const stop = (signal: string): void => {
      if (done) return;
      done = true;
      log.info({ signal }, 'stopping the lab components');
      sup.stop().then(resolve, resolve);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      log.info('SIGHUP: re-reading the lab state');
      sup.reload().catch((err: unknown) => log.error({ err: String(err) }, 'reload failed'));
    });
  });
  log.info('supervisor stopped');
}
