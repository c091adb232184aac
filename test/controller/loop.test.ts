import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoopControl } from '../../src/k8s/loop.js';

test('loop control: stop ends a sleep at once and waits for the loop; a second start while running is ignored', async () => {
  const c = new LoopControl();
  const steps: string[] = [];
  c.start(async () => {
    while (c.running) {
      steps.push('step');
      await c.sleep(60_000);
    }
    steps.push('done');
  });
  c.start(async () => {
    steps.push('second loop');
  });
  const t = Date.now();
  await c.stop();
  assert.ok(Date.now() - t < 1000, `stop took ${Date.now() - t} ms`);
  assert.deepEqual(steps, ['step', 'done']);
  assert.equal(c.running, false);
});

test('loop control: stopped while busy (not sleeping), the next sleep returns at once', async () => {
  const c = new LoopControl();
  let release!: () => void;
  const busy = new Promise<void>((r) => (release = r));
  let interrupted = false;
  let finished = false;
  c.start(async () => {
    await busy; // e.g. a list request in flight
    await c.sleep(60_000);
    finished = true;
  });
  const t = Date.now();
  const stopped = c.stop(() => {
    interrupted = true;
    release();
  });
  await stopped;
  assert.ok(interrupted, 'the interrupt callback ran');
  assert.ok(finished);
  assert.ok(Date.now() - t < 1000, `stop took ${Date.now() - t} ms`);
});
