// The kubelet's built-in images: a compiled dist/ runs only while it is newer than the sources (bin/metallb.js's
// rule, compiledEntry), or where there are no sources (the container image); otherwise the sources are bundled.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ImageStore } from '../../../src/cluster/kubelet/image-store.js';

/** A package root with the nginx image's sources and a compiled dist/ of it; `age` sets every mtime below a tree. */
function fakeRoot(t: TestContext) {
  const root = mkdtempSync(join(tmpdir(), 'image-store-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const write = (rel: string, body: string) => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), body);
  };
  write('src/cluster/images/common.ts', 'export const NAME = "from-sources";\n');
  write('src/cluster/images/nginx.ts', 'import { NAME } from "./common.js";\nconsole.log(NAME);\n');
  write('dist/src/cluster/images/nginx.js', 'console.log("from-dist");\n');
  const now = Date.now() / 1000;
  const age = (path: string, secondsAgo: number): void => {
    utimesSync(path, now - secondsAgo, now - secondsAgo);
    if (statSync(path).isDirectory()) for (const name of readdirSync(path)) age(join(path, name), secondsAgo);
  };
  const store = () => new ImageStore(join(root, 'cache'), root);
  return { root, store, age, dist: join(root, 'dist', 'src', 'cluster', 'images', 'nginx.js') };
}

test('a dist/ image newer than the sources runs; once a source is newer, the sources are bundled instead', async (t) => {
  const f = fakeRoot(t);
  f.age(join(f.root, 'src'), 100);
  f.age(join(f.root, 'dist'), 50);
  assert.equal((await f.store().get('nginx')).path, f.dist, 'built after the last change of the sources');

  f.age(join(f.root, 'src', 'cluster', 'images', 'common.ts'), 10);
  const bundled = await f.store().get('nginx');
  assert.ok(bundled.path.startsWith(join(f.root, 'cache')), `a source edited after the build: bundled into the cache, not ${bundled.path}`);
  assert.match(readFileSync(bundled.path, 'utf8'), /from-sources/);

  rmSync(join(f.root, 'src'), { recursive: true });
  assert.equal((await f.store().get('nginx')).path, f.dist, 'no sources (the container image): dist/ as it is');
});

test('without dist/, the sources are bundled', async (t) => {
  const f = fakeRoot(t);
  rmSync(join(f.root, 'dist'), { recursive: true });
  const built = await f.store().get('nginx');
  assert.ok(built.path.startsWith(join(f.root, 'cache')), `bundled into the cache: ${built.path}`);
  assert.match(built.digest, /^sha256:[0-9a-f]{64}$/);
});
