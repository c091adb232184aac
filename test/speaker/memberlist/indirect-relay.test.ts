// One of our members as the relay of an indirect probe (memberlist's ping-req), driven by a raw socket that plays the
// requester, on loopback: the relayed ack carries the requester's sequence number and goes to the address the request
// names; a target that does not answer gets a nack after the relay's probe timeout, and only when asked for one.
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { after, describe, test } from 'node:test';
import { LAN_CONFIG } from '../../../src/speaker/memberlist/config.js';
import { ipToBytes, MemberlistEngine } from '../../../src/speaker/memberlist/engine.js';
import { encodeIndirectPing, MessageType } from '../../../src/speaker/memberlist/messages.js';
import { type SecurityOptions, wrapPacket } from '../../../src/speaker/memberlist/packet.js';
import { Keyring, metallbKey } from '../../../src/speaker/memberlist/security.js';
import { eventually } from './gossip-lab.js';
import { LO, requester, udp } from './relay-requester.js';

const key = metallbKey('indirect-relay-test');
const sec: SecurityOptions = { keyring: new Keyring([key]), label: '', verifyIncoming: true, verifyOutgoing: true, encryptionVersion: 1 };

describe('our member relays an indirect probe', () => {
  const engines: MemberlistEngine[] = [];
  const socks: Socket[] = [];
  after(async () => {
    for (const e of engines) await e.shutdown();
    for (const s of socks) s.close();
  });

  test("a live target's ack comes back under the requester's sequence number, to the reply address it named", async () => {
    // memberlist's timing with a probe interval far longer than any test: a nack timed by it would never come.
    const timing = { ...LAN_CONFIG, probeTimeoutMs: 100, probeIntervalMs: 120_000 };
    const relay = new MemberlistEngine({ name: 'relay', bindAddr: LO, bindPort: 0, secretKeys: [key], timing });
    const target = new MemberlistEngine({ name: 'target', bindAddr: LO, bindPort: 0, secretKeys: [key], timing });
    engines.push(relay, target);
    await relay.start();
    await target.start();
    const asker = await requester(sec);
    const replyTo = await requester(sec);
    socks.push(asker.sock, replyTo.sock);
    // Sent from `asker`, but naming `replyTo` as the source, as a member behind another address would.
    const req = encodeIndirectPing({ SeqNo: 4242, Target: ipToBytes(LO), Port: target.port, Node: 'target', Nack: true, SourceAddr: ipToBytes(LO), SourcePort: replyTo.port, SourceNode: 'asker' });
    asker.sock.send(wrapPacket(req, sec, { crc: false, compress: false }), relay.port, LO);
    await eventually(() => replyTo.replies, (r) => r.some((x) => x.type === MessageType.ackResp && x.seq === 4242), 20_000, 'the relayed ack');
    assert.deepEqual(asker.replies, [], 'replies go to SourceAddr:SourcePort, not to the packet source');
    // Acked: no nack follows, even after the probe timeout has long passed.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(replyTo.replies.filter((x) => x.type === MessageType.nackResp), []);
    assert.equal(relay.counters['indirect_acks_relayed'], 1);
  });

  test('a silent target: a nack after the probe timeout when asked for one (not after the probe interval), none otherwise', async () => {
    const timing = { ...LAN_CONFIG, probeTimeoutMs: 100, probeIntervalMs: 120_000 };
    const relay = new MemberlistEngine({ name: 'relay2', bindAddr: LO, bindPort: 0, secretKeys: [key], timing });
    engines.push(relay);
    await relay.start();
    const asker = await requester(sec);
    // Bound but deaf: pings to it vanish, as to a member whose process hangs.
    const deaf = await udp();
    socks.push(asker.sock, deaf);
    const ask = (seq: number, nack: boolean): void => {
      const req = encodeIndirectPing({ SeqNo: seq, Target: ipToBytes(LO), Port: deaf.address().port, Node: 'gone', Nack: nack, SourceAddr: ipToBytes(LO), SourcePort: asker.port, SourceNode: 'asker' });
      asker.sock.send(wrapPacket(req, sec, { crc: true, compress: false }), relay.port, LO);
    };
    ask(7, true);
    ask(8, false);
    // memberlist's requester counts only nacks that arrive before its own probe interval ends, one probe timeout
    // after it asked: a relay that waited its probe interval (two minutes here) would never be counted.
    await eventually(() => asker.replies, (r) => r.some((x) => x.type === MessageType.nackResp && x.seq === 7), 20_000, 'the nack for seq 7');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(asker.replies, [{ type: MessageType.nackResp, seq: 7 }], 'one nack, for the request that asked for it; no ack');
    assert.equal(relay.counters['indirect_pings_received'], 2);
    assert.equal(relay.counters['indirect_nacks_sent'], 1);
  });
});
