// `metallb speaker` in BGP mode (root): two speaker processes in node namespaces (tbg-) against the dev API server,
// and BIRD 2 in a router namespace on the same LAN with BFD and kernel ECMP. MetalLB's configuration decides
// everything: a BGPPeer for every node (IPv4, with a BFDProfile) and one for node1 only (IPv6, nodeSelectors), a
// BGPAdvertisement with communities, aggregation and a Community alias. Checked: the routes BIRD holds (next hops,
// communities, paths per node), the ECMP kernel route, ServiceBGPStatus objects per node, metallb_bgp_* metrics,
// externalTrafficPolicy Local, a cut cable noticed by BFD well before the hold time, withdrawal on delete.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NS, poolYaml, waitFor, type Env, startEnv } from '../../controller/helpers.js';
import { isRoot, run } from '../../helpers/netns.js';
import { metric, startSpeaker, type SpeakerHandle } from '../process.js';
import { TestLan, type LanMachine } from '../lan.js';
import { startRouter, type Router } from '../../../src/lab/routers/runner.js';
import type { RouteEntry } from '../../../src/lab/routers/types.js';

const APPS = 'tbg-apps';
const skip = isRoot() ? false : 'needs root (network namespaces)';
const lan = new TestLan(101, { prefix: 'tbg-', block: 91 });
const machines = new Map<string, LanMachine>();
let routerMachine: LanMachine;
let router: Router | undefined;
let env: Env;
const speakers = new Map<string, SpeakerHandle>();
const dir = mkdtempSync(join(tmpdir(), 'tbg-speaker-'));

interface BgpStatusObj {
  metadata: { name: string; generateName?: string; labels?: Record<string, string> };
  status?: { node?: string; serviceName?: string; serviceNamespace?: string; peers?: string[] };
}

const nodeYaml = (name: string): string => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: {kubernetes.io/hostname: ${name}}
`;

async function setEndpoints(svc: string, nodes: string[]): Promise<void> {
  const path = `/apis/discovery.k8s.io/v1/namespaces/${APPS}/endpointslices`;
  await env.api.delete(`${path}/${svc}-abc`).catch(() => undefined);
  await env.api.post(path, {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-abc`, namespace: APPS, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: nodes.map((node, i) => ({ addresses: [`10.244.${i + 1}.9`], nodeName: node, conditions: { ready: true } })),
  });
}

async function bgpStatuses(svc: string): Promise<BgpStatusObj[]> {
  const list = await env.api.get<{ items: BgpStatusObj[] }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/servicebgpstatuses`);
  return list.items.filter((o) => o.metadata.labels?.['metallb.io/service-name'] === svc);
}

/** node -> peers, from the ServiceBGPStatus objects of `svc`. */
async function statusPeers(svc: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const o of await bgpStatuses(svc)) out[o.status?.node ?? '?'] = o.status?.peers ?? [];
  return out;
}

async function paths(family: 'ipv4' | 'ipv6', prefix: string): Promise<RouteEntry[]> {
  return (await router!.routes(family)).filter((r) => r.prefix === prefix);
}

/** Waits until BIRD holds `prefix` from exactly the nodes `from` (by their LAN address). */
async function waitPaths(family: 'ipv4' | 'ipv6', prefix: string, from: string[], timeoutMs = 60_000): Promise<RouteEntry[]> {
  const want = [...from].sort();
  return waitFor(`${prefix} from [${want.join(', ')}]`, async () => {
    const p = await paths(family, prefix);
    const got = p.map((r) => r.from ?? '').sort();
    return JSON.stringify(got) === JSON.stringify(want) ? p : undefined;
  }, timeoutMs, 200);
}

before(async () => {
  if (skip) return;
  lan.up();
  for (let i = 1; i <= 2; i++) machines.set(`node${i}`, lan.node(i));
  routerMachine = lan.other('r', 254);
  const [n1, n2] = [machines.get('node1')!, machines.get('node2')!];
  router = await startRouter('bird', {
    asn: 64501,
    routerId: routerMachine.ip,
    kernel: true,
    neighbors: [
      { name: 'n1', address: n1.ip, asn: 64500, bfd: true, families: ['ipv4'] },
      { name: 'n2', address: n2.ip, asn: 64500, bfd: true, families: ['ipv4'] },
      { name: 'n1v6', address: n1.ip6, asn: 64500, families: ['ipv6'] },
    ],
  }, { netns: routerMachine.ns, dir: join(dir, 'bird') });
  env = await startEnv({ extraArgs: ['--host', lan.hostIP] });
  await env.apply([nodeYaml('node1'), nodeYaml('node2')].join('---\n'));
  await env.kc(['create', 'namespace', APPS]);
  await env.apply([
    poolYaml('bgp', ['10.91.0.0/24', 'fd00:91::/120']),
    `apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: ${NS}}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}
