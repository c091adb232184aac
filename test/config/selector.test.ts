// Label selectors: Kubernetes syntax rules, canonical text, matching.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelKeyProblem, labelValueProblem, parseLabelSelector } from '../../src/config/index.js';
import type { ConfigError } from '../../src/config/index.js';

function sel(raw: unknown): { selector?: ReturnType<typeof parseLabelSelector>; errors: Omit<ConfigError, 'object'>[] } {
  const errors: Omit<ConfigError, 'object'>[] = [];
  const selector = parseLabelSelector(raw, 's', (field, message) => errors.push({ field, message }));
  return { selector, errors };
}

test('label keys and values follow Kubernetes syntax', () => {
  for (const ok of ['app', 'a.b_c-d', 'example.com/app', 'kubernetes.io/hostname', 'A1', 'x'.repeat(63)]) assert.equal(labelKeyProblem(ok), undefined, ok);
  for (const bad of ['', '-app', 'app-', 'a/b/c', '/app', 'Example.com/app', 'example.com/', 'x'.repeat(64), 'a b']) assert.ok(labelKeyProblem(bad), bad);
  for (const ok of ['', 'v1', 'a.b-c_d', 'x'.repeat(63)]) assert.equal(labelValueProblem(ok), undefined, ok);
  for (const bad of ['-v', 'v-', 'a b', 'x'.repeat(64), 'ä']) assert.ok(labelValueProblem(bad), bad);
});

test('selector text is canonical (sorted keys, sorted values) and matching follows the operators', () => {
  const { selector, errors } = sel({
    matchLabels: { zone: 'a' },
    matchExpressions: [
      { key: 'tier', operator: 'In', values: ['web', 'api'] },
      { key: 'env', operator: 'NotIn', values: ['dev'] },
      { key: 'gpu', operator: 'Exists' },
      { key: 'legacy', operator: 'DoesNotExist', values: [] },
    ],
  });
  assert.deepEqual(errors, []);
  assert.equal(selector?.text, 'env notin (dev),gpu,!legacy,tier in (api,web),zone=a');
  const base = { zone: 'a', tier: 'web', gpu: '' };
  assert.equal(selector?.matches(base), true);
  assert.equal(selector?.matches({ ...base, env: 'prod' }), true);
  assert.equal(selector?.matches({ ...base, env: 'dev' }), false);
  assert.equal(selector?.matches({ ...base, legacy: 'x' }), false);
  assert.equal(selector?.matches({ zone: 'a', tier: 'web' }), false);
  assert.equal(selector?.matches({ ...base, tier: 'db' }), false);
  assert.equal(selector?.matches(undefined), false);
  // The empty selector matches everything.
  assert.equal(sel({}).selector?.matches(undefined), true);
  assert.equal(sel({}).selector?.text, '');
});

const invalidRows: [string, unknown, string, string][] = [
  ['In without values', { matchExpressions: [{ key: 'a', operator: 'In' }] }, 's.matchExpressions[0].values', 'needs at least one value'],
  ['NotIn with empty values', { matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] }, 's.matchExpressions[0].values', 'needs at least one value'],
  ['Exists with values', { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, 's.matchExpressions[0].values', 'must not have values'],
  ['DoesNotExist with values', { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] }, 's.matchExpressions[0].values', 'must not have values'],
  ['unknown operator', { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] }, 's.matchExpressions[0].operator', '"Gt" is not a valid label selector operator'],
  ['missing key', { matchExpressions: [{ operator: 'Exists' }] }, 's.matchExpressions[0].key', 'is required'],
  ['missing operator', { matchExpressions: [{ key: 'a' }] }, 's.matchExpressions[0].operator', 'is required'],
  ['bad key', { matchExpressions: [{ key: 'a/b/c', operator: 'Exists' }] }, 's.matchExpressions[0].key', 'invalid label key "a/b/c"'],
  ['bad value', { matchExpressions: [{ key: 'a', operator: 'In', values: ['-x'] }] }, 's.matchExpressions[0].values[0]', 'invalid label value "-x"'],
  ['duplicate values', { matchExpressions: [{ key: 'a', operator: 'In', values: ['x', 'x'] }] }, 's.matchExpressions[0].values[1]', 'duplicate definition of match expression value'],
  ['duplicate expressions', { matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'a', operator: 'Exists' }] }, 's.matchExpressions[1]', 'duplicate definition of match expressions'],
  ['bad matchLabels key', { matchLabels: { 'bad key': 'v' } }, 's.matchLabels.bad key', 'invalid label key'],
  ['bad matchLabels value', { matchLabels: { k: 'bad value' } }, 's.matchLabels.k', 'invalid label value'],
  ['matchLabels value not a string', { matchLabels: { k: 5 } }, 's.matchLabels.k', 'must be a string'],
  ['values not a list', { matchExpressions: [{ key: 'a', operator: 'In', values: 'x' }] }, 's.matchExpressions[0].values', 'must be a list'],
  ['not an object', 'app=web', 's', 'must be a label selector object'],
  ['unknown field', { matchLabel: { a: 'b' } }, 's.matchLabel', 'unknown field'],
];
for (const [name, raw, field, message] of invalidRows) {
  test(`selector invalid: ${name}`, () => {
    const { selector, errors } = sel(raw);
    assert.equal(selector, undefined);
    assert.ok(errors.some((e) => e.field === field && e.message.includes(message)), JSON.stringify(errors));
  });
}
