// Our speaker against the real daemons (BIRD 2, FRR bgpd, GoBGP) in network namespaces: sessions over IPv4 and
// IPv6, 2- and 4-octet ASNs, eBGP and iBGP; routes arrive in the daemon's RIB with the exact next hop,
// communities, large communities and local preference; withdrawals; ECMP in the router's kernel table; recovery
// after the router restarts.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRouter, type Router } from '../../../src/lab/routers/runner.js';
import type { RouteEntry, RouterDaemon, RouterSpec } from '../../../src/lab/routers/types.js';
import type { PeerStatus } from '../../../src/speaker/bgp/speaker.js';
import { createBgpNet, eventually, NodeDriver, waitLinkLocal, type BgpNet } from '../../helpers/bgp-netns.js';

const DAEMONS: RouterDaemon[] = ['bird', 'frr', 'gobgp'];

for (const daemon of DAEMONS) {
  describe(`${daemon}`, { concurrency: false }, () => {
    let net: BgpNet;
    const routers: Router[] = [];
    const drivers: NodeDriver[] = [];

    before(async () => {
      net = createBgpNet({ nodes: 2, subnet: 1 + DAEMONS.indexOf(daemon) });
      await Promise.all([net.router, ...net.nodes].map((m) => waitLinkLocal(m.netns)));
    });
    after(async () => {
      await Promise.all(drivers.map((d) => d.stop()));
      await Promise.all(routers.map((r) => r.stop()));
      net?.destroy();
    });

    async function router(name: string, spec: RouterSpec): Promise<Router> {
      const r = await startRouter(daemon, spec, { netns: net.router.netns, dir: join(net.dir, name) });
      routers.push(r);
      return r;
    }

    async function node(i: number): Promise<NodeDriver> {
      const d = await NodeDriver.start(net.nodes[i]!.netns, `node${i + 1}`);
      drivers.push(d);
      return d;
    }

    const routesFrom = async (r: Router, family: 'ipv4' | 'ipv6', from?: string): Promise<RouteEntry[]> =>
      (await r.routes(family, { detail: true })).filter((e) => from === undefined || e.from === from);

    it('IPv4 eBGP, 2-octet ASNs: IPv4 and IPv6 routes with the exact next hop, communities and large communities; withdrawals', async () => {
      const [n1] = net.nodes as [typeof net.nodes[0]];
      const r = await router('ebgp4', { asn: 64500, routerId: net.router.ipv4, neighbors: [{ name: 'node1', address: n1.ipv4, asn: 64512 }] });
      const d = await node(0);
      await d.request('peers', { peers: [{ name: 'router', peerAddress: net.router.ipv4, myASN: 64512, peerASN: 64500, holdTime: 30 }] });
      await d.request('ads', { peer: 'router', ads: [
        { prefix: '10.96.0.1/32', communities: ['65000:100', '65000:7'], largeCommunities: ['64512:1:2'] },
        { prefix: '10.96.0.2/32' },
        { prefix: 'fd00:96::1/128', communities: ['65000:6'], largeCommunities: ['64512:6:6'] },
      ] });
      await d.waitSession('router', 'Established');
      assert.equal(await r.neighborState(n1.ipv4), 'Established');
      const v4 = await eventually(() => routesFrom(r, 'ipv4', n1.ipv4), (x) => x.length === 2, 20_000, 'IPv4 routes at the router');
      const one = v4.find((e) => e.prefix === '10.96.0.1/32')!;
      assert.deepEqual(one.nextHops, [n1.ipv4]);
      assert.deepEqual(one.asPath, [64512]);
      assert.deepEqual(one.communities.slice().sort(), ['65000:100', '65000:7']);
      assert.deepEqual(one.largeCommunities, ['64512:1:2']);
      const v6 = await eventually(() => routesFrom(r, 'ipv6', n1.ipv4), (x) => x.length === 1, 20_000, 'IPv6 routes at the router');
      assert.equal(v6[0]!.prefix, 'fd00:96::1/128');
      assert.equal(v6[0]!.nextHops[0], n1.ipv6, 'IPv6 next hop: the global address of the interface');
      if (daemon !== 'gobgp') assert.match(v6[0]!.nextHops[1] ?? '', /^fe80::/, 'and its link-local address (the peer is on-link)');
      assert.deepEqual(v6[0]!.communities, ['65000:6']);
      assert.deepEqual(v6[0]!.largeCommunities, ['64512:6:6']);

      await d.request('ads', { peer: 'router', ads: [{ prefix: '10.96.0.2/32' }] });
      await eventually(() => routesFrom(r, 'ipv4', n1.ipv4), (x) => x.length === 1 && x[0]!.prefix === '10.96.0.2/32', 20_000, 'withdrawal of 10.96.0.1/32');
      await eventually(() => routesFrom(r, 'ipv6', n1.ipv4), (x) => x.length === 0, 20_000, 'withdrawal of the IPv6 route');
      const status = (await d.request<PeerStatus[]>('status'))[0]!;
      assert.equal(status.peer, `${net.router.ipv4}:179`);
      assert.equal(status.stats.announced, 1);
      assert.equal(status.stats.pending, 0);

      // The router restarts: the session comes back by itself and the routes are advertised again.
      const mark = d.events.length;
      await r.restart();
      await d.waitSession('router', 'Idle', 30_000, mark);
      await d.waitSession('router', 'Established', 60_000, mark);
      await eventually(() => routesFrom(r, 'ipv4', n1.ipv4), (x) => x.length === 1, 20_000, 'routes after the router restarted');
      await d.stop();
      await r.stop();
    });

    it('IPv6 iBGP, 4-octet ASNs: LOCAL_PREF, IPv6 and IPv4 routes over the IPv6 session', async () => {
      const n2 = net.nodes[1]!;
      const asn = 4200000001;
      const r = await router('ibgp6', { asn, routerId: net.router.ipv4, neighbors: [{ name: 'node2', address: n2.ipv6, asn }] });
      const d = await node(1);
      await d.request('peers', { peers: [{ name: 'router6', peerAddress: net.router.ipv6, myASN: asn, peerASN: asn }] });
      await d.request('ads', { peer: 'router6', ads: [
        { prefix: 'fd00:96::2/128', localPref: 250, largeCommunities: ['4200000001:1:2'] },
        { prefix: '10.96.1.2/32', localPref: 150, communities: ['65000:1'] },
      ] });
      await d.waitSession('router6', 'Established');
      const status = (await d.request<PeerStatus[]>('status'))[0]!;
      assert.equal(status.stats.negotiated?.ibgp, true);
      assert.equal(status.stats.negotiated?.localRouterId, n2.ipv4, 'router ID: an IPv4 address of the interface holding the IPv6 session');
      const v6 = await eventually(() => routesFrom(r, 'ipv6', n2.ipv6), (x) => x.length === 1, 20_000, 'IPv6 route');
      assert.equal(v6[0]!.localPref, 250);
      assert.deepEqual(v6[0]!.asPath, []);
      assert.equal(v6[0]!.nextHops[0], n2.ipv6);
      assert.deepEqual(v6[0]!.largeCommunities, ['4200000001:1:2']);
      const v4 = await eventually(() => routesFrom(r, 'ipv4', n2.ipv6), (x) => x.length === 1, 20_000, 'IPv4 route over the IPv6 session');
      assert.equal(v4[0]!.localPref, 150);
      assert.deepEqual(v4[0]!.nextHops, [n2.ipv4]);
      assert.deepEqual(v4[0]!.communities, ['65000:1']);
      await d.stop();
      await r.stop();
    });

    it('TCP-MD5 password: sessions over IPv4 and IPv6 establish with the right key, never with a wrong one', async () => {
      const [n1, n2] = net.nodes as [typeof net.nodes[0], typeof net.nodes[0]];
      // FRR's `neighbor X password` takes one word (a key with a space is "No such command"); BIRD and GoBGP take any.
      const v6Key = daemon === 'frr' ? 'v6-s3cret' : 'v6 s3cret';
      const r = await router('md5', {
        asn: 64500, routerId: net.router.ipv4,
        neighbors: [
          { name: 'node1', address: n1.ipv4, asn: 64512, password: 'metallb-s3cret' },
          { name: 'node1v6', address: n1.ipv6, asn: 64512, password: v6Key },
          { name: 'node2', address: n2.ipv6, asn: 64512, password: 'other-key' },
        ],
      });
      const [good, bad] = await Promise.all([node(0), node(1)]);
      await good.request('peers', { peers: [
        { name: 'router', peerAddress: net.router.ipv4, myASN: 64512, peerASN: 64500, password: 'metallb-s3cret' },
        { name: 'router6', peerAddress: net.router.ipv6, myASN: 64512, peerASN: 64500, password: v6Key },
      ] });
      await good.request('ads', { peer: 'router', ads: [{ prefix: '10.96.3.1/32' }] });
      await good.request('ads', { peer: 'router6', ads: [{ prefix: 'fd00:96:3::1/128' }] });
      await bad.request('peers', { peers: [{ name: 'router', peerAddress: net.router.ipv6, myASN: 64512, peerASN: 64500, password: 'wrong key' }] });
      await good.waitSession('router', 'Established');
      await eventually(() => routesFrom(r, 'ipv4', n1.ipv4), (x) => x.length === 1, 20_000, 'route over the MD5 session');
      await good.waitSession('router6', 'Established');
      assert.equal(await r.neighborState(n1.ipv6), 'Established');
      const v6 = await eventually(() => routesFrom(r, 'ipv6', n1.ipv6), (x) => x.length === 1, 20_000, 'route over the IPv6 MD5 session');
      assert.equal(v6[0]!.prefix, 'fd00:96:3::1/128');
      await new Promise((res) => setTimeout(res, 3000));
      assert.equal(bad.events.filter((e) => e.state === 'Established').length, 0, 'a wrong key never establishes');
      assert.notEqual(await r.neighborState(n2.ipv6), 'Established');
      await Promise.all([good.stop(), bad.stop()]);
      await r.stop();
    });

    it('two nodes advertising one address: both paths at the router (ECMP in its kernel table where the daemon installs routes)', async () => {
      const [n1, n2] = net.nodes as [typeof net.nodes[0], typeof net.nodes[0]];
      const kernel = daemon !== 'gobgp';
      const r = await router('ecmp', {
        asn: 64500, routerId: net.router.ipv4, kernel,
        neighbors: [{ name: 'node1', address: n1.ipv4, asn: 64512 }, { name: 'node2', address: n2.ipv4, asn: 64512 }],
      });
      const ds = await Promise.all([node(0), node(1)]);
      for (const d of ds) {
        await d.request('peers', { peers: [{ name: 'router', peerAddress: net.router.ipv4, myASN: 64512, peerASN: 64500 }] });
        await d.request('ads', { peer: 'router', ads: [{ prefix: '10.96.2.1/32' }] });
      }
      const paths = await eventually(() => routesFrom(r, 'ipv4'), (x) => x.filter((e) => e.prefix === '10.96.2.1/32').length === 2, 20_000, 'two paths');
      assert.deepEqual(paths.map((p) => p.nextHops[0]).sort(), [n1.ipv4, n2.ipv4]);
      if (kernel) {
        const route = await eventually(async () => net.exec(net.router.netns, ['ip', 'route', 'show', '10.96.2.1']), (t) => t.includes(n1.ipv4) && t.includes(n2.ipv4), 20_000, 'ECMP kernel route');
        assert.match(route, /nexthop via/);
      }
      // One node goes away (killed, no goodbye, session torn down by the kernel closing its socket): one path left.
      await ds[0]!.kill();
      await eventually(() => routesFrom(r, 'ipv4'), (x) => x.filter((e) => e.prefix === '10.96.2.1/32').length === 1, 30_000, 'one path left');
      await ds[1]!.stop();
      await r.stop();
    });
  });
}

