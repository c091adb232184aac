// The scheduler against a dev API server: placement rules, spreading, and kube-scheduler's wording when nothing fits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { kubectlOk } from '../../helpers/devserver.js';
import { CR } from '../../../src/cluster/common/resources.js';
import type { Pod } from '../../../src/cluster/common/types.js';
import { collectionPath, objectPath } from '../../../src/k8s/resources.js';
import { nodeObject, startCluster, waitFor, type TestCluster } from './helpers.js';

let c: TestCluster;
before(async () => {
  // node1, node2 ready; node3 tainted control-plane; node4 not ready; node5 cordoned
  c = await startCluster({ nodes: 2, kubelet: false, manager: { controllers: ['replicaset'] } });
  await c.writer.create(CR.nodes, undefined, nodeObject('node3', 3, { metadata: { name: 'node3', labels: { 'kubernetes.io/hostname': 'node3', 'node-role.kubernetes.io/control-plane': '' } }, spec: { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } }));
  const nr = nodeObject('node4', 4);
  nr.status!.conditions![0]!.status = 'False';
  await c.writer.create(CR.nodes, undefined, nr);
  await c.writer.create(CR.nodes, undefined, nodeObject('node5', 5, { spec: { unschedulable: true } }));
});
after(async () => {
  await c?.stop();
});

const getPod = (n: string): Promise<Pod> => c.client.get<Pod>(objectPath(CR.pods, 'default', n));
const mk = (name: string, spec: Partial<Pod['spec']> = {}, labels?: Record<string, string>): Promise<Pod> =>
  c.writer.create<Pod>(CR.pods, 'default', { metadata: { name, ...(labels ? { labels } : {}) }, spec: { containers: [{ name: 'c', image: 'nginx' }], ...spec } });
const nodeOf = (n: string): Promise<string> => waitFor(`${n} bound`, async () => (await getPod(n)).spec?.nodeName);

test('a pod that fits nowhere stays Pending with FailedScheduling worded as kube-scheduler, PodScheduled=False', async () => {
  await mk('nofit', { nodeSelector: { disk: 'ssd' } });
  const p = await waitFor('condition', async () => {
    const x = await getPod('nofit');
    return x.status?.conditions?.find((cd) => cd.type === 'PodScheduled') ? x : undefined;
  });
  const cond = p.status!.conditions!.find((cd) => cd.type === 'PodScheduled')!;
  const msg =
    "0/5 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling.";
  assert.deepEqual([cond.status, cond.reason, cond.message], ['False', 'Unschedulable', msg]);
  assert.equal(p.spec?.nodeName, undefined);
  const ev = await waitFor('event', async () => {
    const out = await kubectlOk(['get', 'events', '--field-selector', 'involvedObject.name=nofit,reason=FailedScheduling', '-o', 'jsonpath={.items[0].message}'], c.kubeconfig);
    return out || undefined;
  });
  assert.equal(ev, msg);
  // a node that fits appears: the pending pod is placed
  await kubectlOk(['label', 'node', 'node2', 'disk=ssd'], c.kubeconfig);
  assert.equal(await nodeOf('nofit'), 'node2');
  const sched = await waitFor('scheduled event', async () => {
    const out = await kubectlOk(['get', 'events', '--field-selector', 'involvedObject.name=nofit,reason=Scheduled', '-o', 'jsonpath={.items[0].message}'], c.kubeconfig);
    return out || undefined;
  });
  assert.equal(sched, 'Successfully assigned default/nofit to node2');
  const bound = await getPod('nofit');
  assert.equal(bound.status?.conditions?.find((cd) => cd.type === 'PodScheduled')?.status, 'True');
});

test('tolerations, required node affinity and nodeName are honoured', async () => {
  await mk('cp', {
    tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] }] } } },
  });
  assert.equal(await nodeOf('cp'), 'node3');
  await mk('byfield', { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node1'] }] }] } } } });
  assert.equal(await nodeOf('byfield'), 'node1');
  // already bound by the user (even to a node that is not ready): left alone
  await mk('pinned', { nodeName: 'node4' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await getPod('pinned')).spec?.nodeName, 'node4');
  // another scheduler's pod is not ours
  await mk('other', { schedulerName: 'my-scheduler' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await getPod('other')).spec?.nodeName, undefined);
});

test('pods of one ReplicaSet spread over the schedulable nodes', async () => {
  await c.writer.create(CR.replicaSets, 'default', {
    metadata: { name: 'spread' },
    spec: { replicas: 6, selector: { matchLabels: { app: 'spread' } }, template: { metadata: { labels: { app: 'spread' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
  });
  const pods = await waitFor('6 bound', async () => {
    const l = (await c.client.get<{ items: Pod[] }>(collectionPath(CR.pods, 'default'), { query: { labelSelector: 'app=spread' } })).items;
    return l.length === 6 && l.every((p) => p.spec?.nodeName) ? l : undefined;
  });
  const per = new Map<string, number>();
  for (const p of pods) per.set(p.spec!.nodeName!, (per.get(p.spec!.nodeName!) ?? 0) + 1);
  assert.deepEqual(Object.fromEntries([...per].sort()), { node1: 3, node2: 3 });
});

test('host ports: a second pod wanting the same host port goes to another node', async () => {
  const port = { containers: [{ name: 'c', image: 'nginx', ports: [{ containerPort: 7472, hostPort: 7472 }] }] };
  await mk('hp1', { ...port, nodeSelector: { 'kubernetes.io/os': 'linux' } });
  const first = await nodeOf('hp1');
  await mk('hp2', port);
  const second = await nodeOf('hp2');
  assert.notEqual(first, second);
  await mk('hp3', port);
  const p = await waitFor('hp3 unschedulable', async () => (await getPod('hp3')).status?.conditions?.find((x) => x.type === 'PodScheduled' && x.status === 'False'));
  assert.match(p.message ?? '', /2 node\(s\) didn't have free ports for the requested pod ports/);
});
