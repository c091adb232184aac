// Delegated authentication and authorization, as metrics-server (k8s.io/apiserver) does it: the
// `kube-system/extension-apiserver-authentication` ConfigMap says which client certificates may assert a user in
// request headers (the API server's front proxy) and which CA signs ordinary client certificates; bearer tokens go to a
// TokenReview; every request but the health checks is authorized with a SubjectAccessReview. Answers are cached
// (10 s, metrics-server's defaults), so the API server is asked about a user once per burst.
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../log.js';
import { errorText, type KubeClient } from '../../k8s/client.js';

export interface User {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export interface Attributes {
  user: User;
  verb: string;
  /** resource requests */
  resource?: { group: string; version: string; resource: string; subresource?: string; namespace?: string; name?: string };
  /** non-resource requests */
  path?: string;
}

interface RequestHeaderConfig {
  ca?: X509Certificate;
  allowedNames: string[];
  usernameHeaders: string[];
  groupHeaders: string[];
  extraPrefixes: string[];
}

const parseList = (v: unknown): string[] => {
  if (typeof v !== 'string') return [];
  try {
    const a: unknown = JSON.parse(v);
    return Array.isArray(a) ? a.map(String) : [];
  } catch {
    return [];
  }
};

function certFrom(pem: unknown): X509Certificate | undefined {
  if (typeof pem !== 'string' || !pem.includes('BEGIN CERTIFICATE')) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

const TTL_MS = 10_000;

export class DelegatingAuth {
  private header: RequestHeaderConfig = { allowedNames: [], usernameHeaders: [], groupHeaders: [], extraPrefixes: [] };
  private clientCA: X509Certificate | undefined;
  private readonly tokenCache = new Map<string, { at: number; user: User | undefined }>();
  private readonly sarCache = new Map<string, { at: number; allowed: boolean; reason: string }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly alwaysAllowPaths: readonly string[],
  ) {}

  /** Reads the ConfigMap now and every minute after (every 5 s while it cannot be read). */
  async start(): Promise<void> {
    await this.load();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private stopped = false;

  private async load(): Promise<void> {
    const ok = await this.read();
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.load(), ok ? 60_000 : 5_000);
    this.timer.unref();
  }

  private async read(): Promise<boolean> {
    try {
      const cm = await this.client.get<{ data?: Record<string, string> }>('/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication');
      const d = cm.data ?? {};
      const ca = certFrom(d['requestheader-client-ca-file']);
      this.header = {
        ...(ca ? { ca } : {}),
        allowedNames: parseList(d['requestheader-allowed-names']),
        usernameHeaders: parseList(d['requestheader-username-headers']).map((h) => h.toLowerCase()),
        groupHeaders: parseList(d['requestheader-group-headers']).map((h) => h.toLowerCase()),
        extraPrefixes: parseList(d['requestheader-extra-headers-prefix']).map((h) => h.toLowerCase()),
      };
      this.clientCA = certFrom(d['client-ca-file']);
      return true;
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'cannot read kube-system/extension-apiserver-authentication: requests from the API server cannot be authenticated');
      return false;
    }
  }

