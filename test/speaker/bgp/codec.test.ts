// The BGP codecs against real sessions (captures of BIRD, FRR, GoBGP and our speaker, test/fixtures/bgp) and
// against every malformed-message case RFC 4271 §6 and RFC 7606 name.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NotificationError } from '../../../src/speaker/bgp/errors.js';
import { AttrFlag, AttrType, MessageType, type Message, type UpdateMessage } from '../../../src/speaker/bgp/messages.js';
import { Parser, parseMessage, peerAsOf } from '../../../src/speaker/bgp/parser.js';
import { frame, serialize, serializeEndOfRib, serializeKeepalive, serializeNotification, serializeOpen, serializeRouteRefresh, serializeUpdate } from '../../../src/speaker/bgp/serializer.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'bgp');

interface Capture {
  description: string;
  [speaker: string]: string[] | string;
}

function captures(): { file: string; speaker: string; messages: Buffer[] }[] {
  const out: { file: string; speaker: string; messages: Buffer[] }[] = [];
  for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort()) {
    const c = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Capture;
    for (const [speaker, v] of Object.entries(c)) {
      if (Array.isArray(v)) out.push({ file, speaker, messages: v.map((h) => Buffer.from(h, 'hex')) });
    }
  }
  return out;
}

const FOUR = { fourOctetAs: true, maxMessageLength: 4096 };

function expectNotification(bytes: Uint8Array, code: number, subcode: number, data?: Uint8Array): NotificationError {
  let caught: unknown;
  try {
    parseMessage(bytes, FOUR);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof NotificationError, `expected a NotificationError ${code}/${subcode}, got ${String(caught)}`);
  assert.deepEqual([caught.code, caught.subcode], [code, subcode], caught.message);
  if (data) assert.deepEqual(Buffer.from(caught.data), Buffer.from(data));
  return caught;
}

const updateOf = (m: Message): UpdateMessage => {
  assert.equal(m.type, 'update');
  return m as UpdateMessage;
};

