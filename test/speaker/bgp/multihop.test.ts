// eBGP multihop and BFD multihop (RFC 5883) against BIRD and FRR (GoBGP: BGP only, it has no BFD) with a router between the node and the peer
// (test/helpers/routed-netns.ts). What the TTL does is checked where the packets are: nftables counters on the router
// in between and on the peer count our segments by the TTL they arrive with.
//   - single-hop eBGP (no ebgpMultiHop) sends with TTL 1: the SYN dies at the router (ICMP Time Exceeded), the
//     session never establishes, and the error says why;
//   - ebgpMultiHop sends with TTL 255 (254 at the peer): the session establishes, routes carry the node's address
//     as next hop, BFD runs multihop (UDP 4784, TTL 255) and is Up on both sides (BIRD's packets, TTL 64, only once
//     minimumTtl allows them); cutting the path further along
//     (no link goes down anywhere) brings BFD down on both sides and BGP with it, long before the 90 s hold timer;
//   - iBGP crosses the router without any flag (TTL 255), as the daemons do.
//   GoBGP (`[neighbors.ebgp-multihop.config]`) gets the same single-hop, multihop (without BFD; the cut path is then
//   only noticed by the hold timer, not tested here) and iBGP cases.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startRouter, type Router } from '../../../src/lab/routers/runner.js';
import type { RouteEntry, RouterDaemon, RouterSpec } from '../../../src/lab/routers/types.js';
import type { BfdStatus } from '../../../src/speaker/bfd/engine.js';
import { eventually, NodeDriver } from '../../helpers/bgp-netns.js';
import { isRoot } from '../../helpers/netns.js';
import { createRoutedNet, type RoutedNet } from '../../helpers/routed-netns.js';

const BFD = { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoMode: false, passiveMode: false, minimumTtl: 254 };
const HOLD = 90;

const CASES: { daemon: RouterDaemon; family: 'ipv4' | 'ipv6'; subnet: number }[] = [
  { daemon: 'bird', family: 'ipv4', subnet: 20 },
  { daemon: 'frr', family: 'ipv4', subnet: 22 },
  { daemon: 'bird', family: 'ipv6', subnet: 24 },
  { daemon: 'frr', family: 'ipv6', subnet: 26 },
  { daemon: 'gobgp', family: 'ipv4', subnet: 28 },
  { daemon: 'gobgp', family: 'ipv6', subnet: 30 },
];

