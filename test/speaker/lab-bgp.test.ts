// End to end in the lab (root): `metallb lab up --mode bgp` with a real router daemon (BIRD by default;
// METALLB_TEST_ROUTER=frr|gobgp for the others) between the client and the LAN. A DaemonSet exposed as a dual-stack
// LoadBalancer Service with externalTrafficPolicy Local is advertised by both nodes; the router installs one kernel
// route per address with both nodes as next hops, and the client's `curl EXTERNAL-IP` goes through it and reaches
// both nodes' pods (ECMP). A node's cable cut, BFD withdraws its path within a second or so (the hold time is 90 s)
// and the client keeps being answered; plugged in again, the node comes back; the Service deleted, the routes go.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkip, runCmd, startLab, type Lab } from '../helpers/lab.js';
import type { LabRouterDaemon } from '../../src/lab/plan.js';

const skip = labSkip ?? false;
const daemon = (process.env['METALLB_TEST_ROUTER'] ?? 'bird') as LabRouterDaemon;
let lab: Lab;

type Svc = { status?: { loadBalancer?: { ingress?: { ip: string }[] } } };
type BgpStatus = { status?: { node?: string; serviceName?: string; peers?: string[] } };

const routerNs = (): string => {
  assert.ok(lab.status.router, 'lab status -o json has the router');
  return lab.status.router.netns;
};

async function kernelRoute(ip: string): Promise<string> {
  const r = await runCmd('ip', ['-n', routerNs(), ...(ip.includes(':') ? ['-6'] : []), 'route', 'show', ip]);
  return r.stdout;
}

/** The EUI-64 link-local address of a MAC (FRR installs IPv6 routes through the next hop's link-local address). */
function linkLocal(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  b[0]! ^= 2;
  const words = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | 0xff, 0xfe00 | b[3]!, (b[4]! << 8) | b[5]!];
  return `fe80::${words.map((w) => w.toString(16)).join(':')}`.replace(/^fe80::0:/, 'fe80::');
}

/**
 * Waits until the router's kernel route to `ip` goes through exactly the nodes `nodes` (by name), each known by its
 * LAN address or, for IPv6, its link-local address; returns how long that took in ms.
 */
async function waitNextHops(ip: string, nodes: string[], timeoutMs = 60_000): Promise<number> {
  const started = Date.now();
  const v6 = ip.includes(':');
  await lab.waitFor(`${ip} via [${nodes.join(', ')}]`, async () => {
    const out = await kernelRoute(ip);
    const hops = [...out.matchAll(/via (\S+)/g)].map((m) => m[1]!);
    const have = lab.status.nodes
      .filter((n) => (v6 ? [n.ipv6, linkLocal(n.mac)] : [n.ipv4]).some((a) => hops.includes(a)))
      .map((n) => n.name);
    return JSON.stringify(have.sort()) === JSON.stringify([...nodes].sort()) || `route: ${out.trim() || 'none'}`;
  }, timeoutMs, 50);
  return Date.now() - started;
}

const url = (ip: string): string => (ip.includes(':') ? `http://[${ip}]/` : `http://${ip}/`);

before(async () => {
  if (skip) return;
  lab = await startLab(undefined, { nodes: 2, upArgs: ['--mode', 'bgp', '--router', daemon] });
});

after(async () => {
  await lab?.down();
});

test('lab status -o json names the router; every node peers with it', { skip }, async () => {
  assert.deepEqual(lab.status.router, {
    netns: lab.name === 'lab' ? 'mlb-router' : `mlb${lab.name}-router`, daemon, asn: 64501, nodeASN: 64500,
    ipv4: lab.name === 'lab' ? '10.89.0.254' : lab.status.router?.ipv4, ipv6: lab.name === 'lab' ? 'fd00:89::254' : lab.status.router?.ipv6,
  });
  const peers = await lab.getJson<{ items: { metadata: { name: string }; spec: { peerAddress: string; bfdProfile?: string } }[] }>(['get', 'bgppeers', '-n', 'metallb-system']);
  assert.deepEqual(peers.items.map((p) => p.spec.peerAddress).sort(), [lab.status.router!.ipv4, lab.status.router!.ipv6].sort());
  if (daemon !== 'gobgp') assert.ok(peers.items.every((p) => p.spec.bfdProfile === 'lab-bfd'));
});

test('curl EXTERNAL-IP from the client goes through the router to both nodes (ECMP), IPv4 and IPv6', { skip }, async () => {
  await lab.kubectlOk(['apply', '-f', '-'], {
    input: `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: hname, namespace: default}
spec:
  selector: {matchLabels: {app: hname}}
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
  let ips: string[] = [];
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
    const items = (await lab.getJson<{ items: BgpStatus[] }>(['get', 'servicebgpstatuses', '-n', 'metallb-system'])).items.filter((o) => o.status?.serviceName === 'hname');
    const got = items.map((o) => `${o.status?.node}:${(o.status?.peers ?? []).join('+')}`).sort();
    return JSON.stringify(got) === JSON.stringify(['node1:lab-router+lab-router-v6', 'node2:lab-router+lab-router-v6']) || got.join(' ');
  });
});

test('a node whose cable is cut is routed around quickly; it comes back when plugged in', { skip }, async (t) => {
  const ips = ((await lab.getJson<Svc>(['get', 'service', 'hname'])).status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
  const cable = lab.name === 'lab' ? 'mlb-node2' : `mlb${lab.name}-node2`;
  await runCmd('ip', ['link', 'set', cable, 'down']);
  try {
    // Without BFD (GoBGP) only the hold timer (90 s) can notice.
    const ms = await waitNextHops(ips[0]!, ['node1'], daemon === 'gobgp' ? 150_000 : 20_000);
    t.diagnostic(`${daemon}: node2's path withdrawn ${ms} ms after the cable was cut`);
    await waitNextHops(ips[1]!, ['node1'], daemon === 'gobgp' ? 150_000 : 20_000);
    for (const ip of ips) {
      for (let i = 0; i < 5; i++) assert.equal((await lab.curl('client', url(ip), 3)).trim().length > 0, true);
    }
  } finally {
    await runCmd('ip', ['link', 'set', cable, 'up']);
  }
  await waitNextHops(ips[0]!, ['node1', 'node2'], 90_000);
  await waitNextHops(ips[1]!, ['node1', 'node2'], 90_000);
});

test('deleting the Service withdraws its routes', { skip }, async () => {
  const ips = ((await lab.getJson<Svc>(['get', 'service', 'hname'])).status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
  await lab.kubectlOk(['delete', 'service', 'hname']);
  for (const ip of ips) await waitNextHops(ip, [], 30_000);
});
