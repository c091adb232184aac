// The delegate protocol versions a member advertises (Vsn[3..5]) and memberlist's check of them on push/pull
// (state.go verifyProtocol: every alive member's current version must lie within every member's [min, max]).
// MetalLB's speakers run memberlist without a Delegate: (0,0,0), our default. serf advertises its own protocol range
// (2,5,5). The two cannot be in one cluster: that is why the serf tests (and the lab's serf check) tell our members to
// advertise serf's versions, and why our default must stay MetalLB's.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { MemberlistEngine, type MemberlistLogger } from '../../../src/speaker/memberlist/engine.js';
import { metallbKey } from '../../../src/speaker/memberlist/security.js';
import { type Agent, eventually, GossipLab } from './gossip-lab.js';

const key = metallbKey('delegate-version-test');
const SERF = { min: 2, max: 5, cur: 5 };
const isRoot = process.getuid?.() === 0;

function recorder(): { logger: MemberlistLogger; text: () => string } {
  const lines: string[] = [];
  const rec = (obj: object, msg: string): void => void lines.push(`${msg} ${JSON.stringify(obj)}`);
  return { logger: { debug: rec, info: rec, warn: rec, error: rec }, text: () => lines.join('\n') };
}

describe('delegate protocol versions', () => {
  const engines: MemberlistEngine[] = [];
  after(async () => {
    for (const e of engines) await e.shutdown();
  });
  const member = async (name: string, delegateVersion?: typeof SERF, logger?: MemberlistLogger): Promise<MemberlistEngine> => {
    const e = new MemberlistEngine({ name, bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [key], timing: { suspectAfterSilenceMs: 200 }, ...(delegateVersion ? { delegateVersion } : {}), ...(logger ? { logger } : {}) });
    engines.push(e);
    await e.start();
    return e;
  };

  test("our default is MetalLB's: no delegate, (0,0,0)", async () => {
    const a = await member('default');
    assert.deepEqual(a.localMember().delegate, { min: 0, max: 0, cur: 0 });
    assert.deepEqual(a.localMember().protocol, { min: 1, max: 5, cur: 2 });
  });

  test("a member advertising serf's versions and one advertising MetalLB's refuse each other, both ways", async () => {
    const metallbLike = recorder();
    const serfLike = recorder();
    const m = await member('metallb-like', undefined, metallbLike.logger);
    const s = await member('serf-like', SERF, serfLike.logger);
    // serf-like joins metallb-like: each side checks the other's state and refuses it.
    assert.equal(await s.join([`127.0.0.1:${m.port}`]), 0);
    assert.match(serfLike.text(), /delegate protocol version \(\d\) is incompatible/);
    assert.match(metallbLike.text(), /delegate protocol version \(\d\) is incompatible/);
    assert.equal(await m.join([`127.0.0.1:${s.port}`]), 0);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(m.members().map((x) => x.name), ['metallb-like']);
    assert.deepEqual(s.members().map((x) => x.name), ['serf-like']);
    // Alike, they join.
    const m2 = await member('metallb-like-2');
    assert.equal(await m2.join([`127.0.0.1:${m.port}`]), 1);
    const s2 = await member('serf-like-2', SERF);
    assert.equal(await s2.join([`127.0.0.1:${s.port}`]), 1);
  });
});

describe('serf and our default delegate versions', { skip: !isRoot && 'needs root (network namespaces)' }, () => {
  const lab = new GossipLab('dv', 7, { prefix: 'tpb', net: '10.92' });
  const agents: Agent[] = [];
  after(async () => {
    for (const a of agents) a.kill();
    await lab.cleanup();
  });

  test("serf cannot join a member with MetalLB's (0,0,0); with serf's (2,5,5) it can", async () => {
    lab.setup(3);
    const metallbLike = lab.agent(1, 'metallb-like', []);
    const serfLike = lab.agent(2, 'serf-like', ['--delegate-version', '2,5,5']);
    agents.push(metallbLike, serfLike);
    for (const a of agents) await a.waitFor((l) => l.ready === true, 30_000, 'ready');
    lab.serf(3, 'serf3', ['-profile', 'lan']);
    await eventually(() => lab.serfCmd(3, ['members']), (o) => o.includes('serf3'), 30_000, 'serf RPC up');
    assert.match(lab.serfCmd(3, ['join', `${lab.ip(1)}:7946`]), /delegate protocol version \(\d\) is incompatible/);
    assert.match(lab.serfCmd(3, ['join', `${lab.ip(2)}:7946`]), /Successfully joined cluster by contacting 1 nodes/);
    await eventually(() => lab.serfMembers(3), (m) => m['serf-like'] === 'alive', 30_000, 'serf sees serf-like');
    assert.equal(lab.serfMembers(3)['metallb-like'], undefined);
  });
});
