// Namespace controller: a namespace being deleted (deletionTimestamp set, `kubernetes` in spec.finalizers) has
// everything in it deleted, every namespaced resource type found by discovery (custom resources too), then loses
// the `kubernetes` finalizer through the `/finalize` subresource so the API server can remove it. Progress is
// reported in the NamespaceDeletion* / NamespaceContentRemaining / NamespaceFinalizersRemaining conditions,
// worded as upstream.
import type { Informer } from '../../k8s/informers.js';
import { errorText, isNotFound } from '../../k8s/client.js';
import { collectionPath, objectPath } from '../../k8s/resources.js';
import { discoverResources, type DiscoveredResource } from '../common/discovery.js';
import { deepEqual, keyOf, nowRFC3339 } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import type { Condition, Namespace, Obj } from '../common/types.js';
import type { ControllerContext } from './context.js';

const FINALIZER = 'kubernetes';

export interface ContentReport {
  /** `pods.` / `widgets.example.com` → objects still there. */
  remaining: Map<string, number>;
  /** finalizer → objects still carrying it. */
  finalizers: Map<string, number>;
  errors: string[];
  discoveryError?: string;
}

const cond = (type: string, status: string, reason: string, message: string): Condition => ({ type, status, reason, message });

/** The five deletion conditions upstream's namespace controller keeps, from what one pass found. */
export function deletionConditions(r: ContentReport): Condition[] {
  const list = (m: Map<string, number>, fmt: (k: string, n: number) => string): string =>
    [...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => fmt(k, n)).join(', ');
  return [
    r.discoveryError
      ? cond('NamespaceDeletionDiscoveryFailure', 'True', 'DiscoveryFailed', `Discovery failed for some groups: ${r.discoveryError}`)
      : cond('NamespaceDeletionDiscoveryFailure', 'False', 'ResourcesDiscovered', 'All resources successfully discovered'),
    cond('NamespaceDeletionGroupVersionParsingFailure', 'False', 'ParsedGroupVersions', 'All legacy kube types successfully parsed'),
    r.errors.length
      ? cond('NamespaceDeletionContentFailure', 'True', 'ContentDeletionFailed', `Failed to delete all resource types, ${r.errors.length} remaining: ${r.errors.join(', ')}`)
      : cond('NamespaceDeletionContentFailure', 'False', 'ContentDeleted', 'All content successfully deleted, may be waiting on finalization'),
    r.remaining.size
      ? cond('NamespaceContentRemaining', 'True', 'SomeResourcesRemain', `Some resources are remaining: ${list(r.remaining, (k, n) => `${k} has ${n} resource instances`)}`)
      : cond('NamespaceContentRemaining', 'False', 'ContentRemoved', 'All content successfully removed'),
    r.finalizers.size
      ? cond('NamespaceFinalizersRemaining', 'True', 'SomeFinalizersRemain', `Some content in the namespace has finalizers remaining: ${list(r.finalizers, (k, n) => `${k} in ${n} resource instances`)}`)
      : cond('NamespaceFinalizersRemaining', 'False', 'ContentHasNoFinalizers', 'All content-preserving finalizers finished'),
  ];
}

export class NamespaceController implements Runnable {
  readonly name = 'namespace';
  private readonly namespaces: Informer<Namespace>;
  private readonly loop: ReconcileLoop;
  private finalizeMissingLogged = false;