describe('captured sessions', () => {
  const all = captures();

  it('has captures of BIRD, FRR, GoBGP and our speaker', () => {
    const speakers = new Set(all.map((c) => c.speaker));
    for (const s of ['bird', 'frr', 'gobgp', 'metallb-ts']) assert.ok(speakers.has(s), s);
    assert.ok(all.length >= 12);
  });

  for (const { file, speaker, messages } of all) {
    it(`${file}: ${speaker}'s messages parse, and write back to the same bytes`, () => {
      const parser = new Parser();
      parser.options.fourOctetAs = true;
      const seen: Message[] = [];
      // The whole stream in one chunk, as the socket may deliver it.
      parser.parse(Buffer.concat(messages), (m) => seen.push(m));
      assert.equal(seen.length, messages.length);
      assert.equal(seen[0]!.type, 'open');
      messages.forEach((bytes, i) => {
        const m = seen[i]!;
        if (m.type === 'update') assert.equal(m.errors, undefined, `message ${i} has RFC 7606 errors: ${JSON.stringify(m.errors)}`);
        // OPENs: FRR puts each capability in an optional parameter of its own, we write one; same meaning.
        if (m.type === 'open') assert.deepEqual(parseMessage(serialize(m), FOUR), m);
        else assert.deepEqual(serialize(m), bytes, `message ${i} (${m.type}) does not serialize back to the captured bytes`);
      });
    });
  }

  it('BIRD: OPEN with graceful restart, 4-octet AS, enhanced route refresh; UPDATE with communities and large communities', () => {
    const bird = all.find((c) => c.file === 'bird-frr.json' && c.speaker === 'bird')!;
    const open = parseMessage(bird.messages[0]!, FOUR);
    assert.equal(open.type, 'open');
    if (open.type !== 'open') return;
    assert.equal(peerAsOf(open), 64501);
    const kinds = open.capabilities.map((c) => c.kind);
    for (const k of ['multiprotocol', 'route-refresh', 'graceful-restart', 'four-octet-as', 'enhanced-route-refresh']) assert.ok(kinds.includes(k as never), k);
    const updates = bird.messages.map((b) => parseMessage(b, FOUR)).filter((m): m is UpdateMessage => m.type === 'update');
    const v4 = updates.find((u) => u.nlri.includes('10.95.101.0/24'))!;
    assert.deepEqual(v4.pathAttributes.find((a) => a.kind === 'communities'), { kind: 'communities', flags: 0xc0, communities: [(65000 << 16 | 4) >>> 0] });
    assert.deepEqual(v4.pathAttributes.find((a) => a.kind === 'large-communities'), { kind: 'large-communities', flags: 0xc0, communities: [[64512, 1, 4]] });
    const v6 = updates.find((u) => u.pathAttributes.some((a) => a.kind === 'mp-reach-nlri' && a.nlri.length > 0))!;
    const mp = v6.pathAttributes[0]!;
    assert.equal(mp.kind, 'mp-reach-nlri', 'BIRD puts MP_REACH_NLRI first (RFC 7606 §5.1)');
    if (mp.kind === 'mp-reach-nlri') {
      assert.equal(mp.nextHops.length, 2, 'global + link-local next hop');
      assert.equal(mp.nextHops[0], 'fd00:95:200::1');
      assert.match(mp.nextHops[1]!, /^fe80::/);
    }
    // End-of-RIB for both families, and a plain withdrawal.
    assert.ok(updates.some((u) => u.nlri.length === 0 && u.withdrawnRoutes.length === 0 && u.pathAttributes.length === 0));
    assert.ok(updates.some((u) => u.withdrawnRoutes.includes('10.95.101.0/24')));
  });

  it('FRR: OPEN as a 4-octet AS (AS_TRANS in the 2-octet field), AS_PATH with the Extended Length flag', () => {
    const frr = all.find((c) => c.file === 'bird-frr.json' && c.speaker === 'frr')!;
    const open = parseMessage(frr.messages[0]!, FOUR);
    assert.ok(open.type === 'open');
    if (open.type !== 'open') return;
    assert.equal(open.myAutonomousSystem, 23456);
    assert.equal(peerAsOf(open), 4200000002);
    const u = frr.messages.map((b) => parseMessage(b, FOUR)).find((m) => m.type === 'update' && m.nlri.length > 0)!;
    const asPath = updateOf(u).pathAttributes.find((a) => a.kind === 'as-path')!;
    assert.equal(asPath.flags, AttrFlag.TRANSITIVE | AttrFlag.EXTENDED_LENGTH);
    assert.deepEqual(asPath.kind === 'as-path' && asPath.segments, [{ type: 2, asns: [4200000002] }]);
  });

  it('GoBGP: IPv6 routes over an IPv4 session with an IPv4-mapped next hop, MP_REACH_NLRI not first', () => {
    const g = all.find((c) => c.file === 'gobgp-bird.json' && c.speaker === 'gobgp')!;
    const u = g.messages.map((b) => parseMessage(b, FOUR)).find((m) => m.type === 'update' && m.pathAttributes.some((a) => a.kind === 'mp-reach-nlri'))!;
    const attrs = updateOf(u).pathAttributes;
    assert.notEqual(attrs[0]!.kind, 'mp-reach-nlri');
    const mp = attrs.find((a) => a.kind === 'mp-reach-nlri')!;
    assert.ok(mp.kind === 'mp-reach-nlri' && mp.flags === AttrFlag.OPTIONAL && mp.nlri[0] === 'fd00:95:101::/64');
  });

  it('our speaker: many prefixes in one UPDATE, IPv6 with global + link-local next hop, End-of-RIB, withdrawals', () => {
    const ours = all.find((c) => c.file === 'bird-metallb-ts.json' && c.speaker === 'metallb-ts')!;
    const msgs = ours.messages.map((b) => parseMessage(b, FOUR));
    const open = msgs[0]!;
    assert.ok(open.type === 'open' && open.myAutonomousSystem === 23456 && open.holdTime === 30);
    const v4 = msgs.find((m): m is UpdateMessage => m.type === 'update' && m.nlri.length > 0)!;
    assert.deepEqual(v4.nlri, ['10.95.102.1/32', '10.95.102.2/32']);
    assert.deepEqual(v4.pathAttributes.map((a) => a.kind), ['origin', 'as-path', 'next-hop', 'communities', 'large-communities']);
    const withdrawal = msgs.find((m): m is UpdateMessage => m.type === 'update' && m.withdrawnRoutes.length > 0)!;
    assert.deepEqual(withdrawal.withdrawnRoutes, ['10.95.102.1/32', '10.95.102.2/32']);
  });
});

