// `metallb lab load` without a lab: the generator against a local HTTP server that answers like echo-hname.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metallb } from '../helpers/lab.js';
import { answerer, checkLoadOptions, formatPods, LoadOptionsError, percentile, progressLine, runLoad, MAX_DURATION_MS, type LoadOptions } from '../../src/lab/load.js';

describe('load generator: pure parts', () => {
  it('percentiles by nearest rank', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(v, 50), 50);
    assert.equal(percentile(v, 90), 90);
    assert.equal(percentile(v, 99), 99);
    assert.equal(percentile([], 50), 0);
    assert.equal(percentile([7], 99), 7);
  });
  it('names the pod from an echo-hname body, nothing else', () => {
    assert.equal(answerer('lb-hname-pods-7d4b5b9b8-x2k9p\n'), 'lb-hname-pods-7d4b5b9b8-x2k9p');
    assert.equal(answerer('<!DOCTYPE html>\n<html>'), '-');
    assert.equal(answerer(''), '-');
  });
  it('progress lines', () => {
    const line = progressLine(3000, { latencies: [1, 2, 3, 4], errors: new Map([['ECONNREFUSED', 1]]), pods: new Map([['b', 1], ['a', 3]]) }, 1);
    assert.match(line, /^\s+3s\s+5 req\/s\s+p50\s+2\.0ms\s+p90\s+4\.0ms\s+p99\s+4\.0ms\s+errors 1 \(ECONNREFUSED 1\)\s+pods 2: a \(3\) b \(1\)$/);
    assert.equal(formatPods(new Map(Array.from({ length: 10 }, (_, i) => [`p${i}`, 1])), 3), 'p0 (1) p1 (1) p2 (1) +7 more');
  });
  it('refuses what would not stop or makes no sense, naming the option', () => {
    const base: LoadOptions = { url: new URL('http://10.0.0.1/'), rate: 10, concurrency: 2, durationMs: 1000, newConnections: false, timeoutMs: 1000 };
    assert.throws(() => checkLoadOptions({ ...base, durationMs: MAX_DURATION_MS + 1 }), (e: unknown) => e instanceof LoadOptionsError && /--duration: must be more than 0 and at most 10m/.test(e.message));
    assert.throws(() => checkLoadOptions({ ...base, concurrency: 0 }), /--concurrency 0/);
    assert.throws(() => checkLoadOptions({ ...base, rate: -1 }), /--rate -1/);
    assert.throws(() => checkLoadOptions({ ...base, url: new URL('https://x/') }), /only http:\/\/ URLs/);
  });
});

describe('load generator against a server', () => {
  let server: Server;
  let url: URL;
  const sockets = new Set<string>();
  let connections = 0;
  before(async () => {
    let n = 0;
    server = createServer((req, res) => {
      sockets.add(`${req.socket.remotePort}`);
      res.end(`pod-${n++ % 2 === 0 ? 'a' : 'b'}\n`);
    });
    // Counted by event, not by client port: the kernel may give a new connection the port of one whose TIME_WAIT is
    // on the server's side (CI once saw 945 distinct ports for 959 new connections).
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('paces to the rate, reports every second, counts the pods, stops by itself', async () => {
    const lines: string[] = [];
    sockets.clear();
    const s = await runLoad({ url, rate: 40, concurrency: 4, durationMs: 2500, newConnections: false, timeoutMs: 2000 }, (t) => lines.push(t));
    assert.equal(s.stoppedBy, 'duration');
    assert.equal([...s.errors.values()].reduce((a, b) => a + b, 0), 0);
    // 40/s for 2.5 s; the machine may be slow, never faster than asked
    assert.ok(s.requests >= 40 && s.requests <= 101, `${s.requests} requests`);
    assert.deepEqual([...s.pods.keys()].sort(), ['pod-a', 'pod-b']);
    assert.ok(lines.filter((l) => /req\/s/.test(l)).length >= 2, lines.join(''));
    assert.match(lines.join(''), /summary: \d+ requests in 2\.\d s/);
    assert.ok(sockets.size <= 4, `keep-alive: ${sockets.size} connections for ${s.requests} requests`);
  });

  it('a new connection per request', async () => {
    connections = 0;
    const s = await runLoad({ url, rate: 0, concurrency: 2, durationMs: 800, newConnections: true, timeoutMs: 2000 }, () => undefined);
    assert.ok(s.ok > 5);
    assert.ok(connections >= s.ok - 2, `${connections} connections for ${s.ok} requests`);
  });

  it('errors are counted by kind; an abort stops it early with the summary', async () => {
    const dead = new URL('http://127.0.0.1:1/');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 600);
    const started = Date.now();
    const out: string[] = [];
    const s = await runLoad({ url: dead, rate: 20, concurrency: 2, durationMs: 60_000, newConnections: false, timeoutMs: 1000 }, (t) => out.push(t), ac.signal);
    assert.ok(Date.now() - started < 5000);
    assert.equal(s.stoppedBy, 'signal');
    assert.ok((s.errors.get('ECONNREFUSED') ?? 0) > 0, JSON.stringify([...s.errors]));
    assert.match(out.join(''), /stopped by signal/);
  });
});

describe('metallb lab load (command line)', () => {
  it('refuses a run that would not stop, or a bad URL or rate, naming what is wrong', async () => {
    const long = await metallb(['lab', 'load', 'http://10.89.0.200/', '--duration', '11m', '--name', 'tzz']);
    assert.equal(long.code, 1);
    assert.match(long.stderr, /--duration: must be more than 0 and at most 10m \(the load always stops by itself\)/);
    const url = await metallb(['lab', 'load', 'not-a-url', '--name', 'tzz']);
    assert.equal(url.code, 1);
    assert.match(url.stderr, /"not-a-url" is not a URL/);
    const rate = await metallb(['lab', 'load', 'http://10.89.0.200/', '--rate', 'fast', '--name', 'tzz']);
    assert.equal(rate.code, 2);
    assert.match(rate.stderr, /"fast" is not a rate/);
  });
  it('says when the lab is not up', async () => {
    const r = await metallb(['lab', 'load', 'http://10.89.0.200/', '--duration', '1s', '--name', 'tzz']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no lab "tzz" is up|needs root/);
  });
});
