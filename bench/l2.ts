// Layer 2 announcer benchmark, on a veth LAN between two network namespaces (root needed):
// 1. ARP reply latency measured by arping on the client: our announcer answering for a service address against
//    the kernel answering for the node's own address, interleaved in rounds; median and p99 of each, the ratio.
//    Target: ratio <= 10.
// 2. Takeover of 1,000 addresses at once (1,000 setBalancer calls in one turn, as the speaker does when a node
//    takes over): time until the gratuitous frames (2 per address) are handed to the kernel, and the spread of
//    their arrival in a capture on the client. Target: a few ms.
// 3. The latency again with the announcer at a real-time priority, to separate scheduling delay (a loaded
//    machine) from the work of answering.
// Run: `npm run bench -- l2` or `node --import tsx bench/l2.ts [requests]`.
import { once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isRoot, JsonLines, Netns, run } from '../test/helpers/netns.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOST = join(ROOT, 'test', 'speaker', 'helpers', 'announcer-host.ts');

type Reply = { id?: number; ok?: boolean; result?: unknown; error?: string; event?: string };

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

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
    lab.ip(node, 'addr', 'add', '10.93.20.1/24', 'dev', nif);
    lab.ip(client, 'addr', 'add', '10.93.20.100/24', 'dev', cif);
    lab.ip(node, 'link', 'set', nif, 'up');
    lab.ip(client, 'link', 'set', cif, 'up');

    const startHost = async (prefix: string[]) => {
      const [cmd, ...args] = [...prefix, process.execPath, '--import', 'tsx', HOST, JSON.stringify({ logLevel: 'warn' })];
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
    const perRound = Math.ceil(requests / 10);
    const row = (name: string, t: number[]) =>
      `  ${name.padEnd(34)} ${String(t.length).padStart(5)}/${perRound * 10}  median ${quantile(t, 0.5).toFixed(1).padStart(7)} µs  p99 ${quantile(t, 0.99).toFixed(1).padStart(8)} µs\n`;
    /** Our announcer and the kernel, alternating in 10 rounds so that load changes hit both alike. */
    const latency = async (call: Awaited<ReturnType<typeof startHost>>) => {
      await call('set', { name: 'bench/vip', ip: '10.93.20.200', interfaces: 'all' });
      await new Promise((r) => setTimeout(r, 5500)); // past the gratuitous window
      arpingTimes(client, cif, '10.93.20.200', 50); // warm-up
      arpingTimes(client, cif, '10.93.20.1', 50);
      const ours: number[] = [];
      const kernel: number[] = [];
      for (let r = 0; r < 10; r++) {
        ours.push(...arpingTimes(client, cif, '10.93.20.200', perRound));
        kernel.push(...arpingTimes(client, cif, '10.93.20.1', perRound));
      }
      return { ours: ours.sort((a, b) => a - b), kernel: kernel.sort((a, b) => a - b) };
    };
    const ratioLine = (ours: number[], kernel: number[]) => {
      const ratio = quantile(ours, 0.5) / quantile(kernel, 0.5);
      return `  ratio (median) ${ratio.toFixed(1)}x, (p99) ${(quantile(ours, 0.99) / quantile(kernel, 0.99)).toFixed(1)}x — target <= 10x: ${ratio <= 10 ? 'met' : 'NOT met'}\n`;
    };

    // 1. Latency, with the announcer scheduled like any process (as MetalLB's manifests run the speaker).
    let call = await startHost([]);
    const normal = await latency(call);
    process.stdout.write(`ARP reply latency (arping from the client namespace; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs):\n`);
    process.stdout.write(row('metallb-ts announcer', normal.ours));
    process.stdout.write(row('kernel (node address)', normal.kernel));
    process.stdout.write(ratioLine(normal.ours, normal.kernel));

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
      if (label === 'first') process.stdout.write(`Takeover of ${ips.length} addresses (1,000 setBalancer calls in one turn, 2 gratuitous ARP frames each):\n`);
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
      const rt = await latency(call);
      process.stdout.write('ARP reply latency with the announcer under SCHED_FIFO (chrt -f 20):\n');
      process.stdout.write(row('metallb-ts announcer (SCHED_FIFO)', rt.ours));
      process.stdout.write(row('kernel (node address)', rt.kernel));
      process.stdout.write(ratioLine(rt.ours, rt.kernel));
      await call('close').catch(() => undefined);
    }
  } finally {
    await lab.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runL2Bench(process.argv[2] ? Number(process.argv[2]) : undefined);
}
