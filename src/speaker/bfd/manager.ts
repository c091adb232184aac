// The speaker's handle on BFD: sessions per BGP peer, their state as events. By default the engine runs in a worker
// thread (see worker.ts); `inline` runs it on the caller's event loop (tests, and the benchmark's comparison).
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Logger, LogLevel } from '../../log.js';
import { BfdEngine, type BfdSessionConfig, type BfdStatus } from './engine.js';
import { bundleEntryURL } from '../../bundle.js';
import type { StateName } from './packet.js';
import type { WorkerMessage, WorkerRequest } from './worker.js';

export interface BfdManagerOptions {
  logger?: Logger;
  /** Level for the worker's own logger. */
  logLevel?: LogLevel;
  mode?: 'worker' | 'inline';
  /** The worker's module (default: worker.js/worker.ts beside this file). */
  workerUrl?: URL;
  /** Listening ports (tests move them off 3784/4784). */
  ports?: { singleHop: number; multiHop: number };
}

export interface BfdManagerEvents {
  /** `remoteState`: the peer's state as last heard (see BfdStateListener). */
  state: [key: string, state: StateName, diag: number, previous: StateName, remoteState?: StateName];
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class BfdManager extends EventEmitter<BfdManagerEvents> {
  private worker: Worker | undefined;
  private engine: BfdEngine | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(private readonly opts: BfdManagerOptions = {}) {
    super();
    const emit = (key: string, state: StateName, diag: number, previous: StateName, remoteState: StateName): void =>
      void this.emit('state', key, state, diag, previous, remoteState);
    if ((opts.mode ?? 'worker') === 'inline') {
      this.engine = new BfdEngine(emit, opts.logger, undefined, opts.ports);
      return;
    }
    const workerData = { logLevel: opts.logLevel ?? 'info', ...(opts.ports ? { ports: opts.ports } : {}) };
    if (opts.workerUrl || !import.meta.url.endsWith('.ts')) {
      this.worker = new Worker(opts.workerUrl ?? bundleEntryURL('bfd-worker') ?? new URL('./worker.js', import.meta.url), { workerData });
    } else {
      // From a checkout the worker is TypeScript: a small bootstrap registers tsx in the worker, then loads it.
      const tsx = import.meta.resolve('tsx/esm/api');
      const worker = new URL('./worker.ts', import.meta.url).href;
      const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(worker)}); });`;
      this.worker = new Worker(code, { eval: true, workerData });
    }
    this.worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'state') {
        emit(m.key, m.state as StateName, m.diag, m.previous as StateName, m.remoteState as StateName);
        return;
      }
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.result);
    });
    this.worker.on('error', (err) => {
      opts.logger?.error({ event: 'bfdWorkerError', err }, 'the BFD worker failed');
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  private request(req: DistributiveOmit<WorkerRequest, 'id'>): Promise<unknown> {
    if (this.engine) {
      if (req.type === 'configure') return this.engine.configure(req.sessions);
      if (req.type === 'status') return Promise.resolve(this.engine.status());
      return this.engine.close();
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker!.postMessage({ ...req, id } satisfies WorkerRequest);
    });
  }

  /** The sessions this node should run (one per BGP peer with a BFD profile). */
  async configure(sessions: readonly BfdSessionConfig[]): Promise<void> {
    if (this.closed) return;
    await this.request({ type: 'configure', sessions: [...sessions] });
  }

  async status(): Promise<BfdStatus[]> {
    if (this.closed) return [];
    return (await this.request({ type: 'status' })) as BfdStatus[];
  }

  /** Every session says AdminDown; the worker ends. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.request({ type: 'close' }).catch(() => undefined);
    await this.worker?.terminate();
  }
}
