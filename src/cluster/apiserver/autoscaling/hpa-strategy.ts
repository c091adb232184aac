// HorizontalPodAutoscaler (stored as autoscaling/v2): defaults and validation as kube-apiserver applies them
// (pkg/apis/autoscaling/v2/defaults.go, pkg/apis/autoscaling/validation), the status every v2 read shows, and the
// server-side table of `kubectl get hpa` (pkg/printers/internalversion: REFERENCE, TARGETS, MINPODS, MAXPODS,
// REPLICAS).
import type { FieldError } from '../errors.js';
import { formatQuantity, parseQuantity, QuantityError, type Quantity } from '../../common/quantity.js';
import { isObj, obj, str, type Obj } from '../util.js';
import { DEFAULT_CPU_UTILIZATION, hpaV1ToV2 } from './hpa-conversion.js';

const METRIC_TYPES = ['ContainerResource', 'External', 'Object', 'Pods', 'Resource'];
const MAX_STABILIZATION_WINDOW_SECONDS = 3600;
const MAX_PERIOD_SECONDS = 1800;

const scaleUpDefaults = (): Obj => ({
  stabilizationWindowSeconds: 0,
  selectPolicy: 'Max',
  policies: [
    { type: 'Pods', value: 4, periodSeconds: 15 },
    { type: 'Percent', value: 100, periodSeconds: 15 },
  ],
});
// stabilizationWindowSeconds stays unset: the controller's --horizontal-pod-autoscaler-downscale-stabilization fills it
const scaleDownDefaults = (): Obj => ({ selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] });

function fillRules(given: unknown, defaults: Obj): Obj {
  if (!isObj(given)) return defaults;
  const out: Obj = { ...defaults };
  if (given.selectPolicy !== undefined && given.selectPolicy !== null) out.selectPolicy = given.selectPolicy;
  if (given.stabilizationWindowSeconds !== undefined && given.stabilizationWindowSeconds !== null) out.stabilizationWindowSeconds = given.stabilizationWindowSeconds;
  if (given.policies !== undefined && given.policies !== null) out.policies = given.policies;
  return out;
}

/** Quantities decode into resource.Quantity and encode back in canonical form (`0.5` → `500m`). */
function canonical(v: unknown): unknown {
  if (typeof v !== 'string' && typeof v !== 'number') return v;
  try {
    return formatQuantity(parseQuantity(v));
  } catch {
    return v;
  }
}

function canonicalTarget(t: unknown): void {
  if (!isObj(t)) return;
  for (const k of ['value', 'averageValue']) if (t[k] !== undefined) t[k] = canonical(t[k]);
}

/** SetDefaults_HorizontalPodAutoscaler (v2), plus canonical quantities. Mutates the object. */
export function defaultHPA(o: Obj): void {
  const spec = isObj(o.spec) ? o.spec : (o.spec = {});
  if (spec.minReplicas === undefined || spec.minReplicas === null) spec.minReplicas = 1;
  if (!Array.isArray(spec.metrics) || spec.metrics.length === 0)
    spec.metrics = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: DEFAULT_CPU_UTILIZATION } } }];
  for (const m of spec.metrics as unknown[]) {
    if (!isObj(m)) continue;
    for (const k of ['object', 'pods', 'resource', 'containerResource', 'external']) if (isObj(m[k])) canonicalTarget((m[k] as Obj).target);
  }
  if (isObj(spec.behavior)) {
    spec.behavior.scaleUp = fillRules(spec.behavior.scaleUp, scaleUpDefaults());
    spec.behavior.scaleDown = fillRules(spec.behavior.scaleDown, scaleDownDefaults());
  }
}

/** The status every read of a v2 HPA shows: `desiredReplicas` and `currentMetrics` are never omitted. */
export function normalizeHPAStatus(o: Obj): void {
  const st = isObj(o.status) ? o.status : (o.status = {});
  if (st.desiredReplicas === undefined) st.desiredReplicas = 0;
  if (st.currentMetrics === undefined) st.currentMetrics = null;
}

// ---- validation (pkg/apis/autoscaling/validation) ----

