// pods/binding: what the scheduler posts to place a pod on a node.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';

let srv: DevApiServer;
before(async () => {
  srv = await startDevApiServer({ logLevel: 'none' });
});
after(async () => {
  await srv.close();
});

type Json = Record<string, unknown>;
async function http(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const r = await fetch(srv.url + path, { method, headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, json: (await r.json()) as Json };
}

const pod = (name: string): Json => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });

test('binding sets nodeName and PodScheduled=True, answers 201 Success', async () => {
  assert.equal((await http('POST', '/api/v1/namespaces/default/pods', pod('b1'))).status, 201);
  const r = await http('POST', '/api/v1/namespaces/default/pods/b1/binding', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'b1' }, target: { apiVersion: 'v1', kind: 'Node', name: 'node1' } });
  assert.equal(r.status, 201);
  assert.equal(r.json.status, 'Success');
  const got = (await http('GET', '/api/v1/namespaces/default/pods/b1')).json as { spec: { nodeName: string }; status: { conditions: { type: string; status: string }[] } };
  assert.equal(got.spec.nodeName, 'node1');
  assert.deepEqual(
    got.status.conditions.filter((c) => c.type === 'PodScheduled').map((c) => c.status),
    ['True'],
  );
});

test('binding an assigned pod is a 409 Conflict worded as kube-apiserver', async () => {
  await http('POST', '/api/v1/namespaces/default/pods', pod('b2'));
  await http('POST', '/api/v1/namespaces/default/pods/b2/binding', { metadata: { name: 'b2' }, target: { kind: 'Node', name: 'node1' } });
  const r = await http('POST', '/api/v1/namespaces/default/pods/b2/binding', { metadata: { name: 'b2' }, target: { kind: 'Node', name: 'node2' } });
  assert.equal(r.status, 409);
  assert.match(String(r.json.message), /pod b2 is already assigned to node "node1"/);
});

test('binding errors: missing target, wrong name, unknown pod, wrong method', async () => {
  await http('POST', '/api/v1/namespaces/default/pods', pod('b3'));
  assert.equal((await http('POST', '/api/v1/namespaces/default/pods/b3/binding', { metadata: { name: 'b3' }, target: {} })).status, 422);
  assert.equal((await http('POST', '/api/v1/namespaces/default/pods/b3/binding', { metadata: { name: 'other' }, target: { name: 'n' } })).status, 400);
  assert.equal((await http('POST', '/api/v1/namespaces/default/pods/nope/binding', { target: { name: 'n' } })).status, 404);
  assert.equal((await http('GET', '/api/v1/namespaces/default/pods/b3/binding')).status, 405);
  const disc = (await http('GET', '/api/v1')).json as { resources: { name: string; verbs: string[] }[] };
  assert.deepEqual(disc.resources.find((r) => r.name === 'pods/binding')?.verbs, ['create']);
});
