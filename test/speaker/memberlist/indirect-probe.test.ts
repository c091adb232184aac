// Indirect probes (memberlist's ping-req): three of our members on a LAN of network namespaces, where node1 and node2
// lose every packet between them (the bridge drops them, UDP and TCP, both ways) but node3 reaches both. node1's own
// probes of node2 fail; node3's relayed acks must keep node2 alive in node1's view. When node2 is really gone, node1
// must still declare it dead. As root.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Agent, type AgentLine, eventually, GossipLab } from './gossip-lab.js';

const isRoot = process.getuid?.() === 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Membership events `a` printed about `member` since `since` (ms epoch). */
const eventsAbout = (a: Agent, member: string, since: number): AgentLine[] => a.lines.filter((l) => l.event && l.member?.name === member && (l.t ?? 0) >= since);

async function counters(a: Agent): Promise<Record<string, number>> {
  return (await a.ask('counters', (x) => x.counters !== undefined)).counters!;
}

for (const preset of ['fast', 'lan'] as const) {
  // memberlist's LAN timing probes each of 2 peers every 2 s: hold the partition long enough for several rounds.
  const holdMs = preset === 'fast' ? 6000 : 12_000;
  describe(`indirect probes, ${preset} timing`, { skip: !isRoot && 'needs root (network namespaces)' }, () => {
    const lab = new GossipLab(preset === 'fast' ? 'ipf' : 'ipl', preset === 'fast' ? 1 : 2, { prefix: 'tpb', net: '10.92' });
    const agents: Agent[] = [];
    before(async () => {
      lab.setup(3);
      for (let i = 1; i <= 3; i++) {
        const a = lab.agent(i, `node${i}`, ['--preset', preset, ...(i > 1 ? ['--join', lab.ip(1)] : [])]);
        agents.push(a);
        await a.waitFor((l) => l.ready === true, 30_000, 'ready');
      }
      for (const a of agents) await eventually(() => a.members(), (m) => ['node1', 'node2', 'node3'].every((n) => m[n] === 'alive'), 30_000, `${a.name} sees 3 alive`);
    });
    after(async () => {
      for (const a of agents) a.kill();
      await lab.cleanup();
    });

    test('node1 and node2 cannot reach each other, node3 can: both stay alive in each other\'s view through node3', async () => {
      const [a, b, c] = agents as [Agent, Agent, Agent];
      const before3 = await counters(c);
      const since = Date.now();
      lab.partition(1, 2);
      await sleep(holdMs);
      const dropped = lab.partitionDrops();
      assert.ok(dropped > 0, 'the partition dropped nothing: node1 and node2 did not try to talk');
      // The verdicts' log lines say which path of the detector decided.
      const verdicts = (x: Agent): string => x.stderr.split('\n').filter((l) => l.includes('marking member as failed')).slice(-5).join('\n');
      assert.equal(eventsAbout(a, 'node2', since).filter((l) => l.event === 'leave').length, 0, `node1 declared node2 dead:\n${verdicts(a)}`);
      assert.equal(eventsAbout(b, 'node1', since).filter((l) => l.event === 'leave').length, 0, `node2 declared node1 dead:\n${verdicts(b)}`);
      assert.equal((await a.members())['node2'], 'alive');
      assert.equal((await b.members())['node1'], 'alive');
      const after3 = await counters(c);
      const relayed = (after3['indirect_acks_relayed'] ?? 0) - (before3['indirect_acks_relayed'] ?? 0);
      assert.ok(relayed > 0, `node3 relayed no acks: ${JSON.stringify(after3)}`);
      const ca = await counters(a);
      assert.ok((ca['acks_indirect'] ?? 0) > 0, `node1 received no relayed ack: ${JSON.stringify(ca)}`);
    });

    test('node2 really gone (killed), still cut off from node1: node1 declares it dead through node3', async () => {
      const [a, b, c] = agents as [Agent, Agent, Agent];
      await eventually(() => a.members(), (m) => m['node2'] === 'alive', 30_000, 'node1 sees node2 alive before it is killed');
      await b.stop();
      await eventually(() => a.members(), (m) => m['node2'] === 'dead', 60_000, 'node1 marks node2 dead');
      await eventually(() => c.members(), (m) => m['node2'] === 'dead', 60_000, 'node3 marks node2 dead');
      lab.heal();
    });
  });
}
