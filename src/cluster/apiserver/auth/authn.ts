// Authentication, in kube-apiserver's order: a client certificate signed by the cluster CA (CN = user, O = groups),
// then a bearer token (static tokens, then service-account JWTs); no credentials at all is `system:anonymous` when
// anonymous requests are allowed. Presented but wrong credentials are a 401, never anonymous.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { ApiError } from '../errors.js';
import { InvalidTokenError, ServiceAccountTokens } from './sa-tokens.js';
import { anonymous, withAuthenticated, type UserInfo } from './user.js';

export const unauthorized = (): ApiError => new ApiError(401, 'Unauthorized', 'Unauthorized');

export interface AuthenticatorOptions {
  /** token → user (`--token-auth-file`, the admin token) */
  staticTokens: Map<string, UserInfo>;
  saTokens?: ServiceAccountTokens;
  /** `--anonymous-auth` (default true, as kube-apiserver) */
  anonymous: boolean;
  /** called with the reason a credential was refused (for the log) */
  onReject?: (reason: string) => void;
}

function certUser(req: IncomingMessage): UserInfo | undefined {
  const sock = req.socket as TLSSocket;
  if (typeof sock.getPeerCertificate !== 'function' || !sock.authorized) return undefined;
  const cert = sock.getPeerCertificate();
  if (!cert || !cert.subject) return undefined;
  const cn = cert.subject.CN;
  const username = Array.isArray(cn) ? cn[0] : cn;
  if (!username) return undefined;
  const o = cert.subject.O;
  const groups = o === undefined ? [] : Array.isArray(o) ? o : [o];
  return { username, groups };
}

export class Authenticator {
  constructor(private readonly o: AuthenticatorOptions) {}

  /** The user of a request (with `system:authenticated`), or a 401 ApiError. */
  async authenticate(req: IncomingMessage): Promise<UserInfo> {
    const fromCert = certUser(req);
    if (fromCert) return withAuthenticated(fromCert);
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (!m) {
        this.o.onReject?.('unsupported Authorization header (only bearer tokens and client certificates are accepted)');
        throw unauthorized();
      }
      const u = await this.authenticateToken(m[1]!);
      if (!u.user) {
        this.o.onReject?.(u.reason);
        throw unauthorized();
      }
      return u.user;
    }
    if (this.o.anonymous) return anonymous();
    this.o.onReject?.('no credentials and anonymous requests are disabled');
    throw unauthorized();
  }

  /** TokenReview and the bearer-token path. */
  async authenticateToken(token: string): Promise<{ user?: UserInfo; reason: string }> {
    const st = this.o.staticTokens.get(token);
    if (st) return { user: withAuthenticated(st), reason: '' };
    if (this.o.saTokens && ServiceAccountTokens.looksLikeOurs(token, this.o.saTokens.issuer)) {
      try {
        const { user } = await this.o.saTokens.verify(token);
        return { user: withAuthenticated(user), reason: '' };
      } catch (e) {
        if (e instanceof InvalidTokenError) return { reason: e.message };
        throw e;
      }
    }
    return { reason: 'unknown bearer token' };
  }
}
