// `metallb cluster metrics-server`: metrics-server for the lab. It watches Nodes and Pods, scrapes every kubelet's
// Summary API once per resolution, and serves metrics.k8s.io/v1beta1 (NodeMetrics and PodMetrics: get, list, label
// and field selectors, Tables) over HTTPS to the API server's aggregation layer, which reaches it through its
// APIService; requests are authenticated and authorized by delegation to the API server, as metrics-server's are.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import type { Logger } from '../../log.js';
import { errorText, type KubeClient } from '../../k8s/client.js';
import { Informer } from '../../k8s/informers.js';
import { CR } from '../common/resources.js';
import type { Node, Pod } from '../common/types.js';
import { chooseOutput } from '../apiserver/negotiate.js';
import { matchLabels, parseFieldSelector, parseLabelSelector, type FieldSelector, type LabelSelector } from '../apiserver/selectors.js';
import { DelegatingAuth, type Attributes, type User } from './auth.js';
import { API_VERSION, GROUP, VERSION, list, metricsTable, nodeMetrics, podMetrics } from './objects.js';
import { Scraper, type ScraperOptions } from './scraper.js';
import { MetricsStorage } from './storage.js';

type Obj = Record<string, unknown>;

export interface MetricsServerOptions {
  bindAddress: string;
  securePort: number;
  /** Serving certificate and key (PEM files); without them a self-signed pair is made (kept in certDir if given). */
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  certDir?: string;
  /** How often kubelets are scraped (`--metric-resolution`, metrics-server's manifests use 15 s). */
  metricResolutionMs: number;
  scraper: ScraperOptions;
  /** Paths served without authorization (`--authorization-always-allow-paths`). */
  alwaysAllowPaths: string[];
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Obj,
  ) {
    super(message);
  }
  status(): Obj {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, ...(this.details ? { details: this.details } : {}), code: this.code };
  }
}

// singularName stays empty so that kubectl maps `podmetrics` / `nodemetrics` from the kinds (metrics-server PR 1436)
const RESOURCES: Obj[] = [
  { name: 'nodes', singularName: '', namespaced: false, kind: 'NodeMetrics', verbs: ['get', 'list'] },
  { name: 'pods', singularName: '', namespaced: true, kind: 'PodMetrics', verbs: ['get', 'list'] },
];

const groupDoc = (): Obj => ({ name: GROUP, versions: [{ groupVersion: API_VERSION, version: VERSION }], preferredVersion: { groupVersion: API_VERSION, version: VERSION } });

async function servingCert(o: MetricsServerOptions): Promise<{ cert: string; key: string }> {
  if (o.tlsCertFile && o.tlsPrivateKeyFile) return { cert: readFileSync(o.tlsCertFile, 'utf8'), key: readFileSync(o.tlsPrivateKeyFile, 'utf8') };
  const certPath = o.certDir ? join(o.certDir, 'apiserver.crt') : undefined;
  const keyPath = o.certDir ? join(o.certDir, 'apiserver.key') : undefined;
  if (certPath && keyPath && existsSync(certPath) && existsSync(keyPath)) return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  // like genericapiserver's self-signed fallback: names for the Service and the bind address
  const names = ['localhost', 'metrics-server', 'metrics-server.kube-system', 'metrics-server.kube-system.svc', '127.0.0.1', ...(o.bindAddress && o.bindAddress !== '0.0.0.0' && o.bindAddress !== '::' ? [o.bindAddress] : [])];
  const now = Date.now();
  const g = await generate([{ name: 'commonName', value: `${o.bindAddress}@${Math.floor(now / 1000)}` }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 365 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) },
    ],
  });
  if (o.certDir && certPath && keyPath) {
    mkdirSync(o.certDir, { recursive: true, mode: 0o700 });
    writeFileSync(keyPath, g.private, { mode: 0o600 });
    writeFileSync(certPath, g.cert, { mode: 0o644 });
  }
  return { cert: g.cert, key: g.private };
}

function parseSelectors(q: URLSearchParams): { labels: LabelSelector; fields: FieldSelector } {
  let labels: LabelSelector;
  let fields: FieldSelector;
  try {
    labels = parseLabelSelector(q.get('labelSelector') ?? '');
  } catch (e) {
    throw new HttpError(400, 'BadRequest', errorText(e));
  }
  try {
    fields = parseFieldSelector(q.get('fieldSelector') ?? '');
  } catch (e) {
    throw new HttpError(400, 'BadRequest', errorText(e));
  }
  for (const f of fields) if (f.field !== 'metadata.name' && f.field !== 'metadata.namespace') throw new HttpError(400, 'BadRequest', `field label not supported: ${f.field}`);
  return { labels, fields };
}

function matchesFields(fields: FieldSelector, name: string, namespace: string): boolean {
  return fields.every((f) => {
    const v = f.field === 'metadata.name' ? name : namespace;
    return f.op === 'neq' ? v !== f.value : v === f.value;
  });
}

