// AccessReview (SelfSubjectAccessReview with a list-probe fallback) and FeatureGates (one warning and a gauge per
// feature turned off), against the dev API server with RBAC on and a user holding a few rules.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { startDevApiServer, type DevApiServer } from '../../src/cluster/apiserver/server.js';
import { AccessReview, describeAccess } from '../../src/k8s/access.js';
import { ApiError, KubeClient, loadKubeConfig } from '../../src/k8s/client.js';
import { FeatureGates } from '../../src/k8s/features.js';
import { R } from '../../src/k8s/resources.js';
import { createLogger } from '../../src/log.js';

let srv: DevApiServer;
let dir: string;
let alice: KubeClient;
const quiet = createLogger('test', 'none');

function tokenClient(server: string, token: string, name: string): KubeClient {
  const file = join(dir, `${name}.kubeconfig`);
  writeFileSync(file, `apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: "${server}"}}]\nusers: [{name: u, user: {token: ${token}}}]\n`);
  return new KubeClient(loadKubeConfig(file));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'access-'));
  writeFileSync(join(dir, 'tokens.csv'), 'tok-alice,alice,alice-uid,""\n');
  srv = await startDevApiServer({ port: 0, authorizationMode: 'RBAC', tokenAuthFile: join(dir, 'tokens.csv'), logLevel: 'none' });
  const admin = tokenClient(srv.url, 'metallb-dev-token', 'admin');
  await admin.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mlb' } });
  // MetalLB's controller shape: nodes list only, services/status update only, one named webhook configuration.
  await admin.post('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'alice' },
    rules: [
      { apiGroups: [''], resources: ['nodes'], verbs: ['list'] },
      { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['services/status'], verbs: ['update'] },
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['validatingwebhookconfigurations'], resourceNames: ['mine'], verbs: ['get', 'update'] },
    ],
  });
  await admin.post('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'alice' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'alice' },
    subjects: [{ kind: 'User', name: 'alice' }],
  });
  await admin.post('/apis/rbac.authorization.k8s.io/v1/namespaces/mlb/roles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'alice', namespace: 'mlb' },
    rules: [{ apiGroups: ['metallb.io'], resources: ['ipaddresspools'], verbs: ['get', 'list', 'watch'] }],
  });
  await admin.post('/apis/rbac.authorization.k8s.io/v1/namespaces/mlb/rolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'alice', namespace: 'mlb' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'alice' },
    subjects: [{ kind: 'User', name: 'alice' }],
  });
  admin.close();
  alice = tokenClient(srv.url, 'tok-alice', 'alice');
});
after(async () => {
  alice?.close();
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('can: verbs, subresources, resourceNames and namespaces as RBAC decides them', async () => {
  const a = new AccessReview(alice, quiet);
  assert.equal(await a.can({ verb: 'update', resource: R.services, subresource: 'status', namespace: 'default' }), true);
  assert.equal(await a.can({ verb: 'patch', resource: R.services, subresource: 'status', namespace: 'default' }), false);
  assert.equal(await a.can({ verb: 'patch', resource: R.services, namespace: 'default' }), false);
  assert.equal(await a.can({ verb: 'list', resource: R.nodes }), true);
  assert.equal(await a.can({ verb: 'watch', resource: R.nodes }), false);
  assert.equal(await a.can({ verb: 'update', resource: R.validatingWebhookConfigurations, name: 'mine' }), true);
  assert.equal(await a.can({ verb: 'update', resource: R.validatingWebhookConfigurations, name: 'theirs' }), false);
  assert.equal(await a.can({ verb: 'list', resource: R.ipAddressPools, namespace: 'mlb' }), true);
  assert.equal(await a.can({ verb: 'list', resource: R.ipAddressPools, namespace: 'default' }), false);
  assert.equal(await a.canAll([{ verb: 'list', resource: R.nodes }, { verb: 'watch', resource: R.nodes }]), false);
  const refused = await a.firstRefused([{ verb: 'list', resource: R.nodes }, { verb: 'watch', resource: R.nodes }]);
  assert.equal(refused && describeAccess(refused), 'watch nodes');
  assert.equal(describeAccess({ verb: 'update', resource: R.ipAddressPools, subresource: 'status', namespace: 'mlb' }), 'update ipaddresspools.metallb.io/status in namespace mlb');
});

test('readAccess: watch, list only (poll), forbidden; a CRD not installed is left to the informer', async () => {
  const a = new AccessReview(alice, quiet);
  assert.equal(await a.readAccess(R.services), 'watch');
  assert.equal(await a.readAccess(R.nodes), 'list');
  assert.equal(await a.readAccess(R.secrets, 'mlb'), 'forbidden');
  // RBAC allows it; whether it is served is the informer's business (it waits for the CRD).
  assert.equal(await a.readAccess(R.ipAddressPools, 'mlb'), 'watch');
  assert.equal(await a.probeList(R.ipAddressPools, 'mlb'), 'absent');
  assert.equal(await a.probeList(R.secrets, 'mlb'), 'forbidden');
});

test('a server without access reviews: undefined (assume allowed), then the list probe decides', async (t) => {
  // A minimal server: reviews are 404, nodes list fine, secrets 403.
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname.includes('selfsubjectaccessreviews')) return send(404, { kind: 'Status', code: 404, reason: 'NotFound', message: 'not found' });
    if (url.pathname === '/api/v1/nodes') return send(200, { kind: 'NodeList', metadata: { resourceVersion: '1' }, items: [] });
    return send(403, { kind: 'Status', code: 403, reason: 'Forbidden', message: 'forbidden' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = tokenClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 't', 'bare');
  t.after(async () => {
    c.close();
    await new Promise((r) => server.close(r));
  });
  const a = new AccessReview(c, quiet);
  assert.equal(await a.can({ verb: 'list', resource: R.nodes }), undefined);
  assert.equal(await a.readAccess(R.nodes), 'watch', 'no answer about watch: assumed');
  assert.equal(await a.readAccess(R.secrets, 'x'), 'forbidden');
});

test('FeatureGates: one warning per feature turned off, the gauge, 403 detection, back on', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = pino({ level: 'debug', formatters: { level: (label) => ({ level: label }) } }, sink);
  const registry = new Registry();
  const gates = new FeatureGates({ component: 'controller', registry, log, features: { 'pool-status': 'IPAddressPool status counters are not written', events: 'no events are recorded' } });
  const value = async (f: string): Promise<number | undefined> => {
    const m = (await registry.getSingleMetricAsString('metallb_controller_feature_enabled')).split('\n').find((l) => l.startsWith(`metallb_controller_feature_enabled{feature="${f}"}`));
    return m === undefined ? undefined : Number(m.split(' ').pop());
  };
  assert.equal(await value('pool-status'), 1);
  assert.equal(await value('events'), 1);
  const sw = gates.switch('pool-status');
  assert.equal(sw.offIfForbidden(new ApiError(409, 'conflict')), false);
  assert.equal(sw.enabled, true);
  assert.equal(sw.offIfForbidden(new ApiError(403, 'PUT x: 403 forbidden')), true);
  assert.equal(sw.offIfForbidden(new ApiError(403, 'PUT x: 403 forbidden')), true);
  gates.disable('pool-status', 'again');
  assert.equal(sw.enabled, false);
  assert.equal(await value('pool-status'), 0);
  assert.deepEqual(gates.disabled(), ['pool-status']);
  const warns = lines.filter((l) => l.level === 'warn');
  assert.equal(warns.length, 1, 'one warning');
  assert.equal(warns[0]!.feature, 'pool-status');
  assert.equal(warns[0]!.msg, 'pool-status turned off: the API server refused its request; IPAddressPool status counters are not written');
  sw.enable();
  assert.equal(await value('pool-status'), 1);
  assert.equal(lines.filter((l) => l.level === 'info').length, 1);
});

