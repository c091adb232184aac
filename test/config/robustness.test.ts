// Wrong types anywhere become ConfigErrors, never exceptions; random mutations of valid objects never throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '../../src/k8s/types.js';
import { convertLegacyConfigMap, parseConfig, readYamlDocuments, type ConfigError } from '../../src/config/index.js';
import { emptyCtx, invalid, raw } from './helpers.js';
import { seededRandom } from '../helpers/random.js';

const load = (path: string): KubeObject[] => readYamlDocuments(readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8'), path).objects;
const seeds: KubeObject[] = [
  ...load('../../examples/config.yaml'),
  ...load('../../examples/legacy-configmap.yaml'),
  ...load('../fixtures/config/legacy-full.yaml'),
  ...load('../fixtures/config/valid-crds.yaml'),
  raw({ apiVersion: 'metallb.io/v1beta1', kind: 'BGPPeer', metadata: { name: 'old' }, spec: { myASN: 1, peerASN: 2, peerAddress: '10.0.0.1', nodeSelectors: [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['b'] }] }] } }),
];

const wellFormed = (e: ConfigError): boolean =>
  typeof e.object === 'string' && e.object.length > 0 && typeof e.field === 'string' && typeof e.message === 'string' && e.message.length > 0;

test('wrong types at every level are errors', () => {
  const P = 'metallb.io/v1beta1';
  const rows: [KubeObject, string, string][] = [
    [raw({ apiVersion: P, kind: 'IPAddressPool', metadata: { name: 'p' }, spec: { addresses: 5 } }), 'spec.addresses', 'must be a list, got a number (5)'],
    [raw({ apiVersion: P, kind: 'IPAddressPool', metadata: { name: 'p' }, spec: { addresses: [{}] } }), 'spec.addresses[0]', 'got an object'],
    [raw({ apiVersion: P, kind: 'IPAddressPool', metadata: 'p', spec: { addresses: ['10.0.0.0/24'] } }), 'metadata', 'must be an object'],
    [raw({ apiVersion: P, kind: 'IPAddressPool', metadata: { name: 7 }, spec: { addresses: ['10.0.0.0/24'] } }), 'metadata.name', 'must be a string'],
    [raw({ apiVersion: P, kind: 'IPAddressPool', metadata: { name: 'p', labels: [] }, spec: { addresses: ['10.0.0.0/24'] } }), 'metadata.labels', 'must be an object'],
    [raw({ apiVersion: P, kind: 'IPAddressPool', metadata: { name: 'p', namespace: 3 }, spec: { addresses: ['10.0.0.0/24'] } }), 'metadata.namespace', 'must be a string'],
    [raw({ apiVersion: P, kind: 'L2Advertisement', metadata: { name: 'a' }, spec: { nodeSelectors: 'rack=1' } }), 'spec.nodeSelectors', 'must be a list'],
    [raw({ apiVersion: P, kind: 'L2Advertisement', metadata: { name: 'a' }, spec: { nodeSelectors: [null] } }), 'spec.nodeSelectors[0]', 'must be a label selector object'],
    [raw({ apiVersion: P, kind: 'BGPAdvertisement', metadata: { name: 'a' }, spec: { communities: [1] } }), 'spec.communities[0]', 'must be a string'],
    [raw({ apiVersion: P, kind: 'BGPAdvertisement', metadata: { name: 'a' }, spec: { aggregationLength: '24' } }), 'spec.aggregationLength', 'must be an integer'],
    [raw({ apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'p' }, spec: { myASN: 1, peerASN: 2, peerAddress: ['10.0.0.1'] } }), 'spec.peerAddress', 'must be a string'],
    [raw({ apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'p' }, spec: { myASN: 1, peerASN: 2, peerAddress: '10.0.0.1', passwordSecret: 'x' } }), 'spec.passwordSecret', 'must be an object'],
    [raw({ apiVersion: P, kind: 'BFDProfile', metadata: { name: 'b' }, spec: [] }), 'spec', 'must be an object'],
    [raw({ apiVersion: P, kind: 'Community', metadata: { name: 'c' }, spec: { communities: [['a', '1:1']] } }), 'spec.communities[0]', 'must be an object'],
    [raw({ apiVersion: P, kind: 'Community', metadata: { name: 'c' }, spec: { communities: { a: '1:1' } } }), 'spec.communities', 'must be a list'],
    [raw({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config' }, data: { config: { peers: [] } } }), 'data.config', 'must be a string'],
    [raw({ apiVersion: 'metallb.io/v1alpha1', kind: 'IPAddressPool', metadata: { name: 'p' } }), 'apiVersion', 'unsupported apiVersion "metallb.io/v1alpha1"'],
    [raw({ apiVersion: 'metallb.io/v1beta2', kind: 'IPAddressPool', metadata: { name: 'p' } }), 'apiVersion', 'unsupported apiVersion'],
  ];
  for (const [obj, field, message] of rows) invalid([obj], { field, message });
});

test('objects of other kinds, and non-objects, are ignored', () => {
  const r = parseConfig([raw({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }), null as unknown as KubeObject, 5 as unknown as KubeObject, raw({ kind: 'IPAddressPool', apiVersion: 'example.com/v1' })], emptyCtx);
  assert.deepEqual(r.errors, []);
  assert.equal(r.config?.pools.length, 0);
});

test('a broken cluster context does not throw', () => {
  const ctx = { namespaces: [null, { metadata: { name: 'a', labels: 5 } }, { metadata: { name: 'b', labels: { x: 'y' } } }], nodes: 'nope', secrets: [{}] };
  const r = parseConfig(seeds, ctx as unknown as typeof emptyCtx);
  assert.ok(Array.isArray(r.errors));
});


const weird: unknown[] = [null, undefined, 0, -1, 1.5, 4294967296, '', ' ', 'x', '10.0.0.0/24', '1:1', 'large:1:2:3', '90s', true, false, [], [null], {}, { a: 1 }, ['x'], NaN, '\n', 'In', 'Exists'];

function mutate(value: unknown, rand: () => number, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  if (depth > 0 && rand() < 0.15) return pick(weird);
  if (Array.isArray(value)) {
    const copy = value.map((v) => mutate(v, rand, depth + 1));
    if (rand() < 0.2) copy.push(pick(weird));
    if (rand() < 0.1 && copy.length > 0) copy.splice(Math.floor(rand() * copy.length), 1);
    if (rand() < 0.1 && copy.length > 0) copy.push(copy[0]);
    return copy;
  }
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (rand() < 0.08) continue;
      copy[k] = mutate(v, rand, depth + 1);
    }
    if (rand() < 0.08) copy[pick(['extra', 'spec', 'metadata', 'kind', 'values', 'name'])] = pick(weird);
    return copy;
  }
  if (typeof value === 'string' && rand() < 0.2) return rand() < 0.5 ? `${value} ` : value.slice(0, Math.floor(rand() * value.length));
  if (typeof value === 'number' && rand() < 0.2) return pick([0, -value, value * 1000, value + 0.5]);
  return value;
}

