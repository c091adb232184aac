import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, fieldErrorString, invalid } from '../../../src/cluster/apiserver/errors.js';
import { CidrAllocator, PortAllocator } from '../../../src/cluster/apiserver/ipalloc.js';
import { prepareService, releaseService, type ServiceAllocators } from '../../../src/cluster/apiserver/service.js';
import type { Obj } from '../../../src/cluster/apiserver/util.js';

const inv = (errs: Parameters<typeof invalid>[3]): ApiError => invalid('', 'Service', 'x', errs);

function allocs(v6 = false, ports = '30000-30002'): ServiceAllocators {
  return { v4: new CidrAllocator('10.96.0.0/28'), ...(v6 ? { v6: new CidrAllocator('fd00:10:96::/124') } : {}), nodePorts: PortAllocator.parse(ports) };
}

const svc = (spec: Obj, name = 'x'): Obj => ({ metadata: { name }, spec: { ports: [{ port: 80 }], ...spec } });

function reasons(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return (e.details?.causes ?? []).map((c) => `${c.field}: ${c.message}`);
    throw e;
  }
  return [];
}

test('cidr allocator: skips network and broadcast, reserves, releases, fills up', () => {
  const a = new CidrAllocator('10.0.0.0/30');
  assert.equal(a.allocate(), '10.0.0.1');
  assert.equal(a.allocate(), '10.0.0.2');
  assert.equal(a.allocate(), undefined);
  assert.equal(a.reserve('10.0.0.3'), 'range');
  assert.equal(a.reserve('10.0.0.2'), 'taken');
  a.release('10.0.0.1');
  assert.equal(a.allocate(), '10.0.0.1');
  const b = new CidrAllocator('fd00::/126');
  assert.equal(b.allocate(), 'fd00::1');
  assert.equal(b.reserve('fd00:0::3'), 'ok');
  assert.equal(b.isAllocated('fd00::3'), true);
  assert.throws(() => new CidrAllocator('nonsense'));
});

test('service defaults and single-stack allocation', () => {
  const a = allocs();
  const s = svc({ type: 'LoadBalancer' });
  prepareService(s, undefined, a, inv).commit();
  assert.deepEqual(s.spec, {
    type: 'LoadBalancer',
    ports: [{ port: 80, protocol: 'TCP', targetPort: 80, nodePort: 30000 }],
    sessionAffinity: 'None',
    externalTrafficPolicy: 'Cluster',
    allocateLoadBalancerNodePorts: true,
    internalTrafficPolicy: 'Cluster',
    ipFamilyPolicy: 'SingleStack',
    ipFamilies: ['IPv4'],
    clusterIP: '10.96.0.1',
    clusterIPs: ['10.96.0.1'],
  });
  assert.deepEqual(s.status, { loadBalancer: {} });
});

test('requested cluster IP: honoured, or 422 when taken or out of range', () => {
  const a = allocs();
  const s = svc({ clusterIP: '10.96.0.5' });
  prepareService(s, undefined, a, inv).commit();
  assert.equal((s.spec as Obj).clusterIP, '10.96.0.5');
  assert.deepEqual(reasons(() => prepareService(svc({ clusterIP: '10.96.0.5' }), undefined, a, inv)), ['spec.clusterIPs[0]: Invalid value: "10.96.0.5": provided IP is already allocated']);
  assert.deepEqual(reasons(() => prepareService(svc({ clusterIP: '192.168.0.1' }), undefined, a, inv)), [
    'spec.clusterIPs[0]: Invalid value: "192.168.0.1": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/28',
  ]);
  const h = svc({ clusterIP: 'None' });
  prepareService(h, undefined, a, inv).commit();
  assert.deepEqual((h.spec as Obj).clusterIPs, ['None']);
});

