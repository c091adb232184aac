// The aggregation layer (kube-aggregator inside kube-apiserver): APIServices route a group/version to another API
// server behind a Service. This module keeps
//   - the local APIServices kube-apiserver registers for its own group/versions and for CRD groups (autoregister),
//   - each remote APIService's `Available` condition (Service present, a ready endpoint, its discovery answering),
//   - the remote servers' discovery documents, merged into /apis and the aggregated discovery, and
//   - the proxy: a request for a remote group/version, once authenticated and authorized here (RBAC applies as to any
//     request), goes to a ready endpoint of the Service over TLS with the front-proxy client certificate, the user in
//     X-Remote-User / X-Remote-Group / X-Remote-Extra-*, and no credentials of the caller.
import { request as httpsRequest, Agent, type RequestOptions } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../../log.js';
import type { UserInfo } from '../auth/user.js';
import { ApiError } from '../errors.js';
import { resourceKey, type Registry } from '../registry.js';
import type { Store, StoreEvent } from '../store.js';
import { isObj, jsonEqual, nowRFC3339, obj, randomUID, str, type Obj } from '../util.js';
import { availableCondition } from './apiservice.js';
import { REMOTE_EXTRA_PREFIX, REMOTE_GROUP_HEADER, REMOTE_USER_HEADER, type FrontProxyPki } from './front-proxy.js';
import { resolveServicePort } from './resolve.js';

export const APISERVICES = resourceKey('apiregistration.k8s.io', 'apiservices');
const AUTOMANAGED = 'kube-aggregator.kubernetes.io/automanaged';
/** The identity the availability checks present to extension servers (kube-aggregator's). */
const CHECK_USER = 'system:kube-aggregator';
const CHECK_GROUPS = ['system:masters'];

/** groupPriorityMinimum / versionPriority of the built-in group versions (kube-apiserver's apiVersionPriorities). */
const PRIORITIES: Record<string, [number, number]> = {
  'v1.': [18000, 1],
  'v1.apiregistration.k8s.io': [18000, 15],
  'v1.apps': [17800, 15],
  'v1.events.k8s.io': [17750, 15],
  'v1.authentication.k8s.io': [17700, 15],
  'v1.authorization.k8s.io': [17600, 15],
  'v2.autoscaling': [17500, 30],
  'v1.autoscaling': [17500, 15],
  'v1.networking.k8s.io': [17200, 15],
  'v1.policy': [17100, 15],
  'v1.rbac.authorization.k8s.io': [17000, 15],
  'v1.admissionregistration.k8s.io': [16700, 15],
  'v1.apiextensions.k8s.io': [16700, 15],
  'v1.scheduling.k8s.io': [16600, 15],
  'v1.coordination.k8s.io': [16500, 15],
  'v1.discovery.k8s.io': [16200, 15],
};
/** Custom resource groups (crdregistration's defaults). */
const CRD_PRIORITY: [number, number] = [1000, 100];

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

export interface AggregatorOptions {
  store: Store;
  registry: Registry;
  frontProxy: FrontProxyPki;
  log: Logger;
  /** How often every remote APIService is checked again (kube: 30 s). */
  checkIntervalMs?: number;
  /** Timeout of a discovery check (kube: 5 s). */
  checkTimeoutMs?: number;
  /**
   * The longest wait before an unavailable APIService is checked again (default 5 s). The first retries come sooner
   * (200 ms, doubling), as kube-aggregator's rate-limited queue retries a failing item: a server that is still starting
   * when its APIService is registered turns Available within a fraction of a second of serving.
   */
  retryUnavailableMs?: number;
}

interface RemoteDiscovery {
  resources: Obj[];
  fresh: boolean;
}

const apiServiceName = (group: string, version: string): string => `${version}.${group}`;

/** What Go's net/http would say about a failed request, for condition messages users compare with a real cluster's. */
function goError(e: unknown, url: string): string {
  const err = e as NodeJS.ErrnoException;
  const u = new URL(url);
  const hostPort = `${u.hostname.replace(/^\[|\]$/g, '')}:${u.port}`;
  switch (err.code) {
    case 'ECONNREFUSED':
      return `Get "${url}": dial tcp ${hostPort}: connect: connection refused`;
    case 'EHOSTUNREACH':
      return `Get "${url}": dial tcp ${hostPort}: connect: no route to host`;
    case 'ETIMEDOUT':
    case 'ABORT_ERR':
      return `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`;
    default:
      return `Get "${url}": ${err.message}`;
  }
}

export class Aggregator {
  private readonly store: Store;
  private readonly discovery = new Map<string, RemoteDiscovery>();
  private readonly agents = new Map<string, Agent>();
  private readonly unwatch: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Consecutive rounds with an unavailable APIService (for the retry back-off). */
  private failedRounds = 0;