export class MetricsServer {
  private readonly nodes: Informer<Node>;
  private readonly pods: Informer<Pod>;
  private readonly storage: MetricsStorage;
  private readonly scraper: Scraper;
  private readonly auth: DelegatingAuth;
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastScrape = 0;
  private stopped = false;

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly o: MetricsServerOptions,
  ) {
    this.nodes = new Informer<Node>(client, CR.nodes, log);
    this.pods = new Informer<Pod>(client, CR.pods, log, { pageSize: 500 });
    this.storage = new MetricsStorage(o.metricResolutionMs);
    this.scraper = new Scraper(this.nodes, log, o.scraper);
    this.auth = new DelegatingAuth(client, log, o.alwaysAllowPaths);
  }

  /** Starts informers, the scrape loop and the HTTPS server; resolves with the port it listens on. */
  async start(): Promise<number> {
    this.nodes.start();
    this.pods.start();
    await this.auth.start();
    const tls = await servingCert(this.o);
    const server = createServer({ ...tls, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => this.fail(res, e));
    });
    server.keepAliveTimeout = 60_000;
    this.server = server;
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.securePort, this.o.bindAddress, () => resolve((server.address() as AddressInfo).port));
    });
    // serve at once (readyz says whether there are metrics); scrape once the caches know the nodes and pods
    void Promise.all([this.nodes.waitForSync(), this.pods.waitForSync()]).then(() => this.loop());
    return port;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.auth.stop();
    this.scraper.close();
    await Promise.all([this.nodes.stop(), this.pods.stop()]);
    await new Promise<void>((r) => {
      if (!this.server) return r();
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }

  /** One scrape per resolution, measured from the start of the previous one. */
  private async loop(): Promise<void> {
    if (this.stopped) return;
    const started = Date.now();
    try {
      const r = await this.scraper.scrape();
      this.storage.store(r.nodes, r.pods);
      this.lastScrape = Date.now();
      this.log.debug({ nodes: r.nodes.length, pods: r.pods.length, failed: r.failed, ms: Date.now() - started }, 'scrape finished');
    } catch (err) {
      this.log.error({ err: errorText(err) }, 'scrape failed');
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.loop(), Math.max(0, this.o.metricResolutionMs - (Date.now() - started)));
  }

  private fail(res: ServerResponse, e: unknown): void {
    const err = e instanceof HttpError ? e : new HttpError(500, 'InternalError', `Internal error occurred: ${errorText(e)}`);
    if (!(e instanceof HttpError)) this.log.error({ err: errorText(e) }, 'request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    const body = JSON.stringify(err.status());
    res.writeHead(err.code, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
    res.end(body);
  }

  private send(res: ServerResponse, body: Obj): void {
    const text = JSON.stringify(body);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Content-Length': String(Buffer.byteLength(text)) });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const user = await this.auth.authenticate(req);
    if (!user) throw new HttpError(401, 'Unauthorized', 'Unauthorized');
    const seg = path.split('/').filter(Boolean);
    const attrs = this.attributes(method, seg, url.searchParams, user, path);
    const d = await this.auth.authorize(attrs);
    if (!d.allowed) throw this.forbidden(attrs, d.reason);

    if (path === '/healthz' || path === '/livez') return this.plain(res, 200, 'ok');
    if (path === '/readyz') return this.storage.ready ? this.plain(res, 200, 'ok') : this.plain(res, 500, '[-]metric-storage-ready failed: not metrics to serve\nreadyz check failed');
    if (method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    if (path === '/apis') return this.send(res, { kind: 'APIGroupList', apiVersion: 'v1', groups: [groupDoc()] });
    if (path === `/apis/${GROUP}`) return this.send(res, { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc() });
    if (path === `/apis/${API_VERSION}`) return this.send(res, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: API_VERSION, resources: RESOURCES });
    if (seg[0] !== 'apis' || seg[1] !== GROUP || seg[2] !== VERSION) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1' || seg[3] === 'watch') throw new HttpError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    const rest = seg.slice(3);
    const out = chooseOutput(req.headers.accept);
    const includeObject = url.searchParams.get('includeObject') ?? 'Metadata';
    const reply = (o: Obj, items?: Obj[]): void => {
      if (out.kind === 'table') return this.send(res, metricsTable(items ?? [o], includeObject));
      return this.send(res, o);
    };
    if (rest[0] === 'nodes' && rest.length <= 2) {
      if (rest.length === 2) {
        const o = this.nodeMetrics(rest[1]!);
        return reply(o);
      }
      const items = this.listNodes(url.searchParams);
      return reply(list('NodeMetricsList', items), items);
    }
    let ns: string | undefined;
    let r = rest;
    if (r[0] === 'namespaces' && r.length >= 3) {
      ns = r[1];
      r = r.slice(2);
    }
    if (r[0] === 'pods' && r.length <= 2) {
      if (r.length === 2) {
        if (ns === undefined) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
        return reply(this.podMetrics(ns, r[1]!));
      }
      const items = this.listPods(ns, url.searchParams);
      return reply(list('PodMetricsList', items), items);
    }
    throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
  }

  private plain(res: ServerResponse, code: number, text: string): void {
    res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(text);
  }

  /** kube's RequestInfo for this server's paths. */
  private attributes(method: string, seg: string[], q: URLSearchParams, user: User, path: string): Attributes {
    if (seg[0] !== 'apis' || seg[1] !== GROUP || seg[2] !== VERSION || seg.length < 4) return { user, verb: method.toLowerCase(), path };
    let rest = seg.slice(3);
    const watch = rest[0] === 'watch' || q.get('watch') === 'true' || q.get('watch') === '1';
    if (rest[0] === 'watch') rest = rest.slice(1);
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const name = rest[1];
    const verb = watch ? 'watch' : method === 'GET' ? (name !== undefined ? 'get' : 'list') : method.toLowerCase();
    return { user, verb, resource: { group: GROUP, version: VERSION, resource: rest[0] ?? '', ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}) } };
  }

  private forbidden(a: Attributes, reason: string): HttpError {
    const who = `User ${JSON.stringify(a.user.username)}`;
    const why = reason ? `: ${reason}` : '';
    if (!a.resource) return new HttpError(403, 'Forbidden', `forbidden: ${who} cannot ${a.verb} path ${JSON.stringify(a.path)}${why}`, {});
    const r = a.resource;
    const where = r.namespace ? ` in the namespace ${JSON.stringify(r.namespace)}` : '';
    const what = r.name ? `${r.resource}.${r.group} ${JSON.stringify(r.name)}` : `${r.resource}.${r.group}`;
    return new HttpError(403, 'Forbidden', `${what} is forbidden: ${who} cannot ${a.verb} resource ${JSON.stringify(r.resource)} in API group ${JSON.stringify(r.group)}${where}${why}`, {
      ...(r.name ? { name: r.name } : {}),
      group: r.group,
      kind: r.resource,
    });
  }

  private listNodes(q: URLSearchParams): Obj[] {
    const { labels, fields } = parseSelectors(q);
    const now = Date.now();
    return this.nodes
      .list()
      .filter((n) => (labels.length === 0 || matchLabels(labels, n.metadata?.labels)) && matchesFields(fields, n.metadata?.name ?? '', ''))
      .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
      .flatMap((n) => {
        const u = this.storage.node(n.metadata?.name ?? '');
        return u ? [nodeMetrics({ name: n.metadata?.name ?? '', ...(n.metadata?.labels ? { labels: n.metadata.labels } : {}) }, u, now)] : [];
      });
  }

  private nodeMetrics(name: string): Obj {
    const n = this.nodes.get(name);
    if (!n) throw new HttpError(404, 'NotFound', `nodes ${JSON.stringify(name)} not found`, { name, kind: 'nodes' });
    const u = this.storage.node(name);
    if (!u) throw new HttpError(404, 'NotFound', `nodemetrics.metrics.k8s.io ${JSON.stringify(name)} not found`, { name, group: GROUP, kind: 'nodemetrics' });
    return nodeMetrics({ name, ...(n.metadata?.labels ? { labels: n.metadata.labels } : {}) }, u, Date.now());
  }

  private listPods(ns: string | undefined, q: URLSearchParams): Obj[] {
    const { labels, fields } = parseSelectors(q);
    const now = Date.now();
    return this.pods
      .list()
      .filter((p) => (ns === undefined || p.metadata?.namespace === ns) && p.status?.phase === 'Running')
      .filter((p) => (labels.length === 0 || matchLabels(labels, p.metadata?.labels)) && matchesFields(fields, p.metadata?.name ?? '', p.metadata?.namespace ?? ''))
      .sort((a, b) => (a.metadata?.namespace ?? '').localeCompare(b.metadata?.namespace ?? '') || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
      .flatMap((p) => {
        const m = this.storage.pod(p.metadata?.namespace ?? '', p.metadata?.name ?? '');
        return m ? [podMetrics({ name: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? '', ...(p.metadata?.labels ? { labels: p.metadata.labels } : {}) }, m, now)] : [];
      });
  }

  private podMetrics(ns: string, name: string): Obj {
    const p = this.pods.get(`${ns}/${name}`);
    if (!p) throw new HttpError(404, 'NotFound', `pods ${JSON.stringify(name)} not found`, { name, kind: 'pods' });
    const m = p.status?.phase === 'Running' ? this.storage.pod(ns, name) : undefined;
    if (!m) throw new HttpError(404, 'NotFound', `podmetrics.metrics.k8s.io ${JSON.stringify(`${ns}/${name}`)} not found`, { name: `${ns}/${name}`, group: GROUP, kind: 'podmetrics' });
    return podMetrics({ name, namespace: ns, ...(p.metadata?.labels ? { labels: p.metadata.labels } : {}) }, m, Date.now());
  }

  /** How long ago the last scrape finished (ms), for health. */
  get sinceLastScrapeMs(): number {
    return this.lastScrape ? Date.now() - this.lastScrape : Infinity;
  }
}
