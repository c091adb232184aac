// Node lifecycle controller: watches kubelet heartbeats (the node's Lease in kube-node-lease and its Ready
// condition). A node not heard from for the grace period gets its kubelet conditions set to Unknown
// ("Kubelet stopped posting node status."), the `node.kubernetes.io/unreachable` taints, and its pods marked not
// ready (so they leave Service endpoints). Nodes are tainted by their Ready condition as upstream's
// TaintNodesByCondition does: not-ready / unreachable (NoSchedule and NoExecute) and unschedulable (NoSchedule).
import type { Informer } from '../../k8s/informers.js';
import { deepEqual, keyOf, nowRFC3339 } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { Index, ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import { sameTaint, TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE } from '../common/taints.js';
import type { Condition, Lease, Node, Pod, Taint } from '../common/types.js';
import type { ControllerContext } from './context.js';

const LEASE_NS = 'kube-node-lease';
/** Conditions the kubelet posts; all turn Unknown when it goes silent. */
const KUBELET_CONDITIONS = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'];
const MANAGED_TAINTS = new Set([TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE]);

export interface NodeLifecycleOptions {
  /** How long a node may stay silent before it is marked Unknown (upstream --node-monitor-grace-period, 40 s). */
  gracePeriodMs: number;
}

interface Probe {
  signature: string;
  /** When we (on our clock) last saw the heartbeat change. */
  observedAt: number;
}

/** The taints the node should carry given its Ready condition and spec.unschedulable (taint timeAdded kept). */
export function desiredTaints(node: Node, nowMs: number): Taint[] {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  const existing = node.spec?.taints ?? [];
  const keep = (t: Taint): Taint => existing.find((e) => sameTaint(e, t)) ?? t;
  const out: Taint[] = [];
  // no Ready condition yet: nothing to go by (the kubelet registers nodes with its own not-ready taint)
  const key = ready?.status === 'Unknown' ? TAINT_UNREACHABLE : ready?.status === 'False' ? TAINT_NOT_READY : undefined;
  if (key) {
    out.push(keep({ key, effect: 'NoSchedule' }));
    out.push(keep({ key, effect: 'NoExecute', timeAdded: nowRFC3339(nowMs) }));
  }
  if (node.spec?.unschedulable) out.push(keep({ key: TAINT_UNSCHEDULABLE, effect: 'NoSchedule' }));
  return [...existing.filter((t) => !MANAGED_TAINTS.has(t.key)), ...out];
}

export class NodeLifecycleController implements Runnable {
  readonly name = 'nodelifecycle';
  private readonly nodes: Informer<Node>;
  private readonly leases: Informer<Lease>;
  private readonly pods: Informer<Pod>;
  private readonly podsByNode: Index<Pod>;
  private readonly probes = new Map<string, Probe>();
  private readonly loop: ReconcileLoop;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly opts: NodeLifecycleOptions,
  ) {
    this.nodes = ctx.informers.get<Node>(CR.nodes);
    this.leases = ctx.informers.get<Lease>(CR.leases, { namespace: LEASE_NS });
    this.pods = ctx.informers.get<Pod>(CR.pods);
    this.podsByNode = new Index(this.pods, (p) => (p.spec?.nodeName ? [p.spec.nodeName] : []));
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: 1, waitFor: [this.nodes, this.leases, this.pods] });
    const enqueue = (n: Node | Lease): void => this.loop.enqueue(n.metadata?.name ?? '');
    this.nodes.addHandlers({ add: enqueue, update: (_o, n) => enqueue(n), delete: enqueue });
    this.leases.addHandlers({ add: enqueue, update: (_o, l) => enqueue(l) });
    // a pod reported ready on a node we consider gone is marked not ready again
    this.pods.addHandlers({ update: (_o, p) => p.spec?.nodeName && this.loop.enqueue(p.spec.nodeName) });
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(name: string): Promise<ReconcileOutcome | void> {
    let node = this.nodes.get(name);
    if (!node) {
      this.probes.delete(name);
      return;
    }
    const now = Date.now();
    const lease = this.leases.get(`${LEASE_NS}/${name}`);
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    // any change of the lease's renewTime or the Ready heartbeat counts as the kubelet being alive
    const signature = `${lease?.spec?.renewTime ?? ''}|${ready?.lastHeartbeatTime ?? ''}|${ready?.status ?? ''}`;
    let probe = this.probes.get(name);
    if (!probe || probe.signature !== signature) {
      probe = { signature, observedAt: now };
      this.probes.set(name, probe);
    }
    const silentFor = now - probe.observedAt;
    if (silentFor >= this.opts.gracePeriodMs && ready?.status !== 'Unknown') {
      node = await this.markUnknown(node, now);
      // our own write changes the signature; it is not a heartbeat
      const r = node.status?.conditions?.find((c) => c.type === 'Ready');
      this.probes.set(name, { signature: `${lease?.spec?.renewTime ?? ''}|${r?.lastHeartbeatTime ?? ''}|${r?.status ?? ''}`, observedAt: probe.observedAt });
    }
    const taints = desiredTaints(node, now);
    if (!deepEqual(taints, node.spec?.taints ?? [])) {
      const updated = await this.ctx.writer.mergePatch<Node>(CR.nodes, undefined, name, { metadata: { resourceVersion: node.metadata?.resourceVersion }, spec: { taints: taints.length ? taints : null } });
      this.nodes.observeWrite(updated, node.metadata?.resourceVersion);
      node = updated;
    }
    const readyNow = node.status?.conditions?.find((c) => c.type === 'Ready');
    if (readyNow?.status === 'Unknown') await this.markPodsNotReady(name);
    else if (silentFor < this.opts.gracePeriodMs) return { requeueAfterMs: this.opts.gracePeriodMs - silentFor + 50 };
  }

  private async markUnknown(node: Node, now: number): Promise<Node> {
    const t = nowRFC3339(now);
    const conds = [...(node.status?.conditions ?? [])];
    const hadReady = conds.some((c) => c.type === 'Ready');
    const next: Condition[] = conds.map((c) =>
      KUBELET_CONDITIONS.includes(c.type) && c.status !== 'Unknown'
        ? { ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: t }
        : c,
    );
    if (!hadReady) {
      for (const type of KUBELET_CONDITIONS) {
        if (!next.some((c) => c.type === type)) next.push({ type, status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.', lastHeartbeatTime: t, lastTransitionTime: t });
      }
    }
    this.ctx.log.info({ controller: this.name, node: keyOf(node), gracePeriodMs: this.opts.gracePeriodMs }, 'node stopped posting status: conditions set to Unknown');
    const updated = await this.ctx.writer.updateStatus<Node>(CR.nodes, { ...node, status: { ...(node.status ?? {}), conditions: next } });
    this.nodes.observeWrite(updated, node.metadata?.resourceVersion);
    return updated;
  }

  /** Pods on an unreachable node stop counting as ready (they leave EndpointSlices), as upstream's MarkPodsNotReady. */
  private async markPodsNotReady(node: string): Promise<void> {
    for (const pod of this.podsByNode.get(node)) {
      const conds = pod.status?.conditions ?? [];
      const ready = conds.find((c) => c.type === 'Ready');
      if (!ready || ready.status === 'False') continue;
      const next = conds.map((c) => (c.type === 'Ready' ? { ...c, status: 'False', lastTransitionTime: nowRFC3339() } : c));
      const updated = await this.ctx.writer.updateStatus<Pod>(CR.pods, { ...pod, status: { ...(pod.status ?? {}), conditions: next } });
      this.pods.observeWrite(updated, pod.metadata?.resourceVersion);
    }
  }
}
