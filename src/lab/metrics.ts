// Registers the lab's metrics-server as a cluster registers one: metrics-server's RBAC, its Service (with the
// control-plane host as endpoint) and the v1beta1.metrics.k8s.io APIService, then waits until the API server reports
// the APIService Available (so `kubectl top` works as soon as the first two scrapes are in).
import type { KubeClient } from '../k8s/client.js';
import { metricsServerRegistration } from '../cluster/metrics-server/registration.js';
import { Applier, type ManifestObject } from './apply.js';
import { METRICS_SERVER_PORT } from './components.js';
import type { LabPlan } from './plan.js';
import { waitFor, type Progress } from './wait.js';

interface APIServiceObj {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

export async function registerMetricsServer(client: KubeClient, plan: LabPlan, opts: { timeoutMs: number; progress?: Progress }): Promise<void> {
  const objs = metricsServerRegistration(plan.host.ipv4, METRICS_SERVER_PORT) as unknown as ManifestObject[];
  await new Applier(client).applyAll(objs);
  await waitFor(
    'metrics-server (APIService v1beta1.metrics.k8s.io)',
    async () => {
      const a = await client.get<APIServiceObj>('/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io');
      const c = a.status?.conditions?.find((x) => x.type === 'Available');
      if (c?.status === 'True') return { done: true, state: `Available, kube-system/metrics-server → ${plan.host.ipv4}:${METRICS_SERVER_PORT}` };
      return { done: false, state: c ? `${c.status} (${c.reason ?? ''})` : 'registered' };
    },
    opts,
  );
}
