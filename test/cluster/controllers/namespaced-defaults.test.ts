// ServiceAccount controller and root CA publisher: what every namespace gets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { kubectlOk } from '../../helpers/devserver.js';
import { CR } from '../../../src/cluster/common/resources.js';
import type { ConfigMap } from '../../../src/cluster/common/types.js';
import { objectPath } from '../../../src/k8s/resources.js';
import { startCluster, waitFor, type TestCluster } from './helpers.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';
let c: TestCluster;
before(async () => {
  c = await startCluster({ nodes: 1, kubelet: false, scheduler: false, manager: { rootCA: CA } });
});
after(async () => {
  await c?.stop();
});

const getCM = (ns: string): Promise<ConfigMap> => c.client.get<ConfigMap>(objectPath(CR.configMaps, ns, 'kube-root-ca.crt'));

test('every namespace, old and new, gets kube-root-ca.crt with the CA and the upstream description', async () => {
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    const cm = await waitFor(`cm in ${ns}`, () => getCM(ns));
    assert.equal(cm.data?.['ca.crt'], CA);
    assert.match(cm.metadata?.annotations?.['kubernetes.io/description'] ?? '', /^Contains a CA bundle that can be used to verify the kube-apiserver/);
  }
  await kubectlOk(['create', 'namespace', 'tkp-new'], c.kubeconfig);
  await waitFor('cm in tkp-new', () => getCM('tkp-new'));
});

test('an edited or deleted kube-root-ca.crt is put back', async () => {
  await kubectlOk(['-n', 'tkp-new', 'patch', 'configmap', 'kube-root-ca.crt', '-p', '{"data":{"ca.crt":"tampered","extra":"x"}}'], c.kubeconfig);
  await waitFor('restored', async () => {
    const cm = await getCM('tkp-new');
    return cm.data?.['ca.crt'] === CA && cm.data.extra === undefined;
  });
  await kubectlOk(['-n', 'tkp-new', 'delete', 'configmap', 'kube-root-ca.crt'], c.kubeconfig);
  await waitFor('recreated', async () => (await getCM('tkp-new')).data?.['ca.crt'] === CA);
});

test('a deleted default ServiceAccount is recreated', async () => {
  await waitFor('sa', () => c.client.get(objectPath(CR.serviceAccounts, 'tkp-new', 'default')));
  await kubectlOk(['-n', 'tkp-new', 'delete', 'serviceaccount', 'default'], c.kubeconfig);
  await waitFor('sa back', () => c.client.get(objectPath(CR.serviceAccounts, 'tkp-new', 'default')));
});
