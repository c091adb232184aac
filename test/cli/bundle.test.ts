// bin/bundle.mjs: the CLI bundle is keyed by a hash of the sources, holds the worker entry points beside the CLI,
// and bin/metallb.js runs either the bundle or (METALLB_BUNDLE=0) the sources through tsx with the same result.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { BUNDLE_ENTRIES, bundleDir, cacheDir, compiledEntry, ensureBundle, freshBundle, PACKAGE_ROOT, publishBundle, sourceHash, STALE_LOCK_MS } from '../../bin/bundle.mjs';

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
  const h3 = sourceHash(root);
  assert.notEqual(h3, h2, 'other dependencies');
  write('tsconfig.json', '{"compilerOptions":{"experimentalDecorators":true}}\n');
  assert.notEqual(sourceHash(root), h3, 'other compiler options (esbuild reads tsconfig.json)');
  assert.equal(freshBundle(root), undefined, 'nothing built there');
});

test('the bundle of this checkout has the CLI and the workers side by side, in the directory of its hash', async () => {
  const entry = await ensureBundle();
  assert.equal(entry, join(bundleDir(PACKAGE_ROOT, sourceHash()), 'metallb.mjs'));
  assert.equal(freshBundle(), entry);
  for (const name of Object.keys(BUNDLE_ENTRIES)) assert.ok(existsSync(join(dirname(entry), `${name}.mjs`)), `${name}.mjs`);
});

test('bin/metallb.js runs the bundle, or the sources through tsx with METALLB_BUNDLE=0', () => {
  // --help loads every command's modules: one that cannot be evaluated from the bundle (a bundled package reading its
  // own files, __dirname in ES modules) fails here rather than only when that command runs.
  const bin0 = join(PACKAGE_ROOT, 'bin', 'metallb.js');
  const helps = [{}, { METALLB_BUNDLE: '0' }].map((env) => spawnSync(process.execPath, [bin0, '--help'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 }));
  for (const r of helps) {
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  }
  assert.equal(helps[0]?.stdout, helps[1]?.stdout, 'the same commands from the bundle and from the sources');
  const bin = join(PACKAGE_ROOT, 'bin', 'metallb.js');
  for (const env of [{}, { METALLB_BUNDLE: '0' }]) {
    const r = spawnSync(process.execPath, [bin, 'config', 'validate', '--help'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: metallb config validate/);
    assert.equal(r.stderr, '');
  }
});

/** A package root with tiny sources for the bundle's entry points (builds in milliseconds). */
function tinyRoot(t: { after: (fn: () => void) => void }): string {
  const root = mkdtempSync(join(tmpdir(), 'mlb-bundle-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const [name, src] of Object.entries(BUNDLE_ENTRIES)) {
    mkdirSync(dirname(join(root, src)), { recursive: true });
    writeFileSync(join(root, src), `export const entry: string = ${JSON.stringify(name)};\nconsole.log(entry);\n`);
  }
  writeFileSync(join(root, 'package-lock.json'), '{}\n');
  return root;
}

test('a build lock older than a build is taken over even when its pid is alive (a killed builder, its pid reused)', async (t) => {
  const root = tinyRoot(t);
  const lock = `${bundleDir(root)}.lock`;
  mkdirSync(lock, { recursive: true });
  writeFileSync(join(lock, 'pid'), `${process.pid}\n`); // alive: this very process
  const old = (Date.now() - STALE_LOCK_MS - 10_000) / 1000;
  utimesSync(lock, old, old);
  const entry = await ensureBundle(root, { timeoutMs: 20_000 });
  assert.ok(existsSync(entry));
  assert.equal(existsSync(lock), false, 'lock released');
});

test('a build finished second gives way to the one already in place; a build with nothing in place still fails', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mlb-bundle-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'cli-1');
  const tmp = join(root, 'cli-1.tmp-1');
  for (const [d, text] of [[dir, 'first'], [tmp, 'second']] as const) {
    mkdirSync(d);
    writeFileSync(join(d, 'metallb.mjs'), text);
  }
  publishBundle(tmp, dir);
  assert.equal(readFileSync(join(dir, 'metallb.mjs'), 'utf8'), 'first');
  assert.equal(existsSync(tmp), false, 'our copy removed');
  mkdirSync(tmp);
  writeFileSync(join(tmp, 'metallb.mjs'), 'second');
  rmSync(join(dir, 'metallb.mjs'));
  writeFileSync(join(dir, 'other'), '');
  assert.throws(() => publishBundle(tmp, dir));
});

test('processes building at once: all get the one bundle, nothing left over; a build drops V8 code cached for older bundles', async (t) => {
  const root = tinyRoot(t);
  const v8 = join(cacheDir(root), 'v8', 'v24-x64', 'abc');
  mkdirSync(dirname(v8), { recursive: true });
  writeFileSync(v8, 'code of an older bundle');
  const script = `const { ensureBundle } = await import(${JSON.stringify(join(PACKAGE_ROOT, 'bin', 'bundle.mjs'))}); process.stdout.write(await ensureBundle(${JSON.stringify(root)}));`;
  const runs = await Promise.all(
    Array.from({ length: 6 }, () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
        const timer = setTimeout(() => c.kill('SIGKILL'), 120_000);
        c.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out, err });
        });
      }),
    ),
  );
  for (const r of runs) {
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, join(bundleDir(root), 'metallb.mjs'));
  }
  assert.deepEqual(readdirSync(cacheDir(root)), [`cli-${sourceHash(root)}`], 'one bundle, no lock or temporary directory');
});

