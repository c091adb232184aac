// The API semantics on top of the store: create / get / list / update / patch / delete with kube-apiserver's
// rules (metadata, optimistic concurrency, status subresource, finalizers, namespaces, Services, CRDs).
// No HTTP in here: requests come in as plain values, errors go out as ApiError.
import { randomBytes } from 'node:crypto';
import { alreadyExists, ApiError, badRequest, conflict, fieldErrorString, forbidden, invalid, notFound, unsupportedMediaType, type FieldError } from './errors.js';
import { builtinFieldProblems } from './builtin-fields.js';
import { crdStatus, defaultCRD, resourceTypeOf, validateCRD } from './crd.js';
import { builtinListStrategy, jsonPatch, mergePatch, noListStrategy, PatchError, strategicMerge } from './patch.js';
import { recordApply } from './ssa.js';
import { apiVersionOf, keyOf, resourceKey, type Registry, type ResourceType, type VersionInfo } from './registry.js';
import { applyDefaults, prune, validateSchema } from './schema.js';
import { formatLabelSelector, matchFields, matchLabels, type FieldSelector, type LabelSelector } from './selectors.js';
import { prepareService, releaseService, reserveService, validateServiceStatus, type AllocTx, type ServiceAllocators } from './service.js';
import type { Store } from './store.js';
import { clone, getPath, isObj, jsonEqual, nowRFC3339, obj, randomUID, str, type Obj } from './util.js';
import { evalJsonPath } from './table.js';
import { namePolicy, validateMeta, validateName } from './validation.js';
import { decideDelete, shouldDeleteDuringUpdate } from './deletion.js';
import { keepSpecFinalizers, NAMESPACE_FINALIZER, namespaceReleased, specFinalizers, validateSpecFinalizers, withoutNamespaceFinalizer } from './namespaces.js';
import { applyBuiltinDefaults } from './defaults.js';
import { validateBuiltinObject } from './validation-workloads.js';
import { statusUpdate } from './status-strategy.js';
import { admitPodServiceAccount } from './admission/service-account.js';
import type { UserInfo } from './auth/user.js';
import type { ServiceAccountTokens } from './auth/sa-tokens.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface ReqCtx {
  rt: ResourceType;
  version: VersionInfo;
  /** Namespace from the URL (namespaced requests). */
  namespace?: string;
  dryRun: boolean;
  fieldValidation: FieldValidation;
  /** Warnings to return in `Warning` headers. */
  warnings: string[];
  /** The (authenticated, possibly impersonated) user making the request. */
  user?: UserInfo;
}

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

/** A write computed and validated but not yet stored (admission runs in between). */
export interface PendingWrite {
  operation: 'CREATE' | 'UPDATE';
  name: string;
  /** the object as it will be stored (in the request's version) */
  object: Obj;
  oldObject?: Obj;
  /** store it; throws StaleWrite when the object changed since it was prepared */
  commit(): Obj;
  /** give back what was held (service IPs, node ports) */
  abort(): void;
  /** the same write prepared again from another input (what a mutating webhook made of `object`) */
  redo(input: Obj): PendingWrite;
}

/** The stored object changed between prepare and commit: a patch or unconditional update may be computed again. */
export class StaleWrite extends Error {
  constructor(readonly conflict: ApiError) {
    super(conflict.message);
  }
}

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: string;
  gracePeriodSeconds?: number;
  orphanDependents?: boolean;
  dryRun?: string[];
}

const CRD_KEY = resourceKey('apiextensions.k8s.io', 'customresourcedefinitions');
const NS_KEY = resourceKey('', 'namespaces');
const SVC_KEY = resourceKey('', 'services');
const SECRET_KEY = resourceKey('', 'secrets');
const SA_TOKEN_SECRET = 'kubernetes.io/service-account-token';
const GENERATION_KEYS = new Set(['apps/deployments', 'apps/daemonsets', 'apps/replicasets', 'apps/statefulsets', 'policy/poddisruptionbudgets', CRD_KEY, 'networking.k8s.io/networkpolicies', 'admissionregistration.k8s.io/validatingwebhookconfigurations', 'admissionregistration.k8s.io/mutatingwebhookconfigurations']);
const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
const IMMORTAL_NAMESPACES = new Set(['default', 'kube-system', 'kube-public']);

const metaOf = (o: Obj): Obj => obj(o.metadata);
const nameNs = (o: Obj): string => str(metaOf(o).namespace) ?? '';
const nameOf = (o: Obj): string => str(metaOf(o).name) ?? '';

function randomSuffix(): string {
  const b = randomBytes(5);
  let s = '';
  for (const x of b) s += NAME_CHARS[x % NAME_CHARS.length];
  return s;
}

