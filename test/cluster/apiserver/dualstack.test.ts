// Service allocation through the API with a dual-stack server; nodes keep their status on create.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { startDevApiServer, type DevApiServer } from '../../../src/cluster/apiserver/server.js';

let srv: DevApiServer;
let core: k8s.CoreV1Api;

before(async () => {
  srv = await startDevApiServer({ logLevel: 'none', serviceCIDR: '10.100.0.0/16', serviceCIDRv6: 'fd00:10:96::/112', nodePortRange: '31000-31010' });
  const kc = new k8s.KubeConfig();
  kc.loadFromString(srv.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
});
after(() => srv.close());

test('dual-stack: PreferDualStack / RequireDualStack / IPv6 primary; upgrade and downgrade', async () => {
  const pref = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'pref' }, spec: { ipFamilyPolicy: 'PreferDualStack', ports: [{ port: 80 }] } } });
  assert.deepEqual(pref.spec!.ipFamilies, ['IPv4', 'IPv6']);
  assert.match(pref.spec!.clusterIPs![0]!, /^10\.100\./);
  assert.match(pref.spec!.clusterIPs![1]!, /^fd00:10:96::/);
  const v6 = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'v6' }, spec: { ipFamilies: ['IPv6'], ports: [{ port: 80 }] } } });
  assert.deepEqual(v6.spec!.ipFamilies, ['IPv6']);
  assert.equal(v6.spec!.ipFamilyPolicy, 'SingleStack');
  const single = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'single' }, spec: { ports: [{ port: 80 }] } } });
  assert.equal(single.spec!.clusterIPs!.length, 1);
  const up = await core.patchNamespacedService(
    { name: 'single', namespace: 'default', body: { spec: { ipFamilyPolicy: 'RequireDualStack' } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  assert.equal(up.spec!.clusterIPs!.length, 2);
  assert.equal(up.spec!.clusterIPs![0], single.spec!.clusterIPs![0]);
  const down = await core.patchNamespacedService(
    { name: 'single', namespace: 'default', body: { spec: { ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'], clusterIPs: [single.spec!.clusterIP] } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  assert.deepEqual(down.spec!.clusterIPs, [single.spec!.clusterIP]);
  // the released IPv6 address can be requested again
  const again = await core.createNamespacedService({
    namespace: 'default',
    body: { metadata: { name: 'again' }, spec: { ipFamilyPolicy: 'RequireDualStack', clusterIPs: ['10.100.0.200', up.spec!.clusterIPs![1]!], ports: [{ port: 80 }] } },
  });
  assert.deepEqual(again.spec!.clusterIPs, ['10.100.0.200', up.spec!.clusterIPs![1]]);
});

test('node port range from the options; range full is a 500 Status', async () => {
  const made: string[] = [];
  let failure: k8s.ApiException<unknown> | undefined;
  for (let i = 0; i < 12; i++) {
    try {
      await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: `np${i}` }, spec: { type: 'NodePort', ports: [{ port: 80 }] } } });
      made.push(`np${i}`);
    } catch (e) {
      failure = e as k8s.ApiException<unknown>;
      break;
    }
  }
  assert.equal(made.length, 11);
  assert.equal(failure?.code, 500);
  const body = (typeof failure!.body === 'string' ? JSON.parse(failure!.body) : failure!.body) as { message: string };
  assert.match(body.message, /range is full/);
  await core.deleteNamespacedService({ name: 'np0', namespace: 'default' });
  const reused = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'reuse' }, spec: { type: 'NodePort', ports: [{ port: 80 }] } } });
  assert.ok(reused.spec!.ports![0]!.nodePort! >= 31000 && reused.spec!.ports![0]!.nodePort! <= 31010);
});

test('nodes keep status on create; updates of the main resource keep the stored status', async () => {
  const n = await core.createNode({
    body: { metadata: { name: 'n1' }, status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }], conditions: [{ type: 'Ready', status: 'True' }] } },
  });
  assert.equal(n.status!.addresses![0]!.address, '172.18.0.2');
  const upd = await core.replaceNode({ name: 'n1', body: { ...n, metadata: { ...n.metadata, labels: { a: 'b' } }, status: {} } });
  assert.equal(upd.status!.addresses![0]!.address, '172.18.0.2');
  const st = await core.patchNodeStatus(
    { name: 'n1', body: { status: { addresses: [{ type: 'InternalIP', address: '172.18.0.3' }] } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
  );
  assert.deepEqual(st.status!.addresses!.map((a) => a.address), ['172.18.0.3']);
});
