// `metallb lab load`: a bounded HTTP load generator. Workers (the concurrency) send GET requests, paced to a rate when
// one is given, over keep-alive connections or a new connection per request; every second a line reports requests/s,
// latency percentiles, errors and which pods answered (the echo-hname image answers with the pod name), and a summary
// closes the run. It always ends: after --duration (capped), on SIGINT/SIGTERM, or when the caller aborts.
import http from 'node:http';

export const DEFAULT_DURATION_MS = 30_000;
/** No run lasts longer than this, whatever is asked. */
export const MAX_DURATION_MS = 10 * 60_000;
export const MAX_CONCURRENCY = 1000;
export const MAX_RATE = 100_000;

export interface LoadOptions {
  url: URL;
  /** requests per second over all workers; 0 = as fast as the workers go */
  rate: number;
  concurrency: number;
  durationMs: number;
  /** a new TCP connection per request (Connection: close) instead of keep-alive */
  newConnections: boolean;
  /** per request */
  timeoutMs: number;
}

export class LoadOptionsError extends Error {
  override name = 'LoadOptionsError';
}

/** Checks the options a user gave; the error names what is wrong. */
export function checkLoadOptions(o: LoadOptions): void {
  if (o.url.protocol !== 'http:') throw new LoadOptionsError(`${o.url.href}: only http:// URLs are supported`);
  if (!Number.isFinite(o.rate) || o.rate < 0 || o.rate > MAX_RATE) throw new LoadOptionsError(`--rate ${o.rate}: must be 0 (unpaced) to ${MAX_RATE} requests per second`);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > MAX_CONCURRENCY) throw new LoadOptionsError(`--concurrency ${o.concurrency}: must be an integer from 1 to ${MAX_CONCURRENCY}`);
  if (!(o.durationMs > 0) || o.durationMs > MAX_DURATION_MS) throw new LoadOptionsError(`--duration: must be more than 0 and at most ${MAX_DURATION_MS / 60_000}m (the load always stops by itself)`);
  if (!(o.timeoutMs > 0)) throw new LoadOptionsError('--timeout must be positive');
}

/** The p-th percentile (0-100) of sorted values, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** What answered: the first line of the body when it looks like a host name (echo-hname), else `-`. */
export function answerer(body: string): string {
  const first = body.split('\n')[0]?.trim() ?? '';
  return /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/i.test(first) ? first : '-';
}

export interface Window {
  latencies: number[];
  errors: Map<string, number>;
  pods: Map<string, number>;
}

const newWindow = (): Window => ({ latencies: [], errors: new Map(), pods: new Map() });
const bump = (m: Map<string, number>, k: string, n = 1): void => {
  m.set(k, (m.get(k) ?? 0) + n);
};

const ms = (v: number): string => (v >= 100 ? `${Math.round(v)}ms` : `${v.toFixed(1)}ms`);

