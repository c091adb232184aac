// Deployment controller: a Deployment owns one ReplicaSet per pod template (`<name>-<pod-template-hash>`); a template
// change rolls out by RollingUpdate (maxSurge/maxUnavailable) or Recreate; scaling mid-rollout is proportional; old
// ReplicaSets beyond revisionHistoryLimit are deleted; status and the Available/Progressing conditions are worded
// as kube-controller-manager words them, so `kubectl rollout status|undo|history|pause|resume` work.
import type { Informer } from '../../k8s/informers.js';
import type { EventSink } from '../../k8s/events.js';
import { isAlreadyExists } from '../../k8s/client.js';
import { computeHash } from '../common/hash.js';
import { controllerRef, deepEqual, isTerminating, keyOf, ownerRefTo, splitKey } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { Index, ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import { matchesLabelSelector, selectsEverything } from '../common/selectors.js';
import type { Deployment, DeploymentStatus, Pod, ReplicaSet } from '../common/types.js';
import { claim } from './claim.js';
import type { ControllerContext } from './context.js';
import * as U from './deployment-util.js';

export class DeploymentController implements Runnable {
  readonly name = 'deployment';
  private readonly deployments: Informer<Deployment>;
  private readonly rs: Informer<ReplicaSet>;
  private readonly pods: Informer<Pod>;
  private readonly rsByNs: Index<ReplicaSet>;
  private readonly podsByOwner: Index<Pod>;
  private readonly deploymentsByNs: Index<Deployment>;
  private readonly events: EventSink;
  private readonly loop: ReconcileLoop;

  constructor(private readonly ctx: ControllerContext) {
    this.deployments = ctx.informers.get<Deployment>(CR.deployments);
    this.rs = ctx.informers.get<ReplicaSet>(CR.replicaSets);
    this.pods = ctx.informers.get<Pod>(CR.pods);
    this.rsByNs = new Index(this.rs, (r) => [r.metadata?.namespace ?? '']);
    this.deploymentsByNs = new Index(this.deployments, (d) => [d.metadata?.namespace ?? '']);
    this.podsByOwner = new Index(this.pods, (p) => {
      const r = controllerRef(p);
      return r ? [r.uid] : [];
    });
    this.events = ctx.recorder('deployment-controller');
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.deployments, this.rs, this.pods] });
    const enqueue = (d: Deployment): void => this.loop.enqueue(keyOf(d));
    this.deployments.addHandlers({ add: enqueue, update: (_o, d) => enqueue(d), delete: enqueue });
    this.rs.addHandlers({ add: (r) => this.enqueueForRS(r), update: (o, r) => (this.enqueueForRS(r), controllerRef(o)?.uid !== controllerRef(r)?.uid && this.enqueueForRS(o)), delete: (r) => this.enqueueForRS(r) });
    // Recreate waits for the old pods to be gone
    this.pods.addHandlers({ delete: (p) => this.enqueueForPod(p) });
  }

  private enqueueForRS(r: ReplicaSet): void {
    const ns = r.metadata?.namespace ?? '';
    const ref = controllerRef(r);
    if (ref) {
      if (ref.kind === 'Deployment') this.loop.enqueue(`${ns}/${ref.name}`);
      return;
    }
    for (const d of this.deploymentsByNs.get(ns)) if (matchesLabelSelector(d.spec?.selector, r.metadata?.labels)) this.loop.enqueue(keyOf(d));
  }

  private enqueueForPod(p: Pod): void {
    const ref = controllerRef(p);
    if (ref?.kind !== 'ReplicaSet') return;
    const rs = this.rs.get(`${p.metadata?.namespace ?? ''}/${ref.name}`);
    if (rs) this.enqueueForRS(rs);
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    const cached = this.deployments.get(key);
    if (!cached) return;
    const run = new Rollout(this, structuredClone(cached));
    return await run.sync(splitKey(key).namespace);
  }

  // ---- services for Rollout ----

  /** The ReplicaSets the Deployment owns (adopting and releasing as its selector says). */
  async ownedReplicaSets(d: Deployment, namespace: string): Promise<ReplicaSet[]> {
    return await claim<ReplicaSet>(this.rsByNs.get(namespace), {
      owner: d,
      ownerRef: ownerRefTo(d, 'apps/v1', 'Deployment'),
      matches: (r) => matchesLabelSelector(d.spec?.selector, r.metadata?.labels),
      writer: this.ctx.writer,
      resource: CR.replicaSets,
    });
  }

  podsOf(rs: ReplicaSet): Pod[] {
    return this.podsByOwner.get(rs.metadata?.uid ?? '');
  }

  record(d: Deployment, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.events.record(d, type, reason, message);
  }

  get writer(): ControllerContext['writer'] {
    return this.ctx.writer;
  }

  observeRS(rs: ReplicaSet, basedOn: string | undefined): void {
    this.rs.observeWrite(rs, basedOn);
  }

  observeDeployment(d: Deployment, basedOn: string | undefined): void {
    this.deployments.observeWrite(d, basedOn);
  }
}

