// Query parameters parsed as kube-apiserver's parameter codec parses them: booleans are false only for `0` and
// `false` in any case (the Python client sends `watch=True`), integers go through strconv.ParseInt and a bad one is a
// 400 carrying strconv's words.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';

let srv: DevApiServer;
before(async () => {
  srv = await startDevApiServer({ logLevel: 'none', bookmarkIntervalMs: 100 });
  await fetch(`${srv.url}/api/v1/namespaces/default/configmaps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ metadata: { name: 'p1' } }) });
});
after(async () => {
  await srv.close();
});

/** The first chunk of a response (a watch stays open), or the whole body of a plain answer. */
async function firstChunk(path: string): Promise<{ status: number; text: string; chunked: boolean }> {
  const ac = new AbortController();
  const r = await fetch(`${srv.url}${path}`, { signal: ac.signal });
  const reader = r.body!.getReader();
  const { value } = await reader.read();
  ac.abort();
  return { status: r.status, text: new TextDecoder().decode(value ?? new Uint8Array()), chunked: r.headers.get('transfer-encoding') === 'chunked' };
}

test('watch=True, watch=1, watch=t, watch= are watches; watch=0, watch=false, watch=FALSE are lists', async () => {
  for (const v of ['True', 'true', '1', 't', 'T', 'TRUE', 'yes', '']) {
    const r = await firstChunk(`/api/v1/namespaces/default/configmaps?watch=${v}`);
    assert.equal(r.status, 200, v);
    const ev = JSON.parse(r.text.split('\n')[0]!) as { type: string; object: { kind: string } };
    assert.deepEqual([ev.type, ev.object.kind], ['ADDED', 'ConfigMap'], `watch=${v}`);
  }
  for (const v of ['0', 'false', 'False', 'FALSE']) {
    const r = await firstChunk(`/api/v1/namespaces/default/configmaps?watch=${v}`);
    assert.equal((JSON.parse(r.text) as { kind: string }).kind, 'ConfigMapList', `watch=${v}`);
  }
});

test('allowWatchBookmarks=True sends bookmarks; sendInitialEvents=True ends the initial events with one', async () => {
  const r = await fetch(`${srv.url}/api/v1/namespaces/default/configmaps?watch=True&allowWatchBookmarks=True&sendInitialEvents=True&resourceVersionMatch=NotOlderThan&timeoutSeconds=1`);
  const text = await r.text();
  assert.match(text, /"type":"BOOKMARK".*"k8s.io\/initial-events-end":"true"/);
});

test('bad integers are a 400 with strconv.ParseInt\'s words', async () => {
  for (const [path, value] of [
    ['/api/v1/namespaces/default/configmaps?limit=ten', 'ten'],
    ['/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1.5', '1.5'],
  ] as const) {
    const r = await fetch(`${srv.url}${path}`);
    assert.equal(r.status, 400, path);
    const s = (await r.json()) as { reason: string; message: string };
    assert.equal(s.reason, 'BadRequest');
    assert.equal(s.message, `strconv.ParseInt: parsing "${value}": invalid syntax`);
  }
  const del = await fetch(`${srv.url}/api/v1/namespaces/default/configmaps/p1?gracePeriodSeconds=soon`, { method: 'DELETE' });
  assert.equal(del.status, 400);
  assert.equal(((await del.json()) as { message: string }).message, 'strconv.ParseInt: parsing "soon": invalid syntax');
  // limit as a proper integer pages
  const page = (await (await fetch(`${srv.url}/api/v1/namespaces?limit=1`)).json()) as { items: unknown[]; metadata: { continue?: string } };
  assert.equal(page.items.length, 1);
  assert.ok(page.metadata.continue);
});
