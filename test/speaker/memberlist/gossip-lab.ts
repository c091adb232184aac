// A flat LAN in network namespaces for gossip tests and benchmarks: a bridge namespace `<prefix>-<id>-br`
// and member namespaces `<prefix>-<id>-<i>` (<net>.<subnet>.<i>/24; by default `tml` and 10.94), each running our
// agent (`metallb memberlist agent`) or a serf agent. Everything is removed by cleanup(), processes by pid.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface AgentLine {
  event?: 'join' | 'leave' | 'update' | 'suspect';
  t?: number;
  member?: { name: string; addr: string; state: string; incarnation: number };
  members?: Array<{ name: string; state: string }>;
  counters?: Record<string, number>;
  ready?: boolean;
  joined?: number;
  left?: boolean;
  ms?: number;
  error?: string;
  stopped?: boolean;
}

export class Agent {
  readonly lines: AgentLine[] = [];
  stderr = '';
  private waiters: Array<{ pred: (l: AgentLine) => boolean; resolve: (l: AgentLine) => void }> = [];
  exited = false;
  constructor(readonly proc: ChildProcess, readonly name: string) {
    createInterface({ input: proc.stdout! }).on('line', (s) => {
      let l: AgentLine;
      try {
        l = JSON.parse(s) as AgentLine;
      } catch {
        return;
      }
      this.lines.push(l);
      this.waiters = this.waiters.filter((w) => (w.pred(l) ? (w.resolve(l), false) : true));
    });
    proc.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 2_000_000) this.stderr = this.stderr.slice(-1_000_000);
    });
    proc.on('exit', () => (this.exited = true));
  }
  get pid(): number {
    return this.proc.pid!;
  }
  /** Resolves with the first line (already seen or future) matching pred. */
  waitFor(pred: (l: AgentLine) => boolean, timeoutMs: number, what = 'line'): Promise<AgentLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (l: AgentLine) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`${this.name}: timed out waiting for ${what}; stderr tail: ${this.stderr.slice(-1500)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
  /** Sends a stdin command and waits for the next line matching pred. */
  async ask(cmd: string, pred: (l: AgentLine) => boolean, timeoutMs = 10_000): Promise<AgentLine> {
    const from = this.lines.length;
    const p = new Promise<AgentLine>((resolve, reject) => {
      const w = { pred, resolve: (l: AgentLine) => (clearTimeout(t), resolve(l)) };
      const t = setTimeout(() => reject(new Error(`${this.name}: no answer to "${cmd}"`)), timeoutMs);
      this.waiters.push(w);
    });
    void from;
    this.proc.stdin!.write(`${cmd}\n`);
    return p;
  }
  async members(): Promise<Record<string, string>> {
    const l = await this.ask('members', (x) => x.members !== undefined);
    return Object.fromEntries(l.members!.map((m) => [m.name, m.state]));
  }
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exited) this.proc.kill(signal);
  }
  /** Kills it and waits until it is gone (its port free). */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await gone;
  }
}

export class GossipLab {
  readonly br: string;
  private readonly made: string[] = [];
  private readonly procs: ChildProcess[] = [];

  private readonly prefix: string;
  private readonly net: string;

  /**
   * id: 1-4 characters unique to the test file; subnet: third octet of <net>.x.0/24, unique too. `prefix` (namespace
   * names, default `tml`) and `net` (the first two octets, default `10.94`) let another owner's tests use their own.
   */
  constructor(readonly id: string, readonly subnet: number, opts: { prefix?: string; net?: string } = {}) {
    this.prefix = opts.prefix ?? 'tml';
    this.net = opts.net ?? '10.94';
    this.br = `${this.prefix}-${id}-br`;
  }

  ns(i: number): string {
    return `${this.prefix}-${this.id}-${i}`;
  }
  ip(i: number): string {
    return `${this.net}.${this.subnet}.${i}`;
  }

  setup(n: number): void {
    this.cleanupNamespaces();
    sh('ip', ['netns', 'add', this.br]);
    this.made.push(this.br);
    sh('ip', ['-n', this.br, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', this.br, 'link', 'set', 'br0', 'up']);
    for (let i = 1; i <= n; i++) this.addMember(i);
  }

  addMember(i: number): void {
    const ns = this.ns(i);
    sh('ip', ['netns', 'add', ns]);
    this.made.push(ns);
    sh('ip', ['-n', this.br, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh('ip', ['-n', this.br, 'link', 'set', `v${i}`, 'master', 'br0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${this.ip(i)}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }

  /** Cuts member i off the LAN without any goodbye (its bridge port goes down). */
  cutLink(i: number): void {
    sh('ip', ['-n', this.br, 'link', 'set', `v${i}`, 'down']);
  }
  restoreLink(i: number): void {
    sh('ip', ['-n', this.br, 'link', 'set', `v${i}`, 'up']);
  }

  /**
   * Members i and j lose every IP packet between them (UDP and TCP, both ways; dropped silently by the bridge, as a
   * broken path would), while both still reach everyone else. ARP still passes, so nothing answers "unreachable".
   */
  partition(i: number, j: number): void {
    const rules = [`ip saddr ${this.ip(i)} ip daddr ${this.ip(j)} counter drop`, `ip saddr ${this.ip(j)} ip daddr ${this.ip(i)} counter drop`];
    execFileSync('ip', ['netns', 'exec', this.br, 'nft', '-f', '-'], {
      input: `table bridge partition {\n chain cut { type filter hook forward priority 0; policy accept;\n ${rules.join('\n ')}\n }\n}\n`,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }
  /** Removes every partition. */
  heal(): void {
    try {
      sh('ip', ['netns', 'exec', this.br, 'nft', 'delete', 'table', 'bridge', 'partition']);
    } catch {
      // none
    }
  }
  /** Packets the partition dropped so far (proof it was in the path). */
  partitionDrops(): number {
    try {
      const out = sh('ip', ['netns', 'exec', this.br, 'nft', 'list', 'table', 'bridge', 'partition']);
      return [...out.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
    } catch {
      return 0;
    }
  }

  agent(i: number, name: string, args: string[]): Agent {
    const p = spawn('ip', ['netns', 'exec', this.ns(i), process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'memberlist', 'agent', '--name', name, '--bind', this.ip(i), ...args], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.procs.push(p);
    return new Agent(p, name);
  }

  serf(i: number, name: string, args: string[]): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.ns(i), 'serf', 'agent', '-node', name, '-bind', `${this.ip(i)}:7946`, '-rpc-addr', '127.0.0.1:7373', '-log-level', 'debug', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
    (p as ChildProcess & { log: () => string }).log = () => out;
    this.procs.push(p);
    return p;
  }

  serfCmd(i: number, args: string[]): string {
    try {
      return sh('ip', ['netns', 'exec', this.ns(i), 'serf', ...args, '-rpc-addr', '127.0.0.1:7373']);
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      return `${e.stdout ?? ''}${e.stderr ?? ''}${e.message}`;
    }
  }

  /** serf members as name → status. */
  serfMembers(i: number): Record<string, string> {
    const out = this.serfCmd(i, ['members', '-format', 'json']);
    try {
      const doc = JSON.parse(out) as { members: Array<{ name: string; status: string }> };
      return Object.fromEntries(doc.members.map((m) => [m.name, m.status]));
    } catch {
      return {};
    }
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await new Promise((r) => {
          p.once('exit', r);
          setTimeout(r, 2000);
        });
      }
    }
    this.cleanupNamespaces();
  }

  private cleanupNamespaces(): void {
    const existing = sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]);
    for (const ns of existing) {
      if (ns && ns.startsWith(`${this.prefix}-${this.id}-`)) {
        // Processes still inside (ours exited above) would keep it; kill any stragglers by pid.
        try {
          const pids = sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean);
          for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
        } catch {
          // none
        }
        try {
          sh('ip', ['netns', 'del', ns]);
        } catch {
          // already gone
        }
      }
    }
  }
}

export async function eventually<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < until) {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}
