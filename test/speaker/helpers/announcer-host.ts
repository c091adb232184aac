// Runs an Announcer inside a network namespace for tests and benchmarks. Options come as JSON in argv[2];
// commands arrive as JSON lines on stdin and each gets one JSON line on stdout: {"id", "ok", "result"|"error"}.
//   {"id", "op": "set", "name", "ip", "interfaces": [...] | "all"}   {"id", "op": "delete", "name"}
//   {"id", "op": "setMany", "ips": [...], "interfaces"}               (one service per address, same turn)
//   {"id", "op": "xdp"} (interfaces where XDP answers ARP)
//   {"id", "op": "rescan"} {"id", "op": "counters"} {"id", "op": "drops"} {"id", "op": "responders"}
//   {"id", "op": "interfacesFor", "ip", "interfaces"}                  {"id", "op": "close"}
//   {"id", "op": "latency"}   (with {"traceLatency": true}: where the answers' time went, see Announcer.latency)
// The announcer's JSON logs go to stderr.
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { createLogger, isLogLevel } from '../../../src/log.js';
import { Announcer, type InterfaceSelection } from '../../../src/speaker/l2/announcer.js';

interface Options {
  scanIntervalMs?: number;
  excludeConfigPath?: string;
  logLevel?: string;
  traceLatency?: boolean;
  xdp?: 'auto' | 'off';
}
const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const level = options.logLevel && isLogLevel(options.logLevel) ? options.logLevel : 'info';
const announcer = new Announcer({
  log: createLogger('layer2', level),
  scanIntervalMs: options.scanIntervalMs,
  excludeConfigPath: options.excludeConfigPath,
  traceLatency: options.traceLatency,
  xdp: options.xdp,
}).start();

type Command = { id: number; op: string; name?: string; ip?: string; ips?: string[]; interfaces?: InterfaceSelection };
const reply = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
reply({ event: 'ready', responders: announcer.responders() });

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as Command;
  try {
    let result: unknown;
    switch (cmd.op) {
      case 'set':
        announcer.setBalancer(cmd.name!, cmd.ip!, cmd.interfaces ?? 'all');
        break;
      case 'setMany': {
        const t0 = performance.now();
        for (const ip of cmd.ips!) announcer.setBalancer(`bench/${ip}`, ip, cmd.interfaces ?? 'all');
        const called = performance.now() - t0;
        // The gratuitous frames leave in a microtask after this turn; time until then.
        await Promise.resolve();
        result = { setBalancerMs: called, untilSentMs: performance.now() - t0 };
        break;
      }
      case 'delete':
        announcer.deleteBalancer(cmd.name!);
        break;
      case 'rescan':
        announcer.rescan();
        result = announcer.responders();
        break;
      case 'counters':
        result = Object.fromEntries(announcer.counters());
        break;
      case 'drops':
        result = announcer.drops;
        break;
      case 'latency':
        result = announcer.latency();
        break;
      case 'responders':
        result = announcer.responders();
        break;
      case 'xdp':
        result = announcer.xdpInterfaces();
        break;
      case 'interfacesFor':
        result = announcer.interfacesFor(cmd.ip!, cmd.interfaces ?? 'all');
        break;
      case 'close':
        announcer.close();
        reply({ id: cmd.id, ok: true });
        process.exit(0);
    }
    reply({ id: cmd.id, ok: true, result });
  } catch (err) {
    reply({ id: cmd.id, ok: false, error: (err as Error).message });
  }
}
announcer.close();
