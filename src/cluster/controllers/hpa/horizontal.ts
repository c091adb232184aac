// The HorizontalPodAutoscaler controller (kube-controller-manager's `horizontalpodautoscaling`): every sync period
// each HPA (autoscaling/v2) reads its target's scale subresource, computes a replica count per metric from the
// resource metrics API and the target's pods, normalizes the largest (stabilization, min/max, rate limits), writes the
// new scale when it changed, and records status (currentReplicas, desiredReplicas, currentMetrics, lastScaleTime,
// conditions AbleToScale / ScalingActive / ScalingLimited) and events as upstream words them. Custom and external
// metrics (custom.metrics.k8s.io, external.metrics.k8s.io) are not served in the lab: those metrics fail the way they
// fail on a cluster without an adapter.
import type { Informer } from '../../../k8s/informers.js';
import { errorText, type KubeClient } from '../../../k8s/client.js';
import type { EventSink } from '../../../k8s/events.js';
import type { Resource } from '../../../k8s/resources.js';
import { matchLabels, parseLabelSelector, type LabelSelector } from '../../apiserver/selectors.js';
import { formatMilli, milliOf } from '../../common/quantity.js';
import { keyOf } from '../../common/pods.js';
import { CR } from '../../common/resources.js';
import { ReconcileLoop, type ReconcileOutcome, type Runnable } from '../../common/runtime.js';
import type { Pod } from '../../common/types.js';
import type { ControllerContext } from '../context.js';
import { ResourceMetricsClient, ScaleClient, clientGoMessage, type Mapping } from './clients.js';
import { ScalingHistory, type ConditionUpdate } from './normalize.js';
import { CalcError, plainMetricReplicas, resourceReplicas, type CalculatorConfig, type PodInfo } from './replica-calculator.js';
import type { HPA, HPACondition, HPAStatus, MetricSpec, MetricStatus, Scale } from './types.js';

export const HPA_RESOURCE: Resource = { group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true };

export interface HPAOptions {
  /** --horizontal-pod-autoscaler-sync-period (15 s) */
  syncPeriodMs: number;
  /** --horizontal-pod-autoscaler-downscale-stabilization (5 min) */
  downscaleStabilizationMs: number;
  /** --horizontal-pod-autoscaler-tolerance (0.1) */
  tolerance: number;
  /** --horizontal-pod-autoscaler-cpu-initialization-period (5 min) */
  cpuInitializationPeriodMs: number;
  /** --horizontal-pod-autoscaler-initial-readiness-delay (30 s) */
  initialReadinessDelayMs: number;
}

export const HPA_DEFAULTS: HPAOptions = {
  syncPeriodMs: 15_000,
  downscaleStabilizationMs: 300_000,
  tolerance: 0.1,
  cpuInitializationPeriodMs: 300_000,
  initialReadinessDelayMs: 30_000,
};

const nowRFC3339 = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** A proposal of one metric, or why there is none (the ScalingActive condition it sets). */
type Proposal = { ok: true; replicas: number; metricName: string; timestamp: number; status: MetricStatus } | { ok: false; error: string; condition: ConditionUpdate };

