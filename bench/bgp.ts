// BGP benchmark: 10,000 and 100,000 /32 routes advertised to a BIRD 2 receiver, by our speaker and, in the same
// run and the same namespaces, by GoBGP, FRR bgpd and BIRD as senders. Measured at the receiver: time from the
// session being Established until BIRD holds every route (BIRD's control socket polled back to back). For each
// sender: CPU used in that window and peak RSS. Our speaker runs bundled (plain node, as in the image).
// Run: `npm run bench -- bgp` (root). Sizes: BENCH_BGP_SIZES=10000,100000; senders: BENCH_BGP_SENDERS=metallb-ts,gobgp,frr,bird.
// Target: faster than the fastest daemon at both sizes, our RSS under 100 MB at 100,000 routes.
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BirdControl } from '../src/lab/routers/bird-control.js';
import { BIRD_SOCKET, birdProtocolName, parseBirdProtocolStats } from '../src/lab/routers/bird.js';
import { startRouter, type Router } from '../src/lab/routers/runner.js';
import type { RouterDaemon } from '../src/lab/routers/types.js';
import { createBgpNet, NodeDriver, type BgpNet } from '../test/helpers/bgp-netns.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
type Sender = 'metallb-ts' | RouterDaemon;
const SENDERS: Sender[] = (process.env['BENCH_BGP_SENDERS']?.split(',') as Sender[] | undefined) ?? ['metallb-ts', 'gobgp', 'frr', 'bird'];
const SIZES = process.env['BENCH_BGP_SIZES']?.split(',').map(Number) ?? [10_000, 100_000];
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

function peakRssMB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
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

async function bundleDriver(): Promise<string> {
  const esbuild = await import('esbuild');
  const dir = join(ROOT, '.tmp', 'bench');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, 'bgp-node-driver.mjs');
  await esbuild.build({
    entryPoints: [join(ROOT, 'test', 'helpers', 'bgp-node-driver.ts')],
    bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile, packages: 'external', logLevel: 'error',
  });
  return outfile;
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
      peakRssMB: pids().reduce((a, p) => a + peakRssMB(p), 0),
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

function version(sender: Sender): string {
  return { 'metallb-ts': 'metallb-ts', bird: 'BIRD 2', frr: 'FRR bgpd', gobgp: 'GoBGP' }[sender];
}

export async function runBgpBench(): Promise<void> {
  const driverScript = await bundleDriver();
  const net = createBgpNet({ nodes: 1, subnet: 90 });
  const results: Result[] = [];
  try {
    for (const n of SIZES) {
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
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await runBgpBench();
