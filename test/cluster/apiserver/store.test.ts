import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Store, type StoreEvent } from '../../../src/cluster/apiserver/store.js';

const o = (name: string, ns = 'default') => ({ metadata: { name, namespace: ns } });

test('resourceVersion is a global counter; objects indexed by namespace', () => {
  const s = new Store(100, 1);
  const e1 = s.put('/services', o('a'), 'ADDED');
  const e2 = s.put('/configmaps', o('b', 'kube-system'), 'ADDED');
  assert.equal(e1.rv, 2);
  assert.equal(e2.rv, 3);
  assert.equal(s.currentRV(), 3);
  assert.equal((s.get('/services', 'default', 'a')!.metadata as { resourceVersion: string }).resourceVersion, '2');
  assert.equal(s.list('/configmaps', 'default').length, 0);
  assert.equal(s.list('/configmaps').length, 1);
  s.remove('/services', { ...o('a') });
  assert.equal(s.get('/services', 'default', 'a'), undefined);
  assert.equal(s.currentRV(), 4);
});

test('history: events since an RV; 410 (gone) once evicted', () => {
  const s = new Store(5, 10);
  for (let i = 0; i < 8; i++) s.put('/services', o(`s${i}`), 'ADDED');
  // rv 11..18 written; only the last 5 (14..18) are retained
  assert.equal(s.eventsSince(9), 'gone');
  assert.equal(s.eventsSince(12), 'gone');
  const since13 = s.eventsSince(13);
  assert.notEqual(since13, 'gone');
  assert.deepEqual((since13 as StoreEvent[]).map((e) => e.rv), [14, 15, 16, 17, 18]);
  assert.deepEqual((s.eventsSince(16, '/services') as StoreEvent[]).map((e) => e.rv), [17, 18]);
  assert.deepEqual(s.eventsSince(16, '/pods'), []);
  assert.deepEqual(s.eventsSince(18), []);
});

test('watchers get events of their resource and namespace', () => {
  const s = new Store();
  const got: string[] = [];
  const stop = s.watch({ key: '/services', namespace: 'a', onEvent: (e) => got.push(`${e.type}:${e.namespace}`) });
  s.put('/services', o('x', 'a'), 'ADDED');
  s.put('/services', o('x', 'b'), 'ADDED');
  s.put('/pods', o('x', 'a'), 'ADDED');
  s.put('/services', o('x', 'a'), 'MODIFIED');
  stop();
  s.put('/services', o('y', 'a'), 'ADDED');
  assert.deepEqual(got, ['ADDED:a', 'MODIFIED:a']);
});

test('snapshot and load keep objects, the counter and recent events', () => {
  const s = new Store(100, 1);
  for (let i = 0; i < 5; i++) s.put('/services', o(`s${i}`), 'ADDED');
  const snap = JSON.parse(JSON.stringify(s.snapshot(3)));
  const t = new Store(100, 1);
  t.load(snap);
  assert.equal(t.currentRV(), 6);
  assert.equal(t.list('/services').length, 5);
  assert.deepEqual((t.eventsSince(3) as StoreEvent[]).map((e) => e.rv), [4, 5, 6]);
  assert.equal(t.eventsSince(2), 'gone');
  t.put('/services', o('new'), 'ADDED');
  assert.equal(t.currentRV(), 7);
});
