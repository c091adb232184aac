// The lab's names and addresses (pure): the default lab matches INTERFACES.md exactly; named labs never collide with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLabName, findMachine, labSlot, macFor, makePlan, nodePlan } from '../../src/lab/plan.js';
import { bridgeCommands, machineHostCommands, machineNetnsCommands, netnsSysctls, podRouteCommands, sysctlScript } from '../../src/lab/topology.js';
import { conflicts } from '../../src/lab/preflight.js';
import { restartDelayMs } from '../../src/lab/supervisor.js';
import { firstIP, tokenFile } from '../../src/lab/credentials.js';
import { statusJson } from '../../src/lab/status.js';
import { parseManifests } from '../../src/lab/apply.js';
import { labPoolManifests } from '../../src/lab/install.js';

test('the default lab uses the names and addresses of INTERFACES.md', () => {
  const p = makePlan();
  assert.equal(p.name, 'lab');
  assert.equal(p.bridge, 'mlb-br0');
  assert.equal(p.podNetnsPrefix, 'mlb-pod-');
  assert.equal(p.stateDir, '/var/run/metallb-lab');
  assert.deepEqual(p.lan, { ipv4: '10.89.0.0/24', ipv6: 'fd00:89::/64' });
  assert.deepEqual(p.host, { ipv4: '10.89.0.1', ipv6: 'fd00:89::1' });
  assert.deepEqual(p.serviceRange, { ipv4: '10.89.0.200-10.89.0.250', ipv6: 'fd00:89::200-fd00:89::250' });
  assert.deepEqual(p.serviceCIDRs, ['10.96.0.0/16', 'fd00:10:96::/112']);
  assert.equal(p.nodes.length, 3);
  const n1 = p.nodes[0]!;
  assert.deepEqual(
    { name: n1.name, netns: n1.netns, ipv4: n1.ipv4, ipv6: n1.ipv6, iface: n1.interface, host: n1.hostInterface, pod: n1.podCIDRs },
    { name: 'node1', netns: 'mlb-node1', ipv4: '10.89.0.11', ipv6: 'fd00:89::11', iface: 'eth0', host: 'mlb-node1', pod: ['10.244.1.0/24', 'fd00:10:244:1::/64'] },
  );
  assert.equal(p.nodes[2]!.ipv6, 'fd00:89::13');
  assert.deepEqual([p.client.netns, p.client.ipv4, p.client.ipv6], ['mlb-client', '10.89.0.100', 'fd00:89::100']);
  assert.deepEqual([p.router.netns, p.router.ipv4, p.router.ipv6], ['mlb-router', '10.89.0.254', 'fd00:89::254']);
});

test('MACs are 02:00 + the IPv4 address', () => {
  assert.equal(macFor('10.89.0.11'), '02:00:0a:59:00:0b');
  assert.equal(makePlan().client.mac, '02:00:0a:59:00:64');
});

test('a named lab derives its own prefix, bridge, state dir and disjoint address blocks', () => {
  const a = makePlan({ name: 'dev', nodes: 50 });
  const d = makePlan({ nodes: 50 });
  assert.equal(a.bridge, 'mlbdev-br0');
  assert.equal(a.podNetnsPrefix, 'mlbdev-pod-');
  assert.equal(a.stateDir, '/var/run/metallb-lab-dev');
  assert.notEqual(a.lan.ipv4, d.lan.ipv4);
  const slot = labSlot('dev');
  assert.ok(slot >= 1 && slot <= 39);
  assert.equal(a.lan.ipv4, `10.89.${slot}.0/24`);
  assert.equal(a.lan.ipv6, `fd00:89:${slot}::/64`);
  assert.equal(a.nodes[0]!.ipv6, `fd00:89:${slot}::11`);
  assert.equal(a.nodes[0]!.podCIDRs[0], `10.${200 + slot}.1.0/24`);
  // No name of the other lab starts with this lab's prefix and the reverse (cleanup goes by prefix).
  for (const n of [...a.nodes, a.client, a.router]) {
    assert.ok(!n.netns.startsWith(d.prefix) && n.hostInterface.length <= 15, n.netns);
  }
  for (const n of [...d.nodes, d.client, d.router]) assert.ok(!n.netns.startsWith(a.prefix));
  const longest = makePlan({ name: 'abcd', nodes: 50 });
  for (const n of [...longest.nodes, longest.client, longest.router]) assert.ok(n.hostInterface.length <= 15, n.hostInterface);
});

test('lab names and node counts are checked', () => {
  assert.throws(() => checkLabName('Lab'), /not valid/);
  assert.throws(() => checkLabName('toolong'), /not valid/);
  assert.throws(() => checkLabName('a-b'), /not valid/);
  assert.doesNotThrow(() => checkLabName('x1'));
  assert.throws(() => makePlan({ nodes: 0 }), /--nodes 0/);
  assert.throws(() => makePlan({ nodes: 51 }), /1 to 50/);
  assert.throws(() => nodePlan(makePlan(), 0), /out of range/);
});

