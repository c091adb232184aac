// Worker-thread host of a MemberlistEngine: the protocol keeps probing, acking and timing out on its
// own event loop while the speaker's main loop is busy (reconciling 1,000 services, GC, a slow API).
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

const PRIORITY_THREAD = -15;
import { MemberlistEngine, type MemberlistLogger, type MemberlistOptions } from './engine.js';

type Request = { id: number; op: 'start' | 'join' | 'members' | 'localMember' | 'leave' | 'shutdown' | 'counters' | 'healthScore'; args: unknown[] };

const port = parentPort;
if (!port) throw new Error('memberlist worker started outside a worker thread');

const forward = (level: keyof MemberlistLogger): ((obj: object, msg: string) => void) => (obj, msg) => port.postMessage({ log: level, obj, msg });
const logger: MemberlistLogger = { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
const { options, logLevels } = workerData as { options: Omit<MemberlistOptions, 'logger'>; logLevels: Array<keyof MemberlistLogger> };
const enabled = new Set(logLevels);
const filtered: MemberlistLogger = {
  debug: enabled.has('debug') ? logger.debug : () => {},
  info: enabled.has('info') ? logger.info : () => {},
  warn: enabled.has('warn') ? logger.warn : () => {},
  error: enabled.has('error') ? logger.error : () => {},
};
// Failure detection is latency-critical: ask the kernel to run this thread first. setpriority on a
// thread id affects that thread only; lowering nice needs CAP_SYS_NICE (root has it).
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, PRIORITY_THREAD);
  filtered.debug({ tid, nice: PRIORITY_THREAD }, 'memberlist: gossip thread priority raised');
} catch (err) {
  filtered.info({ err: (err as Error).message }, 'memberlist: cannot raise the gossip thread priority (needs CAP_SYS_NICE); failure detection may be slower to trust under CPU saturation');
}
const engine = new MemberlistEngine({ ...options, logger: filtered });
for (const ev of ['join', 'leave', 'update', 'suspect'] as const) engine.on(ev, (member) => port.postMessage({ event: ev, member }));

port.on('message', async (req: Request) => {
  try {
    let result: unknown;
    switch (req.op) {
      case 'start': await engine.start(); result = engine.port; break;
      case 'join': result = await engine.join(req.args[0] as string[]); break;
      case 'members': result = engine.members(); break;
      case 'localMember': result = engine.localMember(); break;
      case 'leave': await engine.leave(req.args[0] as number); break;
      case 'shutdown': await engine.shutdown(); break;
      case 'counters': result = { ...engine.counters, ...engine.latency() }; break;
      case 'healthScore': result = engine.healthScore(); break;
    }
    port.postMessage({ id: req.id, result });
  } catch (err) {
    port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
  }
});
