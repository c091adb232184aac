// The scheduler: binds pending pods (spec.schedulerName default-scheduler, no nodeName) to a node through the
// pods/binding subresource, one pod at a time, spreading pods of one owner over the nodes. A pod that fits nowhere
// stays Pending with PodScheduled=False/Unschedulable and a FailedScheduling event worded as kube-scheduler's;
// node changes and pod deletions try the pending pods again.
import type { Logger } from '../../log.js';
import { errorText, isConflict, isNotFound, type KubeClient } from '../../k8s/client.js';
import { EventRecorder } from '../../k8s/events.js';
import { objectPath } from '../../k8s/resources.js';
import { controllerRef, deepEqual, isTerminating, keyOf, nowRFC3339, splitKey } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { Index, InformerFactory, ReconcileLoop, type ReconcileOutcome } from '../common/runtime.js';
import type { Node, Pod } from '../common/types.js';
import { ObjectWriter } from '../common/writer.js';
import { fitErrorMessage, pickNode, unfitReason, type Candidate } from './filters.js';

export const DEFAULT_SCHEDULER = 'default-scheduler';

export interface SchedulerOptions {
  schedulerName: string;
  /** How often a pod that fits nowhere is tried again even if nothing seems to have changed. */
  retryUnschedulableMs: number;
}

interface Assumed {
  uid: string;
  node: string;
  at: number;
}

const ASSUME_TTL_MS = 30_000;

const counts = (p: Pod): boolean => !isTerminating(p) && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';

export class Scheduler {
  private readonly informers: InformerFactory;
  private readonly writer: ObjectWriter;
  private readonly events: EventRecorder;
  private readonly loop: ReconcileLoop;
  private readonly pods;
  private readonly nodes;
  private readonly podsByNode: Index<Pod>;
  /** Pods we bound that the cache does not show bound yet: counted on their node so the next pod spreads. */
  private readonly assumed = new Map<string, Assumed>();

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly opts: SchedulerOptions,
  ) {
    this.informers = new InformerFactory(client, log);
    this.writer = new ObjectWriter(client);
    this.events = new EventRecorder(client, log, { component: opts.schedulerName });
    this.pods = this.informers.get<Pod>(CR.pods);
    this.nodes = this.informers.get<Node>(CR.nodes);
    this.podsByNode = new Index(this.pods, (p) => [p.spec?.nodeName ?? '']);
    // one pod at a time: each decision sees the previous one
    this.loop = new ReconcileLoop('scheduler', log, (k) => this.reconcile(k), { workers: 1, waitFor: [this.pods, this.nodes] });
    const onPod = (p: Pod): void => {
      if (this.isOurs(p)) this.loop.enqueue(keyOf(p));
    };
    this.pods.addHandlers({
      add: onPod,
      // status-only updates (our own Unschedulable condition among them) change nothing about where a pod fits
      update: (o, p) => {
        if (!deepEqual(o.spec, p.spec) || !deepEqual(o.metadata?.labels, p.metadata?.labels)) onPod(p);
      },
      // a pod going away frees host ports and changes the spread
      delete: (p) => {
        if (p.spec?.nodeName) this.retryPending();
      },
    });
    this.nodes.addHandlers({ add: () => this.retryPending(), update: () => this.retryPending(), delete: () => this.retryPending() });
  }

  private isOurs(p: Pod): boolean {
    return !p.spec?.nodeName && (p.spec?.schedulerName ?? DEFAULT_SCHEDULER) === this.opts.schedulerName && !isTerminating(p);
  }

  private retryPending(): void {
    for (const p of this.podsByNode.get('')) if (this.isOurs(p)) this.loop.enqueue(keyOf(p));
  }

  async start(): Promise<void> {
    this.informers.start();
    await this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    await this.informers.stop();
    await this.events.flush();
  }

  /** Pods on a node as the scheduler counts them: bound there (not finished, not terminating) or assumed there. */
  private podsOn(node: string): Pod[] {
    const out = this.podsByNode.get(node).filter(counts);
    for (const [key, a] of this.assumed) {
      if (a.node !== node) continue;
      const p = this.pods.get(key);
      if (p && !p.spec?.nodeName) out.push(p);
    }
    return out;
  }

  private pruneAssumed(now: number): void {
    for (const [key, a] of this.assumed) {
      const p = this.pods.get(key);
      if (!p || p.metadata?.uid !== a.uid || p.spec?.nodeName || now - a.at > ASSUME_TTL_MS) this.assumed.delete(key);
    }
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    const now = Date.now();
    this.pruneAssumed(now);
    const pod = this.pods.get(key);
    if (!pod || !this.isOurs(pod) || this.assumed.has(key)) return;
    const nodes = this.nodes.list().sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
    const reasons = new Map<string, string>();
    const candidates: Candidate[] = [];
    const owner = controllerRef(pod)?.uid;
    for (const node of nodes) {
      const name = node.metadata?.name ?? '';
      const on = this.podsOn(name);
      const why = unfitReason(pod, node, on);
      if (why) {
        reasons.set(name, why);
        continue;
      }
      candidates.push({ node, sameOwner: owner ? on.filter((p) => controllerRef(p)?.uid === owner).length : 0, total: on.length });
    }
    const chosen = pickNode(candidates);
    if (!chosen) {
      const message = fitErrorMessage(reasons, nodes.length);
      this.log.info({ pod: key, reason: message }, 'unable to schedule pod');
      this.events.record(pod, 'Warning', 'FailedScheduling', message);
      await this.setUnschedulable(pod, message);
      return { requeueAfterMs: this.opts.retryUnschedulableMs };
    }
    const nodeName = chosen.metadata?.name ?? '';
    const { namespace, name } = splitKey(key);
    try {
      await this.client.post(`${objectPath(CR.pods, namespace, name)}/binding`, {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace, uid: pod.metadata?.uid },
        target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
      });
    } catch (err) {
      // bound meanwhile (by someone else or an earlier attempt whose answer we lost), or gone: nothing to do
      if (isConflict(err) || isNotFound(err)) {
        this.log.debug({ pod: key, err: errorText(err) }, 'binding refused; the pod changed meanwhile');
        return;
      }
      throw err;
    }
    this.assumed.set(key, { uid: pod.metadata?.uid ?? '', node: nodeName, at: now });
    this.log.info({ pod: key, node: nodeName }, 'pod scheduled');
    this.events.record(pod, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${nodeName}`);
  }

  private async setUnschedulable(pod: Pod, message: string): Promise<void> {
    const conds = pod.status?.conditions ?? [];
    const cur = conds.find((c) => c.type === 'PodScheduled');
    if (cur && cur.status === 'False' && cur.reason === 'Unschedulable' && cur.message === message) return;
    const next = [
      ...conds.filter((c) => c.type !== 'PodScheduled'),
      { type: 'PodScheduled', status: 'False', lastProbeTime: null, lastTransitionTime: cur?.status === 'False' && cur.lastTransitionTime ? cur.lastTransitionTime : nowRFC3339(), reason: 'Unschedulable', message },
    ];
    try {
      const updated = await this.writer.updateStatus<Pod>(CR.pods, { ...pod, status: { ...(pod.status ?? {}), conditions: next } });
      this.pods.observeWrite(updated, pod.metadata?.resourceVersion);
    } catch (err) {
      // a newer version exists (kubelet, binding): the next reconcile sees it
      if (!isConflict(err) && !isNotFound(err)) throw err;
    }
  }
}
