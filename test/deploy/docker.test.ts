// The Dockerfile cannot be built here (no container engine). These tests check it statically and then replay its
// build steps on a copy of the build context (as .dockerignore filters it): build the native addon, compile, prune
// dev dependencies, and run the entry point exactly as the image's ENTRYPOINT would. Only `npm ci` is replaced, by
// a copy of the checkout's node_modules (installed from the same lockfile) plus the addon build its install script
// runs, and the base image's Node 24 by the Node running us.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, mkdtempSync, cpSync, rmSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { ROOT } from './lib.js';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

/** Minimal .dockerignore semantics for the patterns we use: `*`, `!path/`, `**\/*.ext`. Later rules win. */
function included(rel: string, rules: string[]): boolean {
  let inc = true;
  for (const r of rules) {
    const neg = r.startsWith('!');
    const pat = (neg ? r.slice(1) : r).replace(/\/$/, '');
    const re = new RegExp(
      '^' +
        pat
          .split('/')
          .map((seg) => (seg === '**' ? '(?:.*/)?' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '/'))
          .join('')
          .replace(/\/$/, '') +
        '(?:/.*)?$',
    );
    if (re.test(rel)) inc = neg;
  }
  return inc;
}

const ignoreRules = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

test('Dockerfile: node:24-bookworm-slim builder runs npm ci, build, prune; runtime copies dist, node_modules, bin, package.json', () => {
  const froms = instructions.filter((l) => /^FROM /i.test(l));
  assert.equal(froms.length, 2);
  assert.equal(froms[0], 'FROM node:24-bookworm-slim AS builder');
  assert.match(froms[1]!, /^FROM node:24-bookworm-slim$/);
  const runs = instructions.filter((l) => l.startsWith('RUN ')).join(' ');
  assert.match(runs, /npm ci\b/);
  assert.match(runs, /apt-get install .*python3.*make.*g\+\+/, 'the builder has what node-gyp needs');
  const builder = instructions.slice(0, instructions.indexOf(froms[1]!));
  const npmCi = builder.findIndex((l) => /^RUN npm ci\b/.test(l));
  assert.ok(builder.findIndex((l) => l === 'COPY native ./native') < npmCi, 'native/ is in place before npm ci builds it');
  assert.ok(builder.some((l) => /^ENV npm_config_nodedir=\/usr\/local$/.test(l)), 'node-gyp uses the image headers');
  assert.match(runs, /npm run build\b/);
  assert.match(runs, /npm prune --omit=dev\b/);
  const runtime = instructions.slice(instructions.indexOf(froms[1]!));
  for (const p of ['package.json', 'node_modules', 'dist', 'bin']) {
    assert.ok(
      runtime.some((l) => new RegExp(`^COPY --from=builder /app/${p} `).test(l)),
      `runtime stage copies ${p} from the builder`,
    );
  }
  assert.ok(
    runtime.includes('COPY --from=builder /app/native/build/Release/metallb_native.node ./native/build/Release/metallb_native.node'),
    'runtime stage copies the native addon where src/net/native.ts looks for it',
  );
  assert.equal(instructions.filter((l) => l.startsWith('ENTRYPOINT')).pop(), 'ENTRYPOINT ["node", "/app/bin/metallb.js"]');
  const user = runtime.filter((l) => l.startsWith('USER ')).pop();
  assert.match(user ?? '', /^USER [1-9]\d*(:\d+)?$/, 'numeric non-root user');
});

test('.dockerignore keeps node_modules, dist, .git and tests out and everything the build COPYs in', () => {
  for (const out of ['node_modules', 'node_modules/yaml/package.json', 'native/build/Release/metallb_native.node', 'dist/src/cli/main.js', '.git/HEAD', 'test/deploy/lib.ts', 'src/net/ip.test.ts', '.tmp/helm/helm', 'deploy/metallb-ts.yaml']) {
    assert.equal(included(out, ignoreRules), false, `${out} is not sent to the builder`);
  }
  const copied = instructions
    .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
    .flatMap((l) => l.split(/\s+/).slice(1, -1));
  assert.ok(copied.length >= 5);
  for (const src of copied) {
    assert.ok(existsSync(join(ROOT, src)), `${src} exists`);
    assert.ok(included(src, ignoreRules), `${src} is in the build context`);
  }
  assert.ok(included('src/cli/main.ts', ignoreRules));
  assert.ok(included('native/metallb_native.c', ignoreRules) && included('native/binding.gyp', ignoreRules));
});

function copyContext(dest: string): void {
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      const rel = relative(ROOT, abs);
      if (name === 'node_modules' || name === '.git') continue;
      if (statSync(abs).isDirectory()) walk(abs);
      else if (included(rel, ignoreRules)) cpSync(abs, join(dest, rel));
    }
  };
  walk(ROOT);
}

test('replaying the image build: tsc to dist/, prune dev dependencies, the entry point runs compiled code', { timeout: 240_000 }, () => {
  const ctx = mkdtempSync(join(tmpdir(), 'metallb-image-'));
  try {
    copyContext(ctx);
    assert.ok(!existsSync(join(ctx, 'test')), 'tests are not in the context');
    cpSync(join(ROOT, 'node_modules'), join(ctx, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    const env = { ...process.env, npm_config_update_notifier: 'false' };
    assert.ok(!existsSync(join(ctx, 'native', 'build')), 'no prebuilt addon in the context');
    execFileSync('npm', ['run', 'build:native'], { cwd: ctx, stdio: 'pipe', env });
    assert.ok(existsSync(join(ctx, 'native', 'build', 'Release', 'metallb_native.node')), 'npm ci builds the addon');
    execFileSync(process.execPath, [join(ctx, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: ctx, stdio: 'pipe', env });
    assert.ok(existsSync(join(ctx, 'dist', 'src', 'cli', 'main.js')));
    execFileSync('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: ctx, stdio: 'pipe', env });
    assert.ok(!existsSync(join(ctx, 'node_modules', 'tsx')), 'tsx (a dev dependency) is pruned');
    assert.ok(!existsSync(join(ctx, 'node_modules', 'typescript')), 'typescript is pruned');
    // The runtime stage holds package.json, node_modules, dist and bin; src/ is still here, but bin/metallb.js only
    // falls back to it through tsx, which is pruned, so a passing run proves the compiled code is what runs.
    rmSync(join(ctx, 'src'), { recursive: true });
    // The runtime stage keeps only the addon binary of native/: the compiled loader must find it there.
    rmSync(join(ctx, 'native', 'build', 'Release', 'obj.target'), { recursive: true, force: true });
    rmSync(join(ctx, 'native', 'metallb_native.c'));
    const loaded = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('./dist/src/net/native.js'); process.stdout.write(Object.keys(m.loadNative()).join(','))"],
      { cwd: ctx, encoding: 'utf8', env },
    );
    assert.match(loaded, /packetOpen/);
    const run = (...args: string[]) => execFileSync(process.execPath, [join(ctx, 'bin', 'metallb.js'), ...args], { cwd: '/', encoding: 'utf8', env });
    assert.match(run('--help'), /Usage: metallb/);
    const help = run('controller', '--help');
    for (const flag of ['--namespace', '--metrics-port', '--health-probe-port', '--webhook-port']) assert.ok(help.includes(flag), flag);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
});
