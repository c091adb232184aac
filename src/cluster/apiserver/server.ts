// startDevApiServer: wire store, registry, API semantics and the HTTP layer; kubeconfig and data file.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createLogger, type Logger, type LogLevel } from '../../log.js';
import { Api } from './api.js';
import { loadBuiltinModels } from './builtin-fields.js';
import { HttpHandler } from './http.js';
import { CidrAllocator, PortAllocator } from './ipalloc.js';
import { loadSnapshot, Persister } from './persistence.js';
import { Registry } from './registry.js';
import { Store } from './store.js';

export interface DevApiServerOptions {
  /** 0 (default): any free port */
  port?: number;
  host?: string;
  kubeconfigOut?: string;
  dataFile?: string;
  serviceCIDR?: string;
  serviceCIDRv6?: string;
  nodePortRange?: string;
  logLevel?: LogLevel;
  logger?: Logger;
  /** watch event history kept for resumption (default 20000) */
  historySize?: number;
  /** debounce of data file writes (default 500 ms) */
  persistDebounceMs?: number;
  /** BOOKMARK interval on watches that allow bookmarks (default 10 s) */
  bookmarkIntervalMs?: number;
  /** the token of the kubeconfig user (any token is accepted) */
  token?: string;
}

export interface DevApiServer {
  url: string;
  host: string;
  port: number;
  kubeconfigPath?: string;
  /** kubeconfig YAML for this server */
  kubeconfig: string;
  store: Store;
  api: Api;
  registry: Registry;
  /** write the data file now (if any) */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function kubeconfigYaml(url: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: metallb-dev',
    '  cluster:',
    `    server: ${url}`,
    // plain http on loopback; @kubernetes/client-node only allows http: with this set (kubectl ignores it)
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: metallb-dev',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: metallb-dev',
    '  context:',
    '    cluster: metallb-dev',
    '    user: metallb-dev',
    '    namespace: default',
    'current-context: metallb-dev',
    '',
  ].join('\n');
}

export async function startDevApiServer(opts: DevApiServerOptions = {}): Promise<DevApiServer> {
  const log = opts.logger ?? createLogger('dev-apiserver', opts.logLevel ?? 'info');
  const host = opts.host ?? '127.0.0.1';
  const alloc = {
    ...(opts.serviceCIDR !== '' ? { v4: new CidrAllocator(opts.serviceCIDR ?? '10.96.0.0/12') } : {}),
    ...(opts.serviceCIDRv6 ? { v6: new CidrAllocator(opts.serviceCIDRv6) } : {}),
    nodePorts: PortAllocator.parse(opts.nodePortRange ?? '30000-32767'),
  };
  if (alloc.v4 && alloc.v4.family !== 'IPv4') throw new Error(`--service-cidr must be an IPv4 CIDR, got ${opts.serviceCIDR}`);
  if (alloc.v6 && alloc.v6.family !== 'IPv6') throw new Error(`--service-cidr-v6 must be an IPv6 CIDR, got ${opts.serviceCIDRv6}`);
  await loadBuiltinModels();
  const store = new Store(opts.historySize ?? 20000);
  const registry = new Registry();
  const api = new Api(store, registry, alloc);
  let persister: Persister | undefined;
  if (opts.dataFile) {
    mkdirSync(dirname(opts.dataFile), { recursive: true });
    const snap = loadSnapshot(opts.dataFile);
    if (snap) {
      store.load(snap);
      api.restore();
      log.info({ dataFile: opts.dataFile, resourceVersion: snap.resourceVersion }, 'loaded data file');
    }
  }
  api.bootstrap();
  if (opts.dataFile) {
    const file = opts.dataFile;
    persister = new Persister(file, store, opts.persistDebounceMs ?? 500, (e) => log.error({ err: String(e), dataFile: file }, 'writing data file failed'));
    store.onChange = () => persister!.changed();
    persister.changed();
  }

  let address = '';
  const handler = new HttpHandler({ api, store, registry, log, serverAddress: () => address, ...(opts.bookmarkIntervalMs ? { bookmarkIntervalMs: opts.bookmarkIntervalMs } : {}) });
  const server: Server = createServer(handler.handle);
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  address = `${urlHost}:${port}`;
  const url = `http://${address}`;
  const token = opts.token ?? 'metallb-dev-token';
  const kubeconfig = kubeconfigYaml(url, token);
  if (opts.kubeconfigOut) {
    mkdirSync(dirname(opts.kubeconfigOut), { recursive: true });
    const tmp = `${opts.kubeconfigOut}.tmp-${process.pid}`;
    writeFileSync(tmp, kubeconfig, { mode: 0o600 });
    renameSync(tmp, opts.kubeconfigOut);
  }
  let closed = false;
  return {
    url,
    host,
    port,
    ...(opts.kubeconfigOut ? { kubeconfigPath: opts.kubeconfigOut } : {}),
    kubeconfig,
    store,
    api,
    registry,
    flush: async () => {
      await persister?.flush();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      handler.closeWatches();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (persister) {
        persister.stop();
        persister.flushSync();
      }
    },
  };
}
