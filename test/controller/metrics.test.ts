import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ControllerMetrics } from '../../src/controller/metrics.js';

test('metrics: MetalLB names, pool labels, removal of vanished pools', async () => {
  const m = new ControllerMetrics();
  m.setPoolStats([
    { pool: 'a', ipv4Total: 256n, ipv6Total: 0n, ipv4InUse: 3, ipv6InUse: 0 },
    { pool: 'b', ipv4Total: 4n, ipv6Total: 16n, ipv4InUse: 1, ipv6InUse: 2 },
  ]);
  m.updates.inc();
  m.updates.inc();
  m.updateErrors.inc();
  m.configLoaded.set(1);
  const text = await m.text();
  for (const line of [
    'metallb_allocator_addresses_total{pool="a"} 256',
    'metallb_allocator_ipv4_addresses_total{pool="a"} 256',
    'metallb_allocator_ipv6_addresses_total{pool="b"} 16',
    'metallb_allocator_addresses_total{pool="b"} 20',
    'metallb_allocator_addresses_in_use_total{pool="b"} 3',
    'metallb_allocator_ipv4_addresses_in_use_total{pool="a"} 3',
    'metallb_allocator_ipv6_addresses_in_use_total{pool="b"} 2',
    'metallb_k8s_client_updates_total 2',
    'metallb_k8s_client_update_errors_total 1',
    'metallb_k8s_client_config_loaded_bool 1',
    'metallb_k8s_client_config_stale_bool 0',
  ]) {
    assert.ok(text.split('\n').includes(line), `missing: ${line}`);
  }
  assert.match(text, /# TYPE metallb_allocator_addresses_total gauge/);
  assert.match(text, /# TYPE metallb_k8s_client_updates_total counter/);
  assert.match(text, /# HELP metallb_allocator_services_allocated_total /);
  m.setPoolStats([{ pool: 'b', ipv4Total: 4n, ipv6Total: 16n, ipv4InUse: 0, ipv6InUse: 0 }]);
  const text2 = await m.text();
  assert.doesNotMatch(text2, /pool="a"/);
  assert.match(text2, /metallb_allocator_addresses_in_use_total\{pool="b"\} 0/);
});

test('metrics: pool gauges are read from the source at every scrape, so they never lag behind status', async () => {
  const m = new ControllerMetrics();
  let inUse = 0;
  m.readPoolStatsFrom(() => [{ pool: 'p', ipv4Total: 8n, ipv6Total: 0n, ipv4InUse: inUse, ipv6InUse: 0 }]);
  assert.match(await m.text(), /metallb_allocator_addresses_in_use_total\{pool="p"\} 0/);
  inUse = 5;
  assert.match(await m.text(), /metallb_allocator_addresses_in_use_total\{pool="p"\} 5/);
  assert.match(await m.text(), /metallb_allocator_ipv4_addresses_in_use_total\{pool="p"\} 5/);
});

test('metrics: huge IPv6 pools are reported as floats, not errors', async () => {
  const m = new ControllerMetrics();
  m.setPoolStats([{ pool: 'v6', ipv4Total: 0n, ipv6Total: 1n << 64n, ipv4InUse: 0, ipv6InUse: 0 }]);
  assert.match(await m.text(), /metallb_allocator_ipv6_addresses_total\{pool="v6"\} 18446744073709552000/);
});

test('metrics: work-queue and reconcile metrics (controller-runtime names)', async () => {
  const { WorkQueue } = await import('../../src/controller/workqueue.js');
  const m = new ControllerMetrics();
  let fail = true;
  const q: InstanceType<typeof WorkQueue<string>> = new WorkQueue<string>(
    async (k) => {
      if (k === 'bad' && fail) {
        fail = false;
        throw new Error('x');
      }
    },
    { baseDelayMs: 1, observer: m.queueObserver('service', () => q.length) },
  );
  q.add('a');
  q.add('a');
  q.add('bad');
  assert.match(await m.text(), /workqueue_depth\{name="service"\} 2/);
  q.start();
  // The retry comes back after its back-off timer, which a loaded machine may fire late: wait for it, not for a
  // fixed time.
  const deadline = Date.now() + 10_000;
  while (fail || !/workqueue_adds_total\{name="service"\} 4/.test(await m.text())) {
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await q.idle();
  const text = await m.text();
  assert.match(text, /workqueue_adds_total\{name="service"\} 4/, 'three adds plus the retry');
  assert.match(text, /workqueue_retries_total\{name="service"\} 1/);
  assert.match(text, /controller_runtime_reconcile_total\{controller="service",result="success"\} 2/);
  assert.match(text, /controller_runtime_reconcile_total\{controller="service",result="error"\} 1/);
  assert.match(text, /controller_runtime_reconcile_errors_total\{controller="service"\} 1/);
  assert.match(text, /controller_runtime_reconcile_time_seconds_count\{controller="service"\} 3/);
  assert.match(text, /workqueue_depth\{name="service"\} 0/);
  await q.shutdown();
});