test('findMachine takes names and namespace names', () => {
  const p = makePlan();
  assert.equal(findMachine(p, 'node2')?.ipv4, '10.89.0.12');
  assert.equal(findMachine(p, 'mlb-client')?.name, 'client');
  assert.equal(findMachine(p, 'node9'), undefined);
});

test('topology commands: bridge without multicast snooping, nodad addresses, routes to other nodes only', () => {
  const p = makePlan({ nodes: 2 });
  assert.deepEqual(bridgeCommands(p), [
    'link add mlb-br0 type bridge mcast_snooping 0',
    'addr add 10.89.0.1/24 dev mlb-br0',
    'addr add fd00:89::1/64 dev mlb-br0 nodad',
    'link set mlb-br0 up',
  ]);
  assert.deepEqual(machineHostCommands(p, p.nodes[0]!), [
    'link add mlb-node1 type veth peer name eth0 netns mlb-node1 address 02:00:0a:59:00:0b',
    'link set mlb-node1 master mlb-br0 up',
  ]);
  assert.ok(machineNetnsCommands(p, p.nodes[0]!).includes('addr add fd00:89::11/64 dev eth0 nodad'));
  assert.deepEqual(podRouteCommands(p.nodes, p.nodes[0]), ['route replace 10.244.2.0/24 via 10.89.0.12', 'route replace fd00:10:244:2::/64 via fd00:89::12']);
  assert.equal(podRouteCommands(p.nodes).length, 4);
  assert.ok(netnsSysctls('node').includes('net.ipv4.ip_forward=1'));
  assert.ok(!netnsSysctls('client').some((s) => s.includes('forward')));
  assert.ok(netnsSysctls('client').includes('net.ipv6.conf.default.accept_dad=0'));
  assert.equal(sysctlScript(['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.accept_dad=0']), 'echo 1 > /proc/sys/net/ipv4/ip_forward && echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad');
});

test('preflight finds addresses and routes in the lab ranges', () => {
  const found = conflicts(
    ['10.89.0.0/24', 'fd00:89::/64', '10.244.0.0/16'],
    [
      { ifname: 'eth1', addr_info: [{ local: '10.89.0.7', prefixlen: 24 }] },
      { ifname: 'eth0', addr_info: [{ local: '192.168.1.2', prefixlen: 24 }] },
      { ifname: 'wg0', addr_info: [{ local: '10.1.2.3', prefixlen: 8 }] },
    ],
    [{ dst: 'default' }, { dst: '10.244.5.0/24', dev: 'tun0' }, { dst: '10.0.0.0/8', dev: 'wg0' }, { dst: 'fd00:89::5', dev: 'x' }, { dst: '192.168.1.0/24' }],
  );
  assert.deepEqual(found, [
    '10.89.0.0/24: address 10.89.0.7/24 on eth1',
    '10.244.0.0/16: route 10.244.5.0/24 dev tun0',
    'fd00:89::/64: route fd00:89::5 dev x',
  ]);
});

test('restart back-off doubles from 1 s to 30 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map(restartDelayMs), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test('credentials: token file format and the kubernetes Service IPs', () => {
  assert.equal(firstIP('10.96.0.0/16'), '10.96.0.1');
  assert.equal(firstIP('fd00:10:96::/112'), 'fd00:10:96::1');
  assert.equal(
    tokenFile([
      { key: 'a', user: 'system:node:node1', groups: ['system:nodes'], token: 't1' },
      { key: 'b', user: 'system:kube-scheduler', groups: [], token: 't2' },
    ]),
    't1,system:node:node1,system:node:node1,"system:nodes"\nt2,system:kube-scheduler,system:kube-scheduler\n',
  );
});

test('status -o json has exactly the shape of issue 6', () => {
  const j = statusJson(makePlan({ nodes: 1 }));
  assert.deepEqual(Object.keys(j), ['kubeconfig', 'lan', 'serviceRange', 'client', 'nodes']);
  assert.deepEqual(Object.keys(j.client), ['netns', 'interface', 'ipv4', 'ipv6', 'mac']);
  assert.deepEqual(Object.keys(j.nodes[0]!), ['name', 'netns', 'interface', 'ipv4', 'ipv6', 'mac', 'podCIDRs']);
  assert.equal(j.kubeconfig, '/var/run/metallb-lab/kubeconfig');
});

test('manifests: multi-document YAML, Lists flattened, non-objects refused', () => {
  assert.throws(() => parseManifests('a: 1\n', 'x.yaml'), /x.yaml: a document is not a Kubernetes object/);
  const objs = parseManifests(
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n',
    'x.yaml',
  );
  assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.name}`), ['ConfigMap/a', 'Secret/b']);
});

test('the lab pool covers the Service range in both families', () => {
  const [pool, l2] = labPoolManifests(makePlan());
  assert.deepEqual((pool!.spec as { addresses: string[] }).addresses, ['10.89.0.200-10.89.0.250', 'fd00:89::200-fd00:89::250']);
  assert.equal(l2!.kind, 'L2Advertisement');
});
