// The kubelet's HTTP endpoint (plain HTTP on <node-ip>:10250 in the lab): /healthz, /pods, /stats/summary and
// /containerLogs/{namespace}/{pod}/{container} with the query parameters of the API's pods/log (follow, tailLines,
// previous, timestamps, sinceSeconds, sinceTime, limitBytes). Errors are plain text with the status code the
// kubelet uses; kube-apiserver's pods/log proxy passes them through as the error message.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../log.js';
import { completeLines, formatRecord, nowNs, parseCriLog, parseTimestampNs, readFrom, readLogFile, type LogRecord } from './logs.js';
import type { Pod } from './types.js';

export interface LogTarget {
  /** Current state text when the container has never run (for the "waiting to start" error). */
  waitingReason?: string;
  file?: { path: string; running: boolean };
}

export interface EndpointSource {
  pods(): Pod[];
  /** undefined: no such pod; 'no-container': no such container. */
  logTarget(namespace: string, pod: string, container: string | undefined, previous: boolean): LogTarget | 'no-pod' | 'no-container' | { defaultContainerNeeded: string[] };
  /** Is the container instance behind `path` still running? */
  stillRunning(namespace: string, pod: string, container: string, path: string): boolean;
  summary(): unknown;
  /** Prometheus text of /metrics/resource. */
  resourceMetrics(): string;
}

const text = (res: ServerResponse, code: number, body: string): void => {
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
};
const json = (res: ServerResponse, body: unknown): void => {
  const s = JSON.stringify(body);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s) });
  res.end(s);
};

function intParam(q: URLSearchParams, name: string): number | undefined | 'bad' {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) return 'bad';
  return Number(v);
}
const boolParam = (q: URLSearchParams, name: string): boolean => ['true', '1', ''].includes(q.get(name) ?? 'false') && q.has(name);

export class KubeletServer {
  private server: Server | undefined;
  private readonly followers = new Set<() => void>();

  constructor(
    private readonly src: EndpointSource,
    private readonly log: Logger,
  ) {}

