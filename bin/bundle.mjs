// The CLI bundled by esbuild into plain JavaScript, cached by a hash of its sources. A checkout otherwise runs the
// TypeScript sources through tsx, which costs every process about 2 CPU seconds of loading and transpiling; the lab
// starts a dozen `metallb` processes at once (API server, controllers, kubelets, proxies, speakers), and on a 2-core
// machine that was most of `lab up`'s time. The bundle starts in about 0.3 CPU seconds.
//
// Layout: node_modules/.cache/metallb-ts/cli-<hash>/metallb.mjs (the CLI), memberlist-worker.mjs and bfd-worker.mjs
// (the speaker's worker threads) and chunk-*.mjs (code split at dynamic imports, loaded only when used, such as
// @kubernetes/client-node's models). Packages are bundled too (fewer files to resolve at start), except esbuild itself
// (a native binary) and the N-API addon, which src/net/native.ts loads from native/build/ at run time.
//
// Plain JavaScript on purpose: bin/metallb.js reads it before any TypeScript loader exists.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Bumped when the build options below change, so that older bundles are not reused. */
const BUILD_VERSION = '1';

/** The entry points: name of the output file (without .mjs) -> source, relative to the package root. */
export const BUNDLE_ENTRIES = {
  metallb: 'src/cli/main.ts',
  'memberlist-worker': 'src/speaker/memberlist/worker.ts',
  'bfd-worker': 'src/speaker/bfd/worker.ts',
};

export const cacheDir = (root = PACKAGE_ROOT) => join(root, 'node_modules', '.cache', 'metallb-ts');

function listFiles(dir, out) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) listFiles(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * sha256 over every file under src/, the lockfile (dependency versions), tsconfig.json (esbuild reads it: class fields,
 * decorators) and this file (the build options).
 */
export function sourceHash(root = PACKAGE_ROOT) {
  const h = createHash('sha256');
  h.update(`metallb-ts bundle ${BUILD_VERSION}\0`);
  const files = listFiles(join(root, 'src'), []).sort();
  for (const f of [...files, join(root, 'package-lock.json'), join(root, 'tsconfig.json'), fileURLToPath(import.meta.url)]) {
    h.update(relative(root, f));
    h.update('\0');
    try {
      h.update(readFileSync(f));
    } catch {
      h.update('(missing)');
    }
    h.update('\0');
  }
  return h.digest('hex').slice(0, 20);
}

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    // A directory's own time moves when a file in it is added, renamed or deleted.
    const t = statSync(p).mtimeMs;
    if (t > newest) newest = t;
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
  }
  return newest;
}

/**
 * What to do with tsc's output (dist/, `npm run build`): the container image has it and no src/, so it is what runs
 * there; in a checkout it runs only while nothing under src/ (or tsconfig.json) is newer than it, since a build done
 * before the sources changed would otherwise run stale code in place of the bundle, which follows the sources.
 * `file` is the compiled module wanted, relative to dist/ (the CLI; the kubelet asks for its built-in images' too).
 * Returns { entry } to run, { stale: reason } when dist/ exists but is older than the sources, or {} without it.
 */
export function compiledEntry(root = PACKAGE_ROOT, file = join('src', 'cli', 'main.js')) {
  const entry = join(root, 'dist', file);
  if (!existsSync(entry)) return {};
  const src = join(root, 'src');
  if (!existsSync(src)) return { entry };
  const built = newestMtime(join(root, 'dist', 'src'));
  let sources = newestMtime(src);
  try {
    sources = Math.max(sources, statSync(join(root, 'tsconfig.json')).mtimeMs);
  } catch {
    // no tsconfig.json: only src/ counts
  }
  return sources > built ? { stale: 'dist/ is older than src/ (run `npm run build` again, or delete dist/)' } : { entry };
}

/** The bundle directory for the current sources (it may not exist yet). */
export const bundleDir = (root = PACKAGE_ROOT, hash = sourceHash(root)) => join(cacheDir(root), `cli-${hash}`);

/** The CLI entry of a bundle that is up to date with the sources, or undefined. */
export function freshBundle(root = PACKAGE_ROOT) {
  const entry = join(bundleDir(root), 'metallb.mjs');
  return existsSync(entry) ? entry : undefined;
}

const pidAlive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A build takes seconds; a lock this old is left over whatever its pid says: the builder may have been killed and its
 * pid reused by another process (pid_max is often 32768), which would otherwise make every run wait for the timeout.
 */
