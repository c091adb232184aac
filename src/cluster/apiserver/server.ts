// startDevApiServer: wire store, registry, API semantics, authentication/authorization and the HTTP(S) listeners;
// PKI, kubeconfigs and the data file.
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createLogger, type Logger, type LogLevel } from '../../log.js';
import { Api } from './api.js';
import { Authenticator } from './auth/authn.js';
import { Authorizer, type AuthorizationMode } from './auth/authz.js';
import { RbacAuthorizer } from './auth/rbac.js';
import { ensureBootstrapPolicy, reconcileAggregation, startAggregationController, storeRbacSource } from './auth/rbac-store.js';
import { DEFAULT_ISSUER, ServiceAccountTokens, type ObjectLookup } from './auth/sa-tokens.js';
import { readTokenFile } from './auth/token-file.js';
import { SYSTEM_MASTERS, type UserInfo } from './auth/user.js';
import type { AuthStack } from './auth/stack.js';
import { loadBuiltinModels } from './builtin-fields.js';
import { ensureKubeProxyConfigMap, reconcileKubernetesEndpoints } from './control-plane-objects.js';
import { HttpHandler } from './http.js';
import { AuditLog } from './audit.js';
import { AdmissionWebhooks } from './admission/webhooks.js';
import { podLogProxy } from './podlog.js';
import { CidrAllocator, PortAllocator } from './ipalloc.js';
import { kubeconfigFor, writeKubeconfigFile } from './kubeconfig.js';
import { loadSnapshot, Persister } from './persistence.js';
import { ephemeralSigningKey, loadOrCreatePki, signCert, type Pki } from './pki.js';
import { Registry, resourceKey } from './registry.js';
import { Store } from './store.js';
import { Aggregator } from './aggregator/aggregator.js';
import { loadOrCreateFrontProxyPki, publishExtensionAuthentication, type FrontProxyPki } from './aggregator/front-proxy.js';

export interface ExtraKubeconfig {
  user: string;
  groups: string[];
  path: string;
}

export interface DevApiServerOptions {
  /** Plain HTTP port (0: any free port). Default: 0 without `certDir`, no plain HTTP with it. null: none. */
  port?: number | null;
  /** Plain HTTP address (default 127.0.0.1). */
  host?: string;
  /** HTTPS: the PKI directory (CA, serving certificate, service-account key, admin certificate), created if missing. */
  certDir?: string;
  /** HTTPS port (default 6443; 0: any free port). */
  securePort?: number;
  /** HTTPS addresses (default ['127.0.0.1']). */
  bindAddresses?: string[];
  /** Extra names / IPs in the serving certificate (the defaults cover the kubernetes Service names and IPs). */
  tlsSans?: string[];
  /** The address clients and the `kubernetes` Service's endpoints use (default: the first specific bind address). */
  advertiseAddress?: string;
  /** kube-apiserver's `--token-auth-file` (`token,user,uid,"group1,group2"`). */
  tokenAuthFile?: string;
  /** A token for `kubernetes-admin` in `system:masters` (default `metallb-dev-token` without TLS, none with it). */
  adminToken?: string;
  /** Default: RBAC with TLS, AlwaysAllow without (plain-HTTP dev mode). */
  authorizationMode?: AuthorizationMode;
  /** `--anonymous-auth` (default true). */
  anonymousAuth?: boolean;
  /** Create `kube-system/kube-proxy` (kubeadm's ConfigMap) at bootstrap with this proxy mode. */
  kubeProxyConfigMap?: { mode: string; clusterCIDR?: string };
  serviceAccountIssuer?: string;
  apiAudiences?: string[];
  serviceAccountMaxTokenExpirationSeconds?: number;
  /** Kubeconfigs (client certificates signed by the CA) written for other identities, e.g. the lab's components. */
  extraKubeconfigs?: ExtraKubeconfig[];
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
  /** deprecated alias of adminToken */
  token?: string;
  /** kube-apiserver's `--audit-log-path`: one audit.k8s.io/v1 Event (level Metadata) per request; `-` = stdout */
  auditLogPath?: string;
  /** How often the aggregator checks remote APIServices (default 30 s). */
  aggregatorCheckIntervalMs?: number;
  /**
   * Empty terminating namespaces and finalize them here (default true), for a server used without a namespace
   * controller; false leaves that to one (`metallb cluster controller-manager`), as kube-apiserver does.
   */
  namespaceController?: boolean;
}

