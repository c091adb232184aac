// Builders and assertions shared by the config tests.
import assert from 'node:assert/strict';
import type { KubeObject, Namespace, Node, Secret } from '../../src/k8s/types.js';
import { formatConfigError, parseConfig, type ClusterContext, type Config, type ConfigError, type ParseResult } from '../../src/config/index.js';

export const NS = 'metallb-system';

export function crd(kind: string, name: string, spec: unknown, apiVersion = 'metallb.io/v1beta1', meta: Record<string, unknown> = {}): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: NS, ...meta }, spec } as KubeObject;
}
/** Any object shape, for tests of malformed input (parseConfig takes untrusted objects). */
export const raw = (o: Record<string, unknown>): KubeObject => o as KubeObject;
export const pool = (name: string, spec: unknown, labels?: Record<string, string>): KubeObject =>
  crd('IPAddressPool', name, spec, 'metallb.io/v1beta1', labels ? { labels } : {});
export const l2 = (name: string, spec: unknown = {}): KubeObject => crd('L2Advertisement', name, spec);
export const bgpAd = (name: string, spec: unknown = {}): KubeObject => crd('BGPAdvertisement', name, spec);
export const peer = (name: string, spec: unknown, version: 'v1beta1' | 'v1beta2' = 'v1beta2'): KubeObject =>
  crd('BGPPeer', name, spec, `metallb.io/${version}`);
export const bfd = (name: string, spec: unknown = {}): KubeObject => crd('BFDProfile', name, spec);
export const community = (name: string, aliases: unknown[]): KubeObject =>
  crd('Community', name, { communities: aliases });

export const namespace = (name: string, labels: Record<string, string> = {}): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
export const node = (name: string, labels: Record<string, string> = {}): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels } });
export const secret = (name: string, data: Record<string, string>, type = 'kubernetes.io/basic-auth'): Secret =>
  ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS }, type, data });

export const emptyCtx: ClusterContext = { namespaces: [], nodes: [], secrets: [] };

export const parse = (objects: readonly KubeObject[], ctx: Partial<ClusterContext> = {}): ParseResult =>
  parseConfig(objects, { ...emptyCtx, ...ctx });

export function valid(objects: readonly KubeObject[], ctx: Partial<ClusterContext> = {}): Config {
  const r = parse(objects, ctx);
  assert.deepEqual(r.errors.map(formatConfigError), [], 'expected a valid config');
  assert.ok(r.config);
  return r.config;
}

export interface Expected {
  object?: string;
  field?: string;
  /** Substrings the message must contain. */
  message?: string | string[];
}

const matches = (e: ConfigError, x: Expected): boolean =>
  (x.object === undefined || e.object === x.object)
  && (x.field === undefined || e.field === x.field)
  && [x.message ?? []].flat().every((m) => e.message.includes(m));

/** Asserts the parse failed with (at least) an error matching each expectation, and no config. */
export function invalid(objects: readonly KubeObject[], expected: Expected | Expected[], ctx: Partial<ClusterContext> = {}): ConfigError[] {
  const r = parse(objects, ctx);
  assert.equal(r.config, undefined, 'expected no config');
  for (const x of [expected].flat()) {
    assert.ok(r.errors.some((e) => matches(e, x)),
      `no error matching ${JSON.stringify(x)}; got:\n${r.errors.map(formatConfigError).join('\n')}`);
  }
  return r.errors;
}
