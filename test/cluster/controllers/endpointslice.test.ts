// EndpointSlice and Endpoints controllers: slices follow pods' readiness, termination, ports and families.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { kubectlOk } from '../../helpers/devserver.js';
import { CR } from '../../../src/cluster/common/resources.js';
import type { EndpointSlice, Endpoints, Pod } from '../../../src/cluster/common/types.js';
import { collectionPath, objectPath } from '../../../src/k8s/resources.js';
import { startCluster, waitFor, type TestCluster } from './helpers.js';

let c: TestCluster;
before(async () => {
  c = await startCluster({ nodes: 2, serviceCIDRv6: 'fd00:92:96::/112' });
});
after(async () => {
  await c?.stop();
});

const slicesOf = async (svc: string, ns = 'default'): Promise<EndpointSlice[]> =>
  ((await c.client.get<{ items: EndpointSlice[] }>(collectionPath(CR.endpointSlices, ns), { query: { labelSelector: `kubernetes.io/service-name=${svc}` } })).items ?? []);

function pod(name: string, labels: Record<string, string>, extra: Partial<Pod['spec']> = {}, finalizers?: string[]): Pod {
  return {
    metadata: { name, labels, ...(finalizers ? { finalizers } : {}) },
    spec: { containers: [{ name: 'c', image: 'nginx', ports: [{ name: 'http', containerPort: 8080 }, { name: 'dns', containerPort: 5353, protocol: 'UDP' }] }], ...extra },
  };
}

const ready = (s: EndpointSlice[]): string[] => s.flatMap((x) => (x.endpoints ?? []).filter((e) => e.conditions?.ready).map((e) => e.targetRef?.name ?? '')).sort();

test('a Service with a selector gets a slice with ready endpoints, named ports resolved, labels and owner', async () => {
  await kubectlOk(['apply', '-f', '-'], c.kubeconfig, {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', labels: { team: 'x' } },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'dns', port: 53, targetPort: 'dns', protocol: 'UDP' }] },
    }),
  });
  for (const n of ['w1', 'w2']) await c.writer.create(CR.pods, 'default', pod(n, { app: 'web' }, { nodeName: n === 'w1' ? 'node1' : 'node2' }));
  const slices = await waitFor('2 ready endpoints', async () => {
    const s = await slicesOf('web');
    return ready(s).length === 2 ? s : undefined;
  });
  assert.equal(slices.length, 1);
  const s = slices[0]!;
  assert.equal(s.addressType, 'IPv4');
  assert.ok(s.metadata?.name?.startsWith('web-'));
  assert.deepEqual(s.metadata?.labels, { team: 'x', 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' });
  const ref = s.metadata?.ownerReferences?.[0];
  assert.deepEqual([ref?.kind, ref?.name, ref?.controller, ref?.blockOwnerDeletion], ['Service', 'web', true, true]);
  assert.deepEqual(
    [...(s.ports ?? [])].sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '')),
    [
      { name: 'dns', port: 5353, protocol: 'UDP' },
      { name: 'http', port: 8080, protocol: 'TCP' },
    ],
  );
  const ep = s.endpoints!.find((e) => e.targetRef?.name === 'w1')!;
  assert.deepEqual(ep.conditions, { ready: true, serving: true, terminating: false });
  assert.equal(ep.nodeName, 'node1');
  assert.equal(ep.zone, undefined);
  assert.equal(ep.targetRef?.kind, 'Pod');
  assert.match(ep.addresses[0]!, /^10\.92\.1\./);
  // the legacy Endpoints object, as MetalLB v0.9/v0.12 speakers read it
  const eps = await waitFor('endpoints', async () => {
    const e = await c.client.get<Endpoints>(objectPath(CR.endpoints, 'default', 'web'));
    return (e.subsets?.[0]?.addresses ?? []).length === 2 ? e : undefined;
  });
  assert.equal(eps.subsets?.length, 1);
  assert.deepEqual(eps.subsets?.[0]?.addresses?.map((a) => a.nodeName).sort(), ['node1', 'node2']);
  assert.equal(eps.metadata?.labels?.team, 'x');
  const wide = await kubectlOk(['get', 'endpoints', 'web', '--no-headers'], c.kubeconfig);
  assert.match(wide, /:8080/);
});

test('readiness: a not-ready pod is ready=false serving=false in the slice and in notReadyAddresses', async () => {
  c.kubelet!.notReady.add('w2');
  await waitFor('w2 not ready', async () => ready(await slicesOf('web')).join() === 'w1');
  const ep = (await slicesOf('web'))[0]!.endpoints!.find((e) => e.targetRef?.name === 'w2')!;
  assert.deepEqual(ep.conditions, { ready: false, serving: false, terminating: false });
  const e = await waitFor('endpoints not ready', async () => {
    const x = await c.client.get<Endpoints>(objectPath(CR.endpoints, 'default', 'web'));
    return x.subsets?.[0]?.notReadyAddresses?.length === 1 ? x : undefined;
  });
  assert.equal(e.subsets?.[0]?.addresses?.length, 1);
  c.kubelet!.notReady.delete('w2');
  await waitFor('w2 ready again', async () => ready(await slicesOf('web')).length === 2);
});

