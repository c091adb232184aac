// Builds the addon with node-gyp (the package's `install` script, so `npm ci` builds it). Uses the running Node's
// own headers when they are installed beside it, so no header download is needed (this machine kind reaches only
// the npm registry), and says what is missing when the toolchain is not there.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

if (process.platform !== 'linux') {
  console.warn(`metallb-ts: the native addon is Linux-only; skipped on ${process.platform} (layer 2 and TCP-MD5 will be unavailable)`);
  process.exit(0);
}

const missing = ['python3', 'make', 'cc'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
if (missing.length) {
  console.error(`metallb-ts: cannot build the native addon: ${missing.join(', ')} not found (Debian: apt-get install python3 make g++)`);
  process.exit(1);
}

const args = ['rebuild', '--directory', here];
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

// npm tells its lifecycle scripts where its bundled node-gyp is; otherwise look beside npm, then on the PATH.
const candidates = [process.env.npm_config_node_gyp, join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
const gyp = candidates.find((p) => p && existsSync(p));
const result = gyp
  ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' })
  : spawnSync('node-gyp', args, { stdio: 'inherit' });
if (result.error) {
  console.error(`metallb-ts: cannot run node-gyp (${result.error.message}); it comes with npm`);
  process.exit(1);
}
process.exit(result.status ?? 1);
