// Turning a metric proposal into the replica count to set (pkg/controller/podautoscaler/horizontal.go), pure with an
// injected clock: the stabilization windows over recent recommendations, the min/max bounds, and the scale rate
// limits — without `behavior` the legacy rule (at most max(2 × current, 4)) and a scale-down window given by
// --horizontal-pod-autoscaler-downscale-stabilization; with it the scaleUp/scaleDown rules (stabilizationWindowSeconds,
// Pods/Percent policies over periodSeconds, selectPolicy Max/Min/Disabled) against the scale events this controller
// made. Each step reports the AbleToScale / ScalingLimited reasons and messages upstream sets.

export interface ScalingPolicy {
  type: 'Pods' | 'Percent';
  value: number;
  periodSeconds: number;
}

export interface ScalingRules {
  stabilizationWindowSeconds?: number;
  selectPolicy?: 'Max' | 'Min' | 'Disabled';
  policies?: ScalingPolicy[];
}

export interface Behavior {
  scaleUp?: ScalingRules;
  scaleDown?: ScalingRules;
}

export interface ConditionUpdate {
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface Normalized {
  desiredReplicas: number;
  ableToScale: ConditionUpdate;
  scalingLimited: ConditionUpdate;
}

interface Recommendation {
  recommendation: number;
  timestamp: number;
}

interface ScaleEvent {
  replicaChange: number;
  timestamp: number;
  outdated: boolean;
}

const SCALE_UP_LIMIT_FACTOR = 2;
const SCALE_UP_LIMIT_MINIMUM = 4;
const INT32_MAX = 2 ** 31 - 1;
const INT32_MIN = -(2 ** 31);

const READY: ConditionUpdate = { status: 'True', reason: 'ReadyForNewScale', message: 'recommended size matches current size' };

/** What the controller remembers per HPA between syncs (lost on restart, as upstream's). */
export class ScalingHistory {
  private readonly recommendations = new Map<string, Recommendation[]>();
  private readonly scaleUpEvents = new Map<string, ScaleEvent[]>();
  private readonly scaleDownEvents = new Map<string, ScaleEvent[]>();

