// `npm run bench -- failover [--trials N] [--many N] [--many-trials N] [--graceful-trials N] [--serf-trials N]
//                            [--skip-keepalived] [--keepalived-on-host] [--skip-serf] [--soak SECONDS] [--soak-burners N] [--lab NAME]
//                            [--keep-logs DIR] [--no-settle] [--verbose]` (as root):
// layer 2 failover IN THE LAB (`metallb lab up`, our speakers as the lab runs them: a DaemonSet, memberlist on, our
// default timing). A hostNetwork echo DaemonSet answers with its node's name behind Services with
// externalTrafficPolicy: Local, so each answer names the node that took the client's packet: the owner.
// node1 is the preferred node of the bench's L2Advertisement and owns every bench address until it dies.
//
// - cable cut: node1's veth (its host end) down, no goodbye; the time from the cut to the start of the first request
//   answered through another node (a request every 10 ms, each on a new connection up within 1 s, its answer waited
//   for up to 15 s and its delay reported apart: the echo pod's latency on a loaded node is not the failover's), for 1
//   and for --many addresses on node1. A trial with no such answer within 60 s is counted as failed and reported.
//   In the same cuts, on the same LAN: keepalived (VRRPv3, advert_int 0.01, its fastest) fails a VIP over from node1
//   to node2, measured by a second client prober the same way (keepalived runs as a hostNetwork DaemonSet pod with the
//   speaker's CPU request, on the same footing as our speaker; --keepalived-on-host spawns it in the host's root
//   cgroup instead, as before 2026-12-02); and serf agents (memberlist with its LAN timing,
//   MetalLB's) on the nodes time their own detection of node1's death (the cable stays cut until serf sees it).
// - graceful stop: node1's speaker gets SIGTERM (memberlist leave); its pod is then recreated by the DaemonSet.
// - --soak SECONDS: no false failover: both CPUs saturated (busy loops, HTTP load through the Services from the
//   client, every Service patched in turn so the speakers' event loops stay busy); any change of owner or of a
//   speaker's member count is counted. --soak-burners N busy loops (default 2, spread over the nodes) set how loaded.
//   Every verdict (fast or slow path), refutation and late answer in the speakers' logs is listed after it.
// Everything it starts is stopped and `lab down` runs at the end, even on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, loadKubeConfig } from '../src/k8s/client.js';
import { makePlan, type LabPlan } from '../src/lab/plan.js';
import { electionOrder } from '../src/speaker/l2/election.js';
import { BIN, labSkip, runCmd, startLab, TEST_LAB, type Lab } from '../test/helpers/lab.js';
import { flag, machineLoad, opt, optString, out, quantile, settleMachine, sleep, stats, until } from './lib.js';

const NS = 'failover-bench';
const ECHO_PORT = 18080;
const ECHO_DS = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: fo-echo, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: fo-echo}}
  template:
    metadata: {labels: {app: fo-echo}}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers:
        - name: echo
          image: sysnet4admin/echo-hname
          # No CPU burnt per request, and a CPU request: a BestEffort pod (cpu.shares 2) next to a new owner's busy
          # speaker answered seconds late on a loaded machine, which the prober once took for a stalled failover.
          env: [{name: METALLB_LAB_HTTP_PORT, value: "${ECHO_PORT}"}, {name: METALLB_LAB_CPU_MS_PER_REQUEST, value: "0"}]
          resources: {requests: {cpu: 100m}}
