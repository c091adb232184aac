// BGP benchmark: 10,000 and 100,000 /32 routes advertised to a BIRD 2 receiver, by our speaker and, in the same
// run and the same namespaces, by GoBGP, FRR bgpd and BIRD as senders. Measured at the receiver: time from the
// session being Established until BIRD holds every route (BIRD's control socket polled back to back). For each
// sender: CPU used in that window and peak RSS. Our speaker runs bundled (plain node, as in the image).
// Then (bgp-speaker.ts) the whole `metallb speaker` advertising the same numbers of routes, for its RSS.
// Run: `npm run bench -- bgp` (root). Sizes: BENCH_BGP_SIZES=10000,100000; senders: BENCH_BGP_SENDERS=metallb-ts,gobgp,frr,bird;
// parts: BENCH_BGP_PARTS=bfd,routes,speaker.
// Target: faster than the fastest daemon at both sizes, our RSS under 100 MB at 100,000 routes.
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BirdControl } from '../src/lab/routers/bird-control.js';
import { BIRD_SOCKET, birdProtocolName, parseBirdProtocolStats } from '../src/lab/routers/bird.js';
import { startRouter, type Router } from '../src/lab/routers/runner.js';
import type { RouterDaemon } from '../src/lab/routers/types.js';
import { createBgpNet, NodeDriver, type BgpNet } from '../test/helpers/bgp-netns.js';
import { wholeSpeakerFigures } from './bgp-speaker.js';
import { procMemMB } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
type Sender = 'metallb-ts' | RouterDaemon;
const SENDERS: Sender[] = (process.env['BENCH_BGP_SENDERS']?.split(',') as Sender[] | undefined) ?? ['metallb-ts', 'gobgp', 'frr', 'bird'];
const SIZES = process.env['BENCH_BGP_SIZES']?.split(',').map(Number) ?? [10_000, 100_000];
const PARTS = process.env['BENCH_BGP_PARTS']?.split(',') ?? ['routes', 'bfd', 'speaker'];
const SENDER_ASN = 64512;
const RECEIVER_ASN = 64500;

interface Result {
  sender: Sender;
  routes: number;
  seconds: number;
  cpuSeconds: number;
  peakRssMB: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU time of every thread of the process, in seconds (schedstat: ns on CPU; finer than /proc/PID/stat's ticks). */
function cpuSeconds(pid: number): number {
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // thread gone
      }
    }
  } catch {
    return NaN;
  }
  return ns / 1e9;
}

function prefixes(n: number): string[] {
  const out: string[] = [];
  const base = (10 << 24) | (100 << 16);
  for (let i = 0; i < n; i++) {
    const v = (base + i) >>> 0;
    out.push(`${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/32`);
  }
  return out;
}

/** The driver and the BFD worker as plain JavaScript, as the image runs them (no TypeScript loader in memory). */
async function bundleDriver(): Promise<{ script: string; bfdWorker: string }> {
  const esbuild = await import('esbuild');
  const dir = join(ROOT, '.tmp', 'bench');
  mkdirSync(dir, { recursive: true });
  const build = async (entry: string, out: string): Promise<string> => {
    const outfile = join(dir, out);
    await esbuild.build({ entryPoints: [join(ROOT, entry)], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile, packages: 'external', logLevel: 'error' });
    return outfile;
  };
  return {
    script: await build('test/helpers/bgp-node-driver.ts', 'bgp-node-driver.mjs'),
    bfdWorker: await build('src/speaker/bfd/worker.ts', 'bfd-worker.mjs'),
  };
}

/** Polls the receiver's protocol until Established, then until `n` routes are imported; times both on our clock. */
async function watchReceiver(ctl: BirdControl, n: number, timeoutMs: number): Promise<{ established: number; done: number }> {
  const cmd = `show protocols all ${birdProtocolName('sender')}`;
  const deadline = performance.now() + timeoutMs;
  let established = NaN;
  for (;;) {
    const r = await ctl.command(cmd);
    const now = performance.now();
    const st = parseBirdProtocolStats(r.text);
    if (Number.isNaN(established) && st.state === 'Established') established = now;
    if (!Number.isNaN(established) && st.imported >= n) return { established, done: now };
    if (now > deadline) throw new Error(`receiver: ${st.state}, ${st.imported}/${n} routes after ${timeoutMs} ms`);
  }
}

