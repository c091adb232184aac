// What this process may do, asked of the API server before it tries: MetalLB's roles differ from release to release
// (and users run ours, MetalLB's, or their own), so the controller and the speaker find out which of their features
// the ServiceAccount allows and turn the others off instead of failing on every retry.
//
// Two ways to ask:
// - `can` sends a SelfSubjectAccessReview (what `kubectl auth can-i` does). It answers for any verb without doing it:
//   `watch` (a list may be allowed and a watch not: MetalLB's controller may only list nodes and BGPPeers) and writes
//   (`update services/status`). Every authenticated user may create one (bootstrap ClusterRole `system:basic-user`).
//   When the server cannot answer (no authorization API, a custom authorizer that refuses reviews) it is `undefined`:
//   the caller assumes "allowed" and learns from the first 403 instead.
// - `probeList` lists one object: it also tells a resource the server does not serve (CRD not installed) from one
//   RBAC forbids.
import type { Logger } from '../log.js';
import { ApiError, errorText, isNotFound, type KubeClient } from './client.js';
import { collectionPath, type Resource } from './resources.js';

export type Access = 'ok' | 'absent' | 'forbidden';

/** A 403 answer: the authorizer refused the request. */
export const isForbidden = (err: unknown): boolean => err instanceof ApiError && err.status === 403;

export interface AccessQuestion {
  verb: string;
  resource: Resource;
  subresource?: string;
  /** Namespaced resources: the namespace ("" or undefined = all namespaces). */
  namespace?: string;
  name?: string;
}

/** `update services/status in metallb-system`, as a person would write it. */
export function describeAccess(q: AccessQuestion): string {
  const what = `${q.resource.plural}${q.resource.group ? `.${q.resource.group}` : ''}${q.subresource ? `/${q.subresource}` : ''}`;
  const name = q.name ? ` "${q.name}"` : '';
  const where = q.resource.namespaced ? (q.namespace ? ` in namespace ${q.namespace}` : ' in all namespaces') : '';
  return `${q.verb} ${what}${name}${where}`;
}

interface ReviewStatus {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

export interface AccessReviewOptions {
  /** Stop retrying when this says so (the process is stopping). */
  stopped?: () => boolean;
  /** First wait before retrying an unreachable API server (doubles up to 10 s). Default 500 ms. */
  retryMs?: number;
}

export class AccessReview {
  private reviewsUnavailable = false;

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly opts: AccessReviewOptions = {},
  ) {}

  private get stopped(): boolean {
    return this.opts.stopped?.() ?? false;
  }

  /** Retries `fn` while the API server cannot be reached (transport errors, 5xx, 429); rethrows other errors. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let delay = this.opts.retryMs ?? 500;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        const transient = !(err instanceof ApiError) || err.status === 0 || err.status >= 500 || err.status === 429;
        if (!transient || this.stopped) throw err;
        this.log.warn({ what, err: errorText(err), retryInMs: delay }, 'cannot reach the API server, retrying');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  /** SelfSubjectAccessReview: true / false, or undefined when the server cannot answer access reviews. */
  async can(q: AccessQuestion): Promise<boolean | undefined> {
    if (this.reviewsUnavailable) return undefined;
    const body = {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: {
        resourceAttributes: {
          verb: q.verb,
          group: q.resource.group,
          version: q.resource.version,
          resource: q.resource.plural,
          ...(q.subresource ? { subresource: q.subresource } : {}),
          ...(q.resource.namespaced && q.namespace ? { namespace: q.namespace } : {}),
          ...(q.name ? { name: q.name } : {}),
        },
      },
    };
    try {
      const r = await this.retrying(`access review: ${describeAccess(q)}`, () =>
        this.client.post<ReviewStatus>('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', body, { timeoutMs: 15_000 }),
      );
      if (r.status?.allowed === true) return true;
      // An evaluation error without a decision (e.g. a broken webhook authorizer) is no answer.
      if (r.status?.evaluationError && !r.status.denied) return undefined;
      return false;
    } catch (err) {
      if (!this.reviewsUnavailable) {
        this.reviewsUnavailable = true;
        this.log.info({ err: errorText(err) }, 'cannot ask the API server what this ServiceAccount may do (SelfSubjectAccessReview); assuming it may, and turning features off on the first refusal');
      }
      return undefined;
    }
  }

  /** Whether every question is allowed: false when one is refused, undefined when one got no answer and none is refused. */
  async canAll(qs: readonly AccessQuestion[]): Promise<boolean | undefined> {
    const answers = await Promise.all(qs.map((q) => this.can(q)));
    if (answers.includes(false)) return false;
    return answers.includes(undefined) ? undefined : true;
  }

  /** The first question refused (for the log line), if any. */
  async firstRefused(qs: readonly AccessQuestion[]): Promise<AccessQuestion | undefined> {
    const answers = await Promise.all(qs.map((q) => this.can(q)));
    const i = answers.indexOf(false);
    return i >= 0 ? qs[i] : undefined;
  }

  /** Lists one object to learn whether the server serves `r` and RBAC lets us list it; retries other failures. */
  async probeList(r: Resource, namespace?: string): Promise<Access> {
    try {
      await this.retrying(`list ${r.plural}.${r.group || 'core'}`, () => this.client.get(collectionPath(r, namespace), { query: { limit: 1 }, timeoutMs: 15_000 }));
      return 'ok';
    } catch (err) {
      if (isNotFound(err)) return 'absent';
      if (isForbidden(err)) return 'forbidden';
      // Only reached when stopping.
      return 'forbidden';
    }
  }

  /**
   * How a cache of `r` can be kept: 'watch' (list and watch), 'list' (list only: poll), 'forbidden' (not even list),
   * or 'absent' (not served: the informer waits for it). Asks with access reviews, falls back to a list probe.
   */
  async readAccess(r: Resource, namespace?: string): Promise<'watch' | 'list' | 'forbidden' | 'absent'> {
    const [list, watch] = await Promise.all([this.can({ verb: 'list', resource: r, namespace }), this.can({ verb: 'watch', resource: r, namespace })]);
    if (list === false) return 'forbidden';
    if (list === true && watch === true) return 'watch';
    if (list === true && watch === false) return 'list';
    // No answer from reviews: a list probe; a forbidden watch then shows as informer errors.
    const probed = await this.probeList(r, namespace);
    if (probed === 'ok') return watch === false ? 'list' : 'watch';
    return probed;
  }
}
