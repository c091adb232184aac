// One of our members, on our fast timing, as the relay of a fast-path indirect probe (detector.ts relayAnswer), on
// loopback: a raw socket plays the requester, and the targets are members made known to the relay by an alive message
// whose address the test controls. A target whose host answers the relay's own reach check (a hung process: its TCP
// port accepts and never replies) gets no nack, whatever the timing; one whose host refuses (nothing listens) does.
// No wall-clock assertions: only what is (never) sent.
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { after, describe, test } from 'node:test';
import { ipToBytes, MemberlistEngine } from '../../../src/speaker/memberlist/engine.js';
import { encodeAlive, encodeIndirectPing, MessageType } from '../../../src/speaker/memberlist/messages.js';
import { type SecurityOptions, wrapPacket } from '../../../src/speaker/memberlist/packet.js';
import { Keyring, metallbKey } from '../../../src/speaker/memberlist/security.js';
import { eventually } from './gossip-lab.js';
import { LO, type Requester, requester, udp } from './relay-requester.js';

const key = metallbKey('fast-relay-test');
const sec: SecurityOptions = { keyring: new Keyring([key]), label: '', verifyIncoming: true, verifyOutgoing: true, encryptionVersion: 1 };
const VSN = Uint8Array.from([1, 5, 2, 0, 0, 0]);

describe('our member relays a fast-path indirect probe on its own evidence', () => {
  const engines: MemberlistEngine[] = [];
  const socks: Socket[] = [];
  const servers: Server[] = [];
  after(async () => {
    for (const e of engines) await e.shutdown();
    for (const s of socks) s.close();
    for (const s of servers) s.close();
  });

  /** A relay on our default (fast) timing, with `name` made known to it as alive at 127.0.0.1:`port`. */
  async function relayKnowing(relayName: string, name: string, port: number, reachCheckAfterMs?: number): Promise<{ relay: MemberlistEngine; ask: (seq: number) => void; asker: Requester }> {
    // Silence is only judged past 200 ms (a loaded machine stalls longer than our 20 ms floor); the fast path's
    // checks start after 10 ms unless the test says otherwise.
    const timing = { suspectAfterSilenceMs: 200, ...(reachCheckAfterMs !== undefined ? { reachCheckAfterMs } : {}) };
    const relay = new MemberlistEngine({ name: relayName, bindAddr: LO, bindPort: 0, secretKeys: [key], timing });
    engines.push(relay);
    await relay.start();
    const asker = await requester(sec);
    socks.push(asker.sock);
    asker.sock.send(wrapPacket(encodeAlive({ Incarnation: 1, Node: name, Addr: ipToBytes(LO), Port: port, Meta: new Uint8Array(0), Vsn: VSN }), sec, { crc: true, compress: false }), relay.port, LO);
    await eventually(() => relay.members().find((m) => m.name === name), (m) => m !== undefined, 10_000, `${relayName} knows ${name}`);
    const ask = (seq: number): void => {
      const req = encodeIndirectPing({ SeqNo: seq, Target: ipToBytes(LO), Port: port, Node: name, Nack: true, SourceAddr: ipToBytes(LO), SourcePort: asker.port, SourceNode: 'asker' });
      asker.sock.send(wrapPacket(req, sec, { crc: true, compress: false }), relay.port, LO);
    };
    return { relay, ask, asker };
  }

  test('a hung member whose host answers the relay\'s reach check: never a nack', async () => {
    // Its gossip port: TCP accepts (the kernel answers SYNs) and never replies; UDP is deaf.
    const deaf = await udp();
    socks.push(deaf);
    const port = deaf.address().port;
    const hung = createServer(() => undefined);
    servers.push(hung);
    await new Promise<void>((r, j) => hung.once('error', j).listen(port, LO, () => r()));
    const { relay, ask, asker } = await relayKnowing('relay-h', 'hung', port);
    await eventually(() => relay.counters['reach_connected'] ?? 0, (n) => n >= 1, 20_000, 'the relay found the host up');
    let seq = 100;
    const timer = setInterval(() => ask(seq++), 20);
    try {
      await eventually(() => relay.counters['indirect_nacks_withheld'] ?? 0, (n) => n >= 5, 30_000, 'nacks withheld');
    } finally {
      clearInterval(timer);
    }
    assert.deepEqual(asker.replies.filter((r) => r.type === MessageType.nackResp), [], 'no nack for a host that answers');
    assert.equal(relay.counters['indirect_nacks_sent'] ?? 0, 0);
  });

  test('a member whose host refuses (nothing listens): a nack, once the relay\'s own check says so', async () => {
    const deaf = await udp();
    socks.push(deaf);
    const { relay, ask, asker } = await relayKnowing('relay-g', 'gone', deaf.address().port);
    let seq = 200;
    const timer = setInterval(() => ask(seq++), 20);
    try {
      await eventually(() => asker.replies, (r) => r.some((x) => x.type === MessageType.nackResp), 30_000, 'a nack');
    } finally {
      clearInterval(timer);
    }
    assert.ok((relay.counters['reach_refused'] ?? 0) >= 1, JSON.stringify(relay.counters));
    assert.deepEqual(asker.replies.filter((r) => r.type === MessageType.ackResp), [], 'nothing heard from it: no ack');
  });

  test('asked about a member it has no current check of, the relay checks its host at once rather than waiting for its own watch', async () => {
    // The relay's own watch would check only after a minute of silence; one ask must still get its nack, from a
    // check the ask itself started.
    const deaf = await udp();
    socks.push(deaf);
    const { relay, ask, asker } = await relayKnowing('relay-a', 'gone-a', deaf.address().port, 60_000);
    ask(300);
    await eventually(() => asker.replies, (r) => r.some((x) => x.type === MessageType.nackResp && x.seq === 300), 30_000, 'a nack for the one ask');
    // One answer per ask, however many times the relay's evidence settles.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(asker.replies.filter((x) => x.seq === 300).length, 1, JSON.stringify(asker.replies));
    assert.equal(relay.counters['relay_reach_checks'], 1, JSON.stringify(relay.counters));
    assert.ok((relay.counters['reach_refused'] ?? 0) >= 1, JSON.stringify(relay.counters));
    assert.deepEqual(asker.replies.filter((r) => r.type === MessageType.ackResp), [], 'nothing heard from it: no ack');
  });

  test('asked about a member it already holds dead, the relay checks it all the same: a nack on its own evidence', async () => {
    // The requester may still see alive a member whose death we declared first.
    const deaf = await udp();
    socks.push(deaf);
    const { relay, ask, asker } = await relayKnowing('relay-d', 'gone-d', deaf.address().port, 60_000);
    await eventually(() => relay.members().find((m) => m.name === 'gone-d')?.state, (st) => st === 'dead', 30_000, 'the relay holds gone-d dead');
    ask(400);
    await eventually(() => asker.replies, (r) => r.some((x) => x.type === MessageType.nackResp && x.seq === 400), 30_000, 'a nack for the ask');
    assert.equal(relay.counters['relay_reach_checks'], 1, JSON.stringify(relay.counters));
    assert.equal(relay.counters['fast_indirect_rounds'] ?? 0, 0, 'a dead member\'s check asks nobody');
  });
});
