import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type Pool } from '../../src/config/index.js';
import type { KubeObject } from '../../src/k8s/types.js';
import { createLogger } from '../../src/log.js';
import { ConfigReconciler, stableKey } from '../../src/controller/config-reconciler.js';
import { ControllerMetrics } from '../../src/controller/metrics.js';

const NS = 'metallb-system';
const pool = (name: string, addresses: string[], extra: Record<string, unknown> = {}): KubeObject =>
  ({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name, namespace: NS }, spec: { addresses, ...extra } }) as KubeObject;

function setup(objects: KubeObject[]) {
  const setPools: (readonly Pool[])[] = [];
  const events: { name: string; kind: string; type: string; reason: string; message: string }[] = [];
  let reprocess = 0;
  const metrics = new ControllerMetrics();
  const rec = new ConfigReconciler({
    namespace: NS,
    parse: parseConfig,
    sources: { configObjects: () => objects, cluster: () => ({ namespaces: [], nodes: [], secrets: [] }) },
    allocator: { setPools: (p) => setPools.push(p) },
    events: { record: (o, type, reason, message) => events.push({ name: o.metadata?.name ?? '', kind: o.kind ?? '', type, reason, message }) },
    log: createLogger('test', 'none'),
    metrics,
    onPoolsChanged: () => reprocess++,
  });
  return { rec, setPools, events, metrics, get reprocess() { return reprocess; } };
}

const gauge = async (m: ControllerMetrics, name: string): Promise<number | undefined> => (await m.registry.getSingleMetric(name)?.get())?.values[0]?.value;

test('config: a valid config sets the pools and reprocesses; an unchanged one does nothing', async () => {
  const objects = [pool('a', ['192.0.2.0/24'])];
  const s = setup(objects);
  s.rec.reconcile();
  assert.equal(s.setPools.length, 1);
  assert.equal(s.reprocess, 1);
  assert.equal(s.rec.loaded, true);
  assert.equal(await gauge(s.metrics, 'metallb_k8s_client_config_loaded_bool'), 1);
  assert.equal(await gauge(s.metrics, 'metallb_k8s_client_config_stale_bool'), 0);
  s.rec.reconcile();
  assert.equal(s.setPools.length, 1, 'unchanged: no setPools');
  assert.equal(s.reprocess, 1, 'unchanged: no reprocess');
  objects.push(pool('b', ['198.51.100.0/24']));
  s.rec.reconcile();
  assert.equal(s.setPools.length, 2);
  assert.equal(s.reprocess, 2);
});

test('config: errors reject the whole config, keep the last good one, mark stale, emit one Warning per error once', async () => {
  const objects = [pool('a', ['192.0.2.0/24'])];
  const s = setup(objects);
  s.rec.reconcile();
  objects.push(pool('b', ['192.0.2.0/25']), pool('c', ['203.0.113.0/24'], { autoAssign: 'yes' }));
  s.rec.reconcile();
  assert.equal(s.setPools.length, 1, 'rejected: allocator keeps the previous pools');
  assert.equal(s.rec.isStale, true);
  assert.equal(await gauge(s.metrics, 'metallb_k8s_client_config_stale_bool'), 1);
  assert.ok(s.events.length >= 1);
  for (const e of s.events) {
    assert.equal(e.type, 'Warning');
    assert.equal(e.reason, 'InvalidConfiguration');
    assert.equal(e.kind, 'IPAddressPool');
  }
  assert.ok(s.events.some((e) => e.name === 'b' && /overlap/.test(e.message)), JSON.stringify(s.events));
  const n = s.events.length;
  s.rec.reconcile();
  assert.equal(s.events.length, n, 'the same errors are not reported again');
  objects.splice(1);
  s.rec.reconcile();
  assert.equal(s.rec.isStale, false);
  assert.equal(await gauge(s.metrics, 'metallb_k8s_client_config_stale_bool'), 0);
});

test('config: no valid config yet -> not loaded, nothing handed to the allocator', () => {
  const s = setup([pool('a', ['nope'])]);
  s.rec.reconcile();
  assert.equal(s.rec.loaded, false);
  assert.equal(s.setPools.length, 0);
  assert.equal(s.events[0]?.name, 'a');
});

test('stableKey: order of object keys and Set members does not matter; bigints and selectors do', () => {
  assert.equal(stableKey({ a: 1, b: new Set(['x', 'y']) }), stableKey({ b: new Set(['y', 'x']), a: 1 }));
  assert.notEqual(stableKey({ n: 1n }), stableKey({ n: 2n }));
  assert.equal(stableKey({ s: { text: 'a=b', matches: () => true } }), stableKey({ s: { text: 'a=b', matches: () => false } }));
  assert.notEqual(stableKey({ s: { text: 'a=b' } }), stableKey({ s: { text: 'a=c' } }));
});