`;

// Every 10 ms a request on a new connection. One JSON line per request when it is settled:
//   {t, c, a, body} answered: t when it was started, c ms until its connection was up, a ms until the answer ended;
//   {t, c, fail}    given up: no connection within 900 ms, or no answer within 15 s, or an error;
// each with p, the start time of the oldest request still unsettled (or the time of writing when none is).
// A request counts for the address's path only if its connection was up within 1 s (c < 1000): the kernel's first
// SYN retransmission comes 1 s after the SYN, so such an answer went where the first SYN, sent at t, went. The
// answer itself may come much later: it measures the echo server (a pod on a loaded node), not the failover, and
// the bench reports it apart (a 100 ms answer timeout, used before, counted a starved echo server as a stall).
const PROBER = `const http = require('http'); const url = process.argv[1]; const pending = new Map(); let next = 0;
const line = (id, o) => { pending.delete(id); let p = Date.now(); for (const x of pending.values()) { p = x; break; } process.stdout.write(JSON.stringify({ ...o, p }) + '\\n'); };
setInterval(() => {
  const t = Date.now(); const id = next++; let c = -1; let done = false; pending.set(id, t);
  const settle = (o) => { if (done) return; done = true; clearTimeout(connect); clearTimeout(whole); line(id, { t, c, ...o }); };
  const req = http.get(url, { agent: false }, (res) => {
    let b = ''; res.setEncoding('utf8'); res.on('data', (x) => (b += x));
    res.on('end', () => settle({ a: Date.now() - t, body: b.trim() })); res.on('error', (e) => settle({ fail: e.message }));
  });
  const connect = setTimeout(() => setImmediate(() => { if (c < 0) req.destroy(new Error('no connection within 900 ms')); }), 900);
  const whole = setTimeout(() => req.destroy(new Error('no answer within 15 s')), 15000);
  req.on('socket', (s) => s.once('connect', () => { c = Date.now() - t; }));
  req.on('error', (e) => settle({ fail: e.message }));
}, 10);`;

/** One settled request of a prober (see PROBER). */
export interface ProbeLine {
  t: number;
  c: number;
  a?: number;
  body?: string;
  fail?: string;
  p: number;
}

const children = new Set<ChildProcess>();

function spawnTracked(file: string, args: string[], opts: { stdout?: boolean } = {}): ChildProcess {
  const p = spawn(file, args, { stdio: ['ignore', opts.stdout ? 'pipe' : 'ignore', 'ignore'] });
  children.add(p);
  p.once('exit', () => children.delete(p));
  return p;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

class Prober {
  private buf = '';
  /** Answered requests, in the order their answers came. */
  readonly answers: ProbeLine[] = [];
  failures = 0;
  /** Every request started before this has been settled. */
  settledBefore = 0;
  private constructor(readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      this.buf += c;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const text = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        try {
          const l = JSON.parse(text) as ProbeLine;
          this.settledBefore = Math.max(this.settledBefore, l.p);
          if (l.body !== undefined && l.c >= 0 && l.c < 1000) this.answers.push(l);
          else this.failures++;
        } catch {
          /* partial */
        }
      }
    });
  }
  static start(netns: string, url: string): Prober {
    return new Prober(spawnTracked('ip', ['netns', 'exec', netns, process.execPath, '-e', PROBER, url], { stdout: true }));
  }
  /**
   * The earliest-started request since `t0` answered with a `pred` body, once every request started before it has
   * been settled (answers come out of order when the echo server is slow).
   */
  first(t0: number, pred: (body: string) => boolean): ProbeLine | undefined {
    let best: ProbeLine | undefined;
    for (const a of this.answers) if (a.t >= t0 && pred(a.body!) && (!best || a.t < best.t)) best = a;
    return best && this.settledBefore > best.t ? best : undefined;
  }
  /** The last `n` answers started since `since` all came from `body`. */
  steady(since: number, body: string, n = 5): boolean {
    const recent = this.answers.filter((a) => a.t >= since).slice(-n);
    return recent.length === n && recent.every((a) => a.body === body);
  }
  /** The last answers, for a failed trial's report. */
  last(n: number): string {
    return JSON.stringify(this.answers.slice(-n).map((a) => ({ t: new Date(a.t).toISOString().slice(11, 23), c: a.c, a: a.a, body: a.body })));
  }
  stop(): Promise<void> {
    return stop(this.proc);
  }
}

interface Bench {
  lab: Lab;
  plan: LabPlan;
  api: KubeClient;
  dir: string;
  /** The /22 the bench's pool gives out, on the LAN (the client reaches it directly). */
  vip: (i: number) => string;
  services: number;
  /** keepalived processes spawned by the bench (`--keepalived-on-host`); none when it runs as pods. */
  keepalived: ChildProcess[];
  /** Where keepalived runs, for the report; undefined: not running (`--skip-keepalived`). */
  keepalivedWhere?: string;
  serf: ChildProcess[];
  serfRpc: (i: number) => string;
  kaVip: string;
}

const nodeIP = (b: Bench, name: string): string => b.plan.nodes.find((n) => n.name === name)!.ipv4;
const cable = (b: Bench, name: string): string => b.plan.nodes.find((n) => n.name === name)!.hostInterface;

/**
 * One `ip -batch` for the whole bench: a cut is a line on its stdin, done within a millisecond of the trial's start.
 * Spawning `ip` per cut cost 3-10 ms on a loaded machine, counted as failover time (for keepalived too). Each command
 * is followed by a `link show` of the same device, whose line (stdout line-buffered through stdbuf) says it is done.
 */
class IpBatch {
  private readonly proc: ChildProcess;
  private out = '';
  private err = '';
  private waiting?: { dev: string; done: (line: string) => void };

  constructor() {
    this.proc = spawn('stdbuf', ['-oL', 'ip', '-o', '-force', '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(this.proc);
    this.proc.once('exit', () => {
      children.delete(this.proc);
      if (ipBatch === this) ipBatch = undefined;
    });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
      let nl: number;
      while ((nl = this.out.indexOf('\n')) >= 0) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        const w = this.waiting;
        if (w && (line.includes(` ${w.dev}:`) || line.includes(` ${w.dev}@`))) {
          this.waiting = undefined;
          w.done(line);
        }
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
  }

  /** `ip link set dev DEV STATE`; resolves with the link's line once it is done. */
  async linkSet(dev: string, state: 'up' | 'down'): Promise<string> {
    if (this.waiting) throw new Error('ip -batch: one command at a time');
    this.err = '';
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`ip link set dev ${dev} ${state}: no answer from ip -batch in 10 s${this.err ? `: ${this.err.trim()}` : ''}`));
      }, 10_000);
      this.waiting = {
        dev,
        done: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.proc.stdin!.write(`link set dev ${dev} ${state}\nlink show dev ${dev}\n`);
    });
  }
}

let ipBatch: IpBatch | undefined;

async function setCable(b: Bench, name: string, state: 'up' | 'down'): Promise<void> {
  ipBatch ??= new IpBatch();
  const line = await ipBatch.linkSet(cable(b, name), state);
  // The administrative state is in the flags: UP present after an up, absent after a down.
  const up = /<[^>]*\bUP\b[^>]*>/.test(line);
  if (up !== (state === 'up')) throw new Error(`ip link set ${cable(b, name)} ${state}: the link is still ${up ? 'up' : 'down'}: ${line}`);
}

async function metrics(b: Bench, node: string): Promise<string> {
  const res = await fetch(`http://${nodeIP(b, node)}:7472/metrics`, { signal: AbortSignal.timeout(3000) });
  return res.text();
}

const announced = (text: string): number => text.split('\n').filter((l) => l.startsWith('metallb_speaker_announced{') && l.endsWith(' 1')).length;
const members = (text: string): number => Number(/^metallb_speaker_memberlist_members (\d+)/m.exec(text)?.[1] ?? NaN);

/** node1 announces every bench address, the others none, and every speaker sees all three. */
async function heal(b: Bench, timeoutMs = 120_000): Promise<void> {
  await until(`node1 announces all ${b.services} addresses, the others none`, async () => {
    const [m1, m2, m3] = await Promise.all(['node1', 'node2', 'node3'].map((n) => metrics(b, n)));
    return announced(m1!) === b.services && announced(m2!) === 0 && announced(m3!) === 0 && [m1!, m2!, m3!].every((m) => members(m) === 3);
  }, timeoutMs, 200);
}

async function setup(lab: Lab, plan: LabPlan): Promise<Bench> {
  const slot = Number(plan.lan.ipv4.split('.')[2]);
  const base = 64 + 4 * slot;
  const vip = (i: number): string => `10.89.${base + (i >> 8)}.${i & 255}`;
  const api = new KubeClient(loadKubeConfig(lab.kubeconfig), { userAgent: 'bench-failover' });
  const dir = mkdtempSync(join(tmpdir(), 'tml-failover-'));
  const b: Bench = { lab, plan, api, dir, vip, services: 0, keepalived: [], serf: [], serfRpc: (i) => `${plan.nodes[i - 1]!.ipv4}:17373`, kaVip: `${plan.lan.ipv4.split('.').slice(0, 3).join('.')}.190` };
  await lab.kubectlOk(['label', 'node', 'node1', 'failover-bench/preferred=true', '--overwrite']);
  await lab.kubectlOk(['create', 'namespace', NS]);
  await lab.kubectlOk(['apply', '-f', '-'], {
    input: `${ECHO_DS}---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: failover-bench, namespace: metallb-system}
spec: {addresses: ["10.89.${base}.0/22"], autoAssign: false}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: failover-bench, namespace: metallb-system}
spec:
  ipAddressPools: [failover-bench]
  preferredNodeSelectors: [{weight: 100, preference: {matchLabels: {failover-bench/preferred: "true"}}}]
`,
  });
  // The bench's addresses are on the LAN, as layer 2 mode wants: the client ARPs for them directly.
  await runCmd('ip', ['-n', plan.client.netns, 'route', 'add', `10.89.${base}.0/22`, 'dev', plan.client.interface]);
  await lab.waitFor('the echo DaemonSet answers on every node', async () => {
    for (const n of plan.nodes) {
      const body = (await lab.curl('client', `http://${n.ipv4}:${ECHO_PORT}/`, 2)).trim();
      if (body !== n.name) return `${n.name} answered ${body}`;
    }
    return true;
  }, 180_000);
  return b;
}

