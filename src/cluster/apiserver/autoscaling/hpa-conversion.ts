// autoscaling/v1 <-> autoscaling/v2 HorizontalPodAutoscalers, as kube-apiserver converts them through its internal
// type (pkg/apis/autoscaling/v1/conversion.go). HPAs are stored as v2. A v1 view has the CPU utilization target and
// current value in its own fields; everything v1 cannot hold travels in the `autoscaling.alpha.kubernetes.io/*`
// annotations (other metrics and their statuses in v1's metric shapes, the conditions, and the behavior as the JSON of
// the internal Go type, hence its capitalized field names), and comes back from them when a v1 object is written.
import { clone, isObj, obj, str, type Obj } from '../util.js';

export const METRIC_SPECS_ANNOTATION = 'autoscaling.alpha.kubernetes.io/metrics';
export const METRIC_STATUSES_ANNOTATION = 'autoscaling.alpha.kubernetes.io/current-metrics';
export const CONDITIONS_ANNOTATION = 'autoscaling.alpha.kubernetes.io/conditions';
export const BEHAVIOR_ANNOTATION = 'autoscaling.alpha.kubernetes.io/behavior';
const ROUND_TRIP = [METRIC_SPECS_ANNOTATION, METRIC_STATUSES_ANNOTATION, CONDITIONS_ANNOTATION, BEHAVIOR_ANNOTATION];

/** autoscaling.DefaultCPUUtilization */
export const DEFAULT_CPU_UTILIZATION = 80;

const defined = (o: Obj): Obj => {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
};

/** A resource.Quantity field that is not a pointer: "0" when unset. */
const q0 = (v: unknown): unknown => v ?? '0';

const isCpuUtilization = (m: Obj): boolean => m.type === 'Resource' && isObj(m.resource) && m.resource.name === 'cpu' && obj(m.resource.target).averageUtilization !== undefined;

function dropRoundTrip(annotations: unknown): Obj | undefined {
  if (!isObj(annotations)) return undefined;
  const out: Obj = {};
  for (const [k, v] of Object.entries(annotations)) if (!ROUND_TRIP.includes(k)) out[k] = v;
  return out;
}

// ---- metric specs and statuses: v2 <-> v1 shapes ----

function objectRef(r: unknown): Obj {
  const o = obj(r);
  return defined({ kind: o.kind, name: o.name, apiVersion: o.apiVersion });
}

export function metricSpecToV1(m: Obj): Obj {
  const out: Obj = { type: m.type };
  const t = (src: unknown): Obj => obj(obj(src).target);
  switch (m.type) {
    case 'Object': {
      const s = obj(m.object);
      out.object = defined({ target: objectRef(s.describedObject), metricName: obj(s.metric).name ?? '', targetValue: q0(t(s).value), selector: obj(s.metric).selector, averageValue: t(s).averageValue });
      break;
    }
    case 'Pods': {
      const s = obj(m.pods);
      out.pods = defined({ metricName: obj(s.metric).name ?? '', targetAverageValue: q0(t(s).averageValue), selector: obj(s.metric).selector });
      break;
    }
    case 'Resource': {
      const s = obj(m.resource);
      out.resource = defined({ name: s.name, targetAverageUtilization: t(s).averageUtilization, targetAverageValue: t(s).averageValue });
      break;
    }
    case 'ContainerResource': {
      const s = obj(m.containerResource);
      out.containerResource = defined({ name: s.name, targetAverageUtilization: t(s).averageUtilization, targetAverageValue: t(s).averageValue, container: s.container ?? '' });
      break;
    }
    case 'External': {
      const s = obj(m.external);
      out.external = defined({ metricName: obj(s.metric).name ?? '', metricSelector: obj(s.metric).selector, targetValue: t(s).value, targetAverageValue: t(s).averageValue });
      break;
    }
  }
  return out;
}

export function metricSpecFromV1(m: Obj): Obj {
  const out: Obj = { type: m.type };
  switch (m.type) {
    case 'Object': {
      const s = obj(m.object);
      const avg = s.averageValue;
      out.object = {
        describedObject: objectRef(s.target),
        metric: defined({ name: s.metricName ?? '', selector: s.selector }),
        target: defined({ type: avg === undefined ? 'Value' : 'AverageValue', value: q0(s.targetValue), averageValue: avg }),
      };
      break;
    }
    case 'Pods': {
      const s = obj(m.pods);
      out.pods = { metric: defined({ name: s.metricName ?? '', selector: s.selector }), target: { type: 'AverageValue', averageValue: q0(s.targetAverageValue) } };
      break;
    }
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const s = obj(m[key]);
      const util = s.targetAverageUtilization;
      out[key] = defined({
        name: s.name,
        ...(m.type === 'ContainerResource' ? { container: s.container ?? '' } : {}),
        target: defined({ type: util === undefined ? 'AverageValue' : 'Utilization', averageValue: s.targetAverageValue, averageUtilization: util }),
      });
      break;
    }
    case 'External': {
      const s = obj(m.external);
      const avg = s.targetAverageValue;
      out.external = {
        metric: defined({ name: s.metricName ?? '', selector: s.metricSelector }),
        target: defined({ type: avg === undefined ? 'Value' : 'AverageValue', value: s.targetValue, averageValue: avg }),
      };
      break;
    }
  }
  return out;
}

