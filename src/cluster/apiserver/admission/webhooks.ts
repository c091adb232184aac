// Admission webhooks called as kube-apiserver calls them: the Mutating- then ValidatingWebhookConfigurations'
// webhooks whose rules and selectors match (mutating ones one after the other, each seeing the previous one's JSON
// patch; validating ones in parallel), with an AdmissionReview (v1, or v1beta1 when that is all a webhook accepts),
// over HTTPS verified with the webhook's caBundle (ServerName `<svc>.<ns>.svc` for a Service reference, which is
// resolved to a ready endpoint through its EndpointSlices: this host runs no kube-proxy), with its timeoutSeconds and
// failurePolicy. A refusal reads `admission webhook "<name>" denied the request: <message>`.
import { randomUUID } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Logger } from '../../../log.js';
import { ApiError, badRequest } from '../errors.js';
import { apiVersionOf, keyOf, resourceKey, type Registry, type ResourceType } from '../registry.js';
import type { Store } from '../store.js';
import { isObj, obj, str, type Obj } from '../util.js';
import { jsonPatch } from '../patch.js';
import type { UserInfo } from '../auth/user.js';
import { matchedVersion, namespaceSelectorMatches, objectSelectorMatches, type Operation, type RequestTarget } from './webhook-rules.js';

export interface AdmissionRequest {
  operation: Operation;
  rt: ResourceType;
  /** the version of the request (objects are in it) */
  version: string;
  subresource: string;
  namespace: string;
  name: string;
  object?: Obj;
  oldObject?: Obj;
  user: UserInfo;
  dryRun: boolean;
  /** CreateOptions / UpdateOptions / DeleteOptions as sent to the webhook */
  options: Obj;
}

const VALIDATING = resourceKey('admissionregistration.k8s.io', 'validatingwebhookconfigurations');
const MUTATING = resourceKey('admissionregistration.k8s.io', 'mutatingwebhookconfigurations');
/** Requests on these are never sent to webhooks (a broken webhook must not lock its own configuration). */
const EXEMPT = new Set([VALIDATING, MUTATING]);
const MAX_TIMEOUT_S = 30;

interface WebhookAnswer {
  warnings: string[];
  /** JSON patch operations of a mutating webhook */
  patch?: unknown;
}

/** A webhook call that failed (connection, TLS, timeout, a malformed answer); failurePolicy decides. */
class CallError extends Error {}

interface Endpoint {
  host: string;
  port: number;
  path: string;
  /** TLS server name */
  servername: string;
  /** the URL as kube-apiserver prints it in errors */
  display: string;
}

function goDialError(e: NodeJS.ErrnoException, host: string, port: number): string {
  const addr = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return `dial tcp ${addr}: connect: connection refused`;
    case 'EHOSTUNREACH':
      return `dial tcp ${addr}: connect: no route to host`;
    case 'ENETUNREACH':
      return `dial tcp ${addr}: connect: network is unreachable`;
    case 'ECONNRESET':
      return 'read: connection reset by peer';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_SIGNATURE_FAILURE':
      return 'tls: failed to verify certificate: x509: certificate signed by unknown authority';
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `tls: failed to verify certificate: x509: ${e.message}`;
    case 'CERT_HAS_EXPIRED':
      return 'tls: failed to verify certificate: x509: certificate has expired or is not yet valid';
    default:
      return e.message;
  }
}

export class AdmissionWebhooks {
  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  /** Whether any configuration exists (the common case without webhooks skips admission entirely). */
  configured(): boolean {
    return this.store.count(VALIDATING) > 0 || this.store.count(MUTATING) > 0;
  }

  /** Runs the matching validating webhooks; returns their warnings, throws the refusal or a failure (failurePolicy Fail). */
  async validate(r: AdmissionRequest): Promise<string[]> {
    const calls = this.matching(VALIDATING, r);
    if (calls.length === 0) return [];
    const results = await Promise.all(calls.map((c) => this.one(c.webhook, c.version, r).then((resp) => ({ warnings: resp.warnings }), (e: unknown) => ({ error: e }))));
    const warnings: string[] = [];
    for (const res of results) {
      if ('error' in res) throw res.error;
      warnings.push(...res.warnings);
    }
    return warnings;
  }

