// Integration (root): a real speaker (memberlist on, in a tsg- node namespace) whose main thread gets stuck on the
// first SIGTERM (a preload, before the speaker's own handler): its gossip thread leaves, and a second SIGTERM still
// ends the process at once, from that thread, with status 1. Before, the gossip thread's signal watch swallowed the
// second SIGTERM and nothing ended the process (its 1.8 s exit deadline is a timer on the stuck thread).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEnv, waitFor, type Env } from '../controller/helpers.js';
import { isRoot } from '../helpers/netns.js';
import { TestLan } from './lan.js';
import { startSpeaker, type SpeakerHandle } from './process.js';

const skip = isRoot() ? false : 'needs root (network namespaces, raw sockets)';
const preload = fileURLToPath(new URL('./fixtures/stuck-on-sigterm.mjs', import.meta.url));
const lan = new TestLan(100, { prefix: 'tsg-', block: 84 });
let env: Env | undefined;
let keyDir = '';
let speaker: SpeakerHandle | undefined;

before(async () => {
  if (skip) return;
  lan.up();
  const node = lan.node(1);
  env = await startEnv({ extraArgs: ['--host', lan.hostIP] });
  await env.apply('apiVersion: v1\nkind: Node\nmetadata: {name: node1}\n');
  keyDir = mkdtempSync(join(tmpdir(), 'tsg-mlkey-'));
  writeFileSync(join(keyDir, 'secretkey'), 'c2VjcmV0a2V5Zm9ydHNndGVzdHM');
  speaker = await startSpeaker(env.kubeconfig, 'node1', {
    netns: node,
    env: {
      METALLB_ML_BIND_ADDR: node.ip,
      METALLB_ML_LABELS: 'app=tsg-speaker',
      METALLB_ML_SECRET_KEY_PATH: keyDir,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${preload}`.trim(),
    },
  });
});

after(async () => {
  await speaker?.kill('SIGKILL');
  await env?.close();
  await lan.down();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

test('speaker: a second SIGTERM while its main thread is stuck in the shutdown exits at once (status 1)', { skip, timeout: 300_000 }, async () => {
  const h = speaker!;
  await waitFor('memberlist started', () => h.lines().some((l) => l.msg === 'memberlist started'), 60_000, 50);
  h.child.kill('SIGTERM');
  await waitFor('the main thread stuck on SIGTERM', () => {
    if (h.child.exitCode !== null || h.child.signalCode !== null) throw new Error(`the speaker exited (${h.child.exitCode ?? h.child.signalCode})`);
    return h.logs().includes('stuck-on-sigterm: the main thread spins for ever');
  }, 60_000, 50);
  // The gossip thread heard the first SIGTERM too (libuv hands it to every loop); this is a second delivery.
  h.child.kill('SIGTERM');
  const code = await Promise.race([h.exited(), new Promise<'running'>((r) => setTimeout(() => r('running'), 60_000).unref())]);
  const tail = h.logs().split('\n').slice(-10).join('\n');
  assert.notEqual(code, 'running', `the speaker still runs 60 s after the second SIGTERM:\n${tail}`);
  assert.equal(code, 1, `exit status:\n${tail}`);
  const line = h.lines().find((l) => l.msg === 'second signal while shutting down: exiting at once');
  assert.ok(line, `the gossip thread says why it exits:\n${tail}`);
  assert.equal(line.component, 'memberlist');
  assert.equal(line.signal, 'SIGTERM');
});