describe('message header errors (RFC 4271 §6.1)', () => {
  const ka = serializeKeepalive();

  it('a marker that is not all ones: Connection Not Synchronized', () => {
    const b = Buffer.from(ka);
    b[3] = 0;
    expectNotification(b, 1, 1);
  });

  it('length below 19, above 4096, or wrong for the type: Bad Message Length with the length field as data', () => {
    const short = Buffer.from(ka);
    short.writeUInt16BE(18, 16);
    expectNotification(short, 1, 2, Buffer.from([0, 18]));
    const long = Buffer.alloc(4097, 0xff);
    long.writeUInt16BE(4097, 16);
    long[18] = MessageType.UPDATE;
    expectNotification(long, 1, 2, Buffer.from([0x10, 0x01]));
    expectNotification(frame(MessageType.KEEPALIVE, Buffer.from([0])), 1, 2, Buffer.from([0, 20]));
    expectNotification(frame(MessageType.OPEN, Buffer.alloc(9)), 1, 2, Buffer.from([0, 28]));
    expectNotification(frame(MessageType.UPDATE, Buffer.alloc(3)), 1, 2, Buffer.from([0, 22]));
    expectNotification(frame(MessageType.NOTIFICATION, Buffer.alloc(1)), 1, 2, Buffer.from([0, 20]));
    expectNotification(frame(MessageType.ROUTE_REFRESH, Buffer.alloc(3)), 1, 2, Buffer.from([0, 22]));
  });

  it('an unknown type: Bad Message Type with the type as data', () => {
    expectNotification(frame(0, Buffer.alloc(0)), 1, 3, Buffer.from([0]));
    expectNotification(frame(6, Buffer.alloc(4)), 1, 3, Buffer.from([6]));
    expectNotification(frame(255, Buffer.alloc(4)), 1, 3, Buffer.from([255]));
  });

  it('the incremental parser reports a bad header as soon as the header is in, before the body', () => {
    const p = new Parser();
    const b = Buffer.alloc(19, 0xff);
    b.writeUInt16BE(60000, 16);
    b[18] = 2;
    assert.throws(() => p.parse(b, () => assert.fail('no message expected')), (e: unknown) => e instanceof NotificationError && e.code === 1 && e.subcode === 2);
  });

  it('a ROUTE-REFRESH longer than 23 octets: ROUTE-REFRESH Message Error / Invalid Message Length, data = the message (RFC 7313 §5)', () => {
    const m = frame(MessageType.ROUTE_REFRESH, Buffer.from([0, 1, 0, 1, 9]));
    expectNotification(m, 7, 1, m);
  });
});

const openBody = (o: { version?: number; as?: number; hold?: number; id?: number[]; params?: number[] } = {}): Buffer => {
  const params = o.params ?? [];
  return Buffer.from([o.version ?? 4, ((o.as ?? 65000) >> 8) & 255, (o.as ?? 65000) & 255, ((o.hold ?? 90) >> 8) & 255, (o.hold ?? 90) & 255,
    ...(o.id ?? [10, 0, 0, 1]), params.length, ...params]);
};

