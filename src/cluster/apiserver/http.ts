// The HTTP layer: routing, content negotiation and response writing around Api; watch streaming.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stringify as toYaml } from 'yaml';
import type { Logger } from '../../log.js';
import { StaleWrite, type Api, type DeleteOptions, type FieldValidation, type PendingWrite, type ReqCtx } from './api.js';
import type { AdmissionRequest, AdmissionWebhooks } from './admission/webhooks.js';
import { aggregatedDiscovery, apiGroup, apiGroupList, apiResourceList, apiVersions, openapiV2Json, openapiV2Protobuf, openapiV3Doc, openapiV3Root, SERVER_VERSION } from './discovery.js';
import { ApiError, badRequest, gone, invalid, methodNotAllowed, pathNotFound, type FieldError } from './errors.js';
import { chooseOutput, decodeBody, PATCH_TYPES, type Output } from './negotiate.js';
import { apiVersionOf, keyOf, type Registry, type ResourceType, type VersionInfo } from './registry.js';
import { checkFieldSelector, matchFields, matchLabels, parseFieldSelector, parseLabelSelector, type FieldSelector, type LabelSelector } from './selectors.js';
import type { Store, StoreEvent } from './store.js';
import { toTable } from './table.js';
import { isObj, obj, type Obj } from './util.js';
import { admitRequest, type AuthStack } from './auth/stack.js';
import type { AuditRecord } from './audit.js';
import { requestInfo } from './auth/request-info.js';
import type { UserInfo } from './auth/user.js';
import { localSubjectAccessReview, selfSubjectAccessReview, selfSubjectReview, selfSubjectRulesReview, subjectAccessReview, tokenReview, type ReviewContext } from './auth/reviews.js';
import { createToken } from './auth/token-request.js';
import { confirmNoEscalation } from './auth/escalation.js';
import { queryBool, queryInt, queryOptBool } from './params.js';
import type { Aggregator } from './aggregator/aggregator.js';

const MAX_BODY = 16 * 1024 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface HttpDeps {
  api: Api;
  store: Store;
  registry: Registry;
  log: Logger;
  /** host:port clients use, for /api's serverAddressByClientCIDRs */
  serverAddress(): string;
  /** interval of BOOKMARK events on watches that allow them */
  bookmarkIntervalMs?: number;
  /** the audit log: called once per request when its response is over */
  audit?: (r: AuditRecord) => void;
  auth: AuthStack;
  /** The aggregation layer: APIServices served by other API servers (discovery merged, requests proxied). */
  aggregator?: Aggregator;
  /** `pods/log`: proxies to the pod's kubelet */
  podLogs?: (req: IncomingMessage, res: ServerResponse, ctx: ReqCtx, podName: string, q: URLSearchParams) => Promise<void>;
  webhooks?: AdmissionWebhooks;
}

/** The options object an admission webhook receives (meta.k8s.io/v1 CreateOptions / UpdateOptions). */
function writeOptions(kind: 'CreateOptions' | 'UpdateOptions', q: URLSearchParams): Obj {
  const fm = q.get('fieldManager');
  const fv = q.get('fieldValidation');
  return { kind, apiVersion: 'meta.k8s.io/v1', ...(fm ? { fieldManager: fm } : {}), ...(fv ? { fieldValidation: fv } : {}) };
}