test('dual stack: PreferDualStack gets both when configured; RequireDualStack fails when not', () => {
  const dual = allocs(true);
  const s = svc({ ipFamilyPolicy: 'PreferDualStack' });
  prepareService(s, undefined, dual, inv).commit();
  assert.deepEqual((s.spec as Obj).clusterIPs, ['10.96.0.1', 'fd00:10:96::1']);
  assert.deepEqual((s.spec as Obj).ipFamilies, ['IPv4', 'IPv6']);
  const v6first = svc({ ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6'] });
  prepareService(v6first, undefined, dual, inv).commit();
  assert.deepEqual((v6first.spec as Obj).ipFamilies, ['IPv6', 'IPv4']);
  const single = allocs(false);
  const p = svc({ ipFamilyPolicy: 'PreferDualStack' });
  prepareService(p, undefined, single, inv).commit();
  assert.deepEqual((p.spec as Obj).clusterIPs, ['10.96.0.1']);
  assert.deepEqual(reasons(() => prepareService(svc({ ipFamilyPolicy: 'RequireDualStack' }), undefined, single, inv)), [
    'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services',
  ]);
  assert.deepEqual(reasons(() => prepareService(svc({ ipFamilies: ['IPv6'] }), undefined, single, inv)), ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster']);
});

test('node ports: allocated, kept on update, released on type change and delete, range full is 500', () => {
  const a = allocs(false, '30000-30001');
  const s = svc({ type: 'NodePort' });
  prepareService(s, undefined, a, inv).commit();
  assert.equal(((s.spec as Obj).ports as Obj[])[0]!.nodePort, 30000);
  // an update without nodePort / clusterIP keeps them
  const upd = svc({ type: 'NodePort', ports: [{ port: 80 }] });
  prepareService(upd, s, a, inv).commit();
  assert.equal(((upd.spec as Obj).ports as Obj[])[0]!.nodePort, 30000);
  assert.equal((upd.spec as Obj).clusterIP, (s.spec as Obj).clusterIP);
  // explicit port in use
  assert.deepEqual(reasons(() => prepareService(svc({ type: 'NodePort', ports: [{ port: 81, nodePort: 30000 }] }, 'y'), undefined, a, inv)), [
    'spec.ports[0].nodePort: Invalid value: 30000: provided port is already allocated',
  ]);
  assert.deepEqual(reasons(() => prepareService(svc({ type: 'NodePort', ports: [{ port: 81, nodePort: 80 }] }, 'y'), undefined, a, inv)), [
    'spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-30001',
  ]);
  // type change to ClusterIP releases the node port
  const toCip = svc({ type: 'ClusterIP', ports: [{ port: 80, nodePort: 30000 }] });
  prepareService(toCip, upd, a, inv).commit();
  assert.equal(((toCip.spec as Obj).ports as Obj[])[0]!.nodePort, undefined);
  assert.equal(a.nodePorts.isAllocated(30000), false);
  // fill the range
  const s1 = svc({ type: 'NodePort' }, 'a1');
  const s2 = svc({ type: 'NodePort' }, 'a2');
  prepareService(s1, undefined, a, inv).commit();
  prepareService(s2, undefined, a, inv).commit();
  assert.throws(() => prepareService(svc({ type: 'NodePort' }, 'a3'), undefined, a, inv), (e: unknown) => e instanceof ApiError && e.code === 500 && /range is full/.test(e.message));
  releaseService(s1, a);
  prepareService(svc({ type: 'NodePort' }, 'a3'), undefined, a, inv).commit();
  // allocateLoadBalancerNodePorts: false
  const b = allocs();
  const lb = svc({ type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  prepareService(lb, undefined, b, inv).commit();
  assert.equal(((lb.spec as Obj).ports as Obj[])[0]!.nodePort, undefined);
});

test('cluster IP is immutable; validation errors are 422 with causes', () => {
  const a = allocs();
  const s = svc({});
  prepareService(s, undefined, a, inv).commit();
  assert.deepEqual(reasons(() => prepareService(svc({ clusterIP: '10.96.0.9' }), s, a, inv)), ['spec.clusterIPs[0]: Invalid value: ["10.96.0.9"]: may not change once set']);
  const errs = reasons(() => prepareService({ metadata: { name: '1bad' }, spec: { type: 'Weird', ports: [{ port: 0, protocol: 'ICMP' }, { port: 80 }] } }, undefined, a, inv));
  assert.ok(errs.some((e) => e.startsWith('metadata.name: Invalid value: "1bad": a DNS-1035 label')));
  assert.ok(errs.includes('spec.type: Unsupported value: "Weird": supported values: "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"'));
  assert.ok(errs.includes('spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive'));
  assert.ok(errs.includes('spec.ports[0].name: Required value'));
  assert.ok(errs.includes('spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'));
  assert.deepEqual(reasons(() => prepareService({ metadata: { name: 'a' }, spec: {} }, undefined, a, inv)), ['spec.ports: Required value']);
  assert.match(fieldErrorString({ type: 'Required', field: 'spec.ports' }), /spec.ports: Required value/);
});
