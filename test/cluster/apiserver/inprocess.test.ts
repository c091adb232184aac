// In-process server driven with @kubernetes/client-node and plain HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';

let srv: DevApiServer;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;

before(async () => {
  srv = await startDevApiServer({ logLevel: 'none', historySize: 200, bookmarkIntervalMs: 200 });
  kc = new k8s.KubeConfig();
  kc.loadFromString(srv.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
});
after(async () => {
  await srv.close();
});

type Json = Record<string, unknown>;

async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json; text: string; headers: Headers }> {
  const init: RequestInit = { method, headers: { 'content-type': 'application/json', ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const r = await fetch(srv.url + path, init);
  const text = await r.text();
  let json: Json = {};
  try {
    json = JSON.parse(text) as Json;
  } catch {
    // not JSON
  }
  return { status: r.status, json, text, headers: r.headers };
}

function errBody(e: unknown): Json {
  assert.ok(e instanceof k8s.ApiException, `expected ApiException, got ${String(e)}`);
  const b: unknown = e.body;
  return (typeof b === 'string' ? JSON.parse(b) : b) as Json;
}

async function rejects(p: Promise<unknown>, code: number): Promise<Json> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof k8s.ApiException);
    assert.equal(e.code, code);
    return errBody(e);
  }
  assert.fail(`expected HTTP ${code}`);
}

test('bootstrap objects and discovery', async () => {
  const nss = await core.listNamespace();
  assert.deepEqual(nss.items.map((n) => n.metadata?.name).sort(), ['default', 'kube-node-lease', 'kube-public', 'kube-system']);
  const k = await core.readNamespacedService({ name: 'kubernetes', namespace: 'default' });
  assert.equal(k.spec?.clusterIP, '10.96.0.1');
  const v = await http('GET', '/version');
  assert.equal(v.json.major, '1');
  for (const p of ['/healthz', '/readyz', '/livez']) assert.equal((await http('GET', p)).text, 'ok');
  const apis = await http('GET', '/apis');
  const groups = (apis.json.groups as Json[]).map((g) => g.name);
  for (const g of ['apps', 'discovery.k8s.io', 'coordination.k8s.io', 'apiextensions.k8s.io', 'rbac.authorization.k8s.io']) assert.ok(groups.includes(g), g);
  const agg = await http('GET', '/apis', undefined, { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' });
  assert.match(agg.headers.get('content-type') ?? '', /as=APIGroupDiscoveryList/);
  assert.equal(agg.json.kind, 'APIGroupDiscoveryList');
  const v1 = await http('GET', '/api/v1');
  const svc = (v1.json.resources as Json[]).find((r) => r.name === 'services');
  assert.deepEqual(svc?.shortNames, ['svc']);
  assert.ok((v1.json.resources as Json[]).some((r) => r.name === 'services/status'));
});

test('typed CRUD, metadata, optimistic concurrency and Status errors', async () => {
  const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { generateName: 'cm-', labels: { a: 'b' } }, data: { k: 'v' } } });
  const name = created.metadata!.name!;
  assert.match(name, /^cm-[a-z0-9]{5}$/);
  assert.ok(created.metadata?.uid);
  assert.ok(created.metadata?.creationTimestamp);
  assert.match(created.metadata!.resourceVersion!, /^\d+$/);
  const stale = structuredClone(created);
  const upd = await core.replaceNamespacedConfigMap({ name, namespace: 'default', body: { ...created, data: { k: 'v2' } } });
  assert.ok(Number(upd.metadata!.resourceVersion) > Number(created.metadata!.resourceVersion));
  const conflict = await rejects(core.replaceNamespacedConfigMap({ name, namespace: 'default', body: { ...stale, data: { k: 'v3' } } }), 409);
  assert.equal(conflict.kind, 'Status');
  assert.equal(conflict.reason, 'Conflict');
  assert.match(String(conflict.message), /the object has been modified/);
  const exists = await rejects(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name }, data: {} } }), 409);
  assert.equal(exists.reason, 'AlreadyExists');
  assert.deepEqual(exists.details, { name, kind: 'configmaps' });
  const nf = await rejects(core.readNamespacedConfigMap({ name: 'nope', namespace: 'default' }), 404);
  assert.equal(nf.message, 'configmaps "nope" not found');
  assert.equal(nf.code, 404);
  const badName = await rejects(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'Bad_Name' } } }), 422);
  assert.equal(badName.reason, 'Invalid');
  assert.match(String(badName.message), /^ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
  const noNs = await rejects(core.createNamespacedConfigMap({ namespace: 'missing', body: { metadata: { name: 'x' } } }), 404);
  assert.equal(noNs.message, 'namespaces "missing" not found');
  // no-op update keeps the resourceVersion
  const same = await core.replaceNamespacedConfigMap({ name, namespace: 'default', body: upd });
  assert.equal(same.metadata!.resourceVersion, upd.metadata!.resourceVersion);
  await core.deleteNamespacedConfigMap({ name, namespace: 'default' });
  await rejects(core.readNamespacedConfigMap({ name, namespace: 'default' }), 404);
});

