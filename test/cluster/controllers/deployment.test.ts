// Deployment → ReplicaSet → Pods against a dev API server, driven with kubectl as a user would.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { kubectl, kubectlOk } from '../../helpers/devserver.js';
import { CR } from '../../../src/cluster/common/resources.js';
import type { Deployment, Pod, ReplicaSet } from '../../../src/cluster/common/types.js';
import { collectionPath } from '../../../src/k8s/resources.js';
import { startCluster, waitFor, type TestCluster } from './helpers.js';

let c: TestCluster;
before(async () => {
  c = await startCluster({ nodes: 3 });
});
after(async () => {
  await c?.stop();
});

const list = async <T>(r: typeof CR.pods, ns: string, labelSelector?: string): Promise<T[]> =>
  ((await c.client.get<{ items: T[] }>(collectionPath(r, ns), { query: { labelSelector } })).items ?? []);
const getDeploy = (name: string, ns = 'default'): Promise<Deployment> => c.client.get<Deployment>(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`);

test('kubectl create deployment: a ReplicaSet <name>-<hash>, pods spread over the nodes, rollout status succeeds', async () => {
  await kubectlOk(['create', 'deployment', 'web', '--image=nginx', '--replicas=3'], c.kubeconfig);
  const out = await kubectlOk(['rollout', 'status', 'deployment/web', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  assert.match(out, /deployment "web" successfully rolled out/);
  const rss = await list<ReplicaSet>(CR.replicaSets, 'default', 'app=web');
  assert.equal(rss.length, 1);
  const rs = rss[0]!;
  const hash = rs.metadata?.labels?.['pod-template-hash'];
  assert.ok(hash && /^[bcdfghjklmnpqrstvwxz2456789]+$/.test(hash), `hash ${hash}`);
  assert.equal(rs.metadata?.name, `web-${hash}`);
  assert.equal(rs.metadata?.annotations?.['deployment.kubernetes.io/revision'], '1');
  assert.equal(rs.metadata?.annotations?.['deployment.kubernetes.io/desired-replicas'], '3');
  assert.equal(rs.metadata?.annotations?.['deployment.kubernetes.io/max-replicas'], '4');
  const ref = rs.metadata?.ownerReferences?.[0];
  assert.equal(ref?.kind, 'Deployment');
  assert.equal(ref?.controller, true);
  const pods = await list<Pod>(CR.pods, 'default', 'app=web');
  assert.equal(pods.length, 3);
  for (const p of pods) {
    assert.ok(p.metadata?.name?.startsWith(`web-${hash}-`));
    assert.equal(p.metadata?.labels?.['pod-template-hash'], hash);
    const pref = p.metadata?.ownerReferences?.[0];
    assert.deepEqual([pref?.kind, pref?.name, pref?.controller, pref?.blockOwnerDeletion], ['ReplicaSet', rs.metadata?.name, true, true]);
  }
  assert.deepEqual(pods.map((p) => p.spec?.nodeName).sort(), ['node1', 'node2', 'node3']);
  const d = await getDeploy('web');
  assert.equal(d.metadata?.annotations?.['deployment.kubernetes.io/revision'], '1');
  assert.deepEqual(
    [d.status?.replicas, d.status?.updatedReplicas, d.status?.readyReplicas, d.status?.availableReplicas, d.status?.observedGeneration],
    [3, 3, 3, 3, d.metadata?.generation],
  );
  const avail = d.status?.conditions?.find((x) => x.type === 'Available');
  assert.deepEqual([avail?.status, avail?.reason, avail?.message], ['True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.']);
  const prog = d.status?.conditions?.find((x) => x.type === 'Progressing');
  assert.deepEqual([prog?.status, prog?.reason, prog?.message], ['True', 'NewReplicaSetAvailable', `ReplicaSet "web-${hash}" has successfully progressed.`]);
  const events = await kubectlOk(['get', 'events', '--field-selector', 'involvedObject.name=web', '-o', 'jsonpath={range .items[*]}{.reason}:{.message}{"\\n"}{end}'], c.kubeconfig);
  assert.match(events, new RegExp(`ScalingReplicaSet:Scaled up replica set web-${hash} from 0 to 3`));
});

test('kubectl scale up and down through the scale subresource', async () => {
  await kubectlOk(['scale', 'deployment/web', '--replicas=5'], c.kubeconfig);
  await waitFor('5 ready replicas', async () => (await getDeploy('web')).status?.availableReplicas === 5);
  let pods = await list<Pod>(CR.pods, 'default', 'app=web');
  assert.equal(pods.length, 5);
  const perNode = new Map<string, number>();
  for (const p of pods) perNode.set(p.spec?.nodeName ?? '', (perNode.get(p.spec?.nodeName ?? '') ?? 0) + 1);
  assert.deepEqual([...perNode.values()].sort(), [1, 2, 2]);
  await kubectlOk(['scale', 'deployment/web', '--replicas=2'], c.kubeconfig);
  await waitFor('2 pods', async () => (await list<Pod>(CR.pods, 'default', 'app=web')).length === 2);
  pods = await list<Pod>(CR.pods, 'default', 'app=web');
  // scale-down removes doubled-up pods first: the two left are on different nodes
  assert.notEqual(pods[0]?.spec?.nodeName, pods[1]?.spec?.nodeName);
  await waitFor('status 2', async () => {
    const d = await getDeploy('web');
    return d.status?.replicas === 2 && d.status.availableReplicas === 2;
  });
  await kubectlOk(['scale', 'deployment/web', '--replicas=3'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/web', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
});

test('a template change rolls out a new ReplicaSet; rollout undo brings the old template back as a new revision', async () => {
  const before = (await list<ReplicaSet>(CR.replicaSets, 'default', 'app=web'))[0]!;
  await kubectlOk(['set', 'image', 'deployment/web', 'nginx=nginx:1.27'], c.kubeconfig);
  const out = await kubectlOk(['rollout', 'status', 'deployment/web', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  assert.match(out, /successfully rolled out/);
  const rss = await list<ReplicaSet>(CR.replicaSets, 'default', 'app=web');
  assert.equal(rss.length, 2);
  const fresh = rss.find((r) => r.metadata?.name !== before.metadata?.name)!;
  assert.equal(fresh.spec?.replicas, 3);
  assert.equal(fresh.metadata?.annotations?.['deployment.kubernetes.io/revision'], '2');
  assert.equal(rss.find((r) => r.metadata?.name === before.metadata?.name)?.spec?.replicas, 0);
  // the old ReplicaSet's pods may still be terminating (graceful deletion waits for their kubelet), as kubectl shows
  const pods = (await list<Pod>(CR.pods, 'default', 'app=web')).filter((p) => !p.metadata?.deletionTimestamp);
  assert.equal(pods.length, 3);
  assert.ok(pods.every((p) => (p.spec?.containers?.[0]?.image ?? '') === 'nginx:1.27'));
  const hist = await kubectlOk(['rollout', 'history', 'deployment/web'], c.kubeconfig);
  assert.match(hist, /^1\s/m);
  assert.match(hist, /^2\s/m);

  await kubectlOk(['rollout', 'undo', 'deployment/web'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/web', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  const after = await list<ReplicaSet>(CR.replicaSets, 'default', 'app=web');
  const back = after.find((r) => r.metadata?.name === before.metadata?.name)!;
  assert.equal(back.spec?.replicas, 3);
  assert.equal(back.metadata?.annotations?.['deployment.kubernetes.io/revision'], '3');
  assert.equal(back.metadata?.annotations?.['deployment.kubernetes.io/revision-history'], '1');
  const d = await getDeploy('web');
  assert.equal(d.metadata?.annotations?.['deployment.kubernetes.io/revision'], '3');
  assert.ok(d.spec?.template?.spec?.containers?.[0]?.image === 'nginx');
});

test('rolling update never drops below replicas - maxUnavailable nor exceeds replicas + maxSurge', async () => {
  await kubectlOk(['create', 'deployment', 'roll', '--image=nginx', '--replicas=4'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/roll', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  // maxSurge 1, maxUnavailable 0: at most 5 pods, never fewer than 4 available
  await kubectlOk(['patch', 'deployment/roll', '-p', '{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}'], c.kubeconfig);
  let maxPods = 0;
  let minAvailable = Infinity;
  let done = false;
  const watcher = (async () => {
    while (!done) {
      // terminating pods do not count against maxSurge, as in kube's deployment controller
      const pods = (await list<Pod>(CR.pods, 'default', 'app=roll')).filter((p) => !p.metadata?.deletionTimestamp);
      maxPods = Math.max(maxPods, pods.length);
      const d = await getDeploy('roll');
      if (d.status?.availableReplicas !== undefined) minAvailable = Math.min(minAvailable, d.status.availableReplicas);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await kubectlOk(['set', 'image', 'deployment/roll', 'nginx=nginx:2'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/roll', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  done = true;
  await watcher;
  assert.ok(maxPods <= 5, `saw ${maxPods} pods`);
  assert.ok(minAvailable >= 4, `saw ${minAvailable} available`);
});

test('Recreate: old pods are all gone before new ones are created', async () => {
  await kubectlOk(['apply', '-f', '-'], c.kubeconfig, {
    input: JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'rec' },
      spec: { replicas: 2, strategy: { type: 'Recreate' }, selector: { matchLabels: { app: 'rec' } }, template: { metadata: { labels: { app: 'rec' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
    }),
  });
  await kubectlOk(['rollout', 'status', 'deployment/rec', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  const oldPods = new Set((await list<Pod>(CR.pods, 'default', 'app=rec')).map((p) => p.metadata?.name));
  let mixed = false;
  let done = false;
  const watcher = (async () => {
    while (!done) {
      const names = (await list<Pod>(CR.pods, 'default', 'app=rec')).map((p) => p.metadata?.name);
      if (names.some((n) => oldPods.has(n)) && names.some((n) => !oldPods.has(n))) mixed = true;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await kubectlOk(['set', 'image', 'deployment/rec', 'c=nginx:2'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/rec', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  done = true;
  await watcher;
  assert.equal(mixed, false, 'old and new pods existed at the same time');
  const pods = await list<Pod>(CR.pods, 'default', 'app=rec');
  assert.equal(pods.length, 2);
  assert.ok(pods.every((p) => !oldPods.has(p.metadata?.name)));
});

test('pause and resume: a paused Deployment does not roll out; conditions say so', async () => {
  await kubectlOk(['create', 'deployment', 'pz', '--image=nginx', '--replicas=1'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/pz', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  await kubectlOk(['rollout', 'pause', 'deployment/pz'], c.kubeconfig);
  await waitFor('paused condition', async () => (await getDeploy('pz')).status?.conditions?.find((x) => x.type === 'Progressing')?.reason === 'DeploymentPaused');
  await kubectlOk(['set', 'image', 'deployment/pz', 'nginx=nginx:2'], c.kubeconfig);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await list<ReplicaSet>(CR.replicaSets, 'default', 'app=pz')).length, 1);
  await kubectlOk(['rollout', 'resume', 'deployment/pz'], c.kubeconfig);
  await kubectlOk(['rollout', 'status', 'deployment/pz', '--timeout=60s'], c.kubeconfig, { timeoutMs: 70_000 });
  assert.equal((await list<ReplicaSet>(CR.replicaSets, 'default', 'app=pz')).length, 2);
});

test('minReadySeconds: pods count as available only after being ready that long', async () => {
  await kubectlOk(['apply', '-f', '-'], c.kubeconfig, {
    input: JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'mrs' },
      spec: { replicas: 1, minReadySeconds: 3, selector: { matchLabels: { app: 'mrs' } }, template: { metadata: { labels: { app: 'mrs' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
    }),
  });
  const ready = await waitFor('ready', async () => {
    const d = await getDeploy('mrs');
    return d.status?.readyReplicas === 1 ? d : undefined;
  });
  assert.ok(!ready.status?.availableReplicas, 'available before minReadySeconds');
  await waitFor('available', async () => (await getDeploy('mrs')).status?.availableReplicas === 1, 30_000);
});

test('kubectl get deploy,rs shows the columns from status', async () => {
  const out = await kubectlOk(['get', 'deploy', 'web', '--no-headers'], c.kubeconfig);
  assert.match(out, /^web\s+3\/3\s+3\s+3\s/);
  const r = await kubectl(['get', 'rs', '-l', 'app=web', '--no-headers'], c.kubeconfig);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /\s3\s+3\s+3\s/);
});
