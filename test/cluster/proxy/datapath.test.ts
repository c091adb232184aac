// The proxy for real: two node namespaces with routed pods, a client on the LAN, the dev API server reachable from
// the nodes over a veth, `metallb cluster proxy` running inside each node namespace, and traffic from the client,
// from a pod and from a node to ClusterIPs, NodePorts and a LoadBalancer IP (IPv4 and IPv6, TCP and UDP).
// Namespaces and links carry the `tkp-` prefix; addresses are in 10.92.0.0/16 and fd00:92::/48.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isRoot, Netns, run } from '../../helpers/netns.js';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';
import { KubeClient, loadKubeConfig } from '../../../src/k8s/client.js';
import { objectPath } from '../../../src/k8s/resources.js';
import { createLogger } from '../../../src/log.js';
import { ControllerManager } from '../../../src/cluster/controllers/manager.js';
import { CR } from '../../../src/cluster/common/resources.js';
import { ObjectWriter } from '../../../src/cluster/common/writer.js';
import type { Pod, Service } from '../../../src/cluster/common/types.js';
import { nowRFC3339 } from '../../../src/cluster/common/pods.js';
import { waitFor } from '../controllers/helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '..', '..', '..');
const BIN = join(ROOT, 'bin', 'metallb.js');
const BACKEND = join(here, 'fixtures', 'backend.mjs');
const PROBE = join(here, 'fixtures', 'probe.mjs');
const pexec = promisify(execFile);

const skip = !isRoot() ? 'needs root (network namespaces, nftables)' : false;
const nn = new Netns('tkp-');
let srv: DevApiServer;
let client: KubeClient;
let writer: ObjectWriter;
let mgr: ControllerManager;
let dir: string;
const ns = { lan: '', n1: '', n2: '', client: '', pa: '', pb: '' };
const proxies: { node: string; child: ReturnType<Netns['spawn']>; logs: () => string }[] = [];

interface Probe {
  ok: boolean;
  body?: string;
  err?: string;
}

async function probe(netns: string, target: { host: string; port: number; udp?: boolean; n?: number; timeoutMs?: number }): Promise<Probe[]> {
  const { stdout } = await pexec('ip', ['netns', 'exec', netns, process.execPath, PROBE, JSON.stringify(target)], { timeout: 60_000 });
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Probe);
}
const bodies = (ps: Probe[]): string[] => ps.map((p) => (p.ok ? p.body! : `ERR ${p.err}`));
const who = (ps: Probe[]): Set<string> => new Set(ps.filter((p) => p.ok).map((p) => p.body!.split(' ')[0]!));