test('services: allocation, status subresource, update ignores status, /status ignores spec', async () => {
  const s = await core.createNamespacedService({
    namespace: 'default',
    body: { metadata: { name: 'lb1' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] }, status: { loadBalancer: { ingress: [{ ip: '1.1.1.1' }] } } },
  });
  assert.match(s.spec!.clusterIP!, /^10\.9[6-9]|^10\.1[01]\d\./);
  assert.ok(s.spec!.ports![0]!.nodePort! >= 30000);
  assert.equal(s.status?.loadBalancer?.ingress, undefined, 'status is ignored on create');
  const st = await core.replaceNamespacedServiceStatus({
    name: 'lb1',
    namespace: 'default',
    body: { ...s, spec: { ...s.spec, type: 'ClusterIP' }, status: { loadBalancer: { ingress: [{ ip: '192.168.10.1' }] } } },
  });
  assert.equal(st.spec!.type, 'LoadBalancer', '/status ignores spec');
  assert.equal(st.status!.loadBalancer!.ingress![0]!.ip, '192.168.10.1');
  const main = await core.replaceNamespacedService({ name: 'lb1', namespace: 'default', body: { ...st, metadata: { ...st.metadata, labels: { x: 'y' } }, status: {} } });
  assert.equal(main.status!.loadBalancer!.ingress![0]!.ip, '192.168.10.1', 'main resource ignores status');
  assert.equal(main.metadata!.labels!.x, 'y');
  const merged = await core.patchNamespacedServiceStatus(
    { name: 'lb1', namespace: 'default', body: { status: { loadBalancer: { ingress: [{ ip: '192.168.10.2' }] } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  assert.equal(merged.status!.loadBalancer!.ingress![0]!.ip, '192.168.10.2');
  const badStatus = await rejects(
    core.patchNamespacedServiceStatus({ name: 'lb1', namespace: 'default', body: { status: { loadBalancer: { ingress: [{ ip: 'not-an-ip' }] } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)),
    422,
  );
  assert.match(String(badStatus.message), /status.loadBalancer.ingress\[0\].ip: Invalid value: "not-an-ip"/);
  const taken = await rejects(core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'dup' }, spec: { clusterIP: s.spec!.clusterIP!, ports: [{ port: 1 }] } } }), 422);
  assert.match(String(taken.message), /provided IP is already allocated/);
  const causes = (taken.details as Json).causes as Json[];
  assert.equal(causes[0]!.field, 'spec.clusterIPs[0]');
  await core.deleteNamespacedService({ name: 'lb1', namespace: 'default' });
  // the IP is free again
  await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'dup' }, spec: { clusterIP: s.spec!.clusterIP!, ports: [{ port: 1 }] } } });
  await core.deleteNamespacedService({ name: 'dup', namespace: 'default' });
});

