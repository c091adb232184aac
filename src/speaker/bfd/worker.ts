// The BFD worker thread: a BfdEngine with an event loop of its own, so that packets go out and timers fire on time
// however busy the speaker's main thread is (a large config parse, 100,000 routes to advertise, a GC pause there).
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, type LogLevel } from '../../log.js';
import { BfdEngine, type BfdSessionConfig } from './engine.js';

export type WorkerRequest =
  | { type: 'configure'; id: number; sessions: BfdSessionConfig[] }
  | { type: 'status'; id: number }
  | { type: 'close'; id: number };

export type WorkerMessage =
  | { type: 'reply'; id: number; result?: unknown; error?: string }
  | { type: 'state'; key: string; state: string; diag: number; previous: string; remoteState: string };

const port = parentPort;
if (port) {
  const data = (workerData ?? {}) as { logLevel?: LogLevel; ports?: { singleHop: number; multiHop: number } };
  const engine = new BfdEngine(
    (key, state, diag, previous, remoteState) => port.postMessage({ type: 'state', key, state, diag, previous, remoteState } satisfies WorkerMessage),
    createLogger('bfd', data.logLevel ?? 'info'),
    undefined,
    data.ports,
  );
  // Requests are handled one at a time, in order.
  let chain = Promise.resolve();
  port.on('message', (req: WorkerRequest) => {
    chain = chain.then(async () => {
      try {
        let result: unknown;
        if (req.type === 'configure') result = await engine.configure(req.sessions);
        else if (req.type === 'status') result = engine.status();
        else result = await engine.close();
        port.postMessage({ type: 'reply', id: req.id, result } satisfies WorkerMessage);
      } catch (err) {
        port.postMessage({ type: 'reply', id: req.id, error: (err as Error).message } satisfies WorkerMessage);
      }
    });
  });
}
