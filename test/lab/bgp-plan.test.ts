// The lab's BGP mode, pure parts: addresses (client behind the router, a routed Service range), the router's
// neighbors, the manifests `lab up` applies, the components, `lab status -o json`, GoBGP's kernel routes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePlan, findMachine } from '../../src/lab/plan.js';
import { clientUplinkCommands, netnsSysctls, nodeUplinkRoutes, routerUplinkCommands } from '../../src/lab/topology.js';
import { labPoolManifests } from '../../src/lab/install.js';
import { ecmpRouteArgs, ecmpRoutes, kernelBgpRoutes, labRouterSpec } from '../../src/lab/router.js';
import { componentSpecs } from '../../src/lab/components.js';
import { statusJson } from '../../src/lab/status.js';
import type { LabState } from '../../src/lab/state.js';

test('bgp mode: the client is behind the router, Services come from a block only the router routes', () => {
  const p = makePlan({ mode: 'bgp', nodes: 2 });
  assert.equal(p.mode, 'bgp');
  assert.deepEqual(p.bgp, {
    daemon: 'bird', routerAsn: 64501, nodeAsn: 64500,
    uplink: { ipv4: '10.89.200.0/24', ipv6: 'fd00:89:200::/64', routerIPv4: '10.89.200.1', routerIPv6: 'fd00:89:200::1' },
  });
  assert.deepEqual([p.router.netns, p.router.ipv4, p.router.ipv6], ['mlb-router', '10.89.0.254', 'fd00:89::254']);
  assert.deepEqual([p.client.netns, p.client.ipv4, p.client.ipv6], ['mlb-client', '10.89.200.100', 'fd00:89:200::100']);
  assert.deepEqual(p.serviceRange, { ipv4: '10.89.100.200-10.89.100.250', ipv6: 'fd00:89:100::200-fd00:89:100::250' });
  assert.equal(findMachine(p, 'router')?.netns, 'mlb-router');
  assert.equal(findMachine(makePlan(), 'router'), undefined, 'no router in layer 2 mode');
  assert.equal(makePlan({ mode: 'bgp', name: 'dev' }).bgp?.uplink.ipv4, `10.89.${200 + (Number(/10\.89\.(\d+)\./.exec(makePlan({ name: 'dev' }).host.ipv4)![1]))}.0/24`);
  assert.throws(() => makePlan({ router: 'frr' }), /--router needs --mode bgp/);
  assert.equal(makePlan({ mode: 'bgp', router: 'gobgp' }).bgp?.daemon, 'gobgp');
});

test('bgp mode: uplink addresses and routes; the router hashes ECMP per connection', () => {
  const p = makePlan({ mode: 'bgp', nodes: 1 });
  assert.deepEqual(routerUplinkCommands(p), ['addr add 10.89.200.1/24 dev eth1', 'addr add fd00:89:200::1/64 dev eth1 nodad', 'link set eth1 up']);
  assert.ok(clientUplinkCommands(p).includes('route replace default via 10.89.200.1'));
  assert.ok(clientUplinkCommands(p).includes('route replace default via fd00:89:200::1'));
  assert.deepEqual(nodeUplinkRoutes(p), ['route replace 10.89.200.0/24 via 10.89.0.254', 'route replace fd00:89:200::/64 via fd00:89::254']);
  assert.deepEqual(nodeUplinkRoutes(makePlan()), []);
  assert.ok(netnsSysctls('router').includes('net.ipv4.fib_multipath_hash_policy=1'));
  assert.ok(!netnsSysctls('node').some((s) => s.includes('multipath')));
});

test('bgp mode: the router peers with every node in both families, BFD except with GoBGP', () => {
  const spec = labRouterSpec(makePlan({ mode: 'bgp', nodes: 2 }));
  assert.equal(spec.asn, 64501);
  assert.equal(spec.kernel, true);
  assert.deepEqual(spec.neighbors.map((n) => [n.name, n.address, n.asn, n.bfd, n.families]), [
    ['node1', '10.89.0.11', 64500, true, ['ipv4']],
    ['node1_v6', 'fd00:89::11', 64500, true, ['ipv6']],
    ['node2', '10.89.0.12', 64500, true, ['ipv4']],
    ['node2_v6', 'fd00:89::12', 64500, true, ['ipv6']],
  ]);
  const g = labRouterSpec(makePlan({ mode: 'bgp', router: 'gobgp' }));
  assert.equal(g.kernel, false);
  assert.ok(g.neighbors.every((n) => !n.bfd));
  assert.throws(() => labRouterSpec(makePlan()), /not in BGP mode/);
});

