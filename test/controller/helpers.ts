// Integration-test helpers: run `metallb controller` as a child process against a dev API server.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeClient, loadKubeConfig } from '../../src/k8s/client.js';
import type { Service } from '../../src/k8s/types.js';
import { kubectlOk, startDevServer, type DevServerHandle, type DevServerOptions } from '../helpers/devserver.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'metallb.js');
export const NS = 'metallb-system';

export interface ControllerHandle {
  pid: number;
  child: ChildProcess;
  ports: { metrics?: number; health?: number; webhook?: number };
  logs(): string;
  /** Parsed JSON log lines. */
  lines(): Record<string, unknown>[];
  /** SIGTERM (SIGKILL after 8 s); resolves with the exit code. Idempotent. */
  stop(): Promise<number | null>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
  exited(): Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    await sleep(everyMs);
  }
}

export interface ControllerStartOptions {
  args?: string[];
  /** Wait for the "processing services" log line (default true unless leader election is on). */
  waitReady?: boolean;
  env?: NodeJS.ProcessEnv;
}

export async function startController(kubeconfig: string, o: ControllerStartOptions = {}): Promise<ControllerHandle> {
  const args = [
    BIN,
    'controller',
    '--kubeconfig',
    kubeconfig,
    '--metrics-port',
    '0',
    '--health-probe-port',
    '0',
    '--webhook-port',
    '0',
    '--cert-dir',
    join(dirname(kubeconfig), 'no-certs'),
    '--log-level',
    'debug',
    ...(o.args ?? []),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  live.add(child);
  let out = '';
  const onData = (s: string): void => {
    out += s;
    if (out.length > 8_000_000) out = out.slice(-4_000_000);
  };
  child.stderr!.setEncoding('utf8').on('data', onData);
  child.stdout!.setEncoding('utf8').on('data', onData);
  const exitP = new Promise<number | null>((res) => child.once('exit', (code) => {
    live.delete(child);
    res(code);
  }));
  const lines = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
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
  const h: ControllerHandle = {
    pid: child.pid!,
    child,
    ports: {},
    logs: () => out,
    lines,
    stop: () => kill('SIGTERM'),
    kill,
    exited: () => exitP,
  };
  const scanPorts = (): void => {
    for (const l of lines()) {
      if (l.endpoint === 'metrics') h.ports.metrics = l.port as number;
      if (l.endpoint === 'health') h.ports.health = l.port as number;
      if (l.endpoint === 'webhook') h.ports.webhook = l.port as number;
    }
  };
  const webhookOn = !(o.args ?? []).some((a, i, all) => a === '--webhook-mode' && all[i + 1] === 'disabled');
  try {
    await waitFor('controller ports', () => {
      if (child.exitCode !== null) throw new Error(`controller exited ${child.exitCode}:\n${out}`);
      scanPorts();
      return h.ports.metrics !== undefined && h.ports.health !== undefined && (!webhookOn || h.ports.webhook !== undefined);
    }, 30_000, 50);
    if (o.waitReady ?? !(o.args ?? []).includes('--leader-elect')) {
      await waitFor('controller processing services', () => {
        if (child.exitCode !== null) throw new Error(`controller exited ${child.exitCode}:\n${out}`);
        return lines().some((l) => l.msg === 'processing services');
      }, 30_000, 50);
    }
  } catch (err) {
    await h.kill('SIGKILL');
    throw err;
  }
  return h;
}

export async function metricsText(h: ControllerHandle): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${h.ports.metrics}/metrics`);
  return await r.text();
}

export function metricValue(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}${labels ? `{${labels}}` : ''} `)) return Number(line.split(' ').pop());
  }
  return undefined;
}

export interface Env {
  srv: DevServerHandle;
  api: KubeClient;
  kubeconfig: string;
  kc(args: string[], input?: string): Promise<string>;
  apply(yaml: string): Promise<string>;
  svc(ns: string, name: string): Promise<Service>;
  ips(ns: string, name: string): Promise<string[]>;
  /** Waits until the Service has exactly `n` ingress IPs; returns them. */
  waitIPs(ns: string, name: string, n?: number, timeoutMs?: number): Promise<string[]>;
  close(): Promise<void>;
}

export async function crdYaml(): Promise<string> {
  const dir = join(ROOT, 'deploy', 'crds');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n---\n');
}

/** A dev API server with the MetalLB namespace and CRDs. */
export async function startEnv(opts: DevServerOptions & { crds?: boolean } = {}): Promise<Env> {
  const srv = await startDevServer({ logLevel: 'warn', ...opts });
  const kubeconfig = srv.kubeconfig;
  const api = new KubeClient(loadKubeConfig(kubeconfig));
  const kc = (args: string[], input?: string): Promise<string> => kubectlOk(args, kubeconfig, input === undefined ? {} : { input });
  const env: Env = {
    srv,
    api,
    kubeconfig,
    kc,
    apply: (yaml) => kc(['apply', '-f', '-'], yaml),
    svc: (ns, name) => api.get<Service>(`/api/v1/namespaces/${ns}/services/${name}`),
    ips: async (ns, name) => ((await env.svc(ns, name)).status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? ''),
    waitIPs: (ns, name, n = 1, timeoutMs = 20_000) =>
      waitFor(`${ns}/${name} to have ${n} address(es)`, async () => {
        const ips = await env.ips(ns, name);
        return ips.length === n ? ips : undefined;
      }, timeoutMs),
    close: async () => {
      api.close();
      await srv.stop();
    },
  };
  try {
    if (!opts.dataFile || !(await api.get(`/api/v1/namespaces/${NS}`).then(() => true, () => false))) {
      await kc(['create', 'namespace', NS]);
    }
    if (opts.crds ?? true) await env.apply(await crdYaml());
  } catch (err) {
    await env.close();
    throw err;
  }
  return env;
}

export const poolYaml = (name: string, addresses: string[], extra = ''): string =>
  `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ${name}, namespace: ${NS}}
spec:
  addresses: [${addresses.map((a) => JSON.stringify(a)).join(', ')}]
${extra}`;

export function serviceYaml(ns: string, name: string, o: { annotations?: Record<string, string>; ports?: number[]; family?: 'v4' | 'v6' | 'dual'; type?: string; lbClass?: string; loadBalancerIP?: string } = {}): string {
  const fam =
    o.family === 'v6'
      ? '  ipFamilies: [IPv6]\n  ipFamilyPolicy: SingleStack\n'
      : o.family === 'dual'
        ? '  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n'
        : '';
  const ann = o.annotations ? `  annotations:\n${Object.entries(o.annotations).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`).join('\n')}\n` : '';
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${ns}
${ann}spec:
  type: ${o.type ?? 'LoadBalancer'}
${fam}${o.lbClass ? `  loadBalancerClass: ${o.lbClass}\n` : ''}${o.loadBalancerIP ? `  loadBalancerIP: ${o.loadBalancerIP}\n` : ''}  selector: {app: ${name}}
  ports:
${(o.ports ?? [80]).map((p) => `  - {name: p${p}, port: ${p}, protocol: TCP}`).join('\n')}
`;
}
