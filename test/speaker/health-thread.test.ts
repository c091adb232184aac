// The speaker's health probes answered off the main thread (src/speaker/health-thread.ts): a busy main loop still
// answers /healthz, a main loop that stops running fails it, /readyz follows notReady(). Requests come from a child
// process so they can be answered while this thread is blocked; the blocked loop waits for the answer, with a
// generous cap, instead of timing anything.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { livenessAnswer, readinessAnswer, startHealthThread } from '../../src/speaker/health-thread.js';

const dir = mkdtempSync(join(tmpdir(), 'health-thread-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** GETs `url` from a child process into a file: "<status> <body>" once answered. */
function fetchInChild(url: string, file: string): void {
  const code = `fetch(${JSON.stringify(url)}).then(async (r) => require('fs').writeFileSync(${JSON.stringify(file + '.tmp')}, r.status + ' ' + (await r.text()))).then(() => require('fs').renameSync(${JSON.stringify(file + '.tmp')}, ${JSON.stringify(file)}), () => {})`;
  spawn(process.execPath, ['-e', code], { stdio: 'ignore' }).unref();
}

/** Blocks this thread (no event loop at all) until `file` exists, at most `capMs`. */
function blockUntilFile(file: string, capMs = 30_000): string | undefined {
  const end = Date.now() + capMs;
  while (Date.now() < end) if (existsSync(file)) return readFileSync(file, 'utf8');
  return undefined;
}

test('liveness: ok while the heartbeat is recent, 503 naming the silence after the stall limit', () => {
  assert.deepEqual(livenessAnswer(10_000, 9_000, 5_000), { status: 200, body: 'ok\n' });
  assert.deepEqual(livenessAnswer(15_000, 10_000, 5_000), { status: 200, body: 'ok\n' });
  assert.deepEqual(livenessAnswer(75_000, 10_000, 60_000), { status: 503, body: 'main event loop has not run for 65 s\n' });
  assert.deepEqual(readinessAnswer([]), { status: 200, body: 'ok\n' });
  assert.deepEqual(readinessAnswer(['caches not synced: services', 'memberlist not joined yet']), { status: 503, body: 'not ready: caches not synced: services; memberlist not joined yet\n' });
});

test('a blocked main loop still answers /healthz; /readyz follows notReady()', async () => {
  let reasons = ['caches not synced: services'];
  const s = await startHealthThread(0, '127.0.0.1', { notReady: () => reasons, beatMs: 50 });
  try {
    const url = (p: string): string => `http://127.0.0.1:${s.port}${p}`;
    // Answered while this thread does nothing but wait for the answer.
    fetchInChild(url('/healthz'), join(dir, 'a'));
    assert.equal(blockUntilFile(join(dir, 'a')), '200 ok\n', 'answered during the block');
    const notReady = await fetch(url('/readyz'));
    assert.equal(notReady.status, 503);
    assert.equal(await notReady.text(), 'not ready: caches not synced: services\n');
    reasons = [];
    for (let i = 0; i < 600 && (await fetch(url('/readyz'))).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await fetch(url('/readyz'))).status, 200);
    assert.equal((await fetch(url('/nope'))).status, 404);
  } finally {
    await s.close();
  }
});

test('a main loop that stops running past the stall limit fails /healthz, and passes again once it runs', async () => {
  const s = await startHealthThread(0, '127.0.0.1', { notReady: () => [], stallLimitMs: 300, beatMs: 50 });
  try {
    const url = `http://127.0.0.1:${s.port}/healthz`;
    const stalled = Date.now() + 400;
    while (Date.now() < stalled) {
      /* a main loop that does not come back */
    }
    fetchInChild(url, join(dir, 'b'));
    assert.match(blockUntilFile(join(dir, 'b')) ?? 'no answer', /^503 main event loop has not run for \d+ s\n$/);
    let status = 0;
    for (let i = 0; i < 600 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await fetch(url)).status;
    }
    assert.equal(status, 200);
  } finally {
    await s.close();
  }
});

test('a port in use is a clear error, and nothing is left running', async () => {
  const s = await startHealthThread(0, '127.0.0.1', { notReady: () => [] });
  try {
    await assert.rejects(startHealthThread(s.port, '127.0.0.1', { notReady: () => [] }), /EADDRINUSE/);
  } finally {
    await s.close();
  }
});
