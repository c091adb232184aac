// A small Kubernetes REST client: kubeconfig loading with clear errors, plain-JSON requests over one keep-alive agent,
// and watch streams. Objects stay plain JSON (the shapes in ./types.ts) and thousands of writes share a few connections.
// The kubeconfig is read here (the `yaml` package) because importing @kubernetes/client-node costs seconds of startup;
// that library is loaded lazily, only for users authenticating through exec or auth-provider plugins.
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createSecureContext } from 'node:tls';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** The kubeconfig could not be used; `message` is one line naming the file and what is wrong. */
export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

/** Everything needed to talk to one API server as one user. */
export interface ClusterAccess {
  server: URL;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTLSVerify: boolean;
  tlsServerName?: string;
  /** Namespace of the current context, if any. */
  namespace?: string;
  /** Authentication headers for a request (re-evaluated periodically; tokens may rotate). */
  authHeaders(): Promise<Record<string, string>>;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function named(list: unknown, name: string, field: string): Rec | undefined {
  if (!Array.isArray(list)) return undefined;
  for (const e of list) if (isRec(e) && e.name === name && isRec(e[field])) return e[field] as Rec;
  return undefined;
}

/** Loads `path`, or the in-cluster service-account config when `path` is undefined. Throws KubeConfigError. */
export function loadKubeConfig(path?: string): ClusterAccess {
  if (path === undefined || path === '') return inCluster();
  const where = `kubeconfig ${path}`;
  if (!existsSync(path)) throw new KubeConfigError(`${where}: file does not exist`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KubeConfigError(`${where}: cannot read: ${errorText(err)}`);
  }
  if (text.trim() === '') throw new KubeConfigError(`${where}: file is empty`);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new KubeConfigError(`${where}: not valid YAML: ${firstLine(errorText(err))}`);
  }
  if (!isRec(doc)) throw new KubeConfigError(`${where}: not a kubeconfig (expected a mapping with clusters, users, contexts)`);
  const ctxName = str(doc['current-context']);
  if (!ctxName) throw new KubeConfigError(`${where}: no current-context set`);
  const ctx = named(doc.contexts, ctxName, 'context');
  if (!ctx) throw new KubeConfigError(`${where}: current-context "${ctxName}" is not defined in contexts`);
  const clusterName = str(ctx.cluster);
  if (!clusterName) throw new KubeConfigError(`${where}: context "${ctxName}" names no cluster`);
  const cluster = named(doc.clusters, clusterName, 'cluster');
  if (!cluster) throw new KubeConfigError(`${where}: context "${ctxName}" refers to undefined cluster "${clusterName}"`);
  const server = str(cluster.server);
  if (!server) throw new KubeConfigError(`${where}: cluster "${clusterName}" has no server URL`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeConfigError(`${where}: cluster "${clusterName}" has an invalid server URL "${server}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new KubeConfigError(`${where}: cluster "${clusterName}" server URL "${server}" is not http(s)`);
  }
  const userName = str(ctx.user);
  const user = userName ? named(doc.users, userName, 'user') : {};
  if (userName && !user) throw new KubeConfigError(`${where}: context "${ctxName}" refers to undefined user "${userName}"`);
  const u = user ?? {};
  const base = dirname(resolve(path));
  const material = (what: string, fileField: string, dataField: string, from: Rec): Buffer | undefined => {
    const data = str(from[dataField]);
    if (data) {
      const b = Buffer.from(data, 'base64');
      if (b.length === 0) throw new KubeConfigError(`${where}: ${dataField} is not valid base64`);
      return b;
    }
    const file = str(from[fileField]);
    if (!file) return undefined;
    const full = isAbsolute(file) ? file : resolve(base, file);
    if (!existsSync(full)) throw new KubeConfigError(`${where}: ${what} file ${full} does not exist`);
    try {
      return readFileSync(full);
    } catch (err) {
      throw new KubeConfigError(`${where}: ${what} file ${full} cannot be read: ${errorText(err)}`);
    }
  };
  const ca = material('certificate-authority', 'certificate-authority', 'certificate-authority-data', cluster);
  const cert = material('client-certificate', 'client-certificate', 'client-certificate-data', u);
  const key = material('client-key', 'client-key', 'client-key-data', u);
  if ((cert && !key) || (key && !cert)) throw new KubeConfigError(`${where}: user "${userName}" needs both a client certificate and a client key`);
  // Unusable TLS material is a configuration error now, not a TLS failure on every request later.
  const insecureSkipTLSVerify = cluster['insecure-skip-tls-verify'] === true;
  if (ca && !insecureSkipTLSVerify) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new KubeConfigError(`${where}: cluster "${clusterName}" certificate-authority is not a PEM or DER certificate (${firstLine(errorText(err))})`);
    }
  }
  if (cert && key) {
    try {
      createSecureContext({ cert, key });
    } catch (err) {
      throw new KubeConfigError(`${where}: user "${userName}" client certificate and key are not usable (${firstLine(errorText(err))})`);
    }
  }
  const token = str(u.token);
  const tokenFile = str(u.tokenFile);
  const tokenPath = tokenFile ? (isAbsolute(tokenFile) ? tokenFile : resolve(base, tokenFile)) : undefined;
  if (tokenPath && !existsSync(tokenPath)) throw new KubeConfigError(`${where}: tokenFile ${tokenPath} does not exist`);
  const username = str(u.username);
  const password = typeof u.password === 'string' ? u.password : '';
  const plugin = isRec(u.exec) || isRec(u['auth-provider']);
  let authHeaders: () => Promise<Record<string, string>>;
  if (token) authHeaders = async () => ({ Authorization: `Bearer ${token}` });
  else if (tokenPath) authHeaders = async () => ({ Authorization: `Bearer ${readFileSync(tokenPath, 'utf8').trim()}` });
  else if (username) authHeaders = async () => ({ Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` });
  else if (plugin) authHeaders = pluginAuth(path);
  else authHeaders = async () => ({});
  return {
    server: url,
    ca,
    cert,
    key,
    insecureSkipTLSVerify,
    tlsServerName: str(cluster['tls-server-name']),
    namespace: str(ctx.namespace),
    authHeaders,
  };
}