/** Services fo-<from> … fo-<to-1>, each asking for its own bench address; waits until node1 announces them all. */
async function addServices(b: Bench, from: number, to: number): Promise<void> {
  const todo = Array.from({ length: to - from }, (_, k) => from + k);
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = todo.shift(); i !== undefined; i = todo.shift()) {
      await b.api.post(`/api/v1/namespaces/${NS}/services`, {
        apiVersion: 'v1', kind: 'Service',
        metadata: { name: `fo-${i}`, annotations: { 'metallb.universe.tf/loadBalancerIPs': b.vip(i), 'metallb.universe.tf/address-pool': 'failover-bench' } },
        spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'], selector: { app: 'fo-echo' }, ports: [{ port: 80, targetPort: ECHO_PORT }] },
      });
    }
  }));
  b.services = to;
  // Creating a thousand Services on a saturated machine takes minutes.
  await heal(b, 900_000);
  // kube-proxy programs the addresses on the nodes on its own schedule: wait until a sample answers through node1.
  const sample = [...new Set([from, to - 1, ...Array.from({ length: 3 }, () => from + Math.floor(Math.random() * (to - from)))])];
  for (const i of sample) {
    await b.lab.waitFor(`${b.vip(i)} answers through node1`, async () => (await b.lab.curl('client', `http://${b.vip(i)}/`, 1)).trim() === 'node1', 300_000, 500);
  }
}

// ---------------------------------------------------------------- peers in the same lab

/** One node's keepalived.conf: node1 the master, the others backups by falling priority. */
function keepalivedConf(b: Bench, i: number, iface: string): string {
  return `global_defs { router_id tml${i} \n enable_script_security }
vrrp_instance tml {
  state ${i === 0 ? 'MASTER' : 'BACKUP'}
  interface ${iface}
  virtual_router_id 97
  priority ${150 - i * 50}
  advert_int 0.01
  version 3
  virtual_ipaddress { ${b.kaVip}/32 dev ${iface} }
}
`;
}

/**
 * keepalived runs where our speaker runs: by default a hostNetwork DaemonSet pod with the speaker container's own CPU
 * request, so the lab's kubelet gives it the same cgroup and CPU weight as the speaker. Spawned from the bench (the
 * way until 2026-12-02, `--keepalived-on-host`), it ran in the host's root cgroup, outside the lab's pods: a peer of
 * the whole lab for CPU, while every speaker got a 50m pod's share of its node. On a busy machine that compared
 * the scheduling of two placements, not two failover designs.
 */
async function startKeepalived(b: Bench): Promise<void> {
  if (flag('--keepalived-on-host')) {
    b.keepalivedWhere = 'on the host (root cgroup)';
    for (const [i, n] of b.plan.nodes.slice(0, 3).entries()) {
      const conf = join(b.dir, `ka${i}.conf`);
      writeFileSync(conf, keepalivedConf(b, i, n.interface));
      b.keepalived.push(spawnTracked('ip', ['netns', 'exec', n.netns, 'keepalived', '--dont-fork', '--vrrp', '--log-console', '-f', conf, '-p', join(b.dir, `k${i}.pid`), '-r', join(b.dir, `v${i}.pid`), '-c', join(b.dir, `c${i}.pid`)]));
    }
  } else {
    const speaker = await b.lab.getJson<{ spec: { template: { spec: { containers: { name: string; resources?: { requests?: Record<string, string> } }[] } } } }>(['-n', 'metallb-system', 'get', 'daemonset', 'speaker']);
    const requests = speaker.spec.template.spec.containers.find((c) => c.name === 'speaker')?.resources?.requests ?? {};
    const cases = b.plan.nodes.slice(0, 3).map((n, i) => `${n.name}) cat > /ka/ka.conf <<'EOF'\n${keepalivedConf(b, i, n.interface)}EOF\n;;`).join('\n');
    const script = `set -e\ncase "$NODE_NAME" in\n${cases}\n*) exit 1;;\nesac\nexec keepalived --dont-fork --vrrp --log-console -f /ka/ka.conf -p /ka/k.pid -r /ka/v.pid -c /ka/c.pid\n`;
    b.keepalivedWhere = `as a pod with the speaker's requests (${JSON.stringify(requests)})`;
    await b.lab.kubectlOk(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'fo-keepalived', namespace: NS },
        spec: {
          selector: { matchLabels: { app: 'fo-keepalived' } },
          template: {
            metadata: { labels: { app: 'fo-keepalived' } },
            spec: {
              hostNetwork: true,
              tolerations: [{ operator: 'Exists' }],
              volumes: [{ name: 'ka', emptyDir: {} }],
              containers: [{
                name: 'keepalived', image: 'nginx', command: ['/bin/sh', '-c', script],
                env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
                securityContext: { privileged: true },
                volumeMounts: [{ name: 'ka', mountPath: '/ka' }],
                resources: { requests },
              }],
            },
          },
        },
      }),
    });
  }
  out(`keepalived ${b.keepalivedWhere}`);
  await b.lab.waitFor('keepalived: node1 holds the VIP', async () => (await b.lab.curl('client', `http://${b.kaVip}:${ECHO_PORT}/`, 1)).trim() === 'node1', 60_000, 200);
}

const serfKey = Buffer.from('failover-bench-serf-key!').subarray(0, 16).toString('base64');

async function serfCmd(b: Bench, i: number, args: string[]): Promise<string> {
  const n = b.plan.nodes[i - 1]!;
  // Flags before the arguments: Go's flag package stops at the first argument.
  const [sub, ...rest] = args;
  const r = await runCmd('ip', ['netns', 'exec', n.netns, 'serf', sub!, `-rpc-addr=${b.serfRpc(i)}`, ...rest], { timeoutMs: 10_000 });
  return r.stdout;
}

async function serfStatus(b: Bench, i: number, member: string): Promise<string | undefined> {
  const text = await serfCmd(b, i, ['members', '-format=json']);
  const doc = JSON.parse(text) as { members: { name: string; status: string }[] };
  return doc.members.find((m) => m.name === member)?.status;
}

