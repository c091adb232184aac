// The HPA's arithmetic without a cluster: the replica calculator against upstream's own test cases
// (pkg/controller/podautoscaler/replica_calculator_test.go: two containers per pod, each with the listed request and
// usage; testing tolerance 0.1, CPU initialization period 2 min, readiness delay 10 s), and the normalization
// (stabilization, min/max, legacy rate limit, behavior policies) against the cases of the Kubernetes documentation
// and upstream's horizontal_test.go.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CalcError, plainMetricReplicas, resourceReplicas, type CalculatorConfig, type PodInfo, type PodMetricsInfo } from '../../../src/cluster/controllers/hpa/replica-calculator.js';
import { convertDesiredReplicasWithRules, ScalingHistory, type Behavior } from '../../../src/cluster/controllers/hpa/normalize.js';
import { milliOf } from '../../../src/cluster/common/quantity.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const cfg: CalculatorConfig = { tolerance: 0.1, cpuInitializationPeriodMs: 120_000, delayOfInitialReadinessStatusMs: 10_000, now: () => NOW };
const milli = (q: string | number): number | undefined => {
  const m = milliOf(q);
  return m === undefined ? undefined : Number(m);
};
/** metav1.Time{} (the zero time) */
const ZERO = Date.parse('0001-01-01T00:00:00Z');
const cool = NOW - 3 * 60_000;
const hot = NOW;

interface Case {
  currentReplicas: number;
  expectedReplicas?: number;
  expectedError?: string;
  requests: string[];
  levels: number[];
  podNames?: string[];
  readiness?: ('True' | 'False')[];
  startTime?: number[];
  phase?: string[];
  deleting?: boolean[];
  target: number;
  expectedUtilization?: number;
  expectedValue?: number;
}

/** replicaCalcTestCase.prepareTestClientSet + runTest for a CPU utilization target. */
function run(tc: Case): void {
  const podsCount = Math.max(tc.currentReplicas, tc.phase?.length ?? 0);
  const pods: PodInfo[] = [];
  for (let i = 0; i < podsCount; i++) {
    const req = tc.requests[i];
    pods.push({
      name: `test-pod-${i}`,
      phase: tc.phase?.[i] ?? 'Running',
      deleting: tc.deleting?.[i] ?? false,
      startTime: tc.startTime?.[i] ?? ZERO,
      ready: { status: tc.readiness?.[i] ?? 'True', lastTransitionTime: ZERO },
      containers: [0, 1].map((c) => ({ name: `container${c}`, requests: req !== undefined ? ({ cpu: req } as Record<string, string>) : {} })),
    });
  }
  const metrics: PodMetricsInfo = new Map();
  tc.levels.forEach((l, i) => metrics.set(tc.podNames?.[i] ?? `test-pod-${i}`, { timestamp: ZERO, windowMs: 60_000, value: 2 * l }));
  if (tc.expectedError) {
    assert.throws(() => resourceReplicas(tc.currentReplicas, tc.target, 'cpu', '', metrics, ZERO, pods, cfg, milli), (e: unknown) => e instanceof CalcError && e.message.includes(tc.expectedError!));
    return;
  }
  const r = resourceReplicas(tc.currentReplicas, tc.target, 'cpu', '', metrics, ZERO, pods, cfg, milli);
  assert.equal(r.replicas, tc.expectedReplicas, 'replicas');
  assert.equal(r.utilization, tc.expectedUtilization, 'utilization');
  assert.equal(r.rawUtilization, tc.expectedValue, 'raw value');
}

const ones = (n: number): string[] => Array.from({ length: n }, () => '1.0');

