// Test helper: a whole lab (`metallb lab up`) for end-to-end tests, serialized across test files.
//
//   const lab = await startLab(t, { nodes: 2, loadBalancer: false });   // t.after(() => lab.down()) is registered
//   await lab.kubectlOk(['create', 'deployment', 'web', '--image=nginx']);
//   const r = await lab.exec('client', ['curl', '-s', `http://${ip}/`]);
//   await lab.waitFor('3 pods ready', async () => (await lab.pods('default')).filter(isReady).length === 3);
//
// Only one lab runs at a time on a host (`lab up` refuses a second one with the same name): startLab takes a lock
// (a directory in /run/lock, stolen when its owner is dead) that down() releases, so test files running in parallel
// wait for each other instead of failing. `labSkip` is the reason to skip when not root or tools are missing.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import type { LabStatusJson } from '../../src/lab/status.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'metallb.js');
const LOCK = '/run/lock/metallb-lab-tests';

/** The lab name tests use (`METALLB_TEST_LAB`, default `lab`). */
export const TEST_LAB = process.env.METALLB_TEST_LAB ?? 'lab';

/** Why lab tests cannot run here, or undefined when they can. */
export const labSkip: string | undefined = (() => {
  // A CI pass that runs the suite a second time (another Node.js) may leave the minutes-long lab tests to the first.
  if (process.env.METALLB_TEST_SKIP_LAB === '1') return 'METALLB_TEST_SKIP_LAB=1';
  if (process.getuid?.() !== 0) return 'the lab needs root';
  for (const tool of ['ip', 'nsenter', 'nft', 'kubectl', 'curl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
})();

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCmd(file: string, args: readonly string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', rej);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      res({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // a command that exits without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

export const metallb = (args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> =>
  runCmd(process.execPath, [BIN, ...args], opts);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Takes the cross-process lab-test lock (waits while another live process holds it). */
export async function acquireLabLock(timeoutMs = 60 * 60_000): Promise<() => void> {
  const until = Date.now() + timeoutMs;
  mkdirSync(dirname(LOCK), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), `${process.pid}\n`);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        rmSync(LOCK, { recursive: true, force: true });
      };
      process.once('exit', release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(join(LOCK, 'pid'), 'utf8').trim());
    } catch {
      /* being written or removed */
    }
    if (owner > 0 && !pidAlive(owner)) rmSync(LOCK, { recursive: true, force: true });
    else if (owner === 0 && existsSync(LOCK)) {
      // A lock dir without a pid for long is a crash between mkdir and the write.
      await sleep(500);
      try {
        readFileSync(join(LOCK, 'pid'));
      } catch {
        rmSync(LOCK, { recursive: true, force: true });
      }
    }
    if (Date.now() > until) throw new Error(`lab test lock ${LOCK} still held by pid ${owner}`);
    await sleep(300);
  }
}

export interface LabOptions {
  nodes?: number;
  loadBalancer?: boolean;
  name?: string;
  /** `lab up --timeout` (default 180 s: CI machines are slow). */
  timeoutMs?: number;
  /** More `lab up` flags, e.g. `['--hpa-downscale-stabilization', '30s']`. */
  upArgs?: string[];
  /** Take the lab-test lock (default true); a lab with a name of its own may skip it (benchmarks during development). */
  lock?: boolean;
}

interface Obj {
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [k: string]: unknown;
}

export class Lab {
  private released = false;

  constructor(
    readonly name: string,
    readonly status: LabStatusJson,
    private readonly releaseLock: () => void,
  ) {}

  get kubeconfig(): string {
    return this.status.kubeconfig;
  }

  get stateDir(): string {
    return dirname(this.status.kubeconfig);
  }

  /** `metallb lab <sub> … --name <this lab>`. */
  lab(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return metallb(['lab', ...args, '--name', this.name], opts);
  }

  kubectl(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return runCmd('kubectl', ['--kubeconfig', this.kubeconfig, ...args], opts);
  }

