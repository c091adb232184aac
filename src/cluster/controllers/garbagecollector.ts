// Garbage collector: follows ownerReferences across every resource type the server serves (found by discovery,
// custom resources included, re-discovered periodically). An object all of whose owners are gone is deleted
// (background cascading deletion); references to owners that are gone are removed while another owner remains.
// An owner deleted with the `orphan` finalizer has the references to it removed from its dependents, then the
// finalizer; one deleted with `foregroundDeletion` has its dependents deleted first, and loses the finalizer once no
// dependent with blockOwnerDeletion is left. (The API server sets those finalizers for `kubectl delete --cascade=…`.)
import type { Informer } from '../../k8s/informers.js';
import { errorText, isNotFound } from '../../k8s/client.js';
import { byGroupKind, discoverResources, groupOfApiVersion, type DiscoveredResource } from '../common/discovery.js';
import { deepEqual, keyOf } from '../common/pods.js';
import { ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import type { Obj, OwnerReference } from '../common/types.js';
import type { DeleteOpts } from '../common/writer.js';
import type { ControllerContext } from './context.js';

export const FINALIZER_ORPHAN = 'orphan';
export const FINALIZER_FOREGROUND = 'foregroundDeletion';
/** Events are never owners nor owned in a way worth tracking (upstream ignores them too). */
const IGNORED = new Set(['/events', 'events.k8s.io/events']);

interface Located {
  resource: DiscoveredResource;
  key: string;
}

const hasFinalizer = (o: Obj, f: string): boolean => (o.metadata?.finalizers ?? []).includes(f);
const deletingDependents = (o: Obj): boolean => !!o.metadata?.deletionTimestamp && hasFinalizer(o, FINALIZER_FOREGROUND);
const resourceId = (r: DiscoveredResource): string => `${r.group}/${r.plural}`;

export interface GarbageCollectorOptions {
  /** How often discovery is repeated to pick up new resource types (CRDs). Default 30 s. */
  rediscoverMs?: number;
}

export class GarbageCollector implements Runnable {
  readonly name = 'garbagecollector';
  private readonly loop: ReconcileLoop;
  private readonly informers = new Map<string, { resource: DiscoveredResource; informer: Informer<Obj> }>();
  private kinds = new Map<string, DiscoveredResource>();
  /** uid → where the object is cached. */
  private readonly byUid = new Map<string, Located>();
  /** owner uid → dependent uids. */
  private readonly dependents = new Map<string, Set<string>>();
  private readonly ownersOf = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly ready: Promise<void>;
  private markReady!: () => void;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly opts: GarbageCollectorOptions = {},
  ) {
    this.ready = new Promise((r) => (this.markReady = r));
    this.loop = new ReconcileLoop(this.name, ctx.log, (uid) => this.reconcile(uid), { workers: ctx.workers, waitFor: [] });
  }

  async start(): Promise<void> {
    await this.sync();
    await Promise.all([...this.informers.values()].map((i) => i.informer.waitForSync()));
    if (this.stopped) return;
    this.markReady();
    await this.loop.start();
    const every = this.opts.rediscoverMs ?? 30_000;
    const tick = (): void => {
      this.timer = setTimeout(() => {
        void this.sync().finally(() => !this.stopped && tick());
      }, every);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.markReady();
    if (this.timer) clearTimeout(this.timer);
    await this.loop.stop();
  }

  /** Watches every resource type that can be listed, watched and deleted; stops watching those that went away. */
  private async sync(): Promise<void> {
    let found: DiscoveredResource[];
    try {
      found = await discoverResources(this.ctx.client);
    } catch (err) {
      this.ctx.log.warn({ controller: this.name, err: errorText(err) }, 'discovery failed; keeping the resources already watched');
      return;
    }
    const usable = found.filter((r) => !IGNORED.has(resourceId(r)) && ['list', 'watch', 'delete'].every((v) => r.verbs.includes(v)));
    this.kinds = byGroupKind(found);
    const ids = new Set(usable.map(resourceId));
    for (const r of usable) {
      const id = resourceId(r);
      if (this.informers.has(id)) continue;
      const informer = this.ctx.informers.get<Obj>(r);
      this.informers.set(id, { resource: r, informer });
      informer.addHandlers({
        add: (o) => this.observe(r, o),
        update: (old, o) => this.observe(r, o, old),
        delete: (o) => this.forget(o),
      });
      for (const o of informer.list()) this.observe(r, o);
    }
    for (const [id, { resource }] of this.informers) {
      if (ids.has(id)) continue;
      this.informers.delete(id);
      this.ctx.log.info({ controller: this.name, resource: id }, 'resource no longer served, no longer watched');
      // shared informers of resources other controllers use are kept: they only go when their resource does
      await this.ctx.informers.drop(resource);
    }
  }

  // ---- graph upkeep (handlers only record and enqueue) ----

  private observe(r: DiscoveredResource, o: Obj, old?: Obj): void {
    const uid = o.metadata?.uid;
    if (!uid) return;
    this.byUid.set(uid, { resource: r, key: keyOf(o) });
    const owners = (o.metadata?.ownerReferences ?? []).map((ref) => ref.uid);
    const before = this.ownersOf.get(uid) ?? [];
    for (const ou of before) if (!owners.includes(ou)) this.dependents.get(ou)?.delete(uid);
    for (const ou of owners) {
      let s = this.dependents.get(ou);
      if (!s) this.dependents.set(ou, (s = new Set()));
      s.add(uid);
    }
    if (owners.length) this.ownersOf.set(uid, owners);
    else this.ownersOf.delete(uid);
    const changed =
      !old ||
      !deepEqual(old.metadata?.ownerReferences ?? [], o.metadata?.ownerReferences ?? []) ||
      !!old.metadata?.deletionTimestamp !== !!o.metadata?.deletionTimestamp ||
      !deepEqual(old.metadata?.finalizers ?? [], o.metadata?.finalizers ?? []);
    if (!changed) return;
    if (owners.length || o.metadata?.deletionTimestamp) this.loop.enqueue(uid);
    // an owner starting deletion: its dependents learn whether to go (foreground) or stay (orphan)
    if (o.metadata?.deletionTimestamp) for (const d of this.dependents.get(uid) ?? []) this.loop.enqueue(d);
  }

  private forget(o: Obj): void {
    const uid = o.metadata?.uid;
    if (!uid) return;
    this.byUid.delete(uid);
    for (const ou of this.ownersOf.get(uid) ?? []) {
      this.dependents.get(ou)?.delete(uid);
      // an owner in foreground deletion may have been waiting for this one
      this.loop.enqueue(ou);
    }
    this.ownersOf.delete(uid);
    // dependents whose owner is gone
    for (const d of this.dependents.get(uid) ?? []) this.loop.enqueue(d);
  }

  private cached(uid: string): { o: Obj; at: Located } | undefined {
    const at = this.byUid.get(uid);
    if (!at) return undefined;
    const o = this.informers.get(resourceId(at.resource))?.informer.get(at.key);
    return o && o.metadata?.uid === uid ? { o, at } : undefined;
  }

  // ---- reconcile ----

  async reconcile(uid: string): Promise<ReconcileOutcome | void> {
    await this.ready;
    const found = this.cached(uid);
    if (!found) return;
    const { o, at } = found;
    if (o.metadata?.deletionTimestamp) {
      if (hasFinalizer(o, FINALIZER_ORPHAN)) return await this.orphanDependents(o, at);
      if (hasFinalizer(o, FINALIZER_FOREGROUND)) return await this.deleteDependentsFirst(o, at);
      return;
    }
    const refs = o.metadata?.ownerReferences ?? [];
    if (refs.length === 0) return;
    const solid: OwnerReference[] = [];
    const gone: OwnerReference[] = [];
    const waiting: OwnerReference[] = [];
    for (const ref of refs) {
      const state = await this.ownerState(ref, o);
      if (state === 'absent') gone.push(ref);
      else if (state === 'deletingDependents') waiting.push(ref);
      else solid.push(ref);
    }
    if (solid.length) {
      if (gone.length === 0 && waiting.length === 0) return;
      // another owner keeps it: only the references to owners that are gone (or going) are dropped
      const keep = refs.filter((r) => solid.includes(r));
      this.ctx.log.info({ controller: this.name, object: keyOf(o), removed: [...gone, ...waiting].map((r) => `${r.kind}/${r.name}`) }, 'removing references to deleted owners');
      await this.patchMeta(at, o, { ownerReferences: keep });
      return;
    }
    let policy: DeleteOpts['propagationPolicy'] = 'Background';
    if (waiting.length && (this.dependents.get(uid)?.size ?? 0) > 0) policy = 'Foreground';
    else if (hasFinalizer(o, FINALIZER_ORPHAN)) policy = 'Orphan';
    else if (hasFinalizer(o, FINALIZER_FOREGROUND)) policy = 'Foreground';
    this.ctx.log.info({ controller: this.name, object: `${at.resource.kind}/${keyOf(o)}`, owners: refs.map((r) => `${r.kind}/${r.name}`), propagationPolicy: policy }, 'deleting object whose owners are gone');
    await this.ctx.writer.delete(at.resource, o.metadata?.namespace, o.metadata?.name ?? '', { propagationPolicy: policy, preconditions: { uid } });
  }

  /**
   * Whether an owner exists, and whether it waits for its dependents to go. Not in the caches (never seen, or not
   * seen yet): asked of the API server, so a dependent created just after its owner is never taken for an orphan.
   */
  private async ownerState(ref: OwnerReference, dependent: Obj): Promise<'present' | 'absent' | 'deletingDependents'> {
    const c = this.cached(ref.uid);
    if (c) return deletingDependents(c.o) ? 'deletingDependents' : 'present';
    const r = this.kinds.get(`${groupOfApiVersion(ref.apiVersion)}/${ref.kind}`);
    if (!r) {
      // a kind the server does not serve (yet): keep the dependent rather than guess
      this.ctx.log.debug({ controller: this.name, object: keyOf(dependent), owner: `${ref.apiVersion}/${ref.kind}` }, 'owner kind not served; keeping dependent');
      return 'present';
    }
    const live = await this.ctx.writer.get<Obj>(r, r.namespaced ? dependent.metadata?.namespace : undefined, ref.name);
    if (!live || live.metadata?.uid !== ref.uid) return 'absent';
    return deletingDependents(live) ? 'deletingDependents' : 'present';
  }

  private async orphanDependents(owner: Obj, at: Located): Promise<void> {
    const uid = owner.metadata?.uid ?? '';
    for (const d of [...(this.dependents.get(uid) ?? [])]) {
      const dep = this.cached(d);
      if (!dep) continue;
      const keep = (dep.o.metadata?.ownerReferences ?? []).filter((r) => r.uid !== uid);
      await this.patchMeta(dep.at, dep.o, { ownerReferences: keep });
    }
    this.ctx.log.info({ controller: this.name, object: keyOf(owner) }, 'dependents orphaned; removing the orphan finalizer');
    await this.patchMeta(at, owner, { finalizers: (owner.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER_ORPHAN) });
  }

  private async deleteDependentsFirst(owner: Obj, at: Located): Promise<ReconcileOutcome | void> {
    const uid = owner.metadata?.uid ?? '';
    const blocking: Obj[] = [];
    for (const d of this.dependents.get(uid) ?? []) {
      const dep = this.cached(d);
      if (!dep) continue;
      const ref = dep.o.metadata?.ownerReferences?.find((r) => r.uid === uid);
      if (ref?.blockOwnerDeletion) blocking.push(dep.o);
      // each dependent deletes itself in its own reconcile (it sees this owner waiting)
      this.loop.enqueue(d);
    }
    if (blocking.length) return;
    this.ctx.log.info({ controller: this.name, object: keyOf(owner) }, 'no blocking dependents left; removing the foregroundDeletion finalizer');
    await this.patchMeta(at, owner, { finalizers: (owner.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER_FOREGROUND) });
  }

  /** Merge-patches ownerReferences or finalizers of exactly the version we looked at; gone or changed = nothing to do now. */
  private async patchMeta(at: Located, o: Obj, meta: { ownerReferences?: OwnerReference[]; finalizers?: string[] }): Promise<void> {
    const md = o.metadata ?? {};
    const patch: Record<string, unknown> = { uid: md.uid, resourceVersion: md.resourceVersion };
    if (meta.ownerReferences) patch.ownerReferences = meta.ownerReferences.length ? meta.ownerReferences : null;
    if (meta.finalizers) patch.finalizers = meta.finalizers.length ? meta.finalizers : null;
    try {
      await this.ctx.writer.mergePatch(at.resource, md.namespace, md.name ?? '', { metadata: patch });
    } catch (err) {
      if (isNotFound(err)) return;
      // changed meanwhile: the retry looks at the newer version
      throw err;
    }
  }
}