describe('replica calculator (upstream replica_calculator_test.go)', () => {
  it('DisjointResourcesMetrics', () => run({ currentReplicas: 1, requests: ['1.0'], levels: [100], podNames: ['an-older-pod-name'], target: 100, expectedError: 'no metrics returned matched known pods' }));
  it('ScaleUp', () => run({ currentReplicas: 3, expectedReplicas: 5, requests: ones(3), levels: [300, 500, 700], target: 30, expectedUtilization: 50, expectedValue: 2 * 500 }));
  it('ScaleUpUnreadyLessScale', () =>
    run({ currentReplicas: 3, expectedReplicas: 4, readiness: ['False', 'True', 'True'], requests: ones(3), levels: [300, 500, 700], target: 30, expectedUtilization: 60, expectedValue: 2 * 600 }));
  it('ScaleUpHotCpuLessScale', () =>
    run({ currentReplicas: 3, expectedReplicas: 4, startTime: [hot, cool, cool], requests: ones(3), levels: [300, 500, 700], target: 30, expectedUtilization: 60, expectedValue: 2 * 600 }));
  it('ScaleUpUnreadyNoScale', () =>
    run({ currentReplicas: 3, expectedReplicas: 3, readiness: ['True', 'False', 'False'], requests: ones(3), levels: [400, 500, 700], target: 30, expectedUtilization: 40, expectedValue: 2 * 400 }));
  it('ScaleHotCpuNoScale', () =>
    run({
      currentReplicas: 3,
      expectedReplicas: 3,
      readiness: ['True', 'False', 'False'],
      startTime: [cool, hot, hot],
      requests: ones(3),
      levels: [400, 500, 700],
      target: 30,
      expectedUtilization: 40,
      expectedValue: 2 * 400,
    }));
  it('ScaleUpIgnoresFailedPods', () =>
    run({
      currentReplicas: 2,
      expectedReplicas: 4,
      readiness: ['True', 'True', 'False', 'False'],
      phase: ['Running', 'Running', 'Failed', 'Failed'],
      requests: ones(4),
      levels: [500, 700],
      target: 30,
      expectedUtilization: 60,
      expectedValue: 2 * 600,
    }));
  it('ScaleUpIgnoresDeletionPods', () =>
    run({
      currentReplicas: 2,
      expectedReplicas: 4,
      readiness: ['True', 'True', 'False', 'False'],
      phase: ['Running', 'Running', 'Running', 'Running'],
      deleting: [false, false, true, true],
      requests: ones(4),
      levels: [500, 700],
      target: 30,
      expectedUtilization: 60,
      expectedValue: 2 * 600,
    }));
  it('ScaleDown', () => run({ currentReplicas: 5, expectedReplicas: 3, requests: ones(5), levels: [100, 300, 500, 250, 250], target: 50, expectedUtilization: 28, expectedValue: 2 * 280 }));
  it('ScaleDownIncludeUnreadyPods', () =>
    run({
      currentReplicas: 5,
      expectedReplicas: 2,
      readiness: ['True', 'True', 'True', 'False', 'False'],
      requests: ones(5),
      levels: [100, 300, 500, 250, 250],
      target: 50,
      expectedUtilization: 30,
      expectedValue: 2 * 300,
    }));
  it('ScaleDownExcludeUnscheduledPods', () =>
    run({
      currentReplicas: 5,
      expectedReplicas: 1,
      readiness: ['True', 'False', 'False', 'False', 'False'],
      phase: ['Running', 'Pending', 'Pending', 'Pending', 'Pending'],
      requests: ones(5),
      levels: [100],
      target: 50,
      expectedUtilization: 10,
      expectedValue: 2 * 100,
    }));
  it('ScaleDownIgnoreHotCpuPods', () =>
    run({ currentReplicas: 5, expectedReplicas: 2, startTime: [cool, cool, cool, hot, hot], requests: ones(5), levels: [100, 300, 500, 250, 250], target: 50, expectedUtilization: 30, expectedValue: 2 * 300 }));
  it('ScaleDownIgnoresFailedPods', () =>
    run({
      currentReplicas: 5,
      expectedReplicas: 3,
      readiness: ['True', 'True', 'True', 'True', 'True', 'False', 'False'],
      phase: ['Running', 'Running', 'Running', 'Running', 'Running', 'Failed', 'Failed'],
      requests: ones(7),
      levels: [100, 300, 500, 250, 250],
      target: 50,
      expectedUtilization: 28,
      expectedValue: 2 * 280,
    }));
  it('Tolerance', () => run({ currentReplicas: 3, expectedReplicas: 3, requests: ['0.9', '1.0', '1.1'], levels: [1010, 1030, 1020], target: 100, expectedUtilization: 102, expectedValue: 2 * 1020 }));
  it('SuperfluousMetrics', () =>
    run({ currentReplicas: 4, expectedReplicas: 24, requests: ones(4), levels: [4000, 9500, 3000, 7000, 3200, 2000], target: 100, expectedUtilization: 587, expectedValue: 2 * 5875 }));
  it('MissingMetrics', () => run({ currentReplicas: 4, expectedReplicas: 3, requests: ones(4), levels: [400, 95], target: 100, expectedUtilization: 24, expectedValue: 495 }));
  it('EmptyCPURequest', () => run({ currentReplicas: 1, requests: [], levels: [200], target: 100, expectedError: 'missing request for' }));
  it('MissingMetricsNoChangeEq', () => run({ currentReplicas: 2, expectedReplicas: 2, requests: ones(2), levels: [1000], target: 100, expectedUtilization: 100, expectedValue: 2 * 1000 }));
  it('MissingMetricsNoChangeGt', () => run({ currentReplicas: 2, expectedReplicas: 2, requests: ones(2), levels: [1900], target: 100, expectedUtilization: 190, expectedValue: 2 * 1900 }));
  it('MissingMetricsNoChangeLt', () => run({ currentReplicas: 2, expectedReplicas: 2, requests: ones(2), levels: [600], target: 100, expectedUtilization: 60, expectedValue: 2 * 600 }));
  it('MissingMetricsUnreadyChange', () =>
    run({ currentReplicas: 3, expectedReplicas: 3, readiness: ['False', 'True', 'True'], requests: ones(3), levels: [100, 450], target: 50, expectedUtilization: 45, expectedValue: 2 * 450 }));
  it('MissingMetricsHotCpuNoChange', () =>
    run({ currentReplicas: 3, expectedReplicas: 3, startTime: [hot, cool, cool], requests: ones(3), levels: [100, 450], target: 50, expectedUtilization: 45, expectedValue: 2 * 450 }));
  it('MissingMetricsUnreadyScaleUp', () =>
    run({ currentReplicas: 3, expectedReplicas: 4, readiness: ['False', 'True', 'True'], requests: ones(3), levels: [100, 2000], target: 50, expectedUtilization: 200, expectedValue: 2 * 2000 }));
  it('MissingMetricsHotCpuScaleUp', () =>
    run({
      currentReplicas: 3,
      expectedReplicas: 4,
      readiness: ['False', 'True', 'True'],
      startTime: [hot, cool, cool],
      requests: ones(3),
      levels: [100, 2000],
      target: 50,
      expectedUtilization: 200,
      expectedValue: 2 * 2000,
    }));
  it('MissingMetricsUnreadyScaleDown', () =>
    run({
      currentReplicas: 4,
      expectedReplicas: 3,
      readiness: ['False', 'True', 'True', 'True'],
      requests: ones(4),
      levels: [100, 100, 100],
      target: 50,
      expectedUtilization: 10,
      expectedValue: 2 * 100,
    }));
  it('a target above 100 % treats missing pods as using the target on a scale down (fallbackUtilization)', () =>
    // 2 pods with metrics at 100 % of a 200 % target (ratio 0.5); 2 missing count as 200 %: (4000 + 8000) / 8000 =
    // 150 % → ratio 0.75 → ceil(0.75 × 4) = 3 (with 100 % they would count 1000 each: 62 % → 2)
    run({ currentReplicas: 4, expectedReplicas: 3, requests: ones(4), levels: [1000, 1000], target: 200, expectedUtilization: 100, expectedValue: 2 * 1000 }));
  it('ComputedToleranceAlgImplementation', () => {
    const startPods = 10;
    const totalUsed = startPods * 150;
    const totalRequested = 2 * totalUsed;
    const requestedToUsed = Math.trunc(totalRequested / totalUsed);
    const perPod = totalRequested / startPods;
    let target = Math.abs(1 / (requestedToUsed * (1 - 0.1))) + 0.01;
    let finalTarget = Math.trunc(target * 100);
    const usedRatio = totalUsed / (totalRequested * target);
    const finalPods = Math.ceil(usedRatio * startPods);
    const requests = [100, -100, 10, -10, 2, -2, 1, -1, 0, 0].map((d) => `${perPod + d}m`);
    const levels = Array.from({ length: 10 }, () => totalUsed / 10);
    const expectedUtilization = Math.trunc((totalUsed * 100) / totalRequested);
    run({ currentReplicas: startPods, expectedReplicas: finalPods, requests, levels, target: finalTarget, expectedUtilization, expectedValue: (2 * totalUsed) / 10 });
    target = Math.abs(1 / (requestedToUsed * (1 - 0.1))) + 0.004;
    finalTarget = Math.trunc(target * 100);
    run({ currentReplicas: startPods, expectedReplicas: startPods, requests, levels, target: finalTarget, expectedUtilization, expectedValue: (2 * totalUsed) / 10 });
  });

  describe('plain metrics (AverageValue)', () => {
    const podsFor = (n: number, readiness?: ('True' | 'False')[], start?: number[]): PodInfo[] =>
      Array.from({ length: n }, (_, i) => ({ name: `test-pod-${i}`, phase: 'Running', deleting: false, startTime: start?.[i] ?? ZERO, ready: { status: readiness?.[i] ?? 'True', lastTransitionTime: ZERO }, containers: [] }));
    const metricsOf = (levels: number[]): PodMetricsInfo => new Map(levels.map((v, i) => [`test-pod-${i}`, { timestamp: ZERO, windowMs: 60_000, value: v }]));
    it('ScaleUpCM', () => assert.deepEqual(plainMetricReplicas(3, 15000, '', metricsOf([20000, 10000, 30000]), podsFor(3), cfg), { replicas: 4, usage: 20000 }));
    it('ScaleUpCMUnreadyHotCpuNoLessScale (readiness matters only for CPU)', () =>
      assert.deepEqual(plainMetricReplicas(3, 15000, '', metricsOf([50000, 10000, 30000]), podsFor(3, ['True', 'True', 'False'], [cool, cool, hot]), cfg), { replicas: 6, usage: 30000 }));
    it('ScaleUpCMUnreadyHotCpuScaleWouldScaleDown', () =>
      assert.deepEqual(plainMetricReplicas(3, 15000, '', metricsOf([50000, 15000, 30000]), podsFor(3, ['False', 'True', 'False'], [hot, cool, hot]), cfg), { replicas: 7, usage: 31666 }));
    it('ScaleDownCM', () => assert.deepEqual(plainMetricReplicas(5, 20000, '', metricsOf([12000, 12000, 12000, 12000, 12000]), podsFor(5), cfg), { replicas: 3, usage: 12000 }));
    it('ToleranceCM', () => assert.deepEqual(plainMetricReplicas(3, 20000, '', metricsOf([20000, 21000, 21000]), podsFor(3), cfg), { replicas: 3, usage: 20666 }));
  });
});