async function startSerf(b: Bench): Promise<void> {
  for (const [k, n] of b.plan.nodes.slice(0, 3).entries()) {
    const i = k + 1;
    b.serf.push(spawnTracked('ip', ['netns', 'exec', n.netns, 'serf', 'agent', `-node=serf-node${i}`, `-bind=${n.ipv4}:17946`, `-rpc-addr=${b.serfRpc(i)}`, '-profile=lan', `-encrypt=${serfKey}`, '-log-level=err']));
  }
  for (let i = 1; i <= 3; i++) await until(`serf agent ${i} answers`, async () => (await serfCmd(b, i, ['members'])).includes(`serf-node${i}`), 30_000, 200);
  for (let i = 2; i <= 3; i++) await until(`serf agent ${i} joins`, async () => /Successfully joined/.test(await serfCmd(b, i, ['join', `${nodeIP(b, 'node1')}:17946`])), 30_000, 500);
}

async function serfHealed(b: Bench): Promise<void> {
  await until('serf agents see each other alive', async () => {
    if ((await serfStatus(b, 2, 'serf-node1')) !== 'alive') {
      await serfCmd(b, 1, ['join', `${nodeIP(b, 'node2')}:17946`]);
      return false;
    }
    return (await serfStatus(b, 1, 'serf-node2')) === 'alive';
  }, 60_000, 300);
}

// ---------------------------------------------------------------- trials

/** Where the time of one failover went, in ms after the cut, from the new owner's speaker log. */
interface Timeline {
  /** The gossip thread declared node1 dead (with a plan: its own clock; without: when the main thread logged it). */
  dead?: number;
  /** With a takeover plan: the gossip thread handed the frames to the kernel; the main thread heard; the announcer took the Services. */
  planSent?: number;
  planHeard?: number;
  planApplied?: number;
  planServices?: number;
  /** The main thread's own takeover pass (what no plan covered) ended. */
  passEnd?: number;
  /** The announcer logged the address announced (after its own gratuitous frames left). */
  announced?: number;
  /** What the verdict on node1 rested on (the fast path's evidence, or the slow path's silence and tolerance). */
  evidence?: string;
  /** The fast path's relay wait (half node1's tolerance, or the reach timeout), and the worst delays behind it. */
  relayWaitMs?: number;
  notes: string[];
}

/** One line from the fast path's verdict fields (engine.ts fastEvidence). */
function fastEvidence(l: Record<string, unknown>): string {
  const f = (k: string): string => (l[k] === undefined || l[k] === '' ? '-' : String(l[k]));
  return `fast path: silent ${f('silenceMs')} ms; reach ${f('reach')} (timeout ${f('timeoutMs')} ms, ${f('rearms')} re-arms, judged after ${f('waitedMs')} ms); ` +
    `${f('askedOthers')} relays asked at +${f('askedAfterMs')}, nacks ${f('nacks')}/${f('expectedNacks')} at +${f('nackAfterMs')} ms; ` +
    `relay wait ${f('relayWaitMs')} ms (tolerance ${f('toleranceMs')}: node1's jitter ${f('memberJitterMs')}, own ${f('ownJitterMs')}, allowance ${f('allowanceMs')}); ` +
    `deadline +${f('deadlineMs')}, give-up +${f('giveUpMs')}; decided by ${f('decidedBy')}`;
}

async function speakerTimeline(b: Bench, node: string, ip: string, t0: number): Promise<Timeline> {
  const tl: Timeline = { notes: [] };
  const pods = (await b.lab.pods('metallb-system', 'component=speaker')).filter((p) => (p.spec as { nodeName?: string } | undefined)?.nodeName === node);
  if (pods.length === 0) return tl;
  const r = await b.lab.kubectl(['logs', '-n', 'metallb-system', pods[0]!.metadata.name, '--since=60s']);
  for (const line of r.stdout.split('\n')) {
    try {
      const raw = JSON.parse(line) as Record<string, unknown>;
      const l = raw as {
        ts?: string; msg?: string; member?: string; ip?: string; suspectedForMs?: number; confirmations?: number; path?: string;
        silenceMs?: number; toleranceMs?: number;
        detectedAt?: number; sentMs?: number; heardMs?: number; appliedMs?: number; services?: number; passMs?: number;
      };
      const t = l.ts ? Date.parse(l.ts) - t0 : -1;
      if (t < 0 || t > 60_000) continue;
      if (l.member === 'node1' && /suspect timeout reached/.test(l.msg ?? '')) {
        tl.notes.push(`suspected for ${l.suspectedForMs} ms, ${l.confirmations} confirmations`);
        if (l.path === 'fast') {
          tl.evidence = fastEvidence(raw);
          if (typeof raw.relayWaitMs === 'number') tl.relayWaitMs = raw.relayWaitMs;
        }
        else if (l.path === 'slow') tl.evidence = `slow path: silent ${l.silenceMs} ms, tolerance ${l.toleranceMs} ms`;
      }
      if (l.member === 'node1' && /not accusing it yet/.test(l.msg ?? '')) tl.notes.push(`fast path withheld at +${t} ms`);
      if (l.member === 'node1' && /^takeover plan: frames sent/.test(l.msg ?? '') && l.detectedAt !== undefined && tl.planSent === undefined) {
        tl.dead = l.detectedAt - t0;
        tl.planSent = tl.dead + (l.sentMs ?? 0);
        tl.planHeard = tl.dead + (l.heardMs ?? 0);
        tl.planApplied = tl.dead + (l.appliedMs ?? 0);
        tl.planServices = l.services;
      }
      if (l.member === 'node1' && /^takeover plan: the gossip thread sent frames of a plan no longer kept/.test(l.msg ?? '')) tl.notes.push('plan sent but no longer kept');
      if (tl.dead === undefined && l.member === 'node1' && /member failed|node1 left/.test(l.msg ?? '')) tl.dead = t;
      if (tl.passEnd === undefined && l.member === 'node1' && /took over services ahead of their reconciles/.test(l.msg ?? '')) tl.passEnd = t;
      if (tl.announced === undefined && l.ip === ip && /announcing service IP/.test(l.msg ?? '')) tl.announced = t;
    } catch {
      /* not JSON */
    }
  }
  return tl;
}

const ms = (x: number | undefined): string => (x === undefined ? '?' : `+${Math.round(x)}`);

function describeTimeline(node: string, ip: string, tl: Timeline): string {
  const plan = tl.planSent !== undefined
    ? `takeover plan (${tl.planServices} services): frames sent ${ms(tl.planSent)}, main thread heard ${ms(tl.planHeard)}, announcer updated ${ms(tl.planApplied)}`
    : 'no takeover plan';
  return `${node}: node1 dead ${ms(tl.dead)}; ${plan}; ${tl.passEnd !== undefined ? `main pass done ${ms(tl.passEnd)}; ` : ''}${ip} announced by the announcer ${ms(tl.announced)}${tl.notes.length ? ` (${tl.notes.join('; ')})` : ''}` +
    `${tl.evidence ? `\n      verdict: ${tl.evidence}` : ''}`;
}

