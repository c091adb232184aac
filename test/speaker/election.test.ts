// Layer 2 election: MetalLB's order to the byte, and every rule of reference d.1.
// Expected orders were computed independently (Python hashlib) from sha256(node + "#" + ip).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { electL2, electionOrder, goIPString, interfacesForNode, shouldAnnounceL2, type L2ElectionInput } from '../../src/speaker/l2/election.js';
import { adsOf, config, input, l2, mkNode, nodeMap, notReady, pool, ready } from './helpers.js';
import type { ServiceEndpoint } from '../../src/speaker/endpoints.js';
import { fromEndpointSlices, fromEndpoints } from '../../src/speaker/endpoints.js';

const FIVE = ['node1', 'node2', 'node3', 'node4', 'node5'].map((n) => mkNode(n));
const everyEndpoint = FIVE.map((n) => ready(n.metadata?.name));
const basic = config([pool('p', { addresses: ['10.97.0.0/24', 'fd00:97::/64', '2001:db8::/32'] }), l2('all')], FIVE);

const HASH_TABLE: [string, string[]][] = [
  ['10.97.0.1', ['node3', 'node1', 'node4', 'node2', 'node5']],
  ['10.97.0.2', ['node1', 'node4', 'node3', 'node2', 'node5']],
  ['10.97.0.10', ['node4', 'node3', 'node1', 'node5', 'node2']],
  ['fd00:97::1', ['node1', 'node4', 'node5', 'node2', 'node3']],
  // Written uncompressed / upper case / IPv4-mapped: Go's text form is hashed, not the status text.
  ['fd00:97:0:0:0:0:0:1', ['node1', 'node4', 'node5', 'node2', 'node3']],
  ['FD00:97::A', ['node2', 'node4', 'node5', 'node3', 'node1']],
  ['2001:db8:0:0:1:0:0:1', ['node4', 'node2', 'node5', 'node1', 'node3']],
  ['::ffff:10.97.0.5', ['node4', 'node3', 'node5', 'node1', 'node2']],
];

const base = (over: Partial<L2ElectionInput> = {}): L2ElectionInput =>
  input({ ads: adsOf(basic, 'p'), nodes: nodeMap(FIVE), ips: ['10.97.0.1'], endpoints: everyEndpoint, ...over });