function podNetns(name: string, node: string, ipv4: string, ipv6: string, hostIf: string): string {
  const p = nn.addNamespace(name);
  nn.veth({ ns: p, name: 'eth0' }, { ns: node, name: hostIf });
  nn.ip(p, 'addr', 'add', `${ipv4}/32`, 'dev', 'eth0');
  nn.ip(p, '-6', 'addr', 'add', `${ipv6}/128`, 'dev', 'eth0', 'nodad');
  nn.ip(p, 'link', 'set', 'eth0', 'up');
  nn.ip(p, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
  nn.ip(p, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0', 'onlink');
  nn.ip(p, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0');
  nn.sysctl(node, `net.ipv4.conf.${hostIf}.proxy_arp`, '1');
  nn.ip(node, '-6', 'addr', 'add', 'fe80::1/64', 'dev', hostIf, 'nodad');
  nn.ip(node, 'link', 'set', hostIf, 'up');
  nn.ip(node, 'route', 'add', `${ipv4}/32`, 'dev', hostIf);
  nn.ip(node, '-6', 'route', 'add', `${ipv6}/128`, 'dev', hostIf);
  return p;
}

function lanMember(netns: string, lanIf: string, ipv4: string, ipv6: string): void {
  nn.veth({ ns: netns, name: 'eth0' }, { ns: ns.lan, name: lanIf });
  nn.ip(ns.lan, 'link', 'set', lanIf, 'master', 'br0', 'up');
  nn.ip(netns, 'addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
  nn.ip(netns, '-6', 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad');
  nn.ip(netns, 'link', 'set', 'eth0', 'up');
}

async function setPodStatus(name: string, ips: [string, string], ready: boolean): Promise<void> {
  const p = await client.get<Pod>(objectPath(CR.pods, 'default', name));
  await writer.updateStatus(CR.pods, {
    ...p,
    status: { phase: 'Running', podIP: ips[0], podIPs: [{ ip: ips[0] }, { ip: ips[1] }], conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: nowRFC3339() }] },
  });
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'tkp-proxy-'));
  try {
    ns.lan = nn.addNamespace('l');
    nn.ip(ns.lan, 'link', 'add', 'br0', 'type', 'bridge');
    nn.ip(ns.lan, 'link', 'set', 'br0', 'up');
    ns.n1 = nn.addNamespace('n1');
    ns.n2 = nn.addNamespace('n2');
    ns.client = nn.addNamespace('c');
    // the host (API server) on the LAN, as the control plane is in the lab
    const hostIf = nn.name('h');
    nn.veth({ name: hostIf }, { ns: ns.lan, name: 'tkp-lh' });
    nn.ip(ns.lan, 'link', 'set', 'tkp-lh', 'master', 'br0', 'up');
    nn.ip(undefined, 'addr', 'add', '10.92.1.1/24', 'dev', hostIf);
    nn.ip(undefined, '-6', 'addr', 'add', 'fd00:92:1::1/64', 'dev', hostIf, 'nodad');
    nn.ip(undefined, 'link', 'set', hostIf, 'up');
    lanMember(ns.n1, 'tkp-l1', '10.92.1.11', 'fd00:92:1::11');
    lanMember(ns.n2, 'tkp-l2', '10.92.1.12', 'fd00:92:1::12');
    lanMember(ns.client, 'tkp-lc', '10.92.1.100', 'fd00:92:1::100');
    for (const n of [ns.n1, ns.n2]) {
      nn.sysctl(n, 'net.ipv4.ip_forward', '1');
      nn.sysctl(n, 'net.ipv6.conf.all.forwarding', '1');
      nn.sysctl(n, 'net.ipv4.conf.all.rp_filter', '0');
    }
    ns.pa = podNetns('pa', ns.n1, '10.92.11.5', 'fd00:92:11::5', 'tkp-va');
    ns.pb = podNetns('pb', ns.n2, '10.92.12.5', 'fd00:92:12::5', 'tkp-vb');
    // nodes route each other's pod networks over the LAN; the client has no such routes
    nn.ip(ns.n1, 'route', 'add', '10.92.12.0/24', 'via', '10.92.1.12');
    nn.ip(ns.n1, '-6', 'route', 'add', 'fd00:92:12::/64', 'via', 'fd00:92:1::12');
    nn.ip(ns.n2, 'route', 'add', '10.92.11.0/24', 'via', '10.92.1.11');
    nn.ip(ns.n2, '-6', 'route', 'add', 'fd00:92:11::/64', 'via', 'fd00:92:1::11');
    // nodes have a default route (to the host), as machines do: a pod's gateway 169.254.1.1 is answered by proxy
    // ARP only when the node has a route for it, and a node's own packets to a cluster IP need a route to be sent
    for (const n of [ns.n1, ns.n2]) {
      nn.ip(n, 'route', 'add', 'default', 'via', '10.92.1.1');
      nn.ip(n, '-6', 'route', 'add', 'default', 'via', 'fd00:92:1::1');
    }
    // what a speaker would do for the LoadBalancer addresses: make node1 the next hop
    nn.ip(ns.client, 'route', 'add', '10.92.1.200/32', 'via', '10.92.1.11');
    nn.ip(ns.client, '-6', 'route', 'add', 'fd00:92:1::200/128', 'via', 'fd00:92:1::11');

    srv = await startDevApiServer({ host: '10.92.1.1', logLevel: 'none', serviceCIDR: '10.92.96.0/24', serviceCIDRv6: 'fd00:92:96::/112' });
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, srv.kubeconfig);
    client = new KubeClient(loadKubeConfig(kubeconfig));
    writer = new ObjectWriter(client);
    const log = createLogger('test', 'none');
    mgr = new ControllerManager(client, log, { controllers: ['endpointslice'], workers: 2, nodeMonitorGracePeriodMs: 40_000 });
    await mgr.start();
    for (const [i, name] of [[1, 'node1'], [2, 'node2']] as const) {
      await writer.create(CR.nodes, undefined, {
        metadata: { name, labels: { 'kubernetes.io/hostname': name } },
        spec: { podCIDR: `10.92.1${i}.0/24`, podCIDRs: [`10.92.1${i}.0/24`, `fd00:92:1${i}::/64`] },
        status: { addresses: [{ type: 'InternalIP', address: `10.92.1.1${i}` }, { type: 'InternalIP', address: `fd00:92:1::1${i}` }], conditions: [{ type: 'Ready', status: 'True' }] },
      });
    }
    for (const [pod, node, v4, v6, netns] of [
      ['pod-a', 'node1', '10.92.11.5', 'fd00:92:11::5', ns.pa],
      ['pod-b', 'node2', '10.92.12.5', 'fd00:92:12::5', ns.pb],
    ] as const) {
      await writer.create<Pod>(CR.pods, 'default', {
        metadata: { name: pod, labels: { app: 'web' } },
        spec: { nodeName: node, containers: [{ name: 'c', image: 'nginx', ports: [{ name: 'http', containerPort: 8080 }] }] },
      });
      await setPodStatus(pod, [v4, v6], true);
      const child = nn.spawn(netns, process.execPath, [BACKEND, pod]);
      await new Promise<void>((res, rej) => {
        child.stdout!.once('data', () => res());
        child.once('exit', (c) => rej(new Error(`backend ${pod} exited ${c}`)));
      });
    }
    await writer.create<Service>(CR.services, 'default', {
      metadata: { name: 'web' },
      spec: {
        type: 'LoadBalancer',
        ipFamilyPolicy: 'RequireDualStack',
        ipFamilies: ['IPv4', 'IPv6'],
        selector: { app: 'web' },
        ports: [
          { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
          { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' },
        ],
      } as Service['spec'],
    });
    const svc = await client.get<Service>(objectPath(CR.services, 'default', 'web'));
    await writer.updateStatus(CR.services, { ...svc, status: { loadBalancer: { ingress: [{ ip: '10.92.1.200', ipMode: 'VIP' }, { ip: 'fd00:92:1::200', ipMode: 'VIP' }] } } });
    await writer.create<Service>(CR.services, 'default', { metadata: { name: 'empty' }, spec: { selector: { app: 'none' }, ports: [{ port: 81, protocol: 'TCP' }] } });
    for (const [node, netns] of [['node1', ns.n1], ['node2', ns.n2]] as const) {
      // --exit-with-stdin: should this test process die without cleaning up, the proxies go too
      const child = nn.spawn(netns, process.execPath, [BIN, 'cluster', 'proxy', '--kubeconfig', kubeconfig, '--node-name', node, '--min-sync-period', '50ms', '--sync-period', '1s', '--log-level', 'debug', '--exit-with-stdin']);
      let logs = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (logs += d));
      child.stdout!.resume();
      proxies.push({ node, child, logs: () => logs });
    }
  } catch (err) {
    await nn.cleanup();
    throw err;
  }
});

