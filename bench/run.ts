// `npm run bench [NAME...]`: runs every benchmark module under bench/ (or those named), one after another.
// A benchmark module exports `async function run<Name>Bench(): Promise<void>` and prints its own figures.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('Usage: npm run bench [-- NAME...]\n\nRuns the benchmarks in bench/ (allocator, controller, ...) and prints their figures.\n');
  process.exit(0);
}

const modules = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.d.ts'))
  .map((f) => f.slice(0, -3))
  .filter((name) => args.length === 0 || args.includes(name))
  .sort();
if (modules.length === 0) {
  process.stderr.write(`bench: nothing to run (have: ${readdirSync(here).join(', ')})\n`);
  process.exit(2);
}

for (const name of modules) {
  const mod: Record<string, unknown> = await import(pathToFileURL(join(here, `${name}.ts`)).href);
  const entry = Object.entries(mod).find(([key, value]) => /^run.*Bench$/.test(key) && typeof value === 'function');
  if (!entry) continue;
  process.stdout.write(`\n### ${name}\n`);
  await (entry[1] as () => Promise<void>)();
}
