// Worker-thread host of a MemberlistEngine: the protocol keeps probing, acking and timing out on its
// own event loop while the speaker's main loop is busy (reconciling 1,000 services, GC, a slow API).
import { writeSync } from 'node:fs';
import { constants } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { loadNative } from '../../net/native.js';
import { raiseThreadPriority } from './thread-priority.js';
import { MemberlistEngine, type MemberlistLogger, type MemberlistOptions } from './engine.js';
import { attachTakeoverSender } from '../l2/takeover-sender.js';
import type { TakeoverPlan } from '../l2/takeover-plan.js';

/** A takeover plan or a drop from it: fire and forget, no answer. */
type PlanMessage = { takeoverPlan: TakeoverPlan | null } | { takeoverDrop: string[] | 'all' };
type Request = { id: number; op: 'start' | 'join' | 'members' | 'localMember' | 'leave' | 'shutdown' | 'counters' | 'healthScore'; args: unknown[] };

const port = parentPort;
if (!port) throw new Error('memberlist worker started outside a worker thread');

const forward = (level: keyof MemberlistLogger): ((obj: object, msg: string) => void) => (obj, msg) => port.postMessage({ log: level, obj, msg });
const logger: MemberlistLogger = { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
const { options, logLevels, leaveOnSignals, leaveTimeoutMs, exitOnRepeatedSignal } = workerData as {
  options: Omit<MemberlistOptions, 'logger'>;
  logLevels: Array<keyof MemberlistLogger>;
  leaveOnSignals?: NodeJS.Signals[];
  leaveTimeoutMs?: number;
  exitOnRepeatedSignal?: number;
};
const enabled = new Set(logLevels);
const filtered: MemberlistLogger = {
  debug: enabled.has('debug') ? logger.debug : () => {},
  info: enabled.has('info') ? logger.info : () => {},
  warn: enabled.has('warn') ? logger.warn : () => {},
  error: enabled.has('error') ? logger.error : () => {},
};
// Failure detection is latency-critical: ask the kernel to run this thread first (thread-priority.ts). Without
// CAP_SYS_NICE it keeps the default priority and says so once.
const prio = raiseThreadPriority(process.env.METALLB_ML_THREAD_PRIORITY);
if (prio.invalidSetting) filtered.warn({ err: prio.invalidSetting }, 'memberlist: invalid METALLB_ML_THREAD_PRIORITY; gossip thread priority left at the default');
else if (prio.applied === 'none' && prio.tried.length === 0 && !prio.error) filtered.info({}, 'memberlist: gossip thread priority left at the default (METALLB_ML_THREAD_PRIORITY=none)');
else if (prio.applied === 'none') filtered.info({ tried: prio.tried, err: prio.error }, 'memberlist: cannot raise the gossip thread priority (needs CAP_SYS_NICE); failure detection works, but trusts a silence later under CPU saturation');
else filtered.info({ tid: prio.tid, priority: prio.applied, ...(prio.error ? { realtimeRefused: prio.error } : {}) }, 'memberlist: gossip thread priority raised');
const engine = new MemberlistEngine({ ...options, logger: filtered });
// Registered first: the takeover frames leave before the leave event is even posted to the main thread.
const takeover = attachTakeoverSender(engine, (report) => port.postMessage({ takeover: report }), filtered);
for (const ev of ['join', 'leave', 'update', 'suspect'] as const) engine.on(ev, (member) => port.postMessage({ event: ev, member }));

// The speaker's SIGTERM handler runs on its main thread, which a speaker busy with 1,000 Services reaches 0.3-3.7 s
// late (measured: docs/speaker.md); the others take over only once we leave. This thread hears the signal itself
// (native signalWatch) and leaves at once; the main thread's later leave joins this one. No frames of ours after it.
// While this watch lives, libuv keeps the process's handler for the signal, so a second one never gets the default
// (fatal) action: with exitOnRepeatedSignal this thread ends the process itself, as the operator asked.
let leftOnSignal = false;
if (leaveOnSignals?.length) {
  try {
    const native = loadNative();
    if (!native.signalWatch) throw new Error('the native addon predates signalWatch; rebuild it with `npm run build:native`');
    const exitNow = (name: NodeJS.Signals, status: number): void => {
      // Our log lines travel through the main thread, which may be stuck: this one goes straight to stderr, in the
      // speaker's JSON format, before _exit (which flushes nothing).
      const line = { level: 'warn', ts: new Date().toISOString(), component: 'memberlist', signal: name, status, msg: 'second signal while shutting down: exiting at once' };
      try {
        writeSync(2, `${JSON.stringify(line)}\n`);
      } catch {
        // stderr closed: exit all the same
      }
      if (native.exitProcess) native.exitProcess(status);
      else process.kill(process.pid, 'SIGKILL');
    };
    for (const name of leaveOnSignals) {
      native.signalWatch(constants.signals[name], () => {
        if (leftOnSignal) {
          if (exitOnRepeatedSignal !== undefined) exitNow(name, exitOnRepeatedSignal);
          return;
        }
        leftOnSignal = true;
        takeover.close();
        filtered.info({ signal: name }, 'memberlist: leaving from the gossip thread on the signal');
        engine.leave(leaveTimeoutMs ?? 1000).catch((err: unknown) => filtered.warn({ err: err instanceof Error ? err.message : String(err) }, 'memberlist: leave on the signal failed'));
      });
    }
  } catch (err) {
    filtered.info({ err: err instanceof Error ? err.message : String(err) }, 'memberlist: the gossip thread cannot watch signals; the main thread leaves on SIGTERM');
  }
}

port.on('message', async (msg: Request | PlanMessage) => {
  if ('takeoverPlan' in msg) return takeover.setPlan(msg.takeoverPlan);
  if ('takeoverDrop' in msg) return takeover.drop(msg.takeoverDrop);
  const req = msg;
  try {
    let result: unknown;
    switch (req.op) {
      case 'start': await engine.start(); result = engine.port; break;
      case 'join': result = await engine.join(req.args[0] as string[]); break;
      case 'members': result = engine.members(); break;
      case 'localMember': result = engine.localMember(); break;
      case 'leave': await engine.leave(req.args[0] as number); break;
      case 'shutdown': takeover.close(); await engine.shutdown(); break;
      case 'counters': result = { ...engine.counters, ...engine.latency() }; break;
      case 'healthScore': result = engine.healthScore(); break;
    }
    port.postMessage({ id: req.id, result });
  } catch (err) {
    port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
  }
});
