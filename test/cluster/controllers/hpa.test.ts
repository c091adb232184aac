// The HorizontalPodAutoscaler controller against the dev API server (HTTPS, RBAC, aggregation) and metrics-server,
// without a lab: a stand-in kubelet runs the Deployment's pods (Running, Ready) and reports their CPU through a fake
// Summary API at rates the test sets. The controller-manager runs the deployment, replicaset and HPA controllers with a
// 1 s sync period and a short downscale window. The real kubectl is the client (autoscale, get hpa, describe).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl } from '../../helpers/devserver.js';
import { startMetricsEnv, type MetricsEnv } from '../metrics-server/env.js';
import { KubeClient, loadKubeConfig } from '../../../src/k8s/client.js';
import { ControllerManager } from '../../../src/cluster/controllers/manager.js';
import { createLogger } from '../../../src/log.js';
import type { FakeKubelet } from '../metrics-server/fake-kubelet.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rfc = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(300);
  }
}

interface PodObj {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; deletionTimestamp?: string; resourceVersion?: string };
  spec: { nodeName?: string; containers: { name: string }[] };
  status?: { phase?: string };
}

/** Runs pods as a kubelet would report them (bound, Running, Ready) and feeds their CPU to the fake Summary API. */
class PodRunner {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  /** millicores per container, by the pod's `app` label */
  cpu = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly kubelet: FakeKubelet,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), 300);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const pods = (await this.client.get<{ items: PodObj[] }>('/api/v1/pods')).items.filter((p) => p.metadata.namespace.startsWith('thp-'));
      for (const p of pods) {
        const path = `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`;
        if (p.metadata.deletionTimestamp) {
          await this.client.delete(path, { body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 } }).catch(() => undefined);
          continue;
        }
        if (!p.spec.nodeName) {
          await this.client.post(`${path}/binding`, { apiVersion: 'v1', kind: 'Binding', metadata: { name: p.metadata.name }, target: { kind: 'Node', name: this.kubelet.nodeName } }).catch(() => undefined);
          continue;
        }
        if (p.status?.phase !== 'Running') {
          const now = Date.now();
          await this.client
            .request('PATCH', `${path}/status`, {
              contentType: 'application/merge-patch+json',
              body: {
                status: {
                  phase: 'Running',
                  startTime: rfc(now),
                  conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: rfc(now) }],
                  containerStatuses: p.spec.containers.map((c) => ({ name: c.name, ready: true, restartCount: 0, image: 'nginx', imageID: '', state: { running: { startedAt: rfc(now) } } })),
                },
              },
            })
            .catch(() => undefined);
        }
      }
      const live = pods.filter((p) => !p.metadata.deletionTimestamp && p.spec.nodeName);
      this.kubelet.pods = live.map((p) => ({
        namespace: p.metadata.namespace,
        name: p.metadata.name,
        containers: p.spec.containers.map((c) => ({ name: c.name, cpuMilli: this.cpu.get(p.metadata.labels?.app ?? '') ?? 1, memoryBytes: 8 << 20 })),
      }));
    } catch {
      /* next tick */
    } finally {
      this.busy = false;
    }
  }
}