describe('OPEN message errors (RFC 4271 §6.2, RFC 5492, RFC 9072)', () => {
  it('version other than 4: Unsupported Version Number, data = 4 as two octets', () => {
    expectNotification(frame(1, openBody({ version: 3 })), 2, 1, Buffer.from([0, 4]));
  });

  it('hold time 1 or 2: Unacceptable Hold Time; 0 and 3 are fine', () => {
    expectNotification(frame(1, openBody({ hold: 1 })), 2, 6);
    expectNotification(frame(1, openBody({ hold: 2 })), 2, 6);
    assert.equal(parseMessage(frame(1, openBody({ hold: 0 }))).type, 'open');
    assert.equal(parseMessage(frame(1, openBody({ hold: 3 }))).type, 'open');
  });

  it('BGP Identifier 0.0.0.0: Bad BGP Identifier (RFC 6286)', () => {
    expectNotification(frame(1, openBody({ id: [0, 0, 0, 0] })), 2, 3);
  });

  it('an optional parameter other than capabilities: Unsupported Optional Parameter', () => {
    expectNotification(frame(1, openBody({ params: [1, 2, 0, 0] })), 2, 4);
  });

  it('optional parameters that overrun or underrun their length, or malformed capabilities: Unspecific', () => {
    // Length field says 4, 6 octets follow.
    const b = openBody({ params: [2, 2, 2, 0, 0, 0] });
    b[9] = 4;
    expectNotification(frame(1, b), 2, 0);
    expectNotification(frame(1, openBody({ params: [2, 9, 1, 4, 0, 1] })), 2, 0); // parameter longer than what follows
    expectNotification(frame(1, openBody({ params: [2, 3, 1, 4, 0] })), 2, 0); // capability overruns its parameter
    expectNotification(frame(1, openBody({ params: [2, 5, 1, 3, 0, 1, 0] })), 2, 0); // MP capability of 3 octets
    expectNotification(frame(1, openBody({ params: [2, 4, 65, 2, 0, 1] })), 2, 0); // 4-octet AS of 2 octets
    expectNotification(frame(1, openBody({ params: [2, 5, 64, 3, 0, 0, 1] })), 2, 0); // graceful restart of 3 octets
    expectNotification(frame(1, openBody({ params: [2, 3, 2, 1, 0] })), 2, 0); // route refresh with a value
    expectNotification(frame(1, openBody({ params: [2] })), 2, 0); // truncated parameter header
  });

  it('unknown capabilities are kept and ignored (RFC 5492 §4)', () => {
    const m = parseMessage(frame(1, openBody({ params: [2, 6, 73, 4, 2, 0x76, 0x6d, 0] })));
    assert.ok(m.type === 'open' && m.capabilities[0]!.kind === 'unknown');
  });

  it('extended optional parameters length (RFC 9072) parses', () => {
    const caps = [1, 4, 0, 1, 0, 1, 65, 4, 0, 0, 0xfd, 0xe8];
    const params = [255, 0, caps.length + 3, 2, 0, caps.length, ...caps];
    const body = Buffer.from([4, 0xfd, 0xe8, 0, 90, 10, 0, 0, 1, 255, ...params]);
    const m = parseMessage(frame(1, body));
    assert.ok(m.type === 'open');
    if (m.type === 'open') assert.deepEqual(m.capabilities.map((c) => c.kind), ['multiprotocol', 'four-octet-as']);
  });

  it('our OPEN writer and parser agree on every capability, and large capability sets use RFC 9072', () => {
    const open = {
      version: 4, myAutonomousSystem: 23456, holdTime: 90, bgpIdentifier: '192.0.2.1',
      capabilities: [
        { kind: 'multiprotocol' as const, afi: 2, safi: 1 },
        { kind: 'route-refresh' as const },
        { kind: 'enhanced-route-refresh' as const },
        { kind: 'four-octet-as' as const, asn: 4200000000 },
        { kind: 'graceful-restart' as const, restartState: true, notification: true, restartTime: 300, families: [{ afi: 1, safi: 1, forwardingState: true }] },
      ],
    };
    assert.deepEqual(parseMessage(serializeOpen(open)), { type: 'open', ...open });
    const many = { ...open, capabilities: Array.from({ length: 50 }, (_, i) => ({ kind: 'multiprotocol' as const, afi: 1, safi: i + 1 })) };
    const bytes = serializeOpen(many);
    assert.equal(bytes[28], 255, 'extended optional parameters');
    assert.deepEqual(parseMessage(bytes), { type: 'open', ...many });
  });
});