test("the bundle's CLI starts its worker threads from the bundle (memberlist agent: the gossip runs in memberlist-worker.mjs)", async () => {
  await ensureBundle();
  const bin = join(PACKAGE_ROOT, 'bin', 'metallb.js');
  const c = spawn(process.execPath, [bin, 'memberlist', 'agent', '--name', 'bundle-test', '--bind', '127.0.0.1:0'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
  let out = '';
  let err = '';
  c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const closed = new Promise<number | null>((resolve) => c.on('close', resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      c.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('"ready":true') && !out.includes('"members"')) c.stdin.write('members\n');
        if (out.includes('"members"')) resolve();
      });
      c.on('close', () => reject(new Error(`agent ended: ${out}\n${err}`)));
    });
    assert.match(out, /"members":\[\{"name":"bundle-test"/);
    c.stdin.end('quit\n');
    assert.equal(await closed, 0, err);
    assert.doesNotMatch(err, /through tsx/, 'ran from the bundle');
  } finally {
    clearTimeout(timer);
    if (c.exitCode === null) c.kill('SIGKILL');
  }
});

test('a bundle directory vanishing while old bundles are pruned (another process pruning too) does not fail the build', async (t) => {
  const root = tinyRoot(t);
  mkdirSync(cacheDir(root), { recursive: true });
  // A name listed by readdir whose stat fails, as a directory another process removes between the two.
  symlinkSync(join(root, 'nowhere'), join(cacheDir(root), 'cli-0123456789abcdef0123'));
  const entry = await ensureBundle(root, { timeoutMs: 20_000 });
  assert.ok(existsSync(entry));
});

/** tinyRoot with a dist/ as `npm run build` leaves it, written `age` seconds after the sources (negative: before). */
function builtRoot(t: { after: (fn: () => void) => void }): { root: string; setTimes: (srcSeconds: number, distSeconds: number) => void } {
  const root = tinyRoot(t);
  mkdirSync(join(root, 'src', 'extra'), { recursive: true });
  writeFileSync(join(root, 'src', 'extra', 'gone.ts'), 'export {};\n');
  mkdirSync(join(root, 'dist', 'src', 'cli'), { recursive: true });
  writeFileSync(join(root, 'dist', 'src', 'cli', 'main.js'), 'console.log("dist");\n');
  const walk = (dir: string, seconds: number): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name), seconds);
      utimesSync(join(dir, e.name), seconds, seconds);
    }
  };
  return { root, setTimes: (srcSeconds, distSeconds) => {
    walk(join(root, 'src'), srcSeconds);
    walk(join(root, 'dist'), distSeconds);
  } };
}

test('dist/ runs only while it is newer than every source, or where there are no sources (the container image)', (t) => {
  const { root, setTimes } = builtRoot(t);
  const now = Date.now() / 1000;
  const dist = join(root, 'dist', 'src', 'cli', 'main.js');
  setTimes(now - 100, now - 50);
  assert.deepEqual(compiledEntry(root), { entry: dist }, 'built after the last change');
  utimesSync(join(root, 'src', 'cli', 'main.ts'), now - 10, now - 10);
  assert.match(compiledEntry(root).stale ?? '', /dist\/ is older than src\//, 'a source edited after the build');
  setTimes(now - 100, now - 50);
  unlinkSync(join(root, 'src', 'extra', 'gone.ts'));
  assert.ok(compiledEntry(root).stale, 'a source deleted after the build (its directory changed)');
  setTimes(now - 100, now - 50);
  writeFileSync(join(root, 'tsconfig.json'), '{}\n');
  assert.ok(compiledEntry(root).stale, 'other compiler options');
  rmSync(join(root, 'tsconfig.json'));
  rmSync(join(root, 'src'), { recursive: true });
  assert.deepEqual(compiledEntry(root), { entry: dist }, 'no sources: the image');
  rmSync(join(root, 'dist'), { recursive: true });
  assert.deepEqual(compiledEntry(root), {}, 'no dist/');
});

test('bin/metallb.js runs a current dist/, the sources\' bundle (saying why) when dist/ is stale, and dist/ without sources', (t) => {
  const { root, setTimes } = builtRoot(t);
  mkdirSync(join(root, 'bin'));
  for (const f of ['metallb.js', 'bundle.mjs']) copyFileSync(join(PACKAGE_ROOT, 'bin', f), join(root, 'bin', f));
  // esbuild alone, by a symlink: its own dependencies resolve from where it really is, and the bundle is cached
  // under this root's node_modules/.cache, not the checkout's.
  mkdirSync(join(root, 'node_modules'));
  symlinkSync(join(PACKAGE_ROOT, 'node_modules', 'esbuild'), join(root, 'node_modules', 'esbuild'));
  const run = (): { out: string; err: string } => {
    const r = spawnSync(process.execPath, [join(root, 'bin', 'metallb.js')], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    return { out: r.stdout.trim(), err: r.stderr };
  };
  const now = Date.now() / 1000;
  setTimes(now - 100, now - 50);
  assert.deepEqual(run(), { out: 'dist', err: '' });
  utimesSync(join(root, 'src', 'cli', 'main.ts'), now - 10, now - 10);
  const stale = run();
  assert.equal(stale.out, 'metallb', 'the bundle of the sources');
  assert.match(stale.err, /^metallb: running the sources, not dist\/: dist\/ is older than src\/.*\n$/);
  rmSync(join(root, 'src'), { recursive: true });
  assert.deepEqual(run(), { out: 'dist', err: '' });
});
