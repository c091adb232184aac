// The TokenRequest subresource (`POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`): what `kubectl create token`
// and the kubelet's projected service-account volumes call. Validation and errors follow kube-apiserver's TokenREST.
import { ApiError, badRequest, invalid, notFound } from '../errors.js';
import { isObj, nowRFC3339, obj, str, type Obj } from '../util.js';
import type { BoundObject, ObjectLookup, ServiceAccountTokens } from './sa-tokens.js';

const MIN_EXPIRATION = 600;
const MAX_EXPIRATION = 2 ** 32;
const DEFAULT_EXPIRATION = 3600;

export interface TokenRequestDeps {
  tokens: ServiceAccountTokens;
  lookup: ObjectLookup;
  apiAudiences: string[];
  /** `--service-account-max-token-expiration` in seconds (none by default, like kube-apiserver) */
  maxExpirationSeconds?: number;
}

const metaOf = (o: Obj | undefined): Obj => obj(o?.metadata);

export async function createToken(namespace: string, saName: string, body: unknown, d: TokenRequestDeps): Promise<Obj> {
  if (!isObj(body)) throw badRequest('the body of the request must be a TokenRequest object');
  if (body.kind !== undefined && body.kind !== 'TokenRequest') throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (TokenRequest)`);
  const sa = d.lookup('serviceaccounts', namespace, saName);
  if (!sa) throw notFound('', 'serviceaccounts', saName);
  const spec = obj(body.spec);
  const audiences = Array.isArray(spec.audiences) && spec.audiences.length ? spec.audiences.map(String) : d.apiAudiences;
  let expirationSeconds = typeof spec.expirationSeconds === 'number' && spec.expirationSeconds !== 0 ? spec.expirationSeconds : DEFAULT_EXPIRATION;
  const fail = (detail: string): ApiError => invalid('authentication.k8s.io', 'TokenRequest', saName, [{ type: 'Invalid', field: 'spec.expirationSeconds', value: expirationSeconds, detail }]);
  if (!Number.isInteger(expirationSeconds)) throw fail('must be an integer');
  if (expirationSeconds < MIN_EXPIRATION) throw fail('may not specify a duration less than 10 minutes');
  if (expirationSeconds > MAX_EXPIRATION) throw fail('may not specify a duration larger than 2^32 seconds');
  if (d.maxExpirationSeconds !== undefined && expirationSeconds > d.maxExpirationSeconds) expirationSeconds = d.maxExpirationSeconds;

  let bound: BoundObject | undefined;
  const ref = isObj(spec.boundObjectRef) ? spec.boundObjectRef : undefined;
  if (ref) {
    const kind = str(ref.kind) ?? '';
    const name = str(ref.name) ?? '';
    const apiVersion = str(ref.apiVersion) ?? 'v1';
    if (apiVersion !== 'v1' || !['Pod', 'Secret', 'Node'].includes(kind)) throw badRequest(`cannot bind token to object of type ${apiVersion}, Kind=${kind}`);
    const resource = kind === 'Pod' ? 'pods' : kind === 'Secret' ? 'secrets' : 'nodes';
    const target = d.lookup(resource, kind === 'Node' ? '' : namespace, name);
    if (!target) throw notFound('', resource, name);
    const uid = String(metaOf(target).uid ?? '');
    const wantUid = str(ref.uid);
    if (wantUid && wantUid !== uid)
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${resource} "${name}": the UID in the bound object reference (${wantUid}) does not match the UID in record. The object might have been deleted and then recreated`,
        { name, kind: resource },
      );
    bound = { kind: kind as BoundObject['kind'], name, uid };
    if (kind === 'Pod') {
      const podSpec = obj(target.spec);
      const podSa = str(podSpec.serviceAccountName) ?? 'default';
      if (podSa !== saName) throw badRequest(`cannot bind token for serviceaccount "${saName}" to pod running with different serviceaccount name.`);
      const nodeName = str(podSpec.nodeName);
      const node = nodeName ? d.lookup('nodes', '', nodeName) : undefined;
      if (nodeName && node) bound.node = { name: nodeName, uid: String(metaOf(node).uid ?? '') };
    }
  }
  const issued = await d.tokens.issue({
    namespace,
    serviceAccount: { name: saName, uid: String(metaOf(sa).uid ?? '') },
    audiences,
    expirationSeconds,
    ...(bound ? { bound } : {}),
  });
  return {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { name: saName, namespace, creationTimestamp: nowRFC3339() },
    spec: { audiences, expirationSeconds, boundObjectRef: ref ? { kind: ref.kind, apiVersion: ref.apiVersion ?? 'v1', name: ref.name, ...(ref.uid ? { uid: ref.uid } : {}) } : null },
    status: { token: issued.token, expirationTimestamp: issued.expiresAt.toISOString().replace(/\.\d+Z$/, 'Z') },
  };
}
