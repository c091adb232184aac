// The CLI: kubeconfig written after listening, one structured log line with the URL, SIGINT exits 0, bad flags exit 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDevServer } from '../../helpers/devserver.js';

test('dev-apiserver: kubeconfig, JSON log line with the URL, request logs at debug, SIGINT exits 0', async (t) => {
  const srv = await startDevServer({ logLevel: 'debug' });
  t.after(() => srv.stop());
  const kc = readFileSync(srv.kubeconfig, 'utf8');
  assert.match(kc, /server: http:\/\/127\.0\.0\.1:\d+/);
  assert.match(kc, /token: /);
  const r = await fetch(`${srv.url}/api/v1/namespaces`);
  assert.equal(r.status, 200);
  const parse = (): Record<string, unknown>[] =>
    srv
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const isRequestLine = (l: Record<string, unknown>): boolean => l.msg === 'request' && l.url === '/api/v1/namespaces' && l.status === 200 && l.level === 'debug';
  // the log lines reach the pipe a little after the answer (a loaded machine may take a while)
  let lines = parse();
  for (const deadline = Date.now() + 15_000; !(lines.some(isRequestLine) && lines.some((l) => l.msg === 'dev-apiserver listening')) && Date.now() < deadline; lines = parse())
    await new Promise((res) => setTimeout(res, 50));
  const listening = lines.find((l) => l.msg === 'dev-apiserver listening');
  assert.equal(listening?.url, srv.url);
  assert.equal(listening?.level, 'info');
  assert.ok(lines.some(isRequestLine));
  assert.equal(await srv.kill('SIGINT'), 0);
});

test('dev-apiserver: invalid flags exit 2 with a message', () => {
  const bin = join(import.meta.dirname, '..', '..', '..', 'bin', 'metallb.js');
  const r = spawnSync(process.execPath, [bin, 'dev-apiserver', '--service-cidr', 'not-a-cidr', '--port', '0'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid CIDR "not-a-cidr"/);
  const r2 = spawnSync(process.execPath, [bin, 'dev-apiserver', '--port', 'abc'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r2.status, 2);
});
