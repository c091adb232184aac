// Layer 2 announcer benchmark, on a veth LAN between two network namespaces (root needed):
// 1. Reply latency: our announcer answering for a service address against the kernel answering for the node's own
//    address, interleaved in rounds so that load changes hit both alike; median and p95 of each, and the ratio
//    (target: <= 10x). ARP as `arping` on the client times it, and both ARP and NDP (`ndisc6`, which prints no
//    times) timed on the client's wire by a capture there (request sent -> reply received, kernel timestamps, so
//    the requesting tool's own wake-up is left out). Beside them, the announcer's own trace of its answers (kernel
//    receive -> frame read by the process -> reply sent), which splits waiting to run from the work of answering.
// 2. Takeover of 1,000 addresses at once (1,000 setBalancer calls in one turn, as the speaker does when a node
//    takes over): time until the gratuitous frames (2 per address) are handed to the kernel, and the spread of
//    their arrival in a capture on the client. Target: a few ms.
// 3. The latency again with the announcer at a real-time priority (SCHED_FIFO), to separate scheduling delay from
//    the work of answering.
// 0. First of all, the latency with ARP answered in the kernel by the announcer's XDP program (--l2-xdp auto, the
//    speaker's default where it has CAP_BPF and CAP_NET_ADMIN); the other sections force it off (userspace path).
// Every section prints `uptime` beside it: on a shared machine the figures mean little without the load.
// Run: `npm run bench -- l2` or `node --import tsx bench/l2.ts [requests]` (BENCH_L2_REQUESTS, default 1000 of
// each kind).
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LatencySamples } from '../src/net/latency-trace.js';
import { isRoot, JsonLines, Netns, run } from '../test/helpers/netns.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOST = join(ROOT, 'test', 'speaker', 'helpers', 'announcer-host.ts');

const NODE_V4 = '10.93.20.1';
const CLIENT_V4 = '10.93.20.100';
const SERVICE_V4 = '10.93.20.200';
/** Nobody's: the frame that ends a capture. */
const MARKER_V4 = '10.93.20.254';
const NODE_V6 = 'fd00:93:20::1';
const CLIENT_V6 = 'fd00:93:20::100';
const SERVICE_V6 = 'fd00:93:20::200';

type Reply = { id?: number; ok?: boolean; result?: unknown; error?: string; event?: string };
type Call = <T>(op: string, args?: Record<string, unknown>) => Promise<T>;

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);
const uptime = (): string => run('uptime', []).trim();

/** Reply times in microseconds, as arping prints them ("time=12.345 usec" / "time=1.234 msec"). */
function arpingTimes(ns: string, ifname: string, ip: string, count: number): number[] {
  const out = run('ip', ['netns', 'exec', ns, 'arping', '-c', String(count), '-W', '0.002', '-I', ifname, ip], { allowFail: true });
  const times: number[] = [];
  for (const m of out.matchAll(/time=([\d.]+) (usec|msec|sec)/g)) {
    const v = Number(m[1]);
    times.push(m[2] === 'usec' ? v : m[2] === 'msec' ? v * 1000 : v * 1e6);
  }
  return times;
}

/** `count` solicitations by ndisc6, one process each (it answers nothing about time; the capture times them). */
function ndisc6(ns: string, ifname: string, ip: string, count: number): void {
  run('ip', ['netns', 'exec', ns, 'sh', '-c', `i=0; while [ $i -lt ${count} ]; do ndisc6 -q -n -r 1 -w 100 ${ip} ${ifname} >/dev/null; i=$((i+1)); done`], {
    allowFail: true,
  });
}

/**
 * A tcpdump on the client's interface (nanosecond kernel timestamps), writing to a file: the rounds run
 * synchronously, and a tcpdump writing to a pipe nobody reads meanwhile stops reading its ring and loses frames.
 * stop() sends `marker()` (a frame the filter keeps) until the file holds it, so that every frame before it is in.
 */