interface CutResult {
  /** ms from the cut to the start of the first request answered through another node; undefined: none in 60 s. */
  ours?: number;
  /** How long the echo server behind the new owner took to answer that request (not part of the failover). */
  oursAnswerMs?: number;
  expected: boolean;
  timeline?: Timeline;
  keepalived?: number;
  keepalivedAnswerMs?: number;
  serf?: number;
  settled?: Calm;
}

const notNode1 = (body: string): boolean => body !== 'node1';

/** How calm the machine was when a trial's failure was caused (see `calm`). */
interface Calm {
  waitedMs: number;
  busy: number;
}

/**
 * Waits, before a trial's cut or SIGTERM, until the machine is calm. The previous trial's heal keeps both cores busy
 * for seconds with 1,000 Services: node1 takes every address back, and three speakers rewrite their ServiceL2Status
 * objects and Events through one API server whose watchers all hear of it. A cut in the middle of that measured a
 * failure during a recovery, and the later trials of a series ever slower (node1 declared dead 22-26 ms after the cut
 * in the first five trials of a run, 43-80 ms in the later ones, as the load average rose to 5). A node dies on a
 * settled cluster; failover under load is what the soak measures. `--no-settle` cuts back to back, as before.
 */
async function calm(): Promise<Calm | undefined> {
  if (flag('--no-settle')) return undefined;
  return await settleMachine();
}

const calmText = (c: Calm | undefined, event = 'cut'): string => (c ? `; ${event} after ${(c.waitedMs / 1000).toFixed(1)} s of waiting for a calm machine (${Math.round(c.busy * 100)}% busy)` : '');

/** What the client believes about `ip` (ip -s neigh: state, and the ages of its last use/confirmation/update). */
async function clientNeighbour(b: Bench, ip: string): Promise<string> {
  const r = await runCmd('ip', ['-n', b.plan.client.netns, '-s', 'neigh', 'show', ip]);
  return r.stdout.trim() || '(none)';
}

async function cutTrial(b: Bench, withSerf: boolean): Promise<CutResult> {
  const i = Math.floor(Math.random() * b.services);
  const ip = b.vip(i);
  const expected = electionOrder(['node2', 'node3'], ip)[0]!;
  await runCmd('ip', ['-n', b.plan.client.netns, 'neigh', 'flush', 'all']);
  const prober = Prober.start(b.plan.client.netns, `http://${ip}/`);
  const kaProber = b.keepalivedWhere !== undefined ? Prober.start(b.plan.client.netns, `http://${b.kaVip}:${ECHO_PORT}/`) : undefined;
  try {
    const since = Date.now();
    try {
      await until(`answers from node1 for ${ip}${kaProber ? ' and the keepalived VIP' : ''}`, () => prober.steady(since, 'node1') && (!kaProber || kaProber.steady(since, 'node1')), 120_000, 20);
    } catch (err) {
      throw new Error(`${(err as Error).message}; last answers: ${prober.last(3)}${kaProber ? `, keepalived VIP: ${kaProber.last(3)}` : ''}`);
    }
    const settled = await calm();
    await sleep(200 + Math.random() * 300);
    const t0 = Date.now();
    await setCable(b, 'node1', 'down');
    try {
      // A trial that gets no answer through another node within 60 s is a failed trial, reported, not the end of the bench.
      await until('an answer through the new owner', () => prober.first(t0, notNode1) !== undefined && (!kaProber || kaProber.first(t0, notNode1) !== undefined), 60_000, 10).catch(() => undefined);
      const mine = prober.first(t0, notNode1);
      const theirs = kaProber?.first(t0, notNode1);
      const ka = theirs ? { keepalived: theirs.t - t0, keepalivedAnswerMs: theirs.a! } : {};
      if (!mine) {
        // What each candidate did, and what the client believes, before the cable comes back.
        out(`  failed trial: ${ip} (the election's ${expected}): no answer through another node in 60 s; client neighbour entry: ${await clientNeighbour(b, ip)}; ` +
          `${prober.failures} requests given up; last answers ${prober.last(2)}${kaProber && !theirs ? '; the keepalived VIP failed too' : ''}`);
        for (const n of ['node2', 'node3']) out(`    ${describeTimeline(n, ip, await speakerTimeline(b, n, ip, t0))}`);
        return { expected: false, ...ka };
      }
      let serf: number | undefined;
      if (withSerf) {
        await until('serf on node2 marks node1 failed', async () => (await serfStatus(b, 2, 'serf-node1')) === 'failed', 60_000, 50);
        serf = Date.now() - t0;
      }
      const body = mine.body!;
      const timeline = await speakerTimeline(b, body, ip, t0);
      if (flag('--verbose')) {
        out(`  trial: ${ip}: first request through ${body} started at +${mine.t - t0} ms (connected in ${mine.c} ms; the echo server answered it after ${mine.a} ms)` +
          `${theirs ? `; keepalived VIP +${theirs.t - t0} ms (answered after ${theirs.a} ms)` : ''}${calmText(settled)}; ${describeTimeline(body, ip, timeline)}`);
      }
      return { ours: mine.t - t0, oursAnswerMs: mine.a!, expected: body === expected, timeline, ...ka, ...(serf !== undefined ? { serf } : {}), ...(settled ? { settled } : {}) };
    } finally {
      await setCable(b, 'node1', 'up');
    }
  } finally {
    await prober.stop();
    await kaProber?.stop();
  }
}

/** The speaker process of a node: a `metallb … speaker` node process in that node's network namespace. */
function speakerPid(b: Bench, node: string): number {
  const n = b.plan.nodes.find((x) => x.name === node)!;
  const want = statSync(`/run/netns/${n.netns}`).ino;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!argv.includes('speaker') || !/node/.test(readlinkSync(`/proc/${d}/exe`))) continue;
      if (!argv.some((a) => /metallb/.test(a))) continue;
      const ns = readlinkSync(`/proc/${d}/ns/net`);
      if (ns === `net:[${want}]`) return Number(d);
    } catch {
      /* gone */
    }
  }
  throw new Error(`no speaker process found in ${n.netns}`);
}

/** With --keep-logs DIR: a node's speaker logs as they are now (a pod about to be deleted takes its logs along). */
function keepLogs(b: Bench, node: string, tag: string): void {
  const keep = optString('--keep-logs', '');
  if (!keep) return;
  mkdirSync(join(keep, node), { recursive: true });
  for (const f of speakerLogFiles(b, node)) cpSync(f, join(keep, node, `${tag}_${f.split('/').slice(-3).join('_')}`));
}

