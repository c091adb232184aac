// The gossip thread leaves on SIGTERM by itself: a member whose main thread is stuck still tells the others at once
// (the speaker's main thread handles SIGTERM late when busy; docs/speaker.md "SIGTERM with 1,000 addresses"). A
// second signal then ends the process at once, from the gossip thread too (the stuck main thread never would).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import type { Member } from '../../../src/speaker/memberlist/engine.js';
import { Memberlist } from '../../../src/speaker/memberlist/memberlist.js';
import { metallbKey } from '../../../src/speaker/memberlist/security.js';
import { nativeAvailable } from '../../../src/net/native.js';

const fixture = fileURLToPath(new URL('./fixtures/signal-leave-member.ts', import.meta.url));
const options = { skip: nativeAvailable() ? false : 'the native addon is not built', timeout: 120_000 };
const within = <T>(p: Promise<T>, ms: number): Promise<T | undefined> => Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);

interface Stuck {
  child: ReturnType<typeof spawn>;
  /** The observer's 'leave' event for the stuck member. */
  gone: Promise<Member>;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  stderr(): string;
}

/** A member (the fixture) joined by an observer, its main thread stuck; `body` signals it. Cleans up either way. */
async function withStuckMember(body: (m: Stuck) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (code, signal) => r([code, signal])));
  const lineMatching = async (re: RegExp, what: string): Promise<RegExpExecArray> => {
    const end = Date.now() + 60_000;
    for (;;) {
      const m = re.exec(out);
      if (m) return m;
      if (child.exitCode !== null) throw new Error(`the member exited (${child.exitCode}) before ${what}; output: ${out}; stderr: ${err}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output: ${out}; stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  let observer: Memberlist | undefined;
  try {
    const port = Number((await lineMatching(/\{"port":(\d+)\}/, 'its port'))[1]);
    observer = await Memberlist.create({ name: 'observer', bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [metallbKey('signal-leave-test')], timing: { suspectAfterSilenceMs: 2000 } });
    const gone = new Promise<Member>((resolve) => observer!.on('leave', (m) => m.name === 'blocked' && resolve(m)));
    assert.equal(await observer.join([`127.0.0.1:${port}`]), 1);
    child.stdin.write('block\n');
    await lineMatching(/blocking/, 'its main thread to block');
    await body({ child, gone, exited, stderr: () => err });
  } finally {
    await observer?.shutdown().catch(() => undefined);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
}

async function exitsWithStatus1(m: Stuck, what: string): Promise<void> {
  const result = await within(m.exited, 60_000);
  assert.ok(result, `the stuck member still runs 60 s after ${what}; stderr: ${m.stderr()}`);
  assert.deepEqual(result, [1, null], `exit status; stderr: ${m.stderr()}`);
  assert.match(m.stderr(), /"msg":"second signal while shutting down: exiting at once"/);
}

test('SIGTERM to a member whose main thread is stuck: its gossip thread leaves (state left, not dead); a second SIGTERM exits (status 1)', options, async () => {
  await withStuckMember(async (m) => {
    m.child.kill('SIGTERM');
    // Its gossip thread keeps acking our probes (and 2 s of silence are tolerated on a loaded machine), so only a
    // leave can end it, and the main thread cannot send one.
    const left = await within(m.gone, 60_000);
    assert.ok(left, 'the observer never heard the stuck member leave');
    assert.equal(left.state, 'left');
    // The first signal was delivered (the leave proves it), so this one is a second delivery, not merged with it.
    // Before exitOnRepeatedSignal, the gossip thread's watch swallowed it and the stuck member ran for ever.
    m.child.kill('SIGTERM');
    await exitsWithStatus1(m, 'a second SIGTERM');
  });
});

test('SIGINT and SIGTERM back to back (a Ctrl-C that a wrapper forwards too): the leave still goes out, then the process exits (status 1)', options, async () => {
  await withStuckMember(async (m) => {
    // Two different signals cannot merge into one pending signal, whatever the timing.
    m.child.kill('SIGINT');
    m.child.kill('SIGTERM');
    await exitsWithStatus1(m, 'SIGINT and SIGTERM');
    const left = await within(m.gone, 60_000);
    assert.ok(left, 'the observer never heard the member go');
    assert.equal(left.state, 'left', 'the leave was sent before the exit (else the member would be found dead)');
  });
});
