// The envelope shared by every config object: kind/apiVersion dispatch, metadata, the error label and reporter.
import type { ConfigError } from './types.js';
import {
  checkKnownFields, isRecord, optObject, optStringMap, show, wrongType,
  type JsonObject, type Report,
} from './fields.js';
import { labelKeyProblem, labelValueProblem } from './selector.js';

export const DEFAULT_NAMESPACE = 'metallb-system';

export type CrdKind = 'IPAddressPool' | 'L2Advertisement' | 'BGPAdvertisement' | 'BFDProfile' | 'Community' | 'BGPPeer';
export type ConfigKind = CrdKind | 'ConfigMap';

const GROUP = 'metallb.io';
const VERSIONS: Readonly<Record<CrdKind, readonly string[]>> = {
  IPAddressPool: ['v1beta1'],
  L2Advertisement: ['v1beta1'],
  BGPAdvertisement: ['v1beta1'],
  BFDProfile: ['v1beta1'],
  Community: ['v1beta1'],
  BGPPeer: ['v1beta1', 'v1beta2'],
};
const isCrdKind = (k: string): k is CrdKind => Object.prototype.hasOwnProperty.call(VERSIONS, k);

/**
 * What an input object is to the config parser:
 * - a MetalLB CRD (`metallb.io`, any supported version; a missing apiVersion is taken as the newest, because
 *   objects listed through some clients lose it);
 * - a legacy ConfigMap (`kind: ConfigMap` whose `data` has a `config` key);
 * - `unsupported`: a metallb.io kind in a version we do not read (an error);
 * - `other`: anything else, ignored by the parser.
 */
export type Classification =
  | { type: 'config'; kind: ConfigKind; version: string }
  | { type: 'unsupported'; kind: string; apiVersion: string }
  | { type: 'other' };

export function classifyObject(obj: unknown): Classification {
  if (!isRecord(obj)) return { type: 'other' };
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  const apiVersion = typeof obj.apiVersion === 'string' ? obj.apiVersion : undefined;
  if (kind === 'ConfigMap') {
    const data = obj.data;
    const isLegacy = (apiVersion === undefined || apiVersion === 'v1') && isRecord(data) && 'config' in data;
    return isLegacy ? { type: 'config', kind, version: 'v1' } : { type: 'other' };
  }
  if (apiVersion === undefined) {
    return isCrdKind(kind) ? { type: 'config', kind, version: VERSIONS[kind].at(-1) ?? 'v1beta1' } : { type: 'other' };
  }
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  if (group !== GROUP) return { type: 'other' };
  if (isCrdKind(kind) && VERSIONS[kind].includes(version)) return { type: 'config', kind, version };
  return { type: 'unsupported', kind, apiVersion };
}

/**
 * Collects ConfigErrors; one reporter per object, optionally translating field paths (legacy ConfigMap).
 * Each error remembers the input position of its object so that `sorted()` lists errors in input order,
 * whatever order the rules ran in.
 */
export class ErrorCollector {
  private readonly entries: { error: ConfigError; position: number }[] = [];
  reporter(object: string, position: number, mapField: (field: string) => string = (f) => f): Report {
    return (field, message) => this.add({ object, field: mapField(field), message }, position);
  }
  add(error: ConfigError, position: number): void {
    this.entries.push({ error, position });
  }
  get count(): number {
    return this.entries.length;
  }
  /** Stable: errors of one object keep the order in which they were found. */
  sorted(): ConfigError[] {
    return [...this.entries].sort((a, b) => a.position - b.position).map((e) => e.error);
  }
}

export interface Envelope {
  kind: ConfigKind;
  version: string;
  /** '' when missing (already reported). */
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  /** `Kind namespace/name`, the ConfigError object. */
  label: string;
  report: Report;
  raw: JsonObject;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface EnvelopeOptions {
  namespace: string;
  /** Position in the input, to name objects without a name. */
  index: number;
  /** Overrides the object label and field paths of errors (objects converted from a legacy ConfigMap). */
  origin?: { label: string; mapField: (field: string) => string };
}

/** Reads kind, metadata and top-level fields; reports envelope problems. */
export function readEnvelope(
  raw: JsonObject, kind: ConfigKind, version: string, errors: ErrorCollector, opts: EnvelopeOptions,
): Envelope {
  const meta = isRecord(raw.metadata) ? raw.metadata : {};
  const rawName = meta.name;
  const name = typeof rawName === 'string' ? rawName : '';
  const rawNamespace = meta.namespace;
  const namespace = typeof rawNamespace === 'string' && rawNamespace !== '' ? rawNamespace : opts.namespace;
  const label = opts.origin?.label ?? `${kind} ${namespace}/${name || `(unnamed object #${opts.index + 1})`}`;
  const report = errors.reporter(label, opts.index, opts.origin?.mapField);

  const topLevel = kind === 'ConfigMap'
    ? ['apiVersion', 'kind', 'metadata', 'data', 'binaryData', 'immutable']
    : ['apiVersion', 'kind', 'metadata', 'spec', 'status'];
  checkKnownFields(raw, topLevel, '', report);
  if (raw.metadata === undefined || raw.metadata === null) report('metadata', 'is required (metadata.name names the object)');
  else if (!isRecord(raw.metadata)) report('metadata', wrongType('an object', raw.metadata));

  if (rawName === undefined || rawName === null || rawName === '') {
    if (isRecord(raw.metadata)) report('metadata.name', 'is required');
  } else if (typeof rawName !== 'string') {
    report('metadata.name', wrongType('a string', rawName));
  } else if (rawName.length > 253 || !DNS1123_SUBDOMAIN.test(rawName)) {
    report('metadata.name', `invalid name ${show(rawName)}: must be a lowercase DNS subdomain (a-z, 0-9, "-", ".") of at most 253 characters`);
  }
  if (rawNamespace !== undefined && rawNamespace !== null && typeof rawNamespace !== 'string') {
    report('metadata.namespace', wrongType('a string', rawNamespace));
  } else if (namespace !== opts.namespace && !opts.origin) {
    // (Objects converted from a ConfigMap carry its namespace; the ConfigMap itself gets this error once.)
    // MetalLB reads config objects only from its own namespace (and its webhook refuses others).
    report('metadata.namespace', `config objects must be in the MetalLB namespace ${show(opts.namespace)}, got ${show(namespace)}`);
  }
  const labels = optStringMap(meta, 'labels', 'metadata', report) ?? {};
  for (const [k, v] of Object.entries(labels)) {
    const problem = labelKeyProblem(k) ?? labelValueProblem(v);
    if (problem) report(`metadata.labels.${k}`, problem);
  }
  return { kind, version, name, namespace, labels, label, report, raw };
}

/**
 * Two objects of one kind cannot share a name (the API server would not allow it); the later ones get the error,
 * in MetalLB's wording for the kind when given.
 */
export function checkUniqueNames(
  envs: readonly Envelope[], message = (name: string, kind: ConfigKind): string => `duplicate definition of ${kind} ${show(name)}`,
): void {
  const seen = new Set<string>();
  for (const env of envs) {
    if (!env.name) continue;
    if (seen.has(env.name)) env.report('metadata.name', message(env.name, env.kind));
    seen.add(env.name);
  }
}

/** The object's `spec` (`required`: report when missing); undefined when missing or not an object. */
export function readSpec(env: Envelope, required: boolean): JsonObject | undefined {
  const spec = optObject(env.raw, 'spec', '', env.report);
  if (spec === undefined && (env.raw.spec === undefined || env.raw.spec === null)) {
    if (required) env.report('spec', 'is required');
    else return {};
  }
  return spec;
}
