// Container probes as the kubelet runs them: httpGet (status 200-399 is success, like kube-probe), tcpSocket
// (a connection), exec (exit 0, run inside the container's namespaces); initialDelaySeconds, periodSeconds,
// timeoutSeconds, successThreshold, failureThreshold. One ProbeWorker per probe of a running container instance.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { spawn } from 'node:child_process';
import type { Container, HTTPGetAction, Probe, TCPSocketAction } from './types.js';

export type ProbeType = 'liveness' | 'readiness' | 'startup';
export type ProbeOutcome = { ok: true; message?: string } | { ok: false; message: string };

export interface ProbeTarget {
  /** Address probes connect to when the probe names no host (the pod IP). */
  podIP: string;
  container: Container;
  /** Main pid of the container (exec probes enter its namespaces). */
  pid: number;
  env: Record<string, string>;
  /** Command prefix giving the container's user and capabilities (`setpriv … --`). */
  execPrefix?: string[];
}

export const USER_AGENT = 'kube-probe/1.32';

/** Resolves a port given by number or by the name of a container port. */
export function resolvePort(port: number | string, c: Container): number | undefined {
  if (typeof port === 'number') return port > 0 && port < 65536 ? port : undefined;
  if (/^\d+$/.test(port)) {
    const n = Number(port);
    return n > 0 && n < 65536 ? n : undefined;
  }
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

const hostForUrl = (h: string): string => (h.includes(':') ? `[${h}]` : h);

export function httpProbe(a: HTTPGetAction, t: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  const port = resolvePort(a.port, t.container);
  if (port === undefined) return Promise.resolve({ ok: false, message: `unknown port ${String(a.port)}` });
  const scheme = (a.scheme ?? 'HTTP').toLowerCase() === 'https' ? 'https' : 'http';
  const host = a.host || t.podIP;
  let path = a.path ?? '/';
  if (!path.startsWith('/')) path = `/${path}`;
  const url = `${scheme}://${hostForUrl(host)}:${port}${path}`;
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: '*/*' };
  for (const h of a.httpHeaders ?? []) headers[h.name] = h.value;
  return new Promise((resolve) => {
    const mod = scheme === 'https' ? https : http;
    const req = mod.request(url, { method: 'GET', headers, agent: false, timeout: timeoutMs, ...(scheme === 'https' ? { rejectUnauthorized: false } : {}) }, (res) => {
      res.resume();
      res.on('end', () => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 400) resolve({ ok: true });
        else resolve({ ok: false, message: `HTTP probe failed with statuscode: ${code}` });
      });
      res.on('error', (e) => resolve({ ok: false, message: `Get "${url}": ${e.message}` }));
    });
    req.on('timeout', () => req.destroy(new Error('context deadline exceeded (Client.Timeout exceeded while awaiting headers)')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, message: `Get "${url}": ${dialText(e, host, port)}` }));
    req.end();
  });
}

function dialText(e: NodeJS.ErrnoException, host: string, port: number): string {
  const addr = `${hostForUrl(host)}:${port}`;
  if (e.code === 'ECONNREFUSED') return `dial tcp ${addr}: connect: connection refused`;
  if (e.code === 'EHOSTUNREACH') return `dial tcp ${addr}: connect: no route to host`;
  if (e.code === 'ENETUNREACH') return `dial tcp ${addr}: connect: network is unreachable`;
  return e.message;
}

export function tcpProbe(a: TCPSocketAction, t: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  const port = resolvePort(a.port, t.container);
  if (port === undefined) return Promise.resolve({ ok: false, message: `unknown port ${String(a.port)}` });
  const host = a.host || t.podIP;
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, message: `dial tcp ${hostForUrl(host)}:${port}: i/o timeout` });
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ok: true });
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, message: dialText(e, host, port) });
    });
  });
}

