// A small cluster for controller tests: an in-process dev API server, the controller-manager and the scheduler
// in-process, Node objects, and a stand-in for the kubelets that marks bound pods Running and Ready with an IP
// (the lab's tests prove the real kubelet; here only the controllers are under test).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';
import { KubeClient, isConflict, isNotFound, loadKubeConfig } from '../../../src/k8s/client.js';
import { Informer } from '../../../src/k8s/informers.js';
import { createLogger } from '../../../src/log.js';
import { ControllerManager, type ManagerOptions } from '../../../src/cluster/controllers/manager.js';
import { Scheduler } from '../../../src/cluster/scheduler/scheduler.js';
import { CR } from '../../../src/cluster/common/resources.js';
import { ObjectWriter } from '../../../src/cluster/common/writer.js';
import type { Node, Pod } from '../../../src/cluster/common/types.js';
import { nowRFC3339 } from '../../../src/cluster/common/pods.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      last = v;
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''} (last: ${JSON.stringify(last)?.slice(0, 300)})`);
    await sleep(everyMs);
  }
}

export interface ClusterOptions {
  nodes?: number;
  /** Run the stand-in kubelet (default true). */
  kubelet?: boolean;
  manager?: Partial<ManagerOptions>;
  scheduler?: boolean;
  serviceCIDRv6?: string;
}

export interface TestCluster {
  srv: DevApiServer;
  kubeconfig: string;
  client: KubeClient;
  writer: ObjectWriter;
  mgr?: ControllerManager;
  kubelet?: FakeKubelet;
  stop(): Promise<void>;
}

export function nodeObject(name: string, i: number, extra: Partial<Node> = {}): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' }, ...(extra.metadata ?? {}) },
    spec: { podCIDR: `10.92.${i}.0/24`, podCIDRs: [`10.92.${i}.0/24`, `fd00:92:0:${i}::/64`], ...(extra.spec ?? {}) },
    status: {
      addresses: [{ type: 'InternalIP', address: `10.92.100.${i}` }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: nowRFC3339(), lastTransitionTime: nowRFC3339() }],
      ...(extra.status ?? {}),
    },
  };
}

export async function startCluster(o: ClusterOptions = {}): Promise<TestCluster> {
  const srv = await startDevApiServer({ logLevel: 'none', ...(o.serviceCIDRv6 ? { serviceCIDRv6: o.serviceCIDRv6 } : {}) });
  const dir = mkdtempSync(join(tmpdir(), 'tkp-cluster-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, srv.kubeconfig);
  const client = new KubeClient(loadKubeConfig(kubeconfig), { maxSockets: 256 });
  const writer = new ObjectWriter(client);
  const log = createLogger('test', (process.env.TEST_LOG_LEVEL as 'info' | undefined) ?? 'none');
  for (let i = 1; i <= (o.nodes ?? 3); i++) await writer.create(CR.nodes, undefined, nodeObject(`node${i}`, i));
  const mgr = new ControllerManager(client, log, { controllers: ['*'], workers: 2, nodeMonitorGracePeriodMs: 40_000, ...(o.manager ?? {}) });
  await mgr.start();
  const sched = o.scheduler === false ? undefined : new Scheduler(client, log, { schedulerName: 'default-scheduler', retryUnschedulableMs: 60_000 });
  if (sched) void sched.start();
  const kubelet = o.kubelet === false ? undefined : new FakeKubelet(client, writer);
  kubelet?.start();
  return {
    srv,
    kubeconfig,
    client,
    writer,
    mgr,
    ...(kubelet ? { kubelet } : {}),
    stop: async () => {
      await kubelet?.stop();
      await sched?.stop();
      await mgr.stop();
      client.close();
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Marks pods bound to a node Running and Ready (unless listed in `notReady`), with an IPv4 and an IPv6 address
 * derived from the node's number; finishes graceful deletions of pods bound to a node.
 */
export class FakeKubelet {
  private readonly pods: Informer<Pod>;
  private next = new Map<string, number>();
  readonly notReady = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    client: KubeClient,
    private readonly writer: ObjectWriter,
  ) {
    this.pods = new Informer<Pod>(client, CR.pods, createLogger('fake-kubelet', 'none'));
  }

  start(): void {
    this.pods.start();
    this.timer = setInterval(() => void this.tick(), 50);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.pods.stop();
  }

  private ip(node: string): { v4: string; v6: string } {
    const i = Number(/(\d+)$/.exec(node)?.[1] ?? 0);
    const n = (this.next.get(node) ?? 10) + 1;
    this.next.set(node, n);
    return { v4: `10.92.${i}.${n}`, v6: `fd00:92:0:${i}::${n.toString(16)}` };
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const p of this.pods.list()) {
        const node = p.spec?.nodeName;
        if (!node) continue;
        if (p.metadata?.deletionTimestamp) {
          // a graceful deletion: the processes are gone at once, the kubelet confirms with grace 0
          if (!(p.metadata.finalizers ?? []).length) await this.writer.delete(CR.pods, p.metadata.namespace, p.metadata.name ?? '', { gracePeriodSeconds: 0 }).catch(() => undefined);
          continue;
        }
        const name = p.metadata?.name ?? '';
        const wantReady = !this.notReady.has(name);
        const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
        if (p.status?.phase === 'Running' && (ready?.status === 'True') === wantReady) continue;
        const ips = p.status?.podIP ? { v4: p.status.podIP, v6: p.status.podIPs?.[1]?.ip ?? '' } : this.ip(node);
        const t = nowRFC3339();
        const status = {
          ...(p.status ?? {}),
          phase: 'Running',
          podIP: ips.v4,
          podIPs: [{ ip: ips.v4 }, ...(ips.v6 ? [{ ip: ips.v6 }] : [])],
          hostIP: '10.92.100.1',
          conditions: [
            ...(p.status?.conditions ?? []).filter((c) => c.type !== 'Ready'),
            { type: 'Ready', status: wantReady ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: t },
          ],
        };
        try {
          await this.writer.updateStatus(CR.pods, { ...p, status });
        } catch (err) {
          if (!isConflict(err) && !isNotFound(err)) throw err;
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
