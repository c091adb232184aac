// DaemonSet controller with the scheduler: one pod per eligible node, following nodes, taints and template changes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { kubectlOk } from '../../helpers/devserver.js';
import { CR } from '../../../src/cluster/common/resources.js';
import type { DaemonSet, Pod } from '../../../src/cluster/common/types.js';
import { collectionPath, objectPath } from '../../../src/k8s/resources.js';
import { nodeObject, startCluster, waitFor, type TestCluster } from './helpers.js';

let c: TestCluster;
before(async () => {
  c = await startCluster({ nodes: 3 });
  // node3 is a control-plane node
  await c.writer.mergePatch(CR.nodes, undefined, 'node3', { metadata: { labels: { 'node-role.kubernetes.io/control-plane': '' } }, spec: { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } });
});
after(async () => {
  await c?.stop();
});

const podsOf = async (app: string): Promise<Pod[]> => (await c.client.get<{ items: Pod[] }>(collectionPath(CR.pods, 'default'), { query: { labelSelector: `app=${app}` } })).items;
const nodesOf = async (app: string): Promise<string> => (await podsOf(app)).map((p) => p.spec?.nodeName ?? '-').sort().join(',');
const getDS = (n: string): Promise<DaemonSet> => c.client.get<DaemonSet>(objectPath(CR.daemonSets, 'default', n));

function ds(name: string, spec: Partial<NonNullable<Pod['spec']>> = {}): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: name } },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'nginx' }], ...spec } },
    },
  };
}

test('one pod per schedulable node, pinned with node affinity, with the daemon tolerations; status counts', async () => {
  await kubectlOk(['apply', '-f', '-'], c.kubeconfig, { input: JSON.stringify(ds('agent')) });
  await waitFor('2 pods bound', async () => (await nodesOf('agent')) === 'node1,node2');
  const p = (await podsOf('agent')).find((x) => x.spec?.nodeName === 'node1')!;
  assert.deepEqual(p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node1'] }] }] });
  assert.ok(p.spec?.tolerations?.some((t) => t.key === 'node.kubernetes.io/unreachable' && t.effect === 'NoExecute' && t.operator === 'Exists'));
  assert.ok(p.metadata?.labels?.['controller-revision-hash']);
  assert.equal(p.metadata?.ownerReferences?.[0]?.kind, 'DaemonSet');
  assert.ok(p.metadata?.name?.startsWith('agent-'));
  const out = await kubectlOk(['rollout', 'status', 'ds/agent', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  assert.match(out, /daemon set "agent" successfully rolled out/);
  const st = (await getDS('agent')).status!;
  assert.deepEqual([st.desiredNumberScheduled, st.currentNumberScheduled, st.numberReady, st.numberAvailable, st.updatedNumberScheduled, st.numberMisscheduled], [2, 2, 2, 2, 2, 0]);
  const table = await kubectlOk(['get', 'ds', 'agent', '--no-headers'], c.kubeconfig);
  assert.match(table, /^agent\s+2\s+2\s+2\s+2\s+2\s/);
});

test('a DaemonSet tolerating the control-plane taint (as MetalLB speakers do) also runs there', async () => {
  await kubectlOk(['apply', '-f', '-'], c.kubeconfig, {
    input: JSON.stringify(ds('speaker', { tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }], hostNetwork: true })),
  });
  await waitFor('3 pods', async () => (await nodesOf('speaker')) === 'node1,node2,node3');
});

test('follows nodes: a new node gets a pod, a deleted node loses it, nodeSelector and NoExecute taints are honoured', async () => {
  await c.writer.create(CR.nodes, undefined, nodeObject('node4', 4));
  await waitFor('node4 pod', async () => (await nodesOf('agent')) === 'node1,node2,node4');
  await c.writer.delete(CR.nodes, undefined, 'node4');
  await waitFor('node4 pod gone', async () => (await nodesOf('agent')) === 'node1,node2');
  // a NoExecute taint the pod does not tolerate evicts it
  await c.writer.mergePatch(CR.nodes, undefined, 'node2', { spec: { taints: [{ key: 'tkp.example.com/drain', effect: 'NoExecute' }] } });
  await waitFor('node2 pod evicted', async () => (await nodesOf('agent')) === 'node1');
  await c.writer.mergePatch(CR.nodes, undefined, 'node2', { spec: { taints: null } });
  await waitFor('node2 pod back', async () => (await nodesOf('agent')) === 'node1,node2');
  // nodeSelector: only labelled nodes
  await kubectlOk(['patch', 'ds', 'agent', '-p', '{"spec":{"template":{"spec":{"nodeSelector":{"tkp/agent":"yes"}}}}}'], c.kubeconfig);
  await waitFor('no pods', async () => (await podsOf('agent')).length === 0);
  await kubectlOk(['label', 'node', 'node2', 'tkp/agent=yes'], c.kubeconfig);
  await waitFor('node2 only', async () => (await nodesOf('agent')) === 'node2');
});

test('RollingUpdate replaces pods node by node; a failed pod is replaced', async () => {
  const before = new Set((await podsOf('speaker')).map((p) => p.metadata?.name));
  await kubectlOk(['set', 'image', 'ds/speaker', 'c=nginx:2'], c.kubeconfig);
  const out = await kubectlOk(['rollout', 'status', 'ds/speaker', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  assert.match(out, /successfully rolled out/);
  const pods = await podsOf('speaker');
  assert.equal(pods.length, 3);
  assert.ok(pods.every((p) => !before.has(p.metadata?.name) && p.spec?.containers?.[0]?.image === 'nginx:2'));
  const victim = pods[0]!;
  await c.writer.updateStatus(CR.pods, { ...victim, status: { ...victim.status, phase: 'Failed' } });
  await waitFor('replaced', async () => {
    const now = await podsOf('speaker');
    return now.length === 3 && !now.some((p) => p.metadata?.name === victim.metadata?.name) && now.every((p) => p.spec?.nodeName);
  });
});