  /** The requesting user; undefined when credentials were presented but are not valid (401). */
  async authenticate(req: IncomingMessage): Promise<User | undefined> {
    const sock = req.socket as TLSSocket;
    const peer = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate(true) : undefined;
    if (peer && peer.raw) {
      const cert = new X509Certificate(peer.raw);
      const h = this.header;
      if (h.ca && cert.checkIssued(h.ca) && cert.verify(h.ca.publicKey) && new Date(cert.validTo) > new Date()) {
        const cn = peer.subject?.CN;
        const name = Array.isArray(cn) ? cn[0] : cn;
        if (h.allowedNames.length && !h.allowedNames.includes(name ?? '')) return undefined;
        const username = h.usernameHeaders.map((n) => req.headers[n]).find((v) => typeof v === 'string' && v !== '') as string | undefined;
        if (!username) return undefined;
        const groups: string[] = [];
        for (const n of h.groupHeaders) {
          const v = req.headers[n];
          if (Array.isArray(v)) groups.push(...v);
          else if (typeof v === 'string') groups.push(...v.split(',').map((s) => s.trim()).filter(Boolean));
        }
        const extra: Record<string, string[]> = {};
        for (const [k, v] of Object.entries(req.headers)) {
          const p = h.extraPrefixes.find((x) => k.startsWith(x));
          if (!p || v === undefined) continue;
          extra[decodeURIComponent(k.slice(p.length))] = Array.isArray(v) ? v : [v];
        }
        return { username, groups, ...(Object.keys(extra).length ? { extra } : {}) };
      }
      if (this.clientCA && cert.checkIssued(this.clientCA) && cert.verify(this.clientCA.publicKey)) {
        const s = peer.subject ?? {};
        const cn = Array.isArray(s.CN) ? s.CN[0] : s.CN;
        const o = s.O === undefined ? [] : Array.isArray(s.O) ? s.O : [s.O];
        return { username: cn ?? '', groups: [...o, 'system:authenticated'] };
      }
    }
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && /^bearer /i.test(auth)) return this.tokenReview(auth.slice(7).trim());
    return { username: 'system:anonymous', groups: ['system:unauthenticated'] };
  }

  private async tokenReview(token: string): Promise<User | undefined> {
    const hit = this.tokenCache.get(token);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.user;
    let user: User | undefined;
    try {
      const r = await this.client.post<{ status?: { authenticated?: boolean; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> } } }>(
        '/apis/authentication.k8s.io/v1/tokenreviews',
        { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
      );
      const u = r.status?.user;
      if (r.status?.authenticated && u?.username) user = { username: u.username, groups: u.groups ?? [], ...(u.uid ? { uid: u.uid } : {}), ...(u.extra ? { extra: u.extra } : {}) };
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'TokenReview failed');
      return undefined;
    }
    this.tokenCache.set(token, { at: Date.now(), user });
    return user;
  }

  /** allowed, or the reason of the refusal */
  async authorize(a: Attributes): Promise<{ allowed: boolean; reason: string }> {
    if (a.path !== undefined && this.alwaysAllowPaths.some((p) => (p.endsWith('*') ? a.path!.startsWith(p.slice(0, -1)) : a.path === p))) return { allowed: true, reason: '' };
    const key = JSON.stringify([a.user.username, a.user.groups, a.verb, a.resource ?? null, a.path ?? null]);
    const hit = this.sarCache.get(key);
    if (hit && Date.now() - hit.at < TTL_MS) return hit;
    const spec: Record<string, unknown> = {
      user: a.user.username,
      groups: a.user.groups,
      ...(a.user.uid ? { uid: a.user.uid } : {}),
      ...(a.user.extra ? { extra: a.user.extra } : {}),
      ...(a.resource
        ? { resourceAttributes: { verb: a.verb, group: a.resource.group, version: a.resource.version, resource: a.resource.resource, ...(a.resource.subresource ? { subresource: a.resource.subresource } : {}), ...(a.resource.namespace ? { namespace: a.resource.namespace } : {}), ...(a.resource.name ? { name: a.resource.name } : {}) } }
        : { nonResourceAttributes: { path: a.path, verb: a.verb } }),
    };
    let decision = { allowed: false, reason: '' };
    try {
      const r = await this.client.post<{ status?: { allowed?: boolean; reason?: string } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec,
      });
      decision = { allowed: r.status?.allowed === true, reason: r.status?.reason ?? '' };
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'SubjectAccessReview failed');
      return { allowed: false, reason: `SubjectAccessReview failed: ${errorText(err)}` };
    }
    this.sarCache.set(key, { at: Date.now(), ...decision });
    if (this.sarCache.size > 4096) this.sarCache.clear();
    return decision;
  }
}