/** When node1's speaker handled the SIGTERM (its `shutting down` log), in ms after it was sent. */
function signalHandledAfter(b: Bench, t0: number): number | undefined {
  for (const f of speakerLogFiles(b, 'node1')) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line.includes('shutting down')) continue;
      try {
        const t = Date.parse((JSON.parse(line.slice(line.indexOf('{'))) as { ts?: string }).ts ?? '') - t0;
        if (t >= 0 && t < 60_000) return t;
      } catch {
        /* not JSON */
      }
    }
  }
  return undefined;
}

/** When node1's stopping speaker logged its shutdown steps, in ms after the SIGTERM. */
function stopTimeline(b: Bench, t0: number): string {
  const marks: string[] = [];
  for (const f of speakerLogFiles(b, 'node1')) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!/shutting down|"stopped"|shutdown took too long|error while stopping|left the cluster|leave/.test(line)) continue;
      try {
        const l = JSON.parse(line.slice(line.indexOf('{'))) as { ts?: string; msg?: string };
        const t = Date.parse(l.ts ?? '') - t0;
        if (t >= 0 && t < 60_000) marks.push(`${l.msg} +${t}`);
      } catch {
        /* not JSON */
      }
    }
  }
  return `node1's speaker: ${marks.join(', ') || 'no shutdown logged'}`;
}

/** The kubelet's log files of every instance of a node's speaker container (CRI format, one JSON record a line). */
function speakerLogFiles(b: Bench, node: string): string[] {
  const dir = join(b.lab.stateDir, 'nodes', node, 'logs');
  const out: string[] = [];
  for (const pod of readdirSync(dir).filter((d) => d.startsWith('metallb-system_speaker-'))) {
    const c = join(dir, pod, 'speaker');
    for (const f of readdirSync(c)) if (f.endsWith('.log')) out.push(join(c, f));
  }
  return out;
}

interface GracefulResult {
  /** ms from SIGTERM to the start of the first request answered through another node; undefined: none in 60 s. */
  ours?: number;
  answerMs?: number;
  /** ms from SIGTERM to node1's speaker logging it (its main thread's lateness). */
  handledMs?: number;
}

async function gracefulTrial(b: Bench): Promise<GracefulResult> {
  const i = Math.floor(Math.random() * b.services);
  const ip = b.vip(i);
  await runCmd('ip', ['-n', b.plan.client.netns, 'neigh', 'flush', 'all']);
  const prober = Prober.start(b.plan.client.netns, `http://${ip}/`);
  let t0s = 'before';
  try {
    const since = Date.now();
    await until(`answers from node1 for ${ip}`, () => prober.steady(since, 'node1'), 60_000, 20);
    const settled = await calm();
    await sleep(200 + Math.random() * 300);
    const pid = speakerPid(b, 'node1');
    const t0 = Date.now();
    t0s = new Date(t0).toISOString().slice(11, 19);
    process.kill(pid, 'SIGTERM');
    await until('an answer through the new owner', () => prober.first(t0, notNode1) !== undefined, 60_000, 10).catch(() => undefined);
    const mine = prober.first(t0, notNode1);
    if (!mine) {
      out(`  failed graceful trial: ${ip} (the election's ${electionOrder(['node2', 'node3'], ip)[0]}): no answer through another node in 60 s; ` +
        `client neighbour entry: ${await clientNeighbour(b, ip)}; ${prober.failures} requests given up; last answers ${prober.last(2)}`);
      return {};
    }
    if (flag('--verbose')) out(`  graceful trial: ${ip}: first request through ${mine.body} started at +${mine.t - t0} ms (connected in ${mine.c} ms; the echo server answered it after ${mine.a} ms)${calmText(settled, 'SIGTERM')}; ${stopTimeline(b, t0)}`);
    const handledMs = signalHandledAfter(b, t0);
    return { ours: mine.t - t0, answerMs: mine.a!, ...(handledMs !== undefined ? { handledMs } : {}) };
  } finally {
    await prober.stop();
    keepLogs(b, 'node1', `graceful-${t0s}`);
    // A fresh pod from the DaemonSet (the kubelet would restart the container only after a back-off).
    const pods = (await b.lab.pods('metallb-system', 'component=speaker')).filter((p) => (p.spec as { nodeName?: string } | undefined)?.nodeName === 'node1');
    for (const p of pods) await b.lab.kubectl(['delete', 'pod', '-n', 'metallb-system', p.metadata.name, '--wait=false']);
    await heal(b);
  }
}

const ratio = (ours: number[], theirs: number[]): string => (theirs.length && ours.length ? `${(quantile(ours, 0.5) / quantile(theirs, 0.5)).toFixed(2)}×` : 'n/a');

/** Each phase's median over the trials that logged it (n of N when some did not). */
function phases(tls: readonly Timeline[], answers: readonly number[]): string {
  const phase = (label: string, pick: (t: Timeline) => number | undefined): string | undefined => {
    const xs = tls.map(pick).filter((x): x is number => x !== undefined);
    if (xs.length === 0) return undefined;
    return `${label} ${Math.round(quantile(xs, 0.5))}${xs.length < tls.length ? ` (${xs.length}/${tls.length})` : ''}`;
  };
  return [
    phase('the fast path\'s relay wait', (t) => t.relayWaitMs),
    phase('node1 declared dead', (t) => t.dead),
    phase('plan frames sent', (t) => t.planSent),
    phase('main thread heard', (t) => t.planHeard),
    phase('announcer took the plan', (t) => t.planApplied),
    phase('main pass done', (t) => t.passEnd),
    phase('address announced by the main thread', (t) => t.announced),
    `first answer ${Math.round(quantile([...answers], 0.5))}`,
  ].filter((x) => x !== undefined).join(', ');
}

/** A trial that ended in an error (a setup wait timed out, say) counts as failed; the series goes on once healed. */
async function failedTrial(b: Bench, what: string, err: unknown): Promise<void> {
  out(`  failed ${what}: ${(err as Error).message}`);
  await heal(b);
}

