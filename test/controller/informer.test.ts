import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, loadKubeConfig } from '../../src/k8s/client.js';
import { Informer } from '../../src/k8s/informers.js';
import { R } from '../../src/k8s/resources.js';
import { createLogger } from '../../src/log.js';
import type { KubeObject } from '../../src/k8s/types.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A fake API server for one collection: `mode` switches between serving `items` and 404; watches hang open. */
async function fakeCollection() {
  const state = { mode: 'ok' as 'ok' | '404', items: [] as KubeObject[], rv: 10, watches: new Set<http.ServerResponse>(), lists: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (state.mode === '404') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'the server could not find the requested resource' }));
      return;
    }
    if (url.searchParams.get('watch')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      state.watches.add(res);
      res.on('close', () => state.watches.delete(res));
      return;
    }
    state.lists++;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ kind: 'List', metadata: { resourceVersion: String(state.rv) }, items: state.items }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'inf-'));
  writeFileSync(join(dir, 'kc'), `apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: "http://127.0.0.1:${(server.address() as AddressInfo).port}"}}]\nusers: [{name: u, user: {token: t}}]\n`);
  const client = new KubeClient(loadKubeConfig(join(dir, 'kc')));
  return {
    state,
    client,
    breakWatches: () => {
      for (const w of state.watches) w.destroy();
    },
    close: async () => {
      for (const w of state.watches) w.destroy();
      client.close();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const pool = (name: string, rv: string): KubeObject => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });

test('informer: a resource never served counts as empty and synced only after the grace period', async (t) => {
  const f = await fakeCollection();
  t.after(() => f.close());
  f.state.mode = '404';
  const inf = new Informer(f.client, R.ipAddressPools, createLogger('test', 'none'), { namespace: 'ns', absentGraceMs: 300, absentPollMs: 50 });
  t.after(() => inf.stop());
  const started = Date.now();
  inf.start();
  await inf.waitForSync();
  assert.ok(Date.now() - started >= 290, 'not before the grace period');
  assert.equal(inf.absent, true);
  assert.equal(inf.size, 0);
  // Installed later: picked up.
  f.state.mode = 'ok';
  f.state.items = [pool('a', '11')];
  for (let i = 0; i < 100 && inf.size === 0; i++) await sleep(20);
  assert.equal(inf.get('ns/a')?.kind, 'IPAddressPool', 'kind filled in');
  assert.equal(inf.absent, false);
});

test('informer: a transient 404 after the resource was listed keeps the cache (no deletes); a later relist diffs', async (t) => {
  const f = await fakeCollection();
  t.after(() => f.close());
  f.state.items = [pool('a', '11'), pool('b', '12')];
  const inf = new Informer(f.client, R.ipAddressPools, createLogger('test', 'none'), { namespace: 'ns', absentGraceMs: 0, absentPollMs: 50, minRetryMs: 20 });
  t.after(() => inf.stop());
  const seen: string[] = [];
  inf.addHandlers({ add: (o) => seen.push(`add ${o.metadata?.name}`), update: (_a, b) => seen.push(`update ${b.metadata?.name}`), delete: (o) => seen.push(`delete ${o.metadata?.name}`) });
  inf.start();
  await inf.waitForSync();
  for (let i = 0; i < 50 && f.state.watches.size === 0; i++) await sleep(10);
  assert.deepEqual(seen, ['add a', 'add b']);
  f.state.mode = '404';
  f.breakWatches();
  await sleep(300);
  assert.equal(inf.size, 2, 'kept');
  assert.deepEqual(seen, ['add a', 'add b'], 'no deletes during the outage');
  f.state.mode = 'ok';
  f.state.items = [pool('a', '13')];
  const lists = f.state.lists;
  for (let i = 0; i < 100 && f.state.lists === lists; i++) await sleep(20);
  await sleep(50);
  assert.deepEqual(seen, ['add a', 'add b', 'update a', 'delete b']);
});

test('informer: watch false lists every pollIntervalMs and never watches; handlers see the differences', async (t) => {
  const f = await fakeCollection();
  t.after(() => f.close());
  f.state.items = [pool('a', '11')];
  const inf = new Informer(f.client, R.nodes, createLogger('test', 'none'), { watch: false, pollIntervalMs: 50 });
  t.after(() => inf.stop());
  const seen: string[] = [];
  inf.addHandlers({ add: (o) => seen.push(`add ${o.metadata?.name}`), update: (_a, b) => seen.push(`update ${b.metadata?.name}`), delete: (o) => seen.push(`delete ${o.metadata?.name}`) });
  inf.start();
  await inf.waitForSync();
  f.state.items = [pool('a', '12'), pool('b', '13')];
  for (let i = 0; i < 100 && seen.length < 3; i++) await sleep(20);
  f.state.items = [pool('b', '13')];
  for (let i = 0; i < 100 && seen.length < 4; i++) await sleep(20);
  assert.deepEqual(seen, ['add a', 'update a', 'add b', 'delete a']);
  assert.equal(f.state.watches.size, 0, 'no watch was opened');
  assert.ok(f.state.lists >= 3);
});