  /**
   * Runs the matching mutating webhooks in order, each on the object as the previous one left it (CREATE and UPDATE;
   * JSONPatch responses). Returns the object and whether it changed, with the warnings.
   */
  async mutate(r: AdmissionRequest): Promise<{ object: Obj | undefined; changed: boolean; warnings: string[] }> {
    let object = r.object;
    let changed = false;
    const warnings: string[] = [];
    if (r.operation !== 'CREATE' && r.operation !== 'UPDATE') return { object, changed, warnings };
    for (const c of this.matching(MUTATING, r)) {
      const resp = await this.one(c.webhook, c.version, { ...r, ...(object ? { object } : {}) });
      warnings.push(...resp.warnings);
      if (resp.patch === undefined || !object) continue;
      const name = str(c.webhook.name) ?? '';
      let patched: unknown;
      try {
        const inVersion = c.version === r.version ? object : { ...object, apiVersion: apiVersionOf(r.rt.group, c.version) };
        patched = jsonPatch(inVersion, resp.patch);
      } catch (e) {
        const msg = `failed calling webhook "${name}": JSONPatch cannot be applied: ${(e as Error).message}`;
        throw new ApiError(500, 'InternalError', `Internal error occurred: ${msg}`, { causes: [{ message: msg }] });
      }
      if (!isObj(patched)) throw new ApiError(500, 'InternalError', `Internal error occurred: failed calling webhook "${name}": the patched object is not an object`);
      object = { ...patched, apiVersion: object.apiVersion };
      changed = true;
    }
    return { object, changed, warnings };
  }

  private matching(configKey: string, r: AdmissionRequest): { webhook: Obj; version: string }[] {
    if (EXEMPT.has(keyOf(r.rt)) || r.rt.virtual) return [];
    const target: RequestTarget = { operation: r.operation, group: r.rt.group, version: r.version, resource: r.rt.resource, subresource: r.subresource, namespaced: r.rt.namespaced };
    const served = r.rt.versions.map((v) => v.name);
    const ns = r.rt.namespaced ? this.store.get(resourceKey('', 'namespaces'), '', r.namespace) : undefined;
    const nsLabels = obj(ns?.metadata).labels;
    const objectLabels = obj((r.object ?? r.oldObject)?.metadata).labels;
    const calls: { webhook: Obj; version: string }[] = [];
    for (const cfg of this.store.list(configKey)) {
      for (const wh of Array.isArray(cfg.webhooks) ? cfg.webhooks.filter(isObj) : []) {
        const version = matchedVersion(wh, target, served);
        if (version === undefined) continue;
        if (!namespaceSelectorMatches(wh, target, nsLabels, objectLabels)) continue;
        if (!objectSelectorMatches(wh, r.object, r.oldObject)) continue;
        calls.push({ webhook: wh, version });
      }
    }
    return calls;
  }

  private async one(wh: Obj, version: string, r: AdmissionRequest): Promise<WebhookAnswer> {
    const name = str(wh.name) ?? '';
    const sideEffects = str(wh.sideEffects) ?? 'Unknown';
    if (r.dryRun && sideEffects !== 'None' && sideEffects !== 'NoneOnDryRun') throw badRequest(`admission webhook "${name}" does not support dry run`);
    const failurePolicy = wh.failurePolicy === 'Ignore' ? 'Ignore' : 'Fail';
    try {
      return await this.call(wh, version, r);
    } catch (e) {
      if (!(e instanceof CallError)) throw e;
      if (failurePolicy === 'Ignore') {
        this.log.warn({ webhook: name, err: e.message }, 'failed calling webhook, failing open (failurePolicy Ignore)');
        return { warnings: [] };
      }
      const msg = `failed calling webhook "${name}": ${e.message}`;
      throw new ApiError(500, 'InternalError', `Internal error occurred: ${msg}`, { causes: [{ message: msg }] });
    }
  }