async function series(b: Bench, cutTrials: number, gracefulTrials: number, serfTrials: number): Promise<void> {
  const ours: number[] = [];
  const answerMs: number[] = [];
  const ka: number[] = [];
  const kaAnswerMs: number[] = [];
  const serf: number[] = [];
  const timelines: Timeline[] = [];
  const calms: Calm[] = [];
  let wrong = 0;
  let failed = 0;
  let kaFailed = 0;
  for (let k = 0; k < cutTrials; k++) {
    try {
      const r = await cutTrial(b, k < serfTrials);
      if (r.settled) calms.push(r.settled);
      if (r.ours === undefined) failed++;
      else {
        ours.push(r.ours);
        answerMs.push(r.oursAnswerMs!);
        timelines.push(r.timeline!);
        if (!r.expected) wrong++;
      }
      if (r.keepalived !== undefined) {
        ka.push(r.keepalived);
        kaAnswerMs.push(r.keepalivedAnswerMs!);
      } else if (b.keepalivedWhere !== undefined) kaFailed++;
      if (r.serf !== undefined) serf.push(r.serf);
      await heal(b);
      if (r.serf !== undefined) await serfHealed(b);
    } catch (err) {
      failed++;
      await failedTrial(b, `cut trial ${k + 1}`, err);
    }
  }
  const n = b.services;
  const failures = (f: number, of: number): string => (f ? `; ${f} of ${of} trials FAILED (no answer through another node within 60 s)` : '');
  out(`metallb-ts, ${n} address(es) on node1, cable cut → first request answered through the new owner (its start): ${stats(ours)}` +
    `${wrong ? ` (${wrong} first answered by another node than the election's)` : ''}${failures(failed, cutTrials)}`);
  if (answerMs.length) out(`  the echo server's answer to that request took ${stats(answerMs)} (the new owner's echo pod on a loaded node; not part of the failover)`);
  if (timelines.length) out(`  where the time went (median ms after the cut): ${phases(timelines, ours)}`);
  if (calms.length) {
    out(`  each cut made on a calm machine (--no-settle: back to back): waited ${stats(calms.map((c) => c.waitedMs))} for it; ` +
      `CPU busy just before the cut ${stats(calms.map((c) => Math.round(c.busy * 100)), '%')} of all cores`);
  }
  if (ka.length || kaFailed) {
    out(`keepalived (VRRPv3, advert_int 0.01) ${b.keepalivedWhere ?? ''}, 1 VIP, the same cuts → first request answered through the backup: ${stats(ka)}; metallb-ts/keepalived median ratio ${ratio(ours, ka)}${failures(kaFailed, cutTrials)}`);
    if (kaAnswerMs.length) out(`  the same echo server's answer took ${stats(kaAnswerMs)}`);
  }
  if (serf.length) out(`serf (memberlist LAN timing, MetalLB's), the same cuts → node2's agent marks node1 failed: ${stats(serf)}; metallb-ts failover is ${(quantile(serf, 0.5) / quantile(ours, 0.5)).toFixed(0)}× faster (median)`);
  const graceful: number[] = [];
  const gracefulAnswerMs: number[] = [];
  let gracefulFailed = 0;
  const handled: number[] = [];
  const afterHandled: number[] = [];
  for (let k = 0; k < gracefulTrials; k++) {
    try {
      const r = await gracefulTrial(b);
      if (r.ours === undefined) gracefulFailed++;
      else {
        graceful.push(r.ours);
        gracefulAnswerMs.push(r.answerMs!);
        if (r.handledMs !== undefined) {
          handled.push(r.handledMs);
          afterHandled.push(r.ours - r.handledMs);
        }
      }
    } catch (err) {
      gracefulFailed++;
      await failedTrial(b, `graceful trial ${k + 1}`, err);
    }
  }
  if (gracefulTrials > 0) {
    out(`metallb-ts, ${n} address(es), node1's speaker stopped (SIGTERM: memberlist leave) → first request answered through the new owner (its start): ${stats(graceful)}${failures(gracefulFailed, gracefulTrials)}`);
    if (handled.length) {
      out(`  of which node1's speaker handling the SIGTERM (its main thread; busy right after a start or a takeover): ${stats(handled)}; ` +
        `from there to the first request through the new owner: ${stats(afterHandled)}`);
    }
    if (gracefulAnswerMs.length) out(`  the echo server's answer to that request took ${stats(gracefulAnswerMs)}`);
  }
  out(`  (${machineLoad()})`);
}

// ---------------------------------------------------------------- soak

async function soak(b: Bench, seconds: number): Promise<void> {
  await heal(b);
  const before = await Promise.all(['node1', 'node2', 'node3'].map((n) => metrics(b, n)));
  const leaves = (t: string): number => Number(/^metallb_speaker_memberlist_events_total\{event="leave"\} (\d+)/m.exec(t)?.[1] ?? 0);
  const restartsBefore = (await b.lab.pods('metallb-system', 'component=speaker'))
    .reduce((sum, p) => sum + ((p.status as { containerStatuses?: { restartCount: number }[] } | undefined)?.containerStatuses ?? []).reduce((x, c) => x + c.restartCount, 0), 0);
  const prober = Prober.start(b.plan.client.netns, `http://${b.vip(0)}/`);
  // Busy loops in the nodes' namespaces, spread over the nodes: 2 saturate both CPUs; more raise the load average
  // (every runnable thread waits its turn), which is what flaps a detector.
  const burnerCount = opt('--soak-burners', 2);
  const burners = Array.from({ length: burnerCount }, (_, i) => b.plan.nodes[i % b.plan.nodes.length]!)
    .map((n) => spawnTracked('ip', ['netns', 'exec', n.netns, process.execPath, '-e', 'for(;;){}']));
  const load = spawnTracked(process.execPath, [BIN, 'lab', 'load', `http://${b.vip(Math.min(1, b.services - 1))}/`, '--concurrency', '20', '--duration', `${Math.min(600, seconds)}s`, '--timeout', '2s', '--name', b.lab.name]);
  const t0 = Date.now();
  let churn = 0;
  let samples = 0;
  let memberDrops = 0;
  let ownerMoves = 0;
  let scrapeFailures = 0;
  const loads: number[] = [];
  try {
    const churner = (async () => {
      while (Date.now() - t0 < seconds * 1000) {
        // A changed annotation is a Service update every speaker reprocesses.
        await b.api.mergePatch(`/api/v1/namespaces/${NS}/services/fo-${churn % b.services}`, { metadata: { annotations: { 'failover-bench/churn': String(churn) } } }).catch(() => undefined);
        churn++;
        await sleep(b.services > 1 ? 5 : 50);
      }
    })();
    while (Date.now() - t0 < seconds * 1000) {
      await sleep(1000);
      loads.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
      try {
        const ms = await Promise.all(['node1', 'node2', 'node3'].map((n) => metrics(b, n)));
        samples++;
        if (ms.some((m) => members(m) !== 3)) memberDrops++;
        if (announced(ms[0]!) !== b.services || announced(ms[1]!) !== 0 || announced(ms[2]!) !== 0) ownerMoves++;
      } catch {
        scrapeFailures++;
      }
    }
    await churner;
  } finally {
    for (const p of [...burners, load]) await stop(p);
    await prober.stop();
  }
  // A speaker restarted during the soak (its liveness probe timed out, say) starts its counters again: count
  // restarts apart, and leave events only where the counter went on.
  const restarts = async (): Promise<number> => (await b.lab.pods('metallb-system', 'component=speaker'))
    .reduce((sum, p) => sum + ((p.status as { containerStatuses?: { restartCount: number }[] } | undefined)?.containerStatuses ?? []).reduce((x, c) => x + c.restartCount, 0), 0);
  const restarted = (await restarts()) - restartsBefore;
  let falseLeaves = 0;
  for (const [k, n] of ['node1', 'node2', 'node3'].entries()) {
    const t = await metrics(b, n).catch(() => '');
    const d = leaves(t) - leaves(before[k]!);
    if (t && d >= 0) falseLeaves += d;
  }
  // What decided each false failure (the fast path's suspicions last a few ms; the slow path's longer, with
  // confirmations), from every speaker container instance's log (restarted ones too), kept beside the bench's output.
  const verdicts: string[] = [];
  const since = new Date(t0 - 30_000).toISOString();
  for (const node of ['node1', 'node2', 'node3']) {
    for (const file of speakerLogFiles(b, node)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (!/suspect timeout reached|member failed|refuting|answered after the timeout|host unreachable, suspecting/.test(line)) continue;
        try {
          // Every field but the envelope: the verdict's path (fast/slow) and its evidence.
          const { level: _l, ts, component: _c, msg, ...fields } = JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>;
          if (String(ts) < since) continue;
          verdicts.push(`  ${String(ts)} ${node}: ${String(msg)} ${JSON.stringify(fields)}`);
        } catch {
          /* not JSON */
        }
      }
    }
  }
  verdicts.sort();
  const answers = prober.answers.length;
  const foreign = prober.answers.filter((a) => a.body !== 'node1').length;
  out(`soak ${seconds} s, CPUs saturated (${burnerCount} busy loops, HTTP load through the Services, ${churn} Service updates): ` +
    `${falseLeaves} false failure(s) (memberlist leave events), ${restarted} speaker restart(s), ${ownerMoves}/${samples} samples with an address off node1, ${memberDrops}/${samples} with a speaker seeing < 3 members` +
    `${scrapeFailures ? `, ${scrapeFailures} metric scrapes failed` : ''}; the client's ${answers} answers: ${foreign} not from node1; load average ${quantile(loads, 0.5).toFixed(1)} median, ${Math.max(...loads).toFixed(1)} max`);
  for (const v of verdicts) out(v);
  // The detector's margins over the soak (since each speaker started): how near its evidence came to a false verdict.
  for (const n of ['node1', 'node2', 'node3']) {
    const t = await metrics(b, n).catch(() => '');
    if (t) out(`  ${n}'s detector: ${detectorFigures(t)}`);
  }
}

/** The fast failure detector's figures from a speaker's metrics, one line. */
function detectorFigures(text: string): string {
  const v = (name: string, label: string, value: string): number => {
    const m = new RegExp(`^${name}\\{${label}="${value}"\\} ([0-9.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const checks = (r: string): number => v('metallb_speaker_memberlist_reach_checks_total', 'result', r);
  const ms = (name: string, q: string): string => (v(name, 'quantile', q) * 1000).toFixed(1);
  return `reach checks ${checks('started')} (connected ${checks('connected')}, unreachable ${checks('unreachable')}, refused ${checks('refused')}, ` +
    `inconclusive ${checks('inconclusive')}, answered after the timeout ${checks('answered_late')}); SYN-ACK after p50 ${ms('metallb_speaker_memberlist_reach_connect_seconds', '0.5')} ms, ` +
    `p99 ${ms('metallb_speaker_memberlist_reach_connect_seconds', '0.99')}, max ${ms('metallb_speaker_memberlist_reach_connect_seconds', '1')}; ` +
    `suspicions fast ${v('metallb_speaker_memberlist_suspicions_total', 'path', 'fast')}, slow ${v('metallb_speaker_memberlist_suspicions_total', 'path', 'slow')}; ` +
    `gossip thread loop delay p99 ${ms('metallb_speaker_memberlist_loop_delay_seconds', '0.99')} ms, max ${ms('metallb_speaker_memberlist_loop_delay_seconds', '1')}`;
}

// ---------------------------------------------------------------- main

export async function runFailoverBench(): Promise<void> {
  if (labSkip) {
    out(`skipped: ${labSkip}`);
    return;
  }
  const trials = opt('--trials', 20);
  const many = opt('--many', 1000);
  const soakSeconds = opt('--soak', 0);
  const name = optString('--lab', TEST_LAB);
  out(`machine: ${machineLoad()}; lab "${name}"; ${trials} trials`);
  const t0 = Date.now();
  // The default lab is shared with the lab tests: take their lock. A named lab is ours alone.
  const lab = await startLab(undefined, { nodes: 3, name, lock: name === TEST_LAB });
  let b: Bench | undefined;
  try {
    const plan = makePlan({ name, nodes: 3 });
    out(`lab up: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    b = await setup(lab, plan);
    if (!flag('--skip-keepalived')) await startKeepalived(b);
    const serfTrials = flag('--skip-serf') ? 0 : Math.min(trials, opt('--serf-trials', 3));
    if (serfTrials > 0) await startSerf(b);
    await addServices(b, 0, 1);
    if (trials > 0) await series(b, trials, opt('--graceful-trials', 20), serfTrials);
    if (many > 1) {
      const t = Date.now();
      await addServices(b, 1, many);
      out(`(${many} Services created and announced by node1 in ${((Date.now() - t) / 1000).toFixed(1)} s)`);
      const manyTrials = opt('--many-trials', 20);
      if (manyTrials > 0) await series(b, manyTrials, opt('--graceful-trials', 20), 0);
    }
    if (soakSeconds > 0) await soak(b, soakSeconds);
  } finally {
    await Promise.all([...children].map(stop));
    const keep = optString('--keep-logs', '');
    if (b && keep) {
      // The speakers' logs outlive the lab: every container instance, per node.
      for (const node of ['node1', 'node2', 'node3']) {
        mkdirSync(join(keep, node), { recursive: true });
        for (const f of speakerLogFiles(b, node)) cpSync(f, join(keep, node, f.split('/').slice(-3).join('_')));
      }
      out(`(speaker logs kept in ${keep})`);
    }
    if (b) rmSync(b.dir, { recursive: true, force: true });
    b?.api.close();
    await lab.down();
    out(`(bench done in ${((Date.now() - t0) / 1000).toFixed(0)} s; lab down)`);
  }
}