describe('one node, two peers with different router IDs, local ASNs and ports (what FRR modes refuse)', { concurrency: false }, () => {
  let net: BgpNet;
  const routers: Router[] = [];
  let d: NodeDriver | undefined;
  before(async () => {
    net = createBgpNet({ nodes: 1, subnet: 9 });
    await waitLinkLocal(net.nodes[0]!.netns);
  });
  after(async () => {
    await d?.stop();
    await Promise.all(routers.map((r) => r.stop()));
    net?.destroy();
  });

  it('BIRD on port 179 and GoBGP on port 1179 in one router namespace each see their own router ID and AS', async () => {
    const n1 = net.nodes[0]!;
    routers.push(await startRouter('bird', { asn: 64500, routerId: net.router.ipv4, neighbors: [{ name: 'node1', address: n1.ipv4, asn: 64512 }] }, { netns: net.router.netns, dir: join(net.dir, 'bird') }));
    routers.push(await startRouter('gobgp', { asn: 64501, routerId: net.router.ipv4, port: 1179, neighbors: [{ name: 'node1', address: n1.ipv4, asn: 4200000001 }] }, { netns: net.router.netns, dir: join(net.dir, 'gobgp') }));
    const [bird, gobgp] = routers as [Router, Router];
    d = await NodeDriver.start(n1.netns, 'node1');
    await d.request('peers', { peers: [
      { name: 'bird', peerAddress: net.router.ipv4, myASN: 64512, peerASN: 64500, routerID: '10.0.0.11', families: ['IPv4'] },
      { name: 'gobgp', peerAddress: net.router.ipv4, peerPort: 1179, myASN: 4200000001, peerASN: 64501, routerID: '10.9.9.9', families: ['IPv4'] },
    ] });
    await d.request('ads', { peer: 'bird', ads: [{ prefix: '10.96.7.1/32' }] });
    await d.request('ads', { peer: 'gobgp', ads: [{ prefix: '10.96.7.1/32' }] });
    await d.waitSession('bird', 'Established');
    await d.waitSession('gobgp', 'Established');
    const status = await d.request<PeerStatus[]>('status');
    assert.deepEqual(status.map((s) => [s.name, s.stats.negotiated?.localRouterId]).sort(), [['bird', '10.0.0.11'], ['gobgp', '10.9.9.9']]);
    const viaBird = await eventually(() => bird.routes('ipv4'), (x) => x.length === 1, 20_000, 'route at BIRD');
    const viaGobgp = await eventually(() => gobgp.routes('ipv4'), (x) => x.length === 1, 20_000, 'route at GoBGP');
    assert.deepEqual(viaBird[0]!.asPath, [64512]);
    assert.deepEqual(viaGobgp[0]!.asPath, [4200000001]);
  });
});
