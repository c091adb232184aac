import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  endpointSliceForSpeaker, endpointsForSpeaker, nodeForSpeaker, serviceForSpeaker, statusObjectForSpeaker, stripManagedFields,
} from '../../src/speaker/cache-transforms.js';
import { statusServiceKey } from '../../src/speaker/status-objects.js';
import { allowsSharedIP, ingressTexts, isLocalPolicy, serviceLabels } from '../../src/speaker/service-facts.js';
import { fromEndpointSlices, fromEndpoints } from '../../src/speaker/endpoints.js';
import { isExcludedFromBalancers, isNetworkUnavailable, nodeLabels } from '../../src/speaker/nodes.js';
import type { EndpointSlice, Endpoints, KubeObject, Node, Service } from '../../src/k8s/types.js';

const managedFields = [{ manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'v1', time: '2026-12-01T10:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:annotations': {} }, 'f:spec': { 'f:ports': {} } } }];

/** A Service as kube-apiserver sends it after `kubectl apply` and the controller's status write. */
const fullService = (): Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: {
    name: 'web', namespace: 'apps', uid: 'u-1', resourceVersion: '42', generation: 3, creationTimestamp: '2026-12-01T10:00:00Z',
    labels: { app: 'web', tier: 'front' },
    annotations: {
      'kubectl.kubernetes.io/last-applied-configuration': '{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}}',
      'metallb.io/allow-shared-ip': 'k1',
      'metallb.universe.tf/address-pool': 'p',
      'example.com/owner': 'team-a',
    },
    finalizers: ['service.kubernetes.io/load-balancer-cleanup'],
    managedFields,
  } as Service['metadata'],
  spec: {
    type: 'LoadBalancer', selector: { app: 'web' }, ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 31000 }],
    clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack',
    externalTrafficPolicy: 'Local', loadBalancerClass: 'metallb', allocateLoadBalancerNodePorts: true,
  },
  status: { loadBalancer: { ingress: [{ ip: '192.0.2.10', ipMode: 'VIP', ports: [{ port: 80, protocol: 'TCP' }] }, { hostname: 'lb.example.com' }] as never } },
});

test('serviceForSpeaker keeps exactly what the speaker reads of a Service', () => {
  const full = fullService();
  const kept = serviceForSpeaker(structuredClone(full));
  assert.deepEqual(kept, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'web', namespace: 'apps', uid: 'u-1', resourceVersion: '42',
      labels: { app: 'web', tier: 'front' },
      annotations: { 'metallb.io/allow-shared-ip': 'k1', 'metallb.universe.tf/address-pool': 'p' },
    },
    spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', loadBalancerClass: 'metallb' },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } },
  });
  assert.ok(JSON.stringify(kept).length * 3 < JSON.stringify(full).length, 'much smaller');
});

test('serviceForSpeaker: every reader answers the same for the full and the kept Service', () => {
  const variants: Service[] = [];
  const base = fullService();
  variants.push(base);
  variants.push({ ...structuredClone(base), metadata: { ...structuredClone(base.metadata), annotations: { 'metallb.universe.tf/allow-shared-ip': 'old' }, deletionTimestamp: '2026-12-01T11:00:00Z' } });
  variants.push({ ...structuredClone(base), metadata: { name: 'bare' }, spec: { type: 'ClusterIP' }, status: {} });
  variants.push({ ...structuredClone(base), spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Cluster' }, status: { loadBalancer: {} } });
  variants.push({ ...structuredClone(base), status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { ip: '2001:db8::1' }] } } });
  variants.push({ metadata: { name: 'nothing' } });
  for (const full of variants) {
    const kept = serviceForSpeaker(structuredClone(full));
    const what = full.metadata?.name;
    assert.deepEqual(ingressTexts(kept), ingressTexts(full), `${what}: ingress`);
    assert.equal(allowsSharedIP(kept), allowsSharedIP(full), `${what}: allow-shared-ip`);
    assert.equal(isLocalPolicy(kept), isLocalPolicy(full), `${what}: traffic policy`);
    assert.deepEqual(serviceLabels(kept), serviceLabels(full), `${what}: labels`);
    assert.equal(kept.spec?.type, full.spec?.type, `${what}: type`);
    assert.equal(kept.spec?.loadBalancerClass, full.spec?.loadBalancerClass, `${what}: class`);
    assert.equal(kept.metadata?.deletionTimestamp !== undefined, full.metadata?.deletionTimestamp !== undefined, `${what}: deleting`);
    // What the event recorder puts in involvedObject.
    for (const f of ['name', 'namespace', 'uid', 'resourceVersion'] as const) assert.equal(kept.metadata?.[f], full.metadata?.[f], `${what}: ${f}`);
    assert.equal(kept.kind, full.kind);
    assert.equal(kept.apiVersion, full.apiVersion);
  }
});