after(async () => {
  if (skip) return;
  await mgr?.stop();
  client?.close();
  await nn.cleanup();
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let svc: Service;
const clusterIP = (fam: 4 | 6): string => svc.spec!.clusterIPs!.find((ip) => (fam === 6) === ip.includes(':'))!;
const nodePort = (name: string): number => svc.spec!.ports!.find((p) => p.name === name)!.nodePort!;

test('a pod reaches the ClusterIP (IPv4 and IPv6); connections spread over both endpoints', { skip }, async () => {
  svc = await client.get<Service>(objectPath(CR.services, 'default', 'web'));
  await waitFor('proxy programs the ClusterIP', async () => (await probe(ns.pa, { host: clusterIP(4), port: 80 }))[0]?.ok, 60_000, 500);
  const v4 = await probe(ns.pa, { host: clusterIP(4), port: 80, n: 20 });
  assert.ok(v4.every((p) => p.ok), bodies(v4).join('; '));
  assert.deepEqual([...who(v4)].sort(), ['pod-a', 'pod-b']);
  // pod-to-ClusterIP traffic is not masqueraded (the pod network is known from the nodes' podCIDRs)
  assert.ok(v4.filter((p) => p.body!.startsWith('pod-b')).every((p) => p.body!.endsWith(' 10.92.11.5')), bodies(v4).join('; '));
  const v6 = await probe(ns.pa, { host: clusterIP(6), port: 80, n: 20 });
  assert.ok(v6.every((p) => p.ok), bodies(v6).join('; '));
  assert.deepEqual([...who(v6)].sort(), ['pod-a', 'pod-b']);
});

test('the node itself reaches the ClusterIP and the UDP port', { skip }, async () => {
  const r = await probe(ns.n2, { host: clusterIP(4), port: 80, n: 4 });
  assert.ok(r.every((p) => p.ok), bodies(r).join('; '));
  const u = await probe(ns.n2, { host: clusterIP(4), port: 53, udp: true, n: 4 });
  assert.ok(u.every((p) => p.ok), bodies(u).join('; '));
});

test('externalTrafficPolicy Cluster: NodePort and LoadBalancer IP from the client reach both pods, masqueraded', { skip }, async () => {
  for (const host of ['10.92.1.11', '10.92.1.200', 'fd00:92:1::11', 'fd00:92:1::200']) {
    const port = host.endsWith('200') ? 80 : nodePort('http');
    const r = await probe(ns.client, { host, port, n: 20 });
    assert.ok(r.every((p) => p.ok), `${host}: ${bodies(r).join('; ')}`);
    assert.deepEqual([...who(r)].sort(), ['pod-a', 'pod-b'], `${host}: ${bodies(r).join('; ')}`);
    assert.ok(r.every((p) => !p.body!.endsWith(host.includes(':') ? ' fd00:92:1::100' : ' 10.92.1.100')), `client address leaked: ${bodies(r).join('; ')}`);
  }
  const u = await probe(ns.client, { host: '10.92.1.11', port: nodePort('dns'), udp: true, n: 6 });
  assert.ok(u.every((p) => p.ok), bodies(u).join('; '));
  // the proxy never answers ARP for the Service address: without a speaker's route the client gets no reply
  const arp = run('ip', ['netns', 'exec', ns.client, 'arping', '-c', '2', '-w', '1', '-I', 'eth0', '10.92.1.200'], { allowFail: true });
  assert.doesNotMatch(arp, /reply from/i);
});

test('externalTrafficPolicy Local: only local endpoints, client address preserved; a node without one drops', { skip }, async () => {
  const cur = await client.get<Service>(objectPath(CR.services, 'default', 'web'));
  await writer.mergePatch(CR.services, 'default', 'web', { metadata: { resourceVersion: cur.metadata?.resourceVersion }, spec: { externalTrafficPolicy: 'Local' } });
  await waitFor('Local applied', async () => {
    const r = await probe(ns.client, { host: '10.92.1.200', port: 80, n: 6 });
    return r.every((p) => p.ok && p.body === 'pod-a 10.92.1.100');
  }, 30_000, 300);
  const lb6 = await probe(ns.client, { host: 'fd00:92:1::200', port: 80, n: 10 });
  assert.deepEqual(new Set(bodies(lb6)), new Set(['pod-a fd00:92:1::100']));
  const np2 = await probe(ns.client, { host: '10.92.1.12', port: nodePort('http'), n: 10 });
  assert.deepEqual(new Set(bodies(np2)), new Set(['pod-b 10.92.1.100']));
  // pods still reach every endpoint through the external address (they are not external clients)
  const fromPod = await probe(ns.pa, { host: '10.92.1.12', port: nodePort('http'), n: 20 });
  assert.ok(fromPod.every((p) => p.ok), bodies(fromPod).join('; '));
  // pod-b stops being ready: node2 has no local endpoint left and drops external traffic
  await setPodStatus('pod-b', ['10.92.12.5', 'fd00:92:12::5'], false);
  await waitFor('node2 drops', async () => (await probe(ns.client, { host: '10.92.1.12', port: nodePort('http'), timeoutMs: 700 }))[0]?.err === 'timeout', 30_000, 300);
  const cl = await probe(ns.pa, { host: clusterIP(4), port: 80, n: 10 });
  assert.deepEqual([...who(cl)], ['pod-a'], 'a not-ready endpoint leaves the ClusterIP too');
  await setPodStatus('pod-b', ['10.92.12.5', 'fd00:92:12::5'], true);
});

test('sessionAffinity ClientIP keeps a client on one endpoint', { skip }, async () => {
  await writer.mergePatch(CR.services, 'default', 'web', { spec: { externalTrafficPolicy: 'Cluster', sessionAffinity: 'ClientIP' } });
  await waitFor('affinity sets loaded', () => /set aff4-/.test(run('ip', ['netns', 'exec', ns.n1, 'nft', 'list', 'table', 'inet', 'kube-proxy'])), 30_000, 200);
  const r = await probe(ns.client, { host: '10.92.1.200', port: 80, n: 15 });
  assert.ok(r.every((p) => p.ok), bodies(r).join('; '));
  assert.equal(who(r).size, 1, bodies(r).join('; '));
});

test('a Service without endpoints refuses connections at once', { skip }, async () => {
  const empty = await client.get<Service>(objectPath(CR.services, 'default', 'empty'));
  const r = await probe(ns.pa, { host: empty.spec!.clusterIP!, port: 81, timeoutMs: 3000 });
  assert.equal(r[0]?.err, 'ECONNREFUSED');
});

test('a table removed behind the proxy\'s back is loaded again', { skip }, async () => {
  run('ip', ['netns', 'exec', ns.n2, 'nft', 'delete', 'table', 'inet', 'kube-proxy']);
  await waitFor('table back', () => /inet kube-proxy/.test(run('ip', ['netns', 'exec', ns.n2, 'nft', 'list', 'tables'])), 20_000, 200);
  const r = await probe(ns.client, { host: '10.92.1.12', port: nodePort('http'), n: 4 });
  assert.ok(r.every((p) => p.ok), bodies(r).join('; '));
});

test('SIGTERM: the proxy exits 0 and removes its table', { skip }, async () => {
  for (const p of proxies) {
    assert.match(run('ip', ['netns', 'exec', p.node === 'node1' ? ns.n1 : ns.n2, 'nft', 'list', 'tables']), /inet kube-proxy/);
    p.child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => (p.child.exitCode !== null ? r(p.child.exitCode) : p.child.once('exit', (c) => r(c))));
    assert.equal(code, 0, p.logs());
    assert.doesNotMatch(run('ip', ['netns', 'exec', p.node === 'node1' ? ns.n1 : ns.n2, 'nft', 'list', 'tables']), /kube-proxy/);
  }
});
