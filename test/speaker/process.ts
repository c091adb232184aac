// Integration-test helpers: `metallb speaker` as a child process against a dev API server.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, waitFor } from '../controller/helpers.js';

const BIN = join(ROOT, 'bin', 'metallb.js');

export interface SpeakerHandle {
  node: string;
  pid: number;
  child: ChildProcess;
  ports: { metrics?: number; health?: number };
  logs(): string;
  lines(): Record<string, unknown>[];
  metrics(): Promise<string>;
  /** HTTP status of a health path (`/healthz`, `/readyz`). */
  health(path: string): Promise<number>;
  /** SIGTERM (SIGKILL after 8 s); resolves with the exit code. Idempotent. */
  stop(): Promise<number | null>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
  exited(): Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface SpeakerStartOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Wait for "processing services" (default true). */
  waitReady?: boolean;
  /** Run inside this network namespace; metrics are served on `ip` there (the host reaches it over the LAN). */
  netns?: { ns: string; ip: string };
}

export async function startSpeaker(kubeconfig: string, node: string, o: SpeakerStartOptions = {}): Promise<SpeakerHandle> {
  const args = [
    BIN, 'speaker', '--kubeconfig', kubeconfig, '--node-name', node, '--namespace', 'metallb-system',
    '--port', '0', '--health-probe-port', '0', '--log-level', 'debug', '--crd-absent-grace', '2s',
    ...(o.netns ? ['--metrics-host', o.netns.ip, '--health-probe-host', o.netns.ip] : []),
    ...(o.args ?? []),
  ];
  const [cmd, ...rest] = o.netns ? ['ip', 'netns', 'exec', o.netns.ns, process.execPath, ...args] : [process.execPath, ...args];
  const child = spawn(cmd as string, rest, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  live.add(child);
  let out = '';
  const onData = (s: string): void => {
    out += s;
    if (out.length > 8_000_000) out = out.slice(-4_000_000);
  };
  child.stderr!.setEncoding('utf8').on('data', onData);
  child.stdout!.setEncoding('utf8').on('data', onData);
  const exitP = new Promise<number | null>((res) => child.once('exit', (code, signal) => {
    live.delete(child);
    res(code ?? (signal ? 128 : null));
  }));
  const lines = (): Record<string, unknown>[] =>
    out.split('\n').filter((l) => l.startsWith('{')).map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
  const kill = async (signal: NodeJS.Signals): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 8000);
    const code = await exitP;
    clearTimeout(t);
    return code;
  };
  const h: SpeakerHandle = {
    node,
    pid: child.pid!,
    child,
    ports: {},
    logs: () => out,
    lines,
    metrics: async () => (await fetch(`http://${o.netns ? o.netns.ip : '127.0.0.1'}:${h.ports.metrics}/metrics`)).text(),
    health: async (path) => (await fetch(`http://${o.netns ? o.netns.ip : '127.0.0.1'}:${h.ports.health}${path}`)).status,
    stop: () => kill('SIGTERM'),
    kill,
    exited: () => exitP,
  };
  try {
    await waitFor(`speaker ${node} ports`, () => {
      if (child.exitCode !== null) throw new Error(`speaker exited ${child.exitCode}:\n${out}`);
      for (const l of lines()) {
        if (l.endpoint === 'metrics') h.ports.metrics = l.port as number;
        if (l.endpoint === 'health') h.ports.health = l.port as number;
      }
      return h.ports.metrics !== undefined && h.ports.health !== undefined;
    }, 120_000, 50);
    if (o.waitReady ?? true) {
      await waitFor(`speaker ${node} processing services`, () => {
        if (child.exitCode !== null) throw new Error(`speaker exited ${child.exitCode}:\n${out}`);
        return lines().some((l) => l.msg === 'processing services');
      }, 120_000, 50);
    }
  } catch (err) {
    await h.kill('SIGKILL');
    const tail = lines().filter((l) => l.level !== 'debug').slice(-15).map((l) => JSON.stringify(l)).join('\n');
    throw new Error(`${err instanceof Error ? err.message : String(err)}; last log lines:\n${tail}`);
  }
  return h;
}

/** The value of one series, e.g. metric(text, 'metallb_speaker_announced', {ip: '10.97.0.1'}) (label subset match). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const p of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(p[1]!, p[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[4]);
  }
  return undefined;
}
