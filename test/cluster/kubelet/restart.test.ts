// A kubelet that is killed and started again: pods that still exist keep their namespace and addresses and get their
// containers back; what belongs to a pod deleted meanwhile is removed; no address is given to two pods.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { countProcesses, createPod, getPod, startTestNode, waitFor, type TestNode } from './harness.js';

let t: TestNode;
const NS = 'default';

before(async () => {
  t = await startTestNode();
  // what the controller-manager's root-CA controller publishes (the pods' service-account volumes read it)
  await t.client.post(`/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': t.api.caCert! } });
});
after(async () => {
  await t?.cleanup();
});

test('after kill -9 and a restart, running pods keep their addresses, deleted ones are cleaned up', async () => {
  await createPod(t, { metadata: { name: 'keeper', namespace: NS }, spec: { containers: [{ name: 'web', image: 'sysnet4admin/echo-ip' }] } });
  await createPod(t, { metadata: { name: 'goner', namespace: NS }, spec: { containers: [{ name: 'web', image: 'nginx' }] } });
  const ready = async (name: string) =>
    waitFor(`${name} running`, async () => {
      const p = await getPod(t, NS, name);
      return p?.status?.containerStatuses?.[0]?.state.running ? p : undefined;
    }, 60_000, 200);
  const keeper = await ready('keeper');
  const goner = await ready('goner');
  const keeperIPs = keeper.status!.podIPs!.map((x) => x.ip);
  const gonerUid = goner.metadata.uid!;
  await waitFor('echo-ip answers', () => t.inNode(`curl -s -m 2 http://${keeperIPs[0]}/`).out === `request_method : GET | ip_dest: ${t.nodeIPs[0]}\n`, 30_000, 200);

  await t.kubelet.stop('SIGKILL');
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/goner`);
  await t.startKubelet();

  const after = await waitFor('keeper running again', async () => {
    const p = await getPod(t, NS, 'keeper');
    const cs = p?.status?.containerStatuses?.[0];
    return cs?.state.running && cs.restartCount === 1 ? p : undefined;
  }, 60_000, 200);
  assert.deepEqual(after.status!.podIPs!.map((x) => x.ip), keeperIPs, 'the adopted pod keeps its addresses');
  await waitFor('keeper answers again', () => t.inNode(`curl -s -m 2 http://[${keeperIPs[1]}]/`).out.startsWith('request_method : GET | ip_dest: '), 30_000, 200);
  // The deleted pod's sandbox, address and directory are gone.
  await waitFor('goner cleaned up', () => !existsSync(join(t.rootDir, 'pods', gonerUid)), 30_000, 200);
  assert.equal(readdirSync('/run/netns').filter((n) => n === `${t.podPrefix}${gonerUid.replace(/-/g, '').slice(0, 8)}`).length, 0);
  const ipam = JSON.parse(readFileSync(join(t.rootDir, 'ipam.json'), 'utf8')) as { allocations: Record<string, string[]> };
  assert.equal(ipam.allocations[gonerUid], undefined);
  assert.deepEqual(ipam.allocations[after.metadata.uid!], keeperIPs);
  // A new pod never gets the adopted pod's address.
  await createPod(t, { metadata: { name: 'newcomer', namespace: NS }, spec: { containers: [{ name: 'web', image: 'nginx' }] } });
  const newcomer = await ready('newcomer');
  for (const ip of newcomer.status!.podIPs!.map((x) => x.ip)) assert.ok(!keeperIPs.includes(ip), `${ip} is not the adopted pod's`);
  // Exactly one echo-ip process for keeper: the old one was stopped.
  assert.equal(countProcesses(new RegExp(`${t.rootDir}/images/echo-ip-`)), 1);
});
