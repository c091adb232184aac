// Garbage collector (background, orphan, foreground, several owners, custom resources) and namespace deletion.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { kubectlOk } from '../../helpers/devserver.js';
import { CR } from '../../../src/cluster/common/resources.js';
import type { ConfigMap, Namespace, Obj, OwnerReference } from '../../../src/cluster/common/types.js';
import { collectionPath, objectPath } from '../../../src/k8s/resources.js';
import { startCluster, waitFor, type TestCluster } from './helpers.js';

let c: TestCluster;
before(async () => {
  c = await startCluster({ nodes: 2, manager: { gcRediscoverMs: 500 } });
});
after(async () => {
  await c?.stop();
});

const exists = async (path: string): Promise<boolean> => {
  try {
    await c.client.get(path);
    return true;
  } catch {
    return false;
  }
};
const cmPath = (name: string, ns = 'default'): string => objectPath(CR.configMaps, ns, name);
const mkCM = (name: string, extra: { finalizers?: string[]; owners?: OwnerReference[] } = {}, ns = 'default'): Promise<ConfigMap> =>
  c.writer.create<ConfigMap>(CR.configMaps, ns, { metadata: { name, namespace: ns, ...(extra.finalizers ? { finalizers: extra.finalizers } : {}), ...(extra.owners ? { ownerReferences: extra.owners } : {}) }, data: {} });
const refTo = (o: Obj, block = false): OwnerReference => ({ apiVersion: 'v1', kind: 'ConfigMap', name: o.metadata!.name!, uid: o.metadata!.uid!, ...(block ? { blockOwnerDeletion: true } : {}) });

test('kubectl delete deployment: its ReplicaSets and pods go too (background cascading deletion)', async () => {
  await kubectlOk(['create', 'deployment', 'gone', '--image=nginx', '--replicas=2'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/gone', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  await kubectlOk(['expose', 'deployment', 'gone', '--port=80'], c.kubeconfig);
  await waitFor('slice', async () => ((await c.client.get<{ items: Obj[] }>(collectionPath(CR.endpointSlices, 'default'), { query: { labelSelector: 'kubernetes.io/service-name=gone' } })).items.length ? true : undefined));
  await kubectlOk(['delete', 'deployment', 'gone'], c.kubeconfig);
  await kubectlOk(['delete', 'service', 'gone'], c.kubeconfig);
  await waitFor('all gone', async () => {
    const out = await kubectlOk(['get', 'all,endpointslices', '-o', 'name'], c.kubeconfig);
    return out.trim() === 'service/kubernetes' ? true : (undefined as unknown as false);
  });
});

test('an object whose only owner never existed or is gone is deleted; with another owner left, only the reference goes', async () => {
  await mkCM('dangling', { owners: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'nobody', uid: '00000000-0000-0000-0000-000000000000' }] });
  await waitFor('dangling deleted', async () => !(await exists(cmPath('dangling'))));
  const a = await mkCM('owner-a');
  const b = await mkCM('owner-b');
  await mkCM('shared', { owners: [refTo(a), refTo(b)] });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(await exists(cmPath('shared')), 'an object with live owners is kept');
  await c.writer.delete(CR.configMaps, 'default', 'owner-a');
  const s = await waitFor('ref removed', async () => {
    const x = await c.client.get<ConfigMap>(cmPath('shared'));
    return x.metadata?.ownerReferences?.length === 1 ? x : undefined;
  });
  assert.equal(s.metadata?.ownerReferences?.[0]?.name, 'owner-b');
  await c.writer.delete(CR.configMaps, 'default', 'owner-b');
  await waitFor('shared deleted', async () => !(await exists(cmPath('shared'))));
});

test('orphan finalizer: the dependents lose their reference and stay, then the owner goes', async () => {
  const owner = await mkCM('orph-owner', { finalizers: ['orphan'] });
  await mkCM('orph-dep', { owners: [refTo(owner)] });
  await c.writer.delete(CR.configMaps, 'default', 'orph-owner');
  await waitFor('owner gone', async () => !(await exists(cmPath('orph-owner'))));
  const dep = await c.client.get<ConfigMap>(cmPath('orph-dep'));
  assert.equal(dep.metadata?.ownerReferences, undefined);
});

