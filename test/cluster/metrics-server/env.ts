// Test helper: the dev API server (HTTPS, RBAC, in process), fake kubelets and metrics-server (in process),
// registered through the APIService as in the lab, so the real kubectl can run `top` against it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';
import { createLogger } from '../../../src/log.js';
import { KubeClient, loadKubeConfig } from '../../../src/k8s/client.js';
import { MetricsServer } from '../../../src/cluster/metrics-server/server.js';
import { metricsServerRegistration, METRICS_SERVER_SA } from '../../../src/cluster/metrics-server/registration.js';
import { Applier, type ManifestObject } from '../../../src/lab/apply.js';
import { FakeKubelet, type FakePod } from './fake-kubelet.js';

type Obj = Record<string, unknown>;

export interface MetricsEnv {
  dir: string;
  srv: DevApiServer;
  /** admin kubeconfig path */
  kubeconfig: string;
  kubelets: FakeKubelet[];
  metrics: MetricsServer | undefined;
  metricsPort: number;
  /** a kubeconfig for a bearer token of tokens.csv */
  kubeconfigFor(token: string): string;
  apply(o: Obj): Promise<void>;
  addPod(node: FakeKubelet, pod: FakePod, labels: Record<string, string>, spec?: Obj): Promise<void>;
  startMetrics(): Promise<void>;
  stopMetrics(): Promise<void>;
  close(): Promise<void>;
}

export const TOKENS = {
  metricsServer: 'tms-metrics-server-token',
  nobody: 'tms-nobody-token',
  viewer: 'tms-viewer-token',
};

export async function startMetricsEnv(opts: { nodes?: number; resolutionMs?: number } = {}): Promise<MetricsEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'tms-'));
  const tokens = join(dir, 'tokens.csv');
  writeFileSync(
    tokens,
    [
      `${TOKENS.metricsServer},${METRICS_SERVER_SA},ms,"system:serviceaccounts,system:serviceaccounts:kube-system"`,
      `${TOKENS.nobody},nobody,nobody`,
      `${TOKENS.viewer},viewer,viewer`,
    ].join('\n') + '\n',
  );
  const kubeconfig = join(dir, 'admin.kubeconfig');
  const srv = await startDevApiServer({
    certDir: join(dir, 'pki'),
    securePort: 0,
    bindAddresses: ['127.0.0.1'],
    tokenAuthFile: tokens,
    kubeconfigOut: kubeconfig,
    logLevel: 'none',
    aggregatorCheckIntervalMs: 2000,
  });
  const kubeconfigFor = (token: string): string => {
    const path = join(dir, `${token}.kubeconfig`);
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${srv.url}", certificate-authority-data: ${Buffer.from(srv.caCert!).toString('base64')}}}]\nusers: [{name: u, user: {token: "${token}"}}]\ncontexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: c\n`,
      { mode: 0o600 },
    );
    return path;
  };
  const admin = new KubeClient(loadKubeConfig(kubeconfig));
  const applier = new Applier(admin, 'test');
  const apply = (o: Obj): Promise<void> => applier.apply(o as unknown as ManifestObject);
  const kubelets: FakeKubelet[] = [];
  for (let i = 1; i <= (opts.nodes ?? 1); i++) {
    const k = new FakeKubelet(`tms-node${i}`);
    const port = await k.listen();
    kubelets.push(k);
    await admin.post('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: k.nodeName, labels: { 'kubernetes.io/hostname': k.nodeName, zone: i % 2 ? 'odd' : 'even' } },
      status: {
        addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: k.nodeName }],
        daemonEndpoints: { kubeletEndpoint: { Port: port } },
        capacity: { cpu: '2', memory: '4Gi', pods: '110' },
        allocatable: { cpu: '2', memory: '4Gi', pods: '110' },
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }],
      },
    });
  }
  const log = createLogger('metrics-server', 'none');
  const env: MetricsEnv = {
    dir,
    srv,
    kubeconfig,
    kubelets,
    metrics: undefined,
    metricsPort: 0,
    kubeconfigFor,
    apply,
    async addPod(node, pod, labels, spec) {
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      await admin.post(`/api/v1/namespaces/${pod.namespace}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: pod.name, namespace: pod.namespace, labels },
        spec: spec ?? { nodeName: node.nodeName, containers: pod.containers.map((c) => ({ name: c.name, image: 'nginx' })) },
      });
      const current = await admin.get<Obj>(`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`);
      await admin.put(`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}/status`, {
        ...current,
        status: {
          phase: 'Running',
          startTime: new Date(Date.now() - 600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date(Date.now() - 590_000).toISOString().replace(/\.\d+Z$/, 'Z') }],
          containerStatuses: pod.containers.map((c) => ({ name: c.name, ready: true, restartCount: 0, image: 'nginx', imageID: '', state: { running: { startedAt: now } } })),
        },
      });
      node.pods.push(pod);
    },
    async startMetrics() {
      const client = new KubeClient(loadKubeConfig(kubeconfigFor(TOKENS.metricsServer)));
      const ms = new MetricsServer(client, log, {
        bindAddress: '127.0.0.1',
        securePort: env.metricsPort,
        certDir: join(dir, 'ms-certs'),
        metricResolutionMs: opts.resolutionMs ?? 1000,
        scraper: { addressTypes: ['InternalIP'], port: 10250, useNodeStatusPort: true, scheme: 'http', insecureTLS: false, timeoutMs: 5000 },
        alwaysAllowPaths: ['/healthz', '/readyz', '/livez'],
      });
      env.metricsPort = await ms.start();
      env.metrics = ms;
    },
    async stopMetrics() {
      await env.metrics?.stop();
      env.metrics = undefined;
    },
    async close() {
      await env.stopMetrics();
      for (const k of kubelets) await k.close();
      admin.close();
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    // its RBAC first, as an install applies it before the Deployment's pod starts
    const isRbac = (o: Obj): boolean => String(o.apiVersion).startsWith('rbac.') || o.kind === 'ServiceAccount';
    for (const o of metricsServerRegistration('127.0.0.1', 1).filter(isRbac)) await apply(o);
    await env.startMetrics();
    for (const o of metricsServerRegistration('127.0.0.1', env.metricsPort).filter((o) => !isRbac(o))) await apply(o);
  } catch (err) {
    await env.close();
    throw err;
  }
  return env;
}