const fullSlice = (): EndpointSlice => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: {
    name: 'web-abcde', namespace: 'apps', uid: 'u-2', resourceVersion: '43', generateName: 'web-',
    labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'u-1' }],
    managedFields,
  } as EndpointSlice['metadata'],
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: [
    { addresses: ['10.244.1.5'], nodeName: 'node1', zone: 'z1', conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: 'web-1', namespace: 'apps', uid: 'p1' } },
    { addresses: ['10.244.2.5'], nodeName: 'node2', conditions: { ready: false, serving: true, terminating: true }, hints: { forZones: [{ name: 'z1' }] } },
    { addresses: [], conditions: {} },
    { addresses: ['10.244.3.5'], nodeName: 'node3', conditions: { ready: false, serving: false } },
  ] as EndpointSlice['endpoints'],
} as EndpointSlice);

test('endpointSliceForSpeaker keeps the service label, addresses, nodeName and ready/serving', () => {
  const full = fullSlice();
  const kept = endpointSliceForSpeaker(structuredClone(full));
  assert.deepEqual(kept, {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-abcde', namespace: 'apps', resourceVersion: '43', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.244.1.5'], nodeName: 'node1', conditions: { ready: true, serving: true } },
      { addresses: ['10.244.2.5'], nodeName: 'node2', conditions: { ready: false, serving: true } },
      { addresses: [], conditions: {} },
      { addresses: ['10.244.3.5'], nodeName: 'node3', conditions: { ready: false, serving: false } },
    ],
  });
  assert.deepEqual(fromEndpointSlices([kept]), fromEndpointSlices([full]));
  for (const odd of [{ metadata: { name: 'x' } }, { metadata: { name: 'y' }, endpoints: null }] as EndpointSlice[]) {
    assert.deepEqual(fromEndpointSlices([endpointSliceForSpeaker(structuredClone(odd))]), fromEndpointSlices([odd]));
  }
});

test('endpointsForSpeaker keeps ip and nodeName of ready and not-ready addresses', () => {
  const full: Endpoints = {
    apiVersion: 'v1', kind: 'Endpoints',
    metadata: { name: 'web', namespace: 'apps', resourceVersion: '44', managedFields } as Endpoints['metadata'],
    subsets: [
      {
        addresses: [{ ip: '10.244.1.5', nodeName: 'node1', targetRef: { kind: 'Pod', name: 'web-1' } } as never],
        notReadyAddresses: [{ ip: '10.244.2.5', nodeName: 'node2', hostname: 'h' } as never],
        ports: [{ port: 8080 }],
      } as never,
    ],
  };
  const kept = endpointsForSpeaker(structuredClone(full));
  assert.deepEqual(kept, {
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', namespace: 'apps', resourceVersion: '44' },
    subsets: [{ addresses: [{ ip: '10.244.1.5', nodeName: 'node1' }], notReadyAddresses: [{ ip: '10.244.2.5', nodeName: 'node2' }] }],
  });
  assert.deepEqual(fromEndpoints(kept), fromEndpoints(full));
});