export function metricStatusToV1(m: Obj): Obj {
  const out: Obj = { type: m.type };
  const cur = (src: unknown): Obj => obj(obj(src).current);
  switch (m.type) {
    case 'Object': {
      const s = obj(m.object);
      out.object = defined({ target: objectRef(s.describedObject), metricName: obj(s.metric).name ?? '', currentValue: q0(cur(s).value), selector: obj(s.metric).selector, averageValue: cur(s).averageValue });
      break;
    }
    case 'Pods': {
      const s = obj(m.pods);
      out.pods = defined({ metricName: obj(s.metric).name ?? '', currentAverageValue: q0(cur(s).averageValue), selector: obj(s.metric).selector });
      break;
    }
    case 'Resource': {
      const s = obj(m.resource);
      out.resource = defined({ name: s.name, currentAverageUtilization: cur(s).averageUtilization, currentAverageValue: q0(cur(s).averageValue) });
      break;
    }
    case 'ContainerResource': {
      const s = obj(m.containerResource);
      out.containerResource = defined({ name: s.name, currentAverageUtilization: cur(s).averageUtilization, currentAverageValue: q0(cur(s).averageValue), container: s.container ?? '' });
      break;
    }
    case 'External': {
      const s = obj(m.external);
      out.external = defined({ metricName: obj(s.metric).name ?? '', metricSelector: obj(s.metric).selector, currentValue: q0(cur(s).value), currentAverageValue: cur(s).averageValue });
      break;
    }
  }
  return out;
}

export function metricStatusFromV1(m: Obj): Obj {
  const out: Obj = { type: m.type };
  switch (m.type) {
    case 'Object': {
      const s = obj(m.object);
      out.object = { metric: defined({ name: s.metricName ?? '', selector: s.selector }), current: defined({ value: q0(s.currentValue), averageValue: s.averageValue }), describedObject: objectRef(s.target) };
      break;
    }
    case 'Pods': {
      const s = obj(m.pods);
      out.pods = { metric: defined({ name: s.metricName ?? '', selector: s.selector }), current: { averageValue: q0(s.currentAverageValue) } };
      break;
    }
    case 'Resource':
    case 'ContainerResource': {
      const key = m.type === 'Resource' ? 'resource' : 'containerResource';
      const s = obj(m[key]);
      out[key] = defined({
        name: s.name,
        ...(m.type === 'ContainerResource' ? { container: s.container ?? '' } : {}),
        current: defined({ averageValue: q0(s.currentAverageValue), averageUtilization: s.currentAverageUtilization }),
      });
      break;
    }
    case 'External': {
      const s = obj(m.external);
      out.external = { metric: defined({ name: s.metricName ?? '', selector: s.metricSelector }), current: defined({ value: q0(s.currentValue), averageValue: s.currentAverageValue }) };
      break;
    }
  }
  return out;
}

// ---- behavior: JSON of the internal Go type (no json tags: Go's field names) ----

function rulesToInternal(r: unknown): Obj | null {
  if (!isObj(r)) return null;
  return {
    StabilizationWindowSeconds: r.stabilizationWindowSeconds ?? null,
    SelectPolicy: r.selectPolicy ?? null,
    Policies: Array.isArray(r.policies) ? r.policies.map((p) => ({ Type: obj(p).type ?? '', Value: obj(p).value ?? 0, PeriodSeconds: obj(p).periodSeconds ?? 0 })) : null,
  };
}

function rulesFromInternal(r: unknown): Obj | undefined {
  if (!isObj(r)) return undefined;
  return defined({
    stabilizationWindowSeconds: r.StabilizationWindowSeconds ?? undefined,
    selectPolicy: r.SelectPolicy ?? undefined,
    policies: Array.isArray(r.Policies) ? r.Policies.map((p) => ({ type: obj(p).Type, value: obj(p).Value, periodSeconds: obj(p).PeriodSeconds })) : undefined,
  });
}

// ---- whole objects ----

