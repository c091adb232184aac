// Kubernetes `Status` errors and field errors, rendered the way kube-apiserver renders them.
import type { Obj } from './util.js';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  toStatus(): Obj {
    const s: Obj = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, ...(this.reason ? { reason: this.reason } : {}) };
    if (this.details) s.details = this.details;
    s.code = this.code;
    return s;
  }
}

/** `services` or `ipaddresspools.metallb.io` */
export const qualified = (group: string, resource: string): string => (group ? `${resource}.${group}` : resource);

export const notFound = (group: string, resource: string, name: string): ApiError =>
  new ApiError(404, 'NotFound', `${qualified(group, resource)} "${name}" not found`, {
    name,
    ...(group ? { group } : {}),
    kind: resource,
  });

export const pathNotFound = (): ApiError =>
  new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});

export const alreadyExists = (group: string, resource: string, name: string): ApiError =>
  new ApiError(409, 'AlreadyExists', `${qualified(group, resource)} "${name}" already exists`, {
    name,
    ...(group ? { group } : {}),
    kind: resource,
  });

export const conflict = (group: string, resource: string, name: string, why?: string): ApiError =>
  new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(group, resource)} "${name}": ${
      why ?? 'the object has been modified; please apply your changes to the latest version and try again'
    }`,
    { name, ...(group ? { group } : {}), kind: resource },
  );

export const badRequest = (message: string): ApiError => new ApiError(400, 'BadRequest', message);

export const methodNotAllowed = (): ApiError =>
  new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});

export const unsupportedMediaType = (ct: string, accepted: string[]): ApiError =>
  new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format (${ct || 'none'}) - accepted media types include: ${accepted.join(', ')}`,
  );

export const notAcceptable = (): ApiError =>
  new ApiError(406, 'NotAcceptable', 'only the following media types are accepted: application/json, application/yaml');

export const gone = (requested: number, oldest: number): ApiError =>
  new ApiError(410, 'Expired', `too old resource version: ${requested} (${oldest})`);

export const forbidden = (group: string, resource: string, name: string, why: string): ApiError =>
  new ApiError(403, 'Forbidden', `${qualified(group, resource)} "${name}" is forbidden: ${why}`, {
    name,
    ...(group ? { group } : {}),
    kind: resource,
  });

export const internal = (message: string): ApiError =>
  new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });

// ---- field errors (k8s.io/apimachinery/pkg/util/validation/field) ----

export type FieldErrorType = 'Required' | 'Invalid' | 'NotSupported' | 'Duplicate' | 'NotFound' | 'Forbidden' | 'TooLong' | 'TooMany';

export interface FieldError {
  type: FieldErrorType;
  field: string;
  value?: unknown;
  /** the value as kube-apiserver prints it when that is not its JSON (Go's %#v of a map or struct) */
  shown?: string;
  detail?: string;
}

const causeReason: Record<FieldErrorType, string> = {
  Required: 'FieldValueRequired',
  Invalid: 'FieldValueInvalid',
  NotSupported: 'FieldValueNotSupported',
  Duplicate: 'FieldValueDuplicate',
  NotFound: 'FieldValueNotFound',
  Forbidden: 'FieldValueForbidden',
  TooLong: 'FieldValueTooLong',
  TooMany: 'FieldValueTooMany',
};

export function fmtValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  return JSON.stringify(v);
}

/** The error body without the field prefix, e.g. `Invalid value: 0: must be between 1 and 65535, inclusive`. */
export function fieldErrorBody(e: FieldError): string {
  const value = e.shown ?? fmtValue(e.value);
  switch (e.type) {
    case 'Required':
      return e.detail ? `Required value: ${e.detail}` : 'Required value';
    case 'Invalid':
      return `Invalid value: ${value}${e.detail ? `: ${e.detail}` : ''}`;
    case 'NotSupported':
      return `Unsupported value: ${value}${e.detail ? `: ${e.detail}` : ''}`;
    case 'Duplicate':
      return `Duplicate value: ${value}`;
    case 'NotFound':
      return `Not found: ${value}`;
    case 'Forbidden':
      return `Forbidden${e.detail ? `: ${e.detail}` : ''}`;
    case 'TooLong':
      return `Too long${e.detail ? `: ${e.detail}` : ''}`;
    case 'TooMany':
      return `Too many${e.detail ? `: ${e.detail}` : ''}`;
  }
}

export const fieldErrorString = (e: FieldError): string => `${e.field}: ${fieldErrorBody(e)}`;

/** 422 Invalid, e.g. `Service "x" is invalid: spec.ports: Required value`. */
export function invalid(group: string, kind: string, name: string, errs: FieldError[]): ApiError {
  const strs = errs.map(fieldErrorString);
  const joined = strs.length === 1 ? strs[0] : `[${strs.join(', ')}]`;
  return new ApiError(422, 'Invalid', `${group ? `${kind}.${group}` : kind} "${name}" is invalid: ${joined}`, {
    name,
    ...(group ? { group } : {}),
    kind,
    causes: errs.map((e) => ({ reason: causeReason[e.type], message: fieldErrorBody(e), field: e.field })),
  });
}
