// Pure parts of the controllers and scheduler: rollout arithmetic, deletion ranking, hashing, selectors, taints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as U from '../../../src/cluster/controllers/deployment-util.js';
import { podsToDelete } from '../../../src/cluster/controllers/pod-ranking.js';
import { computeHash, fnv32a, safeEncodeString } from '../../../src/cluster/common/hash.js';
import { matchesLabelSelector, matchesNodeSelectorTerm, formatLabelSelector } from '../../../src/cluster/common/selectors.js';
import { toleratesTaint } from '../../../src/cluster/common/taints.js';
import { fitErrorMessage, pickNode } from '../../../src/cluster/scheduler/filters.js';
import { desiredTaints } from '../../../src/cluster/controllers/nodelifecycle.js';
import type { Deployment, Pod, ReplicaSet } from '../../../src/cluster/common/types.js';

const dep = (replicas: number, surge?: number | string, unavail?: number | string): Deployment => ({
  metadata: { name: 'd', generation: 1 },
  spec: { replicas, strategy: { type: 'RollingUpdate', rollingUpdate: { ...(surge !== undefined ? { maxSurge: surge } : {}), ...(unavail !== undefined ? { maxUnavailable: unavail } : {}) } } },
});
const rs = (name: string, replicas: number, available = replicas, created = '2024-01-01T00:00:00Z', ann: Record<string, string> = {}): ReplicaSet => ({
  metadata: { name, creationTimestamp: created, annotations: ann },
  spec: { replicas },
  status: { replicas, availableReplicas: available, readyReplicas: available },
});

test('fenceposts: 25% defaults round surge up and unavailable down; both zero makes unavailable 1', () => {
  assert.deepEqual(U.resolveFenceposts(dep(10)), { surge: 3, unavailable: 2 });
  assert.deepEqual(U.resolveFenceposts(dep(1)), { surge: 1, unavailable: 0 });
  assert.deepEqual(U.resolveFenceposts(dep(3, 0, 0)), { surge: 0, unavailable: 1 });
  assert.deepEqual(U.resolveFenceposts(dep(4, '50%', '50%')), { surge: 2, unavailable: 2 });
  assert.equal(U.maxUnavailable(dep(2, 0, 5)), 2);
  assert.throws(() => U.scaledValue('abc', '25%', 4, true), /must be an integer or percentage/);
  assert.equal(U.maxSurge({ ...dep(4), spec: { ...dep(4).spec, strategy: { type: 'Recreate' } } }), 0);
});

test('new ReplicaSet grows only within replicas + maxSurge', () => {
  const d = dep(4, 1, 0);
  assert.equal(U.newRSNewReplicas(d, [rs('old', 4)], undefined), 1);
  const nr = rs('new', 1);
  assert.equal(U.newRSNewReplicas(d, [rs('old', 4), nr], nr), 1);
  assert.equal(U.newRSNewReplicas(d, [rs('old', 3), nr], nr), 2);
  assert.equal(U.newRSNewReplicas(dep(4, 10), [rs('old', 4)], undefined), 4);
});

test('proportional scaling mid-rollout splits by size, leftovers to the largest', () => {
  // a rollout sized for 10 (max 13 pods) scaled to 15 with maxSurge 3: 8 old + 5 new active, 18 allowed
  const d = dep(15, 3, 2);
  const old = rs('old', 8, 8, '2024-01-01T00:00:00Z', { [U.MAX_REPLICAS]: '13' });
  const nw = rs('new', 5, 0, '2024-01-02T00:00:00Z', { [U.MAX_REPLICAS]: '13' });
  const { sizes, direction } = U.proportionalSizes(d, [old, nw]);
  assert.equal(direction, 'up');
  assert.equal((sizes.get(old) ?? 0) + (sizes.get(nw) ?? 0), 18);
  assert.equal(sizes.get(old), 11);
  assert.equal(sizes.get(nw), 7);
});

test('templates compare equal across Go zero values and the hash label', () => {
  const a = { metadata: { labels: { app: 'x', 'pod-template-hash': 'abc' } }, spec: { containers: [{ name: 'c', image: 'i', resources: {} }] } };
  const b = { metadata: { creationTimestamp: null, labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'i' }], volumes: [] } };
  assert.ok(U.equalIgnoreHash(a as never, b as never));
  assert.ok(!U.equalIgnoreHash(a as never, { ...b, spec: { containers: [{ name: 'c', image: 'j' }] } } as never));
});

