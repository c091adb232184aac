// `npm run bench -- memberlist [--trials N] [--serf-trials N] [--soak SECONDS] [--skip-serf]` (as root):
// failure detection after a member's link is cut (no goodbye) — our default timing beside serf
// (hashicorp/memberlist) with MetalLB's LAN timing, in the same run and the same namespace LAN —
// graceful leave hand-over, and false suspicions/failures while the CPUs are saturated.
import { type ChildProcess, spawn } from 'node:child_process';
import { type Agent, GossipLab } from '../test/speaker/memberlist/gossip-lab.js';
import { metallbKey } from '../src/speaker/memberlist/security.js';
import { flag, machineLoad, opt, out, sleep, stats, until } from './lib.js';

const SECRET = 'bench-memberlist-secret';
async function allAlive(agents: Agent[], names: string[]): Promise<boolean> {
  for (const a of agents) {
    const m = await a.members();
    if (!names.every((n) => m[n] === 'alive')) return false;
  }
  return true;
}

function leaveEventAfter(a: Agent, name: string, t0: number): number | undefined {
  const l = a.lines.find((x) => x.event === 'leave' && x.member?.name === name && (x.t ?? 0) >= t0);
  return l?.t;
}

async function benchOurs(lab: GossipLab, trials: number): Promise<void> {
  // serf's delegate versions, so that a serf agent can sit in the cluster as an observer (a MetalLB speaker
  // in a half-migrated cluster): it learns of a death from our dead message, not from its own detector.
  const common = ['--secret', SECRET, '--log-level', 'warn', '--delegate-version', '2,5,5'];
  const observer = lab.serf(5, 'serf-observer', ['-encrypt', metallbKey(SECRET).toString('base64'), '-profile', 'lan', '-log-level', 'warn']);
  const obs: Agent[] = [];
  for (let i = 1; i <= 3; i++) {
    const a = lab.agent(i, `node${i}`, [...common, ...(i > 1 ? ['--join', lab.ip(1)] : [])]);
    obs.push(a);
    await a.waitFor((l) => l.ready === true, 30_000, 'ready');
  }
  const victim = lab.agent(4, 'victim', [...common, '--join', lab.ip(1)]);
  await victim.waitFor((l) => l.ready === true, 30_000, 'ready');
  await until('serf observer joins', () => /Successfully joined/.test(lab.serfCmd(5, ['join', `${lab.ip(1)}:7946`])), 30_000, 20);
  const names = ['node1', 'node2', 'node3', 'victim'];
  const first: number[] = [];
  const all: number[] = [];
  const serfSaw: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    await until('all alive before a trial', () => allAlive([...obs, victim], names), 30_000, 20);
    await until('serf observer sees the victim alive', () => lab.serfMembers(5)['victim'] === 'alive', 30_000, 20);
    await sleep(300 + Math.random() * 300);
    const t0 = Date.now();
    lab.cutLink(4);
    await until('observers mark the victim dead', () => obs.every((a) => leaveEventAfter(a, 'victim', t0) !== undefined), 15_000, 20);
    await until('serf observer marks the victim failed', () => lab.serfMembers(5)['victim'] === 'failed', 30_000, 20);
    serfSaw.push(Date.now() - t0);
    const ts = obs.map((a) => leaveEventAfter(a, 'victim', t0)! - t0);
    first.push(Math.min(...ts));
    all.push(Math.max(...ts));
    lab.restoreLink(4);
    await victim.ask(`join ${lab.ip(1)}`, (l) => l.joined !== undefined);
  }
  out(`ours (fast timing, 4 members, link cut):  first member to declare it dead: ${stats(first)}`);
  out(`                                          every member has declared it:   ${stats(all)}`);
  out(`  a serf agent (memberlist LAN timing, as a MetalLB speaker) in the same cluster marks it failed: ${stats(serfSaw)} (50 ms polling; its own detector needs 5 s or more)`);
  // The machine's share in these figures: how late the observers' gossip threads ran, how slow pings were.
  const c = await Promise.all(obs.map((a) => a.ask('counters', (l) => l.counters !== undefined)));
  const worst = (k: string): number => Math.max(...c.map((x) => x.counters?.[k] ?? 0));
  out(`  (observers' gossip threads: loop delay p99 ${worst('loop_delay_p99_ms')} ms, max ${worst('loop_delay_max_ms')} ms; ping RTT p99 ${worst('ping_rtt_p99_ms')} ms, max ${worst('ping_rtt_max_ms')} ms; ${machineLoad()})`);

  // Graceful stop: a member leaves; how long until the others act on it.
  const leaves: number[] = [];
  await victim.stop();
  for (let trial = 0; trial < Math.min(10, trials); trial++) {
    const name = `leaver${trial}`;
    const l = lab.agent(4, name, [...common, '--join', lab.ip(1)]);
    await l.waitFor((x) => x.ready === true, 30_000, 'ready');
    await until('leaver seen alive', () => allAlive(obs, [name]), 20_000, 20);
    await sleep(200);
    const t0 = Date.now();
    l.proc.stdin!.write('leave 1000\n');
    await until('observers see the leave', () => obs.every((a) => leaveEventAfter(a, name, t0) !== undefined), 10_000, 20);
    leaves.push(Math.max(...obs.map((a) => leaveEventAfter(a, name, t0)! - t0)));
    await l.stop();
  }
  out(`ours, graceful leave → every member knows:  ${stats(leaves)}`);
  for (const a of obs) await a.stop();
  const gone = new Promise((r) => observer.once('exit', r));
  observer.kill('SIGKILL');
  await gone;
}