test('selectors on list; limit/continue; Table output', async () => {
  await core.createNamespace({ body: { metadata: { name: 'sel' } } });
  for (let i = 0; i < 5; i++)
    await core.createNamespacedConfigMap({ namespace: 'sel', body: { metadata: { name: `c${i}`, labels: { i: String(i), parity: i % 2 ? 'odd' : 'even' } } } });
  const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> =>
    (await core.listNamespacedConfigMap({ namespace: 'sel', ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) })).items.map((c) => c.metadata!.name!);
  assert.deepEqual(await names('parity=odd'), ['c1', 'c3']);
  assert.deepEqual(await names('parity!=odd,i notin (0)'), ['c2', 'c4']);
  assert.deepEqual(await names('i in (1,2,9)'), ['c1', 'c2']);
  assert.deepEqual(await names('!parity'), []);
  assert.deepEqual(await names(undefined, 'metadata.name=c3'), ['c3']);
  assert.deepEqual(await names(undefined, 'metadata.name!=c3,metadata.namespace=sel'), ['c0', 'c1', 'c2', 'c4']);
  const all = await core.listConfigMapForAllNamespaces({ labelSelector: 'parity' });
  assert.equal(all.items.length, 5);
  const p1 = await core.listNamespacedConfigMap({ namespace: 'sel', limit: 2 });
  assert.equal(p1.items.length, 2);
  assert.ok(p1.metadata?._continue);
  const p2 = await core.listNamespacedConfigMap({ namespace: 'sel', limit: 2, _continue: p1.metadata!._continue! });
  const p3 = await core.listNamespacedConfigMap({ namespace: 'sel', limit: 2, _continue: p2.metadata!._continue! });
  assert.deepEqual([...p1.items, ...p2.items, ...p3.items].map((c) => c.metadata!.name), ['c0', 'c1', 'c2', 'c3', 'c4']);
  assert.equal(p3.metadata?._continue, undefined);
  const bad = await http('GET', '/api/v1/configmaps?fieldSelector=data.x%3Dy');
  assert.equal(bad.status, 400);
  assert.equal(bad.json.message, 'field label not supported: data.x');
  const tbl = await http('GET', '/api/v1/namespaces/default/services', undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
  assert.equal(tbl.json.kind, 'Table');
  assert.deepEqual((tbl.json.columnDefinitions as Json[]).map((c) => c.name), ['Name', 'Type', 'Cluster-IP', 'External-IP', 'Port(s)', 'Age', 'Selector']);
  const row = (tbl.json.rows as Json[]).find((r) => (r.cells as unknown[])[0] === 'kubernetes')!;
  assert.deepEqual((row.cells as unknown[]).slice(0, 5), ['kubernetes', 'ClusterIP', '10.96.0.1', '<none>', '443/TCP']);
  const terminating = await core.deleteNamespace({ name: 'sel' });
  assert.equal((terminating as { status?: { phase?: string } }).status?.phase, 'Terminating');
  const forbidden = await rejects(core.createNamespacedConfigMap({ namespace: 'sel', body: { metadata: { name: 'late' } } }), 403);
  assert.match(String(forbidden.message), /because it is being terminated/);
  // like kube-apiserver: the bootstrap namespaces stay, and namespaces have no deletecollection
  const immortal = await rejects(core.deleteNamespace({ name: 'kube-system' }), 403);
  assert.equal(immortal.message, 'namespaces "kube-system" is forbidden: this namespace may not be deleted');
  assert.equal((await http('DELETE', '/api/v1/namespaces')).status, 405);
  assert.equal((await core.readNamespace({ name: 'default' })).status?.phase, 'Active');
  for (let i = 0; i < 50; i++) {
    try {
      await core.readNamespace({ name: 'sel' });
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await rejects(core.readNamespace({ name: 'sel' }), 404);
  assert.equal((await core.listConfigMapForAllNamespaces({ labelSelector: 'parity' })).items.length, 0, 'namespace deletion removed its objects');
});

test('finalizers: graceful delete waits for the last finalizer', async () => {
  await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'fin', finalizers: ['example.com/a', 'example.com/b'] }, stringData: { k: 'v' } } });
  const s = await core.readNamespacedSecret({ name: 'fin', namespace: 'default' });
  assert.equal(s.data!.k, Buffer.from('v').toString('base64'));
  await core.deleteNamespacedSecret({ name: 'fin', namespace: 'default' });
  const deleting = await core.readNamespacedSecret({ name: 'fin', namespace: 'default' });
  assert.ok(deleting.metadata!.deletionTimestamp);
  await core.patchNamespacedSecret({ name: 'fin', namespace: 'default', body: [{ op: 'remove', path: '/metadata/finalizers/0' }] }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
  assert.deepEqual((await core.readNamespacedSecret({ name: 'fin', namespace: 'default' })).metadata!.finalizers, ['example.com/b']);
  await core.patchNamespacedSecret({ name: 'fin', namespace: 'default', body: { metadata: { finalizers: null } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  await rejects(core.readNamespacedSecret({ name: 'fin', namespace: 'default' }), 404);
});

test('dryRun=All does not store; malformed and unsupported requests get Status errors', async () => {
  const dry = await http('POST', '/api/v1/namespaces/default/configmaps?dryRun=All', { metadata: { name: 'dry' } });
  assert.equal(dry.status, 201);
  assert.equal((await http('GET', '/api/v1/namespaces/default/configmaps/dry')).status, 404);
  const svcDry = await http('POST', '/api/v1/namespaces/default/services?dryRun=All', { metadata: { name: 'dry' }, spec: { clusterIP: '10.96.0.200', ports: [{ port: 1 }] } });
  assert.equal(svcDry.status, 201);
  const real = await http('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'real' }, spec: { clusterIP: '10.96.0.200', ports: [{ port: 1 }] } });
  assert.equal(real.status, 201, 'dry run released its allocation');
  await http('DELETE', '/api/v1/namespaces/default/services/real');
  const cases: [string, string, unknown, Record<string, string>, number][] = [
    ['POST', '/api/v1/namespaces/default/configmaps', '{"metadata": {', {}, 400],
    ['POST', '/api/v1/namespaces/default/configmaps', 'metadata: [', { 'content-type': 'application/yaml' }, 400],
    ['POST', '/api/v1/namespaces/default/configmaps', '{}', { 'content-type': 'text/plain' }, 415],
    ['PATCH', '/api/v1/namespaces/default/services/kubernetes', '{}', { 'content-type': 'application/json' }, 415],
    ['GET', '/api/v1/namespaces/default/widgets', undefined, {}, 404],
    ['GET', '/apis/nope.example.com/v1/things', undefined, {}, 404],
    ['GET', '/api/v1/namespaces/default/services/kubernetes', undefined, { accept: 'application/vnd.kubernetes.protobuf' }, 406],
    ['POST', '/api/v1/namespaces/default/services/kubernetes', '{}', {}, 405],
    ['PUT', '/api/v1/namespaces/default/configmaps/x', '{"metadata":{"name":"y"}}', {}, 400],
    ['POST', '/api/v1/namespaces/default/configmaps', '{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"z"}}', {}, 400],
    ['GET', '/api/v1/namespaces/default/services/kubernetes/scale', undefined, {}, 404],
    ['GET', '/api/v1/namespaces/%E0%A4%A/services', undefined, {}, 400],
    // a __proto__ key would turn into a prototype once copied (here: a name that is not the object's own)
    ['POST', '/api/v1/namespaces/default/configmaps', '{"metadata":{"__proto__":{"name":"pp"}}}', {}, 400],
    ['PATCH', '/api/v1/namespaces/default/services/kubernetes?fieldManager=t', 'metadata:\n  labels:\n    __proto__: {a: b}\n', { 'content-type': 'application/apply-patch+yaml' }, 400],
    // nesting beyond what the recursive copies handle; a body over the limit (a Status, not a reset connection)
    ['POST', '/api/v1/namespaces/default/configmaps', `{"metadata":{"name":"deep"},"x":${'['.repeat(5000)}${']'.repeat(5000)}}`, {}, 400],
    ['POST', '/api/v1/namespaces/default/configmaps', `{"metadata":{"name":"big"},"data":{"a":"${'a'.repeat(17 * 1024 * 1024)}"}}`, {}, 413],
    // a protobuf envelope around a truncated Service
    ['POST', '/api/v1/namespaces/default/services', 'k8s\0\x0a\x0d\x0a\x02v1\x12\x07Service\x12\x01\x0b', { 'content-type': 'application/vnd.kubernetes.protobuf' }, 400],
  ];
  for (const [m, p, b, h, code] of cases) {
    const r = await http(m, p, b, h);
    assert.equal(r.status, code, `${m} ${p} ${JSON.stringify(h)}`);
    assert.equal(r.json.kind, 'Status', `${m} ${p}: ${r.text}`);
    assert.equal(r.json.code, code);
    assert.ok(typeof r.json.message === 'string' && r.json.message.length > 0);
  }
  const malformed = await http('POST', '/api/v1/namespaces/default/configmaps', '{"metadata": {');
  assert.match(String(malformed.json.message), /error decoding JSON request body/);
});

test('PATCH types through the API', async () => {
  await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'p' }, spec: { ports: [{ name: 'a', port: 80 }, { name: 'b', port: 81 }] } } });
  const smp = await http('PATCH', '/api/v1/namespaces/default/services/p', { spec: { ports: [{ port: 81, targetPort: 9000 }] } }, { 'content-type': 'application/strategic-merge-patch+json' });
  assert.equal(smp.status, 200);
  assert.deepEqual(((smp.json.spec as Json).ports as Json[]).map((p) => `${String(p.port)}->${String(p.targetPort)}`), ['80->80', '81->9000']);
  const mp = await http('PATCH', '/api/v1/namespaces/default/services/p', { spec: { ports: [{ name: 'c', port: 82 }] } }, { 'content-type': 'application/merge-patch+json' });
  assert.deepEqual(((mp.json.spec as Json).ports as Json[]).map((p) => p.port), [82]);
  const apply = await http('PATCH', '/api/v1/namespaces/default/configmaps/applied?fieldManager=test', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: "1"\n', { 'content-type': 'application/apply-patch+yaml' });
  assert.equal(apply.status, 201);
  const apply2 = await http('PATCH', '/api/v1/namespaces/default/configmaps/applied?fieldManager=test', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  b: "2"\n', { 'content-type': 'application/apply-patch+yaml' });
  assert.equal(apply2.status, 200);
  assert.deepEqual(apply2.json.data, { b: '2' }, 'the same manager no longer applies a');
  const noManager = await http('PATCH', '/api/v1/namespaces/default/configmaps/applied', 'data: {}', { 'content-type': 'application/apply-patch+yaml' });
  assert.equal(noManager.status, 400);
  const rvPatch = await http('PATCH', '/api/v1/namespaces/default/configmaps/applied', { metadata: { resourceVersion: '1' } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(rvPatch.status, 409);
  await core.deleteNamespacedService({ name: 'p', namespace: 'default' });
  await core.deleteNamespacedConfigMap({ name: 'applied', namespace: 'default' });
});

test('informer sees add, update and delete', async (t) => {
  await core.createNamespace({ body: { metadata: { name: 'inf' } } });
  const events: string[] = [];
  const informer = k8s.makeInformer(kc, '/api/v1/namespaces/inf/services', () => core.listNamespacedService({ namespace: 'inf' }));
  informer.on('add', (o) => events.push(`add:${o.metadata!.name}`));
  informer.on('update', (o) => events.push(`update:${o.metadata!.name}:${o.status?.loadBalancer?.ingress?.[0]?.ip ?? ''}`));
  informer.on('delete', (o) => events.push(`delete:${o.metadata!.name}`));
  await informer.start();
  t.after(() => informer.stop());
  await core.createNamespacedService({ namespace: 'inf', body: { metadata: { name: 's1' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } } });
  await core.patchNamespacedServiceStatus(
    { name: 's1', namespace: 'inf', body: { status: { loadBalancer: { ingress: [{ ip: '10.0.0.1' }] } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  await core.deleteNamespacedService({ name: 's1', namespace: 'inf' });
  const deadline = Date.now() + 5000;
  while (events.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(events, ['add:s1', 'update:s1:10.0.0.1', 'delete:s1']);
  assert.equal(informer.list('inf').length, 0);
});

/** Read watch events from a raw watch request until `n` events or the stream ends. */
async function watchEvents(path: string, n: number, during?: () => Promise<void>, timeoutMs = 5000): Promise<Json[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const res = await fetch(srv.url + path, { signal: ac.signal });
  assert.equal(res.status, 200);
  const events: Json[] = [];
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const pending = during?.();
  try {
    while (events.length < n) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) events.push(JSON.parse(line) as Json);
      }
    }
  } catch {
    // aborted
  } finally {
    clearTimeout(timer);
    ac.abort();
    await pending;
  }
  return events;
}

test('watch: resume from a resourceVersion, selectors, bookmarks, timeoutSeconds, 410 Gone', async () => {
  await core.createNamespace({ body: { metadata: { name: 'w' } } });
  const base = (await core.listNamespacedConfigMap({ namespace: 'w' })).metadata!.resourceVersion!;
  await core.createNamespacedConfigMap({ namespace: 'w', body: { metadata: { name: 'a', labels: { app: 'x' } } } });
  await core.createNamespacedConfigMap({ namespace: 'w', body: { metadata: { name: 'b' } } });
  await core.patchNamespacedConfigMap({ name: 'a', namespace: 'w', body: { metadata: { labels: { app: 'y' } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  const resumed = await watchEvents(`/api/v1/namespaces/w/configmaps?watch=true&resourceVersion=${base}`, 3);
  assert.deepEqual(resumed.map((e) => `${String(e.type)}:${String(((e.object as Json).metadata as Json).name)}`), ['ADDED:a', 'ADDED:b', 'MODIFIED:a']);
  // label selector: a relabel out of the selection is a DELETED
  const sel = await watchEvents(`/api/v1/namespaces/w/configmaps?watch=1&resourceVersion=${base}&labelSelector=app%3Dx`, 2);
  assert.deepEqual(sel.map((e) => e.type), ['ADDED', 'DELETED']);
  // no resourceVersion: the current state as ADDED events
  const initial = await watchEvents('/api/v1/namespaces/w/configmaps?watch=true&fieldSelector=metadata.name%3Db', 1);
  assert.equal(initial[0]!.type, 'ADDED');
  // sendInitialEvents ends with a bookmark annotated initial-events-end
  const listWatch = await watchEvents('/api/v1/namespaces/w/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan', 3);
  assert.equal(listWatch[2]!.type, 'BOOKMARK');
  assert.deepEqual(((listWatch[2]!.object as Json).metadata as Json).annotations, { 'k8s.io/initial-events-end': 'true' });
  // sendInitialEvents=false without a resourceVersion: only changes from now on
  const fromNow = await watchEvents('/api/v1/namespaces/w/configmaps?watch=true&sendInitialEvents=false&timeoutSeconds=1', 1);
  assert.deepEqual(fromNow, []);
  // periodic bookmarks
  const now = String(srv.store.currentRV());
  const bm = await watchEvents(`/api/v1/namespaces/w/configmaps?watch=true&resourceVersion=${now}&allowWatchBookmarks=true`, 1);
  assert.equal(bm[0]!.type, 'BOOKMARK');
  assert.ok(Number(((bm[0]!.object as Json).metadata as Json).resourceVersion) >= Number(now));
  // timeoutSeconds ends the stream
  const t0 = Date.now();
  const none = await watchEvents(`/api/v1/namespaces/w/configmaps?watch=true&resourceVersion=${now}&timeoutSeconds=1`, 1, undefined, 5000);
  assert.equal(none.length, 0);
  assert.ok(Date.now() - t0 < 4000);
  // live events arrive
  const live = await watchEvents(`/api/v1/namespaces/w/configmaps?watch=true&resourceVersion=${now}`, 1, async () => {
    await new Promise((r) => setTimeout(r, 50));
    await core.deleteNamespacedConfigMap({ name: 'b', namespace: 'w' });
  });
  assert.equal(live[0]!.type, 'DELETED');
  // a timeoutSeconds beyond what a timer holds (~24.8 days) does not end the stream at once
  const long = await watchEvents(`/api/v1/namespaces/w/configmaps?watch=true&resourceVersion=${srv.store.currentRV()}&timeoutSeconds=100000000`, 1, async () => {
    await new Promise((r) => setTimeout(r, 50));
    await core.createNamespacedConfigMap({ namespace: 'w', body: { metadata: { name: 'long' } } });
  });
  assert.equal(long[0]?.type, 'ADDED');
  // push the history (200 events) past `base`: 410 as an ERROR event
  for (let i = 0; i < 210; i++) await core.createNamespacedConfigMap({ namespace: 'w', body: { metadata: { name: `fill-${i}` } } });
  const gone = await watchEvents(`/api/v1/namespaces/w/configmaps?watch=true&resourceVersion=${base}`, 2);
  assert.equal(gone.length, 1, 'the stream ends after the error');
  assert.equal(gone[0]!.type, 'ERROR');
  const st = gone[0]!.object as Json;
  assert.equal(st.kind, 'Status');
  assert.equal(st.code, 410);
  assert.equal(st.reason, 'Expired');
  assert.match(String(st.message), /^too old resource version: \d+ \(\d+\)$/);
  // client-node's Watch reports it the same way
  const w = new k8s.Watch(kc);
  const seen = await new Promise<{ type: string; code: unknown }>((resolve, reject) => {
    w.watch('/api/v1/namespaces/w/configmaps', { resourceVersion: base }, (type, obj: Json) => resolve({ type, code: obj.code }), (err: unknown) => (err ? reject(err) : undefined)).catch(reject);
  });
  assert.deepEqual(seen, { type: 'ERROR', code: 410 });
  await core.deleteNamespace({ name: 'w' });
});

test('leases, endpointslices, events with involvedObject field selectors', async () => {
  const coord = kc.makeApiClient(k8s.CoordinationV1Api);
  const lease = await coord.createNamespacedLease({ namespace: 'kube-system', body: { metadata: { name: 'l' }, spec: { holderIdentity: 'me', leaseDurationSeconds: 15 } } });
  const renewed = await coord.replaceNamespacedLease({ name: 'l', namespace: 'kube-system', body: { ...lease, spec: { ...lease.spec, holderIdentity: 'you' } } });
  assert.equal(renewed.spec!.holderIdentity, 'you');
  const disc = kc.makeApiClient(k8s.DiscoveryV1Api);
  await disc.createNamespacedEndpointSlice({ namespace: 'default', body: { metadata: { name: 'es', labels: { 'kubernetes.io/service-name': 'x' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'] }], ports: [{ port: 80 }] } });
  assert.equal((await disc.listNamespacedEndpointSlice({ namespace: 'default', labelSelector: 'kubernetes.io/service-name=x' })).items.length, 1);
  await core.createNamespacedEvent({ namespace: 'default', body: { metadata: { name: 'ev1' }, involvedObject: { kind: 'Service', name: 'x', namespace: 'default' }, reason: 'IPAllocated', type: 'Normal', message: 'hi' } });
  await core.createNamespacedEvent({ namespace: 'default', body: { metadata: { name: 'ev2' }, involvedObject: { kind: 'Service', name: 'y', namespace: 'default' }, reason: 'AllocationFailed', type: 'Warning', message: 'no' } });
  const evs = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.kind=Service,involvedObject.name=y,type=Warning' });
  assert.deepEqual(evs.items.map((e) => e.reason), ['AllocationFailed']);
});

test('field validation of built-in types: Strict rejects unknown fields, Warn warns, Ignore drops them', async () => {
  const body = { metadata: { name: 'fv' }, spec: { ports: [{ port: 80, nme: 'x' }], prots: 1 } };
  const strict = await http('POST', '/api/v1/namespaces/default/services?fieldValidation=Strict', body);
  assert.equal(strict.status, 400);
  assert.equal(strict.json.message, 'Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.ports[0].nme", unknown field "spec.prots"');
  const warn = await http('POST', '/api/v1/namespaces/default/services?fieldValidation=Warn', body);
  assert.equal(warn.status, 201);
  assert.match(warn.headers.get('warning') ?? '', /299 - "unknown field \\"spec.prots\\""/);
  assert.equal(((warn.json.spec as Json).prots), undefined);
  const ignore = await http('PUT', '/api/v1/namespaces/default/services/fv?fieldValidation=Ignore', { ...warn.json, spec: { ...(warn.json.spec as Json), bogus: true } });
  assert.equal(ignore.status, 200);
  assert.equal(ignore.headers.get('warning'), null);
  await core.deleteNamespacedService({ name: 'fv', namespace: 'default' });
});

test('built-in objects with a list or object of the wrong shape are refused, /status included', async () => {
  const bad = await http('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'shape' }, spec: { ports: [{ port: 80 }], clusterIPs: 'x' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.message, 'Service in version "v1" cannot be handled as a Service: spec.clusterIPs: got string, want array');
  const ok = await http('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'shape' }, spec: { ports: [{ port: 80 }] } });
  assert.equal(ok.status, 201);
  for (const status of ['x', { loadBalancer: 'x' }, { loadBalancer: { ingress: 'x' } }, { loadBalancer: { ingress: ['x'] } }]) {
    const r = await http('PATCH', '/api/v1/namespaces/default/services/shape/status', { status }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(r.status, 400, JSON.stringify(status));
    assert.equal(r.json.kind, 'Status');
  }
  const stored = await http('GET', '/api/v1/namespaces/default/services/shape');
  assert.deepEqual(stored.json.status, { loadBalancer: {} });
  await core.deleteNamespacedService({ name: 'shape', namespace: 'default' });
});

test('server-side apply: fields an applier drops are removed unless another applier owns them', async () => {
  const apply = (manager: string, yaml: string) =>
    http('PATCH', `/api/v1/namespaces/default/services/ssa?fieldManager=${manager}`, yaml, { 'content-type': 'application/apply-patch+yaml' });
  const v1 = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: ssa\n  labels: {a: "1", b: "2"}\nspec:\n  ports:\n  - {name: http, port: 80}\n  - {name: https, port: 443}\n  selector: {app: x}\n';
  const r1 = await apply('alice', v1);
  assert.equal(r1.status, 201);
  const mf = (r1.json.metadata as Json).managedFields as Json[];
  assert.equal(mf[0]!.manager, 'alice');
  assert.equal(mf[0]!.operation, 'Apply');
  const again = await apply('alice', v1);
  assert.equal((again.json.metadata as Json).resourceVersion, (r1.json.metadata as Json).resourceVersion, 'a no-op apply changes nothing');
  await apply('bob', 'apiVersion: v1\nkind: Service\nmetadata:\n  name: ssa\n  labels: {b: "2", c: "3"}\n');
  const r2 = await apply('alice', 'apiVersion: v1\nkind: Service\nmetadata:\n  name: ssa\n  labels: {a: "1"}\nspec:\n  ports:\n  - {name: http, port: 80}\n');
  assert.equal(r2.status, 200);
  assert.deepEqual((r2.json.metadata as Json).labels, { a: '1', b: '2', c: '3' }, 'b is still applied by bob');
  const spec = r2.json.spec as Json;
  assert.deepEqual((spec.ports as Json[]).map((p) => p.port), [80], 'the https port was dropped by its applier');
  assert.equal(spec.selector, undefined);
  assert.ok(spec.clusterIP, 'allocated fields stay');
  await core.deleteNamespacedService({ name: 'ssa', namespace: 'default' });
});

test('CRDs through the API: versions served with apiVersion rewritten, deprecation warnings, deletion', async () => {
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com',
      scope: 'Cluster',
      names: { plural: 'widgets', kind: 'Widget', shortNames: ['wd'] },
      versions: [
        { name: 'v1alpha1', served: true, storage: false, deprecated: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } },
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {}, scale: { specReplicasPath: '.spec.size', statusReplicasPath: '.status.size', labelSelectorPath: '.status.selector' } },
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer', default: 3 } } }, status: { type: 'object', properties: { size: { type: 'integer' }, selector: { type: 'string' } } } } } },
        },
      ],
    },
  };
  const created = await http('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  assert.equal(created.status, 201, created.text);
  assert.equal(((created.json.spec as Json).names as Json).singular, 'widget');
  assert.deepEqual((created.json.status as Json).storedVersions, ['v1']);
  const bad = await http('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { ...crd, metadata: { name: 'wrong.example.com' } });
  assert.equal(bad.status, 422);
  assert.match(String(bad.json.message), /metadata.name: Invalid value: "wrong.example.com": must be spec.names.plural\+"."\+spec.group/);
  const w = await http('POST', '/apis/example.com/v1/widgets', { metadata: { name: 'w1' }, spec: {} });
  assert.equal(w.status, 201, w.text);
  assert.deepEqual(w.json.spec, { size: 3 });
  assert.equal(w.json.apiVersion, 'example.com/v1');
  const old = await http('GET', '/apis/example.com/v1alpha1/widgets/w1');
  assert.equal(old.json.apiVersion, 'example.com/v1alpha1');
  assert.equal(old.headers.get('warning'), '299 - "example.com/v1alpha1 Widget is deprecated; use example.com/v1 Widget"');
  const sc = await http('PATCH', '/apis/example.com/v1/widgets/w1/scale', { spec: { replicas: 7 } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(sc.status, 200, sc.text);
  assert.deepEqual([sc.json.kind, (sc.json.spec as Json).replicas], ['Scale', 7]);
  assert.equal(((await http('GET', '/apis/example.com/v1/widgets/w1')).json.spec as Json).size, 7);
  assert.equal((await http('GET', '/apis/example.com/v1alpha1/widgets/w1/scale')).status, 404, 'only where declared');
  const group = await http('GET', '/apis/example.com');
  assert.deepEqual((group.json.preferredVersion as Json).version, 'v1');
  assert.equal((await http('GET', '/apis/example.com/v1/namespaces/default/widgets')).status, 404, 'cluster-scoped');
  const hijack = await http('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
    ...crd,
    metadata: { name: 'endpointslices.discovery.k8s.io' },
    spec: { ...crd.spec, group: 'discovery.k8s.io', names: { plural: 'endpointslices', kind: 'EndpointSlice' } },
  });
  assert.equal(hijack.status, 422);
  // watches of the resource end when its CRD goes
  const watching = watchEvents('/apis/example.com/v1/widgets?watch=true', 10, undefined, 5000);
  await new Promise((r) => setTimeout(r, 200));
  const del = await http('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com');
  assert.equal(del.status, 200);
  assert.equal((await http('GET', '/apis/example.com/v1/widgets')).status, 404);
  assert.equal((await http('GET', '/apis/example.com')).status, 404);
  const seen = await watching;
  assert.deepEqual(seen.map((e) => e.type), ['ADDED', 'DELETED'], 'initial ADDED, the DELETED, then the stream ended');
});

test('watch from a resourceVersion newer than the server has (restart without a data file) gets 410', async () => {
  const future = String(srv.store.currentRV() + 1000);
  const evs = await watchEvents(`/api/v1/namespaces/default/services?watch=true&resourceVersion=${future}`, 2);
  assert.equal(evs.length, 1);
  assert.equal(evs[0]!.type, 'ERROR');
  assert.equal((evs[0]!.object as Json).code, 410);
  assert.match(String((evs[0]!.object as Json).message), /too large resource version/);
});

test('events.k8s.io/v1 Events and core/v1 Events are one collection', async () => {
  const ev = kc.makeApiClient(k8s.EventsV1Api);
  await ev.createNamespacedEvent({
    namespace: 'default',
    body: {
      metadata: { name: 'nev1' },
      eventTime: new Date('2026-01-01T00:00:00Z'),
      regarding: { kind: 'Service', name: 'conv', namespace: 'default' },
      reason: 'IPAllocated',
      type: 'Normal',
      note: 'Assigned IP',
      action: 'Allocate',
      reportingController: 'metallb-controller',
      reportingInstance: 'controller-1',
    },
  });
  const core1 = await core.readNamespacedEvent({ name: 'nev1', namespace: 'default' });
  assert.equal(core1.message, 'Assigned IP');
  assert.equal(core1.involvedObject.name, 'conv');
  assert.equal(core1.reportingComponent, 'metallb-controller');
  assert.equal(core1.source?.component, 'metallb-controller');
  await core.createNamespacedEvent({ namespace: 'default', body: { metadata: { name: 'cev1' }, involvedObject: { kind: 'Service', name: 'conv', namespace: 'default' }, reason: 'Old', type: 'Warning', message: 'core event', count: 2 } });
  const v1 = await ev.readNamespacedEvent({ name: 'cev1', namespace: 'default' });
  assert.equal(v1.note, 'core event');
  assert.equal(v1.regarding?.name, 'conv');
  assert.equal(v1.deprecatedCount, 2);
  const sel = await ev.listNamespacedEvent({ namespace: 'default', fieldSelector: 'regarding.name=conv,type=Warning' });
  assert.deepEqual(sel.items.map((e) => e.metadata?.name), ['cev1']);
  const raw = await http('GET', '/apis/events.k8s.io/v1/namespaces/default/events/nev1');
  assert.equal(raw.json.apiVersion, 'events.k8s.io/v1');
  await ev.deleteNamespacedEvent({ name: 'nev1', namespace: 'default' });
  await rejects(core.readNamespacedEvent({ name: 'nev1', namespace: 'default' }), 404);
});
