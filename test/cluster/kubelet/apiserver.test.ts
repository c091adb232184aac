// The kubelet with the API server's side of the contract: `kubectl logs` through the pods/log proxy, graceful
// deletion (deletionTimestamp, the grace period, the kubelet's final DELETE), and the ServiceAccount admission's
// kube-api-access volume.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlOk } from '../../helpers/devserver.js';
import { countProcesses, createPod, getPod, startTestNode, waitFor, type TestNode } from './harness.js';

let t: TestNode;
const NS = 'default';

before(async () => {
  t = await startTestNode();
  await t.client.post(`/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': t.api.caCert! } });
});
after(async () => {
  await t?.cleanup();
});

const k = (args: string[], timeoutMs?: number) => kubectl(args, t.api.kubeconfig, timeoutMs ? { timeoutMs } : {});

test('kubectl logs, logs -f and logs --previous go through the API server to the kubelet', async () => {
  await createPod(t, {
    metadata: { name: 'talker', namespace: NS },
    spec: { containers: [{ name: 'c', image: 'nginx', command: ['sh', '-c', 'i=0; while [ $i -lt 6 ]; do i=$((i+1)); echo tick $i; sleep 0.3; done; exit 1'] }] },
  });
  await waitFor('first run done', async () => ((await getPod(t, NS, 'talker'))?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1, 60_000, 200);
  const prev = await kubectlOk(['logs', 'talker', '--previous'], t.api.kubeconfig);
  assert.equal(prev, 'tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n');
  const tail = await kubectlOk(['logs', 'talker', '--previous', '--tail', '2', '--timestamps'], t.api.kubeconfig);
  assert.match(tail, /^\S+Z tick 5\n\S+Z tick 6\n$/);
  // -f follows a running instance until it ends.
  await waitFor('running again', async () => (await getPod(t, NS, 'talker'))?.status?.containerStatuses?.[0]?.state.running !== undefined, 60_000, 100);
  const f = await k(['logs', '-f', 'talker'], 30_000);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stdout, /tick 6\n$/);
  const missing = await k(['logs', 'talker', '-c', 'nope']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /container nope is not valid for pod talker/);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/talker`);
});

test('graceful deletion: the pod terminates within its grace period, then the kubelet removes it', async () => {
  await createPod(t, {
    metadata: { name: 'stubborn', namespace: NS },
    spec: { terminationGracePeriodSeconds: 3, containers: [{ name: 'c', image: 'nginx', command: ['sh', '-c', 'trap "echo got TERM" TERM; while :; do sleep 0.2; done'] }] },
  });
  const p = await waitFor('running', async () => {
    const x = await getPod(t, NS, 'stubborn');
    return x?.status?.containerStatuses?.[0]?.state.running ? x : undefined;
  }, 60_000, 200);
  // The ServiceAccount admission gave it the kube-api-access volume, which the kubelet serves.
  const spec = await t.client.get<{ spec: { volumes?: { name: string }[] } }>(`/api/v1/namespaces/${NS}/pods/stubborn`);
  assert.ok(spec.spec.volumes?.some((v) => v.name.startsWith('kube-api-access-')), JSON.stringify(spec.spec.volumes));
  const started = Date.now();
  const del = k(['delete', 'pod', 'stubborn', '--wait=true'], 60_000);
  const terminating = await waitFor('deletionTimestamp set', async () => {
    const x = await getPod(t, NS, 'stubborn');
    return x?.metadata.deletionTimestamp ? x : undefined;
  }, 30_000, 50);
  assert.ok(terminating);
  const r = await del;
  const took = Date.now() - started;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(took >= 2500, `kept for its grace period (${took} ms)`);
  assert.ok(took < 30_000, `and not much longer (${took} ms)`);
  assert.equal(await getPod(t, NS, 'stubborn'), undefined);
  assert.equal(countProcesses(/trap "echo got TERM"/), 0);
  void p;
});