  constructor(private readonly ctx: ControllerContext) {
    this.namespaces = ctx.informers.get<Namespace>(CR.namespaces);
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.namespaces] });
    const enqueue = (n: Namespace): void => {
      if (n.metadata?.deletionTimestamp) this.loop.enqueue(keyOf(n));
    };
    this.namespaces.addHandlers({ add: enqueue, update: (_o, n) => enqueue(n) });
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(name: string): Promise<ReconcileOutcome | void> {
    const ns = this.namespaces.get(name);
    if (!ns || !ns.metadata?.deletionTimestamp) return;
    if (!(ns.spec?.finalizers ?? []).includes(FINALIZER)) return;
    const report: ContentReport = { remaining: new Map(), finalizers: new Map(), errors: [] };
    let resources: DiscoveredResource[] = [];
    try {
      resources = (await discoverResources(this.ctx.client)).filter((r) => r.namespaced && r.verbs.includes('list') && r.verbs.includes('delete'));
    } catch (err) {
      report.discoveryError = errorText(err);
    }
    // events.k8s.io/v1 Events are the core Events seen through another version: deleting those is enough
    resources = resources.filter((r) => !(r.group === 'events.k8s.io' && r.plural === 'events'));
    for (const r of resources) {
      try {
        await this.deleteAll(r, name, report);
      } catch (err) {
        report.errors.push(`${r.plural}.${r.group}: ${errorText(err)}`);
      }
    }
    await this.writeConditions(ns, deletionConditions(report));
    if (report.discoveryError || report.errors.length || report.remaining.size) return { requeueAfterMs: 1000 };
    await this.finalize(name);
  }

  /** Deletes every object of one type in the namespace and counts what is left (and which finalizers hold it). */
  private async deleteAll(r: DiscoveredResource, ns: string, report: ContentReport): Promise<void> {
    const path = collectionPath(r, ns);
    const body = { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' };
    if (r.verbs.includes('deletecollection')) {
      await this.ctx.client.delete(path, { body });
    } else {
      const items = (await this.ctx.client.get<{ items?: Obj[] }>(path)).items ?? [];
      for (const o of items) {
        try {
          await this.ctx.client.delete(objectPath(r, ns, o.metadata?.name ?? ''), { body });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
    const left = (await this.ctx.client.get<{ items?: Obj[] }>(path)).items ?? [];
    if (left.length === 0) return;
    report.remaining.set(`${r.plural}.${r.group}`, left.length);
    for (const o of left) for (const f of o.metadata?.finalizers ?? []) report.finalizers.set(f, (report.finalizers.get(f) ?? 0) + 1);
  }

  private async writeConditions(ns: Namespace, conditions: Condition[]): Promise<void> {
    const old = ns.status?.conditions ?? [];
    const now = nowRFC3339();
    const merged = conditions.map((c) => {
      const prev = old.find((o) => o.type === c.type);
      return { ...c, lastTransitionTime: prev && prev.status === c.status ? (prev.lastTransitionTime ?? now) : now };
    });
    const strip = (cs: Condition[]): unknown => cs.map(({ lastTransitionTime: _t, ...rest }) => rest);
    if (deepEqual(strip(old), strip(merged))) return;
    try {
      const updated = await this.ctx.writer.updateStatus<Namespace>(CR.namespaces, { ...ns, status: { ...(ns.status ?? {}), conditions: merged } });
      this.namespaces.observeWrite(updated, ns.metadata?.resourceVersion);
    } catch (err) {
      // the namespace went away meanwhile (the server may finish it itself)
      if (!isNotFound(err)) throw err;
    }
  }

  private async finalize(name: string): Promise<void> {
    const fresh = await this.ctx.writer.get<Namespace>(CR.namespaces, undefined, name);
    if (!fresh) return;
    const finalizers = (fresh.spec?.finalizers ?? []).filter((f) => f !== FINALIZER);
    try {
      await this.ctx.client.put(`${objectPath(CR.namespaces, undefined, name)}/finalize`, { ...fresh, spec: { ...(fresh.spec ?? {}), finalizers } });
      this.ctx.log.info({ controller: this.name, namespace: name }, 'namespace emptied and finalized');
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // gone already, or a server without /finalize (that removes empty terminating namespaces itself)
      if (await this.ctx.writer.get(CR.namespaces, undefined, name)) {
        if (!this.finalizeMissingLogged) this.ctx.log.warn({ controller: this.name, namespace: name }, 'the API server does not serve namespaces/finalize; leaving the namespace to it');
        this.finalizeMissingLogged = true;
      }
    }
  }
}