function inCluster(): ClusterAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeConfigError('no --kubeconfig given and not running in a cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set)');
  }
  const tokenPath = `${SA_DIR}/token`;
  if (!existsSync(tokenPath)) throw new KubeConfigError(`in-cluster config: service account token ${tokenPath} does not exist`);
  const caPath = `${SA_DIR}/ca.crt`;
  const h = host.includes(':') ? `[${host}]` : host;
  const nsFile = `${SA_DIR}/namespace`;
  return {
    server: new URL(`https://${h}:${port}`),
    ca: existsSync(caPath) ? readFileSync(caPath) : undefined,
    insecureSkipTLSVerify: false,
    namespace: existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : undefined,
    // The kubelet rotates the projected token: read it again each time headers are refreshed.
    authHeaders: async () => ({ Authorization: `Bearer ${readFileSync(tokenPath, 'utf8').trim()}` }),
  };
}

/** exec / auth-provider users: delegate to @kubernetes/client-node's authenticators (loaded on first use). */
function pluginAuth(path: string): () => Promise<Record<string, string>> {
  let kc: { applyToHTTPSOptions(o: https.RequestOptions): Promise<void> } | undefined;
  return async () => {
    if (!kc) {
      const { KubeConfig } = await import('@kubernetes/client-node');
      const k = new KubeConfig();
      k.loadFromFile(path);
      kc = k;
    }
    const o: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(o);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.headers ?? {})) if (typeof v === 'string') out[k] = v;
    return out;
  };
}

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const firstLine = (s: string): string => s.split('\n')[0] ?? s;

/** A Kubernetes API error (non-2xx answer) or a transport failure (status 0). */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly reason?: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.status === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof ApiError && err.status === 409 && err.reason === 'AlreadyExists';
export const isGone = (err: unknown): boolean => err instanceof ApiError && err.status === 410;

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Default `application/json`; merge patches use `application/merge-patch+json`. */
  contentType?: string;
  signal?: AbortSignal;
  /** Request timeout; default 30 s. */
  timeoutMs?: number;
}

export const MERGE_PATCH = 'application/merge-patch+json';

/** A watch stream in progress: `done` settles when the server ends it or on error; `abort` ends it. */
export interface WatchHandle {
  done: Promise<void>;
  abort(): void;
}

export interface KubeClientOptions {
  /** Most connections kept open to the API server. Default 32. */
  maxSockets?: number;
  userAgent?: string;
}

/** Serializes JSON where bigints are written as plain integer literals (Kubernetes int64 fields). */
export function toJSON(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') {
      marks.push(v.toString());
      return `\u0000BIGINT${marks.length - 1}\u0000`;
    }
    return v;
  });
  if (marks.length === 0) return text;
  return text.replace(/"\\u0000BIGINT(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)] ?? '0');
}

export class KubeClient {
  readonly server: URL;
  private readonly agent: http.Agent;
  private readonly isHttps: boolean;
  private readonly tls: https.RequestOptions = {};
  private authHeaders: Record<string, string> = {};
  private authFetchedAt = 0;
  private closed = false;

