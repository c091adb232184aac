// Example objects validate against the CRDs' openAPIV3Schema (via ajv); invalid ones do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { ROOT, FIXTURES, crdValidators, exampleFiles, loadYamlDocs, type Obj } from './lib.js';

const validators = crdValidators();

for (const file of exampleFiles()) {
  test(`every metallb.io object in ${relative(ROOT, file)} validates against deploy/crds`, () => {
    const docs = loadYamlDocs(file).filter((d) => String(d.apiVersion).startsWith('metallb.io/'));
    assert.ok(docs.length > 0, 'has metallb.io objects');
    for (const d of docs) {
      const r = validators.validate(structuredClone(d));
      assert.ok(r.ok, `${d.kind} ${d.metadata?.name}: ${r.errors}`);
    }
  });
}

test('the fixture covers every kind and both BGPPeer versions', () => {
  const docs = loadYamlDocs(join(FIXTURES, 'valid.yaml'));
  const seen = new Set(docs.map((d) => `${d.apiVersion}|${d.kind}`));
  for (const k of [
    'metallb.io/v1beta1|IPAddressPool',
    'metallb.io/v1beta1|L2Advertisement',
    'metallb.io/v1beta1|BGPAdvertisement',
    'metallb.io/v1beta1|BGPPeer',
    'metallb.io/v1beta2|BGPPeer',
    'metallb.io/v1beta1|BFDProfile',
    'metallb.io/v1beta1|Community',
    'metallb.io/v1beta1|ServiceL2Status',
    'metallb.io/v1beta1|ServiceBGPStatus',
    'metallb.io/v1beta1|ConfigurationState',
  ]) {
    assert.ok(seen.has(k), k);
    assert.ok(validators.has(...(k.split('|') as [string, string])), k);
  }
});

test('schema defaults are applied like the API server does (autoAssign, peerPort, aggregation lengths)', () => {
  const pool: Obj = { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p' }, spec: { addresses: ['10.0.0.0/24'] } };
  assert.ok(validators.validate(pool).ok);
  assert.equal(pool.spec.autoAssign, true);
  assert.equal(pool.spec.avoidBuggyIPs, false);
  const peer: Obj = { apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'p' }, spec: { myASN: 1, peerASN: 2, peerAddress: '10.0.0.1' } };
  assert.ok(validators.validate(peer).ok);
  assert.equal(peer.spec.peerPort, 179);
  const old: Obj = { apiVersion: 'metallb.io/v1beta1', kind: 'BGPPeer', metadata: { name: 'p' }, spec: { myASN: 1, peerASN: 2, peerAddress: '10.0.0.1' } };
  assert.ok(validators.validate(old).ok);
  assert.equal(old.spec.peerPort, undefined, 'v1beta1 has no peerPort default');
  const adv: Obj = { apiVersion: 'metallb.io/v1beta1', kind: 'BGPAdvertisement', metadata: { name: 'a' }, spec: {} };
  assert.ok(validators.validate(adv).ok);
  assert.deepEqual([adv.spec.aggregationLength, adv.spec.aggregationLengthV6], [32, 128]);
});

test('invalid objects (missing required, wrong type, bad enum, out of range, unknown field) are rejected', () => {
  const docs = loadYamlDocs(join(FIXTURES, 'invalid.yaml'));
  assert.ok(docs.length >= 25);
  for (const d of docs) {
    const r = validators.validate(structuredClone(d));
    assert.equal(r.ok, false, `${d.kind} ${d.metadata.name} should be rejected: ${d.metadata.annotations.expect}`);
    assert.ok(r.errors.includes(d.metadata.annotations.field), `${d.metadata.name}: ${r.errors}`);
  }
});

test('boundary values are accepted', () => {
  const ok = (o: Obj) => {
    const r = validators.validate(o);
    assert.ok(r.ok, `${JSON.stringify(o.spec)}: ${r.errors}`);
  };
  const peer = (spec: Obj): Obj => ({ apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'p' }, spec });
  ok(peer({ myASN: 4294967295, peerASN: 0, peerAddress: '::1', peerPort: 16384 }));
  ok(peer({ myASN: 1, peerASN: 1, peerAddress: '10.0.0.1', peerPort: 1 }));
  const bfd = (spec: Obj): Obj => ({ apiVersion: 'metallb.io/v1beta1', kind: 'BFDProfile', metadata: { name: 'b' }, spec });
  ok(bfd({ receiveInterval: 10, transmitInterval: 60000, detectMultiplier: 255, minimumTtl: 1, echoInterval: 10 }));
  ok({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'L2Advertisement',
    metadata: { name: 'l' },
    spec: { preferredNodeSelectors: [{ weight: 1, preference: {} }, { weight: 100, preference: { matchLabels: { a: 'b' } } }] },
  });
});