  private endpoint(wh: Obj, timeoutS: number): Endpoint {
    const cc = obj(wh.clientConfig);
    const query = `timeout=${timeoutS}s`;
    if (typeof cc.url === 'string') {
      let u: URL;
      try {
        u = new URL(cc.url);
      } catch {
        throw new CallError(`failed to call webhook: invalid URL ${JSON.stringify(cc.url)}`);
      }
      const port = u.port ? Number(u.port) : 443;
      const host = u.hostname.replace(/^\[|\]$/g, '');
      const path = `${u.pathname}${u.search ? `${u.search}&${query}` : `?${query}`}`;
      return { host, port, path, servername: isIP(host) ? '' : host, display: `${u.protocol}//${u.host}${path}` };
    }
    const svcRef = obj(cc.service);
    const svcName = str(svcRef.name) ?? '';
    const svcNs = str(svcRef.namespace) ?? '';
    const port = typeof svcRef.port === 'number' ? svcRef.port : 443;
    const rawPath = str(svcRef.path) ?? '';
    const path = `${rawPath.startsWith('/') ? rawPath : `/${rawPath}`}?${query}`;
    const host = `${svcName}.${svcNs}.svc`;
    const display = `https://${host}:${port}${path}`;
    const fail = (why: string): CallError => new CallError(`failed to call webhook: Post "${display}": ${why}`);
    const svc = this.store.get(resourceKey('', 'services'), svcNs, svcName);
    if (!svc) throw fail(`service "${svcName}" not found`);
    const svcPort = (Array.isArray(obj(svc.spec).ports) ? (obj(svc.spec).ports as unknown[]) : []).map(obj).find((p) => p.port === port);
    if (!svcPort) throw fail(`no service port ${port} found for service "${svcName}"`);
    const target = this.readyEndpoint(svcNs, svcName, svcPort);
    if (!target) throw fail(`no endpoints available for service "${svcName}"`);
    return { host: target.ip, port: target.port, path, servername: host, display };
  }

  /** A ready address and port of a Service port, from its EndpointSlices (or its Endpoints). */
  private readyEndpoint(ns: string, svc: string, svcPort: Obj): { ip: string; port: number } | undefined {
    const portName = str(svcPort.name) ?? '';
    const candidates: { ip: string; port: number }[] = [];
    for (const slice of this.store.list(resourceKey('discovery.k8s.io', 'endpointslices'), ns)) {
      if (obj(obj(slice.metadata).labels)['kubernetes.io/service-name'] !== svc) continue;
      const p = (Array.isArray(slice.ports) ? slice.ports : []).map(obj).find((x) => (str(x.name) ?? '') === portName);
      if (!p || typeof p.port !== 'number') continue;
      for (const ep of Array.isArray(slice.endpoints) ? slice.endpoints.map(obj) : []) {
        if (obj(ep.conditions).ready === false) continue;
        for (const a of Array.isArray(ep.addresses) ? ep.addresses : []) if (typeof a === 'string') candidates.push({ ip: a, port: p.port });
      }
    }
    if (candidates.length === 0) {
      const eps = this.store.get(resourceKey('', 'endpoints'), ns, svc);
      for (const sub of Array.isArray(eps?.subsets) ? eps.subsets.map(obj) : []) {
        const p = (Array.isArray(sub.ports) ? sub.ports : []).map(obj).find((x) => (str(x.name) ?? '') === portName);
        if (!p || typeof p.port !== 'number') continue;
        for (const a of Array.isArray(sub.addresses) ? sub.addresses.map(obj) : []) if (typeof a.ip === 'string') candidates.push({ ip: a.ip, port: p.port });
      }
    }
    return candidates.length ? candidates[Math.floor(Math.random() * candidates.length)] : undefined;
  }

