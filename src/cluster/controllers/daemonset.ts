// DaemonSet controller: one pod per eligible node (nodeSelector, required node affinity, taints against the pod's
// tolerations plus the daemon tolerations upstream adds), pinned to its node with node affinity on metadata.name
// as upstream does (the scheduler binds it). Follows nodes appearing, changing and disappearing; replaces failed
// pods; rolls template changes out node by node (RollingUpdate with maxUnavailable / maxSurge; OnDelete waits for
// the user); status as upstream counts it.
import type { Informer } from '../../k8s/informers.js';
import type { EventSink } from '../../k8s/events.js';
import { errorText } from '../../k8s/client.js';
import { Expectations } from '../common/expectations.js';
import { computeHash } from '../common/hash.js';
import { controllerRef, deepEqual, isPodAvailable, isPodReady, isTerminating, keyOf, ownerRefTo, splitKey } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { Index, ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import { matchesLabelSelector } from '../common/selectors.js';
import type { DaemonSet, DaemonSetStatus, Node, Pod } from '../common/types.js';
import { claim } from './claim.js';
import type { ControllerContext } from './context.js';
import { daemonTolerations, nodeShouldRunDaemonPod, pinToNode, REVISION_HASH_LABEL, targetNode, TEMPLATE_GENERATION_LABEL } from './daemonset-util.js';
import { normalizeTemplate, scaledValue } from './deployment-util.js';
import { slowStartBatch } from './replicaset.js';

const byCreation = (a: Pod, b: Pod): number =>
  (Date.parse(a.metadata?.creationTimestamp ?? '') || 0) - (Date.parse(b.metadata?.creationTimestamp ?? '') || 0) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');

export class DaemonSetController implements Runnable {
  readonly name = 'daemonset';
  private readonly ds: Informer<DaemonSet>;
  private readonly pods: Informer<Pod>;
  private readonly nodes: Informer<Node>;
  private readonly podsByNs: Index<Pod>;
  private readonly dsByNs: Index<DaemonSet>;
  private readonly expectations = new Expectations();
  private readonly events: EventSink;
  private readonly loop: ReconcileLoop;

  constructor(private readonly ctx: ControllerContext) {
    this.ds = ctx.informers.get<DaemonSet>(CR.daemonSets);
    this.pods = ctx.informers.get<Pod>(CR.pods);
    this.nodes = ctx.informers.get<Node>(CR.nodes);
    this.podsByNs = new Index(this.pods, (p) => [p.metadata?.namespace ?? '']);
    this.dsByNs = new Index(this.ds, (d) => [d.metadata?.namespace ?? '']);
    this.events = ctx.recorder('daemonset-controller');
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.ds, this.pods, this.nodes] });
    const enqueue = (d: DaemonSet): void => this.loop.enqueue(keyOf(d));
    this.ds.addHandlers({ add: enqueue, update: (_o, d) => enqueue(d), delete: enqueue });
    this.pods.addHandlers({
      add: (p) => this.enqueueForPod(p),
      update: (o, p) => {
        this.enqueueForPod(p);
        if (controllerRef(o)?.uid !== controllerRef(p)?.uid || !deepEqual(o.metadata?.labels, p.metadata?.labels)) this.enqueueForPod(o);
        if (!isPodReady(o) && isPodReady(p)) {
          const ref = controllerRef(p);
          const owner = ref?.kind === 'DaemonSet' ? this.ds.get(`${p.metadata?.namespace ?? ''}/${ref.name}`) : undefined;
          const mrs = owner?.spec?.minReadySeconds ?? 0;
          if (owner && mrs > 0) this.loop.enqueueAfter(keyOf(owner), mrs * 1000 + 100);
        }
      },
      delete: (p) => this.enqueueForPod(p),
    });
    const all = (): void => {
      for (const d of this.ds.list()) enqueue(d);
    };
    this.nodes.addHandlers({
      add: all,
      update: (o, n) => {
        if (!deepEqual(o.metadata?.labels, n.metadata?.labels) || !deepEqual(o.spec, n.spec)) all();
      },
      delete: all,
    });
  }

  private enqueueForPod(p: Pod): void {
    const ref = controllerRef(p);
    if (ref) {
      if (ref.kind === 'DaemonSet') this.loop.enqueue(`${p.metadata?.namespace ?? ''}/${ref.name}`);
      return;
    }
    for (const d of this.dsByNs.get(p.metadata?.namespace ?? '')) if (matchesLabelSelector(d.spec?.selector, p.metadata?.labels)) this.loop.enqueue(keyOf(d));
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    const ds = this.ds.get(key);
    if (!ds) {
      this.expectations.forget(key);
      return;
    }
    const { namespace } = splitKey(key);
    const hash = computeHash(normalizeTemplate(ds.spec?.template ?? {}), ds.status?.collisionCount);
    const satisfied = this.expectations.satisfied(key, (name) => {
      const p = this.pods.get(`${namespace}/${name}`);
      return !p ? 'absent' : isTerminating(p) ? 'terminating' : 'present';
    });
    const owned = await claim<Pod>(this.podsByNs.get(namespace), {
      owner: ds,
      ownerRef: ownerRefTo(ds, 'apps/v1', 'DaemonSet'),
      matches: (p) => matchesLabelSelector(ds.spec?.selector, p.metadata?.labels),
      writer: this.ctx.writer,
      resource: CR.pods,
    });
    const nodes = this.nodes.list();
    const nodeNames = new Set(nodes.map((n) => n.metadata?.name ?? ''));
    const byNode = new Map<string, Pod[]>();
    const toDelete: Pod[] = [];
    for (const p of owned) {
      if (isTerminating(p)) continue;
      const n = targetNode(p);
      // a pod for a node that no longer exists
      if (!n || !nodeNames.has(n)) {
        toDelete.push(p);
        continue;
      }
      const l = byNode.get(n) ?? [];
      l.push(p);
      byNode.set(n, l);
    }
    for (const l of byNode.values()) l.sort(byCreation);
    const now = Date.now();
    const minReady = ds.spec?.minReadySeconds ?? 0;
    const available = (p: Pod): boolean => isPodAvailable(p, minReady, now);
    const isNew = (p: Pod): boolean => p.metadata?.labels?.[REVISION_HASH_LABEL] === hash;
    const toCreate: string[] = [];
    const eligible: string[] = [];
    for (const node of nodes) {
      const name = node.metadata?.name ?? '';
      const { run, keep } = nodeShouldRunDaemonPod(ds, node);
      const pods = byNode.get(name) ?? [];
      if (run) eligible.push(name);
      if (!run && !keep) {
        toDelete.push(...pods);
        continue;
      }
      if (!run) continue;
      const failed = pods.filter((p) => p.status?.phase === 'Failed');
      for (const p of failed) {
        this.events.record(ds, 'Warning', 'FailedDaemonPod', `Found failed daemon pod ${namespace}/${p.metadata?.name ?? ''} on node ${name}, will try to kill it`);
        toDelete.push(p);
      }
      const running = pods.filter((p) => p.status?.phase !== 'Failed');
      if (running.length === 0) {
        toCreate.push(name);
        continue;
      }
      // more than one: keep the oldest (or, during a surge, the oldest old and the oldest new)
      const keepers = new Set<Pod>();
      const oldest = running[0]!;
      keepers.add(oldest);
      const newest = running.find(isNew);
      if (newest && !isNew(oldest)) keepers.add(newest);
      for (const p of running) if (!keepers.has(p)) toDelete.push(p);
    }
    if (satisfied && !isTerminating(ds)) {
      this.rollingUpdate(ds, eligible, byNode, hash, available, toCreate, toDelete);
      await this.sync(key, ds, hash, toCreate, toDelete);
    }
    await this.writeStatus(ds, this.status(ds, nodes, byNode, hash, available, isNew));
    if (!satisfied) return { requeueAfterMs: Math.max(1000, this.expectations.nextExpiry(key) ?? 1000) };
    if (minReady > 0) {
      const waiting = owned.some((p) => isPodReady(p) && !available(p));
      if (waiting) return { requeueAfterMs: minReady * 1000 };
    }
  }

  /** Adds to `toCreate` / `toDelete` what the update strategy allows this round. */
  private rollingUpdate(ds: DaemonSet, eligible: string[], byNode: Map<string, Pod[]>, hash: string, available: (p: Pod) => boolean, toCreate: string[], toDelete: Pod[]): void {
    const strategy = ds.spec?.updateStrategy;
    if ((strategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') return;
    const desired = eligible.length;
    const surge = scaledValue(strategy?.rollingUpdate?.maxSurge, 0, desired, true);
    let maxUnavailable = scaledValue(strategy?.rollingUpdate?.maxUnavailable, 1, desired, true);
    if (surge === 0 && maxUnavailable === 0) maxUnavailable = 1;
    const deleting = new Set(toDelete);
    const live = (n: string): Pod[] => (byNode.get(n) ?? []).filter((p) => !deleting.has(p) && p.status?.phase !== 'Failed');
    const isNew = (p: Pod): boolean => p.metadata?.labels?.[REVISION_HASH_LABEL] === hash;
    if (surge === 0) {
      let unavailable = eligible.filter((n) => !live(n).some(available)).length;
      const candidates: Pod[] = [];
      for (const n of eligible) {
        const old = live(n).find((p) => !isNew(p));
        if (!old) continue;
        // an old pod that is not serving anyway goes at once
        if (!available(old)) toDelete.push(old);
        else candidates.push(old);
      }
      for (const p of candidates) {
        if (unavailable >= maxUnavailable) break;
        toDelete.push(p);
        unavailable++;
      }
      return;
    }
    let surging = eligible.filter((n) => live(n).some(isNew) && live(n).some((p) => !isNew(p))).length;
    for (const n of eligible) {
      const pods = live(n);
      const old = pods.find((p) => !isNew(p));
      const fresh = pods.find(isNew);
      if (!old) continue;
      if (fresh) {
        if (available(fresh)) toDelete.push(old);
        continue;
      }
      if (!available(old)) toDelete.push(old);
      else if (surging < surge) {
        toCreate.push(n);
        surging++;
      }
    }
  }

  private async sync(key: string, ds: DaemonSet, hash: string, toCreate: string[], toDelete: Pod[]): Promise<void> {
    const namespace = ds.metadata?.namespace ?? '';
    const dsName = ds.metadata?.name ?? '';
    const tpl = ds.spec?.template ?? {};
    const ref = ownerRefTo(ds, 'apps/v1', 'DaemonSet');
    const errors: unknown[] = [];
    const seen = new Set<string>();
    for (const p of toDelete) {
      const name = p.metadata?.name ?? '';
      if (seen.has(name)) continue;
      seen.add(name);
      try {
        await this.ctx.writer.delete(CR.pods, namespace, name, { preconditions: { uid: p.metadata?.uid } });
        this.expectations.expectDeleted(key, name);
        this.events.record(ds, 'Normal', 'SuccessfulDelete', `Deleted pod: ${name}`);
      } catch (err) {
        this.events.record(ds, 'Warning', 'FailedDelete', `Error deleting: ${errorText(err)}`);
        errors.push(err);
      }
    }
    const queue = [...toCreate];
    try {
      await slowStartBatch(queue.length, async () => {
        const node = queue.shift()!;
        const body: Pod = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            generateName: `${dsName}-`,
            namespace,
            labels: { ...(tpl.metadata?.labels ?? {}), [REVISION_HASH_LABEL]: hash, [TEMPLATE_GENERATION_LABEL]: String(ds.metadata?.generation ?? 1) },
            ...(tpl.metadata?.annotations ? { annotations: { ...tpl.metadata.annotations } } : {}),
            ...(tpl.metadata?.finalizers ? { finalizers: [...tpl.metadata.finalizers] } : {}),
            ownerReferences: [ref],
          },
          spec: { ...structuredClone(tpl.spec ?? {}), affinity: pinToNode(tpl.spec?.affinity, node), tolerations: daemonTolerations(tpl.spec) },
        };
        try {
          const created = await this.ctx.writer.create<Pod>(CR.pods, namespace, body);
          this.expectations.expectCreated(key, created.metadata?.name ?? '');
          this.events.record(ds, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata?.name ?? ''}`);
        } catch (err) {
          this.events.record(ds, 'Warning', 'FailedCreate', `Error creating: ${errorText(err)}`);
          throw err;
        }
      });
    } catch (err) {
      errors.push(err);
    }
    if (errors.length) throw errors[0];
  }

  private status(ds: DaemonSet, nodes: Node[], byNode: Map<string, Pod[]>, hash: string, available: (p: Pod) => boolean, isNew: (p: Pod) => boolean): DaemonSetStatus {
    let desired = 0;
    let current = 0;
    let misscheduled = 0;
    let ready = 0;
    let avail = 0;
    let updated = 0;
    for (const node of nodes) {
      const name = node.metadata?.name ?? '';
      const { run } = nodeShouldRunDaemonPod(ds, node);
      const pods = (byNode.get(name) ?? []).filter((p) => p.spec?.nodeName === name);
      if (run) desired++;
      if (pods.length === 0) continue;
      if (!run) {
        misscheduled++;
        continue;
      }
      current++;
      const pod = pods[0]!;
      if (isPodReady(pod)) ready++;
      if (available(pod)) avail++;
      if (pods.some(isNew)) updated++;
    }
    void hash;
    const st: DaemonSetStatus = {
      currentNumberScheduled: current,
      numberMisscheduled: misscheduled,
      desiredNumberScheduled: desired,
      numberReady: ready,
      observedGeneration: ds.metadata?.generation ?? 0,
    };
    if (updated) st.updatedNumberScheduled = updated;
    if (avail) st.numberAvailable = avail;
    if (desired - avail > 0) st.numberUnavailable = desired - avail;
    if (ds.status?.collisionCount !== undefined) st.collisionCount = ds.status.collisionCount;
    if (ds.status?.conditions) st.conditions = ds.status.conditions;
    return st;
  }

  private async writeStatus(ds: DaemonSet, status: DaemonSetStatus): Promise<void> {
    if (deepEqual(status, ds.status ?? {})) return;
    const updated = await this.ctx.writer.updateStatus(CR.daemonSets, { ...ds, metadata: { ...ds.metadata, resourceVersion: undefined }, status });
    this.ds.observeWrite(updated, ds.metadata?.resourceVersion);
  }
}
