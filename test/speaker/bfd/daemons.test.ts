// BFD against BIRD's bfd protocol and FRR's bfdd in network namespaces: sessions come Up with MetalLB's profile
// (300 ms × 3); a node whose cable is pulled (its switch port goes down, no goodbye) is detected by the router
// well before the BGP hold timer, and its routes leave the router; the node's own BGP session goes down with
// Cease / BFD Down and comes back with BFD when the cable is back; a busy main thread does not bring BFD down. FRR
// shutting its BFD sessions down (AdminDown) is not a failure: our BGP session stays up (RFC 5882 §3.2).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startRouter, type Router } from '../../../src/lab/routers/runner.js';
import type { RouterDaemon } from '../../../src/lab/routers/types.js';
import { createBgpNet, eventually, NodeDriver, waitLinkLocal, type BgpNet } from '../../helpers/bgp-netns.js';

const BFD = { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoMode: false, passiveMode: false, minimumTtl: 254 };

for (const daemon of ['bird', 'frr'] as RouterDaemon[]) {
  describe(`BFD with ${daemon}`, { concurrency: false }, () => {
    let net: BgpNet;
    let router: Router;
    const drivers: NodeDriver[] = [];

    before(async () => {
      net = createBgpNet({ nodes: daemon === 'frr' ? 3 : 2, subnet: 20 + (daemon === 'bird' ? 0 : 1) });
      await Promise.all([net.router, ...net.nodes].map((m) => waitLinkLocal(m.netns)));
      router = await startRouter(daemon, {
        asn: 64500, routerId: net.router.ipv4,
        bfd: { transmitIntervalMs: 300, receiveIntervalMs: 300, detectMultiplier: 3 },
        neighbors: net.nodes.map((n, i) => ({ name: `node${i + 1}`, address: n.ipv4, asn: 64512, bfd: true, holdTime: 90 })),
      }, { netns: net.router.netns, dir: join(net.dir, daemon) });
    });
    after(async () => {
      await Promise.all(drivers.map((d) => d.stop()));
      await router?.stop();
      net?.destroy();
    });

    async function node(i: number, bfd = BFD): Promise<NodeDriver> {
      const d = await NodeDriver.start(net.nodes[i]!.netns, `node${i + 1}`);
      drivers.push(d);
      await d.request('peers', { peers: [{ name: 'router', peerAddress: net.router.ipv4, myASN: 64512, peerASN: 64500, holdTime: 90, bfd }] });
      await d.request('ads', { peer: 'router', ads: [{ prefix: `10.96.9.${i + 1}/32` }] });
      return d;
    }

    const bfdState = async (address: string): Promise<string> => (await router.bfdPeers()).find((p) => p.address === address)?.state ?? 'none';
    const hasRoute = async (prefix: string): Promise<boolean> => (await router.routes('ipv4')).some((r) => r.prefix === prefix);

    it('comes Up, and a pulled cable is detected within a second or two, far below the 90 s hold time', async () => {
      const n1 = net.nodes[0]!;
      const d = await node(0);
      await d.waitSession('router', 'Established');
      await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Up', 30_000);
      await eventually(() => bfdState(n1.ipv4), (s) => s === 'Up', 30_000, `${daemon} BFD session Up`);
      assert.equal((await router.bfdPeers()).find((p) => p.address === n1.ipv4)?.multihop, false, 'single hop (RFC 5881): the peer is on the LAN');
      await eventually(() => hasRoute('10.96.9.1/32'), (x) => x, 20_000, 'route at the router');
      const status = (await d.request<{ state: string; txIntervalMs: number; detectionTimeMs: number }[]>('bfdStatus'))[0]!;
      assert.equal(status.state, 'Up');
      assert.equal(status.txIntervalMs, 300);
      assert.equal(status.detectionTimeMs, 900);

      const mark = d.events.length;
      const cutAt = performance.now();
      net.cutNode(0);
      await eventually(() => bfdState(n1.ipv4), (s) => s === 'Down' || s === 'none', 10_000, `${daemon} notices the cut by BFD`);
      const detected = performance.now() - cutAt;
      await eventually(() => hasRoute('10.96.9.1/32'), (x) => !x, 10_000, 'route withdrawn at the router');
      const withdrawn = performance.now() - cutAt;
      // 0.9 s is the profile's bound; the slack is for a loaded test machine, the benchmark measures it properly.
      assert.ok(detected < 5000, `detected after ${detected.toFixed(0)} ms`);
      assert.ok(withdrawn < 10_000, `withdrawn after ${withdrawn.toFixed(0)} ms`);
      // The node sees the same thing from its side: BFD Down takes its BGP session down at once.
      await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Down', 10_000, mark);
      const down = await d.waitSession('router', 'Idle', 10_000, mark);
      assert.equal(down.reason, 'BFD session down');

      net.restoreNode(0);
      await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Up', 30_000, mark);
      await d.waitSession('router', 'Established', 60_000, mark);
      await eventually(() => hasRoute('10.96.9.1/32'), (x) => x, 30_000, 'route back after the cable is back');
    });

    it('a main thread blocked for 3 s does not bring BFD down (it runs in a worker)', async () => {
      const n2 = net.nodes[1]!;
      const d = await node(1);
      await d.waitSession('router', 'Established');
      // Both sides Up before the mark: the router goes Up on our Init, we go Up only on its next packet (up to 300 ms
      // later), so the router's Up does not mean ours (CI once recorded our Up after the mark).
      await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Up', 30_000);
      await eventually(() => bfdState(n2.ipv4), (s) => s === 'Up', 30_000, 'BFD Up');
      const mark = d.events.length;
      await d.request('block', { ms: 3000 }, 30_000);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await bfdState(n2.ipv4), 'Up');
      assert.deepEqual(d.events.slice(mark).filter((e) => e.event === 'bfd' || e.event === 'session'), [], 'no BFD or BGP state change');
    });

    if (daemon === 'frr') {
      it('FRR shutting BFD down sends AdminDown: our BFD goes Down, our BGP session stays up; after no shutdown a cut still takes it down', async () => {
        const n3 = net.nodes[2]!;
        const d = await node(2);
        await d.waitSession('router', 'Established');
        await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Up', 30_000);
        await eventually(() => bfdState(n3.ipv4), (s) => s === 'Up', 30_000, 'FRR BFD session Up');
        await eventually(() => hasRoute('10.96.9.3/32'), (x) => x, 20_000, 'route at the router');
        const profile = (shut: boolean): Promise<unknown> => promisify(execFile)('vtysh', ['--vty_socket', router.dir, '-c', 'configure terminal',
          '-c', 'bfd', '-c', 'profile nodes', '-c', shut ? 'shutdown' : 'no shutdown']);

        const mark = d.events.length;
        await profile(true);
        const down = await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Down', 20_000, mark);
        assert.equal(down['remoteState'], 'AdminDown', 'FRR said AdminDown');
        await eventually(() => bfdState(n3.ipv4), (s) => s === 'AdminDown', 20_000, 'FRR BFD session shut down');
        // Longer than the BFD detection time many times over; the BGP hold time (90 s) is not what keeps it up.
        await new Promise((r) => setTimeout(r, 3000));
        assert.deepEqual(d.events.slice(mark).filter((e) => e.event === 'session'), [], 'our BGP session did not change state');
        assert.equal(await router.neighborState(n3.ipv4), 'Established');
        assert.equal(await hasRoute('10.96.9.3/32'), true, 'the route stays at the router');

        await profile(false);
        await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Up', 30_000, mark);
        await eventually(() => bfdState(n3.ipv4), (s) => s === 'Up', 30_000, 'FRR BFD session Up again');
        assert.deepEqual(d.events.slice(mark).filter((e) => e.event === 'session'), [], 'still no BGP state change');

        // BFD watches the path again: a pulled cable takes the BGP session down through it.
        const cut = d.events.length;
        net.cutNode(2);
        try {
          const failed = await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Down', 10_000, cut);
          assert.notEqual(failed['remoteState'], 'AdminDown');
          const idle = await d.waitSession('router', 'Idle', 10_000, cut);
          assert.equal(idle.reason, 'BFD session down');
        } finally {
          net.restoreNode(2);
        }
      });
    }
  });
}
