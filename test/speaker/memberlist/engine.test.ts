// In-process members on loopback: convergence, leave, failure, refutation, and hostile input.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { LAN_CONFIG } from '../../../src/speaker/memberlist/config.js';
import { type Member, MemberlistEngine } from '../../../src/speaker/memberlist/engine.js';
import { Memberlist } from '../../../src/speaker/memberlist/memberlist.js';
import { encodeAck, encodePing, encodeSuspect } from '../../../src/speaker/memberlist/messages.js';
import { wrapPacket, type SecurityOptions } from '../../../src/speaker/memberlist/packet.js';
import { Keyring, metallbKey } from '../../../src/speaker/memberlist/security.js';
import { eventually } from './gossip-lab.js';

const key = metallbKey('engine-test');
const sec: SecurityOptions = { keyring: new Keyring([key]), label: '', verifyIncoming: true, verifyOutgoing: true, encryptionVersion: 1 };
const states = (e: MemberlistEngine): Record<string, string> => Object.fromEntries(e.members().map((m) => [m.name, m.state]));

// A loaded CI machine can stall a member longer than the fast default tolerates; these tests are about
// behaviour, so they tolerate 200 ms of silence (the bench measures speed).
const calm = { suspectAfterSilenceMs: 200 };

async function cluster(n: number, extra: Partial<ConstructorParameters<typeof MemberlistEngine>[0]> = {}): Promise<MemberlistEngine[]> {
  const ms: MemberlistEngine[] = [];
  for (let i = 1; i <= n; i++) {
    const m = new MemberlistEngine({ name: `m${i}`, bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [key], timing: calm, ...extra });
    await m.start();
    ms.push(m);
  }
  for (const m of ms.slice(1)) assert.equal(await m.join([`127.0.0.1:${ms[0]!.port}`]), 1);
  for (const m of ms) await eventually(() => states(m), (s) => Object.values(s).filter((x) => x === 'alive').length === n, 10_000, `${m.name} converged`);
  return ms;
}