/** A pod's QoS class from its containers' requests and limits (kube's qos.GetPodQOS, simplified to cpu/memory). */
function qosClass(spec: Obj): string {
  const containers = [...(Array.isArray(spec.initContainers) ? spec.initContainers : []), ...(Array.isArray(spec.containers) ? spec.containers : [])].map(obj);
  let any = false;
  let guaranteed = containers.length > 0;
  for (const c of containers) {
    const r = obj(c.resources);
    const req = obj(r.requests);
    const lim = obj(r.limits);
    if (Object.keys(req).length || Object.keys(lim).length) any = true;
    for (const res of ['cpu', 'memory']) {
      if (lim[res] === undefined) guaranteed = false;
      else if (req[res] !== undefined && String(req[res]) !== String(lim[res])) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** The parts of an object that drive `metadata.generation` (everything but metadata and, if separate, status). */
function specPart(o: Obj, statusSeparate: boolean): Obj {
  const { metadata: _m, status: _s, ...rest } = o;
  return statusSeparate ? rest : { ...rest, status: o.status };
}

export class Api {
  /** Signs the tokens of legacy service-account token Secrets (set by the server). */
  serviceAccountTokens?: ServiceAccountTokens;
  /** The cluster CA, put into those Secrets as `ca.crt`. */
  caCert?: string;

  constructor(
    readonly store: Store,
    readonly registry: Registry,
    readonly alloc: ServiceAllocators,
  ) {}

  // ---------- helpers ----------

  /** The stored object as seen through `version` (custom resources: apiVersion rewritten). */
  view(rt: ResourceType, version: string, o: Obj): Obj {
    if (rt.storage) return rt.storage.fromStorage(o);
    const convert = version === rt.storageVersion ? undefined : rt.versions.find((v) => v.name === version)?.convert;
    if (convert) return convert.fromStorage(o);
    if (rt.crd && version !== rt.storageVersion) return { ...o, apiVersion: apiVersionOf(rt.group, version) };
    return o;
  }

  /** kube-apiserver names the kind with its group (`Deployment.apps "x" is invalid`), core types without. */
  private invalidFor(rt: ResourceType, name: string): (errs: FieldError[]) => ApiError {
    return (errs) => invalid(rt.group, rt.kind, name, errs);
  }

  private ns(ctx: ReqCtx): string {
    return ctx.rt.namespaced ? (ctx.namespace ?? '') : '';
  }

  private mustGet(ctx: ReqCtx, name: string): Obj {
    const o = this.store.get(keyOf(ctx.rt), this.ns(ctx), name);
    if (!o) throw notFound(ctx.rt.group, ctx.rt.resource, name);
    return o;
  }

  /** Check apiVersion/kind of a request body against the endpoint. */
  private checkTypeMeta(ctx: ReqCtx, body: Obj): void {
    const want = apiVersionOf(ctx.rt.group, ctx.version.name);
    if (body.apiVersion !== undefined && body.apiVersion !== want) {
      // the core group also accepts objects of another version of the same group (e.g. kubectl sending v1)
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${want})`);
    }
    if (body.kind !== undefined && body.kind !== ctx.rt.kind && body.kind !== 'DeleteOptions')
      throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${ctx.rt.kind})`);
  }

  /** Namespace must exist and not be terminating for a create. */
  private checkNamespaceForCreate(ctx: ReqCtx, name: string): void {
    if (!ctx.rt.namespaced) return;
    const nsName = this.ns(ctx);
    const ns = this.store.get(NS_KEY, '', nsName);
    if (!ns) throw notFound('', 'namespaces', nsName);
    if (metaOf(ns).deletionTimestamp)
      throw forbidden(ctx.rt.group, ctx.rt.resource, name, `unable to create new content in namespace ${nsName} because it is being terminated`);
  }

  /** Custom resources: prune, default and validate against the version's schema. */
  private applySchema(ctx: ReqCtx, o: Obj): void {
    const schema = ctx.version.schema;
    if (!ctx.rt.crd) {
      // built-in types: unknown fields are dropped (as decoding does), reported per fieldValidation; a list or
      // object given as something else cannot be decoded at all
      const found = builtinFieldProblems(ctx.rt.storage ? '' : ctx.rt.group, ctx.rt.kind, o, true, ctx.rt.storageVersion);
      if (found.wrongType.length)
        throw badRequest(`${ctx.rt.kind} in version "${ctx.version.name}" cannot be handled as a ${ctx.rt.kind}: ${found.wrongType.join(', ')}`);
      this.reportUnknown(ctx, found.unknown);
      return;
    }
    if (!schema) return;
    const unknown: string[] = [];
    prune(o, schema, '', true, unknown);
    this.reportUnknown(ctx, unknown);
    applyDefaults(o, schema);
    const errs = validateSchema(o, schema, '');
    if (errs.length) throw this.invalidFor(ctx.rt, nameOf(o))(errs);
  }

  private reportUnknown(ctx: ReqCtx, unknown: string[]): void {
    if (unknown.length) {
      if (ctx.fieldValidation === 'Strict') {
        const msgs = unknown.map((u) => `unknown field "${u}"`);
        throw badRequest(`${ctx.rt.kind} in version "${ctx.version.name}" cannot be handled as a ${ctx.rt.kind}: strict decoding error: ${msgs.join(', ')}`);
      }
      if (ctx.fieldValidation === 'Warn') for (const u of unknown) ctx.warnings.push(`unknown field "${u}"`);
    }
  }

  private validateCommon(ctx: ReqCtx, o: Obj): void {
    const m = metaOf(o);
    const errs: FieldError[] = [...validateName(nameOf(o), ctx.rt.crd ? 'subdomain' : namePolicy(keyOf(ctx.rt))), ...validateMeta(m)];
    if (errs.length) throw this.invalidFor(ctx.rt, nameOf(o))(errs);
  }

  /** Type-specific preparation on create and update. Returns an allocation transaction for Services. */
  private prepare(ctx: ReqCtx, o: Obj, old: Obj | undefined): AllocTx | undefined {
    const key = keyOf(ctx.rt);
    if (ctx.rt.builtin && !ctx.rt.storage) {
      applyBuiltinDefaults(key, o);
      let errs = validateBuiltinObject(key, o, old);
      if (errs.length && old) {
        // what an object stored before these checks already had does not block its updates
        const before = new Set(validateBuiltinObject(key, old, undefined).map(fieldErrorString));
        errs = errs.filter((e) => !before.has(fieldErrorString(e)));
      }
      if (errs.length) throw this.invalidFor(ctx.rt, nameOf(o))(errs);
    }
    this.applyStrategy(ctx, o, old, false);
    if (key === SVC_KEY) return prepareService(o, old, this.alloc, this.invalidFor(ctx.rt, nameOf(o)));
    if (key === NS_KEY) {
      const m = metaOf(o);
      m.labels = { ...obj(m.labels), 'kubernetes.io/metadata.name': nameOf(o) };
      if (!old) {
        // namespaceStrategy.PrepareForCreate: the namespace controller's finalizer is always there at first
        const errs = validateSpecFinalizers(o);
        if (errs.length) throw this.invalidFor(ctx.rt, nameOf(o))(errs);
        const finalizers = specFinalizers(o);
        o.spec = { ...obj(o.spec), finalizers: finalizers.includes(NAMESPACE_FINALIZER) ? finalizers : [...finalizers, NAMESPACE_FINALIZER] };
        o.status = { phase: 'Active' };
      }
    } else if (key === SECRET_KEY) {
      if (isObj(o.stringData)) {
        const data = { ...obj(o.data) };
        for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
        o.data = data;
        delete o.stringData;
      }
      if (o.type === undefined) o.type = 'Opaque';
      if (old && o.type !== old.type) throw this.invalidFor(ctx.rt, nameOf(o))([{ type: 'Invalid', field: 'type', value: o.type, detail: 'field is immutable' }]);
      if (!old && o.type === SA_TOKEN_SECRET) this.fillServiceAccountTokenSecret(ctx, o);
    } else if ((key === 'rbac.authorization.k8s.io/rolebindings' || key === 'rbac.authorization.k8s.io/clusterrolebindings') && old && !jsonEqual(o.roleRef, old.roleRef)) {
      throw this.invalidFor(ctx.rt, nameOf(o))([{ type: 'Invalid', field: 'roleRef', value: o.roleRef, detail: 'cannot change roleRef' }]);
    } else if (key === CRD_KEY) {
      defaultCRD(o);
      const errs = validateCRD(o);
      if (old) {
        const os = obj(old.spec);
        const ns = obj(o.spec);
        if (ns.scope !== os.scope) errs.push({ type: 'Invalid', field: 'spec.scope', value: ns.scope, detail: 'field is immutable' });
        if (ns.group !== os.group) errs.push({ type: 'Invalid', field: 'spec.group', value: ns.group, detail: 'field is immutable' });
      }
      if (!errs.length) {
        // a CRD cannot take over a built-in resource
        const served = this.registry.byKey(resourceKey(String(obj(o.spec).group), String(obj(obj(o.spec).names).plural)));
        if (served && !served.crd)
          errs.push({ type: 'Invalid', field: 'spec.names.plural', value: obj(obj(o.spec).names).plural, detail: `${String(obj(obj(o.spec).names).plural)}.${String(obj(o.spec).group)} is a built-in resource of this server` });
      }
      if (errs.length) throw this.invalidFor(ctx.rt, nameOf(o))(errs);
      o.status = crdStatus(o, old ? obj(old.status) : undefined);
    } else if (key === '/pods' && !old) {
      admitPodServiceAccount(o, this.ns(ctx), (ns, name) => this.store.get(resourceKey('', 'serviceaccounts'), ns, name));
      const st = obj(o.status);
      if (!st.phase) st.phase = 'Pending';
      st.qosClass ??= qosClass(obj(o.spec));
      o.status = st;
    }
    return undefined;
  }

  /**
   * What the legacy token controller does to a `kubernetes.io/service-account-token` Secret naming an existing
   * ServiceAccount: the SA's uid annotation, a token that never expires, the CA and the namespace.
   */
  private fillServiceAccountTokenSecret(ctx: ReqCtx, o: Obj): void {
    const m = metaOf(o);
    const ann = obj(m.annotations);
    const saName = str(ann['kubernetes.io/service-account.name']);
    if (!saName) throw this.invalidFor(ctx.rt, nameOf(o))([{ type: 'Required', field: 'metadata.annotations[kubernetes.io/service-account.name]', detail: '' }]);
    const ns = this.ns(ctx);
    const sa = this.store.get(resourceKey('', 'serviceaccounts'), ns, saName);
    if (!sa || !this.serviceAccountTokens) return;
    const uid = String(metaOf(sa).uid ?? '');
    m.annotations = { ...ann, 'kubernetes.io/service-account.uid': uid };
    const data = { ...obj(o.data) };
    if (!data.token) data.token = Buffer.from(this.serviceAccountTokens.issueLegacy(ns, nameOf(o), { name: saName, uid }), 'utf8').toString('base64');
    if (this.caCert && !data['ca.crt']) data['ca.crt'] = Buffer.from(this.caCert, 'utf8').toString('base64');
    if (!data.namespace) data.namespace = Buffer.from(ns, 'utf8').toString('base64');
    o.data = data;
  }

  // ---------- reads ----------

  get(ctx: ReqCtx, name: string): Obj {
    return this.view(ctx.rt, ctx.version.name, this.mustGet(ctx, name));
  }

  list(ctx: ReqCtx, labelSel: LabelSelector, fieldSel: FieldSelector): { items: Obj[]; resourceVersion: string } {
    const all = this.store.list(keyOf(ctx.rt), ctx.rt.namespaced ? ctx.namespace : undefined);
    const items: Obj[] = [];
    for (const o of all) {
      if (labelSel.length && !matchLabels(labelSel, obj(metaOf(o).labels) as Record<string, unknown>)) continue;
      if (fieldSel.length && !matchFields(fieldSel, o)) continue;
      items.push(this.view(ctx.rt, ctx.version.name, o));
    }
    return { items, resourceVersion: String(this.store.currentRV()) };
  }

  // ---------- create ----------

  create(ctx: ReqCtx, body: unknown, managedFields?: unknown[]): Obj {
    return this.prepareCreate(ctx, body, managedFields).commit();
  }

  /**
   * A create up to the store write: the object is complete and validated, allocations are held. Admission (webhooks)
   * sees `object` and then commits or aborts; commit refuses if the name was taken meanwhile.
   */
  prepareCreate(ctx: ReqCtx, body: unknown, managedFields?: unknown[]): PendingWrite {
    if (!isObj(body)) throw badRequest('the body of the request must be a JSON or YAML object');
    this.checkTypeMeta(ctx, body);
    const o = this.toStorage(ctx, clone(body));
    o.apiVersion = this.storedApiVersion(ctx.rt);
    o.kind = ctx.rt.kind;
    const m = obj(o.metadata);
    o.metadata = m;
    if (ctx.rt.namespaced) {
      if (m.namespace !== undefined && m.namespace !== '' && m.namespace !== ctx.namespace)
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      m.namespace = ctx.namespace;
    } else delete m.namespace;
    if ((m.name === undefined || m.name === '') && typeof m.generateName === 'string' && m.generateName !== '') {
      m.name = `${m.generateName}${randomSuffix()}`;
    }
    if (typeof m.name !== 'string' || m.name === '')
      throw this.invalidFor(ctx.rt, '')([{ type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' }]);
    const name = m.name;
    m.uid = randomUID();
    m.creationTimestamp = nowRFC3339();
    delete m.resourceVersion;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if (managedFields) m.managedFields = managedFields;
    else delete m.managedFields;
    delete m.selfLink;
    if (ctx.rt.crd || GENERATION_KEYS.has(keyOf(ctx.rt))) m.generation = 1;
    else delete m.generation;
    // like kube-apiserver: status is not taken from a create, except for Nodes ("allow all fields on create")
    if (ctx.version.statusSubresource && keyOf(ctx.rt) !== CRD_KEY && keyOf(ctx.rt) !== '/nodes') delete o.status;
    this.validateCommon(ctx, o);
    this.checkNamespaceForCreate(ctx, name);
    if (this.store.get(keyOf(ctx.rt), this.ns(ctx), name)) throw alreadyExists(ctx.rt.group, ctx.rt.resource, name);
    this.applySchema(ctx, o);
    const tx = this.prepare(ctx, o, undefined);
    const key = keyOf(ctx.rt);
    let done = false;
    return {
      operation: 'CREATE',
      name,
      object: this.view(ctx.rt, ctx.version.name, o),
      commit: (): Obj => {
        if (done) throw new Error('write already committed or aborted');
        done = true;
        if (ctx.dryRun) {
          tx?.rollback();
          m.resourceVersion = String(this.store.currentRV());
          return this.view(ctx.rt, ctx.version.name, o);
        }
        if (this.store.get(key, this.ns(ctx), name)) {
          tx?.rollback();
          throw alreadyExists(ctx.rt.group, ctx.rt.resource, name);
        }
        tx?.commit();
        this.store.put(key, o, 'ADDED');
        if (key === CRD_KEY) this.registry.add(resourceTypeOf(o));
        if (key === NS_KEY) this.ensureDefaultServiceAccount(name);
        return this.view(ctx.rt, ctx.version.name, o);
      },
      abort: (): void => {
        if (done) return;
        done = true;
        tx?.rollback();
      },
      redo: (input: Obj): PendingWrite => this.prepareCreate(ctx, input, managedFields),
    };
  }

  /** The service-account controller's work: every namespace has a `default` ServiceAccount. */
  private ensureDefaultServiceAccount(ns: string): void {
    const key = resourceKey('', 'serviceaccounts');
    if (this.store.get(key, ns, 'default')) return;
    this.store.put(key, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns, uid: randomUID(), creationTimestamp: nowRFC3339() } }, 'ADDED');
  }

  // ---------- update ----------

  /** PUT of the main resource or of `/status`. */
  update(ctx: ReqCtx, name: string, body: unknown, subresource?: string): Obj {
    return this.prepareUpdate(ctx, name, body, subresource).commit();
  }

  prepareUpdate(ctx: ReqCtx, name: string, body: unknown, subresource?: string): PendingWrite {
    if (!isObj(body)) throw badRequest('the body of the request must be a JSON or YAML object');
    this.checkTypeMeta(ctx, body);
    const bodyName = metaOf(body).name;
    if (bodyName !== undefined && bodyName !== name)
      throw badRequest(`the name of the object (${String(bodyName)}) does not match the name on the URL (${name})`);
    const bodyNs = metaOf(body).namespace;
    if (ctx.rt.namespaced && bodyNs !== undefined && bodyNs !== '' && bodyNs !== ctx.namespace)
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    const existing = this.mustGet(ctx, name);
    return this.prepareApplyUpdate(ctx, existing, clone(body), subresource);
  }

  /** A request body in the stored form (another resource's events, another version's HPAs). */
  private toStorage(ctx: ReqCtx, o: Obj): Obj {
    if (ctx.rt.storage) return ctx.rt.storage.toStorage(o);
    return ctx.version.convert ? ctx.version.convert.toStorage(o) : o;
  }

  /** The type's own defaults and validation (its registry strategy); a 422 naming the group-qualified kind. */
  private applyStrategy(ctx: ReqCtx, o: Obj, old: Obj | undefined, status: boolean): void {
    const st = ctx.rt.strategy;
    const errs = status ? (old ? st?.prepareStatus?.(o, old) : undefined) : st?.prepare?.(o, old);
    if (errs?.length) throw invalid(ctx.rt.group, ctx.rt.kind, nameOf(o), errs);
  }

  private storedApiVersion(rt: ResourceType): string {
    return rt.storage?.apiVersion ?? apiVersionOf(rt.group, rt.storageVersion);
  }

  private applyUpdate(ctx: ReqCtx, existing: Obj, input: Obj, subresource?: string, managedFields?: unknown[]): Obj {
    return this.prepareApplyUpdate(ctx, existing, input, subresource, managedFields).commit();
  }

  /** An update up to the store write (see prepareCreate); commit refuses if the object changed meanwhile. */
  private prepareApplyUpdate(ctx: ReqCtx, existing: Obj, input: Obj, subresource?: string, managedFields?: unknown[]): PendingWrite {
    const rt = ctx.rt;
    const o = this.toStorage(ctx, input);
    const key = keyOf(rt);
    const name = nameOf(existing);
    const em = metaOf(existing);
    const m = obj(o.metadata);
    o.metadata = m;
    if (m.resourceVersion !== undefined && m.resourceVersion !== '' && m.resourceVersion !== em.resourceVersion)
      throw conflict(rt.group, rt.resource, name);
    if (m.uid !== undefined && m.uid !== '' && m.uid !== em.uid)
      throw conflict(rt.group, rt.resource, name, `Precondition failed: UID in precondition: ${String(m.uid)}, UID in object meta: ${String(em.uid)}`);
    o.apiVersion = this.storedApiVersion(rt);
    o.kind = rt.kind;
    let next: Obj;
    if (subresource === 'status') {
      next = statusUpdate(key, rt.crd !== undefined, existing, o);
      if (rt.crd === undefined) this.validateCommon(ctx, next);
    } else {
      next = o;
      m.name = name;
      if (rt.namespaced) m.namespace = em.namespace;
      else delete m.namespace;
      m.uid = em.uid;
      m.creationTimestamp = em.creationTimestamp;
      if (em.deletionTimestamp !== undefined) {
        m.deletionTimestamp = em.deletionTimestamp;
        if (em.deletionGracePeriodSeconds !== undefined) m.deletionGracePeriodSeconds = em.deletionGracePeriodSeconds;
      } else {
        delete m.deletionTimestamp;
        delete m.deletionGracePeriodSeconds;
      }
      // managedFields belong to the server (only server-side apply changes them)
      if (managedFields) m.managedFields = managedFields;
      else if (em.managedFields !== undefined) m.managedFields = em.managedFields;
      else delete m.managedFields;
      delete m.selfLink;
      if (em.generation !== undefined) m.generation = em.generation;
      else delete m.generation;
      if (ctx.version.statusSubresource && key !== CRD_KEY) {
        if (existing.status !== undefined) next.status = existing.status;
        else delete next.status;
      }
      if (key === NS_KEY) {
        if (subresource === 'finalize') {
          const errs = validateSpecFinalizers(next);
          if (errs.length) throw this.invalidFor(rt, name)(errs);
        } else keepSpecFinalizers(next, existing);
      }
      this.validateCommon(ctx, next);
    }
    (next.metadata as Obj).resourceVersion = em.resourceVersion;
    this.applySchema(ctx, next);
    let tx: AllocTx | undefined;
    if (subresource === 'status') {
      if (key === SVC_KEY) {
        const errs = validateServiceStatus(next);
        if (errs.length) throw this.invalidFor(rt, name)(errs);
      }
      if (key === CRD_KEY) next.status = crdStatus(next, obj(next.status));
      this.applyStrategy(ctx, next, existing, true);
    } else {
      tx = this.prepare(ctx, next, existing);
    }
    const nm = next.metadata as Obj;
    if (nm.generation !== undefined && !jsonEqual(specPart(next, ctx.version.statusSubresource), specPart(existing, ctx.version.statusSubresource)))
      nm.generation = Number(em.generation ?? 0) + 1;
    if (em.deletionTimestamp !== undefined && Array.isArray(nm.finalizers) && Array.isArray(em.finalizers)) {
      // once deleting, finalizers can only be removed
      const added = nm.finalizers.filter((f) => !(em.finalizers as unknown[]).includes(f));
      if (added.length) {
        tx?.rollback();
        throw this.invalidFor(rt, name)([{ type: 'Forbidden', field: 'metadata.finalizers', detail: `no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` }]);
      }
    }
    const unchanged = jsonEqual(next, existing);
    let done = false;
    return {
      operation: 'UPDATE',
      name,
      object: this.view(rt, ctx.version.name, unchanged ? existing : next),
      oldObject: this.view(rt, ctx.version.name, existing),
      commit: (): Obj => {
        if (done) throw new Error('write already committed or aborted');
        done = true;
        if (this.store.get(key, nameNs(existing), name) !== existing) {
          // written by someone else while admission ran: the caller may start over
          tx?.rollback();
          throw new StaleWrite(conflict(rt.group, rt.resource, name));
        }
        if (unchanged) {
          tx?.rollback();
          return this.view(rt, ctx.version.name, existing);
        }
        if (ctx.dryRun) {
          tx?.rollback();
          return this.view(rt, ctx.version.name, next);
        }
        tx?.commit();
        if (key === NS_KEY ? namespaceReleased(next) : shouldDeleteDuringUpdate(next, existing)) {
          this.finalRemove(rt, next);
          return this.view(rt, ctx.version.name, next);
        }
        this.store.put(key, next, 'MODIFIED');
        if (key === CRD_KEY) {
          const before = resourceTypeOf(existing);
          const after = resourceTypeOf(next);
          if (before.resource !== after.resource) this.registry.remove(before.group, before.resource);
          this.registry.add(after);
        }
        return this.view(rt, ctx.version.name, next);
      },
      abort: (): void => {
        if (done) return;
        done = true;
        tx?.rollback();
      },
      redo: (again: Obj): PendingWrite => this.prepareApplyUpdate(ctx, existing, clone(again), subresource, managedFields),
    };
  }

  // ---------- patch ----------

  patch(ctx: ReqCtx, name: string, type: PatchType, patchBody: unknown, subresource?: string, force = false, fieldManager = ''): Obj {
    return this.preparePatch(ctx, name, type, patchBody, subresource, force, fieldManager).commit();
  }

  preparePatch(ctx: ReqCtx, name: string, type: PatchType, patchBody: unknown, subresource?: string, force = false, fieldManager = ''): PendingWrite {
    void force;
    const listFn = ctx.rt.builtin ? builtinListStrategy : noListStrategy;
    const reqApiVersion = apiVersionOf(ctx.rt.group, ctx.version.name);
    const existing = this.store.get(keyOf(ctx.rt), this.ns(ctx), name);
    if (!existing) {
      if (type === 'apply' && subresource === undefined) {
        if (!isObj(patchBody)) throw badRequest('the body of the request must be an object');
        const body = clone(patchBody);
        const bm = obj(body.metadata);
        if (bm.name !== undefined && bm.name !== name) throw badRequest(`the name of the object (${String(bm.name)}) does not match the name on the URL (${name})`);
        bm.name = name;
        body.metadata = bm;
        const rec: Obj = { metadata: {} };
        recordApply(rec, undefined, fieldManager, reqApiVersion, patchBody, listFn);
        return this.prepareCreate(ctx, body, (rec.metadata as Obj).managedFields as unknown[]);
      }
      throw notFound(ctx.rt.group, ctx.rt.resource, name);
    }
    const current = this.view(ctx.rt, ctx.version.name, existing);
    let patched: unknown;
    try {
      switch (type) {
        case 'merge':
          if (!isObj(patchBody)) throw new PatchError('merge patch must be a JSON object', 400);
          patched = mergePatch(current, patchBody);
          break;
        case 'json':
          patched = jsonPatch(current, patchBody);
          break;
        case 'strategic':
          if (!ctx.rt.builtin)
            throw unsupportedMediaType('application/strategic-merge-patch+json', ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml']);
          if (!isObj(patchBody)) throw new PatchError('strategic merge patch must be a JSON object', 400);
          patched = strategicMerge(current, patchBody);
          break;
        case 'apply': {
          if (!isObj(patchBody)) throw new PatchError('apply patch must be an object', 400);
          const pm = obj(patchBody.metadata);
          if (pm.name !== undefined && pm.name !== name) throw badRequest(`the name of the object (${String(pm.name)}) does not match the name on the URL (${name})`);
          // A merge with the built-in list semantics: fields the applier owns are set; others are kept.
          patched = strategicMerge(current, patchBody, [], listFn);
          if (isObj(patched) && subresource === undefined) recordApply(patched, current, fieldManager, reqApiVersion, patchBody, listFn);
          break;
        }
      }
    } catch (e) {
      if (e instanceof PatchError) {
        if (e.code === 400) throw badRequest(e.message);
        throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${e.message}`, {});
      }
      throw e;
    }
    if (!isObj(patched)) throw badRequest('the patched object is not a JSON object');
    const pm = obj(patched.metadata);
    if (pm.name !== undefined && pm.name !== name) throw badRequest(`the name of the object (${String(pm.name)}) does not match the name on the URL (${name})`);
    // the resourceVersion precondition only applies when the patch sets one
    if (type === 'apply' && subresource === undefined) delete pm.resourceVersion;
    const managed = type === 'apply' && subresource === undefined && Array.isArray(pm.managedFields) ? (pm.managedFields as unknown[]) : undefined;
    return this.prepareApplyUpdate(ctx, existing, patched, subresource, managed);
  }

  // ---------- pods/binding (what the scheduler posts) ----------

  /** Binds a pending pod to a node: sets spec.nodeName and the PodScheduled condition, as kube-apiserver's assignPod. */
  bind(ctx: ReqCtx, name: string, body: unknown): void {
    if (!isObj(body)) throw badRequest('the body of the request must be a Binding object');
    const bm = metaOf(body);
    if (bm.name !== undefined && bm.name !== '' && bm.name !== name) throw badRequest(`the name of the object (${String(bm.name)}) does not match the name on the URL (${name})`);
    const target = obj(body.target);
    const node = str(target.name);
    if (!node) throw invalid('', 'Binding', name, [{ type: 'Required', field: 'target.name', detail: '' }]);
    if (target.kind !== undefined && target.kind !== '' && target.kind !== 'Node')
      throw invalid('', 'Binding', name, [{ type: 'NotSupported', field: 'target.kind', value: target.kind, detail: 'supported values: "Node"' }]);
    const pod = this.mustGet(ctx, name);
    const pm = metaOf(pod);
    if (bm.uid !== undefined && bm.uid !== '' && bm.uid !== pm.uid)
      throw conflict('', 'pods', name, `Precondition failed: UID in precondition: ${String(bm.uid)}, UID in object meta: ${String(pm.uid)}`);
    // (kube-apiserver reports these on the pods/binding resource)
    if (pm.deletionTimestamp !== undefined) throw conflict('', 'pods/binding', name, `pod ${name} is being deleted, cannot be assigned to a host`);
    const spec = obj(pod.spec);
    if (str(spec.nodeName)) throw conflict('', 'pods/binding', name, `pod ${name} is already assigned to node "${String(spec.nodeName)}"`);
    if (ctx.dryRun) return;
    const status = obj(pod.status);
    const conds = (Array.isArray(status.conditions) ? status.conditions : []).filter((c) => !(isObj(c) && c.type === 'PodScheduled'));
    conds.push({ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: nowRFC3339() });
    // annotations on the Binding are copied to the pod (kube's assignPod)
    const annotations = isObj(bm.annotations) ? { ...obj(pm.annotations), ...bm.annotations } : pm.annotations;
    const next: Obj = { ...pod, metadata: { ...pm, ...(annotations !== undefined ? { annotations } : {}) }, spec: { ...spec, nodeName: node }, status: { ...status, conditions: conds } };
    this.store.put(keyOf(ctx.rt), next, 'MODIFIED');
  }

  // ---------- scale subresource (autoscaling/v1 Scale) ----------

  private toScale(ctx: ReqCtx, o: Obj): Obj {
    const sc = ctx.version.scale!;
    const num = (p: string): number => {
      const v = evalJsonPath(o, p)[0];
      return typeof v === 'number' ? v : 0;
    };
    let selector: string | undefined;
    if (sc.labelSelectorPath === 'spec.selector' && ctx.rt.builtin) selector = formatLabelSelector(getPath(o, 'spec.selector'));
    else if (sc.labelSelectorPath) {
      const v = evalJsonPath(o, sc.labelSelectorPath)[0];
      if (typeof v === 'string') selector = v;
    }
    const m = metaOf(o);
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: m.name, ...(m.namespace ? { namespace: m.namespace } : {}), uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
      spec: { replicas: num(sc.specReplicasPath) },
      status: { replicas: num(sc.statusReplicasPath), ...(selector ? { selector } : {}) },
    };
  }

  getScale(ctx: ReqCtx, name: string): Obj {
    return this.toScale(ctx, this.mustGet(ctx, name));
  }

  /** PUT of a Scale, or a patch of the current Scale: sets the parent's replicas. */
  updateScale(ctx: ReqCtx, name: string, body: unknown, patchType?: PatchType): Obj {
    const existing = this.mustGet(ctx, name);
    let scale: unknown = body;
    if (patchType) {
      const current = this.toScale(ctx, existing);
      try {
        scale = patchType === 'json' ? jsonPatch(current, body) : mergePatch(current, body);
      } catch (e) {
        if (e instanceof PatchError) throw badRequest(e.message);
        throw e;
      }
    }
    if (!isObj(scale)) throw badRequest('the body of the request must be a Scale object');
    const replicas = getPath(scale, 'spec.replicas');
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0)
      throw invalid('autoscaling', 'Scale', name, [{ type: 'Invalid', field: 'spec.replicas', value: replicas ?? null, detail: 'must be greater than or equal to 0' }]);
    const rv = getPath(scale, 'metadata.resourceVersion');
    if (!patchType && typeof rv === 'string' && rv !== '' && rv !== metaOf(existing).resourceVersion) throw conflict(ctx.rt.group, ctx.rt.resource, name);
    const next = clone(this.view(ctx.rt, ctx.version.name, existing));
    const path = ctx.version.scale!.specReplicasPath.replace(/^\./, '').split('.');
    let cur: Obj = next;
    for (const p of path.slice(0, -1)) {
      if (!isObj(cur[p])) cur[p] = {};
      cur = cur[p] as Obj;
    }
    cur[path[path.length - 1]!] = replicas;
    const updated = this.applyUpdate({ ...ctx, version: ctx.version }, existing, next);
    return this.toScale(ctx, updated);
  }

  // ---------- delete ----------

  /**
   * DELETE of one object. `deleted`: it is gone (the answer is then a Status for most types, the object for those
   * whose registry returns it); otherwise the object as it now is (terminating, held by finalizers).
   */
  delete(ctx: ReqCtx, name: string, opts: DeleteOptions): { object: Obj; deleted: boolean } {
    const existing = this.mustGet(ctx, name);
    const rt = ctx.rt;
    // the NamespaceLifecycle admission plugin's immortal namespaces
    if (keyOf(rt) === NS_KEY && IMMORTAL_NAMESPACES.has(name)) throw forbidden('', 'namespaces', name, 'this namespace may not be deleted');
    const em = metaOf(existing);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== em.uid)
      throw conflict(rt.group, rt.resource, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(em.uid)}`);
    if (pre?.resourceVersion && pre.resourceVersion !== em.resourceVersion)
      throw conflict(rt.group, rt.resource, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(em.resourceVersion)}`);
    const r = this.deleteObject(rt, existing, opts, ctx.dryRun);
    return { object: this.view(rt, ctx.version.name, r.object), deleted: r.deleted };
  }

  /** Delete as kube-apiserver's registry does (see deletion.ts); returns the object as it is after the call. */
  deleteObject(rt: ResourceType, existing: Obj, opts: DeleteOptions = {}, dryRun = false): { object: Obj; deleted: boolean } {
    const key = keyOf(rt);
    if (key === NS_KEY) return this.deleteNamespace(rt, existing, dryRun);
    const outcome = decideDelete(existing, opts, key === '/pods');
    switch (outcome.kind) {
      case 'pending':
        return { object: existing, deleted: false };
      case 'update':
        if (!dryRun) this.store.put(key, outcome.object, 'MODIFIED');
        return { object: outcome.object, deleted: false };
      case 'delete': {
        const final: Obj = { ...existing, metadata: { ...metaOf(existing) } };
        if (!dryRun) this.finalRemove(rt, final);
        return { object: final, deleted: true };
      }
    }
  }

  /** Remove an object for good, releasing what it holds. */
  private finalRemove(rt: ResourceType, o: Obj): void {
    const key = keyOf(rt);
    this.store.remove(key, o);
    if (key === SVC_KEY) releaseService(o, this.alloc);
    if (key === CRD_KEY) this.removeCRDResources(o);
    const ns = str(metaOf(o).namespace);
    if (rt.namespaced && ns) this.maybeFinishNamespace(ns);
  }

  private removeCRDResources(crd: Obj): void {
    try {
      const rt = resourceTypeOf(crd);
      const key = keyOf(rt);
      for (const o of this.store.list(key)) this.store.remove(key, { ...o, metadata: { ...metaOf(o) } });
      this.store.dropResource(key);
      this.registry.remove(rt.group, rt.resource);
    } catch {
      // an invalid CRD never served anything
    }
  }

  /**
   * Namespace deletion, as kube-apiserver's namespace registry: the first DELETE turns the namespace `Terminating`;
   * it goes once nothing holds it (the namespace controller removes `kubernetes` from `spec.finalizers` through
   * `/finalize` when the namespace is empty, other finalizers are their owners' business). Until then a DELETE
   * changes nothing.
   */
  private deleteNamespace(rt: ResourceType, ns: Obj, dryRun: boolean): { object: Obj; deleted: boolean } {
    const em = metaOf(ns);
    if (em.deletionTimestamp === undefined) {
      const current: Obj = { ...ns, metadata: { ...em, deletionTimestamp: nowRFC3339(), deletionGracePeriodSeconds: 0 }, status: { ...obj(ns.status), phase: 'Terminating' } };
      if (dryRun) return { object: current, deleted: false };
      if (namespaceReleased(current)) {
        this.finalRemove(rt, current);
        return { object: current, deleted: true };
      }
      this.store.put(NS_KEY, current, 'MODIFIED');
      this.schedulePurge(nameOf(ns));
      return { object: current, deleted: false };
    }
    if (!namespaceReleased(ns)) return { object: ns, deleted: false };
    if (!dryRun) this.finalRemove(rt, ns);
    return { object: ns, deleted: true };
  }

  /**
   * The namespace controller's work, done by the server itself unless told that a real one runs (kube-apiserver
   * leaves it to kube-controller-manager; a server used without one would keep namespaces Terminating for ever).
   */
  builtinNamespaceController = true;

  /** Delay before a terminating namespace's contents are deleted by the built-in namespace controller. */
  namespaceDeleteDelayMs = 200;

  private schedulePurge(name: string): void {
    if (!this.builtinNamespaceController) return;
    const t = setTimeout(() => this.purgeNamespace(name), this.namespaceDeleteDelayMs);
    t.unref();
  }

  private purgeNamespace(name: string): void {
    const ns = this.store.get(NS_KEY, '', name);
    if (!ns || metaOf(ns).deletionTimestamp === undefined || !specFinalizers(ns).includes(NAMESPACE_FINALIZER)) return;
    for (const rt of this.registry.all()) {
      if (!rt.namespaced) continue;
      for (const o of this.store.list(keyOf(rt), name)) this.deleteObject(rt, o);
    }
    this.maybeFinishNamespace(name);
  }

  /** After a restart: namespaces that were terminating continue. */
  private resumeNamespaceDeletions(): void {
    for (const ns of this.store.list(NS_KEY)) if (metaOf(ns).deletionTimestamp !== undefined) this.schedulePurge(nameOf(ns));
  }

  /**
   * The built-in namespace controller's last step: a terminating namespace left empty loses the `kubernetes`
   * finalizer, and goes if nothing else holds it.
   */
  private maybeFinishNamespace(name: string): void {
    if (!this.builtinNamespaceController) return;
    const ns = this.store.get(NS_KEY, '', name);
    if (!ns || metaOf(ns).deletionTimestamp === undefined || !specFinalizers(ns).includes(NAMESPACE_FINALIZER)) return;
    for (const rt of this.registry.all()) if (rt.namespaced && this.store.count(keyOf(rt), name) > 0) return;
    const finalized = withoutNamespaceFinalizer(ns);
    if (namespaceReleased(finalized)) this.finalRemove(this.registry.byKey(NS_KEY)!, finalized);
    else this.store.put(NS_KEY, finalized, 'MODIFIED');
  }

  deleteCollection(ctx: ReqCtx, labelSel: LabelSelector, fieldSel: FieldSelector, opts: DeleteOptions = {}): Obj[] {
    const { items } = this.list(ctx, labelSel, fieldSel);
    const out: Obj[] = [];
    for (const it of items) {
      const stored = this.store.get(keyOf(ctx.rt), str(metaOf(it).namespace) ?? '', nameOf(it));
      if (!stored) continue;
      out.push(this.view(ctx.rt, ctx.version.name, this.deleteObject(ctx.rt, stored, opts, ctx.dryRun).object));
    }
    return out;
  }

  // ---------- bootstrapping ----------

  /** Namespaces and the `kubernetes` Service of a fresh cluster. */
  bootstrap(): void {
    const nsRt = this.registry.byKey(NS_KEY)!;
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      if (this.store.get(NS_KEY, '', ns)) continue;
      this.create(this.ctxFor(nsRt), { metadata: { name: ns } });
    }
    const svcRt = this.registry.byKey(SVC_KEY)!;
    if (!this.store.get(SVC_KEY, 'default', 'kubernetes')) {
      this.create(this.ctxFor(svcRt, 'default'), {
        metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } },
        // the first address of the range, as kube-apiserver reserves it (another Service may have taken it meanwhile)
        spec: {
          type: 'ClusterIP',
          ...(this.alloc.v4 && !this.alloc.v4.isAllocated(this.alloc.v4.firstIP()) ? { clusterIP: this.alloc.v4.firstIP() } : {}),
          ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }],
        },
      });
    }
  }

  /** After loading a data file: re-register CRDs and re-reserve Service allocations. */
  restore(): void {
    for (const crd of this.store.list(CRD_KEY)) {
      try {
        this.registry.add(resourceTypeOf(crd));
      } catch {
        // skip broken entries
      }
    }
    for (const svc of this.store.list(SVC_KEY)) reserveService(svc, this.alloc);
    this.resumeNamespaceDeletions();
  }

  ctxFor(rt: ResourceType, namespace?: string): ReqCtx {
    return { rt, version: rt.versions[0]!, ...(namespace !== undefined ? { namespace } : {}), dryRun: false, fieldValidation: 'Ignore', warnings: [] };
  }
}
