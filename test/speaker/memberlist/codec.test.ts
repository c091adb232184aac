// Codec tests from real traffic: two Debian `serf` agents (hashicorp/memberlist) captured with tcpdump
// in a namespace, encrypted with the key MetalLB derives from the secret "secret-for-capture".
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { lzwCompress, lzwDecompress, LzwError } from '../../../src/speaker/memberlist/lzw.js';
import {
  decodeAck,
  decodeAlive,
  decodePing,
  decodeSuspect,
  encodeAlive,
  encodePing,
  encodeSuspect,
  MessageType,
} from '../../../src/speaker/memberlist/messages.js';
import { decodeCompress } from '../../../src/speaker/memberlist/messages.js';
import { decodeRecord, encodeStruct, valueEnd, NeedMoreData } from '../../../src/speaker/memberlist/msgpack.js';
import {
  crc32,
  labelHeader,
  makeCompound,
  PacketError,
  removeLabelHeader,
  type SecurityOptions,
  unwrapPacket,
  wrapPacket,
} from '../../../src/speaker/memberlist/packet.js';
import { DecryptError, Keyring, metallbKey, open, seal } from '../../../src/speaker/memberlist/security.js';
import { encodePushPull, readStreamMessage, wrapStream } from '../../../src/speaker/memberlist/stream.js';

interface Captured {
  kind: 'udp' | 'tcp';
  src: string;
  dst: string;
  payload: string;
  plain: string | null;
}
const capture: Captured[] = JSON.parse(
  readFileSync(new URL('./fixtures/serf-capture-encrypted.json', import.meta.url), 'utf8'),
) as Captured[];
const key = metallbKey('secret-for-capture');
const sec: SecurityOptions = {
  keyring: new Keyring([key]),
  label: '',
  verifyIncoming: true,
  verifyOutgoing: true,
  encryptionVersion: 1,
};

