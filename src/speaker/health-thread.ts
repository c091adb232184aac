// The speaker's /healthz and /readyz, answered from a thread of their own.
//
// The kubelet kills a speaker whose liveness probe goes unanswered (MetalLB's manifests: 1-2 s timeout, 3 failures):
// its addresses move to another node, a failover as real as a cut cable. On the main thread the probe waits behind
// whatever the event loop is doing; with the CPUs saturated and 1,000 Services to reconcile that was tens of seconds,
// and the failover soak saw speakers killed in a loop while every one of them was making progress. Here the probe is
// answered at once by a tiny worker (plain JS, nothing to load), and liveness means what it should: the main loop has
// run recently (a heartbeat it writes to shared memory), not that it is idle right now. A main loop that stops for
// `stallLimitMs` (a real hang) fails the probe. Readiness is the main thread's notReady(), sent with each heartbeat.
import { Worker } from 'node:worker_threads';
import type { RunningServer } from '../controller/servers.js';

export interface HealthThreadOptions {
  /** Reasons for not being ready; empty = ready. Called on the main thread at each heartbeat. */
  notReady(): string[];
  /** A main loop silent this long fails /healthz. */
  stallLimitMs?: number;
  /** How often the main loop writes its heartbeat (and readiness). */
  beatMs?: number;
}

export const DEFAULT_STALL_LIMIT_MS = 60_000;

/** What /healthz answers, from the last heartbeat of the main loop. */
export function livenessAnswer(nowMs: number, lastBeatMs: number, stallLimitMs: number): { status: number; body: string } {
  const silent = nowMs - lastBeatMs;
  if (silent > stallLimitMs) return { status: 503, body: `main event loop has not run for ${Math.round(silent / 1000)} s\n` };
  return { status: 200, body: 'ok\n' };
}

/** What /readyz answers, from the reasons last sent by the main thread. */
export function readinessAnswer(reasons: readonly string[]): { status: number; body: string } {
  return reasons.length === 0 ? { status: 200, body: 'ok\n' } : { status: 503, body: `not ready: ${reasons.join('; ')}\n` };
}

// The worker's source: self-contained CommonJS (an eval'd worker loads no bundle: it answers within a second of
// the process starting, however starved), the two answers above inlined from their source text.
const WORKER = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const livenessAnswer = ${livenessAnswer.toString()};
const readinessAnswer = ${readinessAnswer.toString()};
const beat = new BigInt64Array(workerData.beat);
let reasons = ['starting'];
const server = http.createServer((req, res) => {
  const path = (req.url || '/').split('?')[0];
  let a;
  if (path === '/healthz' || path === '/livez') a = livenessAnswer(Date.now(), Number(Atomics.load(beat, 0)), workerData.stallLimitMs);
  else if (path === '/readyz') a = readinessAnswer(reasons);
  else a = { status: 404, body: 'not found\\n' };
  res.writeHead(a.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(a.body) });
  res.end(a.body);
});
parentPort.on('message', (m) => {
  if (m.reasons) reasons = m.reasons;
  if (m.close) {
    server.close(() => parentPort.postMessage({ closed: true }));
    server.closeAllConnections();
  }
});
server.once('error', (err) => parentPort.postMessage({ error: err.message }));
server.listen(workerData.port, workerData.host, () => parentPort.postMessage({ port: server.address().port }));
`;

/** Starts the health server in its own thread; the returned close() stops it and the heartbeat. */
export async function startHealthThread(port: number, host: string | undefined, opts: HealthThreadOptions): Promise<RunningServer> {
  const beatMs = opts.beatMs ?? 1000;
  const beatBuf = new SharedArrayBuffer(8);
  const beat = new BigInt64Array(beatBuf);
  Atomics.store(beat, 0, BigInt(Date.now()));
  const worker = new Worker(WORKER, { eval: true, workerData: { beat: beatBuf, port, host, stallLimitMs: opts.stallLimitMs ?? DEFAULT_STALL_LIMIT_MS } });
  let last = '';
  const tick = (): void => {
    Atomics.store(beat, 0, BigInt(Date.now()));
    const reasons = opts.notReady();
    const key = reasons.join('\n');
    if (key !== last) {
      last = key;
      worker.postMessage({ reasons });
    }
  };
  const bound = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`health thread exited (${code}) before listening`)));
    worker.once('message', (m: { port?: number; error?: string }) => (m.error !== undefined ? reject(new Error(m.error)) : resolve(m.port!)));
  }).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
  worker.removeAllListeners('exit');
  worker.removeAllListeners('error');
  worker.on('error', () => {});
  tick();
  const timer = setInterval(tick, beatMs);
  timer.unref();
  worker.unref();
  return {
    port: bound,
    close: async () => {
      clearInterval(timer);
      await new Promise<void>((resolve) => {
        const done = (): void => resolve();
        worker.once('exit', done);
        worker.on('message', (m: { closed?: boolean }) => m.closed && void worker.terminate());
        worker.postMessage({ close: true });
      });
    },
  };
}
