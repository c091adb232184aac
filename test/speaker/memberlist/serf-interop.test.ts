// Our members and Debian's serf agent (HashiCorp's, on hashicorp/memberlist) on one LAN of network
// namespaces, encrypted with the key MetalLB derives from its `memberlist` Secret. As root.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metallbKey } from '../../../src/speaker/memberlist/security.js';
import { type Agent, eventually, GossipLab } from './gossip-lab.js';

const SECRET = 'Ur5lq0YZ3p6Xe2v9CqQmxw'; // shaped like the 22-character secret MetalLB's controller makes
const serfKey = metallbKey(SECRET).toString('base64');
// serf's memberlist delegate versions; our default (0,0,0) is MetalLB's, which serf would refuse to merge.
const SERF_DELEGATE = ['--delegate-version', '2,5,5'];
const isRoot = process.getuid?.() === 0;

describe('gossip with serf, encrypted with the MetalLB key', { skip: !isRoot && 'needs root (network namespaces)' }, () => {
  const lab = new GossipLab('si', 91);
  const agents: Agent[] = [];
  before(() => lab.setup(5));
  after(async () => {
    for (const a of agents) a.kill();
    await lab.cleanup();
  });

  test('three of ours converge; serf joins and everyone sees everyone alive', async () => {
    for (let i = 1; i <= 3; i++) {
      const a = lab.agent(i, `node${i}`, ['--secret', SECRET, ...SERF_DELEGATE, ...(i > 1 ? ['--join', lab.ip(1)] : [])]);
      agents.push(a);
      await a.waitFor((l) => l.ready === true, 20_000, 'ready');
    }
    for (const a of agents) {
      await eventually(() => a.members(), (m) => ['node1', 'node2', 'node3'].every((n) => m[n] === 'alive'), 15_000, `${a.name} sees 3 alive`);
    }
    lab.serf(4, 'serf4', ['-encrypt', serfKey, '-profile', 'lan']);
    await eventually(() => lab.serfCmd(4, ['members']), (o) => o.includes('serf4'), 15_000, 'serf RPC up');
    assert.match(lab.serfCmd(4, ['join', `${lab.ip(2)}:7946`]), /Successfully joined cluster by contacting 1 nodes/);
    await eventually(() => lab.serfMembers(4), (m) => ['node1', 'node2', 'node3', 'serf4'].every((n) => m[n] === 'alive'), 15_000, 'serf sees all alive');
    for (const a of agents) await eventually(() => a.members(), (m) => m['serf4'] === 'alive', 15_000, `${a.name} sees serf4`);
  });

  test('serf killed with SIGKILL: ours mark it failed fast', async () => {
    const serf = lab.serf(5, 'serf5', ['-encrypt', serfKey, '-profile', 'lan', '-join', `${lab.ip(1)}:7946`]);
    for (const a of agents) await eventually(() => a.members(), (m) => m['serf5'] === 'alive', 15_000, `${a.name} sees serf5`);
    serf.kill('SIGKILL');
    // How fast is the bench's business (bench/memberlist.ts); here only that it happens.
    for (const a of agents) await eventually(() => a.members(), (m) => m['serf5'] === 'dead', 30_000, `${a.name} marks serf5 dead`);
  });

  test("serf's link cut (no goodbye): ours mark it failed", async () => {
    lab.cutLink(4);
    for (const a of agents) await eventually(() => a.members(), (m) => m['serf4'] === 'dead', 10_000, `${a.name} marks serf4 dead`);
    lab.restoreLink(4);
    // It comes back: serf refutes our verdict when it hears of it (push/pull or gossip).
    assert.match(lab.serfCmd(4, ['join', `${lab.ip(1)}:7946`]), /Successfully joined/);
    for (const a of agents) await eventually(() => a.members(), (m) => m['serf4'] === 'alive', 20_000, `${a.name} sees serf4 back`);
  });

  test('one of ours killed with SIGKILL: serf marks it failed', async () => {
    agents[2]!.kill('SIGKILL');
    await eventually(() => lab.serfMembers(4), (m) => m['node3'] === 'failed', 30_000, 'serf marks node3 failed');
    for (const a of agents.slice(0, 2)) await eventually(() => a.members(), (m) => m['node3'] === 'dead', 10_000, `${a.name} marks node3 dead`);
  });

  test('a graceful leave of ours: serf shows it left; serf leaving: ours show it left', async () => {
    const t0 = Date.now();
    const l = await agents[1]!.ask('leave 1000', (x) => x.left === true);
    // Bounded by its 1 s timeout (the margin is a loaded CI machine's).
    assert.ok((l.ms ?? 0) < 3000, `leave took ${l.ms} ms`);
    // serf shows "left" only for members that also sent serf's own leave intent (a serf message);
    // a memberlist leave it shows as "failed", but at once, not after its ~6 s suspicion.
    await eventually(() => lab.serfMembers(4), (m) => m['node2'] === 'failed' || m['node2'] === 'left', 15_000, 'serf drops node2');
    // serf's own failure detection needs at least 5 s (1 s probe + 4 s suspicion): sooner means it got the leave.
    assert.ok(Date.now() - t0 < 4500, `serf took ${Date.now() - t0} ms to see the leave`);
    await eventually(() => agents[0]!.members(), (m) => m['node2'] === 'left', 5000, 'node1 shows node2 left');
    lab.serfCmd(4, ['leave']);
    await eventually(() => agents[0]!.members(), (m) => m['serf4'] === 'left', 15_000, 'node1 shows serf4 left');
  });
});

describe('gossip with serf, unencrypted; a wrong key', { skip: !isRoot && 'needs root (network namespaces)' }, () => {
  const lab = new GossipLab('su', 92);
  const agents: Agent[] = [];
  before(() => lab.setup(3));
  after(async () => {
    for (const a of agents) a.kill();
    await lab.cleanup();
  });

  test('unencrypted: serf and ours see each other', async () => {
    const a = lab.agent(1, 'plain1', SERF_DELEGATE);
    agents.push(a);
    await a.waitFor((l) => l.ready === true, 20_000, 'ready');
    lab.serf(2, 'serf2', ['-profile', 'lan', '-join', `${lab.ip(1)}:7946`]);
    await eventually(() => a.members(), (m) => m['serf2'] === 'alive', 20_000, 'ours sees serf2');
    await eventually(() => lab.serfMembers(2), (m) => m['plain1'] === 'alive', 15_000, 'serf sees plain1');
  });

  test('a member with another key does not join, and says why', async () => {
    const b = lab.agent(3, 'wrongkey', ['--secret', 'not-the-secret', ...SERF_DELEGATE, '--join', lab.ip(1)]);
    agents.push(b);
    const joined = await b.waitFor((l) => l.joined !== undefined, 20_000, 'join result');
    assert.equal(joined.joined, 0);
    assert.match(b.stderr, /failed to join/);
    await new Promise((r) => setTimeout(r, 1000));
    const m = await agents[0]!.members();
    assert.equal(m['wrongkey'], undefined);
    // The unencrypted member refuses the encrypted stream and logs the reason in its counters.
    const c = await agents[0]!.ask('counters', (x) => x.counters !== undefined);
    assert.ok(Object.keys(c.counters!).some((k) => k.startsWith('dropped_')), JSON.stringify(c.counters));
  });
});
