// The first stop signal starts a graceful shutdown; a second one while it runs exits at once with status 1, long
// before the graceful shutdown would end (10 minutes in the fixture; the test gives up after 60 s).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { REPEATED_SIGNAL_EXIT_STATUS } from '../../src/cli/stop-signals.js';

const fixture = fileURLToPath(new URL('./fixtures/stop-signals-child.ts', import.meta.url));

for (const [first, second] of [['SIGTERM', 'SIGTERM'], ['SIGINT', 'SIGTERM']] as const) {
  test(`${first} starts the graceful shutdown; ${second} during it exits at once with status 1`, { timeout: 120_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (code, signal) => r([code, signal])));
    const waitOutput = async (text: string): Promise<void> => {
      const end = Date.now() + 60_000;
      while (!out.includes(text)) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the child exited (${child.exitCode ?? child.signalCode}) before "${text}"; stdout: ${out}; stderr: ${err}`);
        if (Date.now() > end) throw new Error(`timed out waiting for "${text}"; stdout: ${out}; stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await waitOutput('ready');
      child.kill(first);
      await waitOutput(`stopping ${first}`);
      assert.equal(child.exitCode, null, 'the graceful shutdown is still running');
      child.kill(second);
      const result = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000).unref())]);
      assert.ok(result, `still running 60 s after the second signal (the graceful shutdown would take 10 min); stderr: ${err}`);
      assert.deepEqual(result, [REPEATED_SIGNAL_EXIT_STATUS, null], `exit status; stderr: ${err}`);
      const line = err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'second signal while shutting down: exiting at once');
      assert.ok(line, `the exit is logged; stderr: ${err}`);
      assert.equal(line.level, 'warn');
      assert.equal(line.signal, second);
      assert.equal(line.first, first);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
  });
}
