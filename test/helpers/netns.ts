// Network namespaces for tests that need a real LAN: namespaces, veth pairs and bridges made with iproute2, child
// processes started inside them, and a cleanup that removes all of it (kills children by pid, deletes namespaces
// and root-netns links) also when the test failed. Names carry the caller's prefix and the pid, so parallel runs
// do not collide.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every namespace and host link a test process makes is also written to `<REGISTRY>/<pid>.<n>` (one file per Netns),
 * so that a run killed before its cleanup (a CI timeout, ^C) does not leave a LAN holding the same addresses as the
 * next run's: the next Netns sweeps what dead processes left. cleanup() removes its file: a file left by a process
 * that ended normally would make a later sweep delete names that a live process whose pid shares the tag
 * (pid % 10000) uses.
 */
export const REGISTRY = '/run/metallb-test-netns';
let registrations = 0;

export const isRoot = (): boolean => process.getuid?.() === 0;

export function run(cmd: string, args: readonly string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    if (opts.allowFail) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

export class Netns {
  private readonly namespaces: string[] = [];
  private readonly rootLinks: string[] = [];
  private readonly children: ChildProcess[] = [];
  /** A short tag unique to this process: `<prefix><tag>` names stay under 15 characters. */
  readonly tag = (process.pid % 10000).toString(36);

  /** This Netns's file under REGISTRY. */
  readonly registryFile = join(REGISTRY, `${process.pid}.${registrations++}`);

  constructor(readonly prefix: string) {
    if (isRoot()) sweepDeadRuns();
  }

  private register(kind: 'netns' | 'link', name: string): void {
    mkdirSync(REGISTRY, { recursive: true });
    appendFileSync(this.registryFile, `${kind} ${name}\n`);
  }

  /** Records a host link made outside veth() (a bridge) so that cleanup() and a later sweep remove it. */
  trackLink(name: string): void {
    this.rootLinks.push(name);
    this.register('link', name);
  }

  name(suffix: string): string {
    const n = `${this.prefix}${suffix}${this.tag}`;
    if (n.length > 15) throw new Error(`${n} is longer than 15 characters`);
    return n;
  }

  addNamespace(suffix: string): string {
    const ns = this.name(suffix);
    run('ip', ['netns', 'del', ns], { allowFail: true });
    this.register('netns', ns);
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // Addresses work at once (no duplicate address detection wait), as in the lab.
    this.sysctl(ns, 'net.ipv6.conf.default.accept_dad', '0');
    this.sysctl(ns, 'net.ipv6.conf.all.accept_dad', '0');
    return ns;
  }

  sysctl(ns: string | undefined, key: string, value: string): void {
    const args = ['sysctl', '-qw', `${key}=${value}`];
    if (ns) run('ip', ['netns', 'exec', ns, ...args]);
    else run(args[0]!, args.slice(1));
  }

  /** A veth pair; an end whose namespace is undefined stays in the root namespace. */
  veth(a: { ns?: string; name: string; mac?: string }, b: { ns?: string; name: string; mac?: string }): void {
    const args = ['link', 'add', a.name];
    if (a.ns) args.push('netns', a.ns);
    if (a.mac) args.push('address', a.mac);
    args.push('type', 'veth', 'peer', 'name', b.name);
    if (b.ns) args.push('netns', b.ns);
    if (b.mac) args.push('address', b.mac);
    if (!a.ns) run('ip', ['link', 'del', a.name], { allowFail: true });
    if (!a.ns) this.register('link', a.name);
    if (!b.ns) this.register('link', b.name);
    run('ip', args);
    if (!a.ns) this.rootLinks.push(a.name);
    if (!b.ns) this.rootLinks.push(b.name);
  }

  ip(ns: string | undefined, ...args: string[]): string {
    return run('ip', ns ? ['-n', ns, ...args] : args);
  }

  exec(ns: string, cmd: string, args: readonly string[], opts: { allowFail?: boolean } = {}): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** A process inside `ns`, killed by cleanup() if still running. */
  spawn(ns: string, cmd: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.push(child);
    return child;
  }

  async cleanup(): Promise<void> {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        c.kill('SIGTERM');
        const exited = once(c, 'exit');
        const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
        await exited.catch(() => undefined);
        clearTimeout(timer);
      }
    }
    for (const l of this.rootLinks) run('ip', ['link', 'del', l], { allowFail: true });
    for (const ns of this.namespaces) run('ip', ['netns', 'del', ns], { allowFail: true });
    rmSync(this.registryFile, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes what test processes that are no longer running left behind (their processes in those namespaces too). */
export function sweepDeadRuns(): void {
  let files: string[];
  try {
    files = readdirSync(REGISTRY);
  } catch {
    return;
  }
  for (const f of files) {
    const pid = Number(f.split('.')[0]);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    const entries = readFileSync(join(REGISTRY, f), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ') as ['netns' | 'link', string]);
    for (const [kind, name] of entries) {
      if (kind !== 'netns') continue;
      for (const p of run('ip', ['netns', 'pids', name], { allowFail: true }).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      run('ip', ['netns', 'del', name], { allowFail: true });
    }
    for (const [kind, name] of entries) if (kind === 'link') run('ip', ['link', 'del', name], { allowFail: true });
    rmSync(join(REGISTRY, f), { force: true });
  }
}

/** Reads JSON lines from a child's stdout; `next(pred)` waits for the first matching line not yet consumed. */
export class JsonLines<T = Record<string, unknown>> {
  private readonly lines: T[] = [];
  private waiters: { pred: (v: T) => boolean; resolve: (v: T) => void }[] = [];
  private buffer = '';
  stderr = '';

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (!line.trim()) continue;
        let v: T;
        try {
          v = JSON.parse(line) as T;
        } catch {
          continue;
        }
        this.lines.push(v);
        this.waiters = this.waiters.filter((w) => {
          if (!w.pred(v)) return true;
          this.lines.splice(this.lines.indexOf(v), 1);
          w.resolve(v);
          return false;
        });
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      this.stderr += c;
    });
  }

  next(pred: (v: T) => boolean = () => true, timeoutMs = 20_000): Promise<T> {
    const i = this.lines.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.lines.splice(i, 1)[0]!);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching line within ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      const done = (v: T) => {
        clearTimeout(timer);
        resolve(v);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  send(obj: unknown): void {
    this.child.stdin!.write(JSON.stringify(obj) + '\n');
  }
}
