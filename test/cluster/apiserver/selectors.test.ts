import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../../src/cluster/apiserver/errors.js';
import { checkFieldSelector, labelSelectorFromObject, matchFields, matchLabels, parseFieldSelector, parseLabelSelector } from '../../../src/cluster/apiserver/selectors.js';

const L = { app: 'web', tier: 'front', 'example.com/zone': 'a', n: '5' };

test('label selector operators', () => {
  const m = (s: string): boolean => matchLabels(parseLabelSelector(s), L);
  assert.equal(m(''), true);
  assert.equal(m('app=web'), true);
  assert.equal(m('app==web'), true);
  assert.equal(m('app=db'), false);
  assert.equal(m('app!=db'), true);
  assert.equal(m('missing!=x'), true);
  assert.equal(m('app in (db, web)'), true);
  assert.equal(m('app in (db)'), false);
  assert.equal(m('app notin (db)'), true);
  assert.equal(m('app notin (web,db)'), false);
  assert.equal(m('missing notin (x)'), true);
  assert.equal(m('tier'), true);
  assert.equal(m('missing'), false);
  assert.equal(m('!missing'), true);
  assert.equal(m('!app'), false);
  assert.equal(m('example.com/zone=a,app=web'), true);
  assert.equal(m('app=web, tier!=front'), false);
  assert.equal(m('n>3'), true);
  assert.equal(m('n<3'), false);
});

test('label selector syntax errors are 400', () => {
  for (const bad of ['app=', '=x', 'app in x', 'app in (a', 'a b', 'app=we b']) {
    if (bad === 'app=') {
      // an empty value is valid (matches an empty label)
      assert.equal(matchLabels(parseLabelSelector(bad), { app: '' }), true);
      continue;
    }
    assert.throws(() => parseLabelSelector(bad), (e: unknown) => e instanceof ApiError && e.code === 400, bad);
  }
});

test('metav1.LabelSelector objects', () => {
  const sel = labelSelectorFromObject({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }, { key: 'x', operator: 'DoesNotExist' }] });
  assert.equal(matchLabels(sel, L), true);
  assert.equal(matchLabels(sel, { app: 'web' }), false);
});

test('field selectors', () => {
  const ev = { metadata: { name: 'e1', namespace: 'default' }, involvedObject: { kind: 'Service', name: 'web' }, type: 'Warning', reason: 'AllocationFailed', source: { component: 'metallb-controller' } };
  const f = (s: string): boolean => matchFields(parseFieldSelector(s), ev);
  assert.equal(f('metadata.name=e1'), true);
  assert.equal(f('metadata.name==e1,metadata.namespace=default'), true);
  assert.equal(f('metadata.namespace!=default'), false);
  assert.equal(f('involvedObject.kind=Service,involvedObject.name=web,type=Warning'), true);
  assert.equal(f('reason=Other'), false);
  assert.equal(f('source=metallb-controller'), true);
  checkFieldSelector(parseFieldSelector('involvedObject.name=x'), '/events');
  assert.throws(() => checkFieldSelector(parseFieldSelector('spec.foo=x'), '/configmaps'), /field label not supported: spec.foo/);
  assert.throws(() => parseFieldSelector('nonsense'), (e: unknown) => e instanceof ApiError && e.code === 400);
});