/** pathvalidation.IsValidPathSegmentName */
function pathSegmentProblems(name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`];
  const out: string[] = [];
  for (const bad of ['/', '%']) if (name.includes(bad)) out.push(`may not contain '${bad}'`);
  return out;
}

function quantitySign(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  try {
    const q: Quantity = parseQuantity(v as string);
    return q.mantissa > 0n ? 1 : q.mantissa < 0n ? -1 : 0;
  } catch (e) {
    if (e instanceof QuantityError) return 0;
    throw e;
  }
}

function validateTarget(t: Obj, path: string, errs: FieldError[]): void {
  if (!t.type) errs.push({ type: 'Required', field: `${path}.type`, detail: 'must specify a metric target type' });
  if (t.type !== 'Utilization' && t.type !== 'Value' && t.type !== 'AverageValue')
    errs.push({ type: 'Invalid', field: `${path}.type`, value: t.type ?? '', detail: 'must be either Utilization, Value, or AverageValue' });
  if (t.value !== undefined && quantitySign(t.value) !== 1) errs.push({ type: 'Invalid', field: `${path}.value`, value: t.value, detail: 'must be positive' });
  if (t.averageValue !== undefined && quantitySign(t.averageValue) !== 1) errs.push({ type: 'Invalid', field: `${path}.averageValue`, value: t.averageValue, detail: 'must be positive' });
  if (t.averageUtilization !== undefined && !(typeof t.averageUtilization === 'number' && t.averageUtilization >= 1))
    errs.push({ type: 'Invalid', field: `${path}.averageUtilization`, value: t.averageUtilization, detail: 'must be greater than 0' });
}

function validateMetricIdentifier(m: unknown, path: string, errs: FieldError[]): void {
  if (!str(obj(m).name)) errs.push({ type: 'Required', field: `${path}.name`, detail: 'must specify a metric name' });
}

function validateSource(kind: string, s: Obj, path: string, errs: FieldError[]): void {
  const target = obj(s.target);
  switch (kind) {
    case 'resource':
    case 'containerResource':
      if (!str(s.name)) errs.push({ type: 'Required', field: `${path}.name`, detail: 'must specify a resource name' });
      if (kind === 'containerResource' && !str(s.container)) errs.push({ type: 'Required', field: `${path}.container`, detail: 'must specify a container' });
      validateTarget(target, `${path}.target`, errs);
      if (target.averageUtilization === undefined && target.averageValue === undefined)
        errs.push({ type: 'Required', field: `${path}.target.averageUtilization`, detail: 'must set either a target raw value or a target utilization' });
      if (target.averageUtilization !== undefined && target.averageValue !== undefined)
        errs.push({ type: 'Forbidden', field: `${path}.target.averageValue`, detail: 'may not set both a target raw value and a target utilization' });
      break;
    case 'pods':
      validateMetricIdentifier(s.metric, `${path}.metric`, errs);
      validateTarget(target, `${path}.target`, errs);
      if (target.averageValue === undefined) errs.push({ type: 'Required', field: `${path}.target.averageValue`, detail: 'must specify a positive target averageValue' });
      break;
    case 'object':
      if (!str(obj(s.describedObject).kind)) errs.push({ type: 'Required', field: `${path}.describedObject.kind`, detail: '' });
      if (!str(obj(s.describedObject).name)) errs.push({ type: 'Required', field: `${path}.describedObject.name`, detail: '' });
      validateMetricIdentifier(s.metric, `${path}.metric`, errs);
      validateTarget(target, `${path}.target`, errs);
      if (target.value === undefined && target.averageValue === undefined)
        errs.push({ type: 'Required', field: `${path}.target.averageValue`, detail: 'must set either a target value or averageValue' });
      break;
    case 'external':
      validateMetricIdentifier(s.metric, `${path}.metric`, errs);
      validateTarget(target, `${path}.target`, errs);
      if (target.value === undefined && target.averageValue === undefined)
        errs.push({ type: 'Required', field: `${path}.target.averageValue`, detail: 'must set either a target value for metric or a per-pod target' });
      if (target.value !== undefined && target.averageValue !== undefined)
        errs.push({ type: 'Forbidden', field: `${path}.target.value`, detail: 'may not set both a target value for metric and a per-pod target' });
      break;
  }
}

const FIELD_OF: Record<string, string> = { Object: 'object', Pods: 'pods', Resource: 'resource', ContainerResource: 'containerResource', External: 'external' };

function validateMetric(m: Obj, path: string, errs: FieldError[]): void {
  if (!m.type) errs.push({ type: 'Required', field: `${path}.type`, detail: 'must specify a metric source type' });
  if (!METRIC_TYPES.includes(String(m.type ?? '')))
    errs.push({ type: 'NotSupported', field: `${path}.type`, value: m.type ?? '', detail: `supported values: ${METRIC_TYPES.map((t) => JSON.stringify(t)).join(', ')}` });
  const present = Object.values(FIELD_OF).filter((f) => m[f] !== undefined && m[f] !== null);
  if (present[0] && isObj(m[present[0]])) validateSource(present[0], m[present[0]] as Obj, `${path}.${present[0]}`, errs);
  const expected = FIELD_OF[String(m.type)];
  if (expected && (m[expected] === undefined || m[expected] === null)) errs.push({ type: 'Required', field: `${path}.${expected}`, detail: 'must populate information for the given metric source' });
  if (present.length !== 1) for (const f of present) if (f !== expected) errs.push({ type: 'Forbidden', field: `${path}.${f}`, detail: 'must populate the given metric source only' });
}

function validateRules(r: unknown, path: string, errs: FieldError[]): void {
  if (!isObj(r)) return;
  const w = r.stabilizationWindowSeconds;
  if (typeof w === 'number' && w < 0) errs.push({ type: 'Invalid', field: `${path}.stabilizationWindowSeconds`, value: w, detail: 'must be greater than or equal to zero' });
  if (typeof w === 'number' && w > MAX_STABILIZATION_WINDOW_SECONDS)
    errs.push({ type: 'Invalid', field: `${path}.stabilizationWindowSeconds`, value: w, detail: `must be less than or equal to ${MAX_STABILIZATION_WINDOW_SECONDS}` });
  if (r.selectPolicy !== undefined && !['Max', 'Min', 'Disabled'].includes(String(r.selectPolicy)))
    errs.push({ type: 'NotSupported', field: `${path}.selectPolicy`, value: r.selectPolicy, detail: 'supported values: "Disabled", "Max", "Min"' });
  const policies = Array.isArray(r.policies) ? r.policies : [];
  if (policies.length === 0) errs.push({ type: 'Required', field: `${path}.policies`, detail: 'must specify at least one Policy' });
  policies.forEach((p, i) => {
    const pp = obj(p);
    const at = `${path}.policies[${i}]`;
    if (pp.type !== 'Pods' && pp.type !== 'Percent') errs.push({ type: 'NotSupported', field: `${at}.type`, value: pp.type ?? '', detail: 'supported values: "Percent", "Pods"' });
    if (!(typeof pp.value === 'number' && pp.value > 0)) errs.push({ type: 'Invalid', field: `${at}.value`, value: pp.value ?? 0, detail: 'must be greater than zero' });
    if (!(typeof pp.periodSeconds === 'number' && pp.periodSeconds > 0)) errs.push({ type: 'Invalid', field: `${at}.periodSeconds`, value: pp.periodSeconds ?? 0, detail: 'must be greater than zero' });
    if (typeof pp.periodSeconds === 'number' && pp.periodSeconds > MAX_PERIOD_SECONDS)
      errs.push({ type: 'Invalid', field: `${at}.periodSeconds`, value: pp.periodSeconds, detail: `must be less than or equal to ${MAX_PERIOD_SECONDS}` });
  });
}

/** ValidateHorizontalPodAutoscaler(Spec) of a defaulted v2 object. */
export function validateHPA(o: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const spec = obj(o.spec);
  const min = spec.minReplicas;
  const max = spec.maxReplicas;
  if (typeof min === 'number' && min < 1) errs.push({ type: 'Invalid', field: 'spec.minReplicas', value: min, detail: 'must be greater than or equal to 1' });
  if (typeof max !== 'number' || max < 1) errs.push({ type: 'Invalid', field: 'spec.maxReplicas', value: max ?? 0, detail: 'must be greater than 0' });
  if (typeof min === 'number' && typeof max === 'number' && max < min) errs.push({ type: 'Invalid', field: 'spec.maxReplicas', value: max, detail: 'must be greater than or equal to `minReplicas`' });
  const ref = obj(spec.scaleTargetRef);
  const refErrs: FieldError[] = [];
  for (const f of ['kind', 'name'] as const) {
    const v = str(ref[f]) ?? '';
    if (v === '') refErrs.push({ type: 'Required', field: `spec.scaleTargetRef.${f}`, detail: '' });
    else for (const p of pathSegmentProblems(v)) refErrs.push({ type: 'Invalid', field: `spec.scaleTargetRef.${f}`, value: v, detail: p });
  }
  if (refErrs.length) return [...errs, ...refErrs];
  const metricErrs: FieldError[] = [];
  (Array.isArray(spec.metrics) ? spec.metrics : []).forEach((m, i) => validateMetric(obj(m), `spec.metrics[${i}]`, metricErrs));
  if (metricErrs.length) return [...errs, ...metricErrs];
  if (isObj(spec.behavior)) {
    validateRules(spec.behavior.scaleUp, 'spec.behavior.scaleUp', errs);
    validateRules(spec.behavior.scaleDown, 'spec.behavior.scaleDown', errs);
  }
  return errs;
}

// ---- `kubectl get hpa` (printHorizontalPodAutoscaler / formatHPAMetrics) ----

const qstr = (v: unknown): string => (v === undefined || v === null ? '<unknown>' : String(canonical(v)));

/** The TARGETS column: at most two metrics, `cpu: 12%/50%`, then `+ N more...`. */
export function formatHPAMetrics(specs: Obj[], statuses: Obj[]): string {
  if (specs.length === 0) return '<none>';
  const list: string[] = [];
  specs.forEach((spec, i) => {
    const st = statuses[i];
    switch (spec.type) {
      case 'External': {
        const t = obj(obj(spec.external).target);
        const cur = isObj(st) ? obj(obj(st.external).current) : undefined;
        if (t.averageValue !== undefined) list.push(`${cur?.averageValue !== undefined ? qstr(cur.averageValue) : '<unknown>'}/${qstr(t.averageValue)} (avg)`);
        else list.push(`${cur && isObj(st?.external) ? qstr(cur.value ?? '0') : '<unknown>'}/${qstr(t.value)}`);
        break;
      }
      case 'Pods': {
        const t = obj(obj(spec.pods).target);
        const cur = isObj(st) && isObj(st.pods) ? qstr(obj(st.pods.current).averageValue ?? '0') : '<unknown>';
        list.push(`${cur}/${qstr(t.averageValue)}`);
        break;
      }
      case 'Object': {
        const t = obj(obj(spec.object).target);
        const cur = isObj(st) ? obj(obj(st.object).current) : undefined;
        if (t.averageValue !== undefined) list.push(`${cur?.averageValue !== undefined ? qstr(cur.averageValue) : '<unknown>'}/${qstr(t.averageValue)} (avg)`);
        else list.push(`${cur && isObj(st?.object) ? qstr(cur.value ?? '0') : '<unknown>'}/${qstr(t.value)}`);
        break;
      }
      case 'Resource':
      case 'ContainerResource': {
        const key = spec.type === 'Resource' ? 'resource' : 'containerResource';
        const src = obj(spec[key]);
        const t = obj(src.target);
        const cur = isObj(st) && isObj(st[key]) ? obj((st[key] as Obj).current) : undefined;
        const prefix = spec.type === 'Resource' ? `${String(src.name)}: ` : '';
        if (t.averageValue !== undefined) {
          list.push(`${prefix}${cur ? qstr(cur.averageValue ?? '0') : '<unknown>'}/${qstr(t.averageValue)}`);
        } else {
          const current = cur && typeof cur.averageUtilization === 'number' ? `${cur.averageUtilization}%` : '<unknown>';
          const target = typeof t.averageUtilization === 'number' ? `${t.averageUtilization}%` : '<auto>';
          list.push(`${prefix}${current}/${target}`);
        }
        break;
      }
      default:
        list.push('<unknown type>');
    }
  });
  if (list.length > 2) return `${list.slice(0, 2).join(', ')} + ${list.length - 2} more...`;
  return list.join(', ');
}

/** The row cells after NAME: REFERENCE, TARGETS, MINPODS, MAXPODS, REPLICAS (AGE is added by the caller). */
export function hpaTableCells(view: Obj): [string, string, string, number, number] {
  const o = view.apiVersion === 'autoscaling/v1' ? hpaV1ToV2(view) : view;
  const spec = obj(o.spec);
  const status = obj(o.status);
  const ref = obj(spec.scaleTargetRef);
  const metrics = Array.isArray(spec.metrics) ? spec.metrics.map(obj) : [];
  const current = Array.isArray(status.currentMetrics) ? status.currentMetrics.map(obj) : [];
  return [
    `${String(ref.kind ?? '')}/${String(ref.name ?? '')}`,
    formatHPAMetrics(metrics, current),
    typeof spec.minReplicas === 'number' ? String(spec.minReplicas) : '<unset>',
    typeof spec.maxReplicas === 'number' ? spec.maxReplicas : 0,
    typeof status.currentReplicas === 'number' ? status.currentReplicas : 0,
  ];
}
