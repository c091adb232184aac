// `npm run bench -- failover [--trials N] [--many N] [--skip-keepalived]` (as root): how long a client's requests to a
// Service address fail when the node announcing it dies, end to end: three `metallb speaker` processes (memberlist on,
// our default timing) in node namespaces on a bridge (tsp-, 10.97.110.0/24), the dev API server on the bridge, a
// client namespace sending an HTTP request every 10 ms to a server on each node. Measured from the moment the owner's
// cable is cut (its veth's host end down: no goodbye) or its speaker gets SIGTERM (memberlist leave) to the first
// answer through the new owner; with 1 address and with `--many` (1,000) addresses on the dying node. keepalived
// (VRRPv3, advert_int 0.01 and 1) fails one address over in the same LAN, in the same run, for comparison.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../src/k8s/client.js';
import { electionOrder } from '../src/speaker/l2/election.js';
import { NS, poolYaml, startEnv, type Env } from '../test/controller/helpers.js';
import { isRoot, run } from '../test/helpers/netns.js';
import { TestLan, type LanMachine } from '../test/speaker/lan.js';
import { metric, startSpeaker, type SpeakerHandle } from '../test/speaker/process.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : dflt;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const out = (s: string): void => void process.stdout.write(`${s}\n`);

function stats(xs: number[]): string {
  if (xs.length === 0) return 'no samples';
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return `median ${q(0.5).toFixed(0)} ms, p95 ${q(0.95).toFixed(0)} ms, min ${s[0]!.toFixed(0)}, max ${s[s.length - 1]!.toFixed(0)} (n=${s.length})`;
}

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 60_000, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(everyMs);
  }
}

const SERVER = `require('http').createServer((q, s) => s.end(process.argv[1])).listen(80, '0.0.0.0')`;
// Every 10 ms a request on a new connection (100 ms timeout); one JSON line per answer: {t, body}.
const PROBER = `const http = require('http'); const url = process.argv[1];
setInterval(() => {
  const req = http.get(url, { agent: false, timeout: 100 }, (res) => {
    let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => process.stdout.write(JSON.stringify({ t: Date.now(), body: b }) + '\\n'));
  });
  req.on('timeout', () => req.destroy()); req.on('error', () => {});
}, 10);`;

class Prober {
  private buf = '';
  readonly answers: { t: number; body: string }[] = [];
  private constructor(readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      this.buf += c;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        try {
          this.answers.push(JSON.parse(line) as { t: number; body: string });
        } catch {
          /* partial */
        }
      }
    });
  }
  static start(client: LanMachine, url: string): Prober {
    return new Prober(spawn('ip', ['netns', 'exec', client.ns, process.execPath, '-e', PROBER, url], { stdio: ['ignore', 'pipe', 'ignore'] }));
  }
  /** First answer at or after `t0` whose body satisfies `pred`. */
  first(t0: number, pred: (body: string) => boolean): number | undefined {
    return this.answers.find((a) => a.t >= t0 && pred(a.body))?.t;
  }
  async stop(): Promise<void> {
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await gone;
  }
}

interface Setup {
  lan: TestLan;
  env: Env;
  nodes: LanMachine[];
  client: LanMachine;
  servers: ChildProcess[];
  keyDir: string;
  speakers: Map<string, SpeakerHandle>;
}

async function startSpeakers(s: Setup, names: string[]): Promise<void> {
  const started = await Promise.all(names.map((name) => {
    const m = s.nodes[Number(name.slice(4)) - 1]!;
    return startSpeaker(s.env.kubeconfig, name, {
      netns: m,
      args: ['--log-level', 'info', '--pod-name', `speaker-${name}`],
      env: { METALLB_ML_BIND_ADDR: m.ip, METALLB_ML_LABELS: 'app=tsp-bench', METALLB_ML_SECRET_KEY_PATH: s.keyDir },
    });
  }));
  for (const h of started) s.speakers.set(h.node, h);
}

async function announcedCount(h: SpeakerHandle): Promise<number> {
  const text = await h.metrics();
  return text.split('\n').filter((l) => l.startsWith('metallb_speaker_announced{') && l.endsWith(' 1')).length;
}