`,
    `apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: aliases, namespace: ${NS}}
spec:
  communities:
  - {name: no-export, value: "65535:65281"}
`,
    `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router-v4, namespace: ${NS}}
spec: {myASN: 64500, peerASN: 64501, peerAddress: ${routerMachine.ip}, bfdProfile: fast}
`,
    `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router-v6, namespace: ${NS}}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: "${routerMachine.ip6}"
  nodeSelectors: [{matchLabels: {kubernetes.io/hostname: node1}}]
`,
    `apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: ${NS}}
spec:
  ipAddressPools: [bgp]
  communities: ["64500:100", no-export, "large:64500:1:2"]
`,
  ].join('---\n'));
  const started = await Promise.all(['node1', 'node2'].map((n) => startSpeaker(env.kubeconfig, n, { netns: machines.get(n)! })));
  for (const h of started) speakers.set(h.node, h);
});

after(async () => {
  await Promise.all([...speakers.values()].map((h) => h.stop()));
  await router?.stop();
  await env?.close();
  await lan.down();
  rmSync(dir, { recursive: true, force: true });
});

test('every selected node peers with the router; the IPv6 peer runs on node1 only (nodeSelectors)', { skip }, async () => {
  const [n1, n2] = [machines.get('node1')!, machines.get('node2')!];
  const peer4 = `${routerMachine.ip}:179`;
  const peer6 = `[${routerMachine.ip6}]:179`;
  for (const addr of [n1.ip, n2.ip, n1.ip6]) {
    await waitFor(`BIRD session with ${addr}`, async () => (await router!.neighborState(addr)) === 'Established', 60_000, 200);
  }
  const m1 = await speakers.get('node1')!.metrics();
  assert.equal(metric(m1, 'metallb_bgp_session_up', { peer: peer4 }), 1);
  assert.equal(metric(m1, 'metallb_bgp_session_up', { peer: peer6 }), 1);
  const m2 = await speakers.get('node2')!.metrics();
  assert.equal(metric(m2, 'metallb_bgp_session_up', { peer: peer4 }), 1);
  assert.equal(metric(m2, 'metallb_bgp_session_up', { peer: peer6 }), undefined, 'node2 has no IPv6 session');
  await waitFor('BFD up with both nodes', async () => {
    const b = await router!.bfdPeers();
    return [n1.ip, n2.ip].every((a) => b.some((s) => s.address === a && s.state === 'Up'));
  }, 60_000, 200);
  // MetalLB's FRR-mode BFD metrics and message counters, from the native speaker.
  const m = await waitFor('metallb_bfd_session_up', async () => {
    const text = await speakers.get('node1')!.metrics();
    return metric(text, 'metallb_bfd_session_up', { peer: routerMachine.ip }) === 1 ? text : undefined;
  }, 30_000, 200);
  assert.ok((metric(m, 'metallb_bfd_control_packet_input', { peer: routerMachine.ip }) ?? 0) > 0);
  assert.ok((metric(m, 'metallb_bfd_control_packet_output', { peer: routerMachine.ip }) ?? 0) > 0);
  assert.equal(metric(m, 'metallb_bfd_session_up_events', { peer: routerMachine.ip }), 1);
  assert.equal(metric(m, 'metallb_bfd_session_down_events', { peer: routerMachine.ip }), 0);
  assert.equal(metric(m, 'metallb_bfd_session_up', { peer: routerMachine.ip6 }), undefined, 'no BFD profile on the IPv6 peer');
  assert.equal(metric(m, 'metallb_bgp_opens_sent', { peer: peer4 }), 1);
  assert.equal(metric(m, 'metallb_bgp_opens_received', { peer: peer4 }), 1);
  assert.ok((metric(m, 'metallb_bgp_keepalives_received', { peer: peer4 }) ?? 0) >= 1);
});

test('a Service is advertised by every node with endpoints anywhere: ECMP, communities, status objects, metrics', { skip }, async () => {
  const [n1, n2] = [machines.get('node1')!, machines.get('node2')!];
  await env.apply(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${APPS}}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
`);
  await setEndpoints('web', ['node1']);
  await env.api.mergePatch(`/api/v1/namespaces/${APPS}/services/web/status`, { status: { loadBalancer: { ingress: [{ ip: '10.91.0.5' }, { ip: 'fd00:91::5' }] } } });
  const v4 = await waitPaths('ipv4', '10.91.0.5/32', [n1.ip, n2.ip]);
  for (const p of v4) {
    assert.deepEqual(p.nextHops, [p.from]);
    assert.deepEqual(p.asPath, [64500]);
    assert.deepEqual(p.communities, ['64500:100', '65535:65281']);
    assert.deepEqual(p.largeCommunities, ['64500:1:2']);
  }
  const v6 = await waitPaths('ipv6', 'fd00:91::5/128', [n1.ip6]);
  assert.equal(v6[0]!.nextHops[0], n1.ip6);
  // BIRD installs one kernel route with both nodes as next hops.
  const kernel = await waitFor('ECMP kernel route', () => {
    const out = run('ip', ['-n', routerMachine.ns, 'route', 'show', '10.91.0.5']);
    return out.includes(n1.ip) && out.includes(n2.ip) ? out : undefined;
  }, 30_000, 200);
  assert.match(kernel, /nexthop/);
  assert.deepEqual(await waitFor('ServiceBGPStatus per node', async () => {
    const s = await statusPeers('web');
    return Object.keys(s).length === 2 ? s : undefined;
  }, 30_000, 200), { node1: ['router-v4', 'router-v6'], node2: ['router-v4'] });
  const st = (await bgpStatuses('web')).find((o) => o.status?.node === 'node2')!;
  assert.equal(st.metadata.generateName, 'bgp-');
  assert.deepEqual(st.metadata.labels, { 'metallb.io/node': 'node2', 'metallb.io/service-name': 'web', 'metallb.io/service-namespace': APPS });
  assert.deepEqual(st.status, { node: 'node2', serviceName: 'web', serviceNamespace: APPS, peers: ['router-v4'] });
  const m1 = await speakers.get('node1')!.metrics();
  assert.equal(metric(m1, 'metallb_bgp_announced_prefixes_total', { peer: `${routerMachine.ip}:179` }), 1);
  assert.equal(metric(m1, 'metallb_bgp_announced_prefixes_total', { peer: `[${routerMachine.ip6}]:179` }), 1);
  assert.ok((metric(m1, 'metallb_bgp_updates_total', { peer: `${routerMachine.ip}:179` }) ?? 0) >= 1);
  assert.equal(metric(m1, 'metallb_speaker_announced', { service: `${APPS}/web`, protocol: 'bgp', node: 'node1', ip: '10.91.0.5' }), 1);
  assert.match(await env.kc(['get', 'servicebgpstatuses', '-n', NS]), /node2\s+web\s+tbg-apps/);
});

