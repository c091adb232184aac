// APIService (apiregistration.k8s.io/v1): kube-aggregator's defaults and validation, and its `kubectl get
// apiservices` row (SERVICE, AVAILABLE).
import type { FieldError } from '../errors.js';
import type { ResourceType } from '../registry.js';
import { isObj, obj, str, type Obj } from '../util.js';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export function defaultAPIService(o: Obj): void {
  const spec = obj(o.spec);
  if (isObj(spec.service)) spec.service.port ??= 443;
}

export function validateAPIService(o: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const spec = obj(o.spec);
  const group = str(spec.group) ?? '';
  const version = str(spec.version) ?? '';
  const name = str(obj(o.metadata).name) ?? '';
  const required = `${version}.${group}`;
  if (name !== required) errs.push({ type: 'Invalid', field: 'metadata.name', value: name, detail: `must be \`spec.version+"."+spec.group\`: ${JSON.stringify(required)}` });
  if (group === '' && version !== 'v1') errs.push({ type: 'Required', field: 'spec.group', detail: 'only v1 may have an empty group and it better be legacy kube' });
  if (group !== '' && (group.length > 253 || !DNS1123_SUBDOMAIN.test(group)))
    errs.push({ type: 'Invalid', field: 'spec.group', value: group, detail: "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character" });
  if (version.length > 63 || !DNS1035_LABEL.test(version))
    errs.push({ type: 'Invalid', field: 'spec.version', value: version, detail: "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character" });
  const gpm = spec.groupPriorityMinimum;
  if (!(typeof gpm === 'number' && gpm > 0 && gpm <= 20000)) errs.push({ type: 'Invalid', field: 'spec.groupPriorityMinimum', value: gpm ?? 0, detail: 'must be positive and less than 20000' });
  const vp = spec.versionPriority;
  if (!(typeof vp === 'number' && vp > 0 && vp <= 1000)) errs.push({ type: 'Invalid', field: 'spec.versionPriority', value: vp ?? 0, detail: 'must be positive and less than 1000' });
  const ca = str(spec.caBundle) ?? '';
  if (!isObj(spec.service)) {
    if (ca !== '') errs.push({ type: 'Invalid', field: 'spec.caBundle', value: `${Buffer.from(ca, 'base64').length} bytes`, detail: 'local APIServices may not have a caBundle' });
    if (spec.insecureSkipTLSVerify === true) errs.push({ type: 'Invalid', field: 'spec.insecureSkipTLSVerify', value: true, detail: 'local APIServices may not have insecureSkipTLSVerify' });
    return errs;
  }
  const svc = spec.service;
  if (!str(svc.namespace)) errs.push({ type: 'Required', field: 'spec.service.namespace', detail: '' });
  if (!str(svc.name)) errs.push({ type: 'Required', field: 'spec.service.name', detail: '' });
  if (!(typeof svc.port === 'number' && Number.isInteger(svc.port) && svc.port >= 1 && svc.port <= 65535))
    errs.push({ type: 'Invalid', field: 'spec.service.port', value: svc.port, detail: 'port is not valid: must be between 1 and 65535, inclusive' });
  if (spec.insecureSkipTLSVerify === true && ca !== '') errs.push({ type: 'Invalid', field: 'spec.insecureSkipTLSVerify', value: true, detail: 'may not be true if caBundle is present' });
  return errs;
}

/** The Available condition, if any. */
export function availableCondition(o: Obj): Obj | undefined {
  const conds = obj(o.status).conditions;
  return Array.isArray(conds) ? conds.map(obj).find((c) => c.type === 'Available') : undefined;
}

/** SERVICE and AVAILABLE of `kubectl get apiservices`. */
export function apiServiceTableCells(o: Obj): [string, string] {
  const svc = obj(o.spec).service;
  const service = isObj(svc) ? `${String(svc.namespace ?? '')}/${String(svc.name ?? '')}` : 'Local';
  const c = availableCondition(o);
  let available = 'Unknown';
  if (c) available = c.status === 'True' ? 'True' : str(c.reason) ? `${String(c.status)} (${String(c.reason)})` : String(c.status);
  return [service, available];
}

export function extendAPIService(rt: ResourceType): void {
  rt.strategy = {
    prepare(o) {
      defaultAPIService(o);
      return validateAPIService(o);
    },
  };
}
