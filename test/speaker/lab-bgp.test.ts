// End to end in the lab (root): `metallb lab up --mode bgp --router D` for each real router daemon D (BIRD 2, FRR,
// GoBGP; `METALLB_TEST_ROUTER=frr,gobgp` narrows the set during development) between the client and the LAN. A
// DaemonSet exposed as a dual-stack LoadBalancer Service with externalTrafficPolicy Local is advertised by both nodes'
// speakers; the router installs one kernel route per address with both nodes as next hops, and the client's
// `curl EXTERNAL-IP` goes through it and reaches both nodes' pods (ECMP). The router's BGP daemon killed, the lab starts
// it again and the speakers peer with the new one (the rest runs against it). When node2's pod goes away (Local), node2
// withdraws; a node's cable cut, its path is withdrawn within seconds and the client keeps being answered: BIRD and FRR
// notice by BFD (300 ms × 3), GoBGP has no BFD, so the lab gives its BGPPeers a 3 s hold time instead of MetalLB's
// 90 s default and the hold timer notices; plugged in again, the node comes back; the Service deleted, the routes go.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkip, runCmd, startLab, TEST_LAB, type Lab } from '../helpers/lab.js';
import { join } from 'node:path';
import { makePlan } from '../../src/lab/plan.js';
import { labRouterSpec } from '../../src/lab/router.js';
import { attachRouter } from '../../src/lab/routers/runner.js';
import { LAB_NO_BFD_HOLD_TIME } from '../../src/lab/install.js';
import { ROUTER_DAEMONS, type RouterDaemon } from '../../src/lab/routers/types.js';

const skip = labSkip ?? false;
const only = process.env['METALLB_TEST_ROUTER']?.split(',').map((d) => d.trim()).filter(Boolean);
const daemons = ROUTER_DAEMONS.filter((d) => !only || only.includes(d));

/** The processes each daemon runs in the router namespace (FRR: zebra, bfdd for BFD, bgpd); the BGP one first. */
const PROCESSES: Record<RouterDaemon, string[]> = { bird: ['bird'], frr: ['bgpd', 'bfdd', 'zebra'], gobgp: ['gobgpd'] };

type Svc = { status?: { loadBalancer?: { ingress?: { ip: string }[] } } };
type BgpStatus = { status?: { node?: string; serviceName?: string; peers?: string[] } };
type Peer = { metadata: { name: string }; spec: { myASN: number; peerASN: number; peerAddress: string; bfdProfile?: string; holdTime?: string } };

/** The EUI-64 link-local address of a MAC (FRR installs IPv6 routes through the next hop's link-local address). */
function linkLocal(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  b[0]! ^= 2;
  const words = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | 0xff, 0xfe00 | b[3]!, (b[4]! << 8) | b[5]!];
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`.replace(/^fe80::0:/, 'fe80::');
}

const url = (ip: string): string => (ip.includes(':') ? `http://[${ip}]/` : `http://${ip}/`);