async function setup(): Promise<Setup> {
  const lan = new TestLan(110).up();
  const nodes = [1, 2, 3].map((i) => lan.node(i));
  const client = lan.client();
  // The Service range is on the LAN, as in MetalLB's layer 2 mode: the client ARPs for the addresses directly.
  lan.net.ip(client.ns, 'route', 'add', '10.97.64.0/22', 'dev', 'eth0');
  const servers: ChildProcess[] = [];
  for (const [i, m] of nodes.entries()) {
    // The node accepts traffic for every address on lo, but only the speaker answers ARP for them (strictARP).
    lan.net.sysctl(m.ns, 'net.ipv4.conf.all.arp_ignore', '1');
    lan.net.sysctl(m.ns, 'net.ipv4.conf.all.arp_announce', '2');
    servers.push(lan.net.spawn(m.ns, process.execPath, ['-e', SERVER, `node${i + 1}`]));
  }
  const env = await startEnv({ extraArgs: ['--host', lan.hostIP] });
  const keyDir = mkdtempSync(join(tmpdir(), 'tsp-bench-'));
  writeFileSync(join(keyDir, 'secretkey'), 'tsp-failover-bench-key');
  await env.apply([
    ...nodes.map((_, i) => `apiVersion: v1\nkind: Node\nmetadata: {name: node${i + 1}, labels: {tsp-bench/preferred: "${i === 0}"}}\n`),
    ...nodes.map((_, i) => `apiVersion: v1\nkind: Pod\nmetadata: {name: speaker-node${i + 1}, namespace: ${NS}, labels: {app: tsp-bench}}\nspec: {nodeName: node${i + 1}, hostNetwork: true, containers: [{name: s, image: metallb-ts}]}\n`),
    poolYaml('bench', ['10.97.64.0/22']),
    // node1 is preferred: it announces every address until it dies.
    `apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: bench, namespace: ${NS}}\nspec:\n  preferredNodeSelectors: [{weight: 100, preference: {matchLabels: {tsp-bench/preferred: "true"}}}]\n`,
  ].join('---\n'));
  for (const [i, m] of nodes.entries()) {
    await env.api.mergePatch(`/api/v1/namespaces/${NS}/pods/speaker-node${i + 1}/status`, { status: { phase: 'Running', podIP: m.ip, podIPs: [{ ip: m.ip }] } });
  }
  await env.kc(['create', 'namespace', 'tsp-bench']);
  const s: Setup = { lan, env, nodes, client, servers, keyDir, speakers: new Map() };
  await startSpeakers(s, ['node1', 'node2', 'node3']);
  return s;
}

const vip = (i: number): string => `10.97.${64 + (i >> 8)}.${i & 255}`;

