// The proxy's pure parts: which endpoints a Service port uses, and the ruleset text (loaded for real into a
// throw-away tkp- namespace, so nft itself checks every construct we emit).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildEntries, nodeIPs, podCIDRs } from '../../../src/cluster/proxy/model.js';
import { buildRuleset, deleteScript } from '../../../src/cluster/proxy/ruleset.js';
import { parseKubeProxyConfig } from '../../../src/cluster/proxy/config.js';
import { applyNft } from '../../../src/cluster/proxy/nft.js';
import type { EndpointSlice, Service } from '../../../src/cluster/common/types.js';
import { isRoot, Netns } from '../../helpers/netns.js';

const svc = (name: string, spec: Service['spec'], status?: Service['status']): Service => ({ metadata: { namespace: 'default', name }, spec, ...(status ? { status } : {}) });
const slice = (svcName: string, addressType: string, ports: { name?: string; port: number; protocol?: string }[], eps: { ip: string; node?: string; ready?: boolean; serving?: boolean; terminating?: boolean }[]): EndpointSlice => ({
  metadata: { namespace: 'default', name: `${svcName}-${addressType}`, labels: { 'kubernetes.io/service-name': svcName } },
  addressType,
  ports,
  endpoints: eps.map((e) => ({ addresses: [e.ip], ...(e.node ? { nodeName: e.node } : {}), conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false } })),
});