/** Runs `command` inside the container's mount, UTS and network namespaces, with its environment. */
export function execInContainer(command: string[], t: Pick<ProbeTarget, 'pid' | 'env' | 'execPrefix'>, timeoutMs: number): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('nsenter', ['-t', String(t.pid), '-m', '-u', '-n', '--', ...(t.execPrefix ?? []), ...command], { env: t.env, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    let out = '';
    const add = (s: Buffer): void => {
      if (out.length < 10 * 1024) out += s.toString('utf8');
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, output: e.message, timedOut: false });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: out, timedOut });
    });
  });
}

export async function execProbe(command: string[], t: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  if (command.length === 0) return { ok: false, message: 'exec probe has no command' };
  const r = await execInContainer(command, t, timeoutMs);
  if (r.timedOut) return { ok: false, message: `command ${JSON.stringify(command)} timed out` };
  if (r.code === 0) return { ok: true };
  return { ok: false, message: r.output.trim() || `command ${JSON.stringify(command)} exited with ${r.code ?? 'a signal'}` };
}

export function runProbe(p: Probe, t: ProbeTarget): Promise<ProbeOutcome> {
  const timeoutMs = Math.max(1, p.timeoutSeconds ?? 1) * 1000;
  if (p.httpGet) return httpProbe(p.httpGet, t, timeoutMs);
  if (p.tcpSocket) return tcpProbe(p.tcpSocket, t, timeoutMs);
  if (p.exec) return execProbe(p.exec.command ?? [], t, timeoutMs);
  if (p.grpc) return Promise.resolve({ ok: false, message: 'gRPC probes are not supported by the lab kubelet' });
  return Promise.resolve({ ok: false, message: 'probe has no handler' });
}

export interface ProbeEvents {
  /** The result flipped (readiness/startup: success means ready/started; liveness: failure means restart). */
  changed(type: ProbeType, ok: boolean): void;
  /** A single failed attempt (the kubelet records an Unhealthy event). */
  failed(type: ProbeType, message: string): void;
}

/** Runs one probe periodically until stopped; reports result changes after the thresholds are met. */
export class ProbeWorker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  /** Current result: readiness and startup start failed, liveness starts successful. */
  result: boolean;
  private paused = false;

  constructor(
    readonly type: ProbeType,
    private readonly probe: Probe,
    private readonly target: () => ProbeTarget | undefined,
    private readonly events: ProbeEvents,
    private readonly scale = 1,
  ) {
    this.result = type === 'liveness';
  }

  start(): void {
    const delay = Math.max(0, this.probe.initialDelaySeconds ?? 0) * 1000 * this.scale;
    this.schedule(delay);
  }

  /** Liveness and readiness wait for the startup probe: paused workers do not probe. */
  setPaused(p: boolean): void {
    this.paused = p;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    const period = Math.max(1, this.probe.periodSeconds ?? 10) * 1000 * this.scale;
    if (this.paused) return this.schedule(period);
    const t = this.target();
    if (!t) return this.schedule(period);
    const out = await runProbe(this.probe, t);
    if (this.stopped) return;
    const successThreshold = this.type === 'readiness' ? Math.max(1, this.probe.successThreshold ?? 1) : 1;
    const failureThreshold = Math.max(1, this.probe.failureThreshold ?? 3);
    if (out.ok) {
      this.failures = 0;
      this.successes++;
      if (!this.result && this.successes >= successThreshold) {
        this.result = true;
        this.events.changed(this.type, true);
      }
    } else {
      this.successes = 0;
      this.failures++;
      this.events.failed(this.type, out.message);
      if (this.result && this.failures >= failureThreshold) {
        this.result = false;
        this.events.changed(this.type, false);
      } else if (this.type === 'startup' && this.failures >= failureThreshold) {
        this.events.changed(this.type, false);
      }
    }
    // A startup probe stops once it succeeded; a failed liveness/startup probe stops (the container is restarted).
    if (this.type === 'startup' && this.result) return;
    if (this.type !== 'readiness' && !out.ok && this.failures >= failureThreshold) return;
    this.schedule(period);
  }
}
