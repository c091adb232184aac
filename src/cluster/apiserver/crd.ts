// CustomResourceDefinitions: validation, defaulting, status (NamesAccepted/Established) and the resource
// type a CRD serves.
import type { FieldError } from './errors.js';
import { ALL_VERBS, sortVersions, type PrinterColumn, type ResourceType, type VersionInfo } from './registry.js';
import { arr, isObj, nowRFC3339, obj, str, type Obj } from './util.js';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[A-Za-z][A-Za-z0-9]*$/;

/** Defaults of apiextensions v1 (names.singular, names.listKind, conversion strategy, version schema defaults). */
export function defaultCRD(crd: Obj): void {
  const spec = obj(crd.spec);
  crd.spec = spec;
  const names = obj(spec.names);
  spec.names = names;
  if (typeof names.kind === 'string') {
    if (!names.singular) names.singular = names.kind.toLowerCase();
    if (!names.listKind) names.listKind = `${names.kind}List`;
  }
  if (!isObj(spec.conversion)) spec.conversion = { strategy: 'None' };
}

export function validateCRD(crd: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const spec = obj(crd.spec);
  const names = obj(spec.names);
  const group = str(spec.group) ?? '';
  const plural = str(names.plural) ?? '';
  const name = str(obj(crd.metadata).name) ?? '';
  if (!group) errs.push({ type: 'Required', field: 'spec.group' });
  else if (!SUBDOMAIN.test(group) || !group.includes('.'))
    errs.push({ type: 'Invalid', field: 'spec.group', value: group, detail: 'should be a domain with at least one dot' });
  if (!plural) errs.push({ type: 'Required', field: 'spec.names.plural' });
  else if (!LABEL.test(plural)) errs.push({ type: 'Invalid', field: 'spec.names.plural', value: plural, detail: 'a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character' });
  if (!names.kind) errs.push({ type: 'Required', field: 'spec.names.kind' });
  else if (typeof names.kind !== 'string' || !KIND.test(names.kind)) errs.push({ type: 'Invalid', field: 'spec.names.kind', value: names.kind, detail: 'may have mixed case, but should otherwise match: ^[a-z]([-a-z0-9]*[a-z0-9])?$' });
  if (plural && group && name !== `${plural}.${group}`)
    errs.push({ type: 'Invalid', field: 'metadata.name', value: name, detail: 'must be spec.names.plural+"."+spec.group' });
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster')
    errs.push(spec.scope === undefined ? { type: 'Required', field: 'spec.scope' } : { type: 'NotSupported', field: 'spec.scope', value: spec.scope, detail: 'supported values: "Cluster", "Namespaced"' });
  const versions = arr(spec.versions);
  if (versions.length === 0) errs.push({ type: 'Invalid', field: 'spec.versions', value: [], detail: 'must have exactly one version marked as storage version' });
  else {
    const storage = versions.filter((v) => isObj(v) && v.storage === true).length;
    if (storage !== 1) errs.push({ type: 'Invalid', field: 'spec.versions', value: versions.map((v) => obj(v).name), detail: 'must have exactly one version marked as storage version' });
    if (!versions.some((v) => isObj(v) && v.served === true)) errs.push({ type: 'Invalid', field: 'spec.versions', value: versions.map((v) => obj(v).name), detail: 'must serve at least one version' });
    const seen = new Set<string>();
    versions.forEach((v, i) => {
      const vo = obj(v);
      const vn = str(vo.name) ?? '';
      if (!vn) errs.push({ type: 'Required', field: `spec.versions[${i}].name` });
      else if (!LABEL.test(vn)) errs.push({ type: 'Invalid', field: `spec.versions[${i}].name`, value: vn, detail: 'a DNS-1035 label must consist of lower case alphanumeric characters' });
      if (seen.has(vn)) errs.push({ type: 'Duplicate', field: `spec.versions[${i}].name`, value: vn });
      seen.add(vn);
      if (typeof vo.served !== 'boolean') errs.push({ type: 'Required', field: `spec.versions[${i}].served` });
      if (typeof vo.storage !== 'boolean') errs.push({ type: 'Required', field: `spec.versions[${i}].storage` });
      const schema = obj(vo.schema).openAPIV3Schema;
      if (!isObj(schema)) errs.push({ type: 'Required', field: `spec.versions[${i}].schema.openAPIV3Schema`, detail: 'schemas are required' });
      else if (schema.type !== 'object')
        errs.push(
          schema.type === undefined
            ? { type: 'Required', field: `spec.versions[${i}].schema.openAPIV3Schema.type`, detail: 'must not be empty at the root' }
            : { type: 'Invalid', field: `spec.versions[${i}].schema.openAPIV3Schema.type`, value: schema.type, detail: 'must be object at the root' },
        );
    });
  }
  return errs;
}