  constructor(
    readonly access: ClusterAccess,
    private readonly opts: KubeClientOptions = {},
  ) {
    this.server = access.server;
    this.isHttps = this.server.protocol === 'https:';
    this.tls.ca = access.ca;
    this.tls.cert = access.cert;
    this.tls.key = access.key;
    if (access.tlsServerName) this.tls.servername = access.tlsServerName;
    if (access.insecureSkipTLSVerify) this.tls.rejectUnauthorized = false;
    const maxSockets = opts.maxSockets ?? 32;
    if (this.isHttps) {
      this.agent = new https.Agent({ keepAlive: true, maxSockets });
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets });
    }
  }

  /** Refreshes the authentication headers every 60 s, so rotated tokens are picked up. */
  private async refreshAuth(): Promise<void> {
    if (Date.now() - this.authFetchedAt < 60_000) return;
    this.authHeaders = await this.access.authHeaders();
    this.authFetchedAt = Date.now();
  }

  private async open(method: string, path: string, opts: RequestOptions, headers: Record<string, string>): Promise<http.IncomingMessage & { req: http.ClientRequest }> {
    if (this.closed) throw new ApiError(0, 'client closed');
    await this.refreshAuth();
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    let payload: string | undefined;
    if (opts.body !== undefined) payload = typeof opts.body === 'string' ? opts.body : toJSON(opts.body);
    const reqHeaders: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': this.opts.userAgent ?? 'metallb-ts',
      ...this.authHeaders,
      ...headers,
    };
    if (payload !== undefined) {
      reqHeaders['Content-Type'] = opts.contentType ?? 'application/json';
      reqHeaders['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const mod = this.isHttps ? https : http;
    return await new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        { method, headers: reqHeaders, agent: this.agent, ...(this.isHttps ? this.tls : {}), signal: opts.signal },
        (res) => resolve(Object.assign(res, { req })),
      );
      req.on('error', (err) => reject(new ApiError(0, `${method} ${url.pathname}: ${errorText(err)}`)));
      if (opts.timeoutMs !== 0) {
        req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`timed out after ${opts.timeoutMs ?? 30_000} ms`)));
      }
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** One request; resolves with the parsed JSON body of a 2xx answer, rejects with ApiError otherwise. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, opts, {});
    const chunks: Buffer[] = [];
    try {
      for await (const c of res) chunks.push(c as Buffer);
    } catch (err) {
      throw new ApiError(0, `${method} ${path}: ${errorText(err)}`);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const st = body as { message?: string; reason?: string } | undefined;
      const msg = typeof st === 'object' && st?.message ? st.message : typeof body === 'string' ? body.slice(0, 200) : `HTTP ${status}`;
      throw new ApiError(status, `${method} ${path}: ${status} ${msg}`, typeof st === 'object' ? st?.reason : undefined, body);
    }
    return body as T;
  }

  get<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('GET', path, opts);
  }
  post<T = unknown>(path: string, body: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('POST', path, { ...opts, body });
  }
  put<T = unknown>(path: string, body: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('PUT', path, { ...opts, body });
  }
  mergePatch<T = unknown>(path: string, body: unknown, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('PATCH', path, { ...opts, body, contentType: MERGE_PATCH });
  }
  delete<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
    return this.request<T>('DELETE', path, opts);
  }

  /**
   * Starts a watch; calls `onEvent` for each JSON line. `done` resolves when the server closes the stream,
   * rejects with ApiError on a non-2xx answer or a broken connection.
   */
  watch(path: string, query: Query, onEvent: (ev: unknown) => void): WatchHandle {
    const ac = new AbortController();
    let aborted = false;
    const done = (async () => {
      let res: http.IncomingMessage;
      try {
        res = await this.open('GET', path, { query: { ...query, watch: 1 }, signal: ac.signal, timeoutMs: 0 }, {});
      } catch (err) {
        if (aborted) return;
        throw err;
      }
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString('utf8');
        let reason: string | undefined;
        let message = text.slice(0, 200);
        try {
          const st = JSON.parse(text) as { message?: string; reason?: string };
          reason = st.reason;
          if (st.message) message = st.message;
        } catch {
          /* not JSON */
        }
        throw new ApiError(status, `watch ${path}: ${status} ${message}`, reason);
      }
      let buf = '';
      res.setEncoding('utf8');
      try {
        for await (const chunk of res) {
          buf += chunk as string;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === '') continue;
            let ev: unknown;
            try {
              ev = JSON.parse(line);
            } catch {
              throw new ApiError(0, `watch ${path}: undecodable line: ${line.slice(0, 120)}`);
            }
            onEvent(ev);
          }
        }
      } catch (err) {
        if (aborted) return;
        if (err instanceof ApiError) throw err;
        throw new ApiError(0, `watch ${path}: ${errorText(err)}`);
      }
      if (aborted) return;
      const rest = buf.trim();
      if (rest !== '') {
        try {
          onEvent(JSON.parse(rest));
        } catch {
          /* a truncated last line: the next watch resumes from the last resourceVersion seen */
        }
      }
    })();
    return {
      done,
      abort: () => {
        aborted = true;
        ac.abort();
      },
    };
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }
}
