// Service-account tokens: signed JWTs (ES256) as kube-apiserver issues them through the TokenRequest API (bound,
// expiring: `kubectl create token`, the kubelet's projected volumes) and as the legacy token controller put them into
// `kubernetes.io/service-account-token` Secrets. Verification authenticates them as `system:serviceaccount:NS:NAME`
// while the ServiceAccount (and the Pod or Secret the token is bound to) still exists with the same uid.
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { decodeJwt, jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import { serviceAccountGroups, serviceAccountUsername, type UserInfo } from './user.js';
import type { Obj } from '../util.js';

export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const LEGACY_ISSUER = 'kubernetes/serviceaccount';

/** What the verifier needs from the store. */
export type ObjectLookup = (resource: 'serviceaccounts' | 'pods' | 'secrets' | 'nodes', namespace: string, name: string) => Obj | undefined;

export interface BoundObject {
  kind: 'Pod' | 'Secret' | 'Node';
  name: string;
  uid: string;
  /** for a Pod: the node it runs on, recorded in the token as kube-apiserver does */
  node?: { name: string; uid: string };
}

export interface IssueRequest {
  namespace: string;
  serviceAccount: { name: string; uid: string };
  audiences: string[];
  expirationSeconds: number;
  bound?: BoundObject;
}

interface PrivateClaims {
  namespace: string;
  serviceaccount: { name: string; uid: string };
  pod?: { name: string; uid: string };
  secret?: { name: string; uid: string };
  node?: { name: string; uid: string };
}

/** A token was presented and is not (or no longer) valid: the request gets a 401. */
export class InvalidTokenError extends Error {}

const meta = (o: Obj | undefined): Obj => (o && typeof o.metadata === 'object' && o.metadata !== null ? (o.metadata as Obj) : {});
/** A deleted object's token keeps working this long after its deletionTimestamp (kube: 60 s). */
const DELETION_GRACE_MS = 60_000;

function liveWithUid(o: Obj | undefined, uid: string | undefined, what: string): void {
  if (!o) throw new InvalidTokenError(`${what} not found`);
  const m = meta(o);
  if (uid !== undefined && m.uid !== uid) throw new InvalidTokenError(`${what} uid (${String(m.uid)}) does not match the token's (${uid})`);
  if (typeof m.deletionTimestamp === 'string' && Date.parse(m.deletionTimestamp) + DELETION_GRACE_MS < Date.now())
    throw new InvalidTokenError(`${what} has been deleted`);
}

export class ServiceAccountTokens {
  private readonly key: KeyObject;
  private readonly pub: KeyObject;
  readonly keyId: string;

  constructor(
    privateKeyPem: string,
    publicKeyPem: string,
    private readonly lookup: ObjectLookup,
    readonly issuer = DEFAULT_ISSUER,
    /** the API server's own audiences (`--api-audiences`); a token must be for one of them */
    readonly apiAudiences: string[] = [DEFAULT_ISSUER],
  ) {
    this.key = createPrivateKey(privateKeyPem);
    this.pub = createPublicKey(publicKeyPem);
    // like kube-apiserver: the key id is the SHA-256 of the public key's DER encoding
    this.keyId = createHash('sha256').update(this.pub.export({ type: 'spki', format: 'der' })).digest('base64url');
  }

  /** A bound, expiring token (TokenRequest). */
  async issue(r: IssueRequest): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + r.expirationSeconds;
    const k8s: PrivateClaims = { namespace: r.namespace, serviceaccount: { name: r.serviceAccount.name, uid: r.serviceAccount.uid } };
    if (r.bound?.kind === 'Pod') {
      k8s.pod = { name: r.bound.name, uid: r.bound.uid };
      if (r.bound.node) k8s.node = r.bound.node;
    } else if (r.bound?.kind === 'Secret') k8s.secret = { name: r.bound.name, uid: r.bound.uid };
    else if (r.bound?.kind === 'Node') k8s.node = { name: r.bound.name, uid: r.bound.uid };
    const token = await new SignJWT({ 'kubernetes.io': k8s })
      .setProtectedHeader({ alg: 'ES256', kid: this.keyId })
      .setIssuer(this.issuer)
      .setSubject(serviceAccountUsername(r.namespace, r.serviceAccount.name))
      .setAudience(r.audiences)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.key);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /**
   * A non-expiring token for a `kubernetes.io/service-account-token` Secret (the legacy token controller's). Signed
   * synchronously (Node's crypto; a JWS any verifier accepts) because it is filled in while the Secret is created.
   */
  issueLegacy(namespace: string, secretName: string, sa: { name: string; uid: string }): string {
    const header = { alg: 'ES256', kid: this.keyId };
    const payload = {
      iss: LEGACY_ISSUER,
      'kubernetes.io/serviceaccount/namespace': namespace,
      'kubernetes.io/serviceaccount/secret.name': secretName,
      'kubernetes.io/serviceaccount/service-account.name': sa.name,
      'kubernetes.io/serviceaccount/service-account.uid': sa.uid,
      sub: serviceAccountUsername(namespace, sa.name),
    };
    const enc = (o: object): string => Buffer.from(JSON.stringify(o), 'utf8').toString('base64url');
    const input = `${enc(header)}.${enc(payload)}`;
    const sig = sign('sha256', Buffer.from(input, 'utf8'), { key: this.key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  }

  /** Whether `token` looks like a JWT from one of our issuers (otherwise other authenticators may know it). */
  static looksLikeOurs(token: string, issuer = DEFAULT_ISSUER): boolean {
    if (token.split('.').length !== 3) return false;
    try {
      const iss = decodeJwt(token).iss;
      return iss === issuer || iss === LEGACY_ISSUER;
    } catch {
      return false;
    }
  }

  /**
   * The user a token authenticates as; throws InvalidTokenError when it is ours but expired, for other audiences,
   * badly signed, or its ServiceAccount / bound object is gone.
   */
  async verify(token: string): Promise<{ user: UserInfo; expiresAt?: number }> {
    const payload = await this.verifiedClaims(token);
    if (payload.iss === LEGACY_ISSUER) return { user: this.verifyLegacy(payload, token) };
    const k8s = payload['kubernetes.io'] as PrivateClaims | undefined;
    if (!k8s || typeof k8s.namespace !== 'string' || typeof k8s.serviceaccount?.name !== 'string') throw new InvalidTokenError('token has no kubernetes.io claims');
    const ns = k8s.namespace;
    liveWithUid(this.lookup('serviceaccounts', ns, k8s.serviceaccount.name), k8s.serviceaccount.uid, `serviceaccount ${ns}/${k8s.serviceaccount.name}`);
    const extra: Record<string, string[]> = {};
    if (k8s.pod) {
      liveWithUid(this.lookup('pods', ns, k8s.pod.name), k8s.pod.uid, `pod ${ns}/${k8s.pod.name}`);
      extra['authentication.kubernetes.io/pod-name'] = [k8s.pod.name];
      extra['authentication.kubernetes.io/pod-uid'] = [k8s.pod.uid];
    }
    if (k8s.secret) liveWithUid(this.lookup('secrets', ns, k8s.secret.name), k8s.secret.uid, `secret ${ns}/${k8s.secret.name}`);
    if (k8s.node) {
      // a node-bound token (or the node of a pod-bound one) only fails if the token was bound to the node itself
      if (!k8s.pod) liveWithUid(this.lookup('nodes', '', k8s.node.name), k8s.node.uid, `node ${k8s.node.name}`);
      extra['authentication.kubernetes.io/node-name'] = [k8s.node.name];
      extra['authentication.kubernetes.io/node-uid'] = [k8s.node.uid];
    }
    if (typeof payload.jti === 'string') extra['authentication.kubernetes.io/credential-id'] = [`JTI=${payload.jti}`];
    return {
      user: { username: serviceAccountUsername(ns, k8s.serviceaccount.name), uid: k8s.serviceaccount.uid, groups: serviceAccountGroups(ns), extra },
      ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {}),
    };
  }

  /** Signature, issuer, audience and expiry, checked once per token and remembered (kube caches for 10 s too). */
  private async verifiedClaims(token: string): Promise<Record<string, unknown>> {
    const now = Date.now();
    const hit = this.verified.get(token);
    if (hit && hit.until > now) return hit.payload;
    let payload: Record<string, unknown>;
    try {
      const iss = decodeJwt(token).iss;
      const r =
        iss === LEGACY_ISSUER
          ? await jwtVerify(token, this.pub, { issuer: LEGACY_ISSUER, algorithms: ['ES256'] })
          : await jwtVerify(token, this.pub, { issuer: this.issuer, audience: this.apiAudiences, algorithms: ['ES256'] });
      payload = r.payload as Record<string, unknown>;
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw new InvalidTokenError('token has expired');
      throw new InvalidTokenError(`invalid token: ${(e as Error).message}`);
    }
    if (this.verified.size >= 10_000) this.verified.clear();
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : Infinity;
    this.verified.set(token, { payload, until: Math.min(exp, now + 10_000) });
    return payload;
  }

  private readonly verified = new Map<string, { payload: Record<string, unknown>; until: number }>();

  private verifyLegacy(p: Record<string, unknown>, token: string): UserInfo {
    const ns = p['kubernetes.io/serviceaccount/namespace'];
    const secretName = p['kubernetes.io/serviceaccount/secret.name'];
    const saName = p['kubernetes.io/serviceaccount/service-account.name'];
    const saUid = p['kubernetes.io/serviceaccount/service-account.uid'];
    if (typeof ns !== 'string' || typeof secretName !== 'string' || typeof saName !== 'string' || typeof saUid !== 'string')
      throw new InvalidTokenError('legacy token lacks its service account claims');
    liveWithUid(this.lookup('serviceaccounts', ns, saName), saUid, `serviceaccount ${ns}/${saName}`);
    const secret = this.lookup('secrets', ns, secretName);
    if (!secret) throw new InvalidTokenError(`secret ${ns}/${secretName} not found`);
    const data = secret.data as Record<string, unknown> | undefined;
    const stored = typeof data?.token === 'string' ? Buffer.from(data.token, 'base64').toString('utf8') : '';
    if (stored !== token) throw new InvalidTokenError(`the token of secret ${ns}/${secretName} has changed`);
    return { username: serviceAccountUsername(ns, saName), uid: saUid, groups: serviceAccountGroups(ns), extra: { 'authentication.kubernetes.io/credential-id': [`LegacySecret=${secretName}`] } };
  }
}
