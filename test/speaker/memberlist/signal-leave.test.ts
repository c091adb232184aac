// The gossip thread leaves on SIGTERM by itself: a member whose main thread is stuck still tells the others at once
// (the speaker's main thread handles SIGTERM late when busy; docs/speaker.md "SIGTERM with 1,000 addresses").
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

test('SIGTERM to a member whose main thread is stuck: its gossip thread leaves (state left, not dead)', { skip: nativeAvailable() ? false : 'the native addon is not built', timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const lineMatching = async (re: RegExp, what: string): Promise<RegExpExecArray> => {
    const end = Date.now() + 60_000;
    for (;;) {
      const m = re.exec(out);
      if (m) return m;
      if (child.exitCode !== null) throw new Error(`the member exited (${child.exitCode}) before ${what}; output: ${out}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output: ${out}`);
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
    child.kill('SIGTERM');
    // Its gossip thread keeps acking our probes (and 2 s of silence are tolerated on a loaded machine), so only a
    // leave can end it, and the main thread cannot send one.
    const left = await Promise.race([gone, new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000).unref())]);
    assert.ok(left, 'the observer never heard the stuck member leave');
    assert.equal(left.state, 'left');
  } finally {
    await observer?.shutdown().catch(() => undefined);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
});