/** Services svc-0 … svc-(n-1) holding 10.97.64.0 …, with a serving endpoint; the addresses on every node's lo. */
async function addServices(s: Setup, from: number, to: number): Promise<void> {
  const api: KubeClient = s.env.api;
  const one = async (i: number): Promise<void> => {
    await api.post('/api/v1/namespaces/tsp-bench/services', {
      apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${i}` },
      spec: { type: 'LoadBalancer', selector: { app: 'none' }, ports: [{ port: 80 }], allocateLoadBalancerNodePorts: false },
    });
    await api.post('/apis/discovery.k8s.io/v1/namespaces/tsp-bench/endpointslices', {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `svc-${i}-x`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
      addressType: 'IPv4', endpoints: [{ addresses: ['10.244.9.9'], conditions: { ready: true } }],
    });
    await api.mergePatch(`/api/v1/namespaces/tsp-bench/services/svc-${i}/status`, { status: { loadBalancer: { ingress: [{ ip: vip(i) }] } } });
  };
  const todo = Array.from({ length: to - from }, (_, k) => from + k);
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = todo.shift(); i !== undefined; i = todo.shift()) await one(i);
  }));
  const batch = Array.from({ length: to - from }, (_, k) => `addr add ${vip(from + k)}/32 dev lo`).join('\n');
  for (const m of s.nodes) run('ip', ['-n', m.ns, '-batch', '-'], { input: `${batch}\n` });
}

async function heal(s: Setup, n: number): Promise<void> {
  await until('node1 announces everything again', async () => (await announcedCount(s.speakers.get('node1')!)) === n, 120_000, 200);
  for (const name of ['node2', 'node3']) await until(`${name} announces nothing`, async () => (await announcedCount(s.speakers.get(name)!)) === 0, 60_000, 200);
}

/** One trial: the first answer through a node other than node1 after `kill` (ms), for a random address. */
async function trial(s: Setup, n: number, kill: () => Promise<void>): Promise<{ ms: number; expected: boolean }> {
  const i = Math.floor(Math.random() * n);
  const ip = vip(i);
  const expected = electionOrder(['node2', 'node3'], ip)[0]!;
  // After the previous trial the client may still send to the interim owner (it serves too): start from scratch.
  s.lan.net.ip(s.client.ns, 'neigh', 'flush', 'all');
  const prober = Prober.start(s.client, `http://${ip}/`);
  try {
    const since = Date.now();
    try {
      // Steady state: the last few answers all come from node1.
      await until('answers from node1', () => {
        const recent = prober.answers.filter((a) => a.t >= since).slice(-5);
        return recent.length === 5 && recent.every((a) => a.body === 'node1');
      }, 60_000, 20);
    } catch (err) {
      const arp = s.lan.arpingAll(s.client, ip, 2);
      throw new Error(`${(err as Error).message} for ${ip}; answers ${JSON.stringify(prober.answers.slice(-3))}; ARP from ${arp.join(',')}`);
    }
    await sleep(200 + Math.random() * 300);
    const t0 = Date.now();
    await kill();
    await until('an answer through the new owner', () => prober.first(t0, (b) => b !== 'node1') !== undefined, 60_000, 10);
    const t1 = prober.first(t0, (b) => b !== 'node1')!;
    const body = prober.answers.find((a) => a.t === t1)!.body;
    return { ms: t1 - t0, expected: body === expected };
  } finally {
    await prober.stop();
  }
}

async function benchSpeaker(s: Setup, n: number, trials: number): Promise<void> {
  await heal(s, n);
  const cut: number[] = [];
  let wrong = 0;
  for (let k = 0; k < trials; k++) {
    const r = await trial(s, n, async () => void run('ip', ['link', 'set', s.nodes[0]!.cable, 'down']));
    cut.push(r.ms);
    if (!r.expected) wrong++;
    run('ip', ['link', 'set', s.nodes[0]!.cable, 'up']);
    await heal(s, n);
  }
  out(`metallb-ts, ${n} address(es) on the dying node, cable cut → first answer through the new owner: ${stats(cut)}${wrong ? ` (${wrong} answered by another node than the election's)` : ''}`);
  const graceful: number[] = [];
  for (let k = 0; k < Math.min(trials, 10); k++) {
    const r = await trial(s, n, async () => void s.speakers.get('node1')!.child.kill('SIGTERM'));
    graceful.push(r.ms);
    await s.speakers.get('node1')!.exited();
    await startSpeakers(s, ['node1']);
    await heal(s, n);
  }
  out(`metallb-ts, ${n} address(es), speaker stopped (SIGTERM: memberlist leave) → first answer through the new owner: ${stats(graceful)}`);
}

async function benchKeepalived(s: Setup, advert: number, trials: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tsp-keepalived-'));
  const procs: ChildProcess[] = [];
  const VIP = '10.97.110.200';
  try {
    for (const [i, m] of s.nodes.entries()) {
      const conf = join(dir, `n${i}.conf`);
      writeFileSync(conf, `global_defs { router_id tsp${i} \n enable_script_security }
vrrp_instance tsp {
  state ${i === 0 ? 'MASTER' : 'BACKUP'}
  interface eth0
  virtual_router_id 97
  priority ${150 - i * 50}
  advert_int ${advert}
  version 3
  virtual_ipaddress { ${VIP}/24 dev eth0 }
}
`);
      procs.push(s.lan.net.spawn(m.ns, 'keepalived', ['--dont-fork', '--vrrp', '--log-console', '-f', conf, '-p', join(dir, `k${i}.pid`), '-r', join(dir, `v${i}.pid`), '-c', join(dir, `c${i}.pid`)]));
    }
    const times: number[] = [];
    for (let k = 0; k < trials; k++) {
      s.lan.net.ip(s.client.ns, 'neigh', 'flush', 'all');
      const prober = Prober.start(s.client, `http://${VIP}/`);
      try {
        const since = Date.now();
        await until('keepalived master node1 answers', () => {
          const recent = prober.answers.filter((a) => a.t >= since).slice(-5);
          return recent.length === 5 && recent.every((a) => a.body === 'node1');
        }, 60_000, 20);
        await sleep(200 + Math.random() * 300);
        const t0 = Date.now();
        run('ip', ['link', 'set', s.nodes[0]!.cable, 'down']);
        await until('an answer through the backup', () => prober.first(t0, (b) => b !== 'node1') !== undefined, 60_000, 10);
        times.push(prober.first(t0, (b) => b !== 'node1')! - t0);
      } finally {
        await prober.stop();
        run('ip', ['link', 'set', s.nodes[0]!.cable, 'up']);
      }
    }
    out(`keepalived (VRRPv3, advert_int ${advert}), 1 address, cable cut → first answer through the backup: ${stats(times)}`);
  } finally {
    for (const p of procs) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runFailoverBench(): Promise<void> {
  if (!isRoot()) {
    out('skipped: needs root (network namespaces, raw sockets)');
    return;
  }
  const trials = opt('--trials', 20);
  const many = opt('--many', 1000);
  out(`machine: load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores; trials ${trials}`);
  const s = await setup();
  try {
    await addServices(s, 0, 1);
    await benchSpeaker(s, 1, trials);
    if (many > 1) {
      await addServices(s, 1, many);
      await benchSpeaker(s, many, Math.max(5, Math.round(trials / 2)));
    }
    if (!argv.includes('--skip-keepalived')) {
      // Our speakers do not touch the keepalived address; they keep running.
      await benchKeepalived(s, 0.01, trials);
      await benchKeepalived(s, 1, Math.min(trials, 10));
    }
  } finally {
    await Promise.all([...s.speakers.values()].map((h) => h.kill('SIGKILL')));
    await s.env.close();
    await s.lan.down();
    rmSync(s.keyDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runFailoverBench();