/** An UPDATE body from its parts, lengths filled in. */
function updateBytes(withdrawn: number[], attrs: number[], nlri: number[]): Buffer {
  return frame(MessageType.UPDATE, Buffer.from([withdrawn.length >> 8, withdrawn.length & 255, ...withdrawn, attrs.length >> 8, attrs.length & 255, ...attrs, ...nlri]));
}

const ORIGIN = [0x40, 1, 1, 0];
const AS_PATH = [0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe8];
const NEXT_HOP = [0x40, 3, 4, 10, 0, 0, 1];
const NLRI = [24, 10, 1, 2];
const good = [...ORIGIN, ...AS_PATH, ...NEXT_HOP];

function notes(bytes: Buffer): string[] {
  const m = parseMessage(bytes, FOUR);
  assert.equal(m.type, 'update');
  return (updateOf(m).errors ?? []).map((e) => `${e.action}:${e.typeCode ?? '-'}`);
}

describe('UPDATE message errors that reset the session (RFC 4271 §6.3, RFC 7606 §3, §5)', () => {
  it('withdrawn routes length or total attribute length past the end: Malformed Attribute List', () => {
    const b = updateBytes([], good, NLRI);
    b.writeUInt16BE(200, 19);
    expectNotification(b, 3, 1);
    const c = updateBytes([], good, []);
    c.writeUInt16BE(good.length + 1, 21);
    expectNotification(c, 3, 1);
  });

  it('a syntactically wrong NLRI or withdrawn prefix: Invalid Network Field', () => {
    expectNotification(updateBytes([], good, [33, 10, 0, 0, 0, 1]), 3, 10);
    expectNotification(updateBytes([], good, [24, 10, 0]), 3, 10);
    expectNotification(updateBytes([40, 1, 2, 3, 4, 5], [], []), 3, 10);
  });

  it('an unrecognized well-known attribute: Unrecognized Well-known Attribute, data = the attribute', () => {
    expectNotification(updateBytes([], [...good, 0x40, 99, 1, 7], NLRI), 3, 2, Buffer.from([99, 1, 7]));
  });

  it('MP_REACH_NLRI or MP_UNREACH_NLRI twice: Malformed Attribute List (RFC 7606 §3 g)', () => {
    const unreach = [0x80, 15, 3, 0, 2, 1];
    expectNotification(updateBytes([], [...unreach, ...unreach], []), 3, 1);
  });

  it('a malformed MP_REACH_NLRI / MP_UNREACH_NLRI: Optional Attribute Error (RFC 4760 §7)', () => {
    expectNotification(updateBytes([], [0x80, 14, 3, 0, 2, 1], []), 3, 9); // too short
    expectNotification(updateBytes([], [...ORIGIN, ...AS_PATH, 0x80, 14, 7, 0, 2, 1, 40, 0, 0, 0], []), 3, 9); // next hop overruns
    expectNotification(updateBytes([], [...ORIGIN, ...AS_PATH, 0x80, 14, 23, 0, 2, 1, 16, ...new Array(16).fill(0xfd), 0, 129, 0], []), 3, 9); // bad prefix
    expectNotification(updateBytes([], [0x80, 15, 5, 0, 2, 1, 64, 0xfd], []), 3, 9); // bad withdrawn prefix
    expectNotification(updateBytes([], [0x80, 15, 2, 0, 2], []), 3, 9);
    expectNotification(updateBytes([], [0x80, 14, 200, 0, 2, 1], []), 3, 9); // length past the attributes
  });

  it('MP attributes with wrong flags: Attribute Flags Error, data = the attribute', () => {
    expectNotification(updateBytes([], [0x40, 15, 3, 0, 2, 1], []), 3, 4, Buffer.from([15, 3, 0, 2, 1]));
  });
});

