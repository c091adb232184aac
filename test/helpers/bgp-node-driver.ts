// Runs our BGP speaker (and BFD) inside a node's network namespace for the namespace tests: JSON commands on
// stdin, replies and session events on stdout, the speaker's JSON logs on stderr.
//   ip netns exec NS node --import tsx test/helpers/bgp-node-driver.ts NODE_NAME
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createLogger } from '../../src/log.js';
import type { Advertisement } from '../../src/speaker/bgp/rib.js';
import type { PeerConfig } from '../../src/speaker/bgp/session.js';
import { BgpSpeaker } from '../../src/speaker/bgp/speaker.js';
import { tuneSpeakerHeap } from '../../src/speaker/heap.js';
import { kernelVrfs, type VrfResolver } from '../../src/net/vrf.js';

// As `metallb speaker` does at startup, so that the benchmark measures the speaker's memory as it runs.
tuneSpeakerHeap();

const nodeName = process.argv[2] ?? 'node';
const logger = createLogger('bgp', (process.env['BGP_DRIVER_LOG'] as 'debug' | undefined) ?? 'info');
const workerUrl = process.env['BFD_WORKER_URL'];
// BGP_DRIVER_VRF_STANDINS=red=eth1: the VRF "red" is the plain interface eth1 (for kernels without VRF support: the
// sockets are bound to eth1 as they would be to a VRF master device). Other names: the kernel's VRFs.
const standins = new Map((process.env['BGP_DRIVER_VRF_STANDINS'] ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
const kernel = kernelVrfs();
const vrfs: VrfResolver = (name) => {
  const device = standins.get(name);
  return device ? { name, device, interfaces: [device] } : kernel(name);
};
const speaker = new BgpSpeaker({
  nodeName, logger, vrfs,
  // As `metallb speaker` does until every Service is decided: End-of-RIB waits for the `ribComplete` command.
  holdEndOfRib: process.env['BGP_DRIVER_HOLD_EOR'] === '1',
  bfd: {
    logLevel: (process.env['BGP_DRIVER_LOG'] as 'debug' | undefined) ?? 'info',
    mode: process.env['BFD_MODE'] === 'inline' ? 'inline' : 'worker',
    ...(workerUrl ? { workerUrl: new URL(workerUrl) } : {}),
  },
});

const emit = (obj: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(obj)}\n`);

speaker.on('session', (peer, state, previous, reason) => emit({ event: 'session', peer, state, previous, reason, at: performance.now() }));
speaker.on('advertised', (peer, announced) => emit({ event: 'advertised', peer, announced, at: performance.now() }));
speaker.on('bfd', (peer, state, remoteState) => emit({ event: 'bfd', peer, state, remoteState, at: performance.now() }));

type Handler = (args: Record<string, unknown>) => unknown;
const handlers: Record<string, Handler> = {
  ping: () => ({ pid: process.pid }),
  peers: (a) => speaker.setPeers(a['peers'] as PeerConfig[]),
  ads: (a) => speaker.setAdvertisements(a['peer'] as string, a['ads'] as Advertisement[]),
  /** Many /32s in one go, generated here so the command stays small: `count` from `base` (an IPv4 address). */
  bulk: (a) => {
    const [b0, b1, b2, b3] = (a['base'] as string).split('.').map(Number) as [number, number, number, number];
    const start = ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0;
    const count = a['count'] as number;
    // Generated as they are consumed: the speaker takes any iterable, so no array of 100,000 objects is needed.
    function* ads(): Generator<Advertisement> {
      for (let i = 0; i < count; i++) {
        const v = (start + i) >>> 0;
        yield { prefix: `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/32` };
      }
    }
    return speaker.setAdvertisements(a['peer'] as string, ads()).length;
  },
  status: () => speaker.status(),
  ribComplete: () => speaker.setRibComplete(),
  // Loaded on first use: the benchmark measures this process's memory, and the speaker's metrics are not its subject.
  metrics: async () => {
    const [{ Registry }, { registerBgpMetrics }] = await Promise.all([import('prom-client'), import('../../src/speaker/bgp/metrics.js')]);
    const registry = new Registry();
    registerBgpMetrics(registry, speaker);
    return registry.metrics();
  },
  bfdStatus: () => speaker.bfdStatus(),
  /** Keeps the main thread busy (a synchronous loop) for `ms`: what a huge config or a GC pause does. */
  block: (a) => {
    const end = performance.now() + (a['ms'] as number);
    while (performance.now() < end) {
      // busy
    }
    return null;
  },
  bfd: (a) => speaker.setBfdState(a['peer'] as string, a['up'] as boolean),
  memory: () => ({ ...process.memoryUsage(), hwm: Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024 }),
  close: async () => {
    await speaker.close();
    setImmediate(() => process.exit(0));
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  let msg: { id: number; op: string } & Record<string, unknown>;
  try {
    msg = JSON.parse(line) as typeof msg;
  } catch {
    return;
  }
  const h = handlers[msg.op];
  if (!h) {
    emit({ id: msg.id, ok: false, error: `unknown op ${msg.op}` });
    return;
  }
  Promise.resolve()
    .then(() => h(msg))
    .then((result) => emit({ id: msg.id, ok: true, result: result ?? null }))
    .catch((err: Error) => emit({ id: msg.id, ok: false, error: err.stack ?? err.message }));
});

process.stdin.on('end', () => void speaker.close().then(() => process.exit(0)));