test('bgp mode: lab up applies a pool, a BFDProfile, a BGPPeer per router address and a BGPAdvertisement', () => {
  const objs = labPoolManifests(makePlan({ mode: 'bgp' }));
  assert.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.name}`), ['IPAddressPool/lab-pool', 'BFDProfile/lab-bfd', 'BGPPeer/lab-router', 'BGPPeer/lab-router-v6', 'BGPAdvertisement/lab-bgp']);
  assert.deepEqual(objs[2]!.spec, { myASN: 64500, peerASN: 64501, peerAddress: '10.89.0.254', bfdProfile: 'lab-bfd' });
  assert.deepEqual(objs[3]!.spec, { myASN: 64500, peerASN: 64501, peerAddress: 'fd00:89::254', bfdProfile: 'lab-bfd' });
  const g = labPoolManifests(makePlan({ mode: 'bgp', router: 'gobgp' }));
  assert.ok(!g.some((o) => o.kind === 'BFDProfile'));
  // Without BFD on the router, a short hold time is what notices a dead node.
  assert.deepEqual(g.find((o) => o.metadata.name === 'lab-router')!.spec, { myASN: 64500, peerASN: 64501, peerAddress: '10.89.0.254', holdTime: '3s' });
});

test('bgp mode: the router is a component; lab status -o json names it', () => {
  const state: LabState = { version: 1, plan: makePlan({ mode: 'bgp', nodes: 1, router: 'frr' }), loadBalancer: true, createdAt: '', root: '/x' };
  const router = componentSpecs(state).find((c) => c.name === 'router');
  assert.deepEqual(router?.args, ['lab', 'router', '--name', 'lab', '--state-dir', '/var/run/metallb-lab']);
  assert.equal(componentSpecs({ ...state, plan: makePlan({ nodes: 1 }) }).some((c) => c.name === 'router'), false);
  assert.deepEqual(statusJson(state.plan).router, { netns: 'mlb-router', daemon: 'frr', asn: 64501, ipv4: '10.89.0.254', ipv6: 'fd00:89::254', nodeASN: 64500 });
  assert.equal('router' in statusJson(makePlan()), false);
});

test('GoBGP kernel routes: one route per prefix through every node, link-local next hops left out', () => {
  const routes = ecmpRoutes([
    { prefix: '10.89.100.200/32', nextHops: ['10.89.0.12'], asPath: [64500], communities: [], largeCommunities: [] },
    { prefix: '10.89.100.200/32', nextHops: ['10.89.0.11'], asPath: [64500], communities: [], largeCommunities: [] },
    { prefix: 'fd00:89:100::200/128', nextHops: ['fd00:89::11', 'fe80::1'], asPath: [64500], communities: [], largeCommunities: [] },
  ]);
  assert.deepEqual([...routes], [['10.89.100.200/32', ['10.89.0.11', '10.89.0.12']], ['fd00:89:100::200/128', ['fd00:89::11']]]);
  assert.deepEqual(ecmpRouteArgs('10.89.100.200/32', ['10.89.0.11', '10.89.0.12']), ['route', 'replace', '10.89.100.200/32', 'proto', 'bgp', 'nexthop', 'via', '10.89.0.11', 'nexthop', 'via', '10.89.0.12']);
  assert.deepEqual(ecmpRouteArgs('fd00:89:100::200/128', ['fd00:89::11']), ['route', 'replace', 'fd00:89:100::200/128', 'via', 'fd00:89::11', 'proto', 'bgp']);
});

test('GoBGP kernel routes: what `ip -j route show proto bgp` holds, keyed as ecmpRoutes keys them', () => {
  // Captured from a GoBGP lab router's namespace (IPv4 ECMP, IPv6 single next hop, a prefix shorter than a host).
  const v4 = JSON.parse('[{"dst":"10.89.127.200","flags":[],"nexthops":[{"gateway":"10.89.27.12","dev":"eth0","weight":1,"flags":[]},{"gateway":"10.89.27.11","dev":"eth0","weight":1,"flags":[]}]},{"dst":"10.89.127.0/28","gateway":"10.89.27.11","dev":"eth0","flags":[]}]') as unknown;
  const v6 = JSON.parse('[{"dst":"fd00:89:127::200","gateway":"fd00:89:27::11","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}]') as unknown;
  assert.deepEqual([...kernelBgpRoutes(v4, 'ipv4')], [['10.89.127.200/32', '10.89.27.11,10.89.27.12'], ['10.89.127.0/28', '10.89.27.11']]);
  assert.deepEqual([...kernelBgpRoutes(v6, 'ipv6')], [['fd00:89:127::200/128', 'fd00:89:27::11']]);
  assert.deepEqual([...kernelBgpRoutes(null, 'ipv4')], []);
  assert.equal(kernelBgpRoutes(v4, 'ipv4').get('10.89.127.200/32'), [...ecmpRoutes([
    { prefix: '10.89.127.200/32', nextHops: ['10.89.27.12'], asPath: [], communities: [], largeCommunities: [] },
    { prefix: '10.89.127.200/32', nextHops: ['10.89.27.11'], asPath: [], communities: [], largeCommunities: [] },
  ]).values()][0]!.join(','));
});