describe('UPDATE errors handled without a reset (RFC 7606)', () => {
  it('a well-formed UPDATE has no notes', () => {
    assert.deepEqual(notes(updateBytes([], good, NLRI)), []);
  });

  it('treat-as-withdraw: bad ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES, LARGE_COMMUNITY, flags, missing mandatory attributes', () => {
    const cases: [number[], string][] = [
      [[0x40, 1, 2, 0, 0, ...AS_PATH, ...NEXT_HOP], 'treat-as-withdraw:1'],
      [[0x40, 1, 1, 3, ...AS_PATH, ...NEXT_HOP], 'treat-as-withdraw:1'],
      [[...ORIGIN, 0x40, 2, 3, 9, 1, 0, ...NEXT_HOP], 'treat-as-withdraw:2'], // segment type 9
      [[...ORIGIN, 0x40, 2, 2, 2, 0, ...NEXT_HOP], 'treat-as-withdraw:2'], // empty segment
      [[...ORIGIN, 0x40, 2, 4, 2, 2, 0, 1, ...NEXT_HOP], 'treat-as-withdraw:2'], // overrun
      [[...ORIGIN, ...AS_PATH, 0x40, 3, 3, 10, 0, 0], 'treat-as-withdraw:3'],
      [[...good, 0x80, 4, 3, 0, 0, 0], 'treat-as-withdraw:4'],
      [[...good, 0x40, 5, 2, 0, 0], 'treat-as-withdraw:5'],
      [[...good, 0xc0, 8, 3, 0, 0, 0], 'treat-as-withdraw:8'],
      [[...good, 0xc0, 8, 0], 'treat-as-withdraw:8'],
      [[...good, 0xc0, 32, 8, 0, 0, 0, 0, 0, 0, 0, 0], 'treat-as-withdraw:32'],
      [[...good, 0xc0, 16, 4, 0, 0, 0, 0], 'treat-as-withdraw:16'],
      [[...good, 0x80, 9, 2, 0, 0], 'treat-as-withdraw:9'],
      [[...good, 0x80, 10, 3, 0, 0, 0], 'treat-as-withdraw:10'],
      [[0xc0, 1, 1, 0, ...AS_PATH, ...NEXT_HOP], 'treat-as-withdraw:1'], // ORIGIN marked optional
      [[...good, 0x40, 8, 4, 0, 0, 0, 1], 'treat-as-withdraw:8'], // COMMUNITIES marked well-known
      [[0x60, 1, 1, 0, ...AS_PATH, ...NEXT_HOP], 'treat-as-withdraw:1'], // Partial on a well-known attribute
      [[...AS_PATH, ...NEXT_HOP], 'treat-as-withdraw:1'], // missing ORIGIN
      [[...ORIGIN, ...NEXT_HOP], 'treat-as-withdraw:2'],
      [[...ORIGIN, ...AS_PATH], 'treat-as-withdraw:3'],
      [[...good, 0x40], 'treat-as-withdraw:-'], // fewer than 3 octets left (RFC 7606 §4)
      [[...good, 0x40, 5, 9, 0], 'treat-as-withdraw:5'], // attribute past the total length
    ];
    for (const [attrs, expected] of cases) assert.deepEqual(notes(updateBytes([], attrs, NLRI)), [expected], Buffer.from(attrs).toString('hex'));
  });

  it('treat-as-withdraw: IPv6 MP_REACH_NLRI next hop of a wrong length', () => {
    const mp = [0x80, 14, 10, 0, 2, 1, 4, 10, 0, 0, 1, 0, 0]; // 4-octet next hop for IPv6, one /0 prefix
    assert.deepEqual(notes(updateBytes([], [...mp, ...ORIGIN, ...AS_PATH], [])), ['treat-as-withdraw:14']);
  });

  it('attribute discard: ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR of a wrong length; repeated attributes keep the first', () => {
    assert.deepEqual(notes(updateBytes([], [...good, 0x40, 6, 1, 0], NLRI)), ['attribute-discard:6']);
    assert.deepEqual(notes(updateBytes([], [...good, 0xc0, 7, 6, 0, 1, 10, 0, 0, 1], NLRI)), ['attribute-discard:7']); // 4-octet session: 8 expected
    assert.deepEqual(notes(updateBytes([], [...good, 0xc0, 17, 3, 2, 1, 0], NLRI)), ['attribute-discard:17']);
    assert.deepEqual(notes(updateBytes([], [...good, 0xc0, 18, 4, 0, 0, 0, 1], NLRI)), ['attribute-discard:18']);
    const twice = updateBytes([], [...good, 0x40, 1, 1, 2], NLRI);
    assert.deepEqual(notes(twice), ['attribute-discard:1']);
    const m = updateOf(parseMessage(twice, FOUR));
    assert.deepEqual(m.pathAttributes.find((a) => a.kind === 'origin'), { kind: 'origin', flags: 0x40, origin: 0 });
  });

  it('withdrawals and End-of-RIB need no attributes; unknown optional attributes are kept', () => {
    assert.deepEqual(notes(updateBytes(NLRI, [], [])), []);
    assert.deepEqual(notes(updateBytes([], [], [])), []);
    const m = updateOf(parseMessage(updateBytes([], [...good, 0xc0, 200, 2, 1, 2], NLRI), FOUR));
    assert.deepEqual(m.pathAttributes.at(-1), { kind: 'other', flags: 0xc0, typeCode: 200, value: Buffer.from([1, 2]) });
  });

  it('2-octet AS sessions read AS_PATH and AGGREGATOR with 2-octet numbers', () => {
    const b = updateBytes([], [...ORIGIN, 0x40, 2, 4, 2, 1, 0xfd, 0xe8, ...NEXT_HOP, 0xc0, 7, 6, 0xfd, 0xe8, 10, 0, 0, 9], NLRI);
    const m = updateOf(parseMessage(b, { fourOctetAs: false, maxMessageLength: 4096 }));
    assert.equal(m.errors, undefined);
    assert.deepEqual(m.pathAttributes.find((a) => a.kind === 'as-path'), { kind: 'as-path', flags: 0x40, segments: [{ type: 2, asns: [65000] }] });
    assert.deepEqual(m.pathAttributes.find((a) => a.kind === 'aggregator'), { kind: 'aggregator', flags: 0xc0, asn: 65000, address: '10.0.0.9' });
  });
});

