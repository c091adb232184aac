// Service-account tokens for projected volumes, through the TokenRequest API (`serviceaccounts/<sa>/token`) with the
// audience, expiry and a binding to the pod, refreshed at 80 % of their lifetime or after 24 h as the kubelet does.
// An API server without the TokenRequest API gets a placeholder token (logged once) and is asked again every minute.
import type { Logger } from '../../log.js';
import { ApiError, errorText, type KubeClient } from '../../k8s/client.js';
import type { Pod } from './types.js';

export interface IssuedToken {
  token: string;
  /** When the token should be requested again (ms epoch). */
  refreshAt: number;
  /** True for the placeholder written when the API server has no TokenRequest API. */
  placeholder: boolean;
}

interface TokenRequestStatus {
  status?: { token?: string; expirationTimestamp?: string };
}

export class TokenManager {
  private readonly cache = new Map<string, IssuedToken>();
  private warned = false;

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  async get(pod: Pod, serviceAccount: string, audience: string | undefined, expirationSeconds: number): Promise<IssuedToken> {
    const uid = pod.metadata.uid ?? '';
    const key = `${uid}|${serviceAccount}|${audience ?? ''}|${expirationSeconds}`;
    const have = this.cache.get(key);
    const now = this.now();
    if (have && now < have.refreshAt) return have;
    const ns = pod.metadata.namespace ?? 'default';
    const body = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: audience ? [audience] : [],
        expirationSeconds,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata.name, uid },
      },
    };
    try {
      const res = await this.client.post<TokenRequestStatus>(`/api/v1/namespaces/${encodeURIComponent(ns)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`, body);
      const token = res.status?.token;
      if (!token) throw new ApiError(0, `TokenRequest for ${ns}/${serviceAccount} returned no token`);
      const exp = res.status?.expirationTimestamp ? Date.parse(res.status.expirationTimestamp) : now + expirationSeconds * 1000;
      const ttl = Math.max(60_000, exp - now);
      const issued: IssuedToken = { token, refreshAt: now + Math.min(ttl * 0.8, 24 * 3600_000), placeholder: false };
      this.cache.set(key, issued);
      return issued;
    } catch (err) {
      // 404/405: this API server does not implement TokenRequest (yet). Anything else is a real failure.
      if (err instanceof ApiError && (err.status === 404 || err.status === 405) && !/serviceaccounts? "/i.test(err.message)) {
        if (!this.warned) {
          this.warned = true;
          this.log.warn({ err: errorText(err) }, 'the API server does not serve the TokenRequest API (serviceaccounts/<name>/token): pods get a placeholder service-account token until it does');
        }
        const issued: IssuedToken = { token: `metallb-lab-placeholder-token.${ns}.${serviceAccount}`, refreshAt: now + 60_000, placeholder: true };
        this.cache.set(key, issued);
        return issued;
      }
      throw err;
    }
  }

  forgetPod(uid: string): void {
    for (const k of [...this.cache.keys()]) if (k.startsWith(`${uid}|`)) this.cache.delete(k);
  }
}
