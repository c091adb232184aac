// ContainerProcess as root, without a kubelet: when it says the container is set up, the process is in its own mount
// namespace with every mount of the setup script in place (hooks and exec probes enter that namespace), and the
// workload inherits nothing of the report.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerProcess } from '../../../src/cluster/kubelet/runtime.js';
import { setupScript, type MountPlan } from '../../../src/cluster/kubelet/mounts.js';
import { waitFor } from '../../controller/helpers.js';

/** A /proc fd link, or undefined when the descriptor was closed in the meantime. */
function readlinkOrGone(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'tkl-runtime-'));
const started = new Set<ContainerProcess>();
after(async () => {
  for (const p of started) p.signal('SIGKILL');
  await Promise.all([...started].map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
});

const target = join(dir, 'target');
const target2 = join(dir, 'target2');
const source = join(dir, 'source');
mkdirSync(target);
mkdirSync(target2);
mkdirSync(source);
writeFileSync(join(source, 'marker'), 'in the volume');

function script(name: string, plan: Partial<MountPlan>): string {
  const path = join(dir, `${name}.sh`);
  writeFileSync(path, setupScript({ plan: { shadows: [], binds: [], hostDirs: [], mkdirWorkingDir: false, ...plan }, hostname: 'tkl-rt', cgroupProcs: [], execPrefix: ['setpriv', '--'] }), { mode: 0o755 });
  return path;
}

function start(scriptPath: string, argv: string[]): ContainerProcess {
  const p = new ContainerProcess({ script: scriptPath, argv, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, logPath: join(dir, 'logs', `${started.size}.log`) });
  started.add(p);
  return p;
}

test('whenSetUp resolves once the mounts are in place, never earlier (each execve of the launcher included)', async () => {
  // Two binds and a read-only remount: several execs of mount before the report, each a chance to look too early.
  const s = script('binds', {
    binds: [
      { source, target, readOnly: true },
      { source, target: target2, readOnly: false },
    ],
  });
  const ownMnt = readlinkSync('/proc/self/ns/mnt');
  for (let i = 0; i < 25; i++) {
    const p = start(s, ['sleep', '30']);
    assert.equal(await p.whenSetUp(), true, 'the setup script reported');
    // Read at once, before the workload runs long: a hook started now sees this.
    assert.notEqual(readlinkSync(`/proc/${p.pid}/ns/mnt`), ownMnt, 'the container has its own mount namespace');
    const mounts = readFileSync(`/proc/${p.pid}/mountinfo`, 'utf8');
    assert.match(mounts, new RegExp(` ${target} ro[,\\s]`), `the read-only bind is in place (${i})`);
    assert.match(mounts, new RegExp(` ${target2} rw[,\\s]`), `the other bind too (${i})`);
    p.signal('SIGKILL');
    await p.exited;
    started.delete(p);
  }
});

test('whenSetUp resolves false when the setup script fails before its report', async () => {
  const s = script('broken', { binds: [{ source: join(dir, 'no-such-source'), target, readOnly: false }] });
  const p = start(s, ['sleep', '30']);
  assert.equal(await p.whenSetUp(), false);
  const exit = await p.exited;
  assert.notEqual(exit.exitCode, 0);
});

test('the workload gets neither the report descriptor nor an ignored SIGPIPE', async () => {
  const p = start(script('plain', {}), ['sleep', '30']);
  assert.equal(await p.whenSetUp(), true);
  await waitFor('the workload runs', () => readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith('sleep\0'), 30_000, 20);
  // The report's descriptor is a socket. The workload may hold a descriptor 3 of its own for a moment: sleep's
  // dynamic loader and locale setup open and close files there right after the exec (CI once looked just then).
  const fd3 = readdirSync(`/proc/${p.pid}/fd`).includes('3') ? readlinkOrGone(`/proc/${p.pid}/fd/3`) : undefined;
  assert.ok(fd3 === undefined || !/^(socket|pipe):/.test(fd3), `descriptor 3 was closed before the exec (it is ${fd3})`);
  const ignored = BigInt(`0x${/^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))![1]}`);
  assert.equal(ignored & (1n << 12n), 0n, 'SIGPIPE (13) keeps its default action');
});
