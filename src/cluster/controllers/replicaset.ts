// ReplicaSet controller: keeps `spec.replicas` pods from the template, each owned by the ReplicaSet (ownerReference
// controller=true, blockOwnerDeletion), creating in slow-start batches and deleting the least useful pods first;
// writes status (replicas, fullyLabeled, ready, available with minReadySeconds, observedGeneration, ReplicaFailure).
import type { Informer } from '../../k8s/informers.js';
import type { EventSink } from '../../k8s/events.js';
import { errorText } from '../../k8s/client.js';
import { Expectations } from '../common/expectations.js';
import { controllerRef, deepEqual, isPodActive, isPodAvailable, isPodReady, isTerminating, keyOf, nowRFC3339, ownerRefTo, splitKey } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { Index, ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import { matchesLabelSelector, matchesMap } from '../common/selectors.js';
import type { Condition, Pod, ReplicaSet } from '../common/types.js';
import { claim } from './claim.js';
import type { ControllerContext } from './context.js';
import { podsToDelete } from './pod-ranking.js';

/** Most pods created or deleted in one reconcile (upstream's burstReplicas). */
const BURST = 500;

type RSStatus = NonNullable<ReplicaSet['status']>;

export class ReplicaSetController implements Runnable {
  readonly name = 'replicaset';
  private readonly rs: Informer<ReplicaSet>;
  private readonly pods: Informer<Pod>;
  private readonly podsByNs: Index<Pod>;
  private readonly podsByOwner: Index<Pod>;
  private readonly rsByNs: Index<ReplicaSet>;
  private readonly rsByOwner: Index<ReplicaSet>;
  private readonly expectations = new Expectations();
  private readonly events: EventSink;
  private readonly loop: ReconcileLoop;

  constructor(private readonly ctx: ControllerContext) {
    this.rs = ctx.informers.get<ReplicaSet>(CR.replicaSets);
    this.pods = ctx.informers.get<Pod>(CR.pods);
    this.podsByNs = new Index(this.pods, (p) => [p.metadata?.namespace ?? '']);
    this.podsByOwner = new Index(this.pods, (p) => {
      const r = controllerRef(p);
      return r ? [r.uid] : [];
    });
    this.rsByNs = new Index(this.rs, (r) => [r.metadata?.namespace ?? '']);
    this.rsByOwner = new Index(this.rs, (r) => {
      const c = controllerRef(r);
      return c ? [c.uid] : [];
    });
    this.events = ctx.recorder('replicaset-controller');
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.rs, this.pods] });
    this.rs.addHandlers({ add: (r) => this.loop.enqueue(keyOf(r)), update: (_o, r) => this.loop.enqueue(keyOf(r)), delete: (r) => this.loop.enqueue(keyOf(r)) });
    this.pods.addHandlers({
      add: (p) => this.enqueueForPod(p),
      update: (old, p) => {
        this.enqueueForPod(p);
        const o = controllerRef(old);
        if (o?.uid !== controllerRef(p)?.uid || !deepEqual(old.metadata?.labels, p.metadata?.labels)) this.enqueueForPod(old);
        // a pod that just became ready turns available minReadySeconds later
        if (!isPodReady(old) && isPodReady(p)) {
          const owner = this.ownerOf(p);
          const mrs = owner?.spec?.minReadySeconds ?? 0;
          if (owner && mrs > 0) this.loop.enqueueAfter(keyOf(owner), mrs * 1000 + 100);
        }
      },
      delete: (p) => this.enqueueForPod(p),
    });
  }

  private ownerOf(p: Pod): ReplicaSet | undefined {
    const ref = controllerRef(p);
    if (!ref || ref.kind !== 'ReplicaSet') return undefined;
    const rs = this.rs.get(`${p.metadata?.namespace ?? ''}/${ref.name}`);
    return rs?.metadata?.uid === ref.uid ? rs : undefined;
  }

  private enqueueForPod(p: Pod): void {
    const ref = controllerRef(p);
    if (ref) {
      if (ref.kind === 'ReplicaSet') this.loop.enqueue(`${p.metadata?.namespace ?? ''}/${ref.name}`);
      return;
    }
    // an orphan: every ReplicaSet that may adopt it
    for (const rs of this.rsByNs.get(p.metadata?.namespace ?? '')) {
      if (matchesLabelSelector(rs.spec?.selector, p.metadata?.labels)) this.loop.enqueue(keyOf(rs));
    }
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    const rs = this.rs.get(key);
    if (!rs) {
      this.expectations.forget(key);
      return;
    }
    const { namespace } = splitKey(key);
    const satisfied = this.expectations.satisfied(key, (name) => {
      const p = this.pods.get(`${namespace}/${name}`);
      return !p ? 'absent' : isTerminating(p) ? 'terminating' : 'present';
    });
    const selector = rs.spec?.selector;
    const owned = await claim<Pod>(this.podsByNs.get(namespace), {
      owner: rs,
      ownerRef: ownerRefTo(rs, 'apps/v1', 'ReplicaSet'),
      matches: (p) => matchesLabelSelector(selector, p.metadata?.labels),
      writer: this.ctx.writer,
      resource: CR.pods,
    });
    const active = owned.filter(isPodActive);
    let manageErr: { err: unknown; reason: string } | undefined;
    if (satisfied && !isTerminating(rs)) {
      try {
        await this.manageReplicas(key, rs, active);
      } catch (err) {
        manageErr = { err, reason: active.length < (rs.spec?.replicas ?? 1) ? 'FailedCreate' : 'FailedDelete' };
      }
    }
    const now = Date.now();
    const status = calculateStatus(rs, active, now, manageErr ? { reason: manageErr.reason, message: errorText(manageErr.err) } : undefined);
    if (!deepEqual(status, rs.status ?? {})) {
      const updated = await this.ctx.writer.updateStatus(CR.replicaSets, { ...rs, metadata: { ...rs.metadata, resourceVersion: undefined }, status });
      this.rs.observeWrite(updated, rs.metadata?.resourceVersion);
    }
    if (manageErr) throw manageErr.err;
    const minReady = rs.spec?.minReadySeconds ?? 0;
    if (minReady > 0 && status.readyReplicas === status.replicas && status.availableReplicas !== status.replicas) {
      return { requeueAfterMs: minReady * 1000 };
    }
    if (!satisfied) return { requeueAfterMs: Math.max(1000, this.expectations.nextExpiry(key) ?? 1000) };
  }

  private async manageReplicas(key: string, rs: ReplicaSet, active: Pod[]): Promise<void> {
    const want = rs.spec?.replicas ?? 1;
    const diff = active.length - want;
    const rsName = rs.metadata?.name ?? '';
    const namespace = rs.metadata?.namespace ?? '';
    if (diff < 0) {
      const n = Math.min(-diff, BURST);
      const ref = ownerRefTo(rs, 'apps/v1', 'ReplicaSet');
      const tpl = rs.spec?.template ?? {};
      const body = (): Pod => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          generateName: `${rsName}-`,
          namespace,
          ...(tpl.metadata?.labels ? { labels: { ...tpl.metadata.labels } } : {}),
          ...(tpl.metadata?.annotations ? { annotations: { ...tpl.metadata.annotations } } : {}),
          ...(tpl.metadata?.finalizers ? { finalizers: [...tpl.metadata.finalizers] } : {}),
          ownerReferences: [ref],
        },
        spec: structuredClone(tpl.spec ?? {}),
      });
      await slowStartBatch(n, async () => {
        try {
          const created = await this.ctx.writer.create<Pod>(CR.pods, namespace, body());
          this.expectations.expectCreated(key, created.metadata?.name ?? '');
          this.events.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata?.name ?? ''}`);
        } catch (err) {
          this.events.record(rs, 'Warning', 'FailedCreate', `Error creating: ${errorText(err)}`);
          throw err;
        }
      });
      return;
    }
    if (diff > 0) {
      const n = Math.min(diff, BURST);
      const related = this.relatedPods(rs);
      const victims = podsToDelete(active, related, n);
      const results = await Promise.allSettled(
        victims.map(async (p) => {
          const name = p.metadata?.name ?? '';
          await this.ctx.writer.delete(CR.pods, namespace, name, { preconditions: { uid: p.metadata?.uid } });
          this.expectations.expectDeleted(key, name);
          this.events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${name}`);
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        this.events.record(rs, 'Warning', 'FailedDelete', `Error deleting: ${errorText(failed.reason)}`);
        throw failed.reason;
      }
    }
  }

  /** Active pods of every ReplicaSet with the same controller (the Deployment's other ReplicaSets), or of this one. */
  private relatedPods(rs: ReplicaSet): Pod[] {
    const owner = controllerRef(rs);
    const family = owner ? this.rsByOwner.get(owner.uid) : [rs];
    const out: Pod[] = [];
    for (const r of family) for (const p of this.podsByOwner.get(r.metadata?.uid ?? '')) if (isPodActive(p)) out.push(p);
    return out;
  }
}