  async listen(addresses: string[], port: number): Promise<number> {
    const srv = createServer((req, res) => this.handle(req, res));
    srv.keepAliveTimeout = 60_000;
    this.server = srv;
    const hosts = addresses.length > 0 ? addresses : ['::'];
    // One server, several listening sockets: listen() once per address on extra servers sharing the handler.
    const extra: Server[] = [];
    let bound = port;
    for (const [i, host] of hosts.entries()) {
      const s = i === 0 ? srv : createServer((req, res) => this.handle(req, res));
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen({ port: bound, host, ...(host === '::' ? { ipv6Only: false } : {}) }, () => {
          s.off('error', reject);
          resolve();
        });
      });
      bound = (s.address() as AddressInfo).port;
      if (i > 0) extra.push(s);
    }
    this.extra = extra;
    return bound;
  }

  private extra: Server[] = [];

  async close(): Promise<void> {
    for (const stop of this.followers) stop();
    await Promise.all(
      [this.server, ...this.extra].filter((s): s is Server => !!s).map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://kubelet');
    const path = url.pathname;
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'method not allowed');
      if (path === '/healthz' || path === '/healthz/ping' || path === '/healthz/syncloop') return text(res, 200, 'ok');
      if (path === '/pods' || path === '/pods/') return json(res, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: this.src.pods() });
      if (path === '/stats/summary' || path === '/stats/summary/') return json(res, this.src.summary());
      if (path === '/metrics/resource') {
        const body = this.src.resourceMetrics();
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)(?:\/([^/]+))?\/?$/.exec(path);
      if (m) return this.containerLogs(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), m[3] ? decodeURIComponent(m[3]) : undefined, url.searchParams, req, res);
      return text(res, 404, `404 page not found`);
    } catch (err) {
      this.log.error({ path, err: err instanceof Error ? err.message : String(err) }, 'kubelet endpoint failed');
      if (!res.headersSent) text(res, 500, 'internal error');
      else res.destroy();
    }
  }

  private containerLogs(ns: string, pod: string, container: string | undefined, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const previous = boolParam(q, 'previous');
    const follow = boolParam(q, 'follow');
    const timestamps = boolParam(q, 'timestamps');
    const tailLines = intParam(q, 'tailLines');
    const limitBytes = intParam(q, 'limitBytes');
    const sinceSeconds = intParam(q, 'sinceSeconds');
    if (tailLines === 'bad' || limitBytes === 'bad' || sinceSeconds === 'bad') return text(res, 400, 'tailLines, limitBytes and sinceSeconds must be integers');
    if (limitBytes !== undefined && limitBytes < 1) return text(res, 400, 'limitBytes must be greater than zero');
    if (sinceSeconds !== undefined && sinceSeconds < 1) return text(res, 400, 'sinceSeconds must be greater than zero');
    let sinceNs: bigint | undefined;
    if (sinceSeconds !== undefined) sinceNs = nowNs() - BigInt(sinceSeconds) * 1_000_000_000n;
    const sinceTime = q.get('sinceTime');
    if (sinceTime) {
      const t = parseTimestampNs(sinceTime);
      if (t === undefined) return text(res, 400, `sinceTime "${sinceTime}" is not an RFC 3339 time`);
      sinceNs = t;
    }
    const target = this.src.logTarget(ns, pod, container, previous);
    if (target === 'no-pod') return text(res, 404, `pod "${pod}" in namespace "${ns}" not found on this node`);
    if (target === 'no-container') return text(res, 400, `container ${container ?? ''} is not valid for pod ${pod}`);
    if ('defaultContainerNeeded' in target) return text(res, 400, `a container name must be specified for pod ${pod}, choose one of: [${target.defaultContainerNeeded.join(' ')}]`);
    const name = container ?? '';
    if (!target.file) {
      if (previous) return text(res, 400, `previous terminated container "${name}" in pod "${pod}" not found`);
      return text(res, 400, `container "${name}" in pod "${pod}" is waiting to start: ${target.waitingReason ?? 'ContainerCreating'}`);
    }
    const { path } = target.file;
    const first = readLogFile(path, { ...(tailLines !== undefined ? { tailLines } : {}), ...(sinceNs !== undefined ? { sinceNs } : {}), timestamps });
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    let budget = limitBytes ?? Infinity;
    const emit = (s: string): boolean => {
      if (s === '') return budget > 0;
      let b = Buffer.from(s);
      if (b.length > budget) b = b.subarray(0, budget);
      budget -= b.length;
      res.write(b);
      return budget > 0;
    };
    if (!emit(first.text) || !follow || !target.file.running) {
      res.end();
      return;
    }
    // follow: poll the file; the stream ends when the instance has exited and everything was sent.
    let offset = first.offset;
    const carry: { partial?: LogRecord } = first.carry;
    let stopped = false;
    const stop = (): void => {
      stopped = true;
      clearTimeout(timer);
      this.followers.delete(stop);
      res.end();
    };
    this.followers.add(stop);
    req.on('close', () => {
      stopped = true;
      clearTimeout(timer);
      this.followers.delete(stop);
    });
    let timer: NodeJS.Timeout;
    const poll = (): void => {
      if (stopped) return;
      const running = this.src.stillRunning(ns, pod, name, path);
      const r = readFrom(path, offset);
      const whole = completeLines(r.data);
      offset = (r.rotated ? 0 : offset) + whole.length;
      if (whole.length > 0) {
        const { records } = parseCriLog(whole.toString('utf8'), carry);
        if (!emit(records.map((x) => formatRecord(x, timestamps)).join(''))) return stop();
      }
      if (!running && whole.length === r.data.length) return stop();
      timer = setTimeout(poll, 200);
    };
    timer = setTimeout(poll, 200);
  }
}
