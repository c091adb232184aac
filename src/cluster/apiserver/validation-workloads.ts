// The checks of kube-apiserver's ValidatePod / ValidateDeployment (and ReplicaSet, DaemonSet, StatefulSet) that a
// user meets when a manifest has a mistake: no containers, a container without a name or an image, a bad port, a
// selector that does not select the template, a changed selector. Worded as kube-apiserver words them, values shown
// as Go prints them (`map[string]string{"app":"web"}`). Deliberately not the whole of kube's validation.
import type { FieldError } from './errors.js';
import { labelSelectorFromObject, matchLabels } from './selectors.js';
import { applyBuiltinDefaults } from './defaults.js';
import { arr, clone, isObj, jsonEqual, obj, str, type Obj } from './util.js';
import { LABEL_MSG } from './validation.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];
const supported = (vals: string[]): string => `supported values: ${vals.map((v) => JSON.stringify(v)).join(', ')}`;

/** Go's %#v of a map[string]string. */
export function goStringMap(m: unknown): string {
  if (!isObj(m)) return 'map[string]string(nil)';
  const entries = Object.keys(m)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${JSON.stringify(String(m[k]))}`);
  return `map[string]string{${entries.join(', ')}}`;
}

/** Go's %#v of a metav1.LabelSelector. */
function goLabelSelector(sel: Obj): string {
  const exprs = arr(sel.matchExpressions).filter(isObj);
  const reqs = exprs.map((e) => {
    const vals = Array.isArray(e.values) ? `[]string{${e.values.map((v) => JSON.stringify(String(v))).join(', ')}}` : '[]string(nil)';
    return `v1.LabelSelectorRequirement{Key:${JSON.stringify(String(e.key ?? ''))}, Operator:${JSON.stringify(String(e.operator ?? ''))}, Values:${vals}}`;
  });
  const me = Array.isArray(sel.matchExpressions) ? `[]v1.LabelSelectorRequirement{${reqs.join(', ')}}` : '[]v1.LabelSelectorRequirement(nil)';
  return `v1.LabelSelector{MatchLabels:${goStringMap(sel.matchLabels)}, MatchExpressions:${me}}`;
}

function validateContainers(list: unknown, path: string, requireSome: boolean, names: Set<string>, volumes: Set<string>): FieldError[] {
  const errs: FieldError[] = [];
  const cs = arr(list);
  if (requireSome && cs.length === 0) return [{ type: 'Required', field: path }];
  cs.forEach((raw, i) => {
    const c = obj(raw);
    const at = `${path}[${i}]`;
    const name = str(c.name);
    if (!name) errs.push({ type: 'Required', field: `${at}.name` });
    else if (name.length > 63 || !DNS1123_LABEL.test(name)) errs.push({ type: 'Invalid', field: `${at}.name`, value: name, detail: name.length > 63 ? 'must be no more than 63 characters' : LABEL_MSG });
    else if (names.has(name)) errs.push({ type: 'Duplicate', field: `${at}.name`, value: name });
    if (name) names.add(name);
    if (!str(c.image)?.trim()) errs.push({ type: 'Required', field: `${at}.image` });
    const portNames = new Set<string>();
    arr(c.ports).forEach((rp, j) => {
      const p = obj(rp);
      const pat = `${at}.ports[${j}]`;
      if (p.containerPort === undefined) errs.push({ type: 'Required', field: `${pat}.containerPort` });
      else if (typeof p.containerPort !== 'number' || !Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535)
        errs.push({ type: 'Invalid', field: `${pat}.containerPort`, value: p.containerPort, detail: 'must be between 1 and 65535, inclusive' });
      if (p.hostPort !== undefined && p.hostPort !== 0 && (typeof p.hostPort !== 'number' || p.hostPort < 1 || p.hostPort > 65535))
        errs.push({ type: 'Invalid', field: `${pat}.hostPort`, value: p.hostPort, detail: 'must be between 1 and 65535, inclusive' });
      if (p.protocol !== undefined && !PROTOCOLS.includes(String(p.protocol))) errs.push({ type: 'NotSupported', field: `${pat}.protocol`, value: p.protocol, detail: supported(PROTOCOLS) });
      const pn = str(p.name);
      if (pn !== undefined && pn !== '') {
        if (pn.length > 15 || !IANA_SVC_NAME.test(pn) || !/[a-z]/.test(pn) || pn.includes('--'))
          errs.push({ type: 'Invalid', field: `${pat}.name`, value: pn, detail: pn.length > 15 ? 'must be no more than 15 characters' : "must contain only alphanumeric characters (a-z, 0-9), and hyphens (-)" });
        else if (portNames.has(pn)) errs.push({ type: 'Duplicate', field: `${pat}.name`, value: pn });
        portNames.add(pn);
      }
    });
    arr(c.env).forEach((re, j) => {
      const e = obj(re);
      const n = str(e.name);
      if (!n) errs.push({ type: 'Required', field: `${at}.env[${j}].name` });
      else if (!ENV_NAME.test(n))
        errs.push({ type: 'Invalid', field: `${at}.env[${j}].name`, value: n, detail: "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')" });
    });
    arr(c.volumeMounts).forEach((rm, j) => {
      const m = obj(rm);
      const vn = str(m.name);
      if (!vn) errs.push({ type: 'Required', field: `${at}.volumeMounts[${j}].name` });
      else if (!volumes.has(vn)) errs.push({ type: 'NotFound', field: `${at}.volumeMounts[${j}].name`, value: vn });
      if (!str(m.mountPath)) errs.push({ type: 'Required', field: `${at}.volumeMounts[${j}].mountPath` });
    });
  });
  return errs;
}

/** A pod spec (of a Pod at `spec`, or of a template at `spec.template.spec`). */
export function validatePodSpec(spec: Obj, path: string, restartPolicies: string[]): FieldError[] {
  const errs: FieldError[] = [];
  const volumes = new Set<string>();
  arr(spec.volumes).forEach((rv, i) => {
    const n = str(obj(rv).name);
    if (!n) errs.push({ type: 'Required', field: `${path}.volumes[${i}].name` });
    else if (volumes.has(n)) errs.push({ type: 'Duplicate', field: `${path}.volumes[${i}].name`, value: n });
    else volumes.add(n);
  });
  const names = new Set<string>();
  errs.push(...validateContainers(spec.initContainers, `${path}.initContainers`, false, names, volumes));
  errs.push(...validateContainers(spec.containers, `${path}.containers`, true, names, volumes));
  if (spec.restartPolicy !== undefined && !restartPolicies.includes(String(spec.restartPolicy)))
    errs.push({ type: 'NotSupported', field: `${path}.restartPolicy`, value: spec.restartPolicy, detail: supported(restartPolicies) });
  return errs;
}

/** Deployment, ReplicaSet, DaemonSet, StatefulSet: selector, template, replicas; on update the immutable selector. */
function validateWorkload(kind: string, o: Obj, old: Obj | undefined): FieldError[] {
  const errs: FieldError[] = [];
  const spec = obj(o.spec);
  if (kind !== 'DaemonSet' && spec.replicas !== undefined && (typeof spec.replicas !== 'number' || spec.replicas < 0))
    errs.push({ type: 'Invalid', field: 'spec.replicas', value: spec.replicas, detail: 'must be greater than or equal to 0' });
  const template = obj(spec.template);
  const labels = obj(obj(template.metadata).labels);
  if (!isObj(spec.selector)) errs.push({ type: 'Required', field: 'spec.selector' });
  else {
    const sel = labelSelectorFromObject(spec.selector);
    if (sel.length === 0) errs.push({ type: 'Invalid', field: 'spec.selector', value: spec.selector, shown: goLabelSelector(spec.selector), detail: `empty selector is invalid for ${kind.toLowerCase()}` });
    else if (!matchLabels(sel, labels)) errs.push({ type: 'Invalid', field: 'spec.template.metadata.labels', value: labels, shown: goStringMap(labels), detail: '`selector` does not match template `labels`' });
    if (old && isObj(obj(old.spec).selector) && !jsonEqual(spec.selector, obj(old.spec).selector))
      errs.push({ type: 'Invalid', field: 'spec.selector', value: spec.selector, shown: goLabelSelector(spec.selector), detail: 'field is immutable' });
  }
  errs.push(...validatePodSpec(obj(template.spec), 'spec.template.spec', ['Always']));
  return errs;
}

function validateConfigKeys(o: Obj, fields: string[]): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  for (const f of fields) {
    for (const k of Object.keys(obj(o[f]))) {
      if (k.length > 253 || !CONFIG_KEY.test(k) || k === '.' || k === '..' || k.startsWith('..'))
        errs.push({ type: 'Invalid', field: `${f}[${k}]`, value: k, detail: "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')" });
      else if (seen.has(k)) errs.push({ type: 'Invalid', field: `${f}[${k}]`, value: k, detail: 'duplicate of key present in data' });
      seen.add(k);
    }
  }
  return errs;
}

const POD_UPDATE_FORBIDDEN =
  'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

/**
 * ValidatePodUpdate: a pod's spec is fixed once created, but for container images, a shorter (or new)
 * activeDeadlineSeconds, added tolerations, a negative grace period set to 1 and removed scheduling gates.
 */
function validatePodUpdate(pod: Obj, old: Obj): FieldError[] {
  const errs: FieldError[] = [];
  // compare both as the server stores them (an object stored by an older version may lack a newer default)
  const before = clone(old);
  applyBuiltinDefaults('/pods', before);
  const oldSpec = obj(before.spec);
  const after = clone(pod);
  applyBuiltinDefaults('/pods', after);
  const munged = obj(after.spec);
  for (const list of ['containers', 'initContainers'] as const) {
    const now = arr(munged[list]);
    const was = arr(oldSpec[list]);
    if (now.length !== was.length) continue;
    now.forEach((c, i) => {
      if (isObj(c) && isObj(was[i])) c.image = (was[i] as Obj).image;
    });
  }
  const deadline = munged.activeDeadlineSeconds;
  const oldDeadline = oldSpec.activeDeadlineSeconds;
  if (deadline !== undefined && oldDeadline !== undefined && (typeof deadline !== 'number' || typeof oldDeadline !== 'number' || deadline > oldDeadline))
    errs.push({ type: 'Invalid', field: 'spec.activeDeadlineSeconds', value: deadline, detail: 'must be less than or equal to previous value' });
  if (deadline !== undefined || oldDeadline === undefined) {
    if (oldDeadline === undefined) delete munged.activeDeadlineSeconds;
    else munged.activeDeadlineSeconds = oldDeadline;
  }
  const oldTolerations = arr(oldSpec.tolerations);
  if (oldTolerations.every((t) => arr(munged.tolerations).some((n) => jsonEqual(n, t)))) {
    if (oldSpec.tolerations === undefined) delete munged.tolerations;
    else munged.tolerations = oldSpec.tolerations;
  }
  if (typeof oldSpec.terminationGracePeriodSeconds === 'number' && oldSpec.terminationGracePeriodSeconds < 0 && munged.terminationGracePeriodSeconds === 1)
    munged.terminationGracePeriodSeconds = oldSpec.terminationGracePeriodSeconds;
  const gates = arr(munged.schedulingGates);
  if (gates.every((g) => arr(oldSpec.schedulingGates).some((o) => jsonEqual(o, g)))) {
    if (oldSpec.schedulingGates === undefined) delete munged.schedulingGates;
    else munged.schedulingGates = oldSpec.schedulingGates;
  }
  if (!jsonEqual(munged, oldSpec)) errs.push({ type: 'Forbidden', field: 'spec', detail: POD_UPDATE_FORBIDDEN });
  return errs;
}

const WORKLOAD_KINDS: Record<string, string> = { 'apps/deployments': 'Deployment', 'apps/replicasets': 'ReplicaSet', 'apps/daemonsets': 'DaemonSet', 'apps/statefulsets': 'StatefulSet' };

/** The checks above for the built-in type stored under `key` (`group/resource`); `old` on update. */
export function validateBuiltinObject(key: string, o: Obj, old: Obj | undefined): FieldError[] {
  if (key === '/pods') return [...validatePodSpec(obj(o.spec), 'spec', ['Always', 'OnFailure', 'Never']), ...(old ? validatePodUpdate(o, old) : [])];
  const kind = WORKLOAD_KINDS[key];
  if (kind) return validateWorkload(kind, o, old);
  if (key === '/configmaps') return validateConfigKeys(o, ['data', 'binaryData']);
  if (key === '/secrets') return validateConfigKeys(o, ['data', 'stringData']);
  return [];
}
