// Pod garbage collector: pods bound to a node that is gone (no kubelet will ever finish them) are deleted after the
// quarantine, running or already terminating, with upstream's DisruptionTarget condition; pods on live nodes stay.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CR } from '../../../src/cluster/common/resources.js';
import type { Pod } from '../../../src/cluster/common/types.js';
import { Informer } from '../../../src/k8s/informers.js';
import { createLogger } from '../../../src/log.js';
import { startCluster, waitFor, type TestCluster } from './helpers.js';

let c: TestCluster;
before(async () => {
  // No stand-in kubelet: nothing finishes graceful deletions, as on a node that was unplugged.
  c = await startCluster({ nodes: 3, kubelet: false, scheduler: false, manager: { podGCQuarantineMs: 1000 } });
});
after(async () => {
  await c?.stop();
});

async function runningPod(name: string, node: string): Promise<void> {
  const p = await c.writer.create<Pod>(CR.pods, 'default', {
    metadata: { name, namespace: 'default', finalizers: [] },
    spec: { nodeName: node, containers: [{ name: 'c', image: 'nginx' }] },
  });
  await c.writer.updateStatus<Pod>(CR.pods, { ...p, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } });
}

const exists = async (name: string): Promise<boolean> => (await c.writer.get<Pod>(CR.pods, 'default', name)) !== undefined;

test('pods on a deleted node are deleted after the quarantine, terminating ones too; pods on live nodes stay', async () => {
  await runningPod('on-gone', 'node3');
  await runningPod('terminating-on-gone', 'node3');
  await runningPod('on-live', 'node1');
  // A graceful deletion no kubelet will finish.
  await c.writer.delete(CR.pods, 'default', 'terminating-on-gone', { gracePeriodSeconds: 30 });
  assert.ok((await c.writer.get<Pod>(CR.pods, 'default', 'terminating-on-gone'))?.metadata?.deletionTimestamp, 'terminating');

  // Watch the condition the collector writes before its DELETE.
  const seen = new Map<string, Pod>();
  const inf = new Informer<Pod>(c.client, CR.pods, createLogger('test', 'none'), { namespace: 'default' });
  inf.addHandlers({ update: (_o, p) => seen.set(p.metadata?.name ?? '', p) });
  inf.start();
  await inf.waitForSync();
  try {
    await c.writer.delete(CR.nodes, undefined, 'node3');
    await waitFor('both pods of node3 gone', async () => !(await exists('on-gone')) && !(await exists('terminating-on-gone')), 30_000);
    const last = seen.get('on-gone');
    const cond = last?.status?.conditions?.find((x) => x.type === 'DisruptionTarget');
    assert.equal(cond?.reason, 'DeletionByPodGC', JSON.stringify(last?.status));
    assert.equal(last?.status?.phase, 'Failed');
  } finally {
    await inf.stop();
  }
  assert.ok(await exists('on-live'), 'the pod on node1 stays');
  await c.writer.delete(CR.pods, 'default', 'on-live', { gracePeriodSeconds: 0 });
});
