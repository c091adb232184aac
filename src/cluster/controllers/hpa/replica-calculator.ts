// The HPA's replica calculator (pkg/controller/podautoscaler/replica_calculator.go), pure: given the pods the
// target's selector picks and their metrics, the replica count that brings the average to the target. The
// arithmetic is upstream's to the rounding: utilization is an integer percentage (truncated), the ratio is
// utilization / target, the proposal ceil(ratio × pods); within the tolerance nothing changes; pods without metrics
// count as using 100 % (scale down) or 0 % (scale up), not-yet-ready pods as 0 % on a scale up, and a proposal that
// would reverse direction once they are counted is dropped.

export interface PodMetric {
  /** ms since the epoch */
  timestamp: number;
  windowMs: number;
  /** milli-units (millicores, milli-bytes) */
  value: number;
}

export type PodMetricsInfo = Map<string, PodMetric>;

export interface PodInfo {
  name: string;
  phase?: string;
  deleting: boolean;
  /** status.startTime, ms */
  startTime?: number;
  /** the Ready condition */
  ready?: { status: string; lastTransitionTime: number };
  /** containers counted for requests: regular ones and restartable (sidecar) init containers */
  containers: { name: string; requests: Record<string, string | number> }[];
}

export interface CalculatorConfig {
  /** --horizontal-pod-autoscaler-tolerance (0.1) */
  tolerance: number;
  /** --horizontal-pod-autoscaler-cpu-initialization-period (5 min) */
  cpuInitializationPeriodMs: number;
  /** --horizontal-pod-autoscaler-initial-readiness-delay (30 s) */
  delayOfInitialReadinessStatusMs: number;
  now(): number;
}

export class CalcError extends Error {
  override name = 'CalcError';
}

export interface PodGroups {
  readyPodCount: number;
  unready: Set<string>;
  missing: Set<string>;
  ignored: Set<string>;
}

/** groupPods: deleted and failed pods are ignored; pending and (for CPU) not-yet-ready pods are unready. */
export function groupPods(pods: readonly PodInfo[], metrics: PodMetricsInfo, resource: string, cfg: CalculatorConfig): PodGroups {
  const g: PodGroups = { readyPodCount: 0, unready: new Set(), missing: new Set(), ignored: new Set() };
  const now = cfg.now();
  for (const pod of pods) {
    if (pod.deleting || pod.phase === 'Failed') {
      g.ignored.add(pod.name);
      continue;
    }
    if (pod.phase === 'Pending') {
      g.unready.add(pod.name);
      continue;
    }
    const metric = metrics.get(pod.name);
    if (!metric) {
      g.missing.add(pod.name);
      continue;
    }
    if (resource === 'cpu') {
      let unready: boolean;
      const c = pod.ready;
      if (!c || pod.startTime === undefined) unready = true;
      else if (pod.startTime + cfg.cpuInitializationPeriodMs > now) {
        // still initialising: ignore the sample if the pod is unready or one window has not passed since it turned ready
        unready = c.status === 'False' || metric.timestamp < c.lastTransitionTime + metric.windowMs;
      } else {
        // ignore it if the pod is unready and has never been ready
        unready = c.status === 'False' && pod.startTime + cfg.delayOfInitialReadinessStatusMs > c.lastTransitionTime;
      }
      if (unready) {
        g.unready.add(pod.name);
        continue;
      }
    }
    g.readyPodCount++;
  }
  return g;
}

/** The milli-value of a quantity, rounded up (Quantity.MilliValue). */
export type MilliOf = (q: string | number) => number | undefined;

/** calculateRequests: each pod's request of the resource (sum over containers, or the named container). */
export function calculateRequests(pods: readonly PodInfo[], container: string, resource: string, milliOf: MilliOf): Map<string, number> {
  const out = new Map<string, number>();
  for (const pod of pods) {
    let request = 0;
    let found = container === '';
    for (const c of pod.containers) {
      if (container !== '' && container !== c.name) continue;
      const q = c.requests[resource];
      const m = q === undefined ? undefined : milliOf(q);
      if (m === undefined) throw new CalcError(`missing request for ${resource} in container ${c.name} of Pod ${pod.name}`);
      request += m;
      if (container === c.name) {
        found = true;
        break;
      }
    }
    if (!found) throw new CalcError(`container ${container} not found in Pod ${pod.name}`);
    out.set(pod.name, request);
  }
  return out;
}

/** GetResourceUtilizationRatio: integer utilization percentage (truncated) over the pods with both metric and request. */
export function resourceUtilizationRatio(metrics: PodMetricsInfo, requests: Map<string, number>, targetUtilization: number): { ratio: number; utilization: number; rawAverage: number } {
  let metricsTotal = 0;
  let requestsTotal = 0;
  let entries = 0;
  for (const [name, m] of metrics) {
    const r = requests.get(name);
    if (r === undefined) continue;
    metricsTotal += m.value;
    requestsTotal += r;
    entries++;
  }
  if (requestsTotal === 0) throw new CalcError('no metrics returned matched known pods');
  const utilization = Math.trunc((metricsTotal * 100) / requestsTotal);
  return { ratio: utilization / targetUtilization, utilization, rawAverage: Math.trunc(metricsTotal / entries) };
}