test('foregroundDeletion finalizer: blocking dependents are deleted first, then the owner', async () => {
  const owner = await mkCM('fg-owner', { finalizers: ['foregroundDeletion'] });
  // a dependent that holds on a little with a finalizer of its own: the owner must wait for it
  await mkCM('fg-dep1', { owners: [refTo(owner, true)], finalizers: ['test.metallb.io/hold'] });
  await mkCM('fg-dep2', { owners: [refTo(owner, true)] });
  await c.writer.delete(CR.configMaps, 'default', 'fg-owner');
  await waitFor('dep2 gone', async () => !(await exists(cmPath('fg-dep2'))));
  const d1 = await waitFor('dep1 terminating', async () => (await c.client.get<ConfigMap>(cmPath('fg-dep1'))).metadata?.deletionTimestamp);
  assert.ok(d1);
  await new Promise((r) => setTimeout(r, 300));
  const o = await c.client.get<ConfigMap>(cmPath('fg-owner'));
  assert.ok(o.metadata?.deletionTimestamp, 'owner waits while a blocking dependent exists');
  assert.deepEqual(o.metadata?.finalizers, ['foregroundDeletion']);
  await c.writer.mergePatch(CR.configMaps, 'default', 'fg-dep1', { metadata: { finalizers: null } });
  await waitFor('owner gone', async () => !(await exists(cmPath('fg-owner'))));
});

