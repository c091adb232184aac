// readYamlDocuments: multi-document input, Lists, empty documents, positions of syntax errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readYamlDocuments } from '../../src/config/index.js';

test('documents, Lists flattened, empty documents skipped, input order kept', () => {
  const r = readYamlDocuments('---\n# only a comment\n---\nkind: A\n---\nkind: List\nitems:\n- kind: B\n- kind: C\n---\n\n---\nkind: D\n', 'f.yaml');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.objects.map((o) => o.kind), ['A', 'B', 'C', 'D']);
});

test('empty input gives nothing and no error', () => {
  for (const text of ['', '\n', '# comment\n', '---\n']) {
    assert.deepEqual(readYamlDocuments(text, 'f'), { objects: [], errors: [] });
  }
});

test('syntax errors are reported as source:line:col: message, other documents still read', () => {
  const r = readYamlDocuments('kind: A\n---\nkind: B\nspec:\n  addresses: [10.0.0.0/24\n  x: 1\n---\nkind: C\n', 'pools.yaml');
  assert.equal(r.errors.length >= 1, true);
  assert.match(r.errors[0] ?? '', /^pools\.yaml:[5-7]:\d+: \S/);
  assert.deepEqual(r.objects.map((o) => o.kind), ['A', 'C']);
  const dup = readYamlDocuments('kind: A\nkind: B\n', 'dup.yaml');
  assert.match(dup.errors[0] ?? '', /^dup\.yaml:2:1: .*[Mm]ap keys must be unique/);
  const tab = readYamlDocuments('a:\n\t- b\n', 'tab.yaml');
  assert.match(tab.errors[0] ?? '', /^tab\.yaml:2:\d+: /);
});

test('a document that is not a mapping is reported with its position', () => {
  const r = readYamlDocuments('kind: A\n---\n- a\n- b\n---\njust text\n', 'x.yaml');
  assert.deepEqual(r.objects.map((o) => o.kind), ['A']);
  assert.deepEqual(r.errors, [
    'x.yaml:3:1: document 2 is not a Kubernetes object (a YAML mapping), got a list',
    'x.yaml:6:1: document 3 is not a Kubernetes object (a YAML mapping), got a string',
  ]);
  const list = readYamlDocuments('kind: List\nitems: [1, {kind: A}]\n', 'l.yaml');
  assert.deepEqual(list.objects.map((o) => o.kind), ['A']);
  assert.match(list.errors[0] ?? '', /^l\.yaml:1:1: item 1 of the List/);
});

test('YAML 1.2 scalars: community strings stay strings, numbers are numbers', () => {
  const r = readYamlDocuments('a: 64512:1\nb: 64512\nc: yes\n', 'f');
  assert.deepEqual(r.objects[0], { a: '64512:1', b: 64512, c: 'yes' });
});

test('alias bombs do not throw', () => {
  const bomb = 'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n';
  const r = readYamlDocuments(bomb, 'bomb.yaml');
  assert.equal(r.objects.length + r.errors.length >= 1, true);
  // Refused, not expanded; ordinary aliases still work.
  assert.deepEqual(r.objects, []);
  assert.match(r.errors[0] ?? '', /^bomb\.yaml:1:1: Excessive alias count/);
  assert.deepEqual(readYamlDocuments('a: &a [x]\nb: [*a, *a]\n', 'ok.yaml').objects, [{ a: ['x'], b: [['x'], ['x']] }]);
});

test('list or mapping keys are reported with their position, without a process warning', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  try {
    const r = readYamlDocuments('kind: A\n---\nkind: B\nspec:\n  ? [a, b]\n  : 1\n  ok: 2\n  1: 3\n---\nkind: C\n', 'k.yaml');
    assert.deepEqual(r.objects.map((o) => o.kind), ['A', 'C']);
    assert.deepEqual(r.errors, ['k.yaml:5:5: a mapping key must be a string, got a list or mapping']);
    // Scalar keys read as strings, as in Kubernetes.
    assert.deepEqual(readYamlDocuments('1: x\ntrue: y\n', 'f').objects, [{ 1: 'x', true: 'y' }]);
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings.map((w) => w.message), []);
});

test('absurdly deep nesting is a plain-words error for the file, not a stack overflow (which can abort the process)', () => {
  const depth = 50_000;
  const r = readYamlDocuments(`kind: A\n---\nspec: ${'['.repeat(depth)}${']'.repeat(depth)}\n`, 'deep.yaml');
  assert.deepEqual(r.objects, []);
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0] ?? '', /^deep\.yaml:3:1006: lists or mappings are nested too deeply \(more than 1000 levels\)$/);
});
