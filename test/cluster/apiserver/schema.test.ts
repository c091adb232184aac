import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldErrorString } from '../../../src/cluster/apiserver/errors.js';
import { applyDefaults, prune, validateSchema } from '../../../src/cluster/apiserver/schema.js';

const schema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      required: ['addresses'],
      properties: {
        addresses: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[0-9./-]+$' } },
        autoAssign: { type: 'boolean', default: true },
        mode: { type: 'string', enum: ['layer2', 'bgp'], default: 'layer2' },
        prio: { type: 'integer', minimum: 0, maximum: 10 },
        ratio: { type: 'number', exclusiveMinimum: true, minimum: 0 },
        port: { 'x-kubernetes-int-or-string': true },
        nested: { type: 'object', default: {}, properties: { a: { type: 'string', default: 'x' } } },
        labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 3 } },
        free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        items: { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'], items: { type: 'object', properties: { name: { type: 'string' } } } },
        nullableStr: { type: 'string', nullable: true },
      },
    },
  },
};

const errs = (v: unknown): string[] => validateSchema(v, schema, '').map(fieldErrorString);

test('defaults are applied, also nested inside defaults', () => {
  const o = { spec: { addresses: ['1.2.3.4/32'], autoAssign: null } };
  applyDefaults(o, schema);
  assert.deepEqual(o.spec, { addresses: ['1.2.3.4/32'], autoAssign: true, mode: 'layer2', nested: { a: 'x' } });
  const p = { spec: { addresses: ['1'], mode: 'bgp', autoAssign: false } };
  applyDefaults(p, schema);
  assert.equal(p.spec.mode, 'bgp');
  assert.equal(p.spec.autoAssign, false);
});

test('unknown fields are pruned unless preserved; metadata is kept', () => {
  const o = { apiVersion: 'x/v1', kind: 'K', metadata: { name: 'a', bogus: 1 }, extra: 1, spec: { addresses: [], unknown: 2, free: { anything: { goes: 1 } }, items: [{ name: 'a', z: 1 }] } };
  const unknown: string[] = [];
  prune(o, schema, '', true, unknown);
  assert.deepEqual(unknown.sort(), ['extra', 'metadata.bogus', 'spec.items[0].z', 'spec.unknown']);
  assert.deepEqual(o, { apiVersion: 'x/v1', kind: 'K', metadata: { name: 'a' }, spec: { addresses: [], free: { anything: { goes: 1 } }, items: [{ name: 'a' }] } });
});

test('structural validation with Kubernetes-style messages', () => {
  assert.deepEqual(errs({ spec: { addresses: ['1.2.3.4'] } }), []);
  assert.deepEqual(errs({ spec: {} }), ['spec.addresses: Required value']);
  assert.deepEqual(errs({ spec: { addresses: [] } }), ['spec.addresses: Invalid value: 0: spec.addresses in body should have at least 1 items']);
  assert.deepEqual(errs({ spec: { addresses: 'x' } }), ['spec.addresses: Invalid value: "x": spec.addresses in body must be of type array: "string"']);
  assert.deepEqual(errs({ spec: { addresses: ['abc'] } }), [`spec.addresses[0]: Invalid value: "abc": spec.addresses[0] in body should match '^[0-9./-]+$'`]);
  assert.deepEqual(errs({ spec: { addresses: ['1'], mode: 'x' } }), ['spec.mode: Unsupported value: "x": supported values: "layer2", "bgp"']);
  assert.deepEqual(errs({ spec: { addresses: ['1'], prio: 11 } }), ['spec.prio: Invalid value: 11: spec.prio in body should be less than or equal to 10']);
  assert.deepEqual(errs({ spec: { addresses: ['1'], prio: -1 } }), ['spec.prio: Invalid value: -1: spec.prio in body should be greater than or equal to 0']);
  assert.deepEqual(errs({ spec: { addresses: ['1'], prio: 1.5 } }), ['spec.prio: Invalid value: 1.5: spec.prio in body must be of type integer: "number"']);
  assert.deepEqual(errs({ spec: { addresses: ['1'], ratio: 0 } }), ['spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0']);
  assert.deepEqual(errs({ spec: { addresses: ['1'], port: 'http' } }), []);
  assert.deepEqual(errs({ spec: { addresses: ['1'], port: 80 } }), []);
  assert.equal(errs({ spec: { addresses: ['1'], port: true } }).length, 1);
  assert.deepEqual(errs({ spec: { addresses: ['1'], labels: { a: 'long' } } }), ['spec.labels.a: Too long: may not be more than 3 bytes']);
  assert.deepEqual(errs({ spec: { addresses: ['1'], items: [{ name: 'a' }, { name: 'a' }] } }), ['spec.items[1]: Duplicate value: {"name":"a"}']);
  assert.deepEqual(errs({ spec: { addresses: ['1'], nullableStr: null } }), []);
  assert.equal(errs({ spec: { addresses: ['1'], autoAssign: 'yes' } }).length, 1);
});

test('a backtracking pattern is cut off and reported instead of stalling the server', () => {
  const s = { type: 'object', properties: { p: { type: 'string', pattern: '(a+)+$' } } };
  const t0 = Date.now();
  const found = validateSchema({ p: `${'a'.repeat(40)}!` }, s, '').map(fieldErrorString);
  assert.ok(Date.now() - t0 < 5000);
  assert.deepEqual(found, ["p: Invalid value: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\": p in body: matching the pattern '(a+)+$' took too long"]);
  assert.deepEqual(validateSchema({ p: 'aaa' }, s, ''), []);
});
