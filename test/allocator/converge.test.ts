// Table-driven tests of converge (MetalLB's convergeBalancer + allocator rules), one row per rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pool } from '../../src/config/types.js';
import type { Service } from '../../src/k8s/types.js';
import { applyResult, pool, svc } from './helpers.js';
import { ServiceAllocator } from '../../src/allocator/index.js';

interface Row {
  name: string;
  pools: Pool[];
  /** Converged first, in order, results written back. */
  existing?: Service[];
  svc: Service;
  ips: string[];
  pool?: string;
  /** Substring of pendingReason. */
  pending?: string;
  /** Event reasons, in order. */
  events?: string[];
  /** Substring of the first event message. */
  message?: string;
}

const V4 = pool('v4', ['10.0.0.0/24']);
const rows: Row[] = [
  // c.3 address choice
  { name: 'a /24 starts at the network address', pools: [V4], svc: svc('a'), ips: ['10.0.0.0'], pool: 'v4', events: ['IPAllocated'], message: 'Assigned IP ["10.0.0.0"]' },
  { name: 'next address after existing ones', pools: [V4], existing: [svc('a'), svc('b')], svc: svc('c'), ips: ['10.0.0.2'], pool: 'v4' },
  { name: 'avoidBuggyIPs skips .0', pools: [pool('p', ['10.0.0.0/24'], { avoidBuggyIPs: true })], svc: svc('a'), ips: ['10.0.0.1'], pool: 'p' },
  { name: 'avoidBuggyIPs skips .255 and .0 inside a range', pools: [pool('p', ['10.0.0.254-10.0.1.2'], { avoidBuggyIPs: true })], existing: [svc('a')], svc: svc('b'), ips: ['10.0.1.1'], pool: 'p' },
  { name: 'a /31 yields .0', pools: [pool('p', ['1.2.3.0/31'])], svc: svc('a'), ips: ['1.2.3.0'], pool: 'p' },
  { name: 'prefixes in configured order', pools: [pool('p', ['10.9.0.0/32', '10.1.0.0/32'])], existing: [svc('a')], svc: svc('b'), ips: ['10.1.0.0'], pool: 'p' },
  { name: 'exhausted pool: pending with the reason', pools: [pool('p', ['10.0.0.0/31'])], existing: [svc('a'), svc('b')], svc: svc('c'), ips: [], pending: 'pool p (IPv4 2 of 2 in use)', events: ['AllocationFailed'], message: 'Failed to allocate IP for "default/c": no available IPs' },
  { name: 'no pools configured', pools: [], svc: svc('a'), ips: [], pending: 'no IPAddressPool is configured', events: [] },
  { name: 'not a LoadBalancer', pools: [V4], svc: svc('a', { type: 'ClusterIP' }), ips: [], pending: 'not a LoadBalancer', events: [] },
  // autoAssign, address-pool, requested IPs
  { name: 'autoAssign=false is not used automatically', pools: [pool('manual', ['10.1.0.0/30'], { autoAssign: false })], svc: svc('a'), ips: [], pending: 'autoAssign: false', events: ['AllocationFailed'] },
  { name: 'autoAssign=false usable through address-pool', pools: [V4, pool('manual', ['10.1.0.0/30'], { autoAssign: false })], svc: svc('a', { pool: 'manual' }), ips: ['10.1.0.0'], pool: 'manual' },
  { name: 'autoAssign=false usable through loadBalancerIP', pools: [pool('manual', ['10.1.0.0/30'], { autoAssign: false })], svc: svc('a', { ip: '10.1.0.2' }), ips: ['10.1.0.2'], pool: 'manual' },
  { name: 'the event says why in plain words after MetalLB\'s wording', pools: [pool('p', ['10.0.0.0/32'])], existing: [svc('a')], svc: svc('c'), ips: [], pending: 'pool p (IPv4 1 of 1 in use)', events: ['AllocationFailed'], message: 'Failed to allocate IP for "default/c": no available IPs (no pool has an IPv4 address free for this service: pool p (IPv4 1 of 1 in use))' },
  { name: 'unknown pool', pools: [V4], svc: svc('a', { pool: 'nope' }), ips: [], pending: 'does not exist', message: 'unknown pool "nope"' },
  { name: 'requested IP outside every pool', pools: [V4], svc: svc('a', { ip: '192.168.1.1' }), ips: [], pending: '192.168.1.1 is not in any IPAddressPool', message: '["192.168.1.1"] is not allowed in config' },
  { name: 'requested buggy IP in avoidBuggyIPs pool', pools: [pool('p', ['10.0.0.0/24'], { avoidBuggyIPs: true })], svc: svc('a', { ip: '10.0.0.255' }), ips: [], pending: 'avoidBuggyIPs' },
  { name: 'both loadBalancerIP and loadBalancerIPs', pools: [V4], svc: svc('a', { ip: '10.0.0.5', ips: '10.0.0.6' }), ips: [], pending: 'service can not have both', events: ['AllocationFailed'] },
  { name: 'invalid loadBalancerIPs', pools: [V4], svc: svc('a', { ips: '10.0.0.x' }), ips: [], pending: 'invalid metallb.io/loadBalancerIPs' },
  { name: 'requested IP with matching address-pool', pools: [V4, pool('q', ['10.1.0.0/24'])], svc: svc('a', { ip: '10.1.0.9', pool: 'q' }), ips: ['10.1.0.9'], pool: 'q' },
  { name: 'requested IP in another pool than address-pool', pools: [V4, pool('q', ['10.1.0.0/24'])], svc: svc('a', { ip: '10.0.0.9', pool: 'q' }), ips: [], pending: 'not in the requested pool q', message: 'is not compatible with requested address pool q' },
  { name: 'requested IP family mismatch', pools: [pool('d', ['10.0.0.0/24', 'fd00::/64'])], svc: svc('a', { ip: 'fd00::5' }), ips: [], pending: 'do not match', message: 'does not match the ipFamily of the service' },
  { name: 'deprecated annotation honoured', pools: [V4, pool('q', ['10.1.0.0/24'])], svc: svc('a', { annotations: { 'metallb.universe.tf/address-pool': 'q' } }), ips: ['10.1.0.0'], pool: 'q' },
  { name: 'metallb.io wins even when empty', pools: [V4, pool('zq', ['10.1.0.0/24'])], svc: svc('a', { annotations: { 'metallb.universe.tf/address-pool': 'zq', 'metallb.io/address-pool': '' } }), ips: ['10.0.0.0'], pool: 'v4' },
  { name: 'deprecated loadBalancerIPs', pools: [V4], svc: svc('a', { annotations: { 'metallb.universe.tf/loadBalancerIPs': '10.0.0.7' } }), ips: ['10.0.0.7'], pool: 'v4' },
  { name: 'deprecated allow-shared-ip honoured', pools: [V4], existing: [svc('a', { share: 'k' })], svc: svc('b', { annotations: { 'metallb.universe.tf/allow-shared-ip': 'k' }, ports: ['TCP/443'] }), ips: ['10.0.0.0'] },
  { name: 'empty metallb.io/allow-shared-ip wins over deprecated', pools: [V4], existing: [svc('a', { share: 'k' })], svc: svc('b', { annotations: { 'metallb.universe.tf/allow-shared-ip': 'k', 'metallb.io/allow-shared-ip': '' }, ports: ['TCP/443'] }), ips: ['10.0.0.1'] },
  { name: 'metallb.io wins over deprecated loadBalancerIPs', pools: [V4], svc: svc('a', { annotations: { 'metallb.universe.tf/loadBalancerIPs': '10.0.0.7', 'metallb.io/loadBalancerIPs': '10.0.0.8' } }), ips: ['10.0.0.8'] },
  // sharing
  { name: 'same key, other port: shares', pools: [V4], existing: [svc('a', { share: 'k', ports: ['TCP/80'] })], svc: svc('b', { share: 'k', ports: ['TCP/443'] }), ips: ['10.0.0.0'], pool: 'v4' },
  { name: 'same key, same port: next address', pools: [V4], existing: [svc('a', { share: 'k', ports: ['TCP/80'] })], svc: svc('b', { share: 'k', ports: ['TCP/80'] }), ips: ['10.0.0.1'] },
  { name: 'TCP/53 and UDP/53 share', pools: [V4], existing: [svc('a', { share: 'dns', ports: ['TCP/53'] })], svc: svc('b', { share: 'dns', ports: ['UDP/53'] }), ips: ['10.0.0.0'] },
  { name: 'different keys do not share', pools: [V4], existing: [svc('a', { share: 'k1', ports: ['TCP/80'] })], svc: svc('b', { share: 'k2', ports: ['TCP/443'] }), ips: ['10.0.0.1'] },
  { name: 'no key on the new service: no sharing', pools: [V4], existing: [svc('a', { share: 'k', ports: ['TCP/80'] })], svc: svc('b', { ports: ['TCP/443'] }), ips: ['10.0.0.1'] },
  { name: 'Local with different selectors: no sharing', pools: [V4], existing: [svc('a', { share: 'k', local: { app: 'x' } })], svc: svc('b', { share: 'k', local: { app: 'y' }, ports: ['TCP/81'] }), ips: ['10.0.0.1'] },
  { name: 'Local with the same selector: shares', pools: [V4], existing: [svc('a', { share: 'k', local: { app: 'x', tier: 'a' } })], svc: svc('b', { share: 'k', local: { tier: 'a', app: 'x' }, ports: ['TCP/81'] }), ips: ['10.0.0.0'] },
  { name: 'Local vs Cluster: no sharing', pools: [V4], existing: [svc('a', { share: 'k', local: { app: 'x' } })], svc: svc('b', { share: 'k', ports: ['TCP/81'] }), ips: ['10.0.0.1'] },
  { name: 'shareable address before untouched ones', pools: [V4], existing: [svc('a', { share: 'k' }), svc('b'), svc('c', { share: 'k', ports: ['TCP/443'] })], svc: svc('d', { share: 'k', ports: ['TCP/8080'] }), ips: ['10.0.0.0'] },
  { name: 'shareable address found past a clashing one', pools: [V4], existing: [svc('a', { share: 'k', ports: ['TCP/80'] }), svc('b', { share: 'k', ports: ['TCP/80'] }), svc('c', { share: 'k', ports: ['TCP/443'], ip: '10.0.0.1' })], svc: svc('d', { share: 'k', ports: ['TCP/443'] }), ips: ['10.0.0.0'] },
  { name: 'requested IP held by a non-sharing service', pools: [V4], existing: [svc('a')], svc: svc('b', { ip: '10.0.0.0' }), ips: [], pending: '10.0.0.0 is in use by default/a', message: 'can\'t change sharing key for "default/b", address also in use by default/a' },
  { name: 'requested IP shared with a port clash', pools: [V4], existing: [svc('a', { share: 'k' })], svc: svc('b', { ip: '10.0.0.0', share: 'k' }), ips: [], pending: 'port TCP/80 is already used there by default/a', message: 'port TCP/80 is already in use on "10.0.0.0"' },
  { name: 'requested IP shared, ports compatible', pools: [V4], existing: [svc('a', { share: 'k' })], svc: svc('b', { ip: '10.0.0.0', share: 'k', ports: ['UDP/80'] }), ips: ['10.0.0.0'] },
  // serviceAllocation: priority, namespaces, selectors, fallback
  { name: 'lower positive priority first', pools: [pool('p2', ['10.2.0.0/24'], { priority: 2 }), pool('p1', ['10.1.0.0/24'], { priority: 1 }), V4], svc: svc('a'), ips: ['10.1.0.0'], pool: 'p1' },
  { name: 'priority 0 after positive', pools: [pool('z', ['10.3.0.0/24'], { priority: 0, allocation: true }), pool('p5', ['10.5.0.0/24'], { priority: 5 })], svc: svc('a'), ips: ['10.5.0.0'], pool: 'p5' },
  { name: 'equal priorities: by name', pools: [pool('b', ['10.2.0.0/24'], { priority: 1 }), pool('a', ['10.1.0.0/24'], { priority: 1 })], svc: svc('s'), ips: ['10.1.0.0'], pool: 'a' },
  { name: 'priority-only pool wins over plain', pools: [pool('aaa', ['10.0.0.0/24']), pool('zzz', ['10.9.0.0/24'], { priority: 0, allocation: true })], svc: svc('s'), ips: ['10.9.0.0'], pool: 'zzz' },
  { name: 'plain pools by name', pools: [pool('zeta', ['10.2.0.0/24']), pool('alpha', ['10.1.0.0/24'])], svc: svc('s'), ips: ['10.1.0.0'], pool: 'alpha' },
  { name: 'pinned exhausted: plain fallback', pools: [pool('pin', ['10.1.0.0/32'], { priority: 1 }), pool('plain', ['10.2.0.0/24'])], existing: [svc('a')], svc: svc('b'), ips: ['10.2.0.0'], pool: 'plain' },
  { name: 'namespace pool for its namespace', pools: [V4, pool('prod', ['10.7.0.0/24'], { namespaces: ['prod'] })], svc: svc('a', { ns: 'prod' }), ips: ['10.7.0.0'], pool: 'prod' },
  { name: 'namespace pool not for others', pools: [V4, pool('prod', ['10.7.0.0/24'], { namespaces: ['prod'] })], svc: svc('a', { ns: 'dev' }), ips: ['10.0.0.0'], pool: 'v4' },
  { name: 'restricted pool never in plain fallback', pools: [pool('prod', ['10.7.0.0/24'], { namespaces: ['prod'] })], svc: svc('a', { ns: 'dev' }), ips: [], pending: 'only serves namespaces prod' },
  { name: 'namespace restriction also for explicit IPs', pools: [pool('prod', ['10.7.0.0/24'], { namespaces: ['prod'] })], svc: svc('a', { ns: 'dev', ip: '10.7.0.3' }), ips: [], pending: 'only serves namespaces prod', message: 'pool prod not compatible for ip assignment' },
  { name: 'empty resolved namespace set admits nobody (our rule)', pools: [pool('sel', ['10.7.0.0/24'], { namespaces: [], restrictsNamespaces: true })], svc: svc('a', { pool: 'sel' }), ips: [], pending: 'match no namespace' },
  { name: 'service selector matches', pools: [V4, pool('web', ['10.8.0.0/24'], { serviceSelectors: [{ app: 'web' }] })], svc: svc('a', { labels: { app: 'web' } }), ips: ['10.8.0.0'], pool: 'web' },
  { name: 'service selector does not match', pools: [V4, pool('web', ['10.8.0.0/24'], { serviceSelectors: [{ app: 'web' }] })], svc: svc('a', { labels: { app: 'db' } }), ips: ['10.0.0.0'], pool: 'v4' },
  { name: 'namespace AND selector', pools: [V4, pool('x', ['10.8.0.0/24'], { namespaces: ['prod'], serviceSelectors: [{ app: 'web' }] })], svc: svc('a', { ns: 'dev', labels: { app: 'web' } }), ips: ['10.0.0.0'], pool: 'v4' },
  { name: 'autoAssign=false pinned pool skipped', pools: [V4, pool('x', ['10.8.0.0/24'], { priority: 1, autoAssign: false })], svc: svc('a'), ips: ['10.0.0.0'], pool: 'v4' },
  // dual stack
  { name: 'IPv6 single stack', pools: [pool('d', ['10.0.0.0/24', 'fd00::/64'])], svc: svc('a', { clusterIPs: ['fd10::1'] }), ips: ['fd00::'], pool: 'd' },
  { name: 'IPv6 from ipFamilies without clusterIPs', pools: [pool('d', ['10.0.0.0/24', 'fd00::/64'])], svc: svc('a', { families: ['IPv6'] }), ips: ['fd00::'], pool: 'd' },
  { name: 'RequireDualStack from one pool', pools: [V4, pool('d', ['10.1.0.0/24', 'fd00::/64'])], svc: svc('a', { policy: 'RequireDualStack', clusterIPs: ['10.96.0.1', 'fd10::1'] }), ips: ['10.1.0.0', 'fd00::'], pool: 'd', message: 'Assigned IP ["10.1.0.0" "fd00::"]' },
  { name: 'RequireDualStack needs both in one pool', pools: [V4, pool('v6', ['fd00::/64'])], svc: svc('a', { policy: 'RequireDualStack' }), ips: [], pending: 'both an IPv4 and an IPv6' },
  { name: 'RequireDualStack with one clusterIP', pools: [pool('d', ['10.1.0.0/24', 'fd00::/64'])], svc: svc('a', { policy: 'RequireDualStack', clusterIPs: ['10.96.0.1'] }), ips: [], events: ['not enough clusterips'], pending: 'fewer than two cluster IPs' },
  { name: 'PreferDualStack degrades to IPv4', pools: [V4, pool('v6', ['fd00::/64'])], svc: svc('a', { policy: 'PreferDualStack' }), ips: ['10.0.0.0'], pool: 'v4', events: ['IPAllocated'] },
  { name: 'PreferDualStack primary IPv6', pools: [V4, pool('v6', ['fd00::/64'])], svc: svc('a', { policy: 'PreferDualStack', families: ['IPv6', 'IPv4'] }), ips: ['fd00::'], pool: 'v6' },
  { name: 'PreferDualStack takes both when a pool has both', pools: [V4, pool('d', ['10.1.0.0/24', 'fd00::/64'])], svc: svc('a', { policy: 'PreferDualStack' }), ips: ['10.1.0.0', 'fd00::'], pool: 'd' },
  { name: 'dual requested IPs, v4 first', pools: [pool('d', ['10.1.0.0/24', 'fd00::/64'])], svc: svc('a', { policy: 'RequireDualStack', ips: 'fd00::9, 10.1.0.9' }), ips: ['10.1.0.9', 'fd00::9'], pool: 'd' },
  { name: 'dual requested IPs of one family', pools: [pool('d', ['10.1.0.0/24', 'fd00::/64'])], svc: svc('a', { policy: 'RequireDualStack', ips: '10.1.0.8,10.1.0.9' }), ips: [], pending: 'one IPv4 and one IPv6' },
  { name: 'dual service sharing must pass on both IPs', pools: [pool('d', ['10.1.0.0/24', 'fd00::/64'])], existing: [svc('a', { share: 'k', policy: 'RequireDualStack' }), svc('b', { ip: 'fd00::1' })], svc: svc('c', { share: 'k', policy: 'RequireDualStack', ports: ['TCP/443'] }), ips: ['10.1.0.0', 'fd00::'], pool: 'd' },
  // restore
  { name: 'status kept when still allowed', pools: [V4], svc: svc('a', { status: ['10.0.0.77'] }), ips: ['10.0.0.77'], pool: 'v4', events: [] },
  { name: 'status outside config: cleared and reallocated', pools: [V4], svc: svc('a', { status: ['192.168.0.1'] }), ips: ['10.0.0.0'], pool: 'v4', events: ['ClearAssignment', 'IPAllocated'] },
  { name: 'status in another pool than address-pool: moved', pools: [V4, pool('q', ['10.1.0.0/24'])], svc: svc('a', { status: ['10.0.0.5'], pool: 'q' }), ips: ['10.1.0.0'], pool: 'q', events: ['IPAllocated'] },
  { name: 'status differs from loadBalancerIP: moved', pools: [V4], svc: svc('a', { status: ['10.0.0.5'], ip: '10.0.0.6' }), ips: ['10.0.0.6'], pool: 'v4' },
  { name: 'status family differs: reallocated', pools: [pool('d', ['10.1.0.0/24', 'fd00::/64'])], svc: svc('a', { status: ['10.1.0.5'], families: ['IPv6'] }), ips: ['fd00::'], pool: 'd' },
  { name: 'status taken by a non-sharing service converged first', pools: [V4], existing: [svc('a', { status: ['10.0.0.1'] })], svc: svc('b', { status: ['10.0.0.1'] }), ips: ['10.0.0.0'], events: ['ClearAssignment', 'IPAllocated'] },
  { name: 'PreferDualStack adds the missing family', pools: [pool('d', ['10.1.0.0/24', 'fd00::/64'])], svc: svc('a', { status: ['10.1.0.4'], policy: 'PreferDualStack' }), ips: ['10.1.0.4', 'fd00::'], events: ['IPAllocated'], message: 'Assigned additional IP "fd00::"' },
  { name: 'invalid request keeps the held IP', pools: [V4], svc: svc('a', { status: ['10.0.0.4'], ips: 'bogus' }), ips: ['10.0.0.4'], events: ['LoadBalancerFailed'] },
];

