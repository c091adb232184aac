// `npm run bench -- memberlist-scale [--scale-members 9,26,50] [--scale-seconds 15]`: what a quiet cluster's gossip
// costs each member as the cluster grows, with ring monitoring (each member watches 4 ring neighbours, the rest
// round robin) beside everyone watching everyone (monitoredPeers N−1), in the same run. The members run in this one
// process on loopback, every timing ×10 so that 50 of them keep up on two cores: packets and checks per member scale
// back to the real timing by 10, CPU does not (one process, one thread: it saturates at ~1,000 ms/s).
import { FAST_CONFIG, type TimingConfig } from '../src/speaker/memberlist/config.js';
import { MemberlistEngine } from '../src/speaker/memberlist/engine.js';
import { metallbKey } from '../src/speaker/memberlist/security.js';
import { opt, optString, out, sleep } from './lib.js';

const SCALE = 10;
const SCALED: Partial<TimingConfig> = Object.fromEntries(
  (['probeIntervalMs', 'probeTimeoutMs', 'suspectAfterSilenceMs', 'reachCheckAfterMs', 'reachTimeoutMs', 'reachRecheckMs', 'gossipIntervalMs', 'initialJitterMs', 'unreachableSuspicionMs', 'localHealthHoldMs'] as const).map((k) => [k, FAST_CONFIG[k] * SCALE]),
);

interface Figures {
  packetsPerMemberPerS: number;
  reachChecks: number;
  suspicions: number;
  declaredDead: number;
  cpuMsPerS: number;
}

async function quietCluster(members: number, monitoredPeers: number, seconds: number): Promise<Figures> {
  const key = metallbKey('bench-memberlist-scale');
  const ms: MemberlistEngine[] = [];
  try {
    for (let i = 1; i <= members; i++) {
      const m = new MemberlistEngine({ name: `node${i}`, bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [key], timing: { ...SCALED, monitoredPeers } });
      await m.start();
      ms.push(m);
    }
    for (const m of ms.slice(1)) await m.join([`127.0.0.1:${ms[0]!.port}`]);
    await sleep(3000);
    const sum = (k: string): number => ms.reduce((s, m) => s + (m.counters[k] ?? 0), 0);
    const before = { udp: sum('udp_received'), checks: sum('reach_checks'), susp: sum('suspicions'), dead: sum('members_failed') };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      packetsPerMemberPerS: (sum('udp_received') - before.udp) / members / secs,
      reachChecks: sum('reach_checks') - before.checks,
      suspicions: sum('suspicions') - before.susp,
      declaredDead: sum('members_failed') - before.dead,
      cpuMsPerS: (cpu.user + cpu.system) / 1000 / secs,
    };
  } finally {
    for (const m of ms) await m.shutdown();
  }
}

const line = (f: Figures): string =>
  `${(f.packetsPerMemberPerS * SCALE).toFixed(0)} packets/s per member at the real timing, ${f.reachChecks} reach checks, ${f.suspicions} suspicions, ${f.declaredDead} declared dead, ${f.cpuMsPerS.toFixed(0)} ms/s CPU (all members, ×10 timing)`;

export async function runMemberlistScaleBench(): Promise<void> {
  const sizes = optString('--scale-members', '9,26,50').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('bench: --scale-members needs a list of member counts of 2 or more, e.g. 9,26,50');
  const seconds = opt('--scale-seconds', 15);
  out(`quiet clusters, ${seconds} s each, in one process on loopback at ×${SCALE} timing`);
  for (const n of sizes) {
    const ring = await quietCluster(n, FAST_CONFIG.monitoredPeers, seconds);
    out(`${n} members, ring (${FAST_CONFIG.monitoredPeers} watched): ${line(ring)}`);
    const all = await quietCluster(n, n - 1, seconds);
    out(`${n} members, everyone watched:  ${line(all)}`);
    out(`${n} members: ring / everyone, packets per member ${(ring.packetsPerMemberPerS / all.packetsPerMemberPerS).toFixed(2)}×`);
  }
}
