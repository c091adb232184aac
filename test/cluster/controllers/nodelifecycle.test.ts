// Node lifecycle: a node whose kubelet stops heartbeating turns Ready=Unknown with the unreachable taints.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CR } from '../../../src/cluster/common/resources.js';
import { nowRFC3339 } from '../../../src/cluster/common/pods.js';
import type { Lease, Node, Pod } from '../../../src/cluster/common/types.js';
import { microTime } from '../../../src/k8s/leader-election.js';
import { objectPath } from '../../../src/k8s/resources.js';
import { startCluster, waitFor, type TestCluster } from './helpers.js';

let c: TestCluster;
let beating = true;
let beat: NodeJS.Timeout;
before(async () => {
  c = await startCluster({ nodes: 2, kubelet: false, scheduler: false, manager: { nodeMonitorGracePeriodMs: 1500 } });
  for (const n of ['node1', 'node2']) {
    await c.writer.create<Lease>(CR.leases, 'kube-node-lease', { metadata: { name: n, namespace: 'kube-node-lease' }, spec: { holderIdentity: n, leaseDurationSeconds: 40, renewTime: microTime(Date.now()) } });
  }
  // node1's kubelet keeps renewing its lease; node2's is silent
  beat = setInterval(() => {
    if (!beating) return;
    void c.writer.mergePatch(CR.leases, 'kube-node-lease', 'node1', { spec: { renewTime: microTime(Date.now()) } }).catch(() => undefined);
  }, 300);
});
after(async () => {
  clearInterval(beat);
  await c?.stop();
});

const getNode = (n: string): Promise<Node> => c.client.get<Node>(objectPath(CR.nodes, undefined, n));

test('a silent node becomes Unknown with the unreachable taints and its pods not ready; a live one stays Ready', async () => {
  await c.writer.create<Pod>(CR.pods, 'default', { metadata: { name: 'on2' }, spec: { nodeName: 'node2', containers: [{ name: 'c', image: 'nginx' }] } });
  const p = await c.client.get<Pod>(objectPath(CR.pods, 'default', 'on2'));
  await c.writer.updateStatus(CR.pods, { ...p, status: { phase: 'Running', podIP: '10.92.2.5', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: nowRFC3339() }] } });
  const n2 = await waitFor('node2 unknown', async () => {
    const n = await getNode('node2');
    return n.status?.conditions?.find((x) => x.type === 'Ready')?.status === 'Unknown' ? n : undefined;
  }, 20_000);
  const ready = n2.status!.conditions!.find((x) => x.type === 'Ready')!;
  assert.deepEqual([ready.reason, ready.message], ['NodeStatusUnknown', 'Kubelet stopped posting node status.']);
  const taints = await waitFor('taints', async () => {
    const t = (await getNode('node2')).spec?.taints ?? [];
    return t.length === 2 ? t : undefined;
  });
  assert.deepEqual(taints.map((t) => `${t.key}:${t.effect}`).sort(), ['node.kubernetes.io/unreachable:NoExecute', 'node.kubernetes.io/unreachable:NoSchedule']);
  assert.ok(taints.find((t) => t.effect === 'NoExecute')?.timeAdded);
  await waitFor('pod not ready', async () => (await c.client.get<Pod>(objectPath(CR.pods, 'default', 'on2'))).status?.conditions?.find((x) => x.type === 'Ready')?.status === 'False');
  const n1 = await getNode('node1');
  assert.equal(n1.status?.conditions?.find((x) => x.type === 'Ready')?.status, 'True');
  assert.equal((n1.spec?.taints ?? []).length, 0);
});

test('the node comes back: the kubelet posts Ready=True, the taints go', async () => {
  const n = await getNode('node2');
  const conds = (n.status?.conditions ?? []).map((x) => (x.type === 'Ready' ? { ...x, status: 'True', reason: 'KubeletReady', lastHeartbeatTime: nowRFC3339() } : x));
  await c.writer.updateStatus(CR.nodes, { ...n, status: { ...n.status, conditions: conds } });
  await waitFor('untainted', async () => ((await getNode('node2')).spec?.taints ?? []).length === 0);
});

test('spec.unschedulable (kubectl cordon) gets the unschedulable taint', async () => {
  await c.writer.mergePatch(CR.nodes, undefined, 'node1', { spec: { unschedulable: true } });
  await waitFor('cordon taint', async () => (await getNode('node1')).spec?.taints?.some((t) => t.key === 'node.kubernetes.io/unschedulable' && t.effect === 'NoSchedule'));
  await c.writer.mergePatch(CR.nodes, undefined, 'node1', { spec: { unschedulable: null } });
  await waitFor('uncordon', async () => ((await getNode('node1')).spec?.taints ?? []).length === 0);
  beating = false;
});