for (const row of rows) {
  test(`converge: ${row.name}`, () => {
    const a = new ServiceAllocator();
    a.setPools(row.pools);
    for (const e of row.existing ?? []) a.converge(e);
    // Converge until settled (a Service restored from its status defers new allocations to the next pass).
    let current = row.svc;
    let r = a.converge(current);
    const events = [...r.events];
    for (let pass = 0; r.reprocessAll && pass < 3; pass++) {
      current = applyResult(current, r);
      r = a.converge(current);
      events.push(...r.events);
    }
    r = { ...r, events };
    assert.deepEqual(r.ingress, row.ips, JSON.stringify(r));
    if (row.pool !== undefined) assert.equal(r.pool, row.pool);
    if (row.ips.length === 0) assert.equal(r.pool, undefined);
    if (row.pending !== undefined) assert.ok(r.pendingReason?.includes(row.pending), `pendingReason: ${r.pendingReason}`);
    if (row.ips.length > 0) assert.equal(r.pendingReason, undefined);
    if (row.events) assert.deepEqual(r.events.map((e) => e.reason), row.events, JSON.stringify(r.events));
    if (row.message !== undefined) assert.ok(r.events[0]?.message.includes(row.message), `message: ${r.events[0]?.message}`);
    // Idempotent: converging the written-back Service again changes nothing and reports nothing.
    const again = a.converge(applyResult(current, r));
    assert.deepEqual(again.ingress, r.ingress);
    assert.equal(again.pool, r.pool);
    assert.deepEqual(again.events, [], JSON.stringify(again.events));
    assert.equal(again.reprocessAll, false);
  });
}
