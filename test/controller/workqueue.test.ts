import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../src/controller/workqueue.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('work queue: a key added many times before processing is processed once', async () => {
  const seen: string[] = [];
  const q = new WorkQueue<string>(async (k) => {
    seen.push(k);
  });
  for (let i = 0; i < 10; i++) q.add('a');
  q.add('b');
  q.add('a');
  assert.equal(q.length, 2);
  q.start();
  await q.idle();
  assert.deepEqual(seen, ['a', 'b']);
});

test('work queue: a key is never processed by two workers at once; added while processing, it runs again after', async () => {
  let active = 0;
  let maxActive = 0;
  let runs = 0;
  let release: (() => void) | undefined;
  const q = new WorkQueue<string>(
    async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs++;
      if (runs === 1) await new Promise<void>((r) => (release = r));
      active--;
    },
    { concurrency: 4 },
  );
  q.start();
  q.add('x');
  await sleep(5);
  assert.equal(runs, 1);
  q.add('x');
  q.add('x');
  await sleep(5);
  assert.equal(runs, 1, 'not started again while processing');
  release?.();
  await sleep(20);
  await q.idle();
  assert.equal(runs, 2, 'processed once more after the first run');
  assert.equal(maxActive, 1);
});

test('work queue: different keys run concurrently up to the limit', async () => {
  let active = 0;
  let maxActive = 0;
  const q = new WorkQueue<number>(
    async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await sleep(10);
      active--;
    },
    { concurrency: 3 },
  );
  for (let i = 0; i < 10; i++) q.add(i);
  q.start();
  await q.idle();
  assert.equal(maxActive, 3);
});

test('work queue: failures are retried with exponential backoff, success resets', async () => {
  const times: number[] = [];
  let fails = 3;
  const errors: number[] = [];
  const q = new WorkQueue<string>(
    async () => {
      times.push(Date.now());
      if (fails-- > 0) throw new Error('boom');
    },
    { baseDelayMs: 20, maxDelayMs: 1000, onError: (_k, _e, n) => errors.push(n) },
  );
  q.start();
  q.add('k');
  await sleep(400);
  assert.equal(times.length, 4, 'three failures then a success');
  assert.deepEqual(errors, [1, 2, 3]);
  const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
  assert.ok((gaps[0] as number) >= 15, `first retry after ~20ms, got ${gaps[0]}`);
  assert.ok((gaps[1] as number) >= 35, `second retry after ~40ms, got ${gaps[1]}`);
  assert.ok((gaps[2] as number) >= 75, `third retry after ~80ms, got ${gaps[2]}`);
  assert.equal(q.numRequeues('k'), 0, 'success resets the backoff');
  await q.shutdown();
});

test('work queue: requeueAfterMs processes the key again later without counting a failure', async () => {
  let runs = 0;
  const q = new WorkQueue<string>(async () => {
    runs++;
    return runs === 1 ? { requeueAfterMs: 30 } : undefined;
  });
  q.start();
  q.add('k');
  await sleep(10);
  assert.equal(runs, 1);
  await sleep(60);
  assert.equal(runs, 2);
  assert.equal(q.numRequeues('k'), 0);
  await q.shutdown();
});

test('work queue: addAfter keeps the earliest pending time; shutdown cancels timers and waits for work', async () => {
  const seen: string[] = [];
  // The running item finishes when the test says so (no race with a loaded machine's timers).
  let finish!: () => void;
  const running = new Promise<void>((r) => (finish = r));
  const q = new WorkQueue<string>(async (k) => {
    seen.push(k);
    await running;
  });
  q.start();
  const added = Date.now();
  q.addAfter('late', 500);
  q.addAfter('late', 20);
  for (let i = 0; i < 200 && seen.length === 0; i++) await sleep(5);
  assert.deepEqual(seen, ['late']);
  assert.ok(Date.now() - added < 500, 'the earlier time won');
  q.addAfter('never', 50);
  let shutDown = false;
  const done = q.shutdown().then(() => (shutDown = true));
  await sleep(20);
  assert.equal(shutDown, false, 'waits for the running item');
  finish();
  await done;
  await sleep(80);
  assert.deepEqual(seen, ['late']);
  q.add('after-shutdown');
  await sleep(10);
  assert.deepEqual(seen, ['late']);
});

test('work queue: keys added before start wait, then are processed in order', async () => {
  const seen: number[] = [];
  const q = new WorkQueue<number>(async (k) => {
    seen.push(k);
  });
  for (let i = 0; i < 5; i++) q.add(i);
  await sleep(10);
  assert.deepEqual(seen, []);
  q.start();
  await q.idle();
  assert.deepEqual(seen, [0, 1, 2, 3, 4]);
});