describe('normalization without behavior (legacy rules)', () => {
  it('convertDesiredReplicasWithRules: min, max and the max(2 × current, 4) rate limit', () => {
    assert.deepEqual(convertDesiredReplicasWithRules(1, 10, 1, 30), [4, 'ScaleUpLimit', 'the desired replica count is increasing faster than the maximum scale rate']);
    assert.deepEqual(convertDesiredReplicasWithRules(3, 20, 1, 30), [6, 'ScaleUpLimit', 'the desired replica count is increasing faster than the maximum scale rate']);
    assert.deepEqual(convertDesiredReplicasWithRules(4, 20, 1, 5), [5, 'TooManyReplicas', 'the desired replica count is more than the maximum replica count']);
    assert.deepEqual(convertDesiredReplicasWithRules(4, 0, 1, 5), [1, 'TooFewReplicas', 'the desired replica count is less than the minimum replica count']);
    assert.deepEqual(convertDesiredReplicasWithRules(4, 3, 1, 5), [3, 'DesiredWithinRange', 'the desired count is within the acceptable range']);
  });

  it('StabilizeDownscale: the highest recommendation of the window wins (older ones are replaced)', () => {
    let now = NOW;
    const h = new ScalingHistory(300_000, () => now);
    now = NOW - 10 * 60_000;
    h.recordInitial('ns/x', 10);
    now = NOW - 60_000;
    h.normalize('ns/x', 10, 4, 1, 5);
    now = NOW;
    const n = h.normalize('ns/x', 4, 1, 1, 5);
    assert.equal(n.desiredReplicas, 4);
    assert.deepEqual(n.ableToScale, { status: 'True', reason: 'ScaleDownStabilized', message: 'recent recommendations were higher than current one, applying the highest recent recommendation' });
    assert.equal(n.scalingLimited.status, 'False');
    now = NOW + 5 * 60_000;
    assert.equal(h.normalize('ns/x', 4, 1, 1, 5).desiredReplicas, 1, 'once the window has passed');
  });

  it('a scale up is never held back by the window; the limit is reported in ScalingLimited', () => {
    const h = new ScalingHistory(300_000, () => NOW);
    h.recordInitial('k', 1);
    const n = h.normalize('k', 1, 9, 1, 30);
    assert.equal(n.desiredReplicas, 4);
    assert.deepEqual(n.ableToScale, { status: 'True', reason: 'ReadyForNewScale', message: 'recommended size matches current size' });
    assert.deepEqual(n.scalingLimited, { status: 'True', reason: 'ScaleUpLimit', message: 'the desired replica count is increasing faster than the maximum scale rate' });
  });
});

