// bin/bundle.mjs: the CLI bundle is keyed by a hash of the sources, holds the worker entry points beside the CLI,
// and bin/metallb.js runs either the bundle or (METALLB_BUNDLE=0) the sources through tsx with the same result.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { BUNDLE_ENTRIES, bundleDir, ensureBundle, freshBundle, PACKAGE_ROOT, sourceHash } from '../../bin/bundle.mjs';

test('the hash follows every file under src/ and the lockfile', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mlb-bundle-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const write = (rel: string, text: string): void => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  write('src/a.ts', 'export const a = 1;\n');
  write('src/deep/b.ts', 'export const b = 2;\n');
  write('package-lock.json', '{}\n');
  const h0 = sourceHash(root);
  assert.match(h0, /^[0-9a-f]{20}$/);
  assert.equal(sourceHash(root), h0, 'same sources, same hash');
  write('src/deep/b.ts', 'export const b = 3;\n');
  const h1 = sourceHash(root);
  assert.notEqual(h1, h0, 'a changed file');
  write('src/deep/c.ts', '');
  const h2 = sourceHash(root);
  assert.notEqual(h2, h1, 'an added file');
  write('package-lock.json', '{"lockfileVersion":3}\n');
  assert.notEqual(sourceHash(root), h2, 'other dependencies');
  assert.equal(freshBundle(root), undefined, 'nothing built there');
});

test('the bundle of this checkout has the CLI and the workers side by side, in the directory of its hash', async () => {
  const entry = await ensureBundle();
  assert.equal(entry, join(bundleDir(PACKAGE_ROOT, sourceHash()), 'metallb.mjs'));
  assert.equal(freshBundle(), entry);
  for (const name of Object.keys(BUNDLE_ENTRIES)) assert.ok(existsSync(join(dirname(entry), `${name}.mjs`)), `${name}.mjs`);
});

test('bin/metallb.js runs the bundle, or the sources through tsx with METALLB_BUNDLE=0', () => {
  const bin = join(PACKAGE_ROOT, 'bin', 'metallb.js');
  for (const env of [{}, { METALLB_BUNDLE: '0' }]) {
    const r = spawnSync(process.execPath, [bin, 'config', 'validate', '--help'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: metallb config validate/);
    assert.equal(r.stderr, '');
  }
});