async function runOne(net: BgpNet, sender: Sender, n: number, driverScript: string): Promise<Result> {
  const node = net.nodes[0]!;
  const tag = `${sender}-${n}`;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const receiver = await startRouter('bird', {
      asn: RECEIVER_ASN, routerId: net.router.ipv4,
      neighbors: [{ name: 'sender', address: node.ipv4, asn: SENDER_ASN, families: ['ipv4'], disabled: true }],
    }, { netns: net.router.netns, dir: join(net.dir, `receiver-${tag}`) });
    cleanups.push(() => receiver.stop());
    let pids: () => number[];
    let startSession: () => Promise<void> = async () => undefined;
    let driver: NodeDriver | undefined;
    if (sender === 'metallb-ts') {
      const d = (driver = await NodeDriver.start(node.netns, 'bench', { script: driverScript, env: { BGP_DRIVER_LOG: 'warn' } }));
      cleanups.push(() => d.stop());
      const loaded = await d.request<number>('bulk', { peer: 'receiver', base: '10.100.0.0', count: n }, 120_000);
      if (loaded !== 0) throw new Error(`${loaded} advertisements refused`);
      pids = () => [d.pid!];
      startSession = async () => {
        await d.request('peers', { peers: [{ name: 'receiver', peerAddress: net.router.ipv4, myASN: SENDER_ASN, peerASN: RECEIVER_ASN, families: ['IPv4'] }] });
      };
    } else {
      const s: Router = await startRouter(sender, {
        asn: SENDER_ASN, routerId: node.ipv4, originate: prefixes(n), localAddress: node.ipv4,
        neighbors: [{ name: 'receiver', address: net.router.ipv4, asn: RECEIVER_ASN, passive: false, exportOriginated: true, families: ['ipv4'] }],
      }, { netns: node.netns, dir: join(net.dir, `sender-${tag}`), readyTimeoutMs: 300_000 });
      cleanups.push(() => s.stop());
      const deadline = Date.now() + 300_000;
      while ((await s.localRouteCount()) < n) {
        if (Date.now() > deadline) throw new Error(`${sender} did not load ${n} routes`);
        await sleep(200);
      }
      pids = () => s.pids();
    }
    const ctl = await BirdControl.connect(join(receiver.dir, BIRD_SOCKET));
    cleanups.push(async () => ctl.close());
    await receiver.enableNeighbor('sender');
    const watching = watchReceiver(ctl, n, 300_000);
    await startSession();
    // CPU is sampled when the receiver first reports Established, and again when it holds every route.
    let cpuAtEstablished = NaN;
    const sampler = (async () => {
      while (Number.isNaN(cpuAtEstablished)) {
        const r = await ctl.command(`show protocols ${birdProtocolName('sender')}`).catch(() => undefined);
        if (r && /Established/.test(r.text)) cpuAtEstablished = pids().reduce((a, p) => a + cpuSeconds(p), 0);
        else await sleep(0);
      }
    })();
    const t = await watching;
    if (driver) {
      const up = driver.events.find((e) => e.event === 'session' && e.state === 'Established');
      const sent = driver.events.find((e) => e.event === 'advertised' && Number(e.announced) >= n);
      if (up && sent) process.stderr.write(`    (${sender}: Established -> all ${n} written to the socket: ${(Number(sent.at) - Number(up.at)).toFixed(1)} ms on the speaker's clock)\n`);
    }
    const cpuAtDone = pids().reduce((a, p) => a + cpuSeconds(p), 0);
    await sampler;
    return {
      sender, routes: n, seconds: (t.done - t.established) / 1000,
      cpuSeconds: cpuAtDone - cpuAtEstablished,
      peakRssMB: pids().reduce((a, p) => a + procMemMB(p, 'VmHWM'), 0),
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

const BFD_PROFILE = { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoMode: false, passiveMode: false, minimumTtl: 254 };

/**
 * A node's cable is pulled (its switch port goes down): how long until the router (BIRD) has withdrawn the node's
 * route, with BFD 300 ms × 3 and with the BGP hold timer alone (hold 9 s here; MetalLB's default is 90 s). Then
 * a false-down check: the node's main thread is blocked for 3 s, with BFD in the worker thread and inline.
 */
async function runBfdBench(net: BgpNet, bundle: { script: string; bfdWorker: string }): Promise<void> {
  const node = net.nodes[0]!;
  const runs = Number(process.env['BENCH_BFD_RUNS'] ?? 5);
  process.stdout.write(`\nnode link cut: time until the router (BIRD 2) has withdrawn the node's route (${runs} runs each)\n`);
  const measure = async (withBfd: boolean, holdTime: number, tag: string): Promise<number[]> => {
    const router = await startRouter('bird', {
      asn: RECEIVER_ASN, routerId: net.router.ipv4, bfd: { transmitIntervalMs: 300, receiveIntervalMs: 300, detectMultiplier: 3 },
      neighbors: [{ name: 'node', address: node.ipv4, asn: SENDER_ASN, bfd: withBfd, families: ['ipv4'] }],
    }, { netns: net.router.netns, dir: join(net.dir, `bfd-router-${tag}`) });
    const d = await NodeDriver.start(node.netns, 'bench', { script: bundle.script, env: { BGP_DRIVER_LOG: 'warn', BFD_WORKER_URL: pathToFileURL(bundle.bfdWorker).href } });
    const ctl = await BirdControl.connect(join(router.dir, BIRD_SOCKET));
    const times: number[] = [];
    try {
      await d.request('peers', { peers: [{ name: 'r', peerAddress: net.router.ipv4, myASN: SENDER_ASN, peerASN: RECEIVER_ASN, holdTime, families: ['IPv4'], ...(withBfd ? { bfd: BFD_PROFILE } : {}) }] });
      await d.request('ads', { peer: 'r', ads: [{ prefix: '10.100.255.1/32' }] });
      const routed = async (): Promise<boolean> => /10\.100\.255\.1\/32/.test((await ctl.command('show route 10.100.255.1/32')).text);
      const bfdUp = async (): Promise<boolean> => /\sUp\s/.test((await ctl.command('show bfd sessions')).text);
      for (let i = 0; i < runs; i++) {
        const deadline = Date.now() + 120_000;
        while (!(await routed()) || (withBfd && !(await bfdUp()))) {
          if (Date.now() > deadline) throw new Error('the route did not come (back)');
          await sleep(50);
        }
        await sleep(1000);
        const t0 = performance.now();
        net.cutNode(0);
        while (await routed()) {
          if (performance.now() - t0 > 120_000) throw new Error('the route was never withdrawn');
          await sleep(2);
        }
        times.push((performance.now() - t0) / 1000);
        net.restoreNode(0);
      }
    } finally {
      net.restoreNode(0);
      ctl.close();
      await d.stop();
      await router.stop();
    }
    return times;
  };
  const show = (label: string, t: number[]): void => {
    const sorted = [...t].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    process.stdout.write(`  ${label.padEnd(34)} median ${median.toFixed(3)} s  (min ${sorted[0]!.toFixed(3)}, max ${sorted.at(-1)!.toFixed(3)})\n`);
  };
  const bfd = await measure(true, 90, 'bfd');
  show('BFD 300 ms x 3 (hold 90 s)', bfd);
  const hold = await measure(false, 9, 'hold');
  show('hold timer only (hold 9 s)', hold);
  const bfdMedian = [...bfd].sort((a, b) => a - b)[Math.floor(bfd.length / 2)]!;
  process.stdout.write(`  BFD vs hold 9 s: ${(([...hold].sort((a, b) => a - b)[Math.floor(hold.length / 2)]!) / bfdMedian).toFixed(1)}x faster; vs MetalLB's default hold 90 s: ~${(90 / bfdMedian).toFixed(0)}x (target < 1 s: ${bfdMedian < 1 ? 'met' : 'NOT met'})\n`);

  // A blocked main thread must not look like a dead node.
  for (const mode of ['worker', 'inline'] as const) {
    const router = await startRouter('bird', {
      asn: RECEIVER_ASN, routerId: net.router.ipv4, bfd: { transmitIntervalMs: 300, receiveIntervalMs: 300, detectMultiplier: 3 },
      neighbors: [{ name: 'node', address: node.ipv4, asn: SENDER_ASN, bfd: true, families: ['ipv4'] }],
    }, { netns: net.router.netns, dir: join(net.dir, `bfd-block-${mode}`) });
    const d = await NodeDriver.start(node.netns, 'bench', { script: bundle.script, env: { BGP_DRIVER_LOG: 'warn', BFD_MODE: mode, BFD_WORKER_URL: pathToFileURL(bundle.bfdWorker).href } });
    const ctl = await BirdControl.connect(join(router.dir, BIRD_SOCKET));
    try {
      await d.request('peers', { peers: [{ name: 'r', peerAddress: net.router.ipv4, myASN: SENDER_ASN, peerASN: RECEIVER_ASN, families: ['IPv4'], bfd: BFD_PROFILE }] });
      await d.waitEvent((e) => e.event === 'bfd' && e.state === 'Up', 60_000);
      await sleep(1000);
      const mark = d.events.length;
      await d.request('block', { ms: 3000 }, 30_000);
      await sleep(1500);
      const downs = d.events.slice(mark).filter((e) => e.event === 'bfd' && e.state === 'Down').length;
      const birdLog = (await ctl.command('show bfd sessions')).text;
      process.stdout.write(`  main thread blocked 3 s, BFD ${mode.padEnd(6)}: ${downs} false BFD down(s) on the node${downs ? '' : ''}; router's session now ${/\sUp\s/.test(birdLog) ? 'Up' : 'not Up'}\n`);
    } finally {
      ctl.close();
      await d.stop();
      await router.stop();
    }
  }
}

function version(sender: Sender): string {
  return { 'metallb-ts': 'metallb-ts', bird: 'BIRD 2', frr: 'FRR bgpd', gobgp: 'GoBGP' }[sender];
}

export async function runBgpBench(): Promise<void> {
  const bundle = await bundleDriver();
  const driverScript = bundle.script;
  const net = createBgpNet({ nodes: 1, subnet: 90 });
  const results: Result[] = [];
  try {
    if (PARTS.includes('bfd')) await runBfdBench(net, bundle);
    for (const n of PARTS.includes('routes') ? SIZES : []) {
      process.stdout.write(`\n${n.toLocaleString('en')} /32 routes to a BIRD 2 receiver (time from Established until BIRD holds them all)\n`);
      process.stdout.write(`  ${'sender'.padEnd(12)} ${'time'.padStart(9)} ${'CPU'.padStart(9)} ${'peak RSS'.padStart(10)}\n`);
      for (const sender of SENDERS) {
        const r = await runOne(net, sender, n, driverScript);
        results.push(r);
        process.stdout.write(`  ${version(sender).padEnd(12)} ${`${r.seconds.toFixed(3)} s`.padStart(9)} ${`${r.cpuSeconds.toFixed(3)} s`.padStart(9)} ${`${r.peakRssMB.toFixed(0)} MB`.padStart(10)}\n`);
      }
      const ours = results.find((r) => r.routes === n && r.sender === 'metallb-ts');
      const others = results.filter((r) => r.routes === n && r.sender !== 'metallb-ts').sort((a, b) => a.seconds - b.seconds);
      if (ours && others[0]) {
        const best = others[0];
        const verdict = ours.seconds < best.seconds ? 'faster' : 'NOT faster';
        process.stdout.write(`  metallb-ts vs the fastest daemon (${version(best.sender)}): ${(best.seconds / ours.seconds).toFixed(2)}x (${verdict}); ` +
          `vs each: ${others.map((o) => `${version(o.sender)} ${(o.seconds / ours.seconds).toFixed(1)}x`).join(', ')}\n`);
        if (n >= 100_000) process.stdout.write(`  metallb-ts peak RSS ${ours.peakRssMB.toFixed(0)} MB (target < 100 MB)\n`);
      }
    }
  } finally {
    net.destroy();
  }
  if (PARTS.includes('speaker')) {
    const engine = new Map(results.filter((r) => r.sender === 'metallb-ts').map((r) => [r.routes, r.peakRssMB]));
    await wholeSpeakerFigures(SIZES, engine);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await runBgpBench();
