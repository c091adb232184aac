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

test('metrics: huge IPv6 pools are reported as floats, not errors', async () => {
  const m = new ControllerMetrics();
  m.setPoolStats([{ pool: 'v6', ipv4Total: 0n, ipv6Total: 1n << 64n, ipv4InUse: 0, ipv6InUse: 0 }]);
  assert.match(await m.text(), /metallb_allocator_ipv6_addresses_total\{pool="v6"\} 18446744073709552000/);
});