async function capture(lab: Netns, ns: string, ifname: string, filter: string): Promise<{ stop(marker: () => void, seen: RegExp): Promise<string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tl2-bench-'));
  const file = join(dir, 'client.pcap');
  const dump = lab.spawn(ns, 'tcpdump', ['-i', ifname, '-n', '-U', '-B', '16384', '--time-stamp-precision=nano', '-w', file, filter]);
  let err = '';
  dump.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  for (let i = 0; !err.includes('listening on'); i++) {
    if (i > 400 || dump.exitCode !== null) throw new Error(`tcpdump did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const read = () => run('tcpdump', ['-r', file, '-n', '-tt', '--time-stamp-precision=nano'], { allowFail: true });
  return {
    async stop(marker, seen) {
      try {
        for (let i = 0; i < 50 && !seen.test(read()); i++) {
          if (i % 10 === 0) marker();
          await new Promise((r) => setTimeout(r, 200));
        }
        const exited = once(dump, 'exit');
        dump.kill('SIGINT');
        await exited;
        const dropped = /(\d+) packets? dropped by kernel/.exec(err);
        if (dropped && dropped[1] !== '0') process.stdout.write(`  (the client's capture lost ${dropped[1]} frames)\n`);
        return read();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Request -> reply times (µs) on the client's wire, per target address: an ARP request or neighbour solicitation
 * for the target, then the first reply / advertisement for it (tcpdump's -n -tt text). A request repeated before
 * its answer came (an answer slower than the requester's interval) makes that answer ambiguous: it is left out.
 */
function wireTimes(text: string): Map<string, number[]> {
  const asked = new Map<string, number>();
  const out = new Map<string, number[]>();
  const answered = (target: string, t: number) => {
    const t0 = asked.get(target);
    if (t0 === undefined) return;
    asked.delete(target);
    if (Number.isNaN(t0)) return; // asked again before the answer came: which request it answers is unknown
    const list = out.get(target) ?? [];
    list.push((t - t0) * 1e6);
    out.set(target, list);
  };
  for (const line of text.split('\n')) {
    const t = Number(line.split(' ', 1)[0]);
    let m: RegExpMatchArray | null;
    if ((m = / ARP, Request who-has (\S+) tell /.exec(line)) || (m = / neighbor solicitation, who has ([0-9a-f:]+)/.exec(line))) {
      asked.set(m[1]!, asked.has(m[1]!) ? NaN : t);
    } else if ((m = / ARP, Reply (\S+) is-at /.exec(line)) || (m = / neighbor advertisement, tgt is ([0-9a-f:]+)/.exec(line))) {
      answered(m[1]!, t);
    }
  }
  return out;
}

interface Figures {
  arping: { ours: number[]; kernel: number[] };
  wireArp: { ours: number[]; kernel: number[] };
  wireNdp: { ours: number[]; kernel: number[] };
  inside: { arp: LatencySamples; ndp: LatencySamples };
  uptimeBefore: string;
  uptimeAfter: string;
}

export async function runL2Bench(requests = Number(process.env['BENCH_L2_REQUESTS'] ?? 1000)): Promise<void> {
  if (!isRoot()) {
    process.stdout.write('l2: skipped (needs root: network namespaces and raw sockets)\n');
    return;
  }
  const lab = new Netns('tl2-b');
  try {
    const node = lab.addNamespace('n');
    const client = lab.addNamespace('c');
    const nif = lab.name('na');
    const cif = lab.name('ca');
    lab.veth({ ns: node, name: nif, mac: '02:93:20:00:00:01' }, { ns: client, name: cif, mac: '02:93:20:00:00:64' });
    lab.ip(node, 'addr', 'add', `${NODE_V4}/24`, 'dev', nif);
    lab.ip(client, 'addr', 'add', `${CLIENT_V4}/24`, 'dev', cif);
    lab.ip(node, 'addr', 'add', `${NODE_V6}/64`, 'dev', nif, 'nodad');
    lab.ip(client, 'addr', 'add', `${CLIENT_V6}/64`, 'dev', cif, 'nodad');
    lab.ip(node, 'link', 'set', nif, 'up');
    lab.ip(client, 'link', 'set', cif, 'up');

    const startHost = async (prefix: string[], xdp: 'auto' | 'off' = 'off'): Promise<Call> => {
      const [cmd, ...args] = [...prefix, process.execPath, '--import', 'tsx', HOST, JSON.stringify({ logLevel: 'warn', traceLatency: true, xdp })];
      const lines = new JsonLines<Reply>(lab.spawn(node, cmd!, args));
      await lines.next((l) => l.event === 'ready');
      let id = 0;
      return async <T>(op: string, args: Record<string, unknown> = {}): Promise<T> => {
        const my = ++id;
        lines.send({ id: my, op, ...args });
        const r = await lines.next((l) => l.id === my, 60_000);
        if (!r.ok) throw new Error(`${op}: ${r.error}`);
        return r.result as T;
      };
    };
    const rounds = 10;
    const perRound = Math.ceil(requests / rounds);

    /** Our announcer and the kernel, alternating in rounds, ARP (arping) then NDP (ndisc6) in each. */
    const latency = async (call: Call): Promise<Figures> => {
      await call('set', { name: 'bench/vip4', ip: SERVICE_V4, interfaces: 'all' });
      await call('set', { name: 'bench/vip6', ip: SERVICE_V6, interfaces: 'all' });
      await new Promise((r) => setTimeout(r, 5500)); // past the gratuitous window
      arpingTimes(client, cif, SERVICE_V4, 50); // warm-up (V8 compiles the answering path)
      arpingTimes(client, cif, NODE_V4, 50);
      ndisc6(client, cif, SERVICE_V6, 20);
      await call('latency'); // drop the warm-up's trace
      const uptimeBefore = uptime();
      const dump = await capture(lab, client, cif, 'arp or (icmp6 and (ip6[40] == 135 or ip6[40] == 136))');
      const arping = { ours: [] as number[], kernel: [] as number[] };
      for (let r = 0; r < rounds; r++) {
        arping.ours.push(...arpingTimes(client, cif, SERVICE_V4, perRound));
        arping.kernel.push(...arpingTimes(client, cif, NODE_V4, perRound));
        ndisc6(client, cif, SERVICE_V6, perRound);
        ndisc6(client, cif, NODE_V6, perRound);
      }
      const uptimeAfter = uptime();
      const marker = () => void arpingTimes(client, cif, MARKER_V4, 1);
      const wire = wireTimes(await dump.stop(marker, / who-has 10\.93\.20\.254 /));
      const inside = await call<{ arp: LatencySamples; ndp: LatencySamples }>('latency');
      const pick = (ip: string) => sorted(wire.get(ip) ?? []);
      return {
        arping: { ours: sorted(arping.ours), kernel: sorted(arping.kernel) },
        wireArp: { ours: pick(SERVICE_V4), kernel: pick(NODE_V4) },
        wireNdp: { ours: pick(SERVICE_V6), kernel: pick(NODE_V6) },
        inside,
        uptimeBefore,
        uptimeAfter,
      };
    };

    const fmt = (v: number) => `${v.toFixed(1).padStart(7)} µs`;
    const row = (name: string, t: readonly number[], of?: number) =>
      `    ${name.padEnd(30)} ${of === undefined ? ''.padStart(10) : `${String(t.length).padStart(5)}/${String(of).padEnd(4)}`}  median ${fmt(quantile(t, 0.5))}  p95 ${fmt(quantile(t, 0.95))}\n`;
    const ratio = (ours: readonly number[], kernel: readonly number[]) => {
      const med = quantile(ours, 0.5) / quantile(kernel, 0.5);
      const p95 = quantile(ours, 0.95) / quantile(kernel, 0.95);
      return `    ${'ratio'.padEnd(30)} ${''.padStart(10)}  median ${med.toFixed(1).padStart(7)}x    p95 ${p95.toFixed(1).padStart(7)}x   (target <= 10x: ${med <= 10 ? 'met' : 'NOT met'})\n`;
    };
    const diff = (a: readonly number[], b: readonly number[]) => sorted(a.map((v, i) => v - b[i]!));
    const inside = (kind: string, t: LatencySamples) => t.readUs.length === 0 ? [`    ${kind}: none (answered in the kernel)\n`] : [
      row(`${kind}: read by the process`, sorted(t.readUs)),
      row(`${kind}: reply handed to send()`, sorted(t.sendUs)),
      row(`${kind}: send() returned`, sorted(t.sentUs)),
      row(`${kind}:   read -> send() (JS)`, diff(t.sendUs, t.readUs)),
      row(`${kind}:   in send()`, diff(t.sentUs, t.sendUs)),
    ];
    const report = (title: string, f: Figures, ours = 'metallb-ts') => {
      const n = perRound * rounds;
      const out = [
        `${title}\n`,
        `  before: ${f.uptimeBefore}\n  after:  ${f.uptimeAfter}\n`,
        '  ARP, timed by arping on the client:\n',
        row(ours, f.arping.ours, n),
        row('kernel (node address)', f.arping.kernel, n),
        ratio(f.arping.ours, f.arping.kernel),
        "  ARP, on the client's wire (request sent -> reply received):\n",
        row(ours, f.wireArp.ours, n),
        row('kernel (node address)', f.wireArp.kernel, n),
        ratio(f.wireArp.ours, f.wireArp.kernel),
        "  NDP (ndisc6), on the client's wire (solicitation sent -> advertisement received):\n",
        row(ours, f.wireNdp.ours, n),
        row('kernel (node address)', f.wireNdp.kernel, n),
        ratio(f.wireNdp.ours, f.wireNdp.kernel),
        '  inside the announcer, from the kernel\'s receive timestamp of the request:\n',
        ...inside('ARP', f.inside.arp),
        ...inside('NDP', f.inside.ndp),
      ];
      process.stdout.write(out.join(''));
    };

    // 0. ARP and NDP answered by XDP.
    let call = await startHost([], 'auto');
    await call('set', { name: 'bench/vip4', ip: SERVICE_V4, interfaces: 'all' });
    const attached = await call<{ name: string; mode: string }[]>('xdp');
    if (attached.length === 0) process.stdout.write(`Reply latency with XDP: skipped (XDP could not be attached: see the announcer's log)\n`);
    else report(`Reply latency, ARP and NDP answered in the kernel by XDP (${attached.map((a) => `${a.name}: ${a.mode} mode`).join(', ')}):`, await latency(call), 'metallb-ts (XDP)');
    await call('close').catch(() => undefined);

    // 1. Latency, with the announcer scheduled like any process (as MetalLB's manifests run the speaker).
    call = await startHost([]);
    report('Reply latency, userspace path (--l2-xdp off), announcer at normal priority (as MetalLB\'s manifests run the speaker):', await latency(call));

    // 2. Takeover of 1,000 addresses, then of 1,000 more (the first pays for V8's compilation of the path).
    for (const [label, base] of [['first', 21], ['second', 25]] as const) {
      const ips = Array.from({ length: 1000 }, (_, i) => `10.93.${base + (i >> 8)}.${i & 255}`);
      const dump = lab.spawn(client, 'tcpdump', ['-i', cif, '-n', '-tt', '-l', '-c', '1000', 'arp and arp[6:2] == 2 and arp[14:4] == arp[24:4]']);
      let text = '';
      dump.stdout!.on('data', (c: Buffer) => (text += c.toString()));
      dump.stderr!.on('data', (c: Buffer) => (text += c.toString()));
      while (!text.includes('listening on')) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      const t = await call<{ setBalancerMs: number; untilSentMs: number }>('setMany', { ips, interfaces: 'all' });
      const exited = await Promise.race([once(dump, 'exit').then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
      if (!exited) dump.kill('SIGINT');
      const stamps = text
        .split('\n')
        .filter((l) => / Reply 10\.93\.\d+\.\d+ is-at /.test(l))
        .map((l) => Number(l.split(' ')[0]));
      if (label === 'first') process.stdout.write(`Takeover of ${ips.length} addresses (1,000 setBalancer calls in one turn, 2 gratuitous ARP frames each; ${uptime()}):\n`);
      process.stdout.write(
        `  ${label}: calls ${t.setBalancerMs.toFixed(1)} ms; all ${2 * ips.length} frames handed to the kernel ${t.untilSentMs.toFixed(1)} ms after the first call; ` +
          `client saw ${stamps.length}/${ips.length} replies within ${stamps.length ? ((stamps.at(-1)! - stamps[0]!) * 1000).toFixed(1) : 'n/a'} ms\n`,
      );
    }
    await call('close').catch(() => undefined);

    // 3. The same latency with the announcer at a real-time priority (needs CAP_SYS_NICE, which MetalLB's
    //    manifests do not grant): what is left when the scheduler does not make it wait behind other work.
    if (run('sh', ['-c', 'command -v chrt'], { allowFail: true }).trim()) {
      call = await startHost(['chrt', '-f', '20']);
      report('Reply latency, announcer under SCHED_FIFO (chrt -f 20):', await latency(call));
      await call('close').catch(() => undefined);
    }
  } finally {
    await lab.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runL2Bench(process.argv[2] ? Number(process.argv[2]) : undefined);
}