for (const daemon of daemons) {
  describe(`lab up --mode bgp --router ${daemon}`, { skip, concurrency: false }, () => {
    const plan = makePlan({ name: TEST_LAB, mode: 'bgp', router: daemon, nodes: 2 });
    let lab: Lab;
    let ips: string[] = [];
    let started = 0;

    const routerNs = (): string => {
      assert.ok(lab.status.router, 'lab status -o json has the router');
      return lab.status.router.netns;
    };

    /**
     * Waits until the router's kernel route to `ip` goes through exactly the nodes `nodes` (by name), each known by
     * its LAN address or, for IPv6, its link-local address; returns how long that took in ms.
     */
    async function waitNextHops(ip: string, nodes: string[], timeoutMs = 60_000): Promise<number> {
      const from = Date.now();
      const v6 = ip.includes(':');
      await lab.waitFor(`${daemon}: ${ip} via [${nodes.join(', ')}]`, async () => {
        const out = (await runCmd('ip', ['-n', routerNs(), ...(v6 ? ['-6'] : []), 'route', 'show', ip])).stdout;
        const hops = [...out.matchAll(/via (\S+)/g)].map((m) => m[1]!);
        const have = lab.status.nodes
          .filter((n) => (v6 ? [n.ipv6, linkLocal(n.mac)] : [n.ipv4]).some((a) => hops.includes(a)))
          .map((n) => n.name);
        return JSON.stringify(have.sort()) === JSON.stringify([...nodes].sort()) || `route: ${out.trim() || 'none'}`;
      }, timeoutMs, 50);
      return Date.now() - from;
    }

    /** pid -> command name of the processes in the router's namespace. */
    async function routerProcesses(): Promise<Map<number, string>> {
      const pids = (await runCmd('ip', ['netns', 'pids', routerNs()])).stdout.split('\n').filter(Boolean).map(Number);
      const out = new Map<number, string>();
      for (const pid of pids) {
        const comm = (await runCmd('cat', [`/proc/${pid}/comm`])).stdout.trim();
        if (comm) out.set(pid, comm);
      }
      return out;
    }

    /** node -> peers, from the ServiceBGPStatus objects of the Service. */
    async function statusPeers(): Promise<string[]> {
      const items = (await lab.getJson<{ items: BgpStatus[] }>(['get', 'servicebgpstatuses', '-n', 'metallb-system'])).items
        .filter((o) => o.status?.serviceName === 'hname');
      return items.map((o) => `${o.status?.node}:${(o.status?.peers ?? []).join('+')}`).sort();
    }

    before(async () => {
      if (skip) return;
      started = Date.now();
      lab = await startLab(undefined, { nodes: 2, upArgs: ['--mode', 'bgp', '--router', daemon] });
    });

    after(async () => {
      if (!lab) return;
      await lab.down();
      process.stderr.write(`lab-bgp ${daemon}: ${((Date.now() - started) / 1000).toFixed(1)} s in all\n`);
    });

    test('lab status -o json names the router, which runs the daemon; every node peers with it', async () => {
      assert.deepEqual(lab.status.router, {
        netns: plan.router.netns, daemon, asn: 64501, nodeASN: 64500, ipv4: plan.router.ipv4, ipv6: plan.router.ipv6,
      });
      const r = lab.status.router!;
      // The namespace it names holds the addresses it names and runs the daemon it names.
      const addrs = (await runCmd('ip', ['-n', r.netns, 'addr', 'show'])).stdout;
      assert.match(addrs, new RegExp(`inet ${r.ipv4.replace(/\./g, '\\.')}/`));
      assert.match(addrs, new RegExp(`inet6 ${r.ipv6}/`));
      const comms = new Set((await routerProcesses()).values());
      for (const p of PROCESSES[daemon]) assert.ok(comms.has(p), `${p} runs in ${r.netns} (there: ${[...comms].join(', ')})`);
      const peers = (await lab.getJson<{ items: Peer[] }>(['get', 'bgppeers', '-n', 'metallb-system'])).items;
      assert.deepEqual(peers.map((p) => p.spec.peerAddress).sort(), [r.ipv4, r.ipv6].sort());
      for (const p of peers) {
        assert.equal(p.spec.peerASN, r.asn);
        assert.equal(p.spec.myASN, r.nodeASN);
        // GoBGP has no BFD: a short hold time stands in for it.
        if (daemon === 'gobgp') assert.deepEqual([p.spec.bfdProfile, p.spec.holdTime], [undefined, LAB_NO_BFD_HOLD_TIME]);
        else assert.deepEqual([p.spec.bfdProfile, p.spec.holdTime], ['lab-bfd', undefined]);
      }
    });

    test('curl EXTERNAL-IP from the client goes through the router to both nodes (ECMP), IPv4 and IPv6', async () => {
      await lab.kubectlOk(['apply', '-f', '-'], {
        // OnDelete: a changed nodeSelector below removes node2's pod without replacing node1's.
        input: `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: hname, namespace: default}
spec:
  selector: {matchLabels: {app: hname}}
  updateStrategy: {type: OnDelete}
  template:
    metadata: {labels: {app: hname}}
    spec: {containers: [{name: echo, image: sysnet4admin/echo-hname}]}
---
apiVersion: v1
kind: Service
metadata: {name: hname, namespace: default}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: hname}
  ports: [{port: 80}]
`,
      });
      await lab.waitFor('hname gets 2 addresses', async () => {
        ips = ((await lab.getJson<Svc>(['get', 'service', 'hname'])).status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
        return ips.length === 2;
      });
      await waitNextHops(ips[0]!, ['node1', 'node2'], 120_000);
      await waitNextHops(ips[1]!, ['node1', 'node2'], 60_000);
      for (const ip of ips) {
        const seen = new Set<string>();
        await lab.waitFor(`both nodes' pods answer ${ip}`, async () => {
          seen.add((await lab.curl('client', url(ip), 2)).trim());
          return seen.size === 2 || `${[...seen].join(', ')}`;
        }, 60_000, 50);
      }
      await lab.waitFor('a ServiceBGPStatus per node', async () => {
        const got = await statusPeers();
        return JSON.stringify(got) === JSON.stringify(['node1:lab-router+lab-router-v6', 'node2:lab-router+lab-router-v6']) || got.join(' ');
      });
    });

    test('the router\'s BGP daemon is killed: the lab starts it again and the speakers advertise to the new one', async (t) => {
      assert.equal(ips.length, 2, 'the Service of the previous test');
      const bgp = PROCESSES[daemon][0]!;
      const old = [...(await routerProcesses())].find(([, comm]) => comm === bgp)?.[0];
      assert.ok(old, `${bgp} runs in the router's namespace`);
      const killed = Date.now();
      process.kill(old, 'SIGKILL');
      await lab.waitFor(`a new ${bgp}`, async () => [...(await routerProcesses())].some(([pid, comm]) => comm === bgp && pid !== old), 60_000, 200);
      // The old daemon's kernel routes may outlive it for a while: the new daemon's own sessions and paths are the proof.
      const router = attachRouter(daemon, labRouterSpec({ ...plan, stateDir: lab.stateDir }), { netns: routerNs(), dir: join(lab.stateDir, 'router') });
      try {
        const neighbors = lab.status.nodes.flatMap((n) => [n.ipv4, n.ipv6]);
        await lab.waitFor(`${daemon}: sessions with ${neighbors.join(', ')}`, async () => {
          const states = await Promise.all(neighbors.map((a) => router.neighborState(a)));
          return states.every((st) => st === 'Established') || states.join(' ');
        }, 90_000, 200);
        for (const ip of ips) {
          const family = ip.includes(':') ? 'ipv6' : 'ipv4';
          const prefix = `${ip}/${family === 'ipv4' ? 32 : 128}`;
          await lab.waitFor(`${daemon}: 2 paths to ${prefix}`, async () => {
            const n = (await router.routes(family)).filter((r) => r.prefix === prefix).length;
            return n === 2 || `${n} paths`;
          }, 30_000, 200);
        }
      } finally {
        await router.stop();
      }
      // The tests that follow (withdrawals, the cut cable) run against the new daemon.
      for (const ip of ips) await waitNextHops(ip, ['node1', 'node2'], 30_000);
      t.diagnostic(`${daemon}: ${bgp} killed, restarted and both nodes' routes back within ${Date.now() - killed} ms`);
      for (const ip of ips) assert.ok((await lab.curl('client', url(ip), 3)).trim().length > 0);
    });

    test('externalTrafficPolicy Local: node2 withdraws when its endpoint goes, advertises again when it is back', async () => {
      assert.equal(ips.length, 2, 'the Service of the previous test');
      await lab.kubectlOk(['patch', 'daemonset', 'hname', '--type', 'merge', '-p', '{"spec":{"template":{"spec":{"nodeSelector":{"kubernetes.io/hostname":"node1"}}}}}']);
      for (const ip of ips) await waitNextHops(ip, ['node1'], 60_000);
      await lab.waitFor('node2\'s ServiceBGPStatus gone', async () => {
        const got = await statusPeers();
        return JSON.stringify(got) === JSON.stringify(['node1:lab-router+lab-router-v6']) || got.join(' ');
      }, 30_000);
      for (const ip of ips) assert.ok((await lab.curl('client', url(ip), 3)).trim().length > 0);
      await lab.kubectlOk(['patch', 'daemonset', 'hname', '--type', 'json', '-p', '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]']);
      for (const ip of ips) await waitNextHops(ip, ['node1', 'node2'], 90_000);
    });

    test('a node whose cable is cut is routed around within seconds; it comes back when plugged in', async (t) => {
      assert.equal(ips.length, 2, 'the Service of the previous tests');
      const cable = plan.nodes.find((n) => n.name === 'node2')!.hostInterface;
      await runCmd('ip', ['link', 'set', cable, 'down']);
      try {
        // BIRD, FRR: BFD (0.9 s); GoBGP: the lab's 3 s hold time. MetalLB's default 90 s would not fit this wait.
        const ms = await waitNextHops(ips[0]!, ['node1'], 30_000);
        t.diagnostic(`${daemon}: node2's path withdrawn ${ms} ms after the cable was cut (${daemon === 'gobgp' ? `hold time ${LAB_NO_BFD_HOLD_TIME}` : 'BFD 300 ms x 3'})`);
        await waitNextHops(ips[1]!, ['node1'], 30_000);
        for (const ip of ips) {
          for (let i = 0; i < 5; i++) assert.equal((await lab.curl('client', url(ip), 3)).trim().length > 0, true);
        }
      } finally {
        await runCmd('ip', ['link', 'set', cable, 'up']);
      }
      await waitNextHops(ips[0]!, ['node1', 'node2'], 90_000);
      await waitNextHops(ips[1]!, ['node1', 'node2'], 90_000);
    });

    test('deleting the Service withdraws its routes and its ServiceBGPStatus objects', async () => {
      assert.equal(ips.length, 2, 'the Service of the previous tests');
      await lab.kubectlOk(['delete', 'service', 'hname']);
      for (const ip of ips) await waitNextHops(ip, [], 30_000);
      await lab.waitFor('no ServiceBGPStatus left', async () => (await statusPeers()).length === 0, 30_000);
    });
  });
}
