// Graceful restart (RFC 4724) and ROUTE-REFRESH (RFC 2918) of our speaker against real routers (BIRD 2, FRR bgpd,
// gobgpd as a graceful-restart helper) in network namespaces. GR on: the speaker process is killed (SIGKILL: the kernel closes the connection, no
// NOTIFICATION); the router keeps its routes as stale; a new speaker process comes back with the R bit, sends its
// routes, and the route it no longer advertises goes only at its End-of-RIB (held back until the test says every
// route is known, as `metallb speaker` does until every Service is decided). GR off: the routes go at once. Then the
// router asks for a refresh (`birdc reload in`, `vtysh clear bgp X soft in`) and gets every route again (not GoBGP:
// its `softresetin` sends no ROUTE-REFRESH, see docs/bgp.md).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { startRouter, type Router } from '../../../src/lab/routers/runner.js';
import type { RouteEntry, RouterDaemon } from '../../../src/lab/routers/types.js';
import type { PeerStatus } from '../../../src/speaker/bgp/speaker.js';
import { createBgpNet, eventually, NodeDriver, waitLinkLocal, type BgpNet } from '../../helpers/bgp-netns.js';

const DAEMONS: RouterDaemon[] = ['bird', 'frr', 'gobgp'];

for (const daemon of DAEMONS) {
  describe(`${daemon}: graceful restart and route refresh`, { concurrency: false }, () => {
    let net: BgpNet;
    let router: Router | undefined;
    const drivers: NodeDriver[] = [];

    before(async () => {
      net = createBgpNet({ nodes: 1, subnet: 110 + DAEMONS.indexOf(daemon) });
      await Promise.all([net.router, ...net.nodes].map((m) => waitLinkLocal(m.netns)));
      const n1 = net.nodes[0]!;
      router = await startRouter(daemon, { asn: 64500, routerId: net.router.ipv4, neighbors: [{ name: 'node1', address: n1.ipv4, asn: 64512, gracefulRestart: {} }] },
        { netns: net.router.netns, dir: join(net.dir, daemon) });
    });
    // A failed test's speakers must not stay: the next one dials from the same address.
    afterEach(async () => {
      await Promise.all(drivers.splice(0).map((d) => d.stop()));
    });
    after(async () => {
      await Promise.all(drivers.map((d) => d.stop()));
      await router?.stop();
      net?.destroy();
    });

    async function node(env: Record<string, string> = {}): Promise<NodeDriver> {
      const d = await NodeDriver.start(net.nodes[0]!.netns, 'node1', { env });
      drivers.push(d);
      return d;
    }

    const peer = (gracefulRestart: boolean): Record<string, unknown> =>
      ({ name: 'router', peerAddress: net.router.ipv4, myASN: 64512, peerASN: 64500, holdTime: 90, gracefulRestart });

    /** Every path the router holds from node1, both families, as `prefix` or `prefix(stale)`. */
    async function held(): Promise<string[]> {
      const n1 = net.nodes[0]!.ipv4;
      const all: RouteEntry[] = [...await router!.routes('ipv4'), ...await router!.routes('ipv6')];
      return all.filter((e) => e.from === n1).map((e) => (e.stale ? `${e.prefix}(stale)` : e.prefix)).sort();
    }
    // FRR and GoBGP mark each stale path; BIRD does not (it says so per neighbor, see gr() below).
    const perRouteStale = daemon !== 'bird';
    const same = (want: string[]) => (got: string[]): boolean =>
      JSON.stringify(got) === JSON.stringify(want.map((w) => (perRouteStale ? w : w.replace('(stale)', ''))).sort());
    const gr = () => router!.gracefulRestart(net.nodes[0]!.ipv4);

    it('GR on: killed speaker, routes kept stale; the restarted speaker refreshes them and End-of-RIB removes the one it dropped', async () => {
      const d1 = await node();
      await d1.request('peers', { peers: [peer(true)] });
      await d1.request('ads', { peer: 'router', ads: [{ prefix: '10.96.10.1/32' }, { prefix: '10.96.10.2/32' }, { prefix: 'fd00:96:10::1/128' }] });
      await d1.waitSession('router', 'Established', 90_000);
      await eventually(held, same(['10.96.10.1/32', '10.96.10.2/32', 'fd00:96:10::1/128']), 30_000, 'routes from the first speaker');

      await d1.kill();
      await eventually(() => router!.neighborState(net.nodes[0]!.ipv4), (s) => s !== 'Established', 30_000, 'the router saw the connection go');
      // The restart time is 120 s: within it the routes stay, marked stale.
      const stale = await eventually(held, same(['10.96.10.1/32(stale)', '10.96.10.2/32(stale)', 'fd00:96:10::1/128(stale)']), 30_000, 'stale routes');
      assert.equal((await gr()).active, true, 'the router runs graceful restart for the neighbor');
      await new Promise((r) => setTimeout(r, 2000));
      assert.deepEqual(await held(), stale, 'still held a while later');

      // The new process does not advertise 10.96.10.2/32 any more, and advertises 10.96.10.3/32.
      const d2 = await node({ BGP_DRIVER_HOLD_EOR: '1' });
      await d2.request('peers', { peers: [peer(true)] });
      await d2.request('ads', { peer: 'router', ads: [{ prefix: '10.96.10.1/32' }, { prefix: '10.96.10.3/32' }, { prefix: 'fd00:96:10::1/128' }] });
      // GoBGP refuses the neighbor's connections for a few seconds after it went (its FSM idles): generous.
      await d2.waitSession('router', 'Established', 90_000);
      const status = (await d2.request<PeerStatus[]>('status'))[0]!;
      assert.equal(status.stats.negotiated?.restartState, true, 'the R bit: the first session since the process started');
      assert.equal(status.stats.negotiated?.gracefulRestart, true);
      // Refreshed routes are fresh again; the dropped one stays (stale) until End-of-RIB.
      const restarted = await gr();
      assert.equal(restarted.peerRestarted, true, 'the router saw the R bit');
      assert.deepEqual(restarted.peerForwarding, ['ipv4', 'ipv6'], 'and the F bit for both families');
      await eventually(held, same(['10.96.10.1/32', '10.96.10.2/32(stale)', '10.96.10.3/32', 'fd00:96:10::1/128']), 30_000, 'refreshed routes, the dropped one still stale');
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok((await held()).some((p) => p.startsWith('10.96.10.2/32')), 'no End-of-RIB yet: the router still holds the dropped route');
      assert.equal((await gr()).active, true, 'and still waits for our End-of-RIB');
      await d2.request('ribComplete');
      await eventually(held, same(['10.96.10.1/32', '10.96.10.3/32', 'fd00:96:10::1/128']), 30_000, 'End-of-RIB removed the stale route');
      await eventually(gr, (g) => !g.active, 30_000, 'graceful restart over at the router');
      assert.deepEqual((await d2.request<PeerStatus[]>('status'))[0]!.stats.endOfRibSent, ['IPv4', 'IPv6']);
      // A clean stop (Cease; Hard Reset where the router set the N bit) withdraws at once, GR or not.
      await d2.stop();
      await eventually(held, same([]), 30_000, 'routes withdrawn after a clean stop');
    });

    it('GR off: a killed speaker\'s routes go at once', async () => {
      // GoBGP 3.10 keeps a neighbor's graceful restart state from an earlier session with GR (its FSM sets it on an OPEN
      // with the capability and never clears it), so it would keep these routes stale: a fresh gobgpd (docs/bgp.md).
      if (daemon === 'gobgp') await router!.restart();
      const d = await node();
      await d.request('peers', { peers: [peer(false)] });
      await d.request('ads', { peer: 'router', ads: [{ prefix: '10.96.11.1/32' }, { prefix: 'fd00:96:11::1/128' }] });
      await d.waitSession('router', 'Established', 90_000);
      await eventually(held, same(['10.96.11.1/32', 'fd00:96:11::1/128']), 30_000, 'routes');
      await d.kill();
      // Well within the 120 s GR would keep them, and the 90 s hold time: the closed connection alone removes them.
      await eventually(held, same([]), 20_000, 'routes gone');
    });

    if (daemon !== 'gobgp') it('ROUTE-REFRESH from the router: every route is sent again', async () => {
      const d = await node();
      await d.request('peers', { peers: [peer(true)] });
      const ads = [
        { prefix: '10.96.12.1/32', communities: ['65000:1'] }, { prefix: '10.96.12.2/32', localPref: 10 }, { prefix: '10.96.12.3/32' },
        { prefix: 'fd00:96:12::1/128', largeCommunities: ['64512:1:1'] },
      ];
      await d.request('ads', { peer: 'router', ads });
      await d.waitSession('router', 'Established', 90_000);
      const want = ads.map((a) => a.prefix);
      await eventually(held, same(want), 30_000, 'routes');
      const before = (await d.request<PeerStatus[]>('status'))[0]!.stats;
      assert.equal(before.routeRefreshReceived, 0);
      await router!.refreshFrom(net.nodes[0]!.ipv4);
      const after = await eventually(async () => (await d.request<PeerStatus[]>('status'))[0]!.stats,
        (s) => s.routeRefreshReceived >= 1 && s.pending === 0 && s.updatesSent >= before.updatesSent * 2 - 2, 30_000, 'the refresh answered');
      // Each family's routes went again: as many UPDATEs as the first time (less the End-of-RIBs, which are not repeated).
      console.log(`# ${daemon} route refresh: ${after.routeRefreshReceived} ROUTE-REFRESH, UPDATEs ${before.updatesSent} -> ${after.updatesSent}`);
      assert.equal(after.establishedCount, 1, 'the session stayed up');
      assert.deepEqual(await held(), [...want].sort());
      await d.stop();
    });
  });
}