describe('in-process members on loopback', () => {
  const all: MemberlistEngine[] = [];
  after(async () => {
    for (const m of all) await m.shutdown();
  });

  test('three members converge, a leave is seen at once, a silent member is declared dead', async () => {
    const ms = await cluster(3);
    all.push(...ms);
    const left = new Promise<Member>((r) => ms[0]!.once('leave', r));
    const t0 = performance.now();
    await ms[1]!.leave(500);
    const l = await left;
    assert.equal(l.name, 'm2');
    assert.equal(l.state, 'left');
    assert.ok(performance.now() - t0 < 5000);
    const dead = new Promise<Member>((r) => ms[0]!.on('leave', (m) => m.name === 'm3' && r(m)));
    await ms[2]!.shutdown();
    assert.equal((await dead).state, 'dead');
    assert.equal(states(ms[0]!)['m3'], 'dead');
  });

  test('a member whose host refuses connections is declared dead through the fast path, and the verdict says so', async () => {
    // The slow path's suspicion would last 1 s (suspicionMult 100 × 10 ms); the fast one replaces it at once.
    const verdicts: Array<Record<string, unknown>> = [];
    const logger = { debug() {}, warn() {}, error() {}, info: (o: object, msg: string) => void (/marking member as failed/.test(msg) && verdicts.push(o as Record<string, unknown>)) };
    const a = new MemberlistEngine({ name: 'f1', bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [key], timing: { ...calm, suspicionMult: 100 }, logger });
    const b = new MemberlistEngine({ name: 'f2', bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [key], timing: calm });
    all.push(a, b);
    await a.start();
    await b.start();
    assert.equal(await b.join([`127.0.0.1:${a.port}`]), 1);
    await eventually(() => states(a), (s) => s['f2'] === 'alive', 5000, 'a sees b');
    const dead = new Promise<Member>((r) => a.on('leave', (m) => m.name === 'f2' && r(m)));
    await b.shutdown();
    assert.equal((await dead).state, 'dead');
    assert.equal(verdicts.length, 1, JSON.stringify(verdicts));
    const v = verdicts[0]!;
    assert.equal(v['member'], 'f2');
    assert.equal(v['path'], 'fast', JSON.stringify(v));
    assert.equal(v['reach'], 'refused', JSON.stringify(v));
    assert.equal(v['confirmations'], 0);
    assert.ok((a.counters['fast_suspicions'] ?? 0) >= 1, JSON.stringify(a.counters));
  });

  test('a false accusation is refuted: the accused stays alive with a higher incarnation', async () => {
    const ms = await cluster(2);
    all.push(...ms);
    const [a, b] = ms as [MemberlistEngine, MemberlistEngine];
    const inc = b.localMember().incarnation;
    // A suspect message about b, as a third member would send it, delivered to b.
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    sock.send(wrapPacket(encodeSuspect({ Incarnation: inc, Node: 'm2', From: 'someone' }), sec, { crc: true, compress: false }), b.port, '127.0.0.1');
    await eventually(() => b.localMember().incarnation, (i) => i > inc, 5000, 'b refutes');
    await eventually(() => a.members().find((m) => m.name === 'm2'), (m) => m?.state === 'alive' && m.incarnation > inc, 5000, 'a sees the refutation');
    sock.close();
  });

  test('garbage, truncated, unauthenticated and replayed input is dropped and counted; the member carries on', async () => {
    const ms = await cluster(2);
    all.push(...ms);
    const [a, b] = ms as [MemberlistEngine, MemberlistEngine];
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const send = (buf: Buffer): void => void sock.send(buf, a.port, '127.0.0.1');
    let x = 11;
    const rnd = (): number => (x = (x * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let i = 0; i < 500; i++) send(Buffer.from(Array.from({ length: 1 + (rnd() % 80) }, rnd)));
    // Unauthenticated (plaintext) ping, a truncated ciphertext, a packet sealed with another key.
    send(encodePing({ SeqNo: 1, Node: 'm1' }));
    const good = wrapPacket(encodePing({ SeqNo: 2, Node: 'm1' }), sec, { crc: false, compress: false });
    send(good.subarray(0, good.length - 3));
    send(wrapPacket(encodePing({ SeqNo: 3, Node: 'm1' }), { ...sec, keyring: new Keyring([Buffer.alloc(32, 9)]) }, { crc: false, compress: false }));
    // Replays: an authentic ping is answered every time (harmless); an unsolicited ack is ignored.
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    send(good);
    send(good);
    send(wrapPacket(encodeAck({ SeqNo: 999_999, Payload: Buffer.alloc(0) }), sec, { crc: false, compress: false }));
    // TCP: garbage, a huge declared length, a truncated stream left open.
    for (const payload of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from('0a7fffffff', 'hex'), Buffer.from('0a00000100', 'hex')]) {
      await new Promise<void>((resolve) => {
        const c = connect(a.port, '127.0.0.1', () => c.end(payload));
        c.on('error', () => resolve());
        c.on('close', () => resolve());
        c.resume();
      });
    }
    await eventually(() => replies.length, (n) => n >= 2, 5000, 'replayed pings answered');
    const c = a.counters;
    assert.ok((c['dropped_decrypt'] ?? 0) >= 3, JSON.stringify(c));
    assert.ok((c['dropped_malformed'] ?? 0) >= 1, JSON.stringify(c));
    // Still a healthy member of its cluster.
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(states(a), { m1: 'alive', m2: 'alive' });
    assert.deepEqual(states(b), { m1: 'alive', m2: 'alive' });
    sock.close();
  });

  test('IPv6: members on ::1 converge and see a leave', async () => {
    const a = new MemberlistEngine({ name: 'v6a', bindAddr: '::1', bindPort: 0, secretKeys: [key], timing: calm });
    const b = new MemberlistEngine({ name: 'v6b', bindAddr: '::1', bindPort: 0, secretKeys: [key], timing: calm });
    all.push(a, b);
    await a.start();
    await b.start();
    assert.equal(await b.join([`[::1]:${a.port}`]), 1);
    await eventually(() => states(a), (s) => s['v6b'] === 'alive', 5000, 'a sees b');
    assert.equal(a.members().find((m) => m.name === 'v6b')?.addr, '::1');
    const left = new Promise<Member>((r) => a.once('leave', r));
    await b.leave(300);
    assert.equal((await left).state, 'left');
  });

  test("memberlist's own timing (LAN preset) also converges and leaves", async () => {
    const ms = await cluster(2, { timing: { ...LAN_CONFIG } });
    all.push(...ms);
    const left = new Promise<Member>((r) => ms[0]!.once('leave', r));
    await ms[1]!.leave(500);
    assert.equal((await left).state, 'left');
  });

  test('bad options are clear errors', () => {
    assert.throws(() => new MemberlistEngine({ name: '', bindAddr: '127.0.0.1' }), /name is required/);
    assert.throws(() => new MemberlistEngine({ name: 'a', bindAddr: 'nope' }), /not an IP address/);
    assert.throws(() => new MemberlistEngine({ name: 'a', bindAddr: '0.0.0.0' }), /needs advertiseAddr/);
    assert.throws(() => new MemberlistEngine({ name: 'a', bindAddr: '127.0.0.1', secretKeys: [Buffer.alloc(7)] }), /key size/);
    assert.throws(() => new MemberlistEngine({ name: 'a', bindAddr: '127.0.0.1', timing: { probeIntervalMs: 0 } }), /must be > 0/);
  });
});

describe('Memberlist in a worker thread', () => {
  test('two members see each other, events cross the thread boundary, a busy main loop changes nothing', async () => {
    // 200 ms of silence is tolerated; the main thread is blocked for 1.5 s: on the main loop this would fail.
    const a = await Memberlist.create({ name: 'w1', bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [key], timing: calm });
    const b = await Memberlist.create({ name: 'w2', bindAddr: '127.0.0.1', bindPort: 0, secretKeys: [key], timing: calm });
    try {
      const joined = new Promise<Member>((r) => a.on('join', (m) => m.name === 'w2' && r(m)));
      assert.equal(await b.join([`127.0.0.1:${a.port}`]), 1);
      assert.ok(Buffer.isBuffer((await joined).meta));
      await eventually(() => a.liveMembers(), (l) => l.length === 2, 5000, 'w1 sees 2');
      // Block this (main) thread for 1.5 s: the workers keep probing each other.
      const end = performance.now() + 1500;
      while (performance.now() < end) {
        // spin
      }
      assert.deepEqual((await a.liveMembers()).sort(), ['w1', 'w2']);
      assert.equal((await a.counters())['members_failed'] ?? 0, 0);
    } finally {
      await b.shutdown();
      await a.shutdown();
    }
  });
});