test('informer: transform applies to listed, watched and written-through objects before the cache and the handlers see them', async (t) => {
  const f = await fakeCollection();
  t.after(() => f.close());
  const full = (name: string, rv: string): KubeObject => ({ metadata: { name, namespace: 'ns', resourceVersion: rv, annotations: { big: 'x'.repeat(100) } } });
  f.state.items = [full('a', '11')];
  const transformed: string[] = [];
  const inf = new Informer(f.client, R.ipAddressPools, createLogger('test', 'none'), {
    namespace: 'ns',
    transform: (o) => {
      transformed.push(`${o.metadata?.name}@${o.metadata?.resourceVersion} ${o.kind}`);
      return { kind: o.kind, metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace, resourceVersion: o.metadata?.resourceVersion } };
    },
  });
  t.after(() => inf.stop());
  const seen: KubeObject[] = [];
  inf.addHandlers({ add: (o) => seen.push(o), update: (_a, b) => seen.push(b) });
  inf.start();
  await inf.waitForSync();
  for (let i = 0; i < 250 && f.state.watches.size === 0; i++) await sleep(20);
  assert.equal(f.state.watches.size, 1, 'watching');
  for (const w of f.state.watches) w.write(`${JSON.stringify({ type: 'ADDED', object: full('b', '12') })}\n`);
  for (let i = 0; i < 250 && inf.size < 2; i++) await sleep(20);
  inf.observeWrite(full('a', '13'), '11');
  // kind is filled in before the transform runs (it sees what the handlers would have seen).
  assert.deepEqual(transformed, ['a@11 IPAddressPool', 'b@12 IPAddressPool', 'a@13 IPAddressPool']);
  for (const key of ['ns/a', 'ns/b']) assert.equal(inf.get(key)?.metadata?.annotations, undefined, `${key} cached as transformed`);
  assert.equal(inf.get('ns/a')?.metadata?.resourceVersion, '13');
  assert.deepEqual(seen.map((o) => [o.metadata?.name, o.metadata?.annotations]), [['a', undefined], ['b', undefined]]);
});

test('informer: an index follows lists, watch events (an object moving between values, deletes) and written-through objects', async (t) => {
  const f = await fakeCollection();
  t.after(() => f.close());
  const obj = (name: string, rv: string, svc?: string): KubeObject => ({ metadata: { name, namespace: 'ns', resourceVersion: rv, ...(svc ? { labels: { svc } } : {}) } });
  f.state.items = [obj('a', '11', 'x'), obj('b', '12', 'x'), obj('c', '13')];
  const inf = new Informer(f.client, R.ipAddressPools, createLogger('test', 'none'), { namespace: 'ns', minRetryMs: 20, absentPollMs: 50 });
  t.after(() => inf.stop());
  const bySvc = inf.addIndex((o) => o.metadata?.labels?.['svc']);
  const names = (v: string): string[] => bySvc.get(v).map((o) => o.metadata?.name ?? '').sort();
  inf.start();
  await inf.waitForSync();
  assert.deepEqual(names('x'), ['a', 'b']);
  assert.deepEqual(names('y'), []);
  for (let i = 0; i < 250 && f.state.watches.size === 0; i++) await sleep(20);
  const send = (type: string, o: KubeObject): void => {
    for (const w of f.state.watches) w.write(`${JSON.stringify({ type, object: o })}\n`);
  };
  send('MODIFIED', obj('b', '14', 'y'));
  send('ADDED', obj('d', '15', 'y'));
  send('DELETED', obj('a', '16', 'x'));
  for (let i = 0; i < 1000 && inf.get('ns/a') !== undefined; i++) await sleep(20);
  assert.deepEqual(names('x'), []);
  assert.deepEqual(names('y'), ['b', 'd']);
  inf.observeWrite(obj('c', '17', 'x'), '13');
  assert.deepEqual(names('x'), ['c']);
  // A relist that no longer has d (a lost watch): the index loses it with the cache.
  f.state.items = [obj('b', '14', 'y'), obj('c', '17', 'x')];
  f.state.rv = 20;
  const lists = f.state.lists;
  f.state.mode = '404';
  f.breakWatches();
  await sleep(100);
  f.state.mode = 'ok';
  for (let i = 0; i < 1000 && (f.state.lists === lists || inf.get('ns/d') !== undefined); i++) await sleep(20);
  assert.deepEqual(names('y'), ['b']);
  assert.deepEqual(names('x'), ['c']);
  // An index added to a filled cache starts with its objects.
  assert.deepEqual(inf.addIndex((o) => o.metadata?.name).get('c').map((o) => o.metadata?.resourceVersion), ['17']);
});