test('endpoints: ready ones; when none is ready, serving terminating ones; local ones for Local', () => {
  const s = svc('web', { type: 'LoadBalancer', clusterIP: '10.92.96.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }], externalTrafficPolicy: 'Local' }, { loadBalancer: { ingress: [{ ip: '10.92.1.200' }, { ip: '10.92.1.201', ipMode: 'Proxy' }] } });
  let [e] = buildEntries([s], [slice('web', 'IPv4', [{ name: 'http', port: 8080 }], [{ ip: '10.92.11.5', node: 'n1' }, { ip: '10.92.12.5', node: 'n2' }, { ip: '10.92.12.6', node: 'n2', ready: false }])], 'n1');
  assert.deepEqual(e!.clusterEndpoints.map((x) => x.ip), ['10.92.11.5', '10.92.12.5']);
  assert.deepEqual(e!.localEndpoints.map((x) => x.ip), ['10.92.11.5']);
  assert.deepEqual(e!.externalIPs, ['10.92.1.200'], 'ipMode Proxy addresses are left to the load-balancer');
  assert.equal(e!.nodePort, 30080);
  assert.equal(e!.externalLocal, true);
  [e] = buildEntries([s], [slice('web', 'IPv4', [{ name: 'http', port: 8080 }], [{ ip: '10.92.11.5', ready: false, serving: true, terminating: true }, { ip: '10.92.11.6', ready: false, serving: false, terminating: true }])], 'n1');
  assert.deepEqual(e!.clusterEndpoints.map((x) => x.ip), ['10.92.11.5']);
});

test('ports match by name and protocol; families split; headless and ExternalName are skipped; affinity timeout', () => {
  const entries = buildEntries(
    [
      svc('ds', { type: 'ClusterIP', clusterIPs: ['10.92.96.20', 'fd00:92:96::20'], ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dnst', port: 53, protocol: 'TCP' }], sessionAffinity: 'ClientIP' }),
      svc('headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
      svc('ext', { type: 'ExternalName', ports: [{ port: 80 }] } as Service['spec']),
    ],
    [
      slice('ds', 'IPv4', [{ name: 'dns', port: 5353, protocol: 'UDP' }, { name: 'dnst', port: 5354, protocol: 'TCP' }], [{ ip: '10.92.11.7' }]),
      slice('ds', 'IPv6', [{ name: 'dns', port: 5353, protocol: 'UDP' }], [{ ip: 'fd00:92:11:0::7' }]),
    ],
    'n1',
  );
  assert.deepEqual(
    entries.map((e) => `${e.id} v${e.family} ${e.clusterIPs.join()} -> ${e.clusterEndpoints.map((x) => `${x.ip}:${x.port}`).join()} aff=${e.affinitySeconds}`),
    [
      'default/ds/tcp/dnst v4 10.92.96.20 -> 10.92.11.7:5354 aff=10800',
      'default/ds/tcp/dnst v6 fd00:92:96::20 ->  aff=10800',
      'default/ds/udp/dns v4 10.92.96.20 -> 10.92.11.7:5353 aff=10800',
      'default/ds/udp/dns v6 fd00:92:96::20 -> fd00:92:11::7:5353 aff=10800',
    ],
  );
});

test('pod network from flags and nodes, without nested prefixes; node addresses; kube-proxy config', () => {
  const nodes = [{ spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } }, { spec: { podCIDR: '10.244.2.0/24' } }];
  assert.deepEqual(podCIDRs(['10.244.0.0/16'], nodes), ['10.244.0.0/16', 'fd00:10:244:1::/64']);
  assert.deepEqual(podCIDRs([], nodes), ['10.244.1.0/24', '10.244.2.0/24', 'fd00:10:244:1::/64']);
  assert.deepEqual(nodeIPs({ status: { addresses: [{ type: 'Hostname', address: 'n1' }, { type: 'InternalIP', address: '10.89.0.11' }, { type: 'InternalIP', address: 'fd00:89::11' }] } }), ['10.89.0.11', 'fd00:89::11']);
  assert.deepEqual(parseKubeProxyConfig('mode: "ipvs"\nclusterCIDR: 10.244.0.0/16,fd00:10:244::/56\nipvs:\n  strictARP: true\n'), { mode: 'ipvs', clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'] });
});

test('ruleset: maps dispatch to service chains; Cluster masquerades external traffic; Local keeps it local; no endpoints reject', () => {
  const entries = buildEntries(
    [
      svc('web', { type: 'LoadBalancer', clusterIP: '10.92.96.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }, { loadBalancer: { ingress: [{ ip: '10.92.1.200' }] } }),
      svc('loc', { type: 'NodePort', clusterIP: '10.92.96.11', ports: [{ port: 81, nodePort: 30081 }], externalTrafficPolicy: 'Local' }),
      svc('none', { type: 'NodePort', clusterIP: '10.92.96.12', ports: [{ port: 82, nodePort: 30082 }] }),
    ],
    [slice('web', 'IPv4', [{ name: 'http', port: 8080 }], [{ ip: '10.92.11.5', node: 'n1' }, { ip: '10.92.12.5', node: 'n2' }]), slice('loc', 'IPv4', [{ port: 8081 }], [{ ip: '10.92.12.6', node: 'n2' }])],
    'n1',
  );
  const r = buildRuleset({ entries, nodeIPs: ['10.92.1.11'], podCIDRs: ['10.92.11.0/24'] });
  assert.match(r, /^add table inet kube-proxy\ndelete table inet kube-proxy\ntable inet kube-proxy \{/);
  assert.match(r, /10\.92\.96\.10 \. tcp \. 80 : goto svc4-\w+-default\/web\/tcp\/http/);
  assert.match(r, /10\.92\.1\.200 \. tcp \. 80 : goto ext4-\w+-default\/web\/tcp\/http/);
  assert.match(r, /tcp \. 30080 : goto ext4-/);
  assert.match(r, /numgen random mod 2 vmap \{ 0 : goto ep4-/);
  assert.match(r, /meta l4proto tcp dnat ip to 10\.92\.12\.5:8080/);
  // node n1 has no local endpoint of `loc`: external traffic is dropped, pods and the node itself still get through
  const loc = r.slice(r.indexOf('chain ext4-'), r.length).split('  chain ').find((c) => c.includes('default/loc/'))!;
  assert.match(loc, /ip saddr @pod-cidrs4 goto svc4-/);
  assert.match(loc, /fib saddr type local goto svc4-/);
  assert.match(loc, /\n\s+drop\n/);
  assert.match(r, /10\.92\.96\.12 \. tcp \. 82 : goto reject-chain/);
  assert.match(r, /tcp \. 30082 : goto reject-chain/);
});

const netns = new Netns('tkp-');
after(() => netns.cleanup());

test('nft accepts the ruleset (dual-stack, UDP/SCTP, affinity, many services) and its removal', { skip: !isRoot() && 'needs root' }, async () => {
  const ns = netns.addNamespace('rs');
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  for (let i = 0; i < 60; i++) {
    services.push(
      svc(`s${i}`, { type: 'LoadBalancer', clusterIPs: [`10.92.96.${i + 1}`, `fd00:92:96::${(i + 1).toString(16)}`], ports: [{ name: 'a', port: 80, nodePort: 30000 + i, protocol: i % 3 === 0 ? 'UDP' : i % 3 === 1 ? 'TCP' : 'SCTP' }], sessionAffinity: i % 2 ? 'ClientIP' : 'None', externalTrafficPolicy: i % 4 ? 'Cluster' : 'Local', externalIPs: [`10.92.2.${i + 1}`] }, { loadBalancer: { ingress: [{ ip: `10.92.1.${i + 1}` }, { ip: `fd00:92:1::${(i + 1).toString(16)}` }] } }),
    );
    const proto = i % 3 === 0 ? 'UDP' : i % 3 === 1 ? 'TCP' : 'SCTP';
    if (i % 5 !== 0) {
      slices.push(slice(`s${i}`, 'IPv4', [{ name: 'a', port: 8080, protocol: proto }], [{ ip: `10.92.11.${i + 1}`, node: 'n1' }, { ip: `10.92.12.${i + 1}`, node: 'n2' }]));
      slices.push(slice(`s${i}`, 'IPv6', [{ name: 'a', port: 8080, protocol: proto }], [{ ip: `fd00:92:12::${(i + 1).toString(16)}`, node: 'n2' }]));
    }
  }
  const script = buildRuleset({ entries: buildEntries(services, slices, 'n1'), nodeIPs: ['10.92.1.11', 'fd00:92:1::11'], podCIDRs: ['10.92.11.0/24', '10.92.12.0/24', 'fd00:92:11::/64', 'fd00:92:12::/64'] });
  const inNs = ['netns', 'exec', ns, 'nft'];
  await applyNft(script, 'ip', inNs);
  // loading it again replaces it atomically
  await applyNft(script, 'ip', inNs);
  await applyNft(deleteScript(), 'ip', inNs);
  await applyNft(deleteScript(), 'ip', inNs);
  await assert.rejects(applyNft('table inet kube-proxy {\n  chain x {\n    bogus\n  }\n}\n', 'ip', inNs), /nft -f failed/);
});
