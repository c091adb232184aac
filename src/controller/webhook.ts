// The validating admission webhook (AdmissionReview v1). For CREATE and UPDATE the whole configuration is parsed
// with the new object replacing its old version; a DELETE of a BFDProfile is checked with the profile removed.
// Only errors that the change introduces deny it (an already broken config does not block unrelated changes or fixes).
// Fields whose validity depends on creation order are blanked first, as MetalLB does: a peer's `bfdProfile` and
// `passwordSecret`, and community aliases (strings without ':') in BGPAdvertisements.
import type { ClusterContext } from '../config/index.js';
import { formatConfigError } from '../config/types.js';
import type { KubeObject } from '../k8s/types.js';
import { errorText } from '../k8s/client.js';
import type { ParseFn } from './config-reconciler.js';
import { oldestFirst } from './config-order.js';

export interface WebhookKind {
  group: string;
  version: string;
  kind: string;
}

export const WEBHOOK_PATHS: Readonly<Record<string, WebhookKind>> = {
  '/validate-metallb-io-v1beta1-ipaddresspool': { group: 'metallb.io', version: 'v1beta1', kind: 'IPAddressPool' },
  '/validate-metallb-io-v1beta1-l2advertisement': { group: 'metallb.io', version: 'v1beta1', kind: 'L2Advertisement' },
  '/validate-metallb-io-v1beta1-bgpadvertisement': { group: 'metallb.io', version: 'v1beta1', kind: 'BGPAdvertisement' },
  '/validate-metallb-io-v1beta1-community': { group: 'metallb.io', version: 'v1beta1', kind: 'Community' },
  '/validate-metallb-io-v1beta1-bfdprofile': { group: 'metallb.io', version: 'v1beta1', kind: 'BFDProfile' },
  '/validate-metallb-io-v1beta2-bgppeer': { group: 'metallb.io', version: 'v1beta2', kind: 'BGPPeer' },
};

export interface AdmissionRequest {
  uid?: string;
  kind?: { group?: string; version?: string; kind?: string };
  namespace?: string;
  name?: string;
  operation?: string;
  object?: KubeObject | null;
  oldObject?: KubeObject | null;
}

export interface AdmissionReview {
  apiVersion?: string;
  kind?: string;
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason?: string; message: string };
  warnings?: string[];
}

export interface WebhookContext {
  namespace: string;
  parse: ParseFn;
  /** The current config objects (all kinds, ConfigMap included). */
  configObjects(): KubeObject[];
  cluster(): ClusterContext;
}

const review = (response: AdmissionResponse): AdmissionReview => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });
const allow = (uid: string, warnings?: string[]): AdmissionReview => review({ uid, allowed: true, ...(warnings?.length ? { warnings } : {}) });
const deny = (uid: string, message: string, code = 403): AdmissionReview =>
  review({ uid, allowed: false, status: { code, reason: code === 400 ? 'BadRequest' : 'Forbidden', message } });

const sameObject = (a: KubeObject, kind: string, name: string): boolean => a.kind === kind && a.metadata?.name === name;

/** A copy of the objects with the order-dependent references blanked. */
export function blankOrderDependent(objects: readonly KubeObject[]): KubeObject[] {
  return objects.map((o) => {
    const spec = (o as { spec?: Record<string, unknown> }).spec;
    if (!spec || typeof spec !== 'object') return o;
    if (o.kind === 'BGPPeer' && ('bfdProfile' in spec || 'passwordSecret' in spec)) {
      const { bfdProfile: _b, passwordSecret: _p, ...rest } = spec;
      void _b;
      void _p;
      return { ...o, spec: rest } as KubeObject;
    }
    if (o.kind === 'BGPAdvertisement' && Array.isArray(spec.communities)) {
      return { ...o, spec: { ...spec, communities: spec.communities.filter((c) => typeof c !== 'string' || c.includes(':')) } } as KubeObject;
    }
    return o;
  });
}

/** Validates one AdmissionReview for the webhook at `path`; returns the AdmissionReview to answer with. */
export function handleAdmission(path: string, body: unknown, ctx: WebhookContext): AdmissionReview {
  const rev = body as AdmissionReview | undefined;
  const req = rev?.request;
  const uid = typeof req?.uid === 'string' ? req.uid : '';
  if (!req || typeof req !== 'object') return deny(uid, 'malformed AdmissionReview: no request', 400);
  const target = WEBHOOK_PATHS[path];
  if (!target) return deny(uid, `no webhook at ${path}`, 404);
  const op = req.operation ?? '';
  const obj = (op === 'DELETE' ? req.oldObject : req.object) ?? undefined;
  if (!obj || typeof obj !== 'object') return deny(uid, `malformed AdmissionReview: no ${op === 'DELETE' ? 'oldObject' : 'object'}`, 400);
  const kind = target.kind;
  const name = obj.metadata?.name ?? req.name ?? '';
  const namespace = req.namespace || obj.metadata?.namespace || '';
  if ((op === 'CREATE' || op === 'UPDATE') && namespace !== ctx.namespace) {
    return deny(uid, `resource must be created in ${ctx.namespace} namespace`);
  }
  if (op === 'DELETE' && kind !== 'BFDProfile') return allow(uid);
  if (op !== 'CREATE' && op !== 'UPDATE' && op !== 'DELETE') return allow(uid);

  const current = ctx.configObjects();
  const others = current.filter((o) => !sameObject(o, kind, name));
  let candidate: KubeObject[];
  if (op === 'DELETE') {
    candidate = others;
  } else {
    const incoming: KubeObject = {
      ...obj,
      apiVersion: obj.apiVersion ?? `${target.group}/${target.version}`,
      kind,
      metadata: { ...obj.metadata, name, namespace },
    };
    // Keep the controller's order: the new object takes the place of its old version, or comes after the objects
    // of its kind that already exist (so a conflict is reported on it).
    const idx = current.findIndex((o) => sameObject(o, kind, name));
    if (idx >= 0) {
      candidate = current.slice();
      candidate[idx] = incoming;
    } else {
      candidate = [...current, incoming].sort((a, b) => kindOrder(a) - kindOrder(b) || oldestFirst(a, b));
    }
  }
  const prep = op === 'DELETE' ? (x: KubeObject[]): KubeObject[] => x : blankOrderDependent;
  let before: Set<string>;
  let after: string[];
  try {
    const cluster = ctx.cluster();
    before = new Set(ctx.parse(prep(current), cluster, { namespace: ctx.namespace }).errors.map(formatConfigError));
    after = ctx.parse(prep(candidate), cluster, { namespace: ctx.namespace }).errors.map(formatConfigError);
  } catch (err) {
    return deny(uid, `internal error validating ${kind} ${namespace}/${name}: ${errorText(err)}`, 500);
  }
  const introduced = after.filter((e) => !before.has(e));
  if (introduced.length === 0) return allow(uid);
  return deny(uid, introduced.join('; '));
}

const KIND_ORDER = ['IPAddressPool', 'L2Advertisement', 'BGPAdvertisement', 'BFDProfile', 'Community', 'BGPPeer', 'ConfigMap'];
const kindOrder = (o: KubeObject): number => {
  const i = KIND_ORDER.indexOf(o.kind ?? '');
  return i < 0 ? KIND_ORDER.length : i;
};