async function benchSerf(lab: GossipLab, trials: number): Promise<void> {
  const key = metallbKey(SECRET).toString('base64');
  const procs: ChildProcess[] = [];
  for (let i = 1; i <= 4; i++) procs.push(lab.serf(i, i === 4 ? 'victim' : `serf${i}`, ['-encrypt', key, '-profile', 'lan', '-log-level', 'warn']));
  for (let i = 1; i <= 4; i++) await until(`serf ${i} up`, () => lab.serfCmd(i, ['members']).includes(i === 4 ? 'victim' : `serf${i}`), 20_000, 20);
  for (let i = 2; i <= 4; i++) await until('serf join', () => /Successfully joined/.test(lab.serfCmd(i, ['join', `${lab.ip(1)}:7946`])), 20_000, 20);
  const serfAlive = (i: number): boolean => {
    const m = lab.serfMembers(i);
    return ['serf1', 'serf2', 'serf3', 'victim'].every((n) => m[n] === 'alive');
  };
  const times: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    await until('serf all alive', () => serfAlive(1) && serfAlive(4), 60_000, 20);
    await sleep(300 + Math.random() * 700);
    const t0 = Date.now();
    lab.cutLink(4);
    await until('serf marks the victim failed', () => lab.serfMembers(1)['victim'] === 'failed', 30_000, 20);
    times.push(Date.now() - t0);
    lab.restoreLink(4);
    await until('serf rejoin', () => /Successfully joined/.test(lab.serfCmd(4, ['join', `${lab.ip(1)}:7946`])), 20_000, 20);
  }
  out(`serf (memberlist LAN timing, MetalLB's default), first member to mark it failed: ${stats(times)}`);
  for (const p of procs) {
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }
}

async function benchSoak(lab: GossipLab, seconds: number): Promise<void> {
  const common = ['--secret', SECRET, '--log-level', 'warn'];
  const agents: Agent[] = [];
  for (let i = 1; i <= 4; i++) {
    const a = lab.agent(i, `soak${i}`, [...common, ...(i > 1 ? ['--join', lab.ip(1)] : [])]);
    agents.push(a);
    await a.waitFor((l) => l.ready === true, 30_000, 'ready');
  }
  const names = agents.map((a) => a.name);
  await until('soak cluster converged', () => allAlive(agents, names), 30_000, 20);
  await sleep(1000);
  // Saturate both cores with busy loops, and block one member's main thread half of the time.
  const burners = [0, 1].map(() => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  const from = agents.map((a) => a.lines.length);
  const t0 = Date.now();
  let blocks = 0;
  try {
    while (Date.now() - t0 < seconds * 1000) {
      agents[0]!.proc.stdin!.write('busy 500\n');
      blocks++;
      await sleep(1000);
    }
  } finally {
    for (const b of burners) b.kill('SIGKILL');
  }
  let suspicions = 0;
  let failures = 0;
  agents.forEach((a, i) => {
    for (const l of a.lines.slice(from[i])) {
      if (l.event === 'suspect') suspicions++;
      if (l.event === 'leave') failures++;
    }
  });
  const counters = await Promise.all(agents.map((a) => a.ask('counters', (l) => l.counters !== undefined)));
  const refutes = counters.reduce((s, c) => s + (c.counters?.['refutes'] ?? 0), 0);
  const worst = Math.max(...counters.map((c) => c.counters?.['loop_delay_max_ms'] ?? 0));
  out(`ours under load (${seconds} s, 2 busy loops on 2 cores, ${blocks} × 500 ms main-thread blocks in soak1): ${suspicions} suspicions, ${failures} false failures, ${refutes} refutations; worst gossip-thread stall seen ${worst} ms`);
  for (const a of agents) await a.stop();
}

export async function runMemberlistBench(): Promise<void> {
  if (process.getuid?.() !== 0) {
    out('memberlist: skipped (needs root for network namespaces)');
    return;
  }
  const lab = new GossipLab('bm', 93);
  try {
    lab.setup(5);
    await benchOurs(lab, opt('--trials', 20));
    if (!flag('--skip-serf')) await benchSerf(lab, opt('--serf-trials', 20));
    await benchSoak(lab, opt('--soak', 60));
  } finally {
    await lab.cleanup();
  }
}