export const STALE_LOCK_MS = 60_000;

/**
 * Moves a finished build into place. Another builder may have got there first (a lock taken over as stale while its
 * owner was still building): its bundle is as good as ours, so ours is dropped instead of failing the run.
 */
export function publishBundle(tmp, dir) {
  try {
    renameSync(tmp, dir);
  } catch (err) {
    if (!existsSync(join(dir, 'metallb.mjs'))) throw err;
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Builds the bundle for the current sources unless it exists; returns its CLI entry. Several processes may ask at
 * once (tests, a lab's components): one builds (a lock directory holding its pid), the others wait for it.
 * Throws when esbuild is missing or the sources do not build.
 */
export async function ensureBundle(root = PACKAGE_ROOT, { timeoutMs = 120_000 } = {}) {
  const hash = sourceHash(root);
  const dir = bundleDir(root, hash);
  const entry = join(dir, 'metallb.mjs');
  if (existsSync(entry)) return entry;
  mkdirSync(cacheDir(root), { recursive: true });
  const lock = `${dir}.lock`;
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(entry)) return entry;
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), `${process.pid}\n`);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(join(lock, 'pid'), 'utf8').trim());
    } catch {
      /* being written */
    }
    let age = 0;
    try {
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue;
    }
    // A dead builder (or one that died between mkdir and writing its pid) leaves the lock behind.
    if ((owner > 0 && !pidAlive(owner)) || (owner === 0 && age > 5000) || age > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true });
    if (Date.now() > until) throw new Error(`the CLI bundle is still being built by pid ${owner} (${lock})`);
    await sleep(100);
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    if (existsSync(entry)) return entry;
    rmSync(tmp, { recursive: true, force: true });
    const esbuild = await import('esbuild');
    await esbuild.build({
      absWorkingDir: root,
      entryPoints: Object.fromEntries(Object.entries(BUNDLE_ENTRIES).map(([name, src]) => [name, join(root, src)])),
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      chunkNames: 'chunk-[hash]',
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['esbuild'],
      // src/bundle.ts: the code knows it runs from here (its worker threads are the *-worker.mjs files beside it).
      define: { METALLB_BUNDLE: 'true' },
      // Bundled CommonJS packages call require() for Node's built-in modules.
      banner: { js: "import { createRequire as __metallbCreateRequire } from 'node:module'; const require = __metallbCreateRequire(import.meta.url);" },
      legalComments: 'none',
      logLevel: 'silent',
    });
    publishBundle(tmp, dir);
    try {
      pruneOldBundles(root, dir);
    } catch {
      /* only disk space: another process pruning at the same time removes what this one was looking at */
    }
    return entry;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    // Only our own lock: if ours was taken over as stale, the lock there now is another builder's.
    let owner = '';
    try {
      owner = readFileSync(join(lock, 'pid'), 'utf8').trim();
    } catch {
      /* gone */
    }
    if (owner === String(process.pid)) rmSync(lock, { recursive: true, force: true });
  }
}

/** Keeps the few newest bundles (a running lab may still load chunks from the one it started with). */
function pruneOldBundles(root, keep, count = 4) {
  const base = cacheDir(root);
  const dirs = readdirSync(base)
    .filter((n) => /^cli-[0-9a-f]+$/.test(n))
    .map((n) => join(base, n))
    .filter((d) => d !== keep)
    .map((d) => {
      try {
        return { d, t: statSync(d).mtimeMs };
      } catch {
        return { d, t: -Infinity }; // gone already (another process pruned it)
      }
    })
    .sort((a, b) => b.t - a.t);
  for (const { d } of dirs.slice(count - 1)) rmSync(d, { recursive: true, force: true });
  for (const n of readdirSync(base)) {
    const m = /^cli-[0-9a-f]+\.tmp-(\d+)$/.exec(n);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(base, n), { recursive: true, force: true });
  }
  // V8's compile cache (bin/metallb.js, Node >= 22) holds code of every bundle ever run, keyed by file path: entries of
  // older bundles are never read again. It refills on the next runs.
  rmSync(join(base, 'v8'), { recursive: true, force: true });
}

// `node bin/bundle.mjs`: build now (npm run build:bundle), print the entry.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t = Date.now();
  const entry = await ensureBundle();
  process.stdout.write(`${relative(process.cwd(), entry)} (${Date.now() - t} ms)\n`);
}
