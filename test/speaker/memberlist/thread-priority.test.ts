// The gossip thread's priority: mode parsing and the fallback order, with recording fakes (no privilege needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NICE_PRIORITY, parsePriorityMode, raiseThreadPriority, RT_PRIORITY, type PriorityOps } from '../../../src/speaker/memberlist/thread-priority.js';

function fakeOps(allow: { realtime: boolean; nice: boolean }, calls: string[] = []): PriorityOps {
  return {
    tid: () => 4242,
    realtime: (tid, prio) => {
      calls.push(`rr ${tid} ${prio}`);
      if (!allow.realtime) throw new Error('chrt: failed to set pid 4242\'s policy: Operation not permitted');
    },
    nice: (tid, n) => {
      calls.push(`nice ${tid} ${n}`);
      if (!allow.nice) throw new Error('EACCES');
    },
  };
}

test('mode: realtime by default, nice, none; anything else is an error naming the variable', () => {
  assert.equal(parsePriorityMode(undefined), 'realtime');
  assert.equal(parsePriorityMode(''), 'realtime');
  assert.equal(parsePriorityMode('RealTime'), 'realtime');
  assert.equal(parsePriorityMode('nice'), 'nice');
  assert.equal(parsePriorityMode(' none '), 'none');
  assert.throws(() => parsePriorityMode('fifo'), /METALLB_ML_THREAD_PRIORITY=fifo/);
});

test('realtime allowed: SCHED_RR on our thread id, nothing else', () => {
  const calls: string[] = [];
  const r = raiseThreadPriority(undefined, fakeOps({ realtime: true, nice: true }, calls));
  assert.deepEqual(r, { tid: 4242, applied: 'realtime', tried: ['realtime'] });
  assert.deepEqual(calls, [`rr 4242 ${RT_PRIORITY}`]);
});

test('realtime refused: falls back to nice and keeps the reason', () => {
  const calls: string[] = [];
  const r = raiseThreadPriority('realtime', fakeOps({ realtime: false, nice: true }, calls));
  assert.equal(r.applied, 'nice');
  assert.deepEqual(r.tried, ['realtime', 'nice']);
  assert.match(r.error ?? '', /not permitted/);
  assert.deepEqual(calls, [`rr 4242 ${RT_PRIORITY}`, `nice 4242 ${NICE_PRIORITY}`]);
});

test('no privilege at all: nothing applied, both reasons given, no throw', () => {
  const r = raiseThreadPriority(undefined, fakeOps({ realtime: false, nice: false }));
  assert.equal(r.applied, 'none');
  assert.deepEqual(r.tried, ['realtime', 'nice']);
  assert.match(r.error ?? '', /not permitted; EACCES/);
});

test('nice mode never tries real time; none tries nothing', () => {
  const calls: string[] = [];
  assert.equal(raiseThreadPriority('nice', fakeOps({ realtime: true, nice: true }, calls)).applied, 'nice');
  assert.deepEqual(calls, [`nice 4242 ${NICE_PRIORITY}`]);
  const none: string[] = [];
  assert.deepEqual(raiseThreadPriority('none', fakeOps({ realtime: true, nice: true }, none)), { tid: 0, applied: 'none', tried: [] });
  assert.deepEqual(none, []);
});

test('a bad mode or an unreadable thread id is reported, not thrown', () => {
  assert.match(raiseThreadPriority('bogus', fakeOps({ realtime: true, nice: true })).invalidSetting ?? '', /expected realtime, nice or none/);
  const r = raiseThreadPriority(undefined, { ...fakeOps({ realtime: true, nice: true }), tid: () => { throw new Error('no /proc'); } });
  assert.equal(r.applied, 'none');
  assert.equal(r.error, 'no /proc');
});
