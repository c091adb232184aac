// The latency trace's ring: samples come back oldest first, in microseconds, once; past its capacity only the
// newest are kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyTrace, mergeSamples } from '../../src/net/latency-trace.js';

test('samples are drained once, oldest first, converted to microseconds', () => {
  const trace = new LatencyTrace(4);
  trace.record(1000, 2000, 3500);
  trace.record(4000, 5000, 6000);
  assert.deepEqual(trace.drain(), { readUs: [1, 4], sendUs: [2, 5], sentUs: [3.5, 6] });
  assert.deepEqual(trace.drain(), { readUs: [], sendUs: [], sentUs: [] });
});

test('past its capacity the ring keeps the newest samples', () => {
  const trace = new LatencyTrace(3);
  for (let i = 1; i <= 7; i++) trace.record(i * 1000, i * 1000, i * 1000);
  assert.deepEqual(trace.drain().readUs, [5, 6, 7]);
  trace.record(8000, 8000, 8000);
  assert.deepEqual(trace.drain().readUs, [8]);
});

test('samples of several sockets merge', () => {
  const a = new LatencyTrace(2);
  const b = new LatencyTrace(2);
  a.record(1000, 1000, 1000);
  b.record(2000, 2000, 2000);
  assert.deepEqual(mergeSamples([a.drain(), b.drain()]).readUs, [1, 2]);
});