/**
 * Runs `n` calls in batches of 1, 2, 4, … (controller.slowStartBatch): a call that fails (quota, a terminating
 * namespace, a webhook) stops the following batches instead of failing `n` times.
 */
export async function slowStartBatch(n: number, call: () => Promise<void>): Promise<number> {
  let done = 0;
  let batch = Math.min(1, n);
  while (done < n) {
    const results = await Promise.allSettled(Array.from({ length: batch }, () => call()));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    done += batch;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    void ok;
    batch = Math.min(batch * 2, n - done);
  }
  return done;
}

export function calculateStatus(rs: ReplicaSet, active: readonly Pod[], nowMs: number, failure?: { reason: string; message: string }): RSStatus {
  const templateLabels = rs.spec?.template?.metadata?.labels;
  const minReady = rs.spec?.minReadySeconds ?? 0;
  const status: RSStatus = { replicas: active.length };
  const fully = active.filter((p) => matchesMap(templateLabels, p.metadata?.labels)).length;
  const ready = active.filter(isPodReady).length;
  const available = active.filter((p) => isPodAvailable(p, minReady, nowMs)).length;
  // zero values are left out, as the API's omitempty does
  if (fully) status.fullyLabeledReplicas = fully;
  if (ready) status.readyReplicas = ready;
  if (available) status.availableReplicas = available;
  if (rs.metadata?.generation) status.observedGeneration = rs.metadata.generation;
  const others: Condition[] = (rs.status?.conditions ?? []).filter((c) => c.type !== 'ReplicaFailure');
  const prev = rs.status?.conditions?.find((c) => c.type === 'ReplicaFailure');
  if (failure) {
    others.push(
      prev && prev.reason === failure.reason && prev.message === failure.message
        ? prev
        : { type: 'ReplicaFailure', status: 'True', lastTransitionTime: prev?.lastTransitionTime ?? nowRFC3339(nowMs), reason: failure.reason, message: failure.message },
    );
  }
  if (others.length) status.conditions = others;
  return status;
}
