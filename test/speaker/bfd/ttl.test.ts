// The TTL BFD packets must arrive with, checked in the kernel by a filter on the engine's listeners: 255 for single
// hop (RFC 5881 §5: a packet that crossed a router is not from a neighbour), the profile's minimumTtl for multihop
// (RFC 5883, MetalLB's BFDProfile field; the lowest of the sessions sharing a listener). A fake peer on loopback
// sends Down packets with chosen TTLs; the session counts only those the filter let through.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { describe, it } from 'node:test';
import { nativeAvailable } from '../../../src/net/native.js';
import { attachMinimumTtl, minimumTtlProgram } from '../../../src/net/socket-filter.js';
import { BfdEngine, type BfdSessionConfig } from '../../../src/speaker/bfd/engine.js';
import { encodeControl, State } from '../../../src/speaker/bfd/packet.js';
import { decode } from '../../../src/net/bpf.js';

const PORTS = { singleHop: 25784, multiHop: 26784 };
const TIMERS = { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, passiveMode: true };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const down = encodeControl({
  diag: 0, state: State.DOWN, poll: false, final: false, detectMult: 3, myDiscriminator: 77, yourDiscriminator: 0,
  desiredMinTxInterval: 300_000, requiredMinRxInterval: 300_000, requiredMinEchoRxInterval: 0,
});

async function peer(address: string): Promise<Socket> {
  const s = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve) => s.bind(0, address, () => resolve()));
  return s;
}

async function send(s: Socket, ttl: number, port: number, to: string, count = 3): Promise<void> {
  s.setTTL(ttl);
  for (let i = 0; i < count; i++) await new Promise<void>((resolve, reject) => s.send(down, port, to, (err) => (err ? reject(err) : resolve())));
  await sleep(200);
}

describe('minimumTtlProgram', () => {
  it('loads the TTL (IPv4 byte 8) or hop limit (IPv6 byte 7) from the network header and keeps the datagram at or above the minimum', () => {
    const v4 = decode(minimumTtlProgram('udp4', 254));
    assert.deepEqual(v4.map((i) => [i.code, i.jt, i.jf, i.k]), [
      [0x30, 0, 0, (-0x100000 + 8) >>> 0], [0x35, 1, 0, 254], [0x06, 0, 0, 0], [0x06, 0, 0, 0xffffffff],
    ]);
    assert.equal(decode(minimumTtlProgram('udp6', 255))[0]!.k, (-0x100000 + 7) >>> 0);
    assert.throws(() => minimumTtlProgram('udp4', 0), /1\.\.255/);
  });
});

describe('BFD listeners check the TTL', { skip: nativeAvailable() ? false : 'needs the native addon' }, () => {
  const received = (engine: BfdEngine, key: string): number => engine.status().find((s) => s.key === key)?.packetsReceived ?? -1;

  it('single hop: only TTL 255 is accepted (IPv4 and IPv6)', async () => {
    const engine = new BfdEngine(() => undefined, undefined, undefined, PORTS);
    const p4 = await peer('127.0.0.7');
    const p6 = await peer('::1');
    try {
      await engine.configure([
        { key: 'v4', peerAddress: '127.0.0.7', multihop: false, ...TIMERS },
        { key: 'v6', peerAddress: '::1', multihop: false, ...TIMERS },
      ]);
      await send(p4, 254, PORTS.singleHop, '127.0.0.1');
      await send(p6, 254, PORTS.singleHop, '::1');
      assert.equal(received(engine, 'v4'), 0, 'TTL 254 dropped');
      assert.equal(received(engine, 'v6'), 0, 'hop limit 254 dropped');
      await send(p4, 255, PORTS.singleHop, '127.0.0.1');
      await send(p6, 255, PORTS.singleHop, '::1');
      assert.equal(received(engine, 'v4'), 3);
      assert.equal(received(engine, 'v6'), 3);
    } finally {
      p4.close();
      p6.close();
      await engine.close();
    }
  });

  it('multihop: the lowest minimumTtl of the sessions on the listener; a session without one accepts any', async () => {
    const engine = new BfdEngine(() => undefined, undefined, undefined, PORTS);
    const a = await peer('127.0.0.8');
    const b = await peer('127.0.0.9');
    const mh = (key: string, peerAddress: string, minimumTtl?: number): BfdSessionConfig =>
      ({ key, peerAddress, multihop: true, ...TIMERS, ...(minimumTtl !== undefined ? { minimumTtl } : {}) });
    try {
      await engine.configure([mh('a', '127.0.0.8', 250)]);
      await send(a, 249, PORTS.multiHop, '127.0.0.1');
      assert.equal(received(engine, 'a'), 0, 'below minimumTtl: dropped');
      await send(a, 250, PORTS.multiHop, '127.0.0.1');
      assert.equal(received(engine, 'a'), 3, 'at minimumTtl: accepted');
      // A second session with a lower minimum lowers the listener's (the address then tells the sessions apart).
      await engine.configure([mh('a', '127.0.0.8', 250), mh('b', '127.0.0.9', 100)]);
      await send(b, 100, PORTS.multiHop, '127.0.0.1');
      await send(b, 99, PORTS.multiHop, '127.0.0.1');
      assert.equal(received(engine, 'b'), 3);
      // Its removal raises it again; a session without minimumTtl takes any.
      await engine.configure([mh('a', '127.0.0.8', 250)]);
      await send(a, 100, PORTS.multiHop, '127.0.0.1');
      assert.equal(received(engine, 'a'), 3);
      await engine.configure([mh('a', '127.0.0.8')]);
      await send(a, 2, PORTS.multiHop, '127.0.0.1');
      assert.equal(received(engine, 'a'), 6);
    } finally {
      a.close();
      b.close();
      await engine.close();
    }
  });
});

describe('attachMinimumTtl', { skip: nativeAvailable() ? false : 'needs the native addon' }, () => {
  it('discards what was queued before the filter: a datagram that came between bind and the attach is never read', async () => {
    const s = createSocket({ type: 'udp4' });
    const got: number[] = [];
    s.on('message', (m) => got.push(m.length));
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    const p = await peer('127.0.0.1');
    try {
      const port = s.address().port;
      // The event loop is held from here to the attach, as between the engine's bind and its filter: three TTL-64
      // datagrams are queued by the kernel, unread.
      const sent = spawnSync('python3', ['-c', `import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
for _ in range(3): u.sendto(b"x" * 24, ("127.0.0.1", ${port}))`]);
      assert.equal(sent.status, 0, String(sent.stderr));
      const discarded = attachMinimumTtl(s, 'udp4', 255);
      await sleep(100);
      assert.deepEqual(got, [], 'the queued TTL-64 datagrams were not read');
      assert.equal(discarded, 3);
      await send(p, 64, port, '127.0.0.1', 2);
      assert.deepEqual(got, [], 'later ones are dropped by the filter');
      await send(p, 255, port, '127.0.0.1', 2);
      assert.equal(got.length, 2, 'TTL 255 passes');
    } finally {
      p.close();
      s.close();
    }
  });
});