/** A stored (v2) HPA as autoscaling/v1 shows it. */
export function hpaV2ToV1(o: Obj): Obj {
  const spec = obj(o.spec);
  const status = obj(o.status);
  const metrics = Array.isArray(spec.metrics) ? spec.metrics.map(obj) : [];
  const current = Array.isArray(status.currentMetrics) ? status.currentMetrics.map(obj) : [];
  const conditions = Array.isArray(status.conditions) ? status.conditions.map(obj) : [];
  const meta: Obj = { ...obj(o.metadata) };
  const annotations = dropRoundTrip(meta.annotations) ?? {};
  const others = metrics.filter((m) => !isCpuUtilization(m));
  if (others.length) annotations[METRIC_SPECS_ANNOTATION] = JSON.stringify(others.map(metricSpecToV1));
  if (current.length) annotations[METRIC_STATUSES_ANNOTATION] = JSON.stringify(current.map(metricStatusToV1));
  if (isObj(spec.behavior)) annotations[BEHAVIOR_ANNOTATION] = JSON.stringify({ ScaleUp: rulesToInternal(spec.behavior.scaleUp), ScaleDown: rulesToInternal(spec.behavior.scaleDown) });
  if (conditions.length)
    annotations[CONDITIONS_ANNOTATION] = JSON.stringify(
      conditions.map((c) => ({ type: c.type, status: c.status, lastTransitionTime: c.lastTransitionTime ?? null, ...defined({ reason: c.reason || undefined, message: c.message || undefined }) })),
    );
  if (Object.keys(annotations).length) meta.annotations = annotations;
  else delete meta.annotations;
  const cpu = metrics.find(isCpuUtilization);
  const cpuNow = current.find((m) => m.type === 'Resource' && obj(m.resource).name === 'cpu' && obj(obj(m.resource).current).averageUtilization !== undefined);
  const v1Status = defined({
    observedGeneration: status.observedGeneration,
    lastScaleTime: status.lastScaleTime,
    currentReplicas: status.currentReplicas ?? 0,
    desiredReplicas: status.desiredReplicas ?? 0,
    currentCPUUtilizationPercentage: cpuNow ? obj(obj(cpuNow.resource).current).averageUtilization : undefined,
  });
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta,
    spec: defined({
      scaleTargetRef: clone(spec.scaleTargetRef),
      minReplicas: spec.minReplicas,
      maxReplicas: spec.maxReplicas,
      targetCPUUtilizationPercentage: cpu ? obj(obj(cpu.resource).target).averageUtilization : undefined,
    }),
    status: v1Status,
  };
}

function parseJsonList(text: unknown): Obj[] | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.map(obj) : undefined;
  } catch {
    return undefined;
  }
}

/** A v1 HPA (from a request) in the stored v2 form; the round-trip annotations are folded back and dropped. */
export function hpaV1ToV2(o: Obj): Obj {
  const spec = obj(o.spec);
  const status = obj(o.status);
  const meta: Obj = { ...obj(o.metadata) };
  const ann = obj(meta.annotations);
  const metrics: Obj[] = [];
  const others = parseJsonList(ann[METRIC_SPECS_ANNOTATION]);
  if (others) metrics.push(...others.map(metricSpecFromV1));
  if (spec.targetCPUUtilizationPercentage !== undefined && spec.targetCPUUtilizationPercentage !== null)
    metrics.push({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: spec.targetCPUUtilizationPercentage } } });
  // v1 had an implicit default in the controller; the conversion makes it explicit once all metrics are known
  if (metrics.length === 0) metrics.push({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: DEFAULT_CPU_UTILIZATION } } });
  let behavior: Obj | undefined;
  if (typeof ann[BEHAVIOR_ANNOTATION] === 'string') {
    try {
      const b = obj(JSON.parse(ann[BEHAVIOR_ANNOTATION]));
      const up = rulesFromInternal(b.ScaleUp);
      const down = rulesFromInternal(b.ScaleDown);
      if (up || down) behavior = defined({ scaleUp: up, scaleDown: down });
    } catch {
      /* ignored, as upstream ignores a malformed annotation */
    }
  }
  let currentMetrics: Obj[] | undefined;
  const cur = parseJsonList(ann[METRIC_STATUSES_ANNOTATION]);
  if (cur) currentMetrics = cur.map(metricStatusFromV1);
  else if (typeof status.currentCPUUtilizationPercentage === 'number')
    currentMetrics = [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: status.currentCPUUtilizationPercentage } } }];
  const conds = parseJsonList(ann[CONDITIONS_ANNOTATION]);
  const annotations = dropRoundTrip(meta.annotations);
  if (annotations && Object.keys(annotations).length) meta.annotations = annotations;
  else delete meta.annotations;
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta,
    spec: defined({ scaleTargetRef: clone(spec.scaleTargetRef), minReplicas: spec.minReplicas, maxReplicas: spec.maxReplicas, metrics, behavior }),
    ...(isObj(o.status)
      ? {
          status: defined({
            observedGeneration: status.observedGeneration,
            lastScaleTime: status.lastScaleTime,
            currentReplicas: status.currentReplicas,
            desiredReplicas: status.desiredReplicas ?? 0,
            currentMetrics,
            conditions: conds?.map((c) => defined({ type: c.type, status: c.status, lastTransitionTime: c.lastTransitionTime ?? undefined, reason: str(c.reason), message: str(c.message) })),
          }),
        }
      : {}),
  };
}
