// The STATUS / READY / RESTARTS of `kubectl get pods` as kube-apiserver's printPod computes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { podRow, podRowConditions } from '../../../src/cluster/apiserver/pod-printer.js';
import { humanDuration } from '../../../src/cluster/apiserver/table.js';
import type { Obj } from '../../../src/cluster/apiserver/util.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const pod = (spec: Obj, status: Obj, metadata: Obj = {}): Obj => ({ metadata: { name: 'p', ...metadata }, spec, status });
const one = { containers: [{ name: 'c', image: 'nginx' }] };
const row = (p: Obj) => podRow(p, NOW, humanDuration);
const cs = (state: Obj, extra: Obj = {}): Obj => ({ name: 'c', state, ready: false, restartCount: 0, ...extra });

test('a running, ready pod: Running 1/1', () => {
  const r = row(pod(one, { phase: 'Running', podIPs: [{ ip: '10.244.1.5' }], containerStatuses: [cs({ running: { startedAt: 'x' } }, { ready: true })] }));
  assert.deepEqual([r.ready, r.status, r.restarts, r.ip], ['1/1', 'Running', '0', '10.244.1.5']);
});

test('the container state, not the phase: ContainerCreating, ErrImagePull, ImagePullBackOff, CrashLoopBackOff with the last restart', () => {
  for (const reason of ['ContainerCreating', 'ErrImagePull', 'ImagePullBackOff']) {
    const r = row(pod(one, { phase: 'Pending', containerStatuses: [cs({ waiting: { reason } })] }));
    assert.deepEqual([r.ready, r.status], ['0/1', reason]);
  }
  const r = row(
    pod(one, {
      phase: 'Running',
      containerStatuses: [cs({ waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } }, { restartCount: 3, lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: '2026-01-01T11:59:20Z' } } })],
    }),
  );
  assert.deepEqual([r.ready, r.status, r.restarts], ['0/1', 'CrashLoopBackOff', '3 (40s ago)']);
});

test('a pod that ran to completion: Completed; exit codes and signals without a reason', () => {
  const done = pod({ ...one, restartPolicy: 'Never' }, { phase: 'Succeeded', containerStatuses: [cs({ terminated: { exitCode: 0, reason: 'Completed' } })] });
  assert.equal(row(done).status, 'Completed');
  assert.deepEqual(podRowConditions(done), [{ type: 'Completed', status: 'True', reason: 'Succeeded', message: 'The pod has completed successfully.' }]);
  assert.equal(row(pod(one, { phase: 'Failed', containerStatuses: [cs({ terminated: { exitCode: 2 } })] })).status, 'ExitCode:2');
  assert.equal(row(pod(one, { phase: 'Failed', containerStatuses: [cs({ terminated: { exitCode: 137, signal: 9 } })] })).status, 'Signal:9');
  assert.equal(podRowConditions(pod(one, { phase: 'Running' })), undefined);
});

