// Network namespaces for the BGP/BFD tests: a switch (a bridge in a namespace of its own), a router, and nodes,
// each with `eth0` on the switch. Cutting a node's switch port (`cutNode`) is a pulled cable: the router's own link
// stays up, so only BGP/BFD can notice. Names start with `tbg-` and addresses come from 10.95.0.0/16 and
// fd00:95::/48, as this helper's tests were given.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Machine {
  netns: string;
  ipv4: string;
  ipv6: string;
  /** The switch port this machine's eth0 is plugged into. */
  port: string;
}

export interface BgpNet {
  id: string;
  switchNetns: string;
  router: Machine;
  nodes: Machine[];
  /** A temp directory (world-traversable, for FRR's user) removed by destroy(). */
  dir: string;
  /** Unplugs / plugs a node's cable at the switch. */
  cutNode(i: number): void;
  restoreNode(i: number): void;
  exec(netns: string, args: string[]): string;
  destroy(): void;
}

const ip = (args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

/** `subnet` picks 10.95.<subnet>.0/24 and fd00:95:<subnet>::/64 (namespaces isolate them anyway; it helps logs). */
export function createBgpNet(opts: { nodes: number; subnet?: number }): BgpNet {
  if (process.getuid?.() !== 0) throw new Error('the BGP namespace tests need root (ip netns, veth, bridges)');
  const id = randomBytes(2).toString('hex');
  const subnet = opts.subnet ?? 1;
  const sw = `tbg-${id}-s`;
  const made: string[] = [];
  const machine = (name: string, host: number, port: string): Machine => ({
    netns: `tbg-${id}-${name}`, ipv4: `10.95.${subnet}.${host}`, ipv6: `fd00:95:${subnet}::${host.toString(16)}`, port,
  });
  const router = machine('r', 1, 'r');
  const nodes = Array.from({ length: opts.nodes }, (_, i) => machine(`n${i + 1}`, 11 + i, `n${i + 1}`));
  const dir = mkdtempSync(join(tmpdir(), `tbg-${id}-`));
  chmodSync(dir, 0o755);
  const destroy = (): void => {
    for (const ns of made.reverse()) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    made.length = 0;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    ip(['netns', 'add', sw]);
    made.push(sw);
    ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    ip(['-n', sw, 'link', 'set', 'br0', 'up']);
    for (const m of [router, ...nodes]) {
      ip(['netns', 'add', m.netns]);
      made.push(m.netns);
      ip(['link', 'add', 'eth0', 'netns', m.netns, 'type', 'veth', 'peer', 'name', m.port, 'netns', sw]);
      ip(['-n', sw, 'link', 'set', m.port, 'master', 'br0', 'up']);
      // Through /proc: procps' sysctl is not on a fresh Debian.
      execFileSync('ip', ['netns', 'exec', m.netns, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad']);
      ip(['-n', m.netns, 'link', 'set', 'lo', 'up']);
      ip(['-n', m.netns, 'addr', 'add', `${m.ipv4}/24`, 'dev', 'eth0']);
      ip(['-n', m.netns, 'addr', 'add', `${m.ipv6}/64`, 'dev', 'eth0', 'nodad']);
      ip(['-n', m.netns, 'link', 'set', 'eth0', 'up']);
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    id, switchNetns: sw, router, nodes, dir,
    cutNode: (i) => void ip(['-n', sw, 'link', 'set', nodes[i]!.port, 'down']),
    restoreNode: (i) => void ip(['-n', sw, 'link', 'set', nodes[i]!.port, 'up']),
    exec: (netns, args) => execFileSync('ip', ['netns', 'exec', netns, ...args], { encoding: 'utf8' }),
    destroy,
  };
}

/** Waits for an IPv6 link-local address on eth0 (the kernel adds it a moment after the link comes up). */
export async function waitLinkLocal(netns: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!/inet6 fe80::/.test(ip(['-n', netns, 'addr', 'show', 'dev', 'eth0']))) {
    if (Date.now() > deadline) throw new Error(`${netns}: no link-local address on eth0`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface DriverEvent {
  event: string;
  [k: string]: unknown;
}

/**
 * Our speaker, in a child process inside a node's namespace (test/helpers/bgp-node-driver.ts), driven over
 * stdin/stdout with JSON lines.
 */
export class NodeDriver {
  private nextId = 1;
  private readonly replies = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly events: DriverEvent[] = [];
  private readonly listeners: ((e: DriverEvent) => void)[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';

  private constructor(private readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let msg: { id?: number; ok?: boolean; result?: unknown; error?: string; event?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      if (msg.id !== undefined) {
        const r = this.replies.get(msg.id);
        this.replies.delete(msg.id);
        if (msg.ok) r?.resolve(msg.result);
        else r?.reject(new Error(msg.error ?? 'driver error'));
      } else if (msg.event) {
        const e = msg as DriverEvent;
        this.events.push(e);
        for (const l of this.listeners.slice()) l(e);
      }
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 200_000) this.stderr = this.stderr.slice(-100_000);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    void this.exited.then(() => {
      for (const r of this.replies.values()) r.reject(new Error(`driver exited: ${this.stderr.slice(-1000)}`));
      this.replies.clear();
    });
  }

  /** `script`: a bundled driver (.mjs, run by plain node, as production code runs) instead of the TypeScript one. */
  static async start(netns: string, nodeName: string, opts: { env?: Record<string, string>; script?: string; nodeFlags?: string[] } = {}): Promise<NodeDriver> {
    const program = [...(opts.nodeFlags ?? []), ...(opts.script ? [opts.script] : ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'bgp-node-driver.ts')])];
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, ...program, nodeName], {
      cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env },
    });
    const d = new NodeDriver(child);
    await d.request('ping', {}, 30_000);
    return d;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  request<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 20_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        reject(new Error(`driver: no reply to ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.replies.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** Resolves with the first event (past or future) that matches. */
  waitEvent(pred: (e: DriverEvent) => boolean, timeoutMs = 30_000, since = 0): Promise<DriverEvent> {
    const have = this.events.slice(since).find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.splice(this.listeners.indexOf(on), 1);
        reject(new Error(`driver: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(-10))}`));
      }, timeoutMs);
      const on = (e: DriverEvent): void => {
        if (!pred(e)) return;
        clearTimeout(timer);
        this.listeners.splice(this.listeners.indexOf(on), 1);
        resolve(e);
      };
      this.listeners.push(on);
    });
  }

  waitSession(peer: string, state: string, timeoutMs = 30_000, since = 0): Promise<DriverEvent> {
    return this.waitEvent((e) => e.event === 'session' && e.peer === peer && e.state === state, timeoutMs, since);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.request('close', {}, 5000).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Kills the process without letting it say goodbye. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Polls `fn` until it returns a value that `ok` accepts. */
export async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await fn();
      if (ok(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not reached within ${timeoutMs} ms; last value: ${JSON.stringify(last)}${lastErr ? `; last error: ${(lastErr as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