export interface DevApiServer {
  /** The URL clients use: HTTPS when TLS is on, else plain HTTP. */
  url: string;
  host: string;
  port: number;
  httpUrl?: string;
  httpsUrl?: string;
  kubeconfigPath?: string;
  /** admin kubeconfig YAML for this server */
  kubeconfig: string;
  /** PEM of the cluster CA (TLS only) */
  caCert?: string;
  pki?: Pki;
  store: Store;
  api: Api;
  registry: Registry;
  auth: AuthStack;
  /** The aggregation layer (APIServices of other API servers). */
  aggregator: Aggregator;
  /** The front proxy's CA and client certificate (what extension API servers trust). */
  frontProxy: FrontProxyPki;
  /** A kubeconfig for `user` in `groups` (a client certificate signed by the CA; TLS only). */
  kubeconfigForUser(user: string, groups: string[]): Promise<string>;
  /** write the data file now (if any) */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The plain-HTTP kubeconfig (token user). */
export function kubeconfigYaml(url: string, token: string): string {
  return kubeconfigFor({ server: url, user: 'metallb-dev', credentials: { token } });
}

const urlHost = (h: string): string => (h.includes(':') ? `[${h}]` : h);
const isWildcard = (h: string): boolean => h === '0.0.0.0' || h === '::' || h === '';

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function tuned(server: Server): Server {
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.requestTimeout = 0;
  return server;
}

export async function startDevApiServer(opts: DevApiServerOptions = {}): Promise<DevApiServer> {
  const log = opts.logger ?? createLogger('dev-apiserver', opts.logLevel ?? 'info');
  const host = opts.host ?? '127.0.0.1';
  const tls = opts.certDir !== undefined;
  const httpPort = opts.port === null ? undefined : (opts.port ?? (tls ? undefined : 0));
  const alloc = {
    ...(opts.serviceCIDR !== '' ? { v4: new CidrAllocator(opts.serviceCIDR ?? '10.96.0.0/12') } : {}),
    ...(opts.serviceCIDRv6 ? { v6: new CidrAllocator(opts.serviceCIDRv6) } : {}),
    nodePorts: PortAllocator.parse(opts.nodePortRange ?? '30000-32767'),
  };
  if (alloc.v4 && alloc.v4.family !== 'IPv4') throw new Error(`--service-cidr must be an IPv4 CIDR, got ${opts.serviceCIDR}`);
  if (alloc.v6 && alloc.v6.family !== 'IPv6') throw new Error(`--service-cidr-v6 must be an IPv6 CIDR, got ${opts.serviceCIDRv6}`);
  if (opts.advertiseAddress !== undefined && !isIP(opts.advertiseAddress)) throw new Error(`--advertise-address must be an IP address, got ${JSON.stringify(opts.advertiseAddress)}`);
  const bindAddresses = opts.bindAddresses?.length ? opts.bindAddresses : ['127.0.0.1'];
  for (const b of bindAddresses) if (!isIP(b)) throw new Error(`--bind-address must be an IP address, got ${JSON.stringify(b)}`);
  if (!tls && httpPort === undefined) throw new Error('nothing to listen on: give a plain HTTP port or --cert-dir for HTTPS');

  const staticTokens = opts.tokenAuthFile ? readTokenFile(opts.tokenAuthFile) : new Map<string, UserInfo>();
  const adminToken = opts.adminToken ?? opts.token ?? (tls ? undefined : 'metallb-dev-token');
  if (adminToken) staticTokens.set(adminToken, { username: 'kubernetes-admin', groups: [SYSTEM_MASTERS] });

  const advertise = opts.advertiseAddress ?? bindAddresses.find((b) => !isWildcard(b)) ?? '127.0.0.1';
  let pki: Pki | undefined;
  if (tls) {
    const sans = new Set<string>(['127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local']);
    if (alloc.v4) sans.add(alloc.v4.firstIP());
    if (alloc.v6) sans.add(alloc.v6.firstIP());
    sans.add(advertise);
    for (const b of bindAddresses) if (!isWildcard(b)) sans.add(b);
    for (const s of opts.tlsSans ?? []) sans.add(s);
    pki = await loadOrCreatePki(opts.certDir!, [...sans], (what) => log.info({ certDir: opts.certDir, what }, 'generated'));
  }

  await loadBuiltinModels();
  const store = new Store(opts.historySize ?? 20000);
  const registry = new Registry();
  const api = new Api(store, registry, alloc);
  api.builtinNamespaceController = opts.namespaceController ?? true;
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
  ensureBootstrapPolicy(store);
  reconcileAggregation(store);
  const stopAggregation = startAggregationController(store);

  const lookup: ObjectLookup = (resource, ns, name) => store.get(resourceKey('', resource), ns, name);
  const signing = pki ?? ephemeralSigningKey();
  const issuer = opts.serviceAccountIssuer ?? DEFAULT_ISSUER;
  const apiAudiences = opts.apiAudiences?.length ? opts.apiAudiences : [issuer];
  const tokens = new ServiceAccountTokens(signing.saKey, signing.saPub, lookup, issuer, apiAudiences);
  api.serviceAccountTokens = tokens;
  if (pki) api.caCert = pki.caCert;
  const mode: AuthorizationMode = opts.authorizationMode ?? (tls ? 'RBAC' : 'AlwaysAllow');
  const auth: AuthStack = {
    authenticator: new Authenticator({
      staticTokens,
      saTokens: tokens,
      anonymous: opts.anonymousAuth ?? true,
      onReject: (reason) => log.debug({ reason }, 'authentication failed'),
    }),
    authorizer: new Authorizer(mode, new RbacAuthorizer(storeRbacSource(store))),
    rbacSource: storeRbacSource(store),
    tokens,
    apiAudiences,
    lookup,
    ...(opts.serviceAccountMaxTokenExpirationSeconds !== undefined ? { maxTokenExpirationSeconds: opts.serviceAccountMaxTokenExpirationSeconds } : {}),
  };

  if (opts.dataFile) {
    const file = opts.dataFile;
    persister = new Persister(file, store, opts.persistDebounceMs ?? 500, (e) => log.error({ err: String(e), dataFile: file }, 'writing data file failed'));
    store.onChange = () => persister!.changed();
    persister.changed();
  }

  const frontProxy = await loadOrCreateFrontProxyPki(opts.certDir);
  publishExtensionAuthentication(store, frontProxy, pki?.caCert);
  const aggregator = new Aggregator({ store, registry, frontProxy, log, ...(opts.aggregatorCheckIntervalMs ? { checkIntervalMs: opts.aggregatorCheckIntervalMs } : {}) });

  let address = '';
  const auditLog = opts.auditLogPath ? new AuditLog(opts.auditLogPath) : undefined;
  const webhooks = new AdmissionWebhooks(store, registry, log);
  const handler = new HttpHandler({
    api,
    store,
    registry,
    log,
    auth,
    webhooks,
    podLogs: podLogProxy(store, log),
    serverAddress: () => address,
    ...(opts.bookmarkIntervalMs ? { bookmarkIntervalMs: opts.bookmarkIntervalMs } : {}),
    ...(auditLog ? { audit: (r) => auditLog.write(r) } : {}),
    aggregator,
  });
  const listener: RequestListener = handler.handle;
  const servers: Server[] = [];
  const closeAll = async (): Promise<void> => {
    handler.closeWatches();
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  };
  let httpUrl: string | undefined;
  let httpsUrl: string | undefined;
  let securePort = 0;
  try {
    if (httpPort !== undefined) {
      const s = tuned(createServer(listener));
      servers.push(s);
      const p = await listen(s, httpPort, host);
      httpUrl = `http://${urlHost(host)}:${p}`;
      address = `${urlHost(host)}:${p}`;
    }
    if (pki) {
      securePort = opts.securePort ?? 6443;
      for (const b of bindAddresses) {
        // client certificates are asked for, not required: tokens and anonymous requests are fine too
        const s = tuned(createHttpsServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: false }, listener) as unknown as Server);
        servers.push(s);
        securePort = await listen(s, securePort, b);
      }
      const clientHost = opts.advertiseAddress ?? (isWildcard(bindAddresses[0]!) ? '127.0.0.1' : bindAddresses[0]!);
      httpsUrl = `https://${urlHost(clientHost)}:${securePort}`;
      address = `${urlHost(clientHost)}:${securePort}`;
    }
  } catch (e) {
    await closeAll();
    stopAggregation();
    aggregator.stop();
    auditLog?.close();
    throw e;
  }
  // kube-apiserver's endpoint reconciler: the kubernetes Service and its endpoints are put back if changed or deleted
  let endpointTimer: NodeJS.Timeout | undefined;
  if (pki) {
    const reconcile = (): void => {
      try {
        api.bootstrap();
        reconcileKubernetesEndpoints(api, advertise, securePort);
      } catch (e) {
        log.warn({ err: e instanceof Error ? e.message : String(e) }, 'reconciling the kubernetes Service endpoints failed');
      }
    };
    reconcile();
    endpointTimer = setInterval(reconcile, 10_000);
    endpointTimer.unref();
  }
  aggregator.start();
  const url = httpsUrl ?? httpUrl!;
  if (opts.kubeProxyConfigMap) ensureKubeProxyConfigMap(api, { mode: opts.kubeProxyConfigMap.mode, clusterCIDR: opts.kubeProxyConfigMap.clusterCIDR ?? '10.244.0.0/16', server: url });

  const kubeconfigForUser = async (user: string, groups: string[]): Promise<string> => {
    if (!pki) throw new Error('client certificates need TLS (--cert-dir)');
    const c = await signCert({ cert: pki.caCert, key: pki.caKey }, { commonName: user, organizations: groups, usage: 'client' });
    return kubeconfigFor({ server: url, caCert: pki.caCert, user, credentials: c });
  };
  const kubeconfig = pki
    ? kubeconfigFor({ server: url, caCert: pki.caCert, user: 'kubernetes-admin', credentials: { cert: pki.adminCert, key: pki.adminKey } })
    : kubeconfigYaml(url, adminToken ?? 'metallb-dev-token');
  // the admin kubeconfig last: whoever waits for it finds the others written
  for (const x of opts.extraKubeconfigs ?? []) writeKubeconfigFile(x.path, await kubeconfigForUser(x.user, x.groups));
  if (opts.kubeconfigOut) writeKubeconfigFile(opts.kubeconfigOut, kubeconfig);

  let closed = false;
  const primaryPort = Number(new URL(url).port);
  return {
    url,
    host: pki ? new URL(url).hostname.replace(/^\[|\]$/g, '') : host,
    port: primaryPort,
    ...(httpUrl ? { httpUrl } : {}),
    ...(httpsUrl ? { httpsUrl } : {}),
    ...(opts.kubeconfigOut ? { kubeconfigPath: opts.kubeconfigOut } : {}),
    kubeconfig,
    ...(pki ? { caCert: pki.caCert, pki } : {}),
    store,
    api,
    registry,
    auth,
    aggregator,
    frontProxy,
    kubeconfigForUser,
    flush: async () => {
      await persister?.flush();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      if (endpointTimer) clearInterval(endpointTimer);
      stopAggregation();
      aggregator.stop();
      await closeAll();
      auditLog?.close();
      if (persister) {
        persister.stop();
        persister.flushSync();
      }
    },
  };
}