test('a terminating pod: ready=false, serving follows readiness, terminating=true; gone from Endpoints', async () => {
  await c.writer.create(CR.pods, 'default', pod('w3', { app: 'web' }, { nodeName: 'node1' }, ['test.metallb.io/hold']));
  await waitFor('w3 ready', async () => ready(await slicesOf('web')).includes('w3'));
  await c.writer.delete(CR.pods, 'default', 'w3');
  const ep = await waitFor('w3 terminating', async () => {
    const e = (await slicesOf('web'))[0]!.endpoints!.find((x) => x.targetRef?.name === 'w3');
    return e?.conditions?.terminating ? e : undefined;
  });
  assert.deepEqual(ep.conditions, { ready: false, serving: true, terminating: true });
  await waitFor('w3 not in Endpoints', async () => {
    const e = await c.client.get<Endpoints>(objectPath(CR.endpoints, 'default', 'web'));
    const all = (e.subsets ?? []).flatMap((s) => [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])]);
    return !all.some((a) => a.targetRef?.name === 'w3');
  });
  await c.writer.mergePatch(CR.pods, 'default', 'w3', { metadata: { finalizers: null } });
  await waitFor('w3 gone', async () => !(await slicesOf('web'))[0]!.endpoints!.some((x) => x.targetRef?.name === 'w3'));
});

test('publishNotReadyAddresses: not-ready pods count as ready', async () => {
  await c.writer.create(CR.services, 'default', { metadata: { name: 'pnr' }, spec: { selector: { app: 'pnr' }, publishNotReadyAddresses: true, ports: [{ port: 80, targetPort: 8080 }] } });
  c.kubelet!.notReady.add('p1');
  await c.writer.create(CR.pods, 'default', pod('p1', { app: 'pnr' }, { nodeName: 'node1' }));
  const ep = await waitFor('p1 in slice', async () => (await slicesOf('pnr'))[0]?.endpoints?.find((e) => e.targetRef?.name === 'p1'));
  await waitFor('p1 has ip', async () => (await c.client.get<Pod>(objectPath(CR.pods, 'default', 'p1'))).status?.podIP);
  assert.deepEqual(ep.conditions, { ready: true, serving: true, terminating: false });
  const e = await waitFor('p1 ready in Endpoints', async () => {
    const x = await c.client.get<Endpoints>(objectPath(CR.endpoints, 'default', 'pnr'));
    return x.subsets?.[0]?.addresses?.length === 1 ? x : undefined;
  });
  assert.equal(e.subsets?.[0]?.ports?.[0]?.port, 8080);
});

test('dual-stack Service: one slice per family; Endpoints carry the primary family', async () => {
  await c.writer.create(CR.services, 'default', {
    metadata: { name: 'ds' },
    spec: { selector: { app: 'ds' }, ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'], ports: [{ port: 80 }] },
  } as never);
  await c.writer.create(CR.pods, 'default', pod('d1', { app: 'ds' }, { nodeName: 'node2' }));
  const slices = await waitFor('two families', async () => {
    const s = await slicesOf('ds');
    return s.length === 2 && s.every((x) => (x.endpoints ?? []).length === 1) ? s : undefined;
  });
  assert.deepEqual(slices.map((s) => s.addressType).sort(), ['IPv4', 'IPv6']);
  const v6 = slices.find((s) => s.addressType === 'IPv6')!;
  assert.match(v6.endpoints![0]!.addresses[0]!, /^fd00:92:0:2::/);
  const e = await waitFor('endpoints', async () => (await c.client.get<Endpoints>(objectPath(CR.endpoints, 'default', 'ds'))).subsets?.[0]?.addresses?.[0]);
  assert.match(e.ip, /^fd00:92/);
});

test('a Service with no matching pods has an empty placeholder slice; a Service without selector has none', async () => {
  await c.writer.create(CR.services, 'default', { metadata: { name: 'empty' }, spec: { selector: { app: 'nothing' }, ports: [{ port: 80 }] } });
  await c.writer.create(CR.services, 'default', { metadata: { name: 'manual' }, spec: { ports: [{ port: 80 }] } });
  const s = await waitFor('placeholder', async () => (await slicesOf('empty'))[0]);
  assert.deepEqual([s.endpoints ?? [], s.ports ?? []], [[], []]);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await slicesOf('manual')).length, 0);
});

test('selector change moves endpoints; Service deletion removes its Endpoints', async () => {
  await kubectlOk(['patch', 'service', 'web', '-p', '{"spec":{"selector":{"app":"pnr"}}}'], c.kubeconfig);
  await waitFor('now p1', async () => (await slicesOf('web'))[0]?.endpoints?.map((e) => e.targetRef?.name).join() === 'p1');
  await kubectlOk(['delete', 'service', 'pnr'], c.kubeconfig);
  await waitFor('endpoints pnr gone', async () => {
    try {
      await c.client.get(objectPath(CR.endpoints, 'default', 'pnr'));
      return false;
    } catch {
      return true;
    }
  });
});