test('MetalLB key derivation: first 32 bytes of secret || sha256("")', () => {
  // The same key serf was started with (-encrypt, base64).
  assert.equal(key.toString('base64'), 'c2VjcmV0LWZvci1jYXB0dXJl47DEQpj8HBSa+/TImW8=');
  // A 22-character secret as MetalLB's controller makes: the secret itself, then 10 digest bytes.
  const k = metallbKey('AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(k.length, 32);
  assert.equal(k.subarray(0, 22).toString(), 'AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(k.subarray(22).toString('hex'), 'e3b0c44298fc1c149afb');
  // A long secret is simply truncated.
  assert.equal(metallbKey('x'.repeat(100)).toString(), 'x'.repeat(32));
});

test('every captured UDP packet decrypts and splits into known messages', () => {
  const seen = new Set<number>();
  let n = 0;
  for (const p of capture.filter((c) => c.kind === 'udp')) {
    const out = unwrapPacket(Buffer.from(p.payload, 'hex'), sec);
    assert.equal(out.encrypted, true);
    assert.equal(out.truncated, 0);
    for (const m of out.messages) {
      seen.add(m.type);
      // serf's own messages (type 8) are opaque to memberlist.
      if (m.type !== MessageType.user) decodeRecord(m.body);
      n++;
    }
  }
  assert.ok(n > 20);
  for (const t of [MessageType.ping, MessageType.ackResp, MessageType.suspect, MessageType.alive, MessageType.user]) {
    assert.ok(seen.has(t), `capture has message type ${t}`);
  }
});

test('our encoder writes byte-for-byte what Go wrote (ping, alive, suspect)', () => {
  let checked = 0;
  for (const p of capture.filter((c) => c.kind === 'udp')) {
    for (const m of unwrapPacket(Buffer.from(p.payload, 'hex'), sec).messages) {
      const wire = Buffer.concat([Buffer.of(m.type), m.body]);
      if (m.type === MessageType.ping) {
        assert.deepEqual(encodePing(decodePing(m.body)), wire);
        checked++;
      } else if (m.type === MessageType.alive) {
        assert.deepEqual(encodeAlive(decodeAlive(m.body)), wire);
        checked++;
      } else if (m.type === MessageType.suspect) {
        assert.deepEqual(encodeSuspect(decodeSuspect(m.body)), wire);
        checked++;
      }
    }
  }
  assert.ok(checked >= 10, `checked ${checked}`);
});

test('decoded serf messages: alive carries address, port, tags and versions', () => {
  const alive = capture
    .filter((c) => c.kind === 'udp')
    .flatMap((p) => unwrapPacket(Buffer.from(p.payload, 'hex'), sec).messages)
    .filter((m) => m.type === MessageType.alive)
    .map((m) => decodeAlive(m.body));
  const b = alive.find((a) => a.Node === 'serfb');
  assert.ok(b);
  assert.deepEqual([...b.Addr], [10, 94, 250, 2]);
  assert.equal(b.Port, 7946);
  assert.deepEqual([...b.Vsn], [1, 5, 2, 2, 5, 5]);
  // serf's tags: 0xff then a msgpack map.
  assert.equal(b.Meta[0], 0xff);
  const tags = decodeRecord(b.Meta.subarray(1));
  assert.equal(Buffer.from(tags['role'] as Uint8Array).toString(), 'web');
  const acks = capture
    .filter((c) => c.kind === 'udp')
    .flatMap((p) => unwrapPacket(Buffer.from(p.payload, 'hex'), sec).messages)
    .filter((m) => m.type === MessageType.ackResp)
    .map((m) => decodeAck(m.body));
  assert.ok(acks.some((a) => a.Payload.length > 0), 'serf acks carry its coordinate payload');
});

test('captured push/pull streams decrypt, decompress and parse; our LZW writer matches Go', () => {
  const streams = capture.filter((c) => c.kind === 'tcp');
  assert.equal(streams.length, 2);
  for (const s of streams) {
    const raw = Buffer.from(s.payload, 'hex');
    const read = readStreamMessage(raw, sec);
    assert.ok(read);
    assert.equal(read.encrypted, true);
    assert.equal(read.message.kind, 'pushPull');
    if (read.message.kind !== 'pushPull') return;
    assert.ok(read.message.nodes.length >= 1);
    assert.ok(read.message.userState.length > 0, 'serf sends its user state');
    // Re-compress the plaintext: identical to Go's compress/lzw output.
    const plain = Buffer.from(s.plain as string, 'hex');
    assert.equal(plain[0], MessageType.compress);
    const c = decodeCompress(plain.subarray(1));
    const inner = lzwDecompress(c.Buf);
    assert.deepEqual(lzwCompress(inner), Buffer.from(c.Buf));
    // And our push/pull encoder reproduces the decompressed message.
    const m = read.message;
    assert.deepEqual(encodePushPull(m.header, m.nodes, m.userState), inner);
    // A truncated stream asks for more instead of failing.
    assert.equal(readStreamMessage(raw.subarray(0, raw.length - 1), sec), null);
  }
});

test('LZW: round trip across code-width growth and table resets', () => {
  const data = Buffer.alloc(200_000);
  let x = 1;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    data[i] = i % 3 === 0 ? x & 0xff : 'memberlist'.charCodeAt(i % 10);
  }
  assert.deepEqual(lzwDecompress(lzwCompress(data)), data);
  assert.deepEqual(lzwDecompress(lzwCompress(Buffer.alloc(0))), Buffer.alloc(0));
  assert.throws(() => lzwDecompress(Buffer.from([0xff, 0xff, 0xff])), LzwError);
  assert.throws(() => lzwDecompress(lzwCompress(data), 1000), LzwError);
});

test('packets: wrap/unwrap with CRC, compression, label, several keys', () => {
  const ping = encodePing({ SeqNo: 7, Node: 'n2', SourceAddr: Uint8Array.of(10, 94, 0, 1), SourcePort: 7946, SourceNode: 'n1' });
  const [compound] = makeCompound([ping, ping]);
  assert.ok(compound);
  const old = Buffer.alloc(32, 1);
  const labelled: SecurityOptions = { ...sec, label: 'lab', keyring: new Keyring([key, old]) };
  const wire = wrapPacket(compound, labelled, { crc: true, compress: true });
  assert.equal(wire[0], MessageType.hasLabel);
  const out = unwrapPacket(wire, labelled);
  assert.equal(out.messages.length, 2);
  assert.equal(decodePing(out.messages[0]!.body).Node, 'n2');
  // A receiver whose primary key is another one still decrypts with its second key.
  assert.equal(unwrapPacket(wire, { ...labelled, keyring: new Keyring([old, key]) }).messages.length, 2);
  // Wrong label, wrong key, no label.
  assert.throws(() => unwrapPacket(wire, { ...labelled, label: 'other' }), PacketError);
  assert.throws(() => unwrapPacket(wire, { ...labelled, keyring: new Keyring([old]) }), DecryptError);
  assert.throws(() => unwrapPacket(wire, sec), PacketError);
  // Plaintext into an encrypted member: refused unless verifyIncoming is off.
  const plain = wrapPacket(ping, { ...sec, keyring: undefined }, { crc: false, compress: false });
  assert.throws(() => unwrapPacket(plain, sec), DecryptError);
  assert.equal(unwrapPacket(plain, { ...sec, verifyIncoming: false }).messages.length, 1);
  // A flipped bit under the CRC.
  const crcOnly = wrapPacket(ping, { ...sec, keyring: undefined }, { crc: true, compress: false });
  crcOnly[crcOnly.length - 1]! ^= 1;
  assert.throws(() => unwrapPacket(crcOnly, { ...sec, keyring: undefined }), /checksum/);
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.deepEqual(removeLabelHeader(Buffer.concat([labelHeader('x'), ping])).rest, ping);
});

test('garbage and truncated packets are refused with an error, never a crash', () => {
  const unenc: SecurityOptions = { ...sec, keyring: undefined };
  let x = 7;
  const rnd = (): number => (x = (x * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  const ping = encodePing({ SeqNo: 1, Node: 'a' });
  for (let i = 0; i < 5000; i++) {
    const len = rnd() % 64;
    const buf = Buffer.from(Array.from({ length: len }, rnd));
    if (i % 3 === 0 && len > 0) buf[0] = [0, 1, 2, 3, 4, 5, 7, 9, 12, 244][rnd() % 10]!;
    for (const s of [unenc, sec]) {
      try {
        const out = unwrapPacket(buf, s);
        for (const m of out.messages) decodePing(m.body);
      } catch (err) {
        assert.ok(err instanceof Error);
      }
    }
    try {
      readStreamMessage(buf, unenc);
    } catch (err) {
      assert.ok(err instanceof Error);
    }
  }
  for (let cut = 0; cut < ping.length; cut++) {
    assert.throws(() => decodePing(ping.subarray(1, cut)));
  }
  assert.throws(() => valueEnd(Buffer.of(0xda, 0x00), 0), NeedMoreData);
  // A hostile declared length is refused before anything is read.
  assert.throws(() => readStreamMessage(Buffer.from('0affffffff', 'hex'), sec), /larger than limit/);
});

test('streams: encrypted and plain push/pull round trip, partial input waits', () => {
  const msg = encodePushPull(
    { Nodes: 1, UserStateLen: 3, Join: true },
    [{ Name: 'n1', Addr: Uint8Array.of(10, 94, 0, 1), Port: 7946, Meta: new Uint8Array(0), Incarnation: 4, State: 0, Vsn: Uint8Array.of(1, 5, 2, 0, 0, 0) }],
    Buffer.from('abc'),
  );
  for (const [s, compress] of [[sec, false], [sec, true], [{ ...sec, keyring: undefined }, false], [{ ...sec, keyring: undefined }, true]] as const) {
    const wire = wrapStream(msg, s, compress);
    for (let cut = 0; cut < wire.length; cut++) assert.equal(readStreamMessage(wire.subarray(0, cut), s), null);
    const read = readStreamMessage(wire, s);
    assert.ok(read && read.message.kind === 'pushPull');
    assert.equal(read.message.nodes[0]?.Name, 'n1');
    assert.equal(read.message.userState.toString(), 'abc');
  }
  assert.throws(() => readStreamMessage(wrapStream(msg, { ...sec, keyring: undefined }, false), sec), /not encrypted/);
});

test('seal/open versions 0 and 1', () => {
  for (const vsn of [0, 1] as const) {
    const s = seal(vsn, key, Buffer.from('hello'), Buffer.from('aad'));
    assert.equal(open([key], s, Buffer.from('aad')).toString(), 'hello');
    assert.throws(() => open([key], s, Buffer.from('bad')), DecryptError);
  }
  assert.deepEqual(encodeStruct({ B: 1, A: 'x', C: undefined }), Buffer.from('82a141a178a14201', 'hex'));
  // Cached field names: a second struct with the same names still writes each one.
  assert.deepEqual(encodeStruct({ A: 'y', B: 2 }), Buffer.from('82a141a179a14202', 'hex'));
});

test('every sealed packet has its own nonce, across refills of the nonce batch', () => {
  const nonces = new Set<string>();
  const n = 5000;
  for (let i = 0; i < n; i++) {
    const msg = Buffer.from(`message ${i}`);
    const s = seal(1, key, msg, Buffer.alloc(0));
    nonces.add(s.subarray(1, 13).toString('hex'));
    assert.deepEqual(open([key], s, Buffer.alloc(0)), msg);
  }
  assert.equal(nonces.size, n);
  // Unlabelled (no additional data) and sealed with a label are not interchangeable.
  const s = seal(0, key, Buffer.from('x'), Buffer.alloc(0));
  assert.throws(() => open([key], s, Buffer.from('label')), DecryptError);
  assert.equal(open([key], s, Buffer.alloc(0)).toString(), 'x');
});