describe('HorizontalPodAutoscaler controller', () => {
  let env: MetricsEnv;
  let admin: KubeClient;
  let mgr: ControllerManager;
  let runner: PodRunner;
  const k = (args: string[]): ReturnType<typeof kubectl> => kubectl(args, env.kubeconfig);
  const kOk = async (args: string[]): Promise<string> => {
    const r = await k(args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  interface HPAJson {
    status: { currentReplicas?: number; desiredReplicas: number; lastScaleTime?: string; currentMetrics: { type: string; resource?: { name: string; current: { averageUtilization?: number; averageValue?: string } } }[] | null; conditions?: { type: string; status: string; reason: string; message: string }[] };
  }
  const hpa = async (ns: string, name: string): Promise<HPAJson> => admin.get<HPAJson>(`/apis/autoscaling/v2/namespaces/${ns}/horizontalpodautoscalers/${name}`);
  const cond = (h: HPAJson, type: string): { status: string; reason: string; message: string } | undefined => h.status.conditions?.find((c) => c.type === type);
  const replicas = async (ns: string, name: string): Promise<number> => (await admin.get<{ spec: { replicas: number } }>(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`)).spec.replicas;

  before(async () => {
    env = await startMetricsEnv({ nodes: 1 });
    admin = new KubeClient(loadKubeConfig(env.kubeconfig));
    for (const ns of ['thp-web', 'thp-noreq']) await admin.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    runner = new PodRunner(admin, env.kubelets[0]!);
    runner.start();
    mgr = new ControllerManager(admin, createLogger('controller-manager', 'none'), {
      controllers: ['deployment', 'replicaset', 'horizontalpodautoscaling'],
      workers: 2,
      nodeMonitorGracePeriodMs: 40_000,
      hpa: { syncPeriodMs: 1000, downscaleStabilizationMs: 4000, cpuInitializationPeriodMs: 300_000, initialReadinessDelayMs: 30_000, tolerance: 0.1 },
    });
    await mgr.start();
  });

  after(async () => {
    runner?.stop();
    await mgr?.stop();
    admin?.close();
    await env?.close();
  });

  it('scales a loaded Deployment up (cpu 180% of 100m against 50%), reports status, conditions and events like upstream', async () => {
    runner.cpu.set('web', 180);
    await kOk(['create', 'deployment', 'web', '-n', 'thp-web', '--image=nginx']);
    await kOk(['set', 'resources', 'deployment', 'web', '-n', 'thp-web', '--requests=cpu=100m', '--limits=cpu=500m']);
    await kOk(['autoscale', 'deployment', 'web', '-n', 'thp-web', '--min=1', '--max=6', '--cpu-percent=50']);
    const up = await eventually('first rescale', async () => {
      const h = await hpa('thp-web', 'web');
      return h.status.lastScaleTime ? h : undefined;
    });
    // 180 % against 50 %: ceil(3.6 × 1 pod) = 4 (any rate from 151 % to 200 % gives 4, so the rate's jitter does not
    // matter), and the legacy limit max(2 × 1, 4) allows 4
    assert.equal(up.status.desiredReplicas, 4);
    assert.equal(up.status.currentReplicas, 1);
    const m = up.status.currentMetrics?.[0];
    assert.equal(m?.type, 'Resource');
    assert.equal(m?.resource?.name, 'cpu');
    assert.ok((m?.resource?.current.averageUtilization ?? 0) >= 160 && (m?.resource?.current.averageUtilization ?? 0) <= 200, JSON.stringify(m));
    const pick = (c: { status: string; reason: string; message: string } | undefined) => c && { status: c.status, reason: c.reason, message: c.message };
    assert.deepEqual(pick(cond(up, 'AbleToScale')), { status: 'True', reason: 'SucceededRescale', message: 'the HPA controller was able to update the target scale to 4' });
    assert.deepEqual(pick(cond(up, 'ScalingActive')), { status: 'True', reason: 'ValidMetricFound', message: 'the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)' });
    assert.equal(cond(up, 'ScalingLimited')?.reason, 'DesiredWithinRange');
    assert.equal(await replicas('thp-web', 'web'), 4);
    // events are sent in the background: the status write may be seen first
    const rescaled = /^SuccessfulRescale\|New size: 4; reason: cpu resource utilization \(percentage of request\) above target\|horizontal-pod-autoscaler$/m;
    await eventually('the SuccessfulRescale event', async () => {
      const ev = await kOk(['get', 'events', '-n', 'thp-web', '--field-selector', 'involvedObject.kind=HorizontalPodAutoscaler', '-o', 'jsonpath={range .items[*]}{.reason}|{.message}|{.source.component}{"\\n"}{end}']);
      return rescaled.test(ev) ? ev : undefined;
    }, 30_000);
  });

  it('kubectl get hpa shows TARGETS, MINPODS, MAXPODS, REPLICAS; describe shows metrics, conditions and events', async () => {
    const table = await kOk(['get', 'hpa', '-n', 'thp-web']);
    assert.match(table, /^NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE\n/);
    assert.match(table, /^web\s+Deployment\/web\s+cpu: \d+%\/50%\s+1\s+6\s+[1-6]\s+/m);
    const d = await kOk(['describe', 'hpa', 'web', '-n', 'thp-web']);
    assert.match(d, /Reference:\s+Deployment\/web/);
    assert.match(d, /resource cpu on pods\s+\(as a percentage of request\):\s+\d+% \(\d+m\) \/ 50%/);
    assert.match(d, /Deployment pods:\s+[1-6] current \/ [4-6] desired/);
    assert.match(d, /AbleToScale\s+True\s+\w+/);
    assert.match(d, /ScalingActive\s+True\s+ValidMetricFound\s+the HPA was able to successfully calculate a replica count from cpu resource utilization \(percentage of request\)/);
    assert.match(d, /Normal\s+SuccessfulRescale\s+.*horizontal-pod-autoscaler\s+New size: 4; reason: cpu resource utilization \(percentage of request\) above target/);
    // the same object through autoscaling/v1, with the round-trip annotations kubectl shows
    const v1 = JSON.parse(await kOk(['get', 'horizontalpodautoscalers.v1.autoscaling', 'web', '-n', 'thp-web', '-o', 'json'])) as {
      apiVersion: string;
      metadata: { annotations?: Record<string, string> };
      spec: { targetCPUUtilizationPercentage: number };
      status: { currentCPUUtilizationPercentage?: number; currentReplicas: number };
    };
    assert.equal(v1.apiVersion, 'autoscaling/v1');
    assert.equal(v1.spec.targetCPUUtilizationPercentage, 50);
    assert.equal(typeof v1.status.currentCPUUtilizationPercentage, 'number');
    const conds = JSON.parse(v1.metadata.annotations?.['autoscaling.alpha.kubernetes.io/conditions'] ?? '[]') as { type: string }[];
    assert.deepEqual(conds.map((c) => c.type).sort(), ['AbleToScale', 'ScalingActive', 'ScalingLimited']);
    const cur = JSON.parse(v1.metadata.annotations?.['autoscaling.alpha.kubernetes.io/current-metrics'] ?? '[]') as { resource: { name: string; currentAverageValue: string } }[];
    assert.equal(cur[0]?.resource.name, 'cpu');
    assert.match(cur[0]!.resource.currentAverageValue, /^\d+m$/);
  });

  it('keeps scaling while the load holds, within maxReplicas (TooManyReplicas)', async () => {
    const h = await eventually('6 replicas', async () => {
      const x = await hpa('thp-web', 'web');
      return x.status.desiredReplicas === 6 && cond(x, 'ScalingLimited')?.status === 'True' ? x : undefined;
    });
    assert.deepEqual({ reason: cond(h, 'ScalingLimited')?.reason, message: cond(h, 'ScalingLimited')?.message }, { reason: 'TooManyReplicas', message: 'the desired replica count is more than the maximum replica count' });
    assert.equal(await replicas('thp-web', 'web'), 6);
  });

  it('scales down once the load is gone and the (shortened) stabilization window has passed', async () => {
    runner.cpu.set('web', 5);
    const stabilized = await eventually('scale-down held by the window', async () => {
      const x = await hpa('thp-web', 'web');
      return cond(x, 'AbleToScale')?.reason === 'ScaleDownStabilized' ? x : undefined;
    }, 30_000).catch(() => undefined);
    // (seen when a sync falls inside the 4 s window; on a slow machine the window may pass between two syncs)
    if (stabilized) assert.equal(cond(stabilized, 'AbleToScale')?.message, 'recent recommendations were higher than current one, applying the highest recent recommendation');
    const down = await eventually('back to 1 replica', async () => {
      const x = await hpa('thp-web', 'web');
      return x.status.desiredReplicas === 1 && (await replicas('thp-web', 'web')) === 1 ? x : undefined;
    });
    // 5 % of the request is a tenth of the target: ceil(0.1 × 6) = 1, the minimum itself
    assert.equal(cond(down, 'ScalingLimited')?.reason, 'DesiredWithinRange');
    await eventually('the SuccessfulRescale event of the scale down', async () => {
      const ev = await kOk(['get', 'events', '-n', 'thp-web', '--field-selector', 'reason=SuccessfulRescale', '-o', 'jsonpath={range .items[*]}{.message}{"\\n"}{end}']);
      return /^New size: 1; reason: All metrics below target$/m.test(ev) ? ev : undefined;
    }, 30_000);
  });

  it('an HPA on a Deployment without CPU requests reports what Kubernetes reports', async () => {
    runner.cpu.set('plain', 50);
    await kOk(['create', 'deployment', 'plain', '-n', 'thp-noreq', '--image=nginx']);
    await kOk(['autoscale', 'deployment', 'plain', '-n', 'thp-noreq', '--min=1', '--max=3', '--cpu-percent=50']);
    // (until metrics-server has two scrapes of the new pod, the reason is that no metrics were returned)
    const h = await eventually('ScalingActive False for the missing request', async () => {
      const x = await hpa('thp-noreq', 'plain');
      return cond(x, 'ScalingActive')?.status === 'False' && /missing request/.test(cond(x, 'ScalingActive')?.message ?? '') ? x : undefined;
    });
    const sa = cond(h, 'ScalingActive')!;
    assert.equal(sa.reason, 'FailedGetResourceMetric');
    assert.match(sa.message, /^the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container nginx of Pod plain-[a-z0-9]+-[a-z0-9]+$/);
    assert.equal(cond(h, 'AbleToScale')?.reason, 'SucceededGetScale');
    assert.deepEqual(h.status.currentMetrics, [{ type: '' }]);
    const table = await kOk(['get', 'hpa', 'plain', '-n', 'thp-noreq']);
    assert.match(table, /plain\s+Deployment\/plain\s+cpu: <unknown>\/50%\s+1\s+3\s+1\s+/);
    const ev = await eventually('both warnings', async () => {
      const out = await kOk(['get', 'events', '-n', 'thp-noreq', '-o', 'jsonpath={range .items[*]}{.type}|{.reason}|{.message}{"\\n"}{end}']);
      return /FailedComputeMetricsReplicas/.test(out) && /FailedGetResourceMetric/.test(out) ? out : undefined;
    });
    assert.match(ev, /^Warning\|FailedGetResourceMetric\|failed to get cpu utilization: missing request for cpu in container nginx of Pod plain-\S+$/m);
    assert.match(ev, /^Warning\|FailedComputeMetricsReplicas\|invalid metrics \(1 invalid out of 1\), first error is: failed to get cpu resource metric value: failed to get cpu utilization: missing request for cpu in container nginx of Pod plain-\S+$/m);
    const d = await kOk(['describe', 'hpa', 'plain', '-n', 'thp-noreq']);
    assert.match(d, /ScalingActive\s+False\s+FailedGetResourceMetric\s+the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container nginx/);
  });

  it('a scale target that does not exist: AbleToScale False, FailedGetScale', async () => {
    await kOk(['autoscale', 'deployment', 'plain', '-n', 'thp-noreq', '--name', 'ghost', '--min=1', '--max=3', '--cpu-percent=50']);
    await admin.request('PATCH', '/apis/autoscaling/v2/namespaces/thp-noreq/horizontalpodautoscalers/ghost', { contentType: 'application/merge-patch+json', body: { spec: { scaleTargetRef: { name: 'nope' } } } });
    const h = await eventually('FailedGetScale', async () => {
      const x = await hpa('thp-noreq', 'ghost');
      return cond(x, 'AbleToScale')?.reason === 'FailedGetScale' ? x : undefined;
    });
    assert.equal(cond(h, 'AbleToScale')?.message, 'the HPA controller was unable to get the target\'s current scale: deployments.apps "nope" not found');
  });
});
