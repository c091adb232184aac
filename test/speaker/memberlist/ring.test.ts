// Ring monitoring in a cluster larger than a member's ring neighbourhood: in-process members on loopback, at five
// times the default timing so that nine of them in one process stay on time on a loaded CI machine.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { FAST_CONFIG, type TimingConfig } from '../../../src/speaker/memberlist/config.js';
import { ringNeighbours } from '../../../src/speaker/memberlist/detector.js';
import { type Member, MemberlistEngine } from '../../../src/speaker/memberlist/engine.js';
import { metallbKey } from '../../../src/speaker/memberlist/security.js';
import { eventually } from './gossip-lab.js';

const SCALE = 5;
const timing: Partial<TimingConfig> = {
  probeIntervalMs: FAST_CONFIG.probeIntervalMs * SCALE,
  probeTimeoutMs: FAST_CONFIG.probeTimeoutMs * SCALE,
  suspectAfterSilenceMs: FAST_CONFIG.suspectAfterSilenceMs * SCALE,
  reachCheckAfterMs: FAST_CONFIG.reachCheckAfterMs * SCALE,
  reachTimeoutMs: FAST_CONFIG.reachTimeoutMs * SCALE,
  reachRecheckMs: FAST_CONFIG.reachRecheckMs * SCALE,
  gossipIntervalMs: FAST_CONFIG.gossipIntervalMs * SCALE,
  initialJitterMs: FAST_CONFIG.initialJitterMs * SCALE,
  unreachableSuspicionMs: FAST_CONFIG.unreachableSuspicionMs * SCALE,
  localHealthHoldMs: FAST_CONFIG.localHealthHoldMs * SCALE,
  // One neighbour on each side: nine members are then well beyond the neighbourhood.
  monitoredPeers: 2,
};
const N = 9;
const key = metallbKey('ring-test');
const members: MemberlistEngine[] = [];
after(async () => {
  for (const m of members) await m.shutdown();
});

const states = (e: MemberlistEngine): Record<string, string> => Object.fromEntries(e.members().map((m) => [m.name, m.state]));
const total = (counter: string, of: MemberlistEngine[] = members): number => of.reduce((s, m) => s + (m.counters[counter] ?? 0), 0);

test('nine members, two watchers each: quiet gossip stays quiet, and a dead member is found by its watchers and known to all', async () => {
  for (let i = 1; i <= N; i++) {
    const m = new MemberlistEngine({ name: `node${i}`, bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [key], timing });
    await m.start();
    members.push(m);
  }
  for (const m of members.slice(1)) assert.equal(await m.join([`127.0.0.1:${members[0]!.port}`]), 1);
  for (const m of members) await eventually(() => states(m), (s) => Object.values(s).filter((x) => x === 'alive').length === N, 10_000, `${m.name} converged`);

  // Quiet: every pair of neighbours hears each other each interval, the rest are pinged round robin. Before ring
  // monitoring a round robin over too many members left each unheard past the fast path's threshold, and every
  // member ran reach checks and indirect rounds without end (thousands in these 3 s).
  const before = { checks: total('reach_checks'), udp: members.map((m) => m.counters['udp_received'] ?? 0), rr: members.map((m) => m.counters['pings_round_robin'] ?? 0) };
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 3000));
  const secs = (performance.now() - t0) / 1000;
  const checks = total('reach_checks') - before.checks;
  assert.ok(checks < 5 * N, `reach checks in a quiet cluster: ${checks}`);
  assert.equal(total('members_failed'), 0);
  const perInterval = 1000 / (timing.probeIntervalMs as number);
  members.forEach((m, i) => {
    const udp = ((m.counters['udp_received'] ?? 0) - before.udp[i]!) / secs;
    // Two neighbours, each heard once an interval (ping or ack), plus the round robin both ways; everyone pinging
    // everyone would be 8 per interval.
    assert.ok(udp < 4 * perInterval, `${m.name} received ${udp.toFixed(0)} packets/s, ${perInterval.toFixed(0)} per neighbour`);
    assert.ok((m.counters['pings_round_robin'] ?? 0) - before.rr[i]! > 0, `${m.name} pinged no member round robin`);
  });

  // A member stopped without a word: its two ring neighbours find it (their fast path), everyone learns it is dead.
  const victim = members[4]!;
  const watchers = ringNeighbours(members.map((m) => m.name), victim.name, 1);
  const survivors = members.filter((m) => m !== victim);
  const dead = survivors.map((m) => new Promise<Member>((r) => m.on('leave', (x: Member) => x.name === victim.name && r(x))));
  await victim.shutdown();
  const seen = await Promise.all(dead);
  assert.ok(seen.every((x) => x.state === 'dead'));
  // Only its watchers noticed its silence on their own: the others checked its host only when a watcher asked them to
  // (as relays), and whoever accused it did so on a check of its own that found the host gone.
  const c = (m: MemberlistEngine, k: string): number => m.counters[k] ?? 0;
  for (const m of survivors) {
    const own = c(m, 'reach_checks') - c(m, 'relay_reach_checks');
    if (own > 0) assert.ok(watchers.has(m.name), `${m.name} checked ${victim.name}'s host on its own but does not watch it (${[...watchers].join(', ')})`);
    if (c(m, 'fast_suspicions') > 0) assert.ok(c(m, 'reach_checks') > 0, `${m.name} accused ${victim.name} with no check of its own`);
  }
  assert.ok(survivors.some((m) => watchers.has(m.name) && c(m, 'reach_checks') > 0), `no watcher of ${victim.name} (${[...watchers].join(', ')}) checked it`);
  assert.ok(survivors.some((m) => c(m, 'fast_suspicions') > 0), 'nobody accused it through the fast path');
  // A suspicion others started about a member we do not watch is left to its watchers' verdict.
  await eventually(() => survivors.every((m) => states(m)[victim.name] === 'dead'), (ok) => ok, 5000, 'everyone holds it dead');
});