/** One sync of one Deployment: a working copy of it and its ReplicaSets, updated as writes succeed. */
class Rollout {
  private rsList: ReplicaSet[] = [];

  constructor(
    private readonly c: DeploymentController,
    private d: Deployment,
  ) {}

  private get name(): string {
    return this.d.metadata?.name ?? '';
  }

  async sync(namespace: string): Promise<ReconcileOutcome | void> {
    const d = this.d;
    this.rsList = await this.c.ownedReplicaSets(d, namespace);
    if (isTerminating(d)) {
      await this.syncStatusOnly();
      return;
    }
    if (selectsEverything(d.spec?.selector)) {
      this.c.record(d, 'Warning', 'SelectingAll', 'This deployment is selecting all pods. A non-empty selector is required.');
      if ((d.status?.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) await this.writeStatus({ ...(d.status ?? {}), observedGeneration: d.metadata?.generation ?? 0 });
      return;
    }
    await this.checkPausedConditions();
    if (d.spec?.paused) return await this.scaleOnly();
    if (U.isScalingEvent(d, this.rsList)) return await this.scaleOnly();
    return U.isRollingUpdate(d) ? await this.rolloutRolling() : await this.rolloutRecreate();
  }

  // ---------- ReplicaSets ----------

  /** New and old ReplicaSets; brings the new one's annotations and the Deployment's revision up to date, creating it if asked. */
  private async newAndOld(create: boolean): Promise<{ newRS: ReplicaSet | undefined; oldRSs: ReplicaSet[] }> {
    const { newRS: existing, oldRSs } = U.findNewAndOld(this.d, this.rsList);
    const newRevision = U.maxRevision(oldRSs) + 1;
    if (existing) {
      const annotations = U.rsAnnotations(this.d, existing, newRevision);
      const minReady = this.d.spec?.minReadySeconds ?? 0;
      let rs = existing;
      if (!deepEqual(annotations, existing.metadata?.annotations ?? {}) || (existing.spec?.minReadySeconds ?? 0) !== minReady) {
        rs = await this.updateRS({ ...existing, metadata: { ...existing.metadata, annotations }, spec: { ...existing.spec, minReadySeconds: minReady } });
      }
      await this.setRevision(U.revisionOf(rs));
      if (U.hasProgressDeadline(this.d) && !U.condition(this.d.status, U.PROGRESSING)) {
        const st = structuredClone(this.d.status ?? {});
        U.setCondition(st, U.newCondition(U.PROGRESSING, 'True', U.FOUND_NEW_RS, `Found new replica set "${rs.metadata?.name ?? ''}"`));
        await this.writeStatus(st);
      }
      return { newRS: rs, oldRSs };
    }
    if (!create) return { newRS: undefined, oldRSs };
    const collisionCount = this.d.status?.collisionCount;
    const hash = computeHash(U.normalizeTemplate(this.d.spec?.template ?? {}), collisionCount);
    const template = structuredClone(this.d.spec?.template ?? {});
    template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [U.POD_TEMPLATE_HASH]: hash } };
    const selector = structuredClone(this.d.spec?.selector ?? {});
    selector.matchLabels = { ...(selector.matchLabels ?? {}), [U.POD_TEMPLATE_HASH]: hash };
    const replicas = U.newRSNewReplicas(this.d, oldRSs, undefined);
    const rsName = `${this.name}-${hash}`;
    const body: ReplicaSet = {
      metadata: {
        name: rsName,
        namespace: this.d.metadata?.namespace,
        labels: { ...(template.metadata.labels ?? {}) },
        annotations: U.rsAnnotations(this.d, undefined, newRevision),
        ownerReferences: [ownerRefTo(this.d, 'apps/v1', 'Deployment')],
      },
      spec: { replicas, minReadySeconds: this.d.spec?.minReadySeconds ?? 0, selector, template },
    };
    let rs: ReplicaSet;
    let alreadyExisted = false;
    try {
      rs = await this.c.writer.create<ReplicaSet>(CR.replicaSets, this.d.metadata?.namespace, body);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const found = await this.c.writer.get<ReplicaSet>(CR.replicaSets, this.d.metadata?.namespace, rsName);
      if (found && controllerRef(found)?.uid === this.d.metadata?.uid && U.equalIgnoreHash(found.spec?.template, this.d.spec?.template)) {
        rs = found;
        alreadyExisted = true;
      } else {
        // a hash collision with someone else's ReplicaSet: the next name comes from a bumped collision count
        const st = structuredClone(this.d.status ?? {});
        st.collisionCount = (collisionCount ?? 0) + 1;
        await this.writeStatus(st);
        throw new Error(`replica set ${rsName} exists with a different template; collision count is now ${st.collisionCount}`);
      }
    }
    this.rsList.push(rs);
    if (!alreadyExisted && replicas > 0) this.c.record(this.d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${rsName} from 0 to ${replicas}`);
    await this.setRevision(newRevision);
    if (!alreadyExisted && U.hasProgressDeadline(this.d)) {
      const st = structuredClone(this.d.status ?? {});
      U.setCondition(st, U.newCondition(U.PROGRESSING, 'True', U.NEW_RS_CREATED, `Created new replica set "${rsName}"`));
      await this.writeStatus(st);
    }
    return { newRS: rs, oldRSs };
  }

  private async updateRS(rs: ReplicaSet): Promise<ReplicaSet> {
    const before = rs.metadata?.resourceVersion;
    const updated = await this.c.writer.update<ReplicaSet>(CR.replicaSets, rs);
    this.c.observeRS(updated, before);
    this.rsList = this.rsList.map((r) => (r.metadata?.uid === updated.metadata?.uid ? updated : r));
    return updated;
  }

  /** Sizes a ReplicaSet (and refreshes its desired/max-replicas annotations); returns the updated object. */
  private async scaleRS(rs: ReplicaSet, size: number, direction?: string): Promise<ReplicaSet> {
    const from = U.rsReplicas(rs);
    if (from === size && !U.replicaAnnotationsStale(this.d, rs)) return rs;
    const annotations = {
      ...(rs.metadata?.annotations ?? {}),
      [U.DESIRED_REPLICAS]: String(U.replicasOf(this.d)),
      [U.MAX_REPLICAS]: String(U.replicasOf(this.d) + U.maxSurge(this.d)),
    };
    const updated = await this.updateRS({ ...rs, metadata: { ...rs.metadata, annotations }, spec: { ...rs.spec, replicas: size } });
    if (from !== size) {
      const op = direction || (size > from ? 'up' : 'down');
      this.c.record(this.d, 'Normal', 'ScalingReplicaSet', `Scaled ${op} replica set ${rs.metadata?.name ?? ''} from ${from} to ${size}`);
    }
    return updated;
  }

  private async setRevision(revision: number): Promise<void> {
    const cur = this.d.metadata?.annotations?.[U.REVISION];
    if (cur !== undefined && Number(cur) >= revision) return;
    const before = this.d.metadata?.resourceVersion;
    const next: Deployment = { ...this.d, metadata: { ...this.d.metadata, annotations: { ...(this.d.metadata?.annotations ?? {}), [U.REVISION]: String(revision) } } };
    const updated = await this.c.writer.update<Deployment>(CR.deployments, next);
    this.c.observeDeployment(updated, before);
    this.d = { ...updated, status: this.d.status };
  }

  private async writeStatus(status: DeploymentStatus): Promise<void> {
    if (deepEqual(status, this.d.status ?? {})) return;
    const before = this.d.metadata?.resourceVersion;
    const updated = await this.c.writer.updateStatus<Deployment>(CR.deployments, { ...this.d, metadata: { ...this.d.metadata, resourceVersion: undefined }, status });
    this.c.observeDeployment(updated, before);
    this.d = updated;
  }

  // ---------- strategies ----------

  private async scaleOnly(): Promise<ReconcileOutcome | void> {
    const { newRS, oldRSs } = await this.newAndOld(false);
    await this.scale(newRS, oldRSs);
    const current = U.findNewAndOld(this.d, this.rsList);
    if (this.d.spec?.paused) await this.cleanup(current.oldRSs);
    await this.writeStatus(U.calculateStatus(this.rsList, current.newRS, this.d));
  }

  private async scale(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): Promise<void> {
    const d = this.d;
    const target = U.findActiveOrLatest(newRS, oldRSs);
    if (target) {
      if (U.rsReplicas(target) !== U.replicasOf(d) || U.replicaAnnotationsStale(d, target)) await this.scaleRS(target, U.replicasOf(d));
      return;
    }
    if (U.isSaturated(d, newRS)) {
      for (const old of U.activeRSs(oldRSs)) await this.scaleRS(old, 0);
      return;
    }
    if (U.isRollingUpdate(d)) {
      const active = U.activeRSs([...oldRSs, newRS]);
      const { sizes, direction } = U.proportionalSizes(d, active);
      for (const [rs, size] of sizes) await this.scaleRS(rs, size, direction);
    }
  }

  private async rolloutRolling(): Promise<ReconcileOutcome | void> {
    let { newRS, oldRSs } = await this.newAndOld(true);
    const d = this.d;
    // reconcileNewReplicaSet
    if (newRS && U.rsReplicas(newRS) !== U.replicasOf(d)) {
      const size = U.rsReplicas(newRS) > U.replicasOf(d) ? U.replicasOf(d) : U.newRSNewReplicas(d, [...oldRSs, newRS], newRS);
      if (size !== U.rsReplicas(newRS)) {
        await this.scaleRS(newRS, size);
        return await this.syncRolloutStatus();
      }
    }
    // reconcileOldReplicaSets
    if (await this.scaleDownOld(newRS, oldRSs)) return await this.syncRolloutStatus();
    ({ newRS, oldRSs } = U.findNewAndOld(this.d, this.rsList));
    const status = U.calculateStatus(this.rsList, newRS, this.d);
    if (U.deploymentComplete(this.d, status)) await this.cleanup(oldRSs);
    return await this.syncRolloutStatus();
  }

  /** Scales old ReplicaSets down as far as maxUnavailable allows, unhealthy pods first. True if anything changed. */
  private async scaleDownOld(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): Promise<boolean> {
    const d = this.d;
    const oldCount = U.sumSpec(oldRSs);
    if (oldCount === 0) return false;
    const all = [...oldRSs, ...(newRS ? [newRS] : [])];
    const minAvailable = U.replicasOf(d) - U.maxUnavailable(d);
    const newUnavailable = U.rsReplicas(newRS) - (newRS?.status?.availableReplicas ?? 0);
    const maxScaledDown = U.sumSpec(all) - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return false;
    let changed = 0;
    // cleanupUnhealthyReplicas: pods that are not available go first, whatever the availability budget
    let cleaned = 0;
    const old = [...U.activeRSs(oldRSs)].sort(U.byCreation);
    for (let i = 0; i < old.length && cleaned < maxScaledDown; i++) {
      const rs = old[i]!;
      const unhealthy = U.rsReplicas(rs) - (rs.status?.availableReplicas ?? 0);
      if (unhealthy <= 0) continue;
      const n = Math.min(maxScaledDown - cleaned, unhealthy);
      old[i] = await this.scaleRS(rs, U.rsReplicas(rs) - n);
      cleaned += n;
      changed += n;
    }
    // scaleDownOldReplicaSetsForRollingUpdate: then as many available pods as minAvailable allows
    const allNow = [...old, ...(newRS ? [newRS] : [])];
    const availableNow = U.sumStatus(allNow, 'availableReplicas');
    if (availableNow > minAvailable) {
      const total = availableNow - minAvailable;
      let done = 0;
      for (let i = 0; i < old.length && done < total; i++) {
        const rs = old[i]!;
        if (U.rsReplicas(rs) === 0) continue;
        const n = Math.min(U.rsReplicas(rs), total - done);
        old[i] = await this.scaleRS(rs, U.rsReplicas(rs) - n);
        done += n;
        changed += n;
      }
    }
    return changed > 0;
  }

  private async rolloutRecreate(): Promise<ReconcileOutcome | void> {
    let { newRS, oldRSs } = await this.newAndOld(false);
    let scaledDown = false;
    for (const rs of U.activeRSs(oldRSs)) {
      await this.scaleRS(rs, 0);
      scaledDown = true;
    }
    if (scaledDown) return await this.syncRolloutStatus();
    // the new pods start only once every old one is gone, terminating ones included
    const oldRunning = oldRSs.some((rs) => (rs.status?.replicas ?? 0) > 0 || this.c.podsOf(rs).some((p) => p.status?.phase !== 'Failed' && p.status?.phase !== 'Succeeded'));
    if (oldRunning) return await this.syncRolloutStatus();
    if (!newRS) ({ newRS, oldRSs } = await this.newAndOld(true));
    if (newRS && U.rsReplicas(newRS) !== U.replicasOf(this.d)) await this.scaleRS(newRS, U.replicasOf(this.d));
    ({ newRS, oldRSs } = U.findNewAndOld(this.d, this.rsList));
    if (U.deploymentComplete(this.d, U.calculateStatus(this.rsList, newRS, this.d))) await this.cleanup(oldRSs);
    return await this.syncRolloutStatus();
  }

  /** Deletes old, empty ReplicaSets beyond revisionHistoryLimit, oldest revision first. */
  private async cleanup(oldRSs: ReplicaSet[]): Promise<void> {
    const limit = this.d.spec?.revisionHistoryLimit ?? 10;
    const alive = oldRSs.filter((r) => !isTerminating(r));
    const diff = alive.length - limit;
    if (diff <= 0) return;
    const sorted = [...alive].sort((a, b) => U.revisionOf(a) - U.revisionOf(b) || U.byCreation(a, b));
    let deleted = 0;
    for (const rs of sorted) {
      if (deleted >= diff) break;
      if ((rs.status?.replicas ?? 0) !== 0 || U.rsReplicas(rs) !== 0 || (rs.metadata?.generation ?? 0) > (rs.status?.observedGeneration ?? 0)) continue;
      await this.c.writer.delete(CR.replicaSets, rs.metadata?.namespace, rs.metadata?.name ?? '', { preconditions: { uid: rs.metadata?.uid } });
      this.rsList = this.rsList.filter((r) => r !== rs);
      deleted++;
    }
  }

  // ---------- status ----------

  private async syncStatusOnly(): Promise<void> {
    const { newRS } = await this.newAndOld(false);
    await this.writeStatus(U.calculateStatus(this.rsList, newRS, this.d));
  }

  private async checkPausedConditions(): Promise<void> {
    if (!U.hasProgressDeadline(this.d)) return;
    const cond = U.condition(this.d.status, U.PROGRESSING);
    if (cond?.reason === U.TIMED_OUT) return;
    const paused = !!this.d.spec?.paused;
    const st = structuredClone(this.d.status ?? {});
    if (paused && cond?.reason !== U.PAUSED) U.setCondition(st, U.newCondition(U.PROGRESSING, 'Unknown', U.PAUSED, 'Deployment is paused'));
    else if (!paused && cond?.reason === U.PAUSED) U.setCondition(st, U.newCondition(U.PROGRESSING, 'Unknown', U.RESUMED, 'Deployment is resumed'));
    else return;
    await this.writeStatus(st);
  }

  private async syncRolloutStatus(): Promise<ReconcileOutcome | void> {
    const d = this.d;
    const { newRS } = U.findNewAndOld(d, this.rsList);
    const now = Date.now();
    const st = U.calculateStatus(this.rsList, newRS, d, now);
    if (!U.hasProgressDeadline(d)) U.removeCondition(st, U.PROGRESSING);
    const cur = U.condition(st, U.PROGRESSING);
    const complete = st.replicas === st.updatedReplicas && cur?.reason === U.NEW_RS_AVAILABLE;
    const rsName = newRS?.metadata?.name ?? '';
    if (U.hasProgressDeadline(d) && !complete) {
      if (U.deploymentComplete(d, st)) {
        const msg = newRS ? `ReplicaSet "${rsName}" has successfully progressed.` : `Deployment "${d.metadata?.name ?? ''}" has successfully progressed.`;
        U.setCondition(st, U.newCondition(U.PROGRESSING, 'True', U.NEW_RS_AVAILABLE, msg, now));
      } else if (U.deploymentProgressing(d, st)) {
        const msg = newRS ? `ReplicaSet "${rsName}" is progressing.` : 'Deployment is progressing.';
        const c = U.newCondition(U.PROGRESSING, 'True', U.RS_UPDATED, msg, now);
        // progress refreshes lastUpdateTime even with an unchanged reason (the deadline counts from it)
        if (cur?.status === 'True' && cur.lastTransitionTime) c.lastTransitionTime = cur.lastTransitionTime;
        U.removeCondition(st, U.PROGRESSING);
        U.setCondition(st, c);
      } else if (U.deploymentTimedOut(d, st, now)) {
        const msg = newRS ? `ReplicaSet "${rsName}" has timed out progressing.` : `Deployment "${d.metadata?.name ?? ''}" has timed out progressing.`;
        U.setCondition(st, U.newCondition(U.PROGRESSING, 'False', U.TIMED_OUT, msg, now));
      }
    }
    const failure = this.rsList.map((r) => r.status?.conditions?.find((c) => c.type === U.REPLICA_FAILURE && c.status === 'True')).find((c) => c);
    if (failure) U.setCondition(st, { ...failure, lastUpdateTime: failure.lastTransitionTime });
    else U.removeCondition(st, U.REPLICA_FAILURE);
    await this.writeStatus(st);
    // a rollout that makes no progress must be looked at again when its deadline passes
    const p = U.condition(st, U.PROGRESSING);
    if (U.hasProgressDeadline(d) && p && p.reason !== U.NEW_RS_AVAILABLE && p.reason !== U.TIMED_OUT && !U.deploymentComplete(d, st)) {
      const from = Date.parse(p.lastUpdateTime ?? '') || now;
      const after = from + (d.spec?.progressDeadlineSeconds ?? 600) * 1000 - now + 1000;
      return { requeueAfterMs: Math.max(1000, after) };
    }
  }
}