test('fuzz: random mutations of valid objects never throw and give well-formed errors', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const rand = seededRandom(seed);
    const objects = seeds.filter(() => rand() < 0.7).map((o) => mutate(o, rand) as KubeObject);
    try {
      const r = parseConfig(objects, emptyCtx);
      assert.ok(r.errors.every(wellFormed), `seed ${seed}: malformed error`);
      assert.equal(r.config === undefined, r.errors.length > 0, `seed ${seed}: config iff no errors`);
      for (const o of objects) {
        if (o && (o as { kind?: unknown }).kind === 'ConfigMap') convertLegacyConfigMap(o);
      }
    } catch (err) {
      assert.fail(`seed ${seed} threw: ${err instanceof Error ? err.stack : String(err)}\n${JSON.stringify(objects).slice(0, 2000)}`);
    }
  }
});

test('fuzz: mutated legacy config text never throws', () => {
  const [cm] = load('../fixtures/config/legacy-full.yaml');
  const text = (cm as { data?: { config?: string } }).data?.config ?? '';
  for (let seed = 1; seed <= 300; seed++) {
    const rand = seededRandom(seed);
    const chars = [...text];
    for (let i = 0; i < 5; i++) {
      const at = Math.floor(rand() * chars.length);
      chars[at] = [' ', '\n', ':', '-', '[', '"', 'x', '9', '\t'][Math.floor(rand() * 9)] ?? ' ';
    }
    const mutated = { ...cm, data: { config: chars.join('') } } as KubeObject;
    assert.doesNotThrow(() => parseConfig([mutated], emptyCtx), `seed ${seed}`);
    assert.doesNotThrow(() => readYamlDocuments(chars.join(''), 'f'), `seed ${seed}`);
  }
});

test('errors are listed in input order, whatever order the rules run in', () => {
  const r = parseConfig([
    raw({ apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'z' }, spec: { myASN: 0, peerASN: 1, peerAddress: '10.0.0.1' } }),
    raw({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'a' }, spec: { addresses: [] } }),
    raw({ apiVersion: 'metallb.io/v1beta1', kind: 'Community', metadata: { name: 'c' }, spec: { communities: [{ name: 'x', value: 'bad:value' }] } }),
  ], emptyCtx);
  assert.deepEqual(r.errors.map((e) => e.object), ['BGPPeer metallb-system/z', 'IPAddressPool metallb-system/a', 'Community metallb-system/c']);
});