interface Target {
  rt: ResourceType;
  version: VersionInfo;
  namespace?: string;
  name?: string;
  subresource?: string;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > MAX_BODY) {
        // answer with the 413 at once; the rest of the body is read and dropped (destroying the request would
        // reset the connection before the client sees the Status)
        tooLarge = true;
        chunks.length = 0;
        reject(new ApiError(413, 'RequestEntityTooLarge', `the request body is too large (limit ${MAX_BODY} bytes)`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}


const PROPAGATION_POLICIES = ['Foreground', 'Background', 'Orphan'];
/** Registries with ReturnDeletedObject (pods, services, namespaces, custom resources and their definitions). */
const returnsDeletedObject = (rt: ResourceType): boolean => rt.crd !== undefined || ['/pods', '/services', '/namespaces', 'apiextensions.k8s.io/customresourcedefinitions'].includes(keyOf(rt));
/** What kube-apiserver answers a Binding with. */
const BINDING_CREATED: Obj = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };

/**
 * DeleteOptions of a DELETE: from the body when there is one (JSON, YAML or protobuf), else from the query
 * parameters, as kube-apiserver's DeleteResource reads them; validated like ValidateDeleteOptions.
 */
export function deleteOptions(raw: Buffer, contentType: string | undefined, q: URLSearchParams): DeleteOptions {
  let opts: DeleteOptions = {};
  if (raw.length > 0 && raw.toString('utf8').trim() !== '') {
    const b = decodeBody(raw, contentType ?? 'application/json', false);
    if (!isObj(b)) throw badRequest('the body of a DELETE must be a DeleteOptions object');
    if (b.kind !== undefined && b.kind !== 'DeleteOptions') throw badRequest(`decoded object cannot be converted to DeleteOptions (got kind ${String(b.kind)})`);
    opts = b as DeleteOptions;
  } else {
    const grace = queryInt(q, 'gracePeriodSeconds');
    const orphan = queryOptBool(q, 'orphanDependents');
    const policy = q.get('propagationPolicy');
    const dry = q.getAll('dryRun');
    opts = {
      ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
      ...(orphan !== undefined ? { orphanDependents: orphan } : {}),
      ...(policy !== null ? { propagationPolicy: policy } : {}),
      ...(dry.length ? { dryRun: dry } : {}),
    };
  }
  const errs: FieldError[] = [];
  if (opts.orphanDependents !== undefined && opts.propagationPolicy !== undefined)
    errs.push({ type: 'Invalid', field: 'propagationPolicy', value: opts.propagationPolicy, detail: 'orphanDependents and deletionPropagation cannot be both set' });
  if (opts.propagationPolicy !== undefined && !PROPAGATION_POLICIES.includes(opts.propagationPolicy))
    errs.push({ type: 'NotSupported', field: 'propagationPolicy', value: opts.propagationPolicy, detail: 'supported values: "Foreground", "Background", "Orphan"' });
  for (const d of opts.dryRun ?? []) if (d !== 'All') errs.push({ type: 'NotSupported', field: 'dryRun', value: d, detail: 'supported values: "All"' });
  if (opts.gracePeriodSeconds !== undefined && (typeof opts.gracePeriodSeconds !== 'number' || !Number.isInteger(opts.gracePeriodSeconds)))
    errs.push({ type: 'Invalid', field: 'gracePeriodSeconds', value: opts.gracePeriodSeconds, detail: 'must be an integer' });
  if (errs.length) throw invalid('meta.k8s.io', 'DeleteOptions', '', errs);
  return opts;
}

export class HttpHandler {
  /** Open watch responses, ended on close(). */
  readonly watches = new Set<ServerResponse>();
  private readonly bookmarkMs: number;

  constructor(private readonly d: HttpDeps) {
    this.bookmarkMs = d.bookmarkIntervalMs ?? 10_000;
  }

  closeWatches(): void {
    for (const w of this.watches) w.end();
    this.watches.clear();
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      this.d.log.debug(
        { method: req.method, url: req.url, status: res.statusCode, ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000 },
        'request',
      );
    });
    const audit = this.d.audit;
    let users: Pick<AuditRecord, 'requestor' | 'impersonated' | 'forbidden'> | undefined;
    if (audit) {
      users = {};
      const received = new Date();
      // 'close' also fires for a watch the client dropped, which never 'finish'es
      res.once('close', () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const ua = req.headers['user-agent'];
        audit({
          info: requestInfo(req.method ?? 'GET', url.pathname, url.searchParams),
          method: req.method ?? 'GET',
          requestURI: req.url ?? '/',
          ...users,
          ...(req.socket.remoteAddress ? { sourceIP: req.socket.remoteAddress } : {}),
          ...(ua ? { userAgent: ua } : {}),
          code: res.statusCode,
          received,
        });
      });
    }
    this.serve(req, res, users).catch((e: unknown) => this.fail(res, req, e));
  };

  /** kube-apiserver's filter chain (authentication, impersonation, authorization), then the handlers. */
  private async serve(req: IncomingMessage, res: ServerResponse, audit?: Pick<AuditRecord, 'requestor' | 'impersonated' | 'forbidden'>): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const onUsers = audit
      ? (requestor: UserInfo, impersonated: UserInfo | undefined): void => {
          audit.requestor = requestor;
          if (impersonated) audit.impersonated = impersonated;
        }
      : undefined;
    let admitted;
    try {
      admitted = await admitRequest(req, url.pathname, url.searchParams, this.d.auth, onUsers);
    } catch (e) {
      if (audit?.requestor && e instanceof ApiError && e.code === 403) audit.forbidden = true;
      throw e;
    }
    return this.route(req, res, url, admitted.user);
  }

  private fail(res: ServerResponse, req: IncomingMessage, e: unknown): void {
    const err = e instanceof ApiError ? e : new ApiError(500, 'InternalError', `Internal error occurred: ${e instanceof Error ? e.message : String(e)}`);
    if (!(e instanceof ApiError)) this.d.log.error({ err: e instanceof Error ? e.stack : String(e), method: req.method, url: req.url }, 'internal error');
    if (res.headersSent) {
      res.end();
      return;
    }
    this.write(res, err.code, err.toStatus(), { kind: 'json' });
  }

  private write(res: ServerResponse, code: number, body: Obj, out: Output, warnings: string[] = [], contentType?: string): void {
    let text: string;
    let ct: string;
    if (out.kind === 'yaml') {
      text = toYaml(body);
      ct = 'application/yaml';
    } else {
      text = JSON.stringify(body);
      ct = contentType ?? 'application/json';
    }
    const headers: Record<string, string | string[]> = {
      'Content-Type': ct,
      'Cache-Control': 'no-cache, private',
      'Content-Length': String(Buffer.byteLength(text)),
    };
    if (warnings.length) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(code, headers);
    res.end(text);
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, user: UserInfo): Promise<void> {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const q = url.searchParams;
    if (['/healthz', '/readyz', '/livez'].some((p) => path === p || path.startsWith(`${p}/`))) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
      res.end('ok');
      return;
    }
    if (path === '/version') return this.write(res, 200, SERVER_VERSION as unknown as Obj, { kind: 'json' });
    if (path === '/api' || path === '/apis') {
      if (method !== 'GET') throw methodNotAllowed();
      const out = chooseOutput(req.headers.accept, true);
      const agg = path === '/apis' ? this.d.aggregator : undefined;
      if (out.kind === 'discovery') {
        const v = `apidiscovery.k8s.io/${out.version}`;
        const doc = aggregatedDiscovery(this.d.registry, path === '/api', v);
        if (agg) doc.items = [...(doc.items as Obj[]), ...agg.aggregatedItems()];
        return this.write(res, 200, doc, { kind: 'json' }, [], `application/json;g=apidiscovery.k8s.io;v=${out.version};as=APIGroupDiscoveryList`);
      }
      if (path === '/api') return this.write(res, 200, apiVersions(this.d.serverAddress()), out);
      const list = apiGroupList(this.d.registry);
      if (agg) list.groups = [...(list.groups as Obj[]), ...agg.remoteGroups()];
      return this.write(res, 200, list, out);
    }
    if (path === '/openapi/v2') {
      const accept = req.headers.accept ?? '';
      if (accept.includes('protobuf')) {
        const body = openapiV2Protobuf();
        res.writeHead(200, { 'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': String(body.length) });
        res.end(body);
        return;
      }
      return this.write(res, 200, openapiV2Json(), { kind: 'json' });
    }
    if (path === '/openapi/v3') return this.write(res, 200, openapiV3Root(this.d.registry), { kind: 'json' });
    if (path.startsWith('/openapi/v3/')) {
      const rest = path.slice('/openapi/v3/'.length).split('/');
      const doc =
        rest[0] === 'api' && rest.length === 2
          ? openapiV3Doc(this.d.registry, '', rest[1]!)
          : rest[0] === 'apis' && rest.length === 3
            ? openapiV3Doc(this.d.registry, rest[1]!, rest[2]!)
            : undefined;
      if (!doc) throw pathNotFound();
      return this.write(res, 200, doc, { kind: 'json' });
    }
    let seg: string[];
    try {
      seg = path.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      throw badRequest(`malformed URL path: ${path}`);
    }
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === 'api' && seg.length >= 2) {
      group = '';
      version = seg[1]!;
      rest = seg.slice(2);
    } else if (seg[0] === 'apis' && seg.length >= 2) {
      if (seg.length === 2) {
        const g = apiGroup(this.d.registry, seg[1]!) ?? this.d.aggregator?.remoteGroup(seg[1]!);
        if (!g) throw pathNotFound();
        return this.write(res, 200, g, chooseOutput(req.headers.accept));
      }
      if (this.d.aggregator?.handles(seg[1]!, seg[2]!)) return this.d.aggregator.proxy(req, res, url, user, seg[1]!, seg[2]!);
      group = seg[1]!;
      version = seg[2]!;
      rest = seg.slice(3);
    } else throw pathNotFound();
    if (rest.length === 0) {
      const doc = apiResourceList(this.d.registry, group, version);
      if (!doc) throw pathNotFound();
      return this.write(res, 200, doc, chooseOutput(req.headers.accept));
    }
    let watchPath = false;
    if (rest[0] === 'watch') {
      watchPath = true;
      rest = rest.slice(1);
    }
    const target = this.resolve(group, version, rest);
    if (!target) throw pathNotFound();
    const isWatch = watchPath || queryBool(q, 'watch');
    return this.dispatch(req, res, method, target, q, isWatch, user);
  }

  /** Map path segments after /api/v1 or /apis/g/v to a resource target. */
  private resolve(group: string, version: string, rest: string[]): Target | undefined {
    const reg = this.d.registry;
    const lookup = (r: string): { rt: ResourceType; version: VersionInfo } | undefined => reg.lookup(group, version, r);
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const l = lookup(rest[2]!);
      if (l && l.rt.namespaced) {
        if (rest.length > 5) return undefined;
        return { ...l, namespace: rest[1]!, ...(rest[3] !== undefined ? { name: rest[3] } : {}), ...(rest[4] !== undefined ? { subresource: rest[4] } : {}) };
      }
      if (!(group === '' && rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) return undefined;
    }
    const l = lookup(rest[0]!);
    if (!l || rest.length > 3) return undefined;
    return { ...l, ...(rest[1] !== undefined ? { name: rest[1] } : {}), ...(rest[2] !== undefined ? { subresource: rest[2] } : {}) };
  }

  private ctx(t: Target, q: URLSearchParams, user: UserInfo): ReqCtx {
    const dry = q.getAll('dryRun');
    for (const d of dry) if (d !== 'All') throw badRequest(`dryRun: Unsupported value: "${d}": supported values: "All"`);
    const fv = q.get('fieldValidation') ?? 'Warn';
    if (!['Strict', 'Warn', 'Ignore'].includes(fv)) throw badRequest(`fieldValidation: Unsupported value: "${fv}": supported values: "Ignore", "Strict", "Warn"`);
    return {
      rt: t.rt,
      version: t.version,
      ...(t.rt.namespaced && t.namespace !== undefined ? { namespace: t.namespace } : {}),
      dryRun: dry.length > 0,
      fieldValidation: fv as FieldValidation,
      warnings: t.version.deprecationWarning !== undefined ? [t.version.deprecationWarning] : [],
      user,
    };
  }

  private selectors(t: Target, q: URLSearchParams): { labels: LabelSelector; fields: FieldSelector } {
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = this.fieldSelector(t.rt, q);
    return { labels, fields };
  }

  /** Parsed, checked field selector; for views (events.k8s.io) in terms of the stored objects' fields. */
  private fieldSelector(rt: ResourceType, q: URLSearchParams): FieldSelector {
    let fields = parseFieldSelector(q.get('fieldSelector') ?? '');
    if (rt.storage) fields = fields.map((f) => ({ ...f, field: rt.storage!.fieldLabel(f.field) }));
    checkFieldSelector(fields, keyOf(rt));
    return fields;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, method: string, t: Target, q: URLSearchParams, isWatch: boolean, user: UserInfo): Promise<void> {
    const api = this.d.api;
    if (t.rt.virtual) return this.virtual(req, res, method, t, q, user);
    if (t.subresource !== undefined && t.name !== undefined && t.version.subresources?.some((x) => x.name === t.subresource))
      return this.subresource(req, res, method, t, q, user);
    if (t.subresource !== undefined && !(t.subresource === 'status' && t.version.statusSubresource) && !(t.subresource === 'scale' && t.version.scale)) throw pathNotFound();
    if (t.subresource === 'scale' && t.name !== undefined) return this.scale(req, res, method, t, q, user);
    if (t.name === undefined) {
      // collection
      if (t.rt.namespaced === false && t.namespace !== undefined) throw pathNotFound();
      if (method === 'GET') {
        const out = chooseOutput(req.headers.accept);
        const ctx = this.ctx(t, q, user);
        if (isWatch) return this.watch(req, res, ctx, q, out);
        const sel = this.selectors(t, q);
        const { items, resourceVersion } = api.list(ctx, sel.labels, sel.fields);
        return this.sendList(res, t, items, resourceVersion, q, out, ctx.warnings);
      }
      if (method === 'POST') {
        const out = chooseOutput(req.headers.accept);
        const body = decodeBody(await readBody(req), req.headers['content-type'], false);
        const ctx = this.ctx(t, q, user);
        const requestedName = isObj(body) ? String(obj(body.metadata).name ?? '') : '';
        const created = await this.admitted(ctx, api.prepareCreate(ctx, body), '', writeOptions('CreateOptions', q), requestedName);
        return this.sendObject(res, 201, t, created, q, out, ctx.warnings);
      }
      if (method === 'DELETE') {
        if (!t.rt.verbs.includes('deletecollection')) throw methodNotAllowed();
        const out = chooseOutput(req.headers.accept);
        const ctx = this.ctx(t, q, user);
        const sel = this.selectors(t, q);
        const opts = deleteOptions(await readBody(req), req.headers['content-type'], q);
        if (opts.dryRun?.includes('All')) ctx.dryRun = true;
        if (this.d.webhooks?.configured()) {
          // each object of the collection goes through admission as a DELETE, like kube-apiserver's DeleteCollection
          for (const it of api.list(ctx, sel.labels, sel.fields).items) await this.admitDelete(ctx, it, opts);
        }
        const items = api.deleteCollection(ctx, sel.labels, sel.fields, opts);
        return this.sendList(res, t, items, String(this.d.store.currentRV()), new URLSearchParams(), out, ctx.warnings);
      }
      throw methodNotAllowed();
    }
    const name = t.name;
    const out = chooseOutput(req.headers.accept);
    const ctx = this.ctx(t, q, user);
    switch (method) {
      case 'GET':
        if (isWatch) {
          // legacy single-object watch (/api/v1/watch/namespaces/ns/services/name): a field selector on the name
          if (t.subresource !== undefined) throw methodNotAllowed();
          const fs = q.get('fieldSelector');
          q.set('fieldSelector', fs ? `${fs},metadata.name=${name}` : `metadata.name=${name}`);
          return this.watch(req, res, ctx, q, out);
        }
        return this.sendObject(res, 200, t, api.get(ctx, name), q, out, ctx.warnings);
      case 'PUT': {
        const body = decodeBody(await readBody(req), req.headers['content-type'], false);
        const conditional = isObj(body) && typeof obj(body.metadata).resourceVersion === 'string' && obj(body.metadata).resourceVersion !== '';
        const updated = await this.retryStale(conditional ? 1 : 5, () => this.admitted(ctx, api.prepareUpdate(ctx, name, body, t.subresource), t.subresource ?? '', writeOptions('UpdateOptions', q), name));
        return this.sendObject(res, 200, t, updated, q, out, ctx.warnings);
      }
      case 'PATCH': {
        const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        const body = decodeBody(await readBody(req), ct, true);
        const type = PATCH_TYPES[ct]!;
        if (type === 'apply' && !q.get('fieldManager')) throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
        const existed = this.d.store.get(keyOf(t.rt), t.rt.namespaced ? (t.namespace ?? '') : '', name) !== undefined;
        const result = await this.retryStale(5, () => {
          const pending = api.preparePatch(ctx, name, type, body, t.subresource, queryOptBool(q, 'force') ?? false, q.get('fieldManager') ?? '');
          return this.admitted(ctx, pending, t.subresource ?? '', writeOptions(pending.operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions', q), name);
        });
        return this.sendObject(res, existed ? 200 : 201, t, result, q, out, ctx.warnings);
      }
      case 'DELETE': {
        if (t.subresource !== undefined) throw methodNotAllowed();
        const opts = deleteOptions(await readBody(req), req.headers['content-type'], q);
        if (opts.dryRun?.includes('All')) ctx.dryRun = true;
        if (this.d.webhooks?.configured()) await this.admitDelete(ctx, api.get(ctx, name), opts);
        const { object, deleted } = api.delete(ctx, name, opts);
        // like kube-apiserver's registries: most answer a finished deletion with a Status, some with the object
        if (deleted && !returnsDeletedObject(t.rt)) {
          const m = obj(object.metadata);
          return this.write(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, ...(t.rt.group ? { group: t.rt.group } : {}), kind: t.rt.resource, uid: m.uid } }, out, ctx.warnings);
        }
        return this.sendObject(res, 200, t, object, q, out, ctx.warnings);
      }
      default:
        throw methodNotAllowed();
    }
  }

  /** Validating admission between computing a write and storing it; without webhooks the write is stored at once. */
  /**
   * Admission between computing a write and storing it, in kube-apiserver's order: mutating webhooks (the write is
   * prepared again, and so validated again, from what they made of it), RBAC escalation checks, validating webhooks.
   * Without webhook configurations the write is stored at once.
   */
  private async admitted(ctx: ReqCtx, first: PendingWrite, subresource: string, options: Obj, requestName: string): Promise<Obj> {
    let pending = first;
    const wh = this.d.webhooks;
    const base = (): AdmissionRequest => ({
      operation: pending.operation,
      rt: ctx.rt,
      version: ctx.version.name,
      subresource,
      namespace: ctx.rt.namespaced ? (ctx.namespace ?? '') : '',
      name: requestName,
      object: pending.object,
      ...(pending.oldObject ? { oldObject: pending.oldObject } : {}),
      user: ctx.user ?? { username: 'system:anonymous', groups: [] },
      dryRun: ctx.dryRun,
      options: { ...options, ...(ctx.dryRun ? { dryRun: ['All'] } : {}) },
    });
    try {
      if (wh?.configured()) {
        const m = await wh.mutate(base());
        ctx.warnings.push(...m.warnings);
        if (m.changed && m.object) {
          pending.abort();
          pending = pending.redo(m.object);
        }
      }
      if (ctx.rt.group === 'rbac.authorization.k8s.io' && ctx.user && this.d.auth.rbacSource)
        confirmNoEscalation(ctx.rt.resource, ctx.rt.namespaced ? (ctx.namespace ?? '') : '', pending.object, ctx.user, this.d.auth.authorizer, this.d.auth.rbacSource);
      if (wh?.configured()) ctx.warnings.push(...(await wh.validate(base())));
    } catch (e) {
      pending.abort();
      throw e;
    }
    return pending.commit();
  }

  private async admitDelete(ctx: ReqCtx, existing: Obj, opts: DeleteOptions): Promise<void> {
    const warnings = await this.d.webhooks!.validate({
      operation: 'DELETE',
      rt: ctx.rt,
      version: ctx.version.name,
      subresource: '',
      namespace: ctx.rt.namespaced ? (ctx.namespace ?? String(obj(existing.metadata).namespace ?? '')) : '',
      name: String(obj(existing.metadata).name ?? ''),
      oldObject: existing,
      user: ctx.user ?? { username: 'system:anonymous', groups: [] },
      dryRun: ctx.dryRun,
      options: { kind: 'DeleteOptions', apiVersion: 'meta.k8s.io/v1', ...opts },
    });
    ctx.warnings.push(...warnings);
  }

  /** A write whose object changed while admission ran is computed again (kube's GuaranteedUpdate retries). */
  private async retryStale(attempts: number, write: () => Promise<Obj>): Promise<Obj> {
    for (let i = 1; ; i++) {
      try {
        return await write();
      } catch (e) {
        if (!(e instanceof StaleWrite)) throw e;
        if (i >= attempts) throw e.conflict;
      }
    }
  }

  /** Create-only resources that are never stored: access and token reviews, bindings. */
  private async virtual(req: IncomingMessage, res: ServerResponse, method: string, t: Target, q: URLSearchParams, user: UserInfo): Promise<void> {
    if (method !== 'POST' || t.name !== undefined) throw methodNotAllowed();
    if (t.rt.namespaced && t.namespace === undefined) throw pathNotFound();
    const out = chooseOutput(req.headers.accept);
    const body = decodeBody(await readBody(req), req.headers['content-type'], false);
    if (!isObj(body)) throw badRequest(`the body of the request must be a ${t.rt.kind} object`);
    const ctx = this.ctx(t, q, user);
    if (t.rt.resource === 'bindings') {
      const podRt = this.d.registry.byKey('/pods')!;
      const podCtx = { ...ctx, rt: podRt, version: podRt.versions[0]! };
      this.d.api.bind(podCtx, String(obj(body.metadata).name ?? ''), body);
      return this.write(res, 201, BINDING_CREATED, out);
    }
    const a = this.d.auth;
    const rc: ReviewContext = { user, authorizer: a.authorizer, authenticator: a.authenticator, apiAudiences: a.apiAudiences, ...(t.namespace !== undefined ? { namespace: t.namespace } : {}) };
    let result: Obj;
    switch (t.rt.resource) {
      case 'selfsubjectaccessreviews':
        result = selfSubjectAccessReview(body, rc);
        break;
      case 'subjectaccessreviews':
        result = subjectAccessReview(body, rc);
        break;
      case 'localsubjectaccessreviews':
        result = localSubjectAccessReview(body, rc);
        break;
      case 'selfsubjectrulesreviews':
        result = selfSubjectRulesReview(body, rc);
        break;
      case 'selfsubjectreviews':
        result = selfSubjectReview(body, rc);
        break;
      case 'tokenreviews':
        result = await tokenReview(body, rc);
        break;
      default:
        throw methodNotAllowed();
    }
    return this.write(res, 201, result, out, ctx.warnings);
  }

  /** Subresources served by handlers of their own: serviceaccounts/token, pods/binding, pods/log, namespaces/finalize. */
  private async subresource(req: IncomingMessage, res: ServerResponse, method: string, t: Target, q: URLSearchParams, user: UserInfo): Promise<void> {
    const out = chooseOutput(req.headers.accept);
    const ctx = this.ctx(t, q, user);
    const name = t.name!;
    const key = `${keyOf(t.rt)}/${t.subresource!}`;
    if (key === '/serviceaccounts/token') {
      if (method !== 'POST') throw methodNotAllowed();
      const body = decodeBody(await readBody(req), req.headers['content-type'], false);
      const a = this.d.auth;
      const tr = await createToken(t.namespace ?? '', name, body, {
        tokens: a.tokens,
        lookup: a.lookup,
        apiAudiences: a.apiAudiences,
        ...(a.maxTokenExpirationSeconds !== undefined ? { maxExpirationSeconds: a.maxTokenExpirationSeconds } : {}),
      });
      return this.write(res, 201, tr, out, ctx.warnings);
    }
    if (key === '/pods/binding') {
      if (method !== 'POST') throw methodNotAllowed();
      const body = decodeBody(await readBody(req), req.headers['content-type'], false);
      this.d.api.bind(ctx, name, body);
      return this.write(res, 201, BINDING_CREATED, out);
    }
    if (key === '/namespaces/finalize') {
      if (method !== 'PUT') throw methodNotAllowed();
      const body = decodeBody(await readBody(req), req.headers['content-type'], false);
      const conditional = isObj(body) && typeof obj(body.metadata).resourceVersion === 'string' && obj(body.metadata).resourceVersion !== '';
      const updated = await this.retryStale(conditional ? 1 : 5, () => this.admitted(ctx, this.d.api.prepareUpdate(ctx, name, body, 'finalize'), 'finalize', writeOptions('UpdateOptions', q), name));
      return this.sendObject(res, 200, t, updated, q, out, ctx.warnings);
    }
    if (key === '/pods/log') {
      if (method !== 'GET') throw methodNotAllowed();
      if (!this.d.podLogs) throw new ApiError(503, 'ServiceUnavailable', 'pods/log is not available on this server');
      return this.d.podLogs(req, res, ctx, name, q);
    }
    throw pathNotFound();
  }

  private async scale(req: IncomingMessage, res: ServerResponse, method: string, t: Target, q: URLSearchParams, user: UserInfo): Promise<void> {
    const out = chooseOutput(req.headers.accept);
    const ctx = this.ctx(t, q, user);
    const name = t.name!;
    switch (method) {
      case 'GET':
        return this.write(res, 200, this.d.api.getScale(ctx, name), out, ctx.warnings);
      case 'PUT': {
        const body = decodeBody(await readBody(req), req.headers['content-type'], false);
        return this.write(res, 200, this.d.api.updateScale(ctx, name, body), out, ctx.warnings);
      }
      case 'PATCH': {
        const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        const body = decodeBody(await readBody(req), ct, true);
        return this.write(res, 200, this.d.api.updateScale(ctx, name, body, PATCH_TYPES[ct]!), out, ctx.warnings);
      }
      default:
        throw methodNotAllowed();
    }
  }

  private sendObject(res: ServerResponse, code: number, t: Target, o: Obj, q: URLSearchParams, out: Output, warnings: string[] = []): void {
    if (out.kind === 'table') {
      const table = toTable(t.rt, t.version.name, [o], { resourceVersion: obj(o.metadata).resourceVersion }, q.get('includeObject') ?? 'Metadata');
      return this.write(res, code, table, out, warnings);
    }
    if (out.kind === 'partial') return this.write(res, code, { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${out.version}`, metadata: o.metadata }, out, warnings);
    this.write(res, code, o, out, warnings);
  }

  private sendList(res: ServerResponse, t: Target, all: Obj[], rv: string, q: URLSearchParams, out: Output, warnings: string[] = []): void {
    const limit = queryInt(q, 'limit') ?? 0;
    const keyOfItem = (o: Obj): [string, string] => [String(obj(o.metadata).namespace ?? ''), String(obj(o.metadata).name ?? '')];
    let start = 0;
    const cont = q.get('continue');
    if (cont) {
      // continue after the last returned (namespace, name), like etcd keys: stable while objects change
      let after: [string, string];
      try {
        const tok = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as { ns?: unknown; n?: unknown };
        if (typeof tok.ns !== 'string' || typeof tok.n !== 'string') throw new Error('bad token');
        after = [tok.ns, tok.n];
      } catch {
        throw badRequest('the provided continue parameter is invalid');
      }
      const cmp = (a: [string, string], b: [string, string]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
      start = all.findIndex((o) => cmp(keyOfItem(o), after) > 0);
      if (start < 0) start = all.length;
    }
    let items = all.slice(start);
    const listMeta: Obj = { resourceVersion: rv };
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      items = items.slice(0, limit);
      const [ns, n] = keyOfItem(items[items.length - 1]!);
      listMeta.continue = Buffer.from(JSON.stringify({ ns, n, rv }), 'utf8').toString('base64url');
      listMeta.remainingItemCount = all.length - start - limit;
    }
    if (out.kind === 'table') return this.write(res, 200, toTable(t.rt, t.version.name, items, listMeta, q.get('includeObject') ?? 'Metadata'), out, warnings);
    if (out.kind === 'partial')
      return this.write(res, 200, { kind: 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${out.version}`, metadata: listMeta, items: items.map((o) => ({ kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${out.version}`, metadata: o.metadata })) }, out, warnings);
    this.write(res, 200, { kind: t.rt.listKind, apiVersion: apiVersionOf(t.rt.group, t.version.name), metadata: listMeta, items }, out, warnings);
  }

  // ---------- watch ----------

  private watch(req: IncomingMessage, res: ServerResponse, ctx: ReqCtx, q: URLSearchParams, out: Output): void {
    const { rt, version } = ctx;
    const key = keyOf(rt);
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = this.fieldSelector(rt, q);
    const rvParam = q.get('resourceVersion') ?? '';
    if (rvParam !== '' && !/^\d+$/.test(rvParam)) throw badRequest(`resourceVersion: Invalid value: "${rvParam}": must be a non-negative integer`);
    const sendInitialOpt = queryOptBool(q, 'sendInitialEvents');
    const sendInitial = sendInitialOpt === undefined ? null : String(sendInitialOpt);
    const bookmarks = queryBool(q, 'allowWatchBookmarks');
    const timeoutSeconds = queryInt(q, 'timeoutSeconds') ?? 0;
    const includeObject = q.get('includeObject') ?? 'Metadata';
    const ns = rt.namespaced ? ctx.namespace : undefined;
    const matches = (o: Obj): boolean =>
      (labels.length === 0 || matchLabels(labels, obj(obj(o.metadata).labels) as Record<string, unknown>)) && (fields.length === 0 || matchFields(fields, o));
    const store = this.d.store;
    const api = this.d.api;

    const encode = (type: string, o: Obj, ev?: StoreEvent): string => {
      if (out.kind === 'table') {
        const v = api.view(rt, version.name, o);
        return `${JSON.stringify({ type, object: toTable(rt, version.name, [v], { resourceVersion: obj(o.metadata).resourceVersion }, includeObject) })}\n`;
      }
      if (out.kind === 'partial') return `${JSON.stringify({ type, object: { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${out.version}`, metadata: o.metadata } })}\n`;
      if (ev) {
        const ck = `${type}|${rt.group}|${version.name}`;
        let line = ev.lines?.get(ck);
        if (line === undefined) {
          line = `${JSON.stringify({ type, object: api.view(rt, version.name, o) })}\n`;
          (ev.lines ??= new Map()).set(ck, line);
        }
        return line;
      }
      return `${JSON.stringify({ type, object: api.view(rt, version.name, o) })}\n`;
    };
    const eventLine = (ev: StoreEvent): string | undefined => {
      if (ns !== undefined && ev.namespace !== ns) return undefined;
      if (labels.length === 0 && fields.length === 0) return encode(ev.type, ev.object, ev);
      const now = matches(ev.object);
      if (ev.type === 'MODIFIED') {
        const before = ev.prev ? matches(ev.prev) : now;
        if (now && before) return encode('MODIFIED', ev.object, ev);
        if (now) return encode('ADDED', ev.object, ev);
        if (before) return encode('DELETED', ev.object, ev);
        return undefined;
      }
      return now ? encode(ev.type, ev.object, ev) : undefined;
    };
    const bookmarkLine = (extra?: Obj): string => {
      const m: Obj = { resourceVersion: String(store.currentRV()), ...(extra ? { annotations: extra } : {}) };
      const object = out.kind === 'partial' || out.kind === 'table' ? { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: m } : { kind: rt.kind, apiVersion: apiVersionOf(rt.group, version.name), metadata: m };
      return `${JSON.stringify({ type: 'BOOKMARK', object })}\n`;
    };

    // Resolve what to replay before writing headers, so that a bad request still gets a plain error.
    let replay: string[] = [];
    let expired: ApiError | undefined;
    const initial = sendInitial === 'true' || (sendInitial !== 'false' && (rvParam === '' || rvParam === '0'));
    if (initial) {
      for (const o of store.list(key, ns)) if (matches(o)) replay.push(encode('ADDED', o));
      if (sendInitial === 'true' && bookmarks) replay.push(bookmarkLine({ 'k8s.io/initial-events-end': 'true' }));
    } else if (rvParam === '' || rvParam === '0') {
      // sendInitialEvents=false without a resourceVersion: changes from now on
    } else {
      const since = Number(rvParam);
      const evs = store.eventsSince(since, key);
      if (evs === 'gone') expired = gone(since, store.oldestResumableRV() + 1);
      else if (since > store.currentRV())
        // A resourceVersion from the future (e.g. a client of a restarted server without --data-file): the real
        // server answers "Too large resource version"; a 410 makes every client relist instead of waiting.
        expired = new ApiError(410, 'Expired', `too large resource version: ${since}, current: ${store.currentRV()}`);
      else replay = evs.map(eventLine).filter((l): l is string => l !== undefined);
    }
    const headers: Record<string, string | string[]> = { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' };
    if (ctx.warnings.length) headers.Warning = ctx.warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    res.writeHead(200, headers);
    res.flushHeaders();
    if (expired) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: expired.toStatus() })}\n`);
      return;
    }
    this.watches.add(res);
    let buf = replay.join('');
    if (buf) res.write(buf);
    buf = '';
    let flushScheduled = false;
    // batch the events of one tick into one write
    const send = (line: string): void => {
      buf += line;
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(() => {
          flushScheduled = false;
          if (buf && !res.writableEnded) res.write(buf);
          buf = '';
        });
      }
    };
    const unwatch = store.watch({
      key,
      ...(ns !== undefined ? { namespace: ns } : {}),
      onEvent: (ev) => {
        const line = eventLine(ev);
        if (line !== undefined) send(line);
      },
      onClose: () => setImmediate(() => finish()),
    });
    const timers: NodeJS.Timeout[] = [];
    if (bookmarks) timers.push(setInterval(() => send(bookmarkLine()), this.bookmarkMs));
    // (beyond a timer's range, ~24.8 days, setTimeout would fire at once: no timeout then)
    if (Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 && timeoutSeconds * 1000 <= MAX_TIMER_MS) timers.push(setTimeout(() => finish(), timeoutSeconds * 1000));
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      unwatch();
      for (const t of timers) clearTimeout(t);
      this.watches.delete(res);
      if (!res.writableEnded) {
        if (buf) res.write(buf);
        res.end();
      }
    };
    // (IncomingMessage 'close' fires once the request is read; the response's fires on disconnect)
    res.on('close', finish);
  }
}