/** GetMetricUsageRatio: average usage over target. */
export function metricUsageRatio(metrics: PodMetricsInfo, targetUsage: number): { ratio: number; usage: number } {
  let total = 0;
  for (const m of metrics.values()) total += m.value;
  const usage = Math.trunc(total / metrics.size);
  return { ratio: usage / targetUsage, usage };
}

const within = (ratio: number, tolerance: number): boolean => Math.abs(1 - ratio) <= tolerance;

/**
 * GetResourceReplicas after the metrics were fetched: the proposal for a utilization target (percent of request).
 * `metrics` is consumed (entries are removed and added as upstream does).
 */
export function resourceReplicas(
  currentReplicas: number,
  targetUtilization: number,
  resource: string,
  container: string,
  metrics: PodMetricsInfo,
  timestamp: number,
  pods: readonly PodInfo[],
  cfg: CalculatorConfig,
  milliOf: MilliOf,
): { replicas: number; utilization: number; rawUtilization: number; timestamp: number } {
  if (pods.length === 0) throw new CalcError('no pods returned by selector while calculating replica count');
  const g = groupPods(pods, metrics, resource, cfg);
  for (const n of g.ignored) metrics.delete(n);
  for (const n of g.unready) metrics.delete(n);
  if (metrics.size === 0) throw new CalcError('did not receive metrics for targeted pods (pods might be unready)');
  const requests = calculateRequests(pods, container, resource, milliOf);
  const first = resourceUtilizationRatio(metrics, requests, targetUtilization);
  const result = (replicas: number) => ({ replicas, utilization: first.utilization, rawUtilization: first.rawAverage, timestamp });
  const scaleUpWithUnready = g.unready.size > 0 && first.ratio > 1;
  if (!scaleUpWithUnready && g.missing.size === 0) {
    if (within(first.ratio, cfg.tolerance)) return result(currentReplicas);
    return result(Math.ceil(first.ratio * g.readyPodCount));
  }
  if (g.missing.size > 0) {
    if (first.ratio < 1) {
      // on a scale-down, missing pods use 100 % of their request (or the target when it is above 100 %)
      const fallback = Math.max(100, targetUtilization);
      for (const n of g.missing) metrics.set(n, { timestamp: 0, windowMs: 0, value: Math.trunc(((requests.get(n) ?? 0) * fallback) / 100) });
    } else if (first.ratio > 1) {
      for (const n of g.missing) metrics.set(n, { timestamp: 0, windowMs: 0, value: 0 });
    }
  }
  if (scaleUpWithUnready) for (const n of g.unready) metrics.set(n, { timestamp: 0, windowMs: 0, value: 0 });
  const again = resourceUtilizationRatio(metrics, requests, targetUtilization);
  if (within(again.ratio, cfg.tolerance) || (first.ratio < 1 && again.ratio > 1) || (first.ratio > 1 && again.ratio < 1)) return result(currentReplicas);
  const proposed = Math.ceil(again.ratio * metrics.size);
  if ((again.ratio < 1 && proposed > currentReplicas) || (again.ratio > 1 && proposed < currentReplicas)) return result(currentReplicas);
  return result(proposed);
}

/** calcPlainMetricReplicas (AverageValue targets of Resource metrics, Pods metrics). `metrics` is consumed. */
export function plainMetricReplicas(
  currentReplicas: number,
  targetUsage: number,
  resource: string,
  metrics: PodMetricsInfo,
  pods: readonly PodInfo[],
  cfg: CalculatorConfig,
): { replicas: number; usage: number } {
  if (pods.length === 0) throw new CalcError('no pods returned by selector while calculating replica count');
  const g = groupPods(pods, metrics, resource, cfg);
  for (const n of g.ignored) metrics.delete(n);
  for (const n of g.unready) metrics.delete(n);
  if (metrics.size === 0) throw new CalcError('did not receive metrics for targeted pods (pods might be unready)');
  const first = metricUsageRatio(metrics, targetUsage);
  const scaleUpWithUnready = g.unready.size > 0 && first.ratio > 1;
  if (!scaleUpWithUnready && g.missing.size === 0) {
    if (within(first.ratio, cfg.tolerance)) return { replicas: currentReplicas, usage: first.usage };
    return { replicas: Math.ceil(first.ratio * g.readyPodCount), usage: first.usage };
  }
  if (g.missing.size > 0) {
    if (first.ratio < 1) for (const n of g.missing) metrics.set(n, { timestamp: 0, windowMs: 0, value: targetUsage });
    else if (first.ratio > 1) for (const n of g.missing) metrics.set(n, { timestamp: 0, windowMs: 0, value: 0 });
  }
  if (scaleUpWithUnready) for (const n of g.unready) metrics.set(n, { timestamp: 0, windowMs: 0, value: 0 });
  const again = metricUsageRatio(metrics, targetUsage);
  if (within(again.ratio, cfg.tolerance) || (first.ratio < 1 && again.ratio > 1) || (first.ratio > 1 && again.ratio < 1)) return { replicas: currentReplicas, usage: first.usage };
  const proposed = Math.ceil(again.ratio * metrics.size);
  if ((again.ratio < 1 && proposed > currentReplicas) || (again.ratio > 1 && proposed < currentReplicas)) return { replicas: currentReplicas, usage: first.usage };
  return { replicas: proposed, usage: first.usage };
}
