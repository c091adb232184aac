// kube-apiserver's registry strategies: status updates type by type, graceful pod deletion, the garbage collector's
// finalizers from propagationPolicy, what a DELETE answers, pod defaults and the ServiceAccount admission plugin.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';
import { decideDelete, gcFinalizers } from '../../../src/cluster/apiserver/deletion.js';

let srv: DevApiServer;
before(async () => {
  srv = await startDevApiServer({ logLevel: 'none' });
});
after(async () => {
  await srv.close();
});

/** A parsed JSON document walked without checks (a wrong path fails the assertion that reads it). */
interface Json {
  [k: string]: Json;
}
const list = (j: Json): Json[] => j as unknown as Json[];
async function http(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: Json }> {
  const r = await fetch(srv.url + path, { method, headers: { 'content-type': contentType }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  return { status: r.status, json: text ? (JSON.parse(text) as Json) : {} };
}

test('Service status update keeps its label and annotation changes and ignores spec changes; a main update ignores status', async () => {
  const created = await http('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'st1', labels: { a: '1' } }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
  assert.equal(created.status, 201);
  const svc = created.json;
  const upd = await http('PUT', '/api/v1/namespaces/default/services/st1/status', {
    ...svc,
    metadata: { ...svc.metadata, labels: { a: '2' }, annotations: { 'metallb.io/ip-allocated-from-pool': 'pool1' } },
    spec: { ...svc.spec, type: 'ClusterIP', ports: [{ port: 81 }] },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } },
  });
  assert.equal(upd.status, 200, JSON.stringify(upd.json));
  assert.deepEqual(upd.json.metadata.labels, { a: '2' });
  assert.equal(upd.json.metadata.annotations['metallb.io/ip-allocated-from-pool'], 'pool1');
  assert.equal(upd.json.spec.type, 'LoadBalancer');
  assert.equal(upd.json.spec.ports[0].port, 80);
  assert.deepEqual(upd.json.status.loadBalancer.ingress, [{ ip: '192.0.2.1' }]);
  assert.equal(upd.json.metadata.uid, svc.metadata.uid);
  // a stale resourceVersion is a conflict on /status too
  const stale = await http('PUT', '/api/v1/namespaces/default/services/st1/status', { ...svc, status: {} });
  assert.equal(stale.status, 409);
  const main = await http('PUT', '/api/v1/namespaces/default/services/st1', { ...upd.json, status: { loadBalancer: {} }, metadata: { ...upd.json.metadata, labels: { a: '3' } } });
  assert.deepEqual(main.json.status.loadBalancer.ingress, [{ ip: '192.0.2.1' }]);
  assert.deepEqual(main.json.metadata.labels, { a: '3' });
});

test('Deployment status keeps labels; Pod status keeps ownerReferences; custom resources take only status', async () => {
  const dep = (
    await http('POST', '/apis/apps/v1/namespaces/default/deployments', {
      metadata: { name: 'sd', labels: { l: '1' } },
      spec: { selector: { matchLabels: { app: 'sd' } }, template: { metadata: { labels: { app: 'sd' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
    })
  ).json;
  const d2 = await http('PUT', '/apis/apps/v1/namespaces/default/deployments/sd/status', { ...dep, metadata: { ...dep.metadata, labels: { l: '2' }, annotations: { x: 'y' } }, spec: { ...dep.spec, replicas: 7 }, status: { replicas: 1 } });
  assert.deepEqual(d2.json.metadata.labels, { l: '1' });
  assert.deepEqual(d2.json.metadata.annotations, { x: 'y' });
  assert.equal(d2.json.spec.replicas, 1);
  assert.equal(d2.json.status.replicas, 1);
  assert.equal(d2.json.metadata.generation, 1);

  const pod = (await http('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'sp', ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'o', uid: 'u1' }] }, spec: { containers: [{ name: 'c', image: 'nginx' }] } })).json;
  const p2 = await http('PUT', '/api/v1/namespaces/default/pods/sp/status', { ...pod, metadata: { ...pod.metadata, ownerReferences: [], labels: { k: 'v' } }, status: { phase: 'Running' } });
  assert.deepEqual(p2.json.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'X', name: 'o', uid: 'u1' }]);
  assert.deepEqual(p2.json.metadata.labels, { k: 'v' });
  assert.equal(p2.json.status.phase, 'Running');

  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com',
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
      versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  };
  assert.equal((await http('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).status, 201);
  const w = (await http('POST', '/apis/example.com/v1/namespaces/default/widgets', { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', labels: { a: '1' } }, spec: { size: 1 } })).json;
  const w2 = await http('PUT', '/apis/example.com/v1/namespaces/default/widgets/w/status', { ...w, metadata: { ...w.metadata, labels: { a: '2' } }, spec: { size: 9 }, status: { ok: true } });
  assert.deepEqual(w2.json.metadata.labels, { a: '1' });
  assert.deepEqual(w2.json.spec, { size: 1 });
  assert.deepEqual(w2.json.status, { ok: true });
});

test('pods: defaults, the ServiceAccount admission plugin (projected token volume, unknown service account refused)', async () => {
  const p = (await http('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'dp' }, spec: { containers: [{ name: 'c', image: 'nginx', ports: [{ containerPort: 80 }] }, { name: 'd', image: 'busybox:1.36' }] } })).json;
  assert.equal(p.spec.serviceAccountName, 'default');
  assert.equal(p.spec.terminationGracePeriodSeconds, 30);
  assert.equal(p.spec.restartPolicy, 'Always');
  assert.equal(p.spec.dnsPolicy, 'ClusterFirst');
  assert.equal(p.spec.schedulerName, 'default-scheduler');
  assert.equal(p.spec.containers[0].imagePullPolicy, 'Always');
  assert.equal(p.spec.containers[1].imagePullPolicy, 'IfNotPresent');
  assert.equal(p.spec.containers[0].ports[0].protocol, 'TCP');
  const vol = list(p.spec.volumes).find((v) => String(v.name).startsWith('kube-api-access-'));
  assert.ok(vol, 'projected service-account volume');
  assert.deepEqual(vol!.projected.sources[0], { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } });
  for (const c of list(p.spec.containers)) assert.deepEqual(c.volumeMounts, [{ name: vol!.name, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }]);
  assert.deepEqual(
    list(p.spec.tolerations).map((t) => t.key),
    ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'],
  );
  assert.equal(p.status.qosClass, 'BestEffort');
  const noMount = (await http('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'dp2' }, spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'nginx' }] } })).json;
  assert.equal(noMount.spec.volumes, undefined);
  const bad = await http('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'dp3' }, spec: { serviceAccountName: 'ghost', containers: [{ name: 'c', image: 'nginx' }] } });
  assert.equal(bad.status, 403);
  assert.equal(bad.json.message, 'pods "dp3" is forbidden: error looking up service account default/ghost: serviceaccount "ghost" not found');
  const dep = (
    await http('POST', '/apis/apps/v1/namespaces/default/deployments', {
      metadata: { name: 'dd' },
      spec: { selector: { matchLabels: { app: 'dd' } }, template: { metadata: { labels: { app: 'dd' } }, spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] } } },
    })
  ).json;
  assert.equal(dep.spec.replicas, 1);
  assert.deepEqual(dep.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } });
  assert.equal(dep.spec.revisionHistoryLimit, 10);
  assert.equal(dep.spec.template.spec.terminationGracePeriodSeconds, 30);
  assert.equal(dep.spec.template.spec.serviceAccountName, undefined);
  // a PUT without the defaults changes nothing
  const again = await http('PUT', '/apis/apps/v1/namespaces/default/deployments/dd', {
    metadata: { name: 'dd', resourceVersion: dep.metadata.resourceVersion },
    spec: { selector: { matchLabels: { app: 'dd' } }, template: { metadata: { labels: { app: 'dd' } }, spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] } } },
  });
  assert.equal(again.json.metadata.resourceVersion, dep.metadata.resourceVersion);
  assert.equal(again.json.metadata.generation, 1);
});

test('graceful deletion: a bound pod terminates for its grace period; the kubelet ends it with gracePeriodSeconds=0', async () => {
  await http('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'g1' }, spec: { nodeName: 'node1', terminationGracePeriodSeconds: 45, containers: [{ name: 'c', image: 'nginx' }] } });
  const t0 = Date.now();
  const d = await http('DELETE', '/api/v1/namespaces/default/pods/g1');
  assert.equal(d.status, 200);
  assert.equal(d.json.kind, 'Pod');
  assert.equal(d.json.metadata.deletionGracePeriodSeconds, 45);
  const when = Date.parse(String(d.json.metadata.deletionTimestamp));
  assert.ok(when >= Math.floor(t0 / 1000) * 1000 + 44_000 && when <= t0 + 46_000, String(d.json.metadata.deletionTimestamp));
  assert.equal((await http('GET', '/api/v1/namespaces/default/pods/g1')).status, 200);
  // a second delete without a shorter grace period changes nothing
  const again = await http('DELETE', '/api/v1/namespaces/default/pods/g1', { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 60 });
  assert.equal(again.json.metadata.deletionTimestamp, d.json.metadata.deletionTimestamp);
  // a status update does not end it (no finalizers to wait for, grace left)
  const cur = (await http('GET', '/api/v1/namespaces/default/pods/g1')).json;
  assert.equal((await http('PUT', '/api/v1/namespaces/default/pods/g1/status', { ...cur, status: { phase: 'Running' } })).status, 200);
  // the wrong uid precondition is refused; the kubelet's final delete removes it
  assert.equal((await http('DELETE', '/api/v1/namespaces/default/pods/g1', { kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: 'x' } })).status, 409);
  const fin = await http('DELETE', '/api/v1/namespaces/default/pods/g1', { kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: cur.metadata.uid } });
  assert.equal(fin.status, 200);
  assert.equal((await http('GET', '/api/v1/namespaces/default/pods/g1')).status, 404);
  // unbound pods and finished pods go at once; --grace-period=0 --force too (query parameter)
  await http('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'g2' }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });
  assert.equal((await http('DELETE', '/api/v1/namespaces/default/pods/g2')).status, 200);
  assert.equal((await http('GET', '/api/v1/namespaces/default/pods/g2')).status, 404);
  await http('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'g3' }, spec: { nodeName: 'node1', containers: [{ name: 'c', image: 'nginx' }] } });
  assert.equal((await http('DELETE', '/api/v1/namespaces/default/pods/g3?gracePeriodSeconds=0')).status, 200);
  assert.equal((await http('GET', '/api/v1/namespaces/default/pods/g3')).status, 404);
});

test('propagationPolicy: Foreground and Orphan put the garbage collector finalizers on; a finished deletion answers a Status', async () => {
  const mk = (name: string) => http('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name }, data: { a: 'b' } });
  await mk('fg');
  const fg = await http('DELETE', '/api/v1/namespaces/default/configmaps/fg', { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Foreground' });
  assert.equal(fg.status, 200);
  assert.deepEqual(fg.json.metadata.finalizers, ['foregroundDeletion']);
  assert.ok(fg.json.metadata.deletionTimestamp);
  assert.equal(fg.json.metadata.deletionGracePeriodSeconds, 0);
  // the GC removes its finalizer when the dependents are gone: the object goes
  const cur = (await http('GET', '/api/v1/namespaces/default/configmaps/fg')).json;
  assert.equal((await http('PUT', '/api/v1/namespaces/default/configmaps/fg', { ...cur, metadata: { ...cur.metadata, finalizers: [] } })).status, 200);
  assert.equal((await http('GET', '/api/v1/namespaces/default/configmaps/fg')).status, 404);
  await mk('or');
  const or = await http('DELETE', '/api/v1/namespaces/default/configmaps/or?propagationPolicy=Orphan');
  assert.deepEqual(or.json.metadata.finalizers, ['orphan']);
  await mk('bg');
  const bg = await http('DELETE', '/api/v1/namespaces/default/configmaps/bg', { kind: 'DeleteOptions', propagationPolicy: 'Background' });
  assert.equal(bg.status, 200);
  assert.equal(bg.json.kind, 'Status');
  assert.equal(bg.json.status, 'Success');
  assert.equal(bg.json.details.name, 'bg');
  assert.equal(bg.json.details.kind, 'configmaps');
  assert.ok(bg.json.details.uid);
  const badPolicy = await http('DELETE', '/api/v1/namespaces/default/configmaps/or?propagationPolicy=Sideways');
  assert.equal(badPolicy.status, 422);
  assert.equal(badPolicy.json.message, 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan"');
});

test('deletion decisions (pure): grace periods, shortening, finalizers', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const pod = { metadata: { name: 'p' }, spec: { nodeName: 'n', terminationGracePeriodSeconds: 30 }, status: { phase: 'Running' } };
  const a = decideDelete(pod, {}, true, now);
  assert.equal(a.kind, 'update');
  assert.deepEqual(a.kind === 'update' && [a.object.metadata], [{ name: 'p', deletionTimestamp: '2026-01-01T00:00:30Z', deletionGracePeriodSeconds: 30 }]);
  assert.equal(decideDelete({ ...pod, status: { phase: 'Succeeded' } }, {}, true, now).kind, 'delete');
  assert.equal(decideDelete(pod, { gracePeriodSeconds: -5 }, true, now).kind, 'update');
  const terminating = { ...pod, metadata: { name: 'p', deletionTimestamp: '2026-01-01T00:00:30Z', deletionGracePeriodSeconds: 30 } };
  assert.equal(decideDelete(terminating, {}, true, now).kind, 'pending');
  assert.equal(decideDelete(terminating, { gracePeriodSeconds: 30 }, true, now).kind, 'pending');
  const shorter = decideDelete(terminating, { gracePeriodSeconds: 10 }, true, now);
  assert.deepEqual(shorter.kind === 'update' && shorter.object.metadata, { name: 'p', deletionTimestamp: '2026-01-01T00:00:10Z', deletionGracePeriodSeconds: 10 });
  assert.equal(decideDelete(terminating, { gracePeriodSeconds: 0 }, true, now).kind, 'delete');
  const held = decideDelete({ ...terminating, metadata: { ...terminating.metadata, finalizers: ['x'] } }, { gracePeriodSeconds: 0 }, true, now);
  assert.equal(held.kind, 'update');
  assert.deepEqual(gcFinalizers(['a', 'orphan'], { propagationPolicy: 'Foreground' }), ['a', 'foregroundDeletion']);
  assert.deepEqual(gcFinalizers(['orphan'], {}), ['orphan']);
  assert.deepEqual(gcFinalizers([], { orphanDependents: true }), ['orphan']);
  assert.deepEqual(gcFinalizers(['foregroundDeletion'], { propagationPolicy: 'Background' }), []);
});