  constructor(private readonly o: AggregatorOptions) {
    this.store = o.store;
  }

  start(): void {
    this.autoregister();
    const onChange = (ev: StoreEvent): void => {
      // our own status writes must not start another round
      if (ev.key === APISERVICES && ev.type === 'MODIFIED' && ev.prev && jsonEqual(ev.prev.spec, ev.object.spec)) return;
      this.schedule();
    };
    for (const key of [APISERVICES, resourceKey('', 'services'), resourceKey('discovery.k8s.io', 'endpointslices'), resourceKey('', 'endpoints')])
      this.unwatch.push(this.store.watch({ key, onEvent: onChange }));
    this.unwatch.push(this.store.watch({ key: resourceKey('apiextensions.k8s.io', 'customresourcedefinitions'), onEvent: () => this.schedule() }));
    this.timer = setInterval(() => this.schedule(0), this.o.checkIntervalMs ?? 30_000);
    this.timer.unref();
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    for (const u of this.unwatch.splice(0)) u();
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }


  private schedule(delayMs = 100): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.autoregister();
      this.checkAll();
    }, delayMs);
    this.debounce.unref();
  }

  private checkAll(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          const remote = this.store.list(APISERVICES).filter((a) => isObj(obj(a.spec).service));
          const ok = await Promise.all(remote.map((a) => this.checkOne(a)));
          // an unavailable server is looked at again soon, not only at the next resync
          if (ok.includes(false)) this.schedule(Math.min(this.o.retryUnavailableMs ?? 5000, 200 * 2 ** this.failedRounds++));
          else this.failedRounds = 0;
          for (const name of [...this.discovery.keys()]) if (!remote.some((a) => obj(a.metadata).name === name)) this.discovery.delete(name);
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
  }

  // ---------- local APIServices (autoregister) ----------

  /** One Local APIService per group/version this server serves itself, as kube-apiserver registers them. */
  private autoregister(): void {
    const wanted = new Map<string, Obj>();
    for (const g of this.o.registry.groups()) {
      for (const v of g.versions) {
        const name = apiServiceName(g.group, v.version);
        const custom = v.resources.every(({ rt }) => rt.crd !== undefined);
        const [gp, vp] = PRIORITIES[name] ?? (custom ? CRD_PRIORITY : [15000, 15]);
        wanted.set(name, {
          apiVersion: 'apiregistration.k8s.io/v1',
          kind: 'APIService',
          metadata: { name, labels: { [AUTOMANAGED]: custom ? 'true' : 'onstart' } },
          spec: { group: g.group, version: v.version, groupPriorityMinimum: gp, versionPriority: vp },
        });
      }
    }
    for (const [name, desired] of wanted) {
      const existing = this.store.get(APISERVICES, '', name);
      if (existing && isObj(obj(existing.spec).service)) continue; // an administrator's remote registration wins
      const spec = obj(desired.spec);
      if (existing && jsonEqual(existing.spec, spec) && availableCondition(existing)?.reason === 'Local') continue;
      const now = nowRFC3339();
      const meta = existing ? { ...obj(existing.metadata), labels: obj(obj(desired.metadata).labels) } : { ...obj(desired.metadata), uid: randomUID(), creationTimestamp: now };
      const status = { conditions: [{ type: 'Available', status: 'True', lastTransitionTime: now, reason: 'Local', message: 'Local APIServices are always available' }] };
      this.store.put(APISERVICES, { ...desired, metadata: meta, status }, existing ? 'MODIFIED' : 'ADDED');
    }
    for (const a of this.store.list(APISERVICES)) {
      const m = obj(a.metadata);
      if (obj(m.labels)[AUTOMANAGED] === undefined || isObj(obj(a.spec).service) || wanted.has(String(m.name))) continue;
      this.store.remove(APISERVICES, { ...a, metadata: { ...m } });
    }
  }

  // ---------- availability ----------

  private agentFor(apisvc: Obj): { agent: Agent; tls: RequestOptions } {
    const spec = obj(apisvc.spec);
    const svc = obj(spec.service);
    const ca = str(spec.caBundle) ? Buffer.from(String(spec.caBundle), 'base64').toString('utf8') : undefined;
    const insecure = spec.insecureSkipTLSVerify === true;
    const key = `${String(svc.namespace)}/${String(svc.name)}|${insecure}|${ca ?? ''}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({ keepAlive: true, maxSockets: 32 });
      this.agents.set(key, agent);
    }
    return {
      agent,
      tls: {
        cert: this.o.frontProxy.clientCert,
        key: this.o.frontProxy.clientKey,
        ...(ca ? { ca } : {}),
        rejectUnauthorized: !insecure,
        servername: `${String(svc.name)}.${String(svc.namespace)}.svc`,
      },
    };
  }

  private async checkOne(apisvc: Obj): Promise<boolean> {
    const name = String(obj(apisvc.metadata).name);
    const spec = obj(apisvc.spec);
    const svc = obj(spec.service);
    const r = resolveServicePort(this.store, String(svc.namespace ?? ''), String(svc.name ?? ''), typeof svc.port === 'number' ? svc.port : 443);
    let cond: { status: string; reason: string; message: string };
    if (!r.ok) cond = { status: 'False', reason: r.reason, message: r.message };
    else {
      const url = `https://${r.host.includes(':') ? `[${r.host}]` : r.host}:${r.port}/apis/${String(spec.group)}/${String(spec.version)}`;
      try {
        const { status, body } = await this.fetch(apisvc, url, { [REMOTE_USER_HEADER]: CHECK_USER, [REMOTE_GROUP_HEADER]: CHECK_GROUPS });
        if (status < 200 || status > 299) throw new Error(`bad status from ${url}: ${status}`);
        const doc = JSON.parse(body) as Obj;
        this.discovery.set(name, { resources: Array.isArray(doc.resources) ? doc.resources.map(obj) : [], fresh: true });
        cond = { status: 'True', reason: 'Passed', message: 'all checks passed' };
      } catch (e) {
        const msg = e instanceof Error && e.message.startsWith('bad status') ? e.message : goError(e, url);
        cond = { status: 'False', reason: 'FailedDiscoveryCheck', message: `failing or missing response from ${url}: ${msg}` };
      }
    }
    const known = this.discovery.get(name);
    if (cond.status !== 'True' && known) known.fresh = false;
    this.setAvailable(name, cond);
    return cond.status === 'True';
  }

  private fetch(apisvc: Obj, url: string, extra: Record<string, string | string[]>): Promise<{ status: number; body: string }> {
    const { agent, tls } = this.agentFor(apisvc);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, { method: 'GET', agent, ...tls, headers: { Accept: 'application/json', ...extra }, timeout: this.o.checkTimeoutMs ?? 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end();
    });
  }

  private setAvailable(name: string, c: { status: string; reason: string; message: string }): void {
    const current = this.store.get(APISERVICES, '', name);
    if (!current) return;
    const prev = availableCondition(current);
    if (prev && prev.status === c.status && prev.reason === c.reason && prev.message === c.message) return;
    const lastTransitionTime = prev && prev.status === c.status ? prev.lastTransitionTime : nowRFC3339();
    const conditions = [...(Array.isArray(obj(current.status).conditions) ? (obj(current.status).conditions as unknown[]).map(obj) : []).filter((x) => x.type !== 'Available'), { type: 'Available', status: c.status, lastTransitionTime, reason: c.reason, message: c.message }];
    this.store.put(APISERVICES, { ...current, metadata: { ...obj(current.metadata) }, status: { ...obj(current.status), conditions } }, 'MODIFIED');
    if (c.status !== 'True') this.o.log.info({ apiservice: name, reason: c.reason, message: c.message }, 'APIService not available');
    else this.o.log.info({ apiservice: name }, 'APIService available');
  }

  // ---------- discovery ----------

  private remote(): Obj[] {
    return this.store.list(APISERVICES).filter((a) => isObj(obj(a.spec).service));
  }

  /** A remote APIService serves this group/version (and requests for it are proxied). */
  handles(group: string, version: string): boolean {
    const a = this.store.get(APISERVICES, '', apiServiceName(group, version));
    return a !== undefined && isObj(obj(a.spec).service);
  }

  /** Groups served only by other servers, with their versions by priority (kube-aggregator's /apis entries). */
  private remoteGroupVersions(): { group: string; priority: number; versions: string[] }[] {
    const local = new Set(this.o.registry.groups().map((g) => g.group));
    const byGroup = new Map<string, Obj[]>();
    for (const a of this.remote()) {
      const g = String(obj(a.spec).group ?? '');
      if (local.has(g) || g === '') continue;
      byGroup.set(g, [...(byGroup.get(g) ?? []), a]);
    }
    return [...byGroup.entries()]
      .map(([group, list]) => ({
        group,
        priority: Math.max(...list.map((a) => Number(obj(a.spec).groupPriorityMinimum ?? 0))),
        versions: list.sort((x, y) => Number(obj(y.spec).versionPriority ?? 0) - Number(obj(x.spec).versionPriority ?? 0) || String(obj(x.spec).version).localeCompare(String(obj(y.spec).version))).map((a) => String(obj(a.spec).version)),
      }))
      .sort((x, y) => y.priority - x.priority || x.group.localeCompare(y.group));
  }

  private groupDoc(group: string, versions: string[]): Obj {
    const vs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
    return { name: group, versions: vs, preferredVersion: vs[0] };
  }

  /** APIGroup entries of the remote groups, for the APIGroupList at /apis. */
  remoteGroups(): Obj[] {
    return this.remoteGroupVersions().map((g) => this.groupDoc(g.group, g.versions));
  }

  /** The APIGroup document of a remote group (`/apis/<group>`), if there is one. */
  remoteGroup(group: string): Obj | undefined {
    const g = this.remoteGroupVersions().find((x) => x.group === group);
    return g ? { kind: 'APIGroup', apiVersion: 'v1', ...this.groupDoc(g.group, g.versions) } : undefined;
  }

  /** APIGroupDiscovery items of the remote groups (aggregated discovery), from their servers' discovery documents. */
  aggregatedItems(): Obj[] {
    const items: Obj[] = [];
    for (const g of this.remoteGroupVersions()) {
      const versions: Obj[] = [];
      for (const v of g.versions) {
        const d = this.discovery.get(apiServiceName(g.group, v));
        if (!d) continue;
        const main = d.resources.filter((r) => !String(r.name ?? '').includes('/'));
        versions.push({
          version: v,
          resources: main.map((r) => {
            const subs = d.resources.filter((s) => String(s.name ?? '').startsWith(`${String(r.name)}/`));
            return {
              resource: r.name,
              responseKind: { group: str(r.group) ?? g.group, version: str(r.version) ?? v, kind: r.kind },
              scope: r.namespaced === true ? 'Namespaced' : 'Cluster',
              singularResource: r.singularName ?? '',
              verbs: Array.isArray(r.verbs) ? r.verbs : [],
              ...(Array.isArray(r.shortNames) && r.shortNames.length ? { shortNames: r.shortNames } : {}),
              ...(Array.isArray(r.categories) && r.categories.length ? { categories: r.categories } : {}),
              ...(subs.length
                ? {
                    subresources: subs.map((s) => ({
                      subresource: String(s.name).split('/')[1],
                      responseKind: { group: str(s.group) ?? g.group, version: str(s.version) ?? v, kind: s.kind },
                      verbs: Array.isArray(s.verbs) ? s.verbs : [],
                    })),
                  }
                : {}),
            };
          }),
          freshness: d.fresh ? 'Current' : 'Stale',
        });
      }
      if (versions.length) items.push({ metadata: { name: g.group, creationTimestamp: null }, versions });
    }
    return items;
  }

  // ---------- proxy ----------

  /** Proxies a request for a remote group/version (authentication and authorization already passed). */
  async proxy(req: IncomingMessage, res: ServerResponse, url: URL, user: UserInfo, group: string, version: string): Promise<void> {
    const apisvc = this.store.get(APISERVICES, '', apiServiceName(group, version));
    const fail = (): void => {
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
      res.end('service unavailable\n');
    };
    if (!apisvc || availableCondition(apisvc)?.status === 'False') return fail();
    const svc = obj(obj(apisvc.spec).service);
    const r = resolveServicePort(this.store, String(svc.namespace ?? ''), String(svc.name ?? ''), typeof svc.port === 'number' ? svc.port : 443);
    if (!r.ok) return fail();
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers as IncomingHttpHeaders)) {
      const lk = k.toLowerCase();
      if (v === undefined || HOP_BY_HOP.has(lk) || lk === 'authorization' || lk.startsWith('impersonate-') || lk.startsWith('x-remote-')) continue;
      headers[k] = v;
    }
    headers[REMOTE_USER_HEADER] = user.username;
    if (user.groups.length) headers[REMOTE_GROUP_HEADER] = [...user.groups];
    for (const [k, vs] of Object.entries(user.extra ?? {})) headers[`${REMOTE_EXTRA_PREFIX}${encodeURIComponent(k)}`] = [...vs];
    const { agent, tls } = this.agentFor(apisvc);
    const target = `https://${r.host.includes(':') ? `[${r.host}]` : r.host}:${r.port}${url.pathname}${url.search}`;
    await new Promise<void>((done) => {
      const up = httpsRequest(target, { method: req.method ?? 'GET', agent, ...tls, headers }, (ures) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(ures.headers)) if (v !== undefined && !HOP_BY_HOP.has(k.toLowerCase())) out[k] = v;
        res.writeHead(ures.statusCode ?? 502, out);
        ures.pipe(res);
        ures.on('end', done);
        ures.on('error', () => {
          res.destroy();
          done();
        });
      });
      up.on('error', (e) => {
        this.schedule();
        if (!res.headersSent) {
          const err = new ApiError(503, 'ServiceUnavailable', `error trying to reach service: ${goError(e, target).replace(/^Get "[^"]*": /, '')}`);
          const body = JSON.stringify(err.toStatus());
          res.writeHead(503, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
          res.end(body);
        } else res.destroy();
        done();
      });
      res.on('close', () => up.destroy());
      req.pipe(up);
    });
  }
}
