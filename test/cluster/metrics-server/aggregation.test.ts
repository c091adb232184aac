// metrics.k8s.io through the aggregation layer, without a lab: the dev API server (HTTPS, RBAC) proxies to
// metrics-server through the v1beta1.metrics.k8s.io APIService; metrics-server scrapes fake kubelets whose CPU
// counters grow at known rates. The real kubectl's `top` and `get` are the clients.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl } from '../../helpers/devserver.js';
import { startMetricsEnv, TOKENS, type MetricsEnv } from './env.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
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
    await sleep(250);
  }
}

const MiB = 1024 * 1024;

describe('metrics-server behind the aggregation layer', () => {
  let env: MetricsEnv;
  const k = (args: string[], kubeconfig?: string): ReturnType<typeof kubectl> => kubectl(args, kubeconfig ?? env.kubeconfig);

  before(async () => {
    env = await startMetricsEnv({ nodes: 2 });
    const [n1, n2] = env.kubelets;
    await env.srv.api.create(env.srv.api.ctxFor(env.srv.registry.byKey('/namespaces')!), { metadata: { name: 'tms-other' } });
    await env.addPod(n1!, { namespace: 'default', name: 'web-1', containers: [{ name: 'web', cpuMilli: 250, memoryBytes: 50 * MiB }] }, { app: 'web' });
    await env.addPod(n2!, { namespace: 'default', name: 'web-2', containers: [{ name: 'web', cpuMilli: 100, memoryBytes: 30 * MiB }, { name: 'sidecar', cpuMilli: 20, memoryBytes: 10 * MiB }] }, { app: 'web' });
    await env.addPod(n2!, { namespace: 'tms-other', name: 'db-1', containers: [{ name: 'db', cpuMilli: 400, memoryBytes: 200 * MiB }] }, { app: 'db' });
  });
  after(async () => env?.close());

  it('registers the APIService and reports it Available once metrics-server answers its discovery', async () => {
    const out = await eventually('APIService Available', async () => {
      const r = await k(['get', 'apiservice', 'v1beta1.metrics.k8s.io']);
      return /True/.test(r.stdout) ? r.stdout : undefined;
    });
    assert.match(out, /^NAME\s+SERVICE\s+AVAILABLE\s+AGE\n/);
    assert.match(out, /v1beta1\.metrics\.k8s\.io\s+kube-system\/metrics-server\s+True\s+/);
    const all = await k(['get', 'apiservices']);
    assert.match(all.stdout, /v1\.apps\s+Local\s+True/, 'local group versions are registered too');
    assert.match(all.stdout, /v2\.autoscaling\s+Local\s+True/);
    const res = await k(['api-resources', '--api-group=metrics.k8s.io']);
    assert.match(res.stdout, /nodes\s+metrics\.k8s\.io\/v1beta1\s+false\s+NodeMetrics/);
    assert.match(res.stdout, /pods\s+metrics\.k8s\.io\/v1beta1\s+true\s+PodMetrics/);
    const groups = await k(['api-versions']);
    assert.match(groups.stdout, /^metrics\.k8s\.io\/v1beta1$/m);
  });

  it('kubectl top pods shows each pod\'s CPU rate and working set', async () => {
    const out = await eventually('pod metrics', async () => {
      const r = await k(['top', 'pods']);
      return r.code === 0 && /web-2/.test(r.stdout) ? r.stdout : undefined;
    });
    const lines = out.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\s*$/);
    const row = (name: string): [number, number] => {
      const m = new RegExp(`^${name}\\s+(\\d+)m\\s+(\\d+)Mi\\s*$`, 'm').exec(out);
      assert.ok(m, `no row for ${name} in:\n${out}`);
      return [Number(m[1]), Number(m[2])];
    };
    const [c1, m1] = row('web-1');
    assert.ok(c1 >= 240 && c1 <= 262, `web-1 cpu ${c1}m`);
    assert.equal(m1, 50);
    const [c2, m2] = row('web-2');
    assert.ok(c2 >= 114 && c2 <= 128, `web-2 cpu ${c2}m (100m + 20m)`);
    assert.equal(m2, 40);
    assert.doesNotMatch(out, /db-1/, 'other namespaces are not listed without -A');
  });

  it('kubectl top pods -A --containers and -l', async () => {
    const all = await k(['top', 'pods', '-A', '--containers']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^NAMESPACE\s+POD\s+NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)/);
    assert.match(all.stdout, /tms-other\s+db-1\s+db\s+\d+m\s+200Mi/);
    assert.match(all.stdout, /default\s+web-2\s+sidecar\s+\d+m\s+10Mi/);
    const sel = await k(['top', 'pods', '-A', '-l', 'app=db']);
    assert.equal(sel.code, 0, sel.stderr);
    assert.match(sel.stdout, /db-1/);
    assert.doesNotMatch(sel.stdout, /web-/);
    const one = await k(['top', 'pod', 'web-1']);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /web-1/);
    assert.doesNotMatch(one.stdout, /web-2/);
  });

  it('kubectl top nodes shows usage against allocatable', async () => {
    const out = await eventually('node metrics', async () => {
      const r = await k(['top', 'nodes']);
      return r.code === 0 && /tms-node2\s+\d/.test(r.stdout) ? r.stdout : undefined;
    });
    assert.match(out, /^NAME\s+CPU\(cores\)\s+CPU(\(%\)|%)\s+MEMORY\(bytes\)\s+MEMORY(\(%\)|%)/);
    const m = /tms-node2\s+(\d+)m\s+(\d+)%\s+(\d+)Mi\s+(\d+)%/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[1]) >= 505 && Number(m[1]) <= 540, `node2 cpu ${m[1]}m (100+20+400)`);
    assert.equal(Number(m[2]), Math.floor(Number(m[1]) / 20), 'cpu percent of 2 cores (kubectl truncates)');
    assert.equal(Number(m[3]), 240);
    const sel = await k(['top', 'nodes', '-l', 'zone=odd']);
    assert.match(sel.stdout, /tms-node1/);
    assert.doesNotMatch(sel.stdout, /tms-node2/);
  });

  it('serves PodMetrics and NodeMetrics objects, tables and selectors as metrics-server does', async () => {
    const raw = await k(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1']);
    assert.equal(raw.code, 0, raw.stderr);
    const pm = JSON.parse(raw.stdout) as { kind: string; metadata: { labels: Record<string, string> }; window: string; containers: { name: string; usage: { cpu: string; memory: string } }[] };
    assert.equal(pm.kind, 'PodMetrics');
    assert.deepEqual(pm.metadata.labels, { app: 'web' });
    assert.match(pm.window, /^\d+(\.\d+)?m?s$/);
    // a Quantity in canonical form: nanocores, unless the rate is a round number of micro- or millicores ('250m')
    assert.match(pm.containers[0]!.usage.cpu, /^\d+[num]?$/);
    assert.equal(pm.containers[0]!.usage.memory, '50Mi', 'BinarySI in canonical form');
    const table = await k(['get', 'podmetrics', '-A']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAMESPACE\s+NAME\s+CPU\s+MEMORY\s+WINDOW/);
    const fs = await k(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.namespace=tms-other']);
    const items = (JSON.parse(fs.stdout) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name);
    assert.deepEqual(items, ['db-1']);
    const bad = await k(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=spec.nodeName=x']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /field label not supported: spec\.nodeName/);
    const missing = await k(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope']);
    assert.match(missing.stderr, /NotFound|not found/);
    const nm = await k(['get', 'nodemetrics', 'tms-node1', '-o', 'json']);
    assert.equal((JSON.parse(nm.stdout) as { kind: string }).kind, 'NodeMetrics');
  });

  it('RBAC applies to the proxied requests: nobody is refused, a viewer is let through by aggregation of view', async () => {
    const nobody = await k(['top', 'pods'], env.kubeconfigFor(TOKENS.nobody));
    assert.notEqual(nobody.code, 0);
    assert.match(nobody.stderr, /forbidden: User "nobody" cannot list resource "pods" in API group "metrics\.k8s\.io" in the namespace "default"/);
    const viewer = env.kubeconfigFor(TOKENS.viewer);
    await kubectl(['create', 'rolebinding', 'viewer', '--clusterrole=view', '--user=viewer', '-n', 'default'], env.kubeconfig);
    const ok = await eventually('viewer allowed', async () => {
      const r = await k(['top', 'pods'], viewer);
      return r.code === 0 ? r.stdout : undefined;
    });
    assert.match(ok, /web-1/);
    const other = await k(['top', 'pods', '-n', 'tms-other'], viewer);
    assert.notEqual(other.code, 0, 'the binding is only for default');
  });

  it('metrics-server authorizes by delegation: a request straight to it without the front proxy is refused', async () => {
    const https = await import('node:https');
    const code = await new Promise<number>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: env.metricsPort, path: '/apis/metrics.k8s.io/v1beta1/pods', rejectUnauthorized: false, headers: { 'X-Remote-User': 'system:admin', 'X-Remote-Group': 'system:masters' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(code, 403, 'headers without the front-proxy certificate make an anonymous request');
  });

  it('when metrics-server goes away the APIService turns unavailable and kubectl top says so', async () => {
    await env.stopMetrics();
    const out = await eventually('APIService unavailable', async () => {
      const r = await k(['get', 'apiservice', 'v1beta1.metrics.k8s.io']);
      return /False \(FailedDiscoveryCheck\)/.test(r.stdout) ? r.stdout : undefined;
    });
    assert.match(out, /False \(FailedDiscoveryCheck\)/);
    const y = await k(['get', 'apiservice', 'v1beta1.metrics.k8s.io', '-o', 'jsonpath={.status.conditions[0].message}']);
    assert.match(y.stdout, /^failing or missing response from https:\/\/127\.0\.0\.1:\d+\/apis\/metrics\.k8s\.io\/v1beta1: Get "https:\/\/127\.0\.0\.1:\d+\/apis\/metrics\.k8s\.io\/v1beta1": dial tcp 127\.0\.0\.1:\d+: connect: connection refused$/);
    const top = await k(['top', 'pods']);
    assert.notEqual(top.code, 0);
    assert.match(top.stderr, /Metrics API not available|ServiceUnavailable|unable to handle the request/);
    await env.startMetrics();
    await eventually('available again', async () => {
      const r = await k(['get', 'apiservice', 'v1beta1.metrics.k8s.io']);
      return /True/.test(r.stdout) ? true : undefined;
    });
  });
});