/** Status of an accepted CRD: accepted names, Established + NamesAccepted conditions, storedVersions. */
export function crdStatus(crd: Obj, prevStatus: Obj | undefined): Obj {
  const spec = obj(crd.spec);
  const storage = arr(spec.versions).map(obj).find((v) => v.storage === true);
  const stored = new Set<string>(arr(prevStatus?.storedVersions).map(String));
  if (storage && typeof storage.name === 'string') stored.add(storage.name);
  const prevConds = arr(prevStatus?.conditions).map(obj);
  const ts = (type: string): string => str(prevConds.find((c) => c.type === type)?.lastTransitionTime) ?? nowRFC3339();
  return {
    acceptedNames: { ...obj(spec.names) },
    conditions: [
      { type: 'NamesAccepted', status: 'True', lastTransitionTime: ts('NamesAccepted'), reason: 'NoConflicts', message: 'no conflicts found' },
      { type: 'Established', status: 'True', lastTransitionTime: ts('Established'), reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' },
    ],
    storedVersions: [...stored],
  };
}

/** The resource type a (valid) CRD serves. */
export function resourceTypeOf(crd: Obj): ResourceType {
  const spec = obj(crd.spec);
  const names = obj(spec.names);
  const versions = arr(spec.versions).map(obj);
  const served = versions.filter((v) => v.served === true);
  const order = sortVersions(served.map((v) => String(v.name)));
  const infos: VersionInfo[] = order.map((vn) => {
    const v = served.find((x) => x.name === vn)!;
    const subs = obj(v.subresources);
    const cols = arr(v.additionalPrinterColumns)
      .map(obj)
      .filter((c) => typeof c.name === 'string' && typeof c.jsonPath === 'string')
      .map((c): PrinterColumn => ({
        name: String(c.name),
        type: str(c.type) ?? 'string',
        jsonPath: String(c.jsonPath),
        ...(typeof c.format === 'string' ? { format: c.format } : {}),
        ...(typeof c.description === 'string' ? { description: c.description } : {}),
        ...(typeof c.priority === 'number' ? { priority: c.priority } : {}),
      }));
    let deprecationWarning: string | undefined;
    if (v.deprecated === true) {
      deprecationWarning = str(v.deprecationWarning);
      if (deprecationWarning === undefined) {
        // apiextensions-apiserver's default: name the preferred non-deprecated served version
        const alt = sortVersions(versions.filter((x) => x.served === true && x.deprecated !== true).map((x) => String(x.name)))[0];
        deprecationWarning = `${String(spec.group)}/${vn} ${String(names.kind)} is deprecated${alt ? `; use ${String(spec.group)}/${alt} ${String(names.kind)}` : ''}`;
      }
    }
    return {
      name: vn,
      ...(deprecationWarning !== undefined ? { deprecationWarning } : {}),
      ...(isObj(obj(v.schema).openAPIV3Schema) ? { schema: obj(v.schema).openAPIV3Schema as Obj } : {}),
      printerColumns: cols,
      statusSubresource: isObj(subs.status),
      ...(isObj(subs.scale) && typeof subs.scale.specReplicasPath === 'string' && typeof subs.scale.statusReplicasPath === 'string'
        ? {
            scale: {
              specReplicasPath: subs.scale.specReplicasPath,
              statusReplicasPath: subs.scale.statusReplicasPath,
              ...(typeof subs.scale.labelSelectorPath === 'string' ? { labelSelectorPath: subs.scale.labelSelectorPath } : {}),
            },
          }
        : {}),
    };
  });
  const kind = String(names.kind);
  return {
    group: String(spec.group),
    resource: String(names.plural),
    singular: str(names.singular) ?? kind.toLowerCase(),
    kind,
    listKind: str(names.listKind) ?? `${kind}List`,
    namespaced: spec.scope === 'Namespaced',
    shortNames: arr(names.shortNames).map(String),
    categories: arr(names.categories).map(String),
    versions: infos,
    storageVersion: String(versions.find((v) => v.storage === true)?.name ?? order[0]),
    verbs: ALL_VERBS,
    builtin: false,
    crd: str(obj(crd.metadata).name) ?? '',
  };
}