  private review(wh: Obj, version: string, r: AdmissionRequest, reviewVersion: string, uid: string): Obj {
    const vrt = r.rt;
    const convert = (o: Obj | undefined): Obj | null => (o === undefined ? null : version === r.version ? o : { ...o, apiVersion: apiVersionOf(vrt.group, version) });
    const subKind = r.subresource === '' || r.subresource === 'status' ? vrt.kind : (vrt.versions.find((v) => v.name === r.version)?.subresources?.find((s) => s.name === r.subresource)?.kind ?? vrt.kind);
    void wh;
    return {
      apiVersion: `admission.k8s.io/${reviewVersion}`,
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: vrt.group, version, kind: subKind },
        resource: { group: vrt.group, version, resource: vrt.resource },
        ...(r.subresource ? { subResource: r.subresource } : {}),
        requestKind: { group: vrt.group, version: r.version, kind: subKind },
        requestResource: { group: vrt.group, version: r.version, resource: vrt.resource },
        ...(r.subresource ? { requestSubResource: r.subresource } : {}),
        ...(r.name ? { name: r.name } : {}),
        ...(r.namespace ? { namespace: r.namespace } : {}),
        operation: r.operation,
        userInfo: { username: r.user.username, ...(r.user.uid ? { uid: r.user.uid } : {}), groups: r.user.groups, ...(r.user.extra && Object.keys(r.user.extra).length ? { extra: r.user.extra } : {}) },
        object: convert(r.object),
        oldObject: convert(r.oldObject),
        dryRun: r.dryRun,
        options: r.options,
      },
    };
  }

  private async call(wh: Obj, version: string, r: AdmissionRequest): Promise<WebhookAnswer> {
    const name = str(wh.name) ?? '';
    const accepted = Array.isArray(wh.admissionReviewVersions) ? wh.admissionReviewVersions : ['v1'];
    const reviewVersion = ['v1', 'v1beta1'].find((v) => accepted.includes(v));
    if (!reviewVersion) throw new CallError(`webhook does not accept known AdmissionReview versions (v1, v1beta1), only ${JSON.stringify(accepted)}`);
    const timeoutS = Math.min(typeof wh.timeoutSeconds === 'number' && wh.timeoutSeconds > 0 ? wh.timeoutSeconds : 10, MAX_TIMEOUT_S);
    const ep = this.endpoint(wh, timeoutS);
    const uid = randomUUID();
    const body = JSON.stringify(this.review(wh, version, r, reviewVersion, uid));
    const caBundle = str(obj(wh.clientConfig).caBundle);
    const ca = caBundle ? Buffer.from(caBundle, 'base64').toString('utf8') : undefined;
    const started = Date.now();
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: ep.host,
          port: ep.port,
          path: ep.path,
          method: 'POST',
          ...(ca ? { ca } : {}),
          ...(ep.servername ? { servername: ep.servername } : {}),
          headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Content-Length': Buffer.byteLength(body) },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (e) => reject(new CallError(`failed to call webhook: Post "${ep.display}": ${e.message}`)));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        reject(new CallError(`failed to call webhook: Post "${ep.display}": context deadline exceeded`));
      }, timeoutS * 1000);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e: NodeJS.ErrnoException) => reject(new CallError(`failed to call webhook: Post "${ep.display}": ${goDialError(e, ep.host, ep.port)}`)));
      req.end(body);
    });
    this.log.debug({ webhook: name, url: ep.display, status, ms: Date.now() - started }, 'called webhook');
    if (status !== 200) throw new CallError(`failed to call webhook: the server responded with the status code ${status} (${text.slice(0, 200).trim()})`);
    let rev: Obj;
    try {
      const parsed: unknown = JSON.parse(text);
      if (!isObj(parsed)) throw new Error('not an object');
      rev = parsed;
    } catch (e) {
      throw new CallError(`received invalid webhook response: ${(e as Error).message}`);
    }
    const resp = rev.response;
    if (!isObj(resp)) throw new CallError('received invalid webhook response: response is missing');
    if (reviewVersion === 'v1') {
      if (rev.apiVersion !== 'admission.k8s.io/v1' || rev.kind !== 'AdmissionReview')
        throw new CallError(`received invalid webhook response: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${String(rev.apiVersion)}, Kind=${String(rev.kind)}`);
      if (resp.uid !== uid) throw new CallError(`received invalid webhook response: expected response.uid="${uid}", got "${String(resp.uid)}"`);
    }
    const warnings = Array.isArray(resp.warnings) ? resp.warnings.filter((w): w is string => typeof w === 'string') : [];
    if (resp.allowed !== true) throw denied(name, isObj(resp.status) ? resp.status : undefined);
    if (typeof resp.patch !== 'string' || resp.patch === '') return { warnings };
    if (resp.patchType !== 'JSONPatch') throw new CallError(`received invalid webhook response: unsupported patch type ${JSON.stringify(resp.patchType)}`);
    let ops: unknown;
    try {
      ops = JSON.parse(Buffer.from(resp.patch, 'base64').toString('utf8'));
    } catch (e) {
      throw new CallError(`received invalid webhook response: the patch is not JSON: ${(e as Error).message}`);
    }
    return { warnings, patch: ops };
  }
}

/** kube's webhookerrors.ToStatusErr: the webhook's Status with the refusal prefix, never a < 400 code. */
export function denied(webhookName: string, s: Obj | undefined): ApiError {
  const by = `admission webhook "${webhookName}" denied the request`;
  const code = typeof s?.code === 'number' && s.code >= 400 ? s.code : 400;
  const message = str(s?.message) ? `${by}: ${str(s?.message)}` : str(s?.reason) ? `${by}: ${str(s?.reason)}` : `${by} without explanation`;
  return new ApiError(code, str(s?.reason) ?? '', message, isObj(s?.details) ? s.details : undefined);
}