/** Whether the API server turns propagationPolicy into the garbage collector's finalizers (kube-apiserver does). */
async function serverSetsGCFinalizers(): Promise<boolean> {
  await mkCM('probe-gc', { finalizers: ['tkp.example.com/hold'] });
  await c.client.delete(cmPath('probe-gc'), { body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Orphan' } });
  const o = await c.client.get<ConfigMap>(cmPath('probe-gc')).catch(() => undefined);
  await c.writer.mergePatch(CR.configMaps, 'default', 'probe-gc', { metadata: { finalizers: null } }).catch(() => undefined);
  return !!o?.metadata?.finalizers?.includes('orphan');
}

test('kubectl delete --cascade=orphan keeps the ReplicaSet and pods, without owner; --cascade=foreground removes them first', async (t) => {
  if (!(await serverSetsGCFinalizers())) {
    t.skip('the API server does not set the orphan/foregroundDeletion finalizers from propagationPolicy yet');
    return;
  }
  await kubectlOk(['create', 'deployment', 'orph', '--image=nginx', '--replicas=2'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/orph', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  await kubectlOk(['delete', 'deployment', 'orph', '--cascade=orphan'], c.kubeconfig, { timeoutMs: 70_000 });
  const rs = await waitFor('rs orphaned', async () => {
    const l = (await c.client.get<{ items: Obj[] }>(collectionPath(CR.replicaSets, 'default'), { query: { labelSelector: 'app=orph' } })).items;
    return l.length === 1 && !l[0]!.metadata?.ownerReferences?.length ? l[0] : undefined;
  });
  assert.ok(rs);
  assert.equal((await c.client.get<{ items: Obj[] }>(collectionPath(CR.pods, 'default'), { query: { labelSelector: 'app=orph' } })).items.length, 2);
  await kubectlOk(['delete', 'rs', '-l', 'app=orph'], c.kubeconfig);

  await kubectlOk(['create', 'deployment', 'fg', '--image=nginx', '--replicas=2'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/fg', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  // kubectl waits until the Deployment is gone, which foreground deletion allows only after its dependents
  await kubectlOk(['delete', 'deployment', 'fg', '--cascade=foreground', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  const left = await kubectlOk(['get', 'rs,pods', '-l', 'app=fg', '-o', 'name'], c.kubeconfig);
  assert.equal(left.trim(), '');
});

test('custom resources are collected too (found by discovery after the CRD is installed)', async () => {
  await kubectlOk(['apply', '-f', '-'], c.kubeconfig, {
    input: JSON.stringify({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.tkp.example.com' },
      spec: {
        group: 'tkp.example.com',
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    }),
  });
  const owner = await mkCM('widget-owner');
  // the CR owns a ConfigMap, and is owned by a ConfigMap
  await waitFor('crd served', () => c.client.get('/apis/tkp.example.com/v1'));
  const w = await c.client.post<Obj>('/apis/tkp.example.com/v1/namespaces/default/widgets', { apiVersion: 'tkp.example.com/v1', kind: 'Widget', metadata: { name: 'w1', ownerReferences: [refTo(owner)] } });
  await mkCM('widget-dep', { owners: [{ apiVersion: 'tkp.example.com/v1', kind: 'Widget', name: 'w1', uid: w.metadata!.uid! }] });
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(await exists(cmPath('widget-dep')));
  await c.writer.delete(CR.configMaps, 'default', 'widget-owner');
  await waitFor('widget gone', async () => !(await exists('/apis/tkp.example.com/v1/namespaces/default/widgets/w1')));
  await waitFor('its dependent gone', async () => !(await exists(cmPath('widget-dep'))));
});

test('namespace deletion: content removed, conditions report what holds it, then the namespace goes', async (t) => {
  // the controller reports progress in the namespace status and finishes through /finalize; a server without that
  // subresource removes terminating namespaces on its own (and on any update of them)
  try {
    const d = await c.client.get<Namespace>(objectPath(CR.namespaces, undefined, 'default'));
    await c.client.put(`${objectPath(CR.namespaces, undefined, 'default')}/finalize`, d);
  } catch {
    t.skip('the API server does not serve namespaces/{name}/finalize yet');
    return;
  }
  await kubectlOk(['create', 'namespace', 'tkp-doomed'], c.kubeconfig);
  await kubectlOk(['-n', 'tkp-doomed', 'create', 'deployment', 'd', '--image=nginx'], c.kubeconfig);
  await mkCM('held', { finalizers: ['tkp.example.com/hold'] }, 'tkp-doomed');
  await c.client.post('/apis/tkp.example.com/v1/namespaces/tkp-doomed/widgets', { apiVersion: 'tkp.example.com/v1', kind: 'Widget', metadata: { name: 'w' } });
  await kubectlOk(['delete', 'namespace', 'tkp-doomed', '--wait=false'], c.kubeconfig);
  const ns = await waitFor('conditions', async () => {
    const n = await c.client.get<Namespace>(objectPath(CR.namespaces, undefined, 'tkp-doomed'));
    const rem = n.status?.conditions?.find((x) => x.type === 'NamespaceContentRemaining');
    return rem?.status === 'True' && rem.message === 'Some resources are remaining: configmaps. has 1 resource instances' ? n : undefined;
  });
  const byType = Object.fromEntries((ns.status?.conditions ?? []).map((x) => [x.type, [x.status, x.reason, x.message]]));
  assert.deepEqual(byType.NamespaceFinalizersRemaining, ['True', 'SomeFinalizersRemain', 'Some content in the namespace has finalizers remaining: tkp.example.com/hold in 1 resource instances']);
  assert.deepEqual(byType.NamespaceDeletionDiscoveryFailure, ['False', 'ResourcesDiscovered', 'All resources successfully discovered']);
  assert.deepEqual(byType.NamespaceDeletionContentFailure, ['False', 'ContentDeleted', 'All content successfully deleted, may be waiting on finalization']);
  assert.equal(ns.status?.phase, 'Terminating');
  assert.ok(!(await exists('/apis/tkp.example.com/v1/namespaces/tkp-doomed/widgets/w')), 'custom resources are deleted');
  assert.ok(!(await exists('/apis/apps/v1/namespaces/tkp-doomed/deployments/d')));
  await c.writer.mergePatch(CR.configMaps, 'tkp-doomed', 'held', { metadata: { finalizers: null } });
  await waitFor('namespace gone', async () => !(await exists(objectPath(CR.namespaces, undefined, 'tkp-doomed'))));
});
