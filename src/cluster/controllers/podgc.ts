// Pod garbage collector (kube-controller-manager's "pod-garbage-collector"): pods bound to a node that no longer
// exists are deleted, once the node has been missing for a quarantine (upstream: 40 s, so that a node object that is
// only late in the cache is not taken for gone) and the API server confirms it. No kubelet will ever run or stop such pods, so their deletion is forced (grace period 0)
// after a DisruptionTarget condition says why, as upstream does. Without this a DaemonSet's pod on a removed node
// (`lab node remove`) would stay listed for ever.
import type { Informer } from '../../k8s/informers.js';
import { keyOf, nowRFC3339 } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { Index, ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import type { Node, Pod } from '../common/types.js';
import type { ControllerContext } from './context.js';

export interface PodGCOptions {
  /** How long a node must be missing before its pods go (upstream's quarantineTime, 40 s). */
  quarantineMs: number;
}

export class PodGCController implements Runnable {
  readonly name = 'podgc';
  private readonly nodes: Informer<Node>;
  private readonly pods: Informer<Pod>;
  private readonly podsByNode: Index<Pod>;
  private readonly missingSince = new Map<string, number>();
  private readonly loop: ReconcileLoop;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly opts: PodGCOptions,
  ) {
    this.nodes = ctx.informers.get<Node>(CR.nodes);
    this.pods = ctx.informers.get<Pod>(CR.pods);
    this.podsByNode = new Index(this.pods, (p) => (p.spec?.nodeName ? [p.spec.nodeName] : []));
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: 1, waitFor: [this.nodes, this.pods] });
    // Keys are node names: the pods of a node are looked at together.
    const onPod = (p: Pod): void => this.loop.enqueue(p.spec?.nodeName ?? '');
    this.pods.addHandlers({ add: onPod, update: (_o, p) => onPod(p) });
    this.nodes.addHandlers({ delete: (n) => this.loop.enqueue(n.metadata?.name ?? '') });
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(node: string): Promise<ReconcileOutcome | void> {
    if (this.nodes.get(node) || this.podsByNode.count(node) === 0) {
      this.missingSince.delete(node);
      return;
    }
    const now = Date.now();
    const since = this.missingSince.get(node) ?? now;
    this.missingSince.set(node, since);
    if (now - since < this.opts.quarantineMs) return { requeueAfterMs: this.opts.quarantineMs - (now - since) + 50 };
    // The cache may lag behind a node just created: only the API server's answer counts.
    if (await this.ctx.writer.get<Node>(CR.nodes, undefined, node)) {
      this.missingSince.delete(node);
      return;
    }
    for (const pod of this.podsByNode.get(node)) await this.forceDelete(pod, `node "${node}" no longer exists`);
    this.missingSince.delete(node);
  }

  /** Upstream's DisruptionTarget condition (reason DeletionByPodGC), then a DELETE with grace period 0. */
  private async forceDelete(pod: Pod, why: string): Promise<void> {
    const ns = pod.metadata?.namespace;
    const name = pod.metadata?.name ?? '';
    this.ctx.log.info({ controller: this.name, pod: keyOf(pod), node: pod.spec?.nodeName, why }, 'deleting the orphaned pod');
    if (!pod.metadata?.deletionTimestamp && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
      const conditions = [
        ...(pod.status?.conditions ?? []).filter((c) => c.type !== 'DisruptionTarget'),
        { type: 'DisruptionTarget', status: 'True', reason: 'DeletionByPodGC', message: `PodGC: ${why}`, lastTransitionTime: nowRFC3339() },
      ];
      try {
        await this.ctx.writer.mergePatch<Pod>(CR.pods, ns, name, { status: { phase: 'Failed', conditions } }, 'status');
      } catch (err) {
        // The deletion matters, the condition is information: a pod gone meanwhile or a refused status write stops nothing.
        this.ctx.log.debug({ controller: this.name, pod: keyOf(pod), err: (err as Error).message }, 'cannot set DisruptionTarget');
      }
    }
    await this.ctx.writer.delete(CR.pods, ns, name, { gracePeriodSeconds: 0, ...(pod.metadata?.uid ? { preconditions: { uid: pod.metadata.uid } } : {}) });
  }
}
