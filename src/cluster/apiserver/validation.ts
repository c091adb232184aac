// Generic object metadata validation (names, labels, annotations) as kube-apiserver does it.
import type { FieldError } from './errors.js';
import { isObj, type Obj } from './util.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export type NamePolicy = 'subdomain' | 'label' | 'dns1035' | 'path';

export const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
export const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
export const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/** Name policy of a resource (`group/resource`). */
export function namePolicy(key: string): NamePolicy {
  if (key === '/namespaces') return 'label';
  if (key === '/services') return 'dns1035';
  if (key.startsWith('rbac.authorization.k8s.io/')) return 'path';
  return 'subdomain';
}

export function validateName(name: string, policy: NamePolicy, field = 'metadata.name'): FieldError[] {
  switch (policy) {
    case 'label':
      if (name.length > 63) return [{ type: 'Invalid', field, value: name, detail: 'must be no more than 63 characters' }];
      return DNS1123_LABEL.test(name) ? [] : [{ type: 'Invalid', field, value: name, detail: LABEL_MSG }];
    case 'dns1035':
      if (name.length > 63) return [{ type: 'Invalid', field, value: name, detail: 'must be no more than 63 characters' }];
      return DNS1035_LABEL.test(name) ? [] : [{ type: 'Invalid', field, value: name, detail: DNS1035_MSG }];
    case 'path':
      if (name === '.' || name === '..') return [{ type: 'Invalid', field, value: name, detail: `may not be '${name}'` }];
      if (name.includes('/') || name.includes('%')) return [{ type: 'Invalid', field, value: name, detail: `may not contain '${name.includes('/') ? '/' : '%'}'` }];
      return [];
    case 'subdomain':
      if (name.length > 253) return [{ type: 'Invalid', field, value: name, detail: 'must be no more than 253 characters' }];
      return DNS1123_SUBDOMAIN.test(name) ? [] : [{ type: 'Invalid', field, value: name, detail: SUBDOMAIN_MSG }];
  }
}

export function validateQualifiedKey(k: string, field: string): FieldError[] {
  const slash = k.indexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : '';
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  const bad = (detail: string): FieldError[] => [{ type: 'Invalid', field, value: k, detail }];
  if (slash >= 0 && (prefix === '' || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return bad('prefix part ' + SUBDOMAIN_MSG);
  if (name === '' || name.length > 63 || !QUALIFIED_NAME.test(name))
    return bad(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
  return [];
}

/** Validate metadata: labels, annotation keys and total size, finalizer names. */
export function validateMeta(m: Obj): FieldError[] {
  const errs: FieldError[] = [];
  if (m.labels !== undefined) {
    if (!isObj(m.labels)) errs.push({ type: 'Invalid', field: 'metadata.labels', value: m.labels, detail: 'must be a map of strings' });
    else
      for (const [k, v] of Object.entries(m.labels)) {
        errs.push(...validateQualifiedKey(k, 'metadata.labels'));
        if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v))
          errs.push({
            type: 'Invalid',
            field: 'metadata.labels',
            value: v,
            detail:
              "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
          });
      }
  }
  if (m.annotations !== undefined) {
    if (!isObj(m.annotations)) errs.push({ type: 'Invalid', field: 'metadata.annotations', value: m.annotations, detail: 'must be a map of strings' });
    else {
      let size = 0;
      for (const [k, v] of Object.entries(m.annotations)) {
        errs.push(...validateQualifiedKey(k.toLowerCase(), 'metadata.annotations'));
        if (typeof v !== 'string') errs.push({ type: 'Invalid', field: `metadata.annotations`, value: v, detail: 'annotation values must be strings' });
        else size += k.length + v.length;
      }
      if (size > 262144) errs.push({ type: 'TooLong', field: 'metadata.annotations', detail: 'must have at most 262144 bytes' });
    }
  }
  if (m.finalizers !== undefined && !Array.isArray(m.finalizers)) errs.push({ type: 'Invalid', field: 'metadata.finalizers', value: m.finalizers, detail: 'must be a list' });
  return errs;
}