describe('normalization with behavior', () => {
  const defaults = (down: Behavior['scaleDown'] = {}): Behavior => ({
    scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] },
    scaleDown: { selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }], ...down },
  });

  it('default scale up: double or +4 per 15 s, whichever is more', () => {
    const h = new ScalingHistory(300_000, () => NOW);
    assert.equal(h.scaleUpLimit('k', 1, defaults().scaleUp!), 5);
    assert.equal(h.scaleUpLimit('k', 10, defaults().scaleUp!), 20);
    const n = h.normalizeWithBehaviors('k', defaults(), 2, 50, 1, 100);
    assert.equal(n.desiredReplicas, 6);
    assert.equal(n.scalingLimited.reason, 'ScaleUpLimit');
  });

  it('scale events of the period count: after 2 → 6 within 15 s, the next step starts from 2', () => {
    let now = NOW;
    const h = new ScalingHistory(300_000, () => now);
    h.storeScaleEvent('k', defaults(), 2, 6);
    now = NOW + 5000;
    // period start = 6 - 4 = 2: max(2 + 4, 2 × 2) = 6: no further growth yet
    assert.equal(h.scaleUpLimit('k', 6, defaults().scaleUp!), 6);
    now = NOW + 16_000;
    assert.equal(h.scaleUpLimit('k', 6, defaults().scaleUp!), 12);
  });

  it('documentation example: Pods 4 / Percent 10 per minute, Max: 80 → 72 → 64', () => {
    let now = NOW;
    const h = new ScalingHistory(300_000, () => now);
    const b: Behavior = { ...defaults(), scaleDown: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 60 }, { type: 'Percent', value: 10, periodSeconds: 60 }] } };
    const first = h.normalizeWithBehaviors('k', b, 80, 10, 1, 100);
    assert.equal(first.desiredReplicas, 72);
    assert.deepEqual(first.scalingLimited, { status: 'True', reason: 'ScaleDownLimit', message: 'the desired replica count is decreasing faster than the maximum scale rate' });
    h.storeScaleEvent('k', b, 80, 72);
    now = NOW + 61_000;
    assert.equal(h.normalizeWithBehaviors('k', b, 72, 10, 1, 100).desiredReplicas, 64, '10 % of 72 is 7.2: 8 pods go');
    now = NOW + 10 * 60_000;
    // with 40 or fewer replicas the Pods policy allows more
    assert.equal(h.scaleDownLimit('k', 30, b.scaleDown!), 26);
  });

  it('selectPolicy Min picks the smaller change; Disabled turns that direction off', () => {
    const h = new ScalingHistory(300_000, () => NOW);
    const min: Behavior = { ...defaults(), scaleDown: { stabilizationWindowSeconds: 0, selectPolicy: 'Min', policies: [{ type: 'Pods', value: 4, periodSeconds: 60 }, { type: 'Percent', value: 10, periodSeconds: 60 }] } };
    assert.equal(h.normalizeWithBehaviors('a', min, 80, 10, 1, 100).desiredReplicas, 76);
    const off: Behavior = { ...defaults(), scaleDown: { selectPolicy: 'Disabled', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] } };
    const n = new ScalingHistory(0, () => NOW).normalizeWithBehaviors('b', off, 8, 2, 1, 100);
    assert.equal(n.desiredReplicas, 8);
  });

  it('scale-down stabilization: the controller flag fills an unset window; a set one wins', () => {
    let now = NOW;
    const h = new ScalingHistory(60_000, () => now);
    h.recordInitial('k', 5);
    now = NOW + 30_000;
    const held = h.normalizeWithBehaviors('k', defaults(), 5, 1, 1, 10);
    assert.equal(held.desiredReplicas, 5);
    assert.equal(held.ableToScale.reason, 'ScaleDownStabilized');
    now = NOW + 61_000;
    // the recommendation of 5 is older than 60 s; only the last (1) remains
    assert.equal(h.normalizeWithBehaviors('k', defaults(), 5, 1, 1, 10).desiredReplicas, 1);
    const h2 = new ScalingHistory(60_000, () => now);
    h2.recordInitial('k', 5);
    assert.equal(h2.normalizeWithBehaviors('k', defaults({ stabilizationWindowSeconds: 0 }), 5, 1, 1, 10).desiredReplicas, 1);
  });

  it('scale-up stabilization: the lowest recommendation of the window wins', () => {
    let now = NOW;
    const h = new ScalingHistory(0, () => now);
    const b: Behavior = { ...defaults(), scaleUp: { stabilizationWindowSeconds: 60, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 100, periodSeconds: 15 }] } };
    h.recordInitial('k', 2);
    now = NOW + 10_000;
    const n = h.normalizeWithBehaviors('k', b, 2, 10, 1, 100);
    assert.equal(n.desiredReplicas, 2);
    assert.deepEqual(n.ableToScale, { status: 'True', reason: 'ScaleUpStabilized', message: 'recent recommendations were lower than current one, applying the lowest recent recommendation' });
  });
});