/** What a pod contributes to the calculation. */
export function podInfo(p: Pod): PodInfo {
  const st = (p.status ?? {}) as { phase?: string; startTime?: string; conditions?: { type: string; status: string; lastTransitionTime?: string }[] };
  const ready = st.conditions?.find((c) => c.type === 'Ready');
  const spec = (p.spec ?? {}) as { containers?: { name: string; resources?: { requests?: Record<string, string> } }[]; initContainers?: { name: string; restartPolicy?: string; resources?: { requests?: Record<string, string> } }[] };
  const containers = [...(spec.containers ?? []), ...(spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')].map((c) => ({ name: c.name, requests: c.resources?.requests ?? {} }));
  return {
    name: p.metadata?.name ?? '',
    ...(st.phase ? { phase: st.phase } : {}),
    deleting: p.metadata?.deletionTimestamp !== undefined,
    ...(st.startTime ? { startTime: Date.parse(st.startTime) } : {}),
    ...(ready ? { ready: { status: ready.status, lastTransitionTime: Date.parse(ready.lastTransitionTime ?? '') || 0 } } : {}),
    containers,
  };
}

/** setConditionInList: the transition time moves only when the status does. */
export function setCondition(conds: HPACondition[] | undefined, type: HPACondition['type'], c: ConditionUpdate): HPACondition[] {
  const list = [...(conds ?? [])];
  const i = list.findIndex((x) => x.type === type);
  const prev = i >= 0 ? list[i]! : undefined;
  const next: HPACondition = { type, status: c.status, lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : nowRFC3339(), reason: c.reason, message: c.message };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export class HorizontalController implements Runnable {
  readonly name = 'horizontalpodautoscaling';
  private readonly hpas: Informer<HPA>;
  private readonly pods: Informer<Pod>;
  private readonly loop: ReconcileLoop;
  private readonly recorder: EventSink;
  private readonly history: ScalingHistory;
  private readonly scales: ScaleClient;
  private readonly metrics: ResourceMetricsClient;
  private readonly calc: CalculatorConfig;
  /** The last selector of each HPA, to find pods that two HPAs would scale. */
  private readonly selectors = new Map<string, LabelSelector>();

  constructor(
    private readonly ctx: ControllerContext,
    private readonly o: HPAOptions = HPA_DEFAULTS,
  ) {
    this.hpas = ctx.informers.get<HPA>(HPA_RESOURCE);
    this.pods = ctx.informers.get<Pod>(CR.pods);
    this.recorder = ctx.recorder('horizontal-pod-autoscaler');
    this.history = new ScalingHistory(o.downscaleStabilizationMs);
    const client: KubeClient = ctx.client;
    this.scales = new ScaleClient(client);
    this.metrics = new ResourceMetricsClient(client);
    this.calc = { tolerance: o.tolerance, cpuInitializationPeriodMs: o.cpuInitializationPeriodMs, delayOfInitialReadinessStatusMs: o.initialReadinessDelayMs, now: Date.now };
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.hpas, this.pods] });
    // upstream's queue adds every HPA with the resync period as its delay: each is looked at once per period
    const enqueue = (h: HPA): void => this.loop.enqueueAfter(keyOf(h), o.syncPeriodMs);
    this.hpas.addHandlers({
      add: enqueue,
      update: (_old, h) => enqueue(h),
      delete: (h) => {
        this.history.forget(keyOf(h));
        this.selectors.delete(keyOf(h));
      },
    });
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    const shared = this.hpas.get(key);
    if (!shared) {
      this.history.forget(key);
      this.selectors.delete(key);
      return;
    }
    try {
      await this.reconcileAutoscaler(clone(shared), key);
    } catch (err) {
      // upstream logs the error (HandleError) and looks again after the period
      this.ctx.log.warn({ controller: this.name, hpa: key, err: errorText(err) }, 'reconcile failed');
    }
    return { requeueAfterMs: this.o.syncPeriodMs };
  }

  private event(hpa: HPA, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.recorder.record(hpa, type, reason, message);
  }

  private async updateStatusIfNeeded(original: HPAStatus | undefined, hpa: HPA): Promise<void> {
    if (JSON.stringify(original ?? null) === JSON.stringify(hpa.status ?? null)) return;
    try {
      await this.ctx.writer.updateStatus(HPA_RESOURCE, hpa);
    } catch (err) {
      this.event(hpa, 'Warning', 'FailedUpdateStatus', clientGoMessage(err, 'update', 'horizontalpodautoscalers.autoscaling'));
      throw new Error(`failed to update status for ${hpa.metadata?.name ?? ''}: ${errorText(err)}`);
    }
  }

  private setStatus(hpa: HPA, currentReplicas: number, desiredReplicas: number, metricStatuses: MetricStatus[] | null, rescale: boolean): void {
    const prev = hpa.status;
    hpa.status = {
      currentReplicas,
      desiredReplicas,
      ...(prev?.lastScaleTime ? { lastScaleTime: prev.lastScaleTime } : {}),
      currentMetrics: metricStatuses,
      ...(prev?.conditions ? { conditions: prev.conditions } : {}),
    };
    if (rescale) hpa.status.lastScaleTime = nowRFC3339();
  }

  private condition(hpa: HPA, type: HPACondition['type'], c: ConditionUpdate): void {
    const st = (hpa.status ??= { desiredReplicas: 0, currentMetrics: null });
    st.conditions = setCondition(st.conditions, type, c);
  }

  private async scaleFor(hpa: HPA): Promise<{ scale: Scale; mapping: Mapping }> {
    const ref = hpa.spec.scaleTargetRef;
    const gv = ref.apiVersion ?? '';
    const parts = gv.split('/');
    if (parts.length > 2 || gv === '' || parts.some((p) => p === '')) throw Object.assign(new Error(`unexpected GroupVersion string: ${gv}`), { stage: 'gv' });
    const group = parts.length === 2 ? parts[0]! : '';
    const mappings = await this.scales.mappings(group, ref.kind);
    let first: unknown;
    for (const m of mappings) {
      try {
        return { scale: await this.scales.get(hpa.metadata?.namespace ?? '', m, ref.name), mapping: m };
      } catch (err) {
        first ??= err;
      }
    }
    throw first ?? new Error('unrecognized resource');
  }

  private async reconcileAutoscaler(hpa: HPA, key: string): Promise<void> {
    const original = clone(hpa.status);
    const ns = hpa.metadata?.namespace ?? '';
    const ref = hpa.spec.scaleTargetRef;
    const reference = `${ref.kind}/${ns}/${ref.name}`;
    let scale: Scale;
    let mapping: Mapping;
    try {
      ({ scale, mapping } = await this.scaleFor(hpa));
    } catch (err) {
      const msg = errorText(err);
      this.event(hpa, 'Warning', 'FailedGetScale', msg);
      this.condition(hpa, 'AbleToScale', { status: 'False', reason: 'FailedGetScale', message: `the HPA controller was unable to get the target's current scale: ${msg}` });
      await this.updateStatusIfNeeded(original, hpa);
      throw new Error(`failed to query scale subresource for ${reference}: ${msg}`);
    }
    this.condition(hpa, 'AbleToScale', { status: 'True', reason: 'SucceededGetScale', message: "the HPA controller was able to get the target's current scale" });
    const currentReplicas = scale.spec?.replicas ?? 0;
    this.history.recordInitial(key, currentReplicas);

    const minReplicas = hpa.spec.minReplicas ?? 1;
    const maxReplicas = hpa.spec.maxReplicas;
    let desiredReplicas = 0;
    let rescaleReason = '';
    let rescale = true;
    let metricStatuses: MetricStatus[] | null = null;

    if (currentReplicas === 0 && minReplicas !== 0) {
      desiredReplicas = 0;
      rescale = false;
      this.condition(hpa, 'ScalingActive', { status: 'False', reason: 'ScalingDisabled', message: 'scaling is disabled since the replica count of the target is zero' });
    } else if (currentReplicas > maxReplicas) {
      rescaleReason = 'Current number of replicas above Spec.MaxReplicas';
      desiredReplicas = maxReplicas;
    } else if (currentReplicas < minReplicas) {
      rescaleReason = 'Current number of replicas below Spec.MinReplicas';
      desiredReplicas = minReplicas;
    } else {
      const r = await this.computeReplicasForMetrics(hpa, scale, hpa.spec.metrics ?? []);
      metricStatuses = r.statuses;
      if (r.error !== undefined && r.replicas === -1) {
        this.setStatus(hpa, currentReplicas, hpa.status?.desiredReplicas ?? 0, metricStatuses, false);
        await this.updateStatusIfNeeded(original, hpa);
        this.event(hpa, 'Warning', 'FailedComputeMetricsReplicas', r.error);
        this.ctx.log.info({ hpa: key, err: r.error }, `failed to compute desired number of replicas based on listed metrics for ${reference}`);
        return;
      }
      let rescaleMetric = '';
      if (r.replicas > desiredReplicas) {
        desiredReplicas = r.replicas;
        rescaleMetric = r.metricName;
      }
      if (desiredReplicas > currentReplicas) rescaleReason = `${rescaleMetric} above target`;
      if (desiredReplicas < currentReplicas) rescaleReason = 'All metrics below target';
      const n = hpa.spec.behavior
        ? this.history.normalizeWithBehaviors(key, hpa.spec.behavior, currentReplicas, desiredReplicas, minReplicas, maxReplicas)
        : this.history.normalize(key, currentReplicas, desiredReplicas, minReplicas, maxReplicas);
      this.condition(hpa, 'AbleToScale', n.ableToScale);
      this.condition(hpa, 'ScalingLimited', n.scalingLimited);
      desiredReplicas = n.desiredReplicas;
      rescale = desiredReplicas !== currentReplicas;
    }

    if (rescale) {
      try {
        await this.scales.update(ns, mapping, { ...scale, spec: { ...scale.spec, replicas: desiredReplicas } });
      } catch (err) {
        const msg = errorText(err);
        this.event(hpa, 'Warning', 'FailedRescale', `New size: ${desiredReplicas}; reason: ${rescaleReason}; error: ${msg}`);
        this.condition(hpa, 'AbleToScale', { status: 'False', reason: 'FailedUpdateScale', message: `the HPA controller was unable to update the target scale: ${msg}` });
        this.setStatus(hpa, currentReplicas, hpa.status?.desiredReplicas ?? 0, metricStatuses, false);
        await this.updateStatusIfNeeded(original, hpa);
        throw new Error(`failed to rescale ${reference}: ${msg}`);
      }
      this.condition(hpa, 'AbleToScale', { status: 'True', reason: 'SucceededRescale', message: `the HPA controller was able to update the target scale to ${desiredReplicas}` });
      this.event(hpa, 'Normal', 'SuccessfulRescale', `New size: ${desiredReplicas}; reason: ${rescaleReason}`);
      this.history.storeScaleEvent(key, hpa.spec.behavior, currentReplicas, desiredReplicas);
      this.ctx.log.info({ hpa: key, currentReplicas, desiredReplicas, reason: rescaleReason }, 'Successfully rescaled');
    } else {
      desiredReplicas = currentReplicas;
    }
    this.setStatus(hpa, currentReplicas, desiredReplicas, metricStatuses, rescale);
    await this.updateStatusIfNeeded(original, hpa);
  }

  /** validateAndParseSelector: the scale's selector must be there, parse, and select pods no other HPA selects. */
  private selectorFor(hpa: HPA, selector: string | undefined): { selector: string; parsed: LabelSelector } | { error: string } {
    const key = keyOf(hpa);
    if (!selector) {
      this.event(hpa, 'Warning', 'SelectorRequired', 'selector is required');
      this.condition(hpa, 'ScalingActive', { status: 'False', reason: 'InvalidSelector', message: "the HPA target's scale is missing a selector" });
      return { error: 'selector is required' };
    }
    let parsed: LabelSelector;
    try {
      parsed = parseLabelSelector(selector);
    } catch (err) {
      const msg = `couldn't convert selector into a corresponding internal selector object: ${errorText(err)}`;
      this.event(hpa, 'Warning', 'InvalidSelector', msg);
      this.condition(hpa, 'ScalingActive', { status: 'False', reason: 'InvalidSelector', message: msg });
      return { error: msg };
    }
    this.selectors.set(key, parsed);
    const ns = hpa.metadata?.namespace ?? '';
    const pods = this.podsIn(ns, parsed);
    const owners = new Set<string>();
    for (const [other, sel] of this.selectors) {
      if (!other.startsWith(`${ns}/`) || !this.hpas.get(other)) continue;
      if (pods.some((p) => matchLabels(sel, p.metadata?.labels))) owners.add(other);
    }
    if (owners.size > 1) {
      const list = [...owners].sort().map((k) => `${k.split('/')[0]}/${k.split('/')[1]}`);
      const msg = `pods by selector ${selector} are controlled by multiple HPAs: [${list.join(' ')}]`;
      this.event(hpa, 'Warning', 'AmbiguousSelector', msg);
      this.condition(hpa, 'ScalingActive', { status: 'False', reason: 'AmbiguousSelector', message: msg });
      return { error: msg };
    }
    return { selector, parsed };
  }

  private podsIn(ns: string, sel: LabelSelector): Pod[] {
    return this.pods.list().filter((p) => p.metadata?.namespace === ns && matchLabels(sel, p.metadata?.labels));
  }

  private async computeReplicasForMetrics(hpa: HPA, scale: Scale, specs: MetricSpec[]): Promise<{ replicas: number; metricName: string; statuses: MetricStatus[] | null; error?: string }> {
    const sel = this.selectorFor(hpa, scale.status?.selector);
    if ('error' in sel) return { replicas: -1, metricName: '', statuses: null, error: sel.error };
    const specReplicas = scale.spec?.replicas ?? 0;
    const statuses: MetricStatus[] = specs.map(() => ({ type: '' }));
    let replicas = 0;
    let metricName = '';
    let invalid = 0;
    let firstError: string | undefined;
    let firstCondition: ConditionUpdate | undefined;
    for (let i = 0; i < specs.length; i++) {
      const p = await this.computeReplicasForMetric(hpa, specs[i]!, specReplicas, sel);
      if (!p.ok) {
        if (invalid === 0) {
          firstError = p.error;
          firstCondition = p.condition;
        }
        invalid++;
        continue;
      }
      statuses[i] = p.status;
      if (replicas === 0 || p.replicas > replicas) {
        replicas = p.replicas;
        metricName = p.metricName;
      }
    }
    const error = firstError !== undefined ? `invalid metrics (${invalid} invalid out of ${specs.length}), first error is: ${firstError}` : undefined;
    if (invalid >= specs.length || (invalid > 0 && replicas < specReplicas)) {
      if (firstCondition) this.condition(hpa, 'ScalingActive', firstCondition);
      return { replicas: -1, metricName: '', statuses, ...(error !== undefined ? { error } : {}) };
    }
    this.condition(hpa, 'ScalingActive', { status: 'True', reason: 'ValidMetricFound', message: `the HPA was able to successfully calculate a replica count from ${metricName}` });
    return { replicas, metricName, statuses, ...(error !== undefined ? { error } : {}) };
  }

  /** getUnableComputeReplicaCountCondition: an event and the ScalingActive=False condition. */
  private unable(hpa: HPA, reason: string, err: string): ConditionUpdate {
    this.event(hpa, 'Warning', reason, err);
    return { status: 'False', reason, message: `the HPA was unable to compute the replica count: ${err}` };
  }

  private async computeReplicasForMetric(hpa: HPA, spec: MetricSpec, specReplicas: number, sel: { selector: string; parsed: LabelSelector }): Promise<Proposal> {
    switch (spec.type) {
      case 'Resource':
      case 'ContainerResource': {
        const src = spec.type === 'Resource' ? spec.resource : spec.containerResource;
        const container = spec.type === 'ContainerResource' ? (spec.containerResource?.container ?? '') : '';
        const reason = spec.type === 'Resource' ? 'FailedGetResourceMetric' : 'FailedGetContainerResourceMetric';
        const wrap = spec.type === 'Resource' ? `failed to get ${src?.name ?? ''} resource metric value` : `failed to get ${container} container metric value`;
        try {
          const r = await this.resourceProposal(hpa, src?.name ?? '', container, src?.target ?? {}, specReplicas, sel, spec.type);
          const status: MetricStatus =
            spec.type === 'Resource'
              ? { type: 'Resource', resource: { name: src?.name ?? '', current: r.current } }
              : { type: 'ContainerResource', containerResource: { name: src?.name ?? '', container, current: r.current } };
          return { ok: true, replicas: r.replicas, metricName: r.metricName, timestamp: r.timestamp, status };
        } catch (err) {
          const msg = errorText(err);
          return { ok: false, error: `${wrap}: ${msg}`, condition: this.unable(hpa, reason, msg) };
        }
      }
      case 'Pods':
        return this.unavailableCustom(hpa, 'FailedGetPodsMetric', 'failed to get pods metric value', `unable to get metric ${spec.pods?.metric.name ?? ''}`, 'custom.metrics.k8s.io');
      case 'Object':
        return this.unavailableCustom(
          hpa,
          'FailedGetObjectMetric',
          'failed to get object metric value',
          `unable to get metric ${spec.object?.metric.name ?? ''}: ${spec.object?.describedObject.kind ?? ''} on ${hpa.metadata?.namespace ?? ''} ${spec.object?.describedObject.name ?? ''}`,
          'custom.metrics.k8s.io',
        );
      case 'External':
        return this.unavailableCustom(hpa, 'FailedGetExternalMetric', `failed to get ${spec.external?.metric.name ?? ''} external metric value`, `unable to get external metric ${hpa.metadata?.namespace ?? ''}/${spec.external?.metric.name ?? ''}/nil`, 'external.metrics.k8s.io');
      default: {
        const msg = `unknown metric source type "${String((spec as { type?: string }).type)}"`;
        return { ok: false, error: msg, condition: this.unable(hpa, 'InvalidMetricSourceType', msg) };
      }
    }
  }

  /** Custom and external metrics need an adapter API the lab does not run: ask for it, and fail as upstream does. */
  private async unavailableCustom(hpa: HPA, reason: string, wrap: string, what: string, group: string): Promise<Proposal> {
    let detail: string;
    try {
      await this.ctx.client.get(`/apis/${group}`);
      detail = `no adapter in this lab answers ${group}`;
    } catch (err) {
      detail = clientGoMessage(err, 'get', group);
    }
    const msg = `${what}: unable to fetch metrics from ${group === 'external.metrics.k8s.io' ? 'external' : 'custom'} metrics API: ${detail}`;
    return { ok: false, error: `${wrap}: ${msg}`, condition: this.unable(hpa, reason, msg) };
  }

  /** computeStatusForResourceMetricGeneric */
  private async resourceProposal(
    hpa: HPA,
    resource: string,
    container: string,
    target: { averageValue?: string; averageUtilization?: number },
    currentReplicas: number,
    sel: { selector: string; parsed: LabelSelector },
    type: 'Resource' | 'ContainerResource',
  ): Promise<{ replicas: number; metricName: string; timestamp: number; current: { averageValue: string; averageUtilization?: number } }> {
    const ns = hpa.metadata?.namespace ?? '';
    const pods = (): PodInfo[] => this.podsIn(ns, sel.parsed).map(podInfo);
    if (target.averageValue !== undefined) {
      const targetMilli = Number(milliOf(target.averageValue) ?? 0);
      let fetched;
      try {
        fetched = await this.metrics.getResourceMetric(resource, ns, sel.selector, container);
      } catch (err) {
        throw new Error(`failed to get ${resource} usage: unable to get metrics for resource ${resource}: ${errorText(err)}`);
      }
      try {
        const r = plainMetricReplicas(currentReplicas, targetMilli, resource, fetched.metrics, pods(), this.calc);
        return { replicas: r.replicas, metricName: `${resource} resource`, timestamp: fetched.timestamp, current: { averageValue: formatMilli(r.usage) } };
      } catch (err) {
        throw new Error(`failed to get ${resource} usage: ${errorText(err)}`);
      }
    }
    if (target.averageUtilization === undefined) throw new Error('invalid resource metric source: neither an average utilization target nor an average value (usage) target was set');
    let fetched;
    try {
      fetched = await this.metrics.getResourceMetric(resource, ns, sel.selector, container);
    } catch (err) {
      throw new Error(`failed to get ${resource} utilization: unable to get metrics for resource ${resource}: ${errorText(err)}`);
    }
    try {
      const r = resourceReplicas(currentReplicas, target.averageUtilization, resource, container, fetched.metrics, fetched.timestamp, pods(), this.calc, (q) => {
        const m = milliOf(q);
        return m === undefined ? undefined : Number(m);
      });
      return {
        replicas: r.replicas,
        metricName: type === 'Resource' ? `${resource} resource utilization (percentage of request)` : `${resource} container resource utilization (percentage of request)`,
        timestamp: r.timestamp,
        current: { averageValue: formatMilli(r.rawUtilization), averageUtilization: r.utilization },
      };
    } catch (err) {
      if (err instanceof CalcError || err instanceof Error) throw new Error(`failed to get ${resource} utilization: ${err.message}`);
      throw err;
    }
  }
}