  constructor(
    /** --horizontal-pod-autoscaler-downscale-stabilization */
    private readonly downscaleStabilisationWindowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  forget(key: string): void {
    this.recommendations.delete(key);
    this.scaleUpEvents.delete(key);
    this.scaleDownEvents.delete(key);
  }

  /** recordInitialRecommendation: the current size is the first recommendation. */
  recordInitial(key: string, currentReplicas: number): void {
    if (!this.recommendations.has(key)) this.recommendations.set(key, [{ recommendation: currentReplicas, timestamp: this.now() }]);
  }

  /** normalizeDesiredReplicas (no behavior). */
  normalize(key: string, currentReplicas: number, prenormalized: number, minReplicas: number, maxReplicas: number): Normalized {
    const stabilized = this.stabilize(key, prenormalized);
    const ableToScale: ConditionUpdate =
      stabilized !== prenormalized ? { status: 'True', reason: 'ScaleDownStabilized', message: 'recent recommendations were higher than current one, applying the highest recent recommendation' } : READY;
    const [desired, reason, message] = convertDesiredReplicasWithRules(currentReplicas, stabilized, minReplicas, maxReplicas);
    return { desiredReplicas: desired, ableToScale, scalingLimited: { status: desired === stabilized ? 'False' : 'True', reason, message } };
  }

  private stabilize(key: string, prenormalized: number): number {
    let max = prenormalized;
    let oldIndex = -1;
    const now = this.now();
    const cutoff = now - this.downscaleStabilisationWindowMs;
    const recs = this.recommendations.get(key) ?? [];
    recs.forEach((r, i) => {
      if (r.timestamp < cutoff) oldIndex = i;
      else if (r.recommendation > max) max = r.recommendation;
    });
    const rec = { recommendation: prenormalized, timestamp: now };
    if (oldIndex >= 0) recs[oldIndex] = rec;
    else recs.push(rec);
    this.recommendations.set(key, recs);
    return max;
  }

  /** normalizeDesiredReplicasWithBehaviors; `behavior` is the defaulted spec.behavior. */
  normalizeWithBehaviors(key: string, behavior: Behavior, currentReplicas: number, prenormalized: number, minReplicas: number, maxReplicas: number): Normalized {
    const scaleUp = behavior.scaleUp ?? {};
    // maybeInitScaleDownStabilizationWindow
    const scaleDown: ScalingRules = { ...(behavior.scaleDown ?? {}) };
    if (scaleDown.stabilizationWindowSeconds === undefined) scaleDown.stabilizationWindowSeconds = Math.trunc(this.downscaleStabilisationWindowMs / 1000);
    const { recommendation, reason, message } = this.stabilizeWithBehaviors(key, scaleUp, scaleDown, currentReplicas, prenormalized);
    const ableToScale: ConditionUpdate = recommendation !== prenormalized ? { status: 'True', reason, message } : READY;
    const [desired, lreason, lmessage] = this.convertWithBehaviorRate(key, scaleUp, scaleDown, currentReplicas, recommendation, minReplicas, maxReplicas);
    return { desiredReplicas: desired, ableToScale, scalingLimited: { status: desired === recommendation ? 'False' : 'True', reason: lreason, message: lmessage } };
  }

  private stabilizeWithBehaviors(key: string, up: ScalingRules, down: ScalingRules, currentReplicas: number, desired: number): { recommendation: number; reason: string; message: string } {
    const now = this.now();
    const upCutoff = now - (up.stabilizationWindowSeconds ?? 0) * 1000;
    const downCutoff = now - (down.stabilizationWindowSeconds ?? 0) * 1000;
    let upRecommendation = desired;
    let downRecommendation = desired;
    let oldIndex = -1;
    const recs = this.recommendations.get(key) ?? [];
    recs.forEach((r, i) => {
      if (r.timestamp > upCutoff) upRecommendation = Math.min(r.recommendation, upRecommendation);
      if (r.timestamp > downCutoff) downRecommendation = Math.max(r.recommendation, downRecommendation);
      if (r.timestamp < upCutoff && r.timestamp < downCutoff) oldIndex = i;
    });
    let recommendation = currentReplicas;
    if (recommendation < upRecommendation) recommendation = upRecommendation;
    if (recommendation > downRecommendation) recommendation = downRecommendation;
    const rec = { recommendation: desired, timestamp: this.now() };
    if (oldIndex >= 0) recs[oldIndex] = rec;
    else recs.push(rec);
    this.recommendations.set(key, recs);
    return desired >= currentReplicas
      ? { recommendation, reason: 'ScaleUpStabilized', message: 'recent recommendations were lower than current one, applying the lowest recent recommendation' }
      : { recommendation, reason: 'ScaleDownStabilized', message: 'recent recommendations were higher than current one, applying the highest recent recommendation' };
  }

  private changeInPeriod(periodSeconds: number, events: readonly ScaleEvent[]): number {
    const cutoff = this.now() - periodSeconds * 1000;
    let n = 0;
    for (const e of events) if (e.timestamp > cutoff) n += e.replicaChange;
    return n;
  }

  /** calculateScaleUpLimitWithScalingRules */
  scaleUpLimit(key: string, currentReplicas: number, rules: ScalingRules): number {
    const up = this.scaleUpEvents.get(key) ?? [];
    const down = this.scaleDownEvents.get(key) ?? [];
    const select = rules.selectPolicy ?? 'Max';
    if (select === 'Disabled') return currentReplicas;
    let result = select === 'Min' ? INT32_MAX : INT32_MIN;
    for (const p of rules.policies ?? []) {
      const periodStart = currentReplicas - this.changeInPeriod(p.periodSeconds, up) + this.changeInPeriod(p.periodSeconds, down);
      const proposed = p.type === 'Pods' ? periodStart + p.value : Math.ceil(periodStart * (1 + p.value / 100));
      result = select === 'Min' ? Math.min(result, proposed) : Math.max(result, proposed);
    }
    return result;
  }

  /** calculateScaleDownLimitWithBehaviors */
  scaleDownLimit(key: string, currentReplicas: number, rules: ScalingRules): number {
    const up = this.scaleUpEvents.get(key) ?? [];
    const down = this.scaleDownEvents.get(key) ?? [];
    const select = rules.selectPolicy ?? 'Max';
    if (select === 'Disabled') return currentReplicas;
    let result = select === 'Min' ? INT32_MIN : INT32_MAX;
    for (const p of rules.policies ?? []) {
      const periodStart = currentReplicas - this.changeInPeriod(p.periodSeconds, up) + this.changeInPeriod(p.periodSeconds, down);
      const proposed = p.type === 'Pods' ? periodStart - p.value : Math.trunc(periodStart * (1 - p.value / 100));
      result = select === 'Min' ? Math.max(result, proposed) : Math.min(result, proposed);
    }
    return result;
  }

  private convertWithBehaviorRate(key: string, up: ScalingRules, down: ScalingRules, current: number, desired: number, min: number, max: number): [number, string, string] {
    if (desired > current) {
      let limit = this.scaleUpLimit(key, current, up);
      if (limit < current) limit = current;
      let maximum = max;
      let reason: string;
      let message: string;
      if (maximum > limit) {
        maximum = limit;
        reason = 'ScaleUpLimit';
        message = 'the desired replica count is increasing faster than the maximum scale rate';
      } else {
        reason = 'TooManyReplicas';
        message = 'the desired replica count is more than the maximum replica count';
      }
      if (desired > maximum) return [maximum, reason, message];
    } else if (desired < current) {
      let limit = this.scaleDownLimit(key, current, down);
      if (limit > current) limit = current;
      let minimum = min;
      let reason: string;
      let message: string;
      if (minimum < limit) {
        minimum = limit;
        reason = 'ScaleDownLimit';
        message = 'the desired replica count is decreasing faster than the maximum scale rate';
      } else {
        reason = 'TooFewReplicas';
        message = 'the desired replica count is less than the minimum replica count';
      }
      if (desired < minimum) return [minimum, reason, message];
    }
    return [desired, 'DesiredWithinRange', 'the desired count is within the acceptable range'];
  }

  /** storeScaleEvent: remembered only for HPAs with a behavior (the only ones whose limits read them). */
  storeScaleEvent(key: string, behavior: Behavior | undefined, prev: number, next: number): void {
    if (!behavior) return;
    const upward = next > prev;
    const rules = (upward ? behavior.scaleUp : behavior.scaleDown) ?? {};
    const longest = Math.max(0, ...(rules.policies ?? []).map((p) => p.periodSeconds));
    const map = upward ? this.scaleUpEvents : this.scaleDownEvents;
    const events = map.get(key) ?? [];
    const cutoff = this.now() - longest * 1000;
    let oldIndex = -1;
    events.forEach((e, i) => {
      if (e.timestamp < cutoff) e.outdated = true;
      if (e.outdated) oldIndex = i;
    });
    const ev: ScaleEvent = { replicaChange: Math.abs(next - prev), timestamp: this.now(), outdated: false };
    if (oldIndex >= 0) events[oldIndex] = ev;
    else events.push(ev);
    map.set(key, events);
  }
}

/** convertDesiredReplicasWithRules: [min, max] and the legacy rate limit max(2 × current, 4). */
export function convertDesiredReplicasWithRules(current: number, desired: number, min: number, max: number): [number, string, string] {
  const scaleUpLimit = Math.trunc(Math.max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM));
  let maximum: number;
  let reason: string;
  let message: string;
  if (max > scaleUpLimit) {
    maximum = scaleUpLimit;
    reason = 'ScaleUpLimit';
    message = 'the desired replica count is increasing faster than the maximum scale rate';
  } else {
    maximum = max;
    reason = 'TooManyReplicas';
    message = 'the desired replica count is more than the maximum replica count';
  }
  if (desired < min) return [min, 'TooFewReplicas', 'the desired replica count is less than the minimum replica count'];
  if (desired > maximum) return [maximum, reason, message];
  return [desired, 'DesiredWithinRange', 'the desired count is within the acceptable range'];
}