  /** kubectl that must succeed; returns stdout. */
  async kubectlOk(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.kubectl(args, opts);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  async getJson<T = Obj>(args: readonly string[]): Promise<T> {
    return JSON.parse(await this.kubectlOk([...args, '-o', 'json'])) as T;
  }

  async list(kind: string, namespace?: string, selector?: string): Promise<Obj[]> {
    const args = ['get', kind, ...(namespace ? ['-n', namespace] : ['-A'])];
    if (selector) args.push('-l', selector);
    return (await this.getJson<{ items: Obj[] }>(args)).items;
  }

  pods(namespace: string, selector?: string): Promise<Obj[]> {
    return this.list('pods', namespace, selector);
  }

  /** Runs a command in a lab machine's namespace (`node1`, `client`). */
  exec(machine: string, cmd: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
    const m = machine === 'client' ? this.status.client : this.status.nodes.find((n) => n.name === machine);
    if (!m) throw new Error(`no machine ${machine} in the lab`);
    return runCmd('ip', ['netns', 'exec', m.netns, ...cmd], opts);
  }

  /** curl from a machine; resolves with the body (throws on a failed request). */
  async curl(machine: string, url: string, timeoutS = 3): Promise<string> {
    const r = await this.exec(machine, ['curl', '-sS', '--max-time', String(timeoutS), url], { timeoutMs: (timeoutS + 5) * 1000 });
    if (r.code !== 0) throw new Error(`curl ${url} from ${machine}: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  /** Polls `check` until true; the error names `what` and the last state. */
  async waitFor(what: string, check: () => Promise<boolean | string>, timeoutMs = 120_000, intervalMs = 500): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const r = await check();
        if (r === true) return;
        last = typeof r === 'string' ? r : 'false';
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > until) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (last: ${last})`);
      await sleep(intervalMs);
    }
  }

  /** A component's log (`apiserver`, `kubelet-node1`, `supervisor` …), for failure messages. */
  log(component: string): string {
    try {
      return readFileSync(join(this.stateDir, 'logs', `${component}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** `lab down` and release the lock; idempotent. Throws when something was left behind. */
  async down(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      const r = await this.lab(['down'], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`lab down failed: ${r.stderr}`);
    } finally {
      this.releaseLock();
    }
  }
}

export const isReady = (o: Obj): boolean =>
  ((o.status?.conditions as Array<{ type: string; status: string }> | undefined) ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * Starts a lab (waiting for the test lock first) and registers `down()` with `t.after`. A failed `lab up` is torn down
 * before the error (with the lab's logs' tails) is thrown.
 */
export async function startLab(t: TestContext | undefined, opts: LabOptions = {}): Promise<Lab> {
  const asked = Date.now();
  const release = opts.lock === false ? () => undefined : await acquireLabLock();
  const locked = Date.now();
  const name = opts.name ?? TEST_LAB;
  const args = ['lab', 'up', '--name', name, '--nodes', String(opts.nodes ?? 3), '--timeout', `${Math.round((opts.timeoutMs ?? 180_000) / 1000)}s`];
  if (opts.loadBalancer === false) args.push('--no-loadbalancer');
  args.push(...(opts.upArgs ?? []));
  let up: RunResult;
  try {
    // Remains of an earlier crashed run must not fail this one.
    await metallb(['lab', 'down', '--name', name], { timeoutMs: 120_000 });
    up = await metallb(args, { timeoutMs: (opts.timeoutMs ?? 180_000) * 3 + 60_000 });
  } catch (err) {
    release();
    throw err;
  }
  if (up.code !== 0) {
    const st = await metallb(['lab', 'status', '--name', name]);
    const logs = await collectLogTails(name);
    await metallb(['lab', 'down', '--name', name], { timeoutMs: 120_000 });
    release();
    throw new Error(`lab up failed (${up.code}):\n${up.stderr}\n${st.stdout}\n${logs}`);
  }
  // Where a lab test's time goes, in CI's log: waiting for another test's lab, and `lab up` itself.
  process.stderr.write(`lab "${name}": ${((locked - asked) / 1000).toFixed(1)} s waiting for the lab lock, lab up --nodes ${opts.nodes ?? 3} ${((Date.now() - locked) / 1000).toFixed(1)} s\n`);
  const status = await metallb(['lab', 'status', '-o', 'json', '--name', name]);
  const lab = new Lab(name, JSON.parse(status.stdout) as LabStatusJson, release);
  t?.after(() => lab.down());
  return lab;
}

async function collectLogTails(name: string): Promise<string> {
  const st = await metallb(['lab', 'status', '-o', 'json', '--name', name]);
  if (st.code !== 0) return '';
  const dir = join(dirname((JSON.parse(st.stdout) as LabStatusJson).kubeconfig), 'logs');
  const r = await runCmd('sh', ['-c', `for f in ${dir}/*.log; do echo "== $f"; tail -n 15 "$f"; done`]);
  return r.stdout;
}