test('goIPString: Go net.IP.String forms', () => {
  assert.equal(goIPString('10.97.0.1'), '10.97.0.1');
  assert.equal(goIPString('fd00:97:0:0:0:0:0:1'), 'fd00:97::1');
  assert.equal(goIPString('FD00:97::A'), 'fd00:97::a');
  assert.equal(goIPString('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(goIPString('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
  assert.equal(goIPString('::ffff:10.97.0.5'), '10.97.0.5');
});

test('hash order: sha256(node#ip) ascending, Go IP text', () => {
  for (const [ip, expected] of HASH_TABLE) {
    const e = electL2(base({ ips: [ip] }));
    assert.deepEqual(e.order, expected, ip);
    assert.equal(e.winner, expected[0]);
    assert.equal(e.hashIP, goIPString(ip));
    for (const n of FIVE) {
      const name = n.metadata?.name ?? '';
      const d = shouldAnnounceL2(name, base({ ips: [ip] }));
      assert.equal(d.announce, name === expected[0], `${ip} ${name}`);
      if (!d.announce) assert.equal(d.reason, 'notOwner');
    }
  }
  assert.deepEqual(electionOrder(['kind-worker', 'kind-worker2', 'kind-control-plane'], '172.18.255.200'), ['kind-worker2', 'kind-worker', 'kind-control-plane']);
});

test('dual-stack: elects once, on the first ingress address', () => {
  assert.equal(electL2(base({ ips: ['10.97.0.2', 'fd00:97::1'] })).winner, 'node1');
  assert.equal(electL2(base({ ips: ['10.97.0.10', 'fd00:97::a'] })).winner, 'node4');
  assert.equal(electL2(base({ ips: ['fd00:97::a', '10.97.0.10'] })).winner, 'node2');
});

test('removing a non-winner never moves the address; adding a node moves it only to the new node', () => {
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let trial = 0; trial < 300; trial++) {
    const names = Array.from({ length: 2 + rand(8) }, (_, i) => `n${i}-${rand(1000)}`);
    const uniq = [...new Set(names)];
    const ip = `10.97.${rand(256)}.${rand(256)}`;
    const order = electionOrder(uniq, ip);
    const winner = order[0];
    for (const gone of uniq.filter((n) => n !== winner)) {
      assert.equal(electionOrder(uniq.filter((n) => n !== gone), ip)[0], winner);
    }
    const added = `new-${trial}`;
    const after = electionOrder([...uniq, added], ip)[0];
    assert.ok(after === winner || after === added);
  }
});

test('preferred node weights: summed over the advertisements, only for nodes each advertisement selects', () => {
  const nodes = [
    mkNode('node1', { zone: 'b' }),
    mkNode('node2', { zone: 'a', gpu: 'true' }),
    mkNode('node3', { zone: 'a' }),
    mkNode('node4', { role: 'lb', zone: 'a' }),
    mkNode('node5', { role: 'lb' }),
  ];
  const cfg = config([
    pool('p', { addresses: ['10.97.0.0/24'] }),
    l2('prefer', { preferredNodeSelectors: [{ weight: 60, preference: { matchLabels: { zone: 'a' } } }, { weight: 50, preference: { matchLabels: { gpu: 'true' } } }] }),
    // Restricted ad: its preference only lifts its own nodes (node4, node5), never node2/node3 although they match.
    l2('lb-only', { nodeSelectors: [{ matchLabels: { role: 'lb' } }], preferredNodeSelectors: [{ weight: 100, preference: { matchLabels: { zone: 'a' } } }] }),
  ], nodes);
  const e = electL2(input({ ads: adsOf(cfg, 'p'), nodes: nodeMap(nodes), ips: ['10.97.0.1'], endpoints: nodes.map((n) => ready(n.metadata?.name)) }));
  assert.equal(e.scores.get('node4'), 160);
  assert.equal(e.scores.get('node2'), 110);
  assert.equal(e.scores.get('node3'), 60);
  assert.equal(e.scores.get('node1'), undefined);
  assert.equal(e.scores.get('node5'), undefined);
  // Score first; node1 and node5 (0) by hash: for 10.97.0.1, node1 sorts before node5.
  assert.deepEqual(e.order, ['node4', 'node2', 'node3', 'node1', 'node5']);

  // Equal scores fall back to the hash order: node3 and node4 both 60 with only the first ad.
  const cfg2 = config([pool('p', { addresses: ['10.97.0.0/24'] }), l2('prefer', { preferredNodeSelectors: [{ weight: 60, preference: { matchLabels: { zone: 'a' } } }] })], nodes);
  const e2 = electL2(input({ ads: adsOf(cfg2, 'p'), nodes: nodeMap(nodes), ips: ['10.97.0.1'], endpoints: nodes.map((n) => ready(n.metadata?.name)) }));
  assert.deepEqual(e2.order, ['node3', 'node4', 'node2', 'node1', 'node5']);

  // The preferred node is down (not a speaker): failover to the next by score, then hash.
  const e3 = electL2(input({ ads: adsOf(cfg, 'p'), nodes: nodeMap(nodes), ips: ['10.97.0.1'], speakers: new Set(['node1', 'node2', 'node3', 'node5']) }));
  assert.deepEqual(e3.order, ['node2', 'node3', 'node1', 'node5']);
});

test('exclusion label: skipped unless --ignore-exclude-lb', () => {
  const nodes = FIVE.map((n) => (n.metadata?.name === 'node3' ? mkNode('node3', { 'node.kubernetes.io/exclude-from-external-load-balancers': '' }) : n));
  const i = base({ nodes: nodeMap(nodes) });
  const e = electL2(i);
  assert.deepEqual(e.order, ['node1', 'node4', 'node2', 'node5']);
  assert.deepEqual(e.excluded, [{ node: 'node3', why: 'labelled node.kubernetes.io/exclude-from-external-load-balancers' }]);
  assert.equal(shouldAnnounceL2('node3', i).announce, false);
  assert.equal(shouldAnnounceL2('node1', i).announce, true);
  assert.equal(electL2({ ...i, ignoreExcludeLB: true }).winner, 'node3');
});

test('NetworkUnavailable=True nodes are skipped; False is fine', () => {
  const nodes = FIVE.map((n) => (n.metadata?.name === 'node3' ? mkNode('node3', {}, { networkUnavailable: true }) : n));
  assert.equal(electL2(base({ nodes: nodeMap(nodes) })).winner, 'node1');
  const ok = FIVE.map((n) => (n.metadata?.name === 'node3' ? mkNode('node3', {}, { networkUnavailable: false }) : n));
  assert.equal(electL2(base({ nodes: nodeMap(ok) })).winner, 'node3');
  // --ignore-exclude-lb does not lift NetworkUnavailable.
  assert.equal(electL2(base({ nodes: nodeMap(nodes), ignoreExcludeLB: true })).winner, 'node1');
});

test('endpoints: no serving endpoint anywhere => nobody announces, also for Cluster policy', () => {
  for (const endpoints of [[], [notReady('node1'), notReady('node3')]] as ServiceEndpoint[][]) {
    const i = base({ endpoints });
    const e = electL2(i);
    assert.equal(e.winner, undefined);
    assert.equal(e.reason, 'notOwner');
    for (const n of ['node1', 'node3']) {
      const d = shouldAnnounceL2(n, i);
      assert.equal(d.announce, false);
      if (!d.announce) assert.equal(d.reason, 'notOwner');
    }
  }
  // Cluster policy: one serving endpoint on any node (or none named) is enough, and does not restrict candidates.
  assert.equal(electL2(base({ endpoints: [ready('node5')] })).winner, 'node3');
  assert.equal(electL2(base({ endpoints: [ready()] })).winner, 'node3');
});

test('endpoint conditions: ready nil or true, or serving true, can serve', () => {
  const slices = fromEndpointSlices([{
    endpoints: [
      { addresses: ['10.244.1.2'], nodeName: 'node1', conditions: {} },
      { addresses: ['10.244.2.2'], nodeName: 'node2', conditions: { ready: true } },
      { addresses: ['10.244.3.2'], nodeName: 'node3', conditions: { ready: false, serving: true, terminating: true } },
      { addresses: ['10.244.4.2'], nodeName: 'node4', conditions: { ready: false } },
      { addresses: ['10.244.5.2'], nodeName: 'node5', conditions: { ready: false, serving: false } },
      { addresses: ['10.244.6.2'], conditions: { ready: null, serving: null } },
    ],
  }]);
  assert.deepEqual(slices.map((e) => e.canServe), [true, true, true, false, false, true]);
  assert.deepEqual(slices.map((e) => e.nodeName), ['node1', 'node2', 'node3', 'node4', 'node5', undefined]);
  const eps = fromEndpoints({ subsets: [{ addresses: [{ ip: '10.244.1.2', nodeName: 'node1' }], notReadyAddresses: [{ ip: '10.244.2.2', nodeName: 'node2' }] }] });
  assert.deepEqual(eps, [{ canServe: true, hasAddresses: true, nodeName: 'node1' }, { canServe: false, hasAddresses: true, nodeName: 'node2' }]);
  assert.deepEqual(fromEndpoints(undefined), []);
  assert.deepEqual(fromEndpointSlices([{ endpoints: null }]), []);
});

test('externalTrafficPolicy Local: only nodes with a serving endpoint, in hash order', () => {
  // Hash order for 10.97.0.1 is node3, node1, node4, node2, node5.
  const i = base({ localTrafficPolicy: true, endpoints: [ready('node2'), ready('node4'), notReady('node1'), ready()] });
  const e = electL2(i);
  assert.deepEqual(e.order, ['node4', 'node2']);
  assert.ok(e.excluded.some((x) => x.node === 'node3' && /externalTrafficPolicy: Local/.test(x.why)));
  assert.equal(shouldAnnounceL2('node4', i).announce, true);
  assert.equal(shouldAnnounceL2('node3', i).announce, false);
  // A serving-but-not-ready (terminating) endpoint counts.
  assert.equal(electL2(base({ localTrafficPolicy: true, endpoints: [{ nodeName: 'node5', canServe: true, hasAddresses: true }] })).winner, 'node5');
  // Endpoints only on nodes that may not announce: nobody.
  const nodes = FIVE.map((n) => (n.metadata?.name === 'node2' ? mkNode('node2', {}, { networkUnavailable: true }) : n));
  const none = electL2(base({ nodes: nodeMap(nodes), localTrafficPolicy: true, endpoints: [ready('node2')] }));
  assert.equal(none.winner, undefined);
  assert.equal(none.reason, 'notOwner');
  assert.match(none.message ?? '', /node2 \(NetworkUnavailable\)/);
});

test('advertisement nodeSelectors: candidates are the union; a node outside sits out with noMatchingAdvertisement', () => {
  const nodes = [mkNode('node1', { rack: 'r1' }), mkNode('node2', { rack: 'r1' }), mkNode('node3', { rack: 'r2' }), mkNode('node4', { rack: 'r3' }), mkNode('node5')];
  const cfg = config([
    pool('p', { addresses: ['10.97.0.0/24'] }),
    l2('r1', { nodeSelectors: [{ matchLabels: { rack: 'r1' } }] }),
    l2('r3', { nodeSelectors: [{ matchLabels: { rack: 'r3' } }], interfaces: ['eth1'] }),
  ], nodes);
  const i = input({ ads: adsOf(cfg, 'p'), nodes: nodeMap(nodes), ips: ['10.97.0.1'], endpoints: nodes.map((n) => ready(n.metadata?.name)) });
  assert.deepEqual(electL2(i).order, ['node1', 'node4', 'node2']);
  const d3 = shouldAnnounceL2('node3', i);
  assert.equal(d3.announce, false);
  if (!d3.announce) assert.equal(d3.reason, 'noMatchingAdvertisement');
  const d2 = shouldAnnounceL2('node2', i);
  assert.equal(!d2.announce && d2.reason, 'notOwner');
  assert.equal(shouldAnnounceL2('node1', i).announce, true);
  // A pool without any L2Advertisement: nobody, noMatchingAdvertisement.
  const bare = electL2(input({ ads: [], nodes: nodeMap(nodes), ips: ['10.97.0.1'] }));
  assert.equal(bare.reason, 'noMatchingAdvertisement');
});

test('serviceSelectors pick the advertisements, which pick the candidates', () => {
  const nodes = FIVE;
  const cfg = config([
    pool('p', { addresses: ['10.97.0.0/24'] }),
    l2('web', { serviceSelectors: [{ matchLabels: { app: 'web' } }], nodeSelectors: [{ matchLabels: { 'kubernetes.io/hostname': 'node2' } }] }),
    l2('db', { serviceSelectors: [{ matchLabels: { app: 'db' } }], nodeSelectors: [{ matchLabels: { 'kubernetes.io/hostname': 'node5' } }] }),
  ], nodes);
  const mk = (labels: Record<string, string>): L2ElectionInput => input({ ads: adsOf(cfg, 'p'), nodes: nodeMap(nodes), ips: ['10.97.0.1'], serviceLabels: labels, endpoints: everyEndpoint });
  assert.deepEqual(electL2(mk({ app: 'web' })).order, ['node2']);
  assert.deepEqual(electL2(mk({ app: 'db' })).order, ['node5']);
  const other = electL2(mk({ app: 'cache' }));
  assert.equal(other.winner, undefined);
  assert.equal(other.reason, 'noMatchingAdvertisement');
  const d = shouldAnnounceL2('node2', mk({ app: 'db' }));
  assert.equal(!d.announce && d.reason, 'noMatchingAdvertisement');
});

test('allow-shared-ip with an advertisement that has serviceSelectors: not announced', () => {
  const cfg = config([
    pool('p', { addresses: ['10.97.0.0/24'] }),
    l2('web', { serviceSelectors: [{ matchLabels: { app: 'web' } }] }),
  ], FIVE);
  const i = input({ ads: adsOf(cfg, 'p'), nodes: nodeMap(FIVE), ips: ['10.97.0.1'], serviceLabels: { app: 'web' }, allowSharedIP: true, endpoints: everyEndpoint });
  const e = electL2(i);
  assert.equal(e.winner, undefined);
  assert.equal(e.reason, 'sharedIPWithServiceSelector');
  for (const n of FIVE) {
    const d = shouldAnnounceL2(n.metadata?.name ?? '', i);
    assert.equal(!d.announce && d.reason, 'sharedIPWithServiceSelector');
  }
  // Without serviceSelectors, sharing is fine.
  assert.equal(electL2(base({ allowSharedIP: true })).winner, 'node3');
});

test('interfaces never influence the election; the node\'s interfaces are the union of its advertisements', () => {
  const withIfs = config([pool('p', { addresses: ['10.97.0.0/24'] }), l2('a', { interfaces: ['eth1'] })], FIVE);
  assert.deepEqual(electL2(base({ ads: adsOf(withIfs, 'p') })).order, electL2(base()).order);
  const nodes = [mkNode('node1', { rack: 'r1' }), mkNode('node2')];
  const cfg = config([
    pool('p', { addresses: ['10.97.0.0/24'] }),
    l2('a', { interfaces: ['eth1', 'bond0'] }),
    l2('b', { interfaces: ['eth2'], nodeSelectors: [{ matchLabels: { rack: 'r1' } }] }),
  ], nodes);
  assert.deepEqual(interfacesForNode(adsOf(cfg, 'p'), 'node1', nodeMap(nodes)), ['bond0', 'eth1', 'eth2']);
  assert.deepEqual(interfacesForNode(adsOf(cfg, 'p'), 'node2', nodeMap(nodes)), ['bond0', 'eth1']);
  const all = config([pool('p', { addresses: ['10.97.0.0/24'] }), l2('a', { interfaces: ['eth1'] }), l2('b')], nodes);
  assert.equal(interfacesForNode(adsOf(all, 'p'), 'node1', nodeMap(nodes)), 'all');
});

test('memberlist: candidates are the live speakers that are known Nodes', () => {
  // Hash order for 10.97.0.1: node3, node1, node4, node2, node5.
  const e = electL2(base({ speakers: new Set(['node1', 'node2', 'ghost']) }));
  assert.deepEqual(e.order, ['node1', 'node2']);
  assert.deepEqual(e.excluded.map((x) => `${x.node}:${x.why}`), [
    'ghost:not a known Node', 'node3:no live speaker', 'node4:no live speaker', 'node5:no live speaker',
  ]);
  assert.equal(shouldAnnounceL2('node3', base({ speakers: new Set(['node1', 'node2']) })).announce, false);
  const none = electL2(base({ speakers: new Set() }));
  assert.equal(none.winner, undefined);
  assert.equal(none.reason, 'notOwner');
  // Memberlist disabled: every Node.
  assert.equal(electL2(base({ speakers: undefined })).winner, 'node3');
});