test('init containers: Init:0/2, Init:1/2, Init:Error, Init:CrashLoopBackOff, then PodInitializing', () => {
  const spec = { initContainers: [{ name: 'i1' }, { name: 'i2' }], containers: [{ name: 'c' }] };
  const waitingMain = [cs({ waiting: { reason: 'PodInitializing' } })];
  const init = (s1: Obj, s2: Obj, extra: Obj = {}): Obj[] => [{ name: 'i1', state: s1, restartCount: 0, ...extra }, { name: 'i2', state: s2, restartCount: 0 }];
  const r0 = row(pod(spec, { phase: 'Pending', initContainerStatuses: init({ running: {} }, { waiting: { reason: 'PodInitializing' } }), containerStatuses: waitingMain }));
  assert.deepEqual([r0.ready, r0.status], ['0/1', 'Init:0/2']);
  assert.equal(row(pod(spec, { phase: 'Pending', initContainerStatuses: init({ terminated: { exitCode: 0, reason: 'Completed' } }, { running: {} }), containerStatuses: waitingMain })).status, 'Init:1/2');
  assert.equal(row(pod(spec, { phase: 'Pending', initContainerStatuses: init({ terminated: { exitCode: 1, reason: 'Error' } }, { waiting: {} }), containerStatuses: waitingMain })).status, 'Init:Error');
  const crash = row(pod(spec, { phase: 'Pending', initContainerStatuses: init({ waiting: { reason: 'CrashLoopBackOff' } }, { waiting: {} }, { restartCount: 2 }), containerStatuses: waitingMain }));
  assert.deepEqual([crash.status, crash.restarts], ['Init:CrashLoopBackOff', '2']);
  const initialized = row(
    pod(spec, {
      phase: 'Pending',
      conditions: [{ type: 'Initialized', status: 'True' }],
      initContainerStatuses: init({ terminated: { exitCode: 0, reason: 'Completed' } }, { terminated: { exitCode: 0, reason: 'Completed' } }),
      containerStatuses: waitingMain,
    }),
  );
  assert.equal(initialized.status, 'PodInitializing');
});

test('sidecars (init containers with restartPolicy Always) count as containers once started', () => {
  const spec = { initContainers: [{ name: 'side', restartPolicy: 'Always' }], containers: [{ name: 'c' }] };
  const r = row(
    pod(spec, {
      phase: 'Running',
      conditions: [{ type: 'Initialized', status: 'True' }, { type: 'Ready', status: 'True' }],
      initContainerStatuses: [{ name: 'side', state: { running: {} }, started: true, ready: true, restartCount: 1 }],
      containerStatuses: [cs({ running: {} }, { ready: true })],
    }),
  );
  assert.deepEqual([r.ready, r.status, r.restarts], ['2/2', 'Running', '1']);
});

test('deletion: Terminating unless finished; Unknown on a lost node', () => {
  const running = { phase: 'Running', containerStatuses: [cs({ running: {} }, { ready: true })] };
  assert.equal(row(pod(one, running, { deletionTimestamp: '2026-01-01T12:00:30Z' })).status, 'Terminating');
  assert.equal(row(pod(one, { ...running, reason: 'NodeLost' }, { deletionTimestamp: '2026-01-01T12:00:30Z' })).status, 'Unknown');
  assert.equal(row(pod(one, { phase: 'Succeeded', containerStatuses: [cs({ terminated: { exitCode: 0, reason: 'Completed' } })] }, { deletionTimestamp: 'x' })).status, 'Completed');
});

test('a completed first container beside a running one is not "Completed"; pod reasons and scheduling gates', () => {
  const spec = { containers: [{ name: 'a' }, { name: 'b' }] };
  const statuses = [
    { name: 'a', state: { terminated: { exitCode: 0, reason: 'Completed' } }, ready: false, restartCount: 0 },
    { name: 'b', state: { running: {} }, ready: true, restartCount: 0 },
  ];
  assert.deepEqual([row(pod(spec, { phase: 'Running', containerStatuses: statuses })).status, row(pod(spec, { phase: 'Running', containerStatuses: statuses })).ready], ['NotReady', '1/2']);
  assert.equal(row(pod(spec, { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: statuses })).status, 'Running');
  assert.equal(row(pod(one, { phase: 'Failed', reason: 'Evicted' })).status, 'Evicted');
  assert.equal(row(pod(one, { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'SchedulingGated' }] })).status, 'SchedulingGated');
  const pending = row(pod(one, { phase: 'Pending' }));
  assert.deepEqual([pending.ready, pending.status, pending.ip, pending.node, pending.readinessGates], ['0/1', 'Pending', '<none>', '<none>', '<none>']);
  assert.equal(row(pod({ ...one, readinessGates: [{ conditionType: 'x/ok' }, { conditionType: 'x/lb' }] }, { phase: 'Running', conditions: [{ type: 'x/ok', status: 'True' }] })).readinessGates, '1/2');
});
