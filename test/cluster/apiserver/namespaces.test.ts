// Namespace deletion as kube-apiserver's namespace registry does it: spec.finalizers change only through /finalize,
// a terminating namespace goes when neither spec.finalizers nor metadata.finalizers hold it, and the server's own
// namespace controller (on by default, off with namespaceController: false) empties and finalizes it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';
import { kubectl, kubectlOk } from '../../helpers/devserver.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Json = Record<string, unknown>;
let bare: DevApiServer; // no built-in namespace controller, like kube-apiserver
let full: DevApiServer; // the default: empties and finalizes terminating namespaces itself
let dir: string;

before(async () => {
  bare = await startDevApiServer({ logLevel: 'none', namespaceController: false });
  full = await startDevApiServer({ logLevel: 'none' });
  dir = mkdtempSync(join(tmpdir(), 'devserver-ns-'));
  writeFileSync(join(dir, 'bare.kubeconfig'), bare.kubeconfig);
});
after(async () => {
  await bare?.close();
  await full?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function http(srv: DevApiServer, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: Json }> {
  const r = await fetch(srv.url + path, { method, headers: { 'content-type': contentType }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await r.text();
  return { status: r.status, json: text ? (JSON.parse(text) as Json) : {} };
}
const ns = async (srv: DevApiServer, name: string): Promise<Json | undefined> => {
  const r = await http(srv, 'GET', `/api/v1/namespaces/${name}`);
  return r.status === 200 ? r.json : undefined;
};
const specFinalizers = (o: Json | undefined): unknown => (o?.spec as Json | undefined)?.finalizers;
const phase = (o: Json | undefined): unknown => (o?.status as Json | undefined)?.phase;

async function eventually<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the kubernetes finalizer is put on at creation, kept by updates, and only /finalize (PUT) changes spec.finalizers', async () => {
  const created = await http(bare, 'POST', '/api/v1/namespaces', { metadata: { name: 'fz' }, spec: { finalizers: ['example.com/keep'] } });
  assert.equal(created.status, 201);
  assert.deepEqual(specFinalizers(created.json), ['example.com/keep', 'kubernetes']);
  const put = await http(bare, 'PUT', '/api/v1/namespaces/fz', { metadata: { name: 'fz', labels: { a: 'b' } }, spec: { finalizers: [] } });
  assert.equal(put.status, 200);
  assert.deepEqual(specFinalizers(put.json), ['example.com/keep', 'kubernetes']);
  assert.deepEqual((put.json.metadata as Json).labels, { a: 'b', 'kubernetes.io/metadata.name': 'fz' });
  const bad = await http(bare, 'PUT', '/api/v1/namespaces/fz/finalize', { metadata: { name: 'fz' }, spec: { finalizers: ['nope'] } });
  assert.equal(bad.status, 422);
  assert.match(String(bad.json.message), /spec\.finalizers\[0\]: Invalid value: "nope": name is neither a standard finalizer name nor is it fully qualified/);
  const fin = await http(bare, 'PUT', '/api/v1/namespaces/fz/finalize', { metadata: { name: 'fz' }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Terminating' } });
  assert.equal(fin.status, 200);
  assert.deepEqual(specFinalizers(fin.json), ['kubernetes']);
  assert.equal(phase(fin.json), 'Active', '/finalize leaves the status alone');
  assert.equal((await http(bare, 'PATCH', '/api/v1/namespaces/fz/finalize', {}, 'application/merge-patch+json')).status, 405);
  // discovery: kubectl and client-go find the subresource (and RBAC names it namespaces/finalize)
  const v1 = await http(bare, 'GET', '/api/v1');
  const sub = (v1.json.resources as Json[]).find((r) => r.name === 'namespaces/finalize');
  assert.deepEqual(sub && { kind: sub.kind, verbs: sub.verbs }, { kind: 'Namespace', verbs: ['update'] });
});

test('without a namespace controller, a terminating namespace stays until /finalize empties spec.finalizers; updates and repeated deletes do not remove it', async () => {
  await kubectlOk(['create', 'namespace', 'held'], join(dir, 'bare.kubeconfig'));
  await kubectlOk(['-n', 'held', 'create', 'configmap', 'c', '--from-literal=k=v'], join(dir, 'bare.kubeconfig'));
  const del = await kubectl(['delete', 'namespace', 'held', '--wait=false'], join(dir, 'bare.kubeconfig'));
  assert.equal(del.code, 0, del.stderr);
  let cur = await ns(bare, 'held');
  assert.equal(phase(cur), 'Terminating');
  // an update of the terminating namespace (metadata.finalizers empty, spec.finalizers asked away) keeps it
  const upd = await http(bare, 'PUT', '/api/v1/namespaces/held', { ...cur, metadata: { ...(cur!.metadata as Json), labels: { x: 'y' } }, spec: { finalizers: [] } });
  assert.equal(upd.status, 200);
  assert.deepEqual(specFinalizers(upd.json), ['kubernetes']);
  const st = await http(bare, 'PUT', '/api/v1/namespaces/held/status', { ...upd.json, status: { phase: 'Terminating', conditions: [{ type: 'NamespaceContentRemaining', status: 'True', reason: 'SomeResourcesRemain', message: 'x' }] } });
  assert.equal(st.status, 200);
  assert.equal((await http(bare, 'DELETE', '/api/v1/namespaces/held')).status, 200);
  await new Promise((r) => setTimeout(r, 500));
  cur = await ns(bare, 'held');
  assert.ok(cur, 'still there');
  assert.equal((await http(bare, 'GET', '/api/v1/namespaces/held/configmaps/c')).status, 200, 'nobody emptied it');
  // the namespace controller's last step
  await http(bare, 'DELETE', '/api/v1/namespaces/held/configmaps/c');
  const fin = await http(bare, 'PUT', '/api/v1/namespaces/held/finalize', { ...cur, spec: { finalizers: [] } });
  assert.equal(fin.status, 200);
  assert.equal(await ns(bare, 'held'), undefined);
});

test('metadata.finalizers hold a terminating namespace after /finalize; removing the last one ends it', async () => {
  await http(bare, 'POST', '/api/v1/namespaces', { metadata: { name: 'metaheld', finalizers: ['example.com/x'] } });
  await http(bare, 'DELETE', '/api/v1/namespaces/metaheld');
  const cur = (await ns(bare, 'metaheld'))!;
  await http(bare, 'PUT', '/api/v1/namespaces/metaheld/finalize', { ...cur, spec: { finalizers: [] } });
  const after = await ns(bare, 'metaheld');
  assert.deepEqual([phase(after), specFinalizers(after)], ['Terminating', []]);
  await http(bare, 'PATCH', '/api/v1/namespaces/metaheld', { metadata: { finalizers: null } }, 'application/merge-patch+json');
  assert.equal(await ns(bare, 'metaheld'), undefined);
});

test('the built-in namespace controller empties the namespace and removes only its own finalizer', async () => {
  await http(full, 'POST', '/api/v1/namespaces', { metadata: { name: 'keep' }, spec: { finalizers: ['example.com/keep'] } });
  await http(full, 'POST', '/api/v1/namespaces/keep/configmaps', { metadata: { name: 'c' } });
  await http(full, 'POST', '/api/v1/namespaces/keep/secrets', { metadata: { name: 's', finalizers: ['example.com/hold'] } });
  await http(full, 'DELETE', '/api/v1/namespaces/keep');
  await eventually('the configmap deleted', async () => ((await http(full, 'GET', '/api/v1/namespaces/keep/configmaps/c')).status === 404 ? true : undefined));
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(specFinalizers(await ns(full, 'keep')), ['example.com/keep', 'kubernetes'], 'held by a secret that has a finalizer');
  await http(full, 'PATCH', '/api/v1/namespaces/keep/secrets/s', { metadata: { finalizers: null } }, 'application/merge-patch+json');
  const left = await eventually('the kubernetes finalizer removed', async () => {
    const n = await ns(full, 'keep');
    return JSON.stringify(specFinalizers(n)) === '["example.com/keep"]' ? n : undefined;
  });
  assert.equal(phase(left), 'Terminating');
  await http(full, 'PUT', '/api/v1/namespaces/keep/finalize', { ...left, spec: { finalizers: [] } });
  assert.equal(await ns(full, 'keep'), undefined);
  // the usual case: kubectl delete waits until the namespace is gone
  await http(full, 'POST', '/api/v1/namespaces', { metadata: { name: 'plain' } });
  await http(full, 'POST', '/api/v1/namespaces/plain/configmaps', { metadata: { name: 'c' } });
  await http(full, 'DELETE', '/api/v1/namespaces/plain');
  await eventually('namespace gone', async () => ((await ns(full, 'plain')) === undefined ? true : undefined));
});