for (const { daemon, family, subnet } of CASES) {
  describe(`multihop with ${daemon} over ${family}`, { concurrency: false, skip: isRoot() ? false : 'needs root (network namespaces)' }, () => {
    let net: RoutedNet;
    const routers: Router[] = [];
    const drivers: NodeDriver[] = [];
    const v6 = family === 'ipv6';
    const nft = v6 ? 'ip6' : 'ip';
    const ttlField = v6 ? 'ip6 hoplimit' : 'ip ttl';
    const addr = (e: { ipv4: string; ipv6: string }): string => (v6 ? e.ipv6 : e.ipv4);
    // A prefix of the session's own family and one of the other (MP-BGP over the same session).
    const own = v6 ? `fd00:94:96::${subnet}/128` : `10.94.96.${subnet}/32`;
    const other = v6 ? `10.94.97.${subnet}/32` : `fd00:94:97::${subnet}/128`;

    before(() => {
      net = createRoutedNet({ subnet });
      // Counters by TTL: on the router in between (what it receives from the node) and on the peer.
      const counters = (ns: string, rules: string[]): void => {
        net.exec(ns, 'nft', ['add', 'table', nft, 'tmh']);
        net.exec(ns, 'nft', ['add', 'chain', nft, 'tmh', 'pre', '{ type filter hook prerouting priority -300; }']);
        for (const r of rules) net.exec(ns, 'nft', ['add', 'rule', nft, 'tmh', 'pre', ...r.split(' ')]);
      };
      const from = `${nft} saddr ${addr(net.node)}`;
      counters(net.hop.netns, [
        `${from} tcp dport 179 ${ttlField} 1 counter comment "bgp_ttl1"`,
        `${from} tcp dport 179 ${ttlField} 255 counter comment "bgp_ttl255"`,
      ]);
      counters(net.peer.netns, [
        `${from} tcp dport 179 ${ttlField} 254 counter comment "bgp_ttl254"`,
        `${from} tcp dport 179 ${ttlField} != 254 counter comment "bgp_other"`,
        `${from} udp dport 4784 ${ttlField} 254 counter comment "bfd_mh_ttl254"`,
        `${from} udp dport 4784 ${ttlField} != 254 counter comment "bfd_mh_other"`,
        `${from} udp dport 3784 counter comment "bfd_single"`,
      ]);
    });
    const stopAll = async (): Promise<void> => {
      await Promise.all(drivers.splice(0).map((d) => d.stop()));
      await Promise.all(routers.splice(0).map((r) => r.stop()));
    };
    // What a failed test left running would answer for the next one (the same addresses and port).
    beforeEach(stopAll);
    after(async () => {
      await stopAll();
      await net?.destroy();
    });

    /** Packets counted by the rule with this comment. */
    const counted = (ns: string, comment: string): number => {
      const text = net.exec(ns, 'nft', ['list', 'chain', nft, 'tmh', 'pre']);
      const line = text.split('\n').find((l) => l.includes(`comment "${comment}"`));
      const m = line ? /counter packets (\d+)/.exec(line) : null;
      if (!m) throw new Error(`no counter ${comment} in ${text}`);
      return Number(m[1]);
    };

    async function router(name: string, spec: Omit<RouterSpec, 'routerId' | 'localAddress'>): Promise<Router> {
      // A local address: BFD multihop sessions need one (FRR's bfdd, BIRD).
      const r = await startRouter(daemon, { ...spec, routerId: net.peer.ipv4, localAddress: addr(net.peer) }, { netns: net.peer.netns, dir: join(net.dir, name) });
      routers.push(r);
      return r;
    }

    async function node(): Promise<NodeDriver> {
      const d = await NodeDriver.start(net.node.netns, 'node1');
      drivers.push(d);
      return d;
    }

    const routesFrom = async (r: Router, f: 'ipv4' | 'ipv6'): Promise<RouteEntry[]> =>
      (await r.routes(f, { detail: true })).filter((e) => e.from === undefined || e.from === addr(net.node));
    const bfdAtRouter = async (r: Router): Promise<string> => (await r.bfdPeers()).find((p) => p.address === addr(net.node))?.state ?? 'none';

    /**
     * After an ebgpMultiHop session established with `ads` of own (communities 65000:94) and other: our segments
     * reached the peer with TTL 254 only, and both prefixes arrived with the node's address of their family as next hop.
     */
    async function assertMultihopAdvertised(r: Router): Promise<void> {
      assert.ok(counted(net.peer.netns, 'bgp_ttl254') > 0, 'segments arrive at the peer with TTL 254 (255, less one hop)');
      assert.equal(counted(net.peer.netns, 'bgp_other'), 0, 'and with no other TTL');
      const ownRoutes = await eventually(() => routesFrom(r, family), (x) => x.some((e) => e.prefix === own), 30_000, `${own} at the peer`);
      const route = ownRoutes.find((e) => e.prefix === own)!;
      assert.deepEqual(route.nextHops, [addr(net.node)], 'next hop: the node\'s own address, with no link-local one (the peer is not on-link)');
      assert.deepEqual(route.asPath, [64512]);
      assert.deepEqual(route.communities, ['65000:94']);
      const otherFamily = v6 ? 'ipv4' : 'ipv6';
      const otherRoutes = await eventually(() => routesFrom(r, otherFamily), (x) => x.some((e) => e.prefix === other), 30_000, `${other} at the peer`);
      assert.deepEqual(otherRoutes.find((e) => e.prefix === other)!.nextHops, [v6 ? net.node.ipv4 : net.node.ipv6], 'the other family\'s next hop: the node\'s address of that family');
    }

    it('without ebgpMultiHop, eBGP is single hop: TTL 1 dies at the router in between and the session never establishes', async () => {
      const r = await router('single', { asn: 64500, neighbors: [{ name: 'node1', address: addr(net.node), asn: 64512, multihop: 64, holdTime: HOLD }] });
      const d = await node();
      const excdBefore = net.hopCounter(v6 ? 'Icmp6' : 'Icmp', 'OutTimeExcds');
      await d.request('peers', { peers: [{ name: 'router', peerAddress: addr(net.peer), myASN: 64512, peerASN: 64500, holdTime: HOLD }] });
      await d.request('ads', { peer: 'router', ads: [{ prefix: own }] });
      // Two failed attempts (the back-off is 0 s, then 1 s), each refused by the router in between.
      const failures = (): number => d.events.filter((e) => e.event === 'session' && e.state === 'Idle' && /EHOSTUNREACH|[Nn]o route to host/.test(String(e.reason))).length;
      await eventually(async () => failures(), (n) => n >= 2, 30_000, 'two failed connection attempts');
      const reason = String(d.events.find((e) => e.event === 'session' && e.state === 'Idle')?.reason);
      assert.match(reason, /: connect: No route to host \(EHOSTUNREACH\); single-hop eBGP sends with TTL 1, a peer that is not directly connected needs ebgpMultiHop: true$/);
      assert.ok(!d.events.some((e) => e.event === 'session' && e.state === 'Established'), 'never Established');
      assert.notEqual(await r.neighborState(addr(net.node)), 'Established');
      assert.ok(counted(net.hop.netns, 'bgp_ttl1') >= 2, 'SYNs arrive at the router with TTL 1');
      assert.equal(counted(net.hop.netns, 'bgp_ttl255'), 0);
      assert.equal(counted(net.peer.netns, 'bgp_ttl254') + counted(net.peer.netns, 'bgp_other'), 0, 'nothing reaches the peer');
      assert.ok(net.hopCounter(v6 ? 'Icmp6' : 'Icmp', 'OutTimeExcds') >= excdBefore + 2, 'the router answers with Time Exceeded');
      await d.stop();
      await r.stop();
    });

    if (daemon === 'gobgp') it('with ebgpMultiHop: TTL 255 reaches the peer, routes carry the node as next hop (both families)', async () => {
      const r = await router('multi', { asn: 64500, neighbors: [{ name: 'node1', address: addr(net.node), asn: 64512, multihop: 64, holdTime: HOLD }] });
      const d = await node();
      await d.request('peers', { peers: [{ name: 'router', peerAddress: addr(net.peer), myASN: 64512, peerASN: 64500, holdTime: HOLD, ebgpMultiHop: true }] });
      await d.request('ads', { peer: 'router', ads: [{ prefix: own, communities: ['65000:94'] }, { prefix: other }] });
      await d.waitSession('router', 'Established', 60_000);
      await eventually(() => r.neighborState(addr(net.node)), (st) => st === 'Established', 30_000, 'Established at GoBGP');
      await assertMultihopAdvertised(r);
      await d.stop();
      await r.stop();
    });

    if (daemon !== 'gobgp') it('with ebgpMultiHop: TTL 255 reaches the peer, routes carry the node as next hop, BFD multihop is Up on both sides; a cut path takes BGP down through BFD', async () => {
      const r = await router('multi', { asn: 64500, neighbors: [{ name: 'node1', address: addr(net.node), asn: 64512, multihop: 64, bfd: true, holdTime: HOLD }] });
      const d = await node();
      await d.request('peers', { peers: [{ name: 'router', peerAddress: addr(net.peer), myASN: 64512, peerASN: 64500, holdTime: HOLD, ebgpMultiHop: true, bfd: BFD }] });
      await d.request('ads', { peer: 'router', ads: [{ prefix: own, communities: ['65000:94'] }, { prefix: other }] });
      await d.waitSession('router', 'Established', 60_000);
      assert.equal(await r.neighborState(addr(net.node)), 'Established');
      await assertMultihopAdvertised(r);

      let since = 0;
      if (daemon === 'bird') {
        // BIRD sends multihop BFD with TTL 64 (63 here): below the profile's minimumTtl (254, MetalLB's default, as
        // FRR's bfdd enforces it), so the listener's filter drops every packet and our side never comes Up.
        await new Promise((res) => setTimeout(res, 4000));
        const refused = (await d.request<BfdStatus[]>('bfdStatus')).find((s) => s.key === 'router')!;
        assert.notEqual(refused.state, 'Up');
        assert.equal(refused.packetsReceived, 0, 'BIRD\'s packets are below minimumTtl 254');
        assert.ok(!d.events.some((e) => e.event === 'bfd' && e.state === 'Up'));
        since = d.events.length;
        await d.request('peers', { peers: [{ name: 'router', peerAddress: addr(net.peer), myASN: 64512, peerASN: 64500, holdTime: HOLD, ebgpMultiHop: true, bfd: { ...BFD, minimumTtl: 60 } }] });
      }
      // BFD: multihop on our side, Up on both; its packets go to UDP 4784 and arrive with TTL 254.
      await d.waitEvent((e) => e.event === 'bfd' && e.peer === 'router' && e.state === 'Up', 30_000, since);
      await eventually(async () => (await d.request<{ stats: { state: string } }[]>('status'))[0]?.stats.state, (st) => st === 'Established', 60_000, 'Established with BFD Up');
      await eventually(() => routesFrom(r, family), (x) => x.some((e) => e.prefix === own), 30_000, `${own} at the peer with BFD Up`);
      await eventually(() => bfdAtRouter(r), (s) => s === 'Up', 30_000, `${daemon} BFD session Up`);
      assert.equal((await r.bfdPeers()).find((p) => p.address === addr(net.node))?.multihop, true, `${daemon} runs it as a multihop session`);
      // Up at the slow start rate first; a Poll Sequence then moves it to the profile's (300 ms × 3).
      const ours = await eventually(async () => (await d.request<BfdStatus[]>('bfdStatus')).find((s) => s.key === 'router')!,
        (st) => st.state === 'Up' && st.detectionTimeMs === 900, 30_000, 'our BFD session Up at 300 ms x 3');
      assert.equal(ours.multihop, true);
      assert.ok(counted(net.peer.netns, 'bfd_mh_ttl254') > 0, 'BFD packets on UDP 4784 with TTL 254 at the peer');
      assert.equal(counted(net.peer.netns, 'bfd_mh_other'), 0);
      assert.equal(counted(net.peer.netns, 'bfd_single'), 0, 'no single-hop BFD (UDP 3784)');

      // The path is cut beyond the router in between: no link goes down, packets just stop.
      const mark = d.events.length;
      const cutAt = performance.now();
      net.cutPath();
      try {
        await d.waitEvent((e) => e.event === 'bfd' && e.peer === 'router' && e.state === 'Down', 15_000, mark);
        const down = await d.waitSession('router', 'Idle', 15_000, mark);
        const nodeDetected = performance.now() - cutAt;
        assert.equal(down.reason, 'BFD session down');
        await eventually(() => bfdAtRouter(r), (s) => s === 'Down' || s === 'none', 15_000, `${daemon} notices the cut by BFD`);
        await eventually(() => routesFrom(r, family), (x) => !x.some((e) => e.prefix === own), 15_000, 'route withdrawn at the peer');
        const peerDetected = performance.now() - cutAt;
        // The profile's bound is 0.9 s; the slack is for a loaded machine. Either is far below the 90 s hold time.
        assert.ok(nodeDetected < 10_000, `node detected the cut after ${nodeDetected.toFixed(0)} ms`);
        assert.ok(peerDetected < 20_000, `peer withdrew the route after ${peerDetected.toFixed(0)} ms`);
      } finally {
        net.restorePath();
      }
      await d.waitEvent((e) => e.event === 'bfd' && e.peer === 'router' && e.state === 'Up', 60_000, mark);
      await d.waitSession('router', 'Established', 60_000, mark);
      await eventually(() => routesFrom(r, family), (x) => x.some((e) => e.prefix === own), 30_000, 'route back once the path is back');
      await d.stop();
      await r.stop();
    });

    it('iBGP crosses the router without any flag (TTL 255), as the daemons do', async () => {
      const r = await router('ibgp', { asn: 64512, neighbors: [{ name: 'node1', address: addr(net.node), asn: 64512, multihop: 64, holdTime: HOLD }] });
      const d = await node();
      const before254 = counted(net.peer.netns, 'bgp_ttl254');
      await d.request('peers', { peers: [{ name: 'router', peerAddress: addr(net.peer), myASN: 64512, peerASN: 64512, holdTime: HOLD }] });
      await d.request('ads', { peer: 'router', ads: [{ prefix: own, localPref: 150 }] });
      await d.waitSession('router', 'Established', 60_000);
      assert.ok(counted(net.peer.netns, 'bgp_ttl254') > before254);
      const routes = await eventually(() => routesFrom(r, family), (x) => x.some((e) => e.prefix === own), 30_000, `${own} at the peer`);
      const route = routes.find((e) => e.prefix === own)!;
      assert.equal(route.localPref, 150);
      assert.deepEqual(route.nextHops, [addr(net.node)]);
      await d.stop();
      await r.stop();
    });
  });
}