/** `pod-a (12) pod-b (10)`, most first. */
export function formatPods(pods: Map<string, number>, max = 8): string {
  const list = [...pods.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = list.slice(0, max).map(([p, n]) => `${p} (${n})`);
  if (list.length > max) shown.push(`+${list.length - max} more`);
  return shown.join(' ') || '-';
}

/** One progress line for the second that ended at `elapsedMs`. */
export function progressLine(elapsedMs: number, w: Window, seconds: number): string {
  const sorted = [...w.latencies].sort((a, b) => a - b);
  const errs = [...w.errors.values()].reduce((a, b) => a + b, 0);
  const rate = (sorted.length + errs) / seconds;
  return [
    `${String(Math.round(elapsedMs / 1000)).padStart(4)}s`,
    `${rate.toFixed(0).padStart(5)} req/s`,
    `p50 ${ms(percentile(sorted, 50)).padStart(7)}`,
    `p90 ${ms(percentile(sorted, 90)).padStart(7)}`,
    `p99 ${ms(percentile(sorted, 99)).padStart(7)}`,
    `errors ${errs}${errs ? ` (${[...w.errors.entries()].map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`,
    `pods ${w.pods.size}: ${formatPods(w.pods)}`,
  ].join('  ');
}

export interface LoadSummary {
  requests: number;
  ok: number;
  errors: Map<string, number>;
  pods: Map<string, number>;
  elapsedMs: number;
  latencies: { p50: number; p90: number; p99: number; max: number };
  stoppedBy: 'duration' | 'signal';
}

export function summaryText(s: LoadSummary, o: LoadOptions): string {
  const lines = [
    '',
    `summary: ${s.requests} requests in ${(s.elapsedMs / 1000).toFixed(1)} s (${(s.requests / Math.max(0.001, s.elapsedMs / 1000)).toFixed(1)} req/s${o.rate ? `, asked ${o.rate}` : ''}), ` +
      `${o.concurrency} workers, ${o.newConnections ? 'a new connection per request' : 'keep-alive'}${s.stoppedBy === 'signal' ? ', stopped by signal' : ''}`,
    `  ok ${s.ok}, errors ${[...s.errors.values()].reduce((a, b) => a + b, 0)}${s.errors.size ? ` (${[...s.errors.entries()].map(([k, n]) => `${k}: ${n}`).join(', ')})` : ''}`,
    `  latency p50 ${ms(s.latencies.p50)}, p90 ${ms(s.latencies.p90)}, p99 ${ms(s.latencies.p99)}, max ${ms(s.latencies.max)}`,
    `  answered by ${s.pods.size} pod(s): ${formatPods(s.pods, 50)}`,
  ];
  return lines.join('\n') + '\n';
}

function errorKind(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code) return code;
  const m = e instanceof Error ? e.message : String(e);
  return m.length > 40 ? `${m.slice(0, 37)}...` : m;
}

/** Runs the load; `out` receives the progress lines and the summary. Resolves when the run is over. */
export async function runLoad(o: LoadOptions, out: (text: string) => void, signal?: AbortSignal): Promise<LoadSummary> {
  checkLoadOptions(o);
  const agent = new http.Agent({ keepAlive: !o.newConnections, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const started = performance.now();
  const deadline = started + o.durationMs;
  let window = newWindow();
  let windowStart = started;
  const all: number[] = [];
  const totalErrors = new Map<string, number>();
  const totalPods = new Map<string, number>();
  let stopped = false;
  let stoppedBy: LoadSummary['stoppedBy'] = 'duration';
  const stop = (): void => {
    if (!stopped) stoppedBy = 'signal';
    stopped = true;
  };
  signal?.addEventListener('abort', stop, { once: true });
  out(
    `load: GET ${o.url.href} for ${(o.durationMs / 1000).toFixed(0)} s, ${o.rate ? `${o.rate} req/s` : 'unpaced'}, ${o.concurrency} workers, ${o.newConnections ? 'new connection per request' : 'keep-alive'} (Ctrl-C stops)\n`,
  );
  const ticker = setInterval(() => {
    const now = performance.now();
    out(`${progressLine(now - started, window, (now - windowStart) / 1000)}\n`);
    window = newWindow();
    windowStart = now;
  }, 1000);
  const endTimer = setTimeout(() => {
    stopped = true;
  }, o.durationMs);

  // pacing: request i of the run is due at started + i / rate
  let issued = 0;
  const interval = o.rate > 0 ? 1000 / o.rate : 0;
  const sleep = (d: number): Promise<void> => new Promise((r) => setTimeout(r, d));

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const req = http.get(
        o.url,
        { agent, timeout: o.timeoutMs, headers: { 'User-Agent': 'metallb-lab-load/1', ...(o.newConnections ? { Connection: 'close' } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < 4096) chunks.push(c);
            size += c.length;
          });
          res.on('end', () => {
            const dt = performance.now() - t0;
            if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400) {
              const who = answerer(Buffer.concat(chunks).toString('utf8'));
              window.latencies.push(dt);
              all.push(dt);
              bump(window.pods, who);
              bump(totalPods, who);
            } else {
              bump(window.errors, `HTTP ${res.statusCode}`);
              bump(totalErrors, `HTTP ${res.statusCode}`);
            }
            resolve();
          });
          res.on('error', (e) => {
            bump(window.errors, errorKind(e));
            bump(totalErrors, errorKind(e));
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (e) => {
        bump(window.errors, errorKind(e));
        bump(totalErrors, errorKind(e));
        resolve();
      });
    });

  const worker = async (): Promise<void> => {
    while (!stopped && performance.now() < deadline) {
      if (interval > 0) {
        const due = started + issued * interval;
        if (due >= deadline) break;
        issued++;
        // a timer may fire a little before its time on the performance clock: never send before the request is due
        for (let wait = due - performance.now(); wait > 0 && !stopped; wait = due - performance.now()) await sleep(wait);
        if (stopped) break;
      }
      await one();
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, () => worker()));
  clearInterval(ticker);
  clearTimeout(endTimer);
  signal?.removeEventListener('abort', stop);
  agent.destroy();
  const elapsedMs = performance.now() - started;
  // the last partial second, unless too short for a rate to mean anything (the summary has it anyway)
  const tail = (performance.now() - windowStart) / 1000;
  if ((window.latencies.length || window.errors.size) && tail >= 0.5) out(`${progressLine(elapsedMs, window, tail)}\n`);
  all.sort((a, b) => a - b);
  const errs = [...totalErrors.values()].reduce((a, b) => a + b, 0);
  const summary: LoadSummary = {
    requests: all.length + errs,
    ok: all.length,
    errors: totalErrors,
    pods: totalPods,
    elapsedMs,
    latencies: { p50: percentile(all, 50), p90: percentile(all, 90), p99: percentile(all, 99), max: all[all.length - 1] ?? 0 },
    stoppedBy,
  };
  out(summaryText(summary, o));
  return summary;
}