test('nodeForSpeaker drops managedFields and the status beyond conditions and addresses', () => {
  const full = {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: 'node1', resourceVersion: '9', labels: { 'kubernetes.io/hostname': 'node1', 'node.kubernetes.io/exclude-from-external-load-balancers': '' }, managedFields },
    spec: { podCIDR: '10.244.1.0/24' },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }, { type: 'NetworkUnavailable', status: 'True' }],
      addresses: [{ type: 'InternalIP', address: '10.89.0.11' }],
      images: [{ names: ['nginx:1.27'], sizeBytes: 1 }],
      nodeInfo: { kubeletVersion: 'v1.32.0' },
    },
  } as Node;
  const kept = nodeForSpeaker(structuredClone(full));
  assert.deepEqual(kept, {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: 'node1', resourceVersion: '9', labels: { 'kubernetes.io/hostname': 'node1', 'node.kubernetes.io/exclude-from-external-load-balancers': '' } },
    spec: { podCIDR: '10.244.1.0/24' },
    status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'NetworkUnavailable', status: 'True' }], addresses: [{ type: 'InternalIP', address: '10.89.0.11' }] },
  });
  assert.equal(isNetworkUnavailable(kept), isNetworkUnavailable(full));
  assert.equal(isExcludedFromBalancers(kept), isExcludedFromBalancers(full));
  assert.deepEqual(nodeLabels(kept), nodeLabels(full));
});

test('stripManagedFields drops metadata.managedFields only, and returns an object without it unchanged', () => {
  const o = { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p', creationTimestamp: 't', annotations: { a: 'b' }, managedFields }, spec: { addresses: ['192.0.2.0/24'] } } as KubeObject;
  assert.deepEqual(stripManagedFields(o), { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p', creationTimestamp: 't', annotations: { a: 'b' } }, spec: { addresses: ['192.0.2.0/24'] } });
  const plain: KubeObject = { metadata: { name: 'q' } };
  assert.equal(stripManagedFields(plain), plain);
});

test('statusObjectForSpeaker keeps what the status writers read (name, labels, creationTimestamp, ownerReferences, status)', () => {
  const full = {
    apiVersion: 'metallb.io/v1beta1', kind: 'ServiceBGPStatus',
    metadata: {
      name: 'bgp-x7k2p', generateName: 'bgp-', namespace: 'metallb-system', uid: 'u-9', resourceVersion: '77', creationTimestamp: '2026-12-01T10:00:00Z',
      labels: { 'metallb.io/node': 'node1', 'metallb.io/service-name': 'web', 'metallb.io/service-namespace': 'apps' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'speaker-abc', uid: 'p-1' }],
      managedFields,
    },
    spec: {},
    status: { node: 'node1', serviceName: 'web', serviceNamespace: 'apps', peers: ['r1'] },
  } as KubeObject;
  const kept = statusObjectForSpeaker(structuredClone(full));
  assert.deepEqual(kept, {
    apiVersion: 'metallb.io/v1beta1', kind: 'ServiceBGPStatus',
    metadata: {
      name: 'bgp-x7k2p', namespace: 'metallb-system', resourceVersion: '77', creationTimestamp: '2026-12-01T10:00:00Z',
      labels: { 'metallb.io/node': 'node1', 'metallb.io/service-name': 'web', 'metallb.io/service-namespace': 'apps' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'speaker-abc', uid: 'p-1' }],
    },
    status: { node: 'node1', serviceName: 'web', serviceNamespace: 'apps', peers: ['r1'] },
  });
  assert.equal(statusServiceKey(kept), statusServiceKey(full));
  assert.deepEqual(statusObjectForSpeaker({ metadata: { name: 'l2-a' } }), { metadata: { name: 'l2-a' } });
});