test('externalTrafficPolicy Local: only nodes with a ready endpoint advertise', { skip }, async () => {
  const [n1, n2] = [machines.get('node1')!, machines.get('node2')!];
  await env.kc(['patch', 'service', '-n', APPS, 'web', '-p', '{"spec":{"externalTrafficPolicy":"Local"}}']);
  await waitPaths('ipv4', '10.91.0.5/32', [n1.ip]);
  assert.deepEqual(await waitFor('node2 status gone', async () => {
    const s = await statusPeers('web');
    return Object.keys(s).length === 1 ? s : undefined;
  }, 30_000, 200), { node1: ['router-v4', 'router-v6'] });
  await setEndpoints('web', ['node2']);
  await waitPaths('ipv4', '10.91.0.5/32', [n2.ip]);
  await waitPaths('ipv6', 'fd00:91::5/128', []);
  await setEndpoints('web', ['node1', 'node2']);
  await waitPaths('ipv4', '10.91.0.5/32', [n1.ip, n2.ip]);
});

test('a cut cable is noticed by BFD long before the hold time; the node comes back when it is plugged in', { skip }, async () => {
  const [n1, n2] = [machines.get('node1')!, machines.get('node2')!];
  run('ip', ['link', 'set', n2.cable, 'down']);
  try {
    // The hold time is 90 s: only BFD (0.9 s) can withdraw the path within this wait.
    await waitPaths('ipv4', '10.91.0.5/32', [n1.ip], 30_000);
    assert.notEqual(await router!.neighborState(n2.ip), 'Established');
  } finally {
    run('ip', ['link', 'set', n2.cable, 'up']);
  }
  await waitPaths('ipv4', '10.91.0.5/32', [n1.ip, n2.ip], 90_000);
});

test('deleting the Service withdraws its routes and status objects', { skip }, async () => {
  await env.kc(['delete', 'service', '-n', APPS, 'web']);
  await waitPaths('ipv4', '10.91.0.5/32', []);
  await waitPaths('ipv6', 'fd00:91::5/128', []);
  await waitFor('status objects deleted', async () => (await bgpStatuses('web')).length === 0, 30_000, 200);
  const m1 = await speakers.get('node1')!.metrics();
  assert.equal(metric(m1, 'metallb_bgp_announced_prefixes_total', { peer: `${routerMachine.ip}:179` }), 0);
});

test('SIGTERM closes the sessions with a Cease: the router drops them at once', { skip }, async () => {
  await speakers.get('node2')!.stop();
  await waitFor('node2 session down', async () => (await router!.neighborState(machines.get('node2')!.ip)) !== 'Established', 10_000, 100);
  assert.match(router!.log(), /Received: Administrative shutdown|Cease|shutdown/i);
});