describe('serializer', () => {
  it('NOTIFICATION, ROUTE-REFRESH and End-of-RIB round-trip', () => {
    assert.deepEqual(parseMessage(serializeNotification({ errorCode: 6, errorSubcode: 2, data: Buffer.from([3, 0x61, 0x62, 0x63]) })),
      { type: 'notification', errorCode: 6, errorSubcode: 2, data: Buffer.from([3, 0x61, 0x62, 0x63]) });
    assert.deepEqual(parseMessage(serializeRouteRefresh({ afi: 2, subtype: 1, safi: 1 })), { type: 'route-refresh', afi: 2, subtype: 1, safi: 1 });
    assert.equal(serializeEndOfRib(1, 1).length, 23);
    assert.deepEqual(parseMessage(serializeEndOfRib(2, 1)), {
      type: 'update', withdrawnRoutes: [], nlri: [],
      pathAttributes: [{ kind: 'mp-unreach-nlri', flags: AttrFlag.OPTIONAL, afi: 2, safi: 1, withdrawnRoutes: [] }],
    });
  });

  it('a NOTIFICATION whose data would not fit in one message is cut to fit', () => {
    const n = serializeNotification({ errorCode: 3, errorSubcode: 1, data: Buffer.alloc(5000) });
    assert.equal(n.length, 4096);
  });

  it('attributes longer than 255 octets get the Extended Length flag', () => {
    const communities = Array.from({ length: 100 }, (_, i) => i);
    const u = serializeUpdate({ withdrawnRoutes: [], nlri: ['10.0.0.0/8'], pathAttributes: [
      { kind: 'origin', flags: 0x40, origin: 0 }, { kind: 'as-path', flags: 0x40, segments: [] },
      { kind: 'next-hop', flags: 0x40, nextHop: '10.0.0.1' }, { kind: 'communities', flags: 0xc0, communities },
    ] });
    const m = updateOf(parseMessage(u, FOUR));
    assert.deepEqual(m.pathAttributes.find((a) => a.kind === 'communities'), { kind: 'communities', flags: 0xd0, communities });
    void AttrType;
  });
});
