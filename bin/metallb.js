#!/usr/bin/env node
// Runs tsc's compiled CLI (dist/) in the container image, which has no src/. From a checkout it runs the sources
// bundled by esbuild (bin/bundle.mjs: built on first use after the sources change, cached by their hash), which
// starts several times faster than transpiling them through tsx; tsx is the fallback when the bundle cannot be built,
// or when METALLB_BUNDLE=0 asks for the sources themselves. A dist/ in a checkout runs only while it is newer than
// every source (compiledEntry): an old `npm run build` must not shadow the sources.
import module from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { compiledEntry } from './bundle.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

async function bundled() {
  if (process.env.METALLB_BUNDLE === '0') return undefined;
  try {
    const { ensureBundle } = await import('./bundle.mjs');
    return await ensureBundle(root);
  } catch (err) {
    process.stderr.write(`metallb: running the TypeScript sources through tsx (the bundle cannot be built: ${err instanceof Error ? err.message : String(err)})\n`);
    return undefined;
  }
}

const compiled = compiledEntry(root);
if (compiled.entry) {
  await import(pathToFileURL(compiled.entry).href);
} else {
  if (compiled.stale) process.stderr.write(`metallb: running the sources, not dist/: ${compiled.stale}\n`);
  // Node >= 22.1 keeps V8's compiled code between runs (Node 20 has no compile cache: this is then undefined).
  try {
    module.enableCompileCache?.(join(root, 'node_modules', '.cache', 'metallb-ts', 'v8'));
  } catch {
    /* only slower */
  }
  const bundle = await bundled();
  if (bundle) {
    await import(pathToFileURL(bundle).href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import(pathToFileURL(join(root, 'src', 'cli', 'main.ts')).href);
  }
}
