// The CLI loads only the modules of the command it runs (program.ts COMMANDS): each entry must register exactly the
// command it is named for, and together they must be the whole program, in help order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram, COMMANDS } from '../../src/cli/program.js';

test('every top-level command is loaded by its own COMMANDS entry, and only it', async () => {
  const all = await buildProgram();
  assert.deepEqual(all.commands.map((c) => c.name()), COMMANDS.map(([name]) => name));
  for (const [name] of COMMANDS) {
    const one = await buildProgram(name);
    assert.deepEqual(one.commands.map((c) => c.name()), [name], `buildProgram('${name}')`);
    const full = all.commands.find((c) => c.name() === name);
    assert.deepEqual(one.commands[0]?.commands.map((c) => c.name()), full?.commands.map((c) => c.name()), `subcommands of ${name}`);
  }
});

test('help, options and unknown commands get the whole program', async () => {
  for (const first of [undefined, '--help', 'help', '--version', 'no-such-command']) {
    assert.equal((await buildProgram(first)).commands.length, COMMANDS.length, String(first));
  }
});

test('a reader that goes away early (`metallb --help | head -1`) ends the command quietly', async () => {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'speaker', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Read the first chunk, then close our end as `head` does.
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
});