test('conditions: same status and reason is no change; a status change moves the transition time', () => {
  const s = { conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'm', lastUpdateTime: 't0', lastTransitionTime: 't0' }] };
  U.setCondition(s, { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'm', lastUpdateTime: 't1', lastTransitionTime: 't1' });
  assert.equal(s.conditions[0]!.lastUpdateTime, 't0');
  U.setCondition(s, { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'x', lastUpdateTime: 't2', lastTransitionTime: 't2' });
  assert.equal(s.conditions[0]!.lastTransitionTime, 't2');
});

test('rollout status: complete, progressing, timed out', () => {
  const d: Deployment = { metadata: { generation: 2 }, spec: { replicas: 2, progressDeadlineSeconds: 10 }, status: { replicas: 2, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } };
  assert.ok(U.deploymentComplete(d, { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }));
  assert.ok(!U.deploymentComplete(d, { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }));
  assert.ok(U.deploymentProgressing(d, { replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1 }));
  assert.ok(!U.deploymentProgressing(d, { replicas: 2, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 }));
  const old = new Date(Date.now() - 20_000).toISOString();
  assert.ok(U.deploymentTimedOut(d, { conditions: [{ type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', lastUpdateTime: old }] }, Date.now()));
  assert.ok(!U.deploymentTimedOut(d, { conditions: [{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', lastUpdateTime: old }] }, Date.now()));
});

const pod = (name: string, o: { node?: string; phase?: string; ready?: boolean; created?: string; restarts?: number; readySince?: string; cost?: string } = {}): Pod => ({
  metadata: { name, creationTimestamp: o.created ?? '2024-01-01T00:00:00Z', ...(o.cost ? { annotations: { 'controller.kubernetes.io/pod-deletion-cost': o.cost } } : {}) },
  spec: { ...(o.node ? { nodeName: o.node } : {}) },
  status: {
    phase: o.phase ?? 'Running',
    conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', lastTransitionTime: o.readySince ?? '2024-01-01T00:00:00Z' }],
    containerStatuses: [{ name: 'c', restartCount: o.restarts ?? 0 }],
  },
});

test('scale-down picks unscheduled, pending, not ready, cheap, doubled-up, recently ready, restarting, newest first', () => {
  const names = (ps: Pod[]): string[] => ps.map((p) => p.metadata!.name!);
  const a = pod('a', { node: 'n1' });
  assert.deepEqual(names(podsToDelete([a, pod('unsched')], [], 1)), ['unsched']);
  assert.deepEqual(names(podsToDelete([a, pod('pend', { node: 'n1', phase: 'Pending' })], [], 1)), ['pend']);
  assert.deepEqual(names(podsToDelete([a, pod('nr', { node: 'n1', ready: false })], [], 1)), ['nr']);
  assert.deepEqual(names(podsToDelete([pod('costly', { node: 'n1', cost: '100' }), pod('cheap', { node: 'n1', cost: '-5' })], [], 1)), ['cheap']);
  const b = pod('b', { node: 'n2' });
  const a2 = pod('a2', { node: 'n1' });
  assert.deepEqual(names(podsToDelete([a, b], [a, a2, b], 1)), ['a']);
  assert.deepEqual(names(podsToDelete([a, pod('recent', { node: 'n1', readySince: '2024-06-01T00:00:00Z' })], [], 1)), ['recent']);
  assert.deepEqual(names(podsToDelete([a, pod('crashy', { node: 'n1', restarts: 4 })], [], 1)), ['crashy']);
  assert.deepEqual(names(podsToDelete([a, pod('young', { node: 'n1', created: '2024-02-01T00:00:00Z' })], [], 1)), ['young']);
});

test('pod-template hash: FNV-1a and SafeEncodeString as upstream', () => {
  assert.equal(fnv32a(Buffer.from('')), 0x811c9dc5);
  assert.equal(fnv32a(Buffer.from('a')), 0xe40c292c);
  assert.equal(safeEncodeString('0123456789'), '456789bcdf');
  assert.equal(computeHash({ a: 1 }), computeHash({ a: 1 }));
  assert.notEqual(computeHash({ a: 1 }), computeHash({ a: 1 }, 1));
});

test('label and node selectors', () => {
  assert.ok(matchesLabelSelector({ matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'In', values: ['x', 'y'] }, { key: 'c', operator: 'DoesNotExist' }] }, { a: '1', b: 'y' }));
  assert.ok(!matchesLabelSelector({ matchExpressions: [{ key: 'b', operator: 'NotIn', values: ['y'] }] }, { b: 'y' }));
  assert.ok(!matchesLabelSelector(undefined, { a: '1' }));
  assert.ok(matchesLabelSelector({}, { a: '1' }));
  assert.equal(formatLabelSelector({ matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'In', values: ['y', 'x'] }, { key: 'c', operator: 'Exists' }] }), 'a=1,b in (x,y),c');
  assert.ok(matchesNodeSelectorTerm({ matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['3'] }] }, { name: 'n', labels: { gen: '5' } }));
  assert.ok(!matchesNodeSelectorTerm({}, { name: 'n', labels: {} }));
  assert.ok(matchesNodeSelectorTerm({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n'] }] }, { name: 'n', labels: {} }));
});

test('tolerations', () => {
  const t = { key: 'k', value: 'v', effect: 'NoSchedule' };
  assert.ok(toleratesTaint({ key: 'k', operator: 'Equal', value: 'v' }, t));
  assert.ok(!toleratesTaint({ key: 'k', operator: 'Equal', value: 'w' }, t));
  assert.ok(toleratesTaint({ operator: 'Exists' }, t));
  assert.ok(!toleratesTaint({ key: 'k', operator: 'Exists', effect: 'NoExecute' }, t));
});

test('scheduler wording and choice', () => {
  const reasons = new Map([
    ['a', "node(s) didn't match Pod's node affinity/selector"],
    ['b', "node(s) didn't match Pod's node affinity/selector"],
    ['c', 'node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }'],
  ]);
  assert.equal(
    fitErrorMessage(reasons, 3),
    "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
  );
  assert.equal(fitErrorMessage(new Map(), 0), 'no nodes available to schedule pods');
  const n = (name: string) => ({ metadata: { name } });
  assert.equal(pickNode([{ node: n('x'), sameOwner: 1, total: 0 }, { node: n('y'), sameOwner: 0, total: 9 }])?.metadata?.name, 'y');
  assert.equal(pickNode([{ node: n('y'), sameOwner: 0, total: 1 }, { node: n('x'), sameOwner: 0, total: 1 }])?.metadata?.name, 'x');
});

test('node taints follow the Ready condition and keep other taints', () => {
  const node = (status: string | undefined, taints = [{ key: 'mine', effect: 'NoSchedule' }]) => ({
    metadata: { name: 'n' },
    spec: { taints },
    status: { conditions: status ? [{ type: 'Ready', status }] : [] },
  });
  assert.deepEqual(desiredTaints(node('True'), 0), [{ key: 'mine', effect: 'NoSchedule' }]);
  assert.deepEqual(desiredTaints(node('False'), 0).map((t) => `${t.key}:${t.effect}`), ['mine:NoSchedule', 'node.kubernetes.io/not-ready:NoSchedule', 'node.kubernetes.io/not-ready:NoExecute']);
  assert.deepEqual(desiredTaints(node('Unknown', []), 0).map((t) => `${t.key}:${t.effect}`), ['node.kubernetes.io/unreachable:NoSchedule', 'node.kubernetes.io/unreachable:NoExecute']);
  assert.deepEqual(desiredTaints(node(undefined, []), 0), []);
});

test('namespace deletion conditions are worded as upstream', async () => {
  const { deletionConditions } = await import('../../../src/cluster/controllers/namespace.js');
  const busy = deletionConditions({ remaining: new Map([['pods.', 2], ['widgets.example.com', 1]]), finalizers: new Map([['example.com/f', 1]]), errors: [] });
  const m = Object.fromEntries(busy.map((c) => [c.type, `${c.status}|${c.reason}|${c.message}`]));
  assert.equal(m.NamespaceContentRemaining, 'True|SomeResourcesRemain|Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances');
  assert.equal(m.NamespaceFinalizersRemaining, 'True|SomeFinalizersRemain|Some content in the namespace has finalizers remaining: example.com/f in 1 resource instances');
  const done = deletionConditions({ remaining: new Map(), finalizers: new Map(), errors: [] });
  assert.deepEqual(
    done.map((c) => `${c.type}=${c.status}/${c.reason}`),
    [
      'NamespaceDeletionDiscoveryFailure=False/ResourcesDiscovered',
      'NamespaceDeletionGroupVersionParsingFailure=False/ParsedGroupVersions',
      'NamespaceDeletionContentFailure=False/ContentDeleted',
      'NamespaceContentRemaining=False/ContentRemoved',
      'NamespaceFinalizersRemaining=False/ContentHasNoFinalizers',
    ],
  );
});
