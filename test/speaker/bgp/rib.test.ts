// Adj-RIB-Out diffs and the bulk UPDATE packer: what reaches the wire for a set of advertisements, decoded back
// with the parser.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IPFamily } from '../../../src/net/ip.js';
import { crc32, deriveNextHops, deriveRouterId, type InterfaceTable } from '../../../src/speaker/bgp/local-addresses.js';
import { AS_TRANS, MAX_MESSAGE_LENGTH, type PathAttribute, type UpdateMessage } from '../../../src/speaker/bgp/messages.js';
import { UpdatePacker, type EncodingContext } from '../../../src/speaker/bgp/packer.js';
import { Parser } from '../../../src/speaker/bgp/parser.js';
import { encodePrefix, encodePrefixSlow, ipv4Wire, wireText } from '../../../src/speaker/bgp/nlri.js';
import { AdjRibOut, formatStandardCommunity, type Advertisement } from '../../../src/speaker/bgp/rib.js';
import { seededRandom } from '../../helpers/random.js';
import { serializeUpdate } from '../../../src/speaker/bgp/serializer.js';
import { backoffDelay } from '../../../src/speaker/bgp/session.js';

const EBGP: EncodingContext = { ibgp: false, localAsn: 64512, fourOctetAs: true, nextHopV4: '10.0.0.11', nextHopV6: { global: 'fd00::11', linkLocal: 'fe80::11' } };
const BOTH = new Set<IPFamily>(['IPv4', 'IPv6']);

function decode(buffers: Buffer[], fourOctetAs = true): UpdateMessage[] {
  const p = new Parser();
  p.options.fourOctetAs = fourOctetAs;
  const out: UpdateMessage[] = [];
  for (const b of buffers) {
    p.parse(b, (m) => {
      assert.equal(m.type, 'update');
      if (m.type === 'update') out.push(m);
    });
  }
  assert.equal(p.buffered, 0);
  return out;
}

function lengths(buffers: Buffer[]): number[] {
  const all = Buffer.concat(buffers);
  const out: number[] = [];
  for (let i = 0; i < all.length; i += all.readUInt16BE(i + 16)) out.push(all.readUInt16BE(i + 16));
  return out;
}

/** Announced prefix → its attributes (MP_REACH_NLRI reduced to its next hops), from decoded UPDATEs. */
function announced(updates: UpdateMessage[]): Map<string, { attrs: PathAttribute[]; nextHops: readonly string[] }> {
  const out = new Map<string, { attrs: PathAttribute[]; nextHops: readonly string[] }>();
  for (const u of updates) {
    assert.equal(u.errors, undefined);
    const mp = u.pathAttributes.find((a) => a.kind === 'mp-reach-nlri');
    const rest = u.pathAttributes.filter((a) => a.kind !== 'mp-reach-nlri');
    const nh = u.pathAttributes.find((a) => a.kind === 'next-hop');
    for (const p of u.nlri) out.set(p, { attrs: rest, nextHops: nh?.kind === 'next-hop' ? [nh.nextHop] : [] });
    if (mp?.kind === 'mp-reach-nlri') for (const p of mp.nlri) out.set(p, { attrs: rest, nextHops: mp.nextHops });
  }
  return out;
}

function withdrawn(updates: UpdateMessage[]): string[] {
  return updates.flatMap((u) => [...u.withdrawnRoutes, ...u.pathAttributes.flatMap((a) => (a.kind === 'mp-unreach-nlri' ? a.withdrawnRoutes : []))]);
}

function flushAll(rib: AdjRibOut, packer: UpdatePacker, families = BOTH): Buffer[] {
  while (rib.pending > 0) rib.flush(packer, families, 100_000);
  return packer.take();
}

const v4 = (n: number): string => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32`;

describe('UpdatePacker', () => {
  it('packs 10,000 IPv4 /32s sharing attributes into few UPDATEs under 4096 octets', () => {
    const rib = new AdjRibOut();
    const ads: Advertisement[] = Array.from({ length: 10_000 }, (_, i) => ({ prefix: v4(i), communities: ['65000:1'], largeCommunities: ['1:2:3'] }));
    assert.deepEqual(rib.set(ads), []);
    const packer = new UpdatePacker(EBGP);
    const bufs = flushAll(rib, packer);
    const lens = lengths(bufs);
    assert.ok(lens.every((l) => l <= MAX_MESSAGE_LENGTH));
    // 5 octets per /32 and ~60 octets of attributes: about 800 per message.
    assert.ok(lens.length <= 13, `${lens.length} messages`);
    assert.equal(packer.messages, lens.length);
    const got = announced(decode(bufs));
    assert.equal(got.size, 10_000);
    const one = got.get('10.0.39.15/32')!;
    assert.deepEqual(one.nextHops, ['10.0.0.11']);
    assert.deepEqual(one.attrs.map((a) => a.kind), ['origin', 'as-path', 'next-hop', 'communities', 'large-communities']);
    assert.equal(rib.announced, 10_000);
    assert.equal(rib.pending, 0);
  });

  it('packs IPv6 prefixes into MP_REACH_NLRI (first attribute) with global + link-local next hop, and withdraws with MP_UNREACH_NLRI', () => {
    const rib = new AdjRibOut();
    const ads = Array.from({ length: 3000 }, (_, i) => ({ prefix: `fd00:96::${i.toString(16)}/128` }));
    rib.set(ads);
    const packer = new UpdatePacker(EBGP);
    const updates = decode(flushAll(rib, packer));
    assert.ok(updates.every((u) => u.pathAttributes[0]!.kind === 'mp-reach-nlri'));
    const got = announced(updates);
    assert.equal(got.size, 3000);
    assert.deepEqual(got.get('fd00:96::1a/128')!.nextHops, ['fd00::11', 'fe80::11']);
    rib.set(ads.slice(0, 1000));
    const w = decode(flushAll(rib, packer));
    assert.equal(new Set(withdrawn(w)).size, 2000);
    assert.ok(lengths(packer.take()).length === 0);
  });

  it('writes the same bytes as the general serializer', () => {
    const rib = new AdjRibOut();
    rib.set([{ prefix: '10.1.0.0/16', communities: ['1:2', '3:4'], largeCommunities: ['5:6:7'] }, { prefix: '10.2.0.0/16', communities: ['3:4', '1:2'], largeCommunities: ['large:5:6:7'] }]);
    const bufs = flushAll(rib, new UpdatePacker(EBGP));
    const expected = serializeUpdate({
      withdrawnRoutes: [], nlri: ['10.1.0.0/16', '10.2.0.0/16'],
      pathAttributes: [
        { kind: 'origin', flags: 0x40, origin: 0 },
        { kind: 'as-path', flags: 0x40, segments: [{ type: 2, asns: [64512] }] },
        { kind: 'next-hop', flags: 0x40, nextHop: '10.0.0.11' },
        { kind: 'communities', flags: 0xc0, communities: [(1 << 16) | 2, (3 << 16) | 4] },
        { kind: 'large-communities', flags: 0xc0, communities: [[5, 6, 7]] },
      ],
    });
    assert.deepEqual(Buffer.concat(bufs), expected);
  });

  it('iBGP: empty AS_PATH and LOCAL_PREF (100 when unset); eBGP never gets LOCAL_PREF', () => {
    const rib = new AdjRibOut();
    rib.set([{ prefix: '10.0.0.1/32', localPref: 250 }, { prefix: '10.0.0.2/32' }]);
    const ibgp = announced(decode(flushAll(rib, new UpdatePacker({ ...EBGP, ibgp: true }))));
    const attrsOf = (p: string, m: typeof ibgp): Record<string, unknown> => Object.fromEntries(m.get(p)!.attrs.map((a) => [a.kind, a]));
    assert.deepEqual(attrsOf('10.0.0.1/32', ibgp)['as-path'], { kind: 'as-path', flags: 0x40, segments: [] });
    assert.deepEqual(attrsOf('10.0.0.1/32', ibgp)['local-pref'], { kind: 'local-pref', flags: 0x40, value: 250 });
    assert.deepEqual(attrsOf('10.0.0.2/32', ibgp)['local-pref'], { kind: 'local-pref', flags: 0x40, value: 100 });
    rib.reset();
    const ebgp = announced(decode(flushAll(rib, new UpdatePacker(EBGP))));
    assert.equal(attrsOf('10.0.0.1/32', ebgp)['local-pref'], undefined);
  });

  it('a 4-octet local AS towards a 2-octet peer: AS_TRANS in AS_PATH and the real AS in AS4_PATH (RFC 6793 §4.2.2)', () => {
    const rib = new AdjRibOut();
    rib.set([{ prefix: '10.0.0.1/32' }]);
    const got = announced(decode(flushAll(rib, new UpdatePacker({ ...EBGP, localAsn: 4200000001, fourOctetAs: false })), false));
    const attrs = got.get('10.0.0.1/32')!.attrs;
    assert.deepEqual(attrs.find((a) => a.kind === 'as-path'), { kind: 'as-path', flags: 0x40, segments: [{ type: 2, asns: [AS_TRANS] }] });
    assert.deepEqual(attrs.find((a) => a.kind === 'as4-path'), { kind: 'as4-path', flags: 0xc0, segments: [{ type: 2, asns: [4200000001] }] });
  });

  it('a next hop override per advertisement; routes without a usable next hop are reported, not sent', () => {
    const rib = new AdjRibOut();
    rib.set([{ prefix: '10.0.0.1/32', nextHop: '10.0.0.99' }, { prefix: 'fd00::1/128' }, { prefix: '10.0.0.2/32' }]);
    const packer = new UpdatePacker({ ibgp: false, localAsn: 1, fourOctetAs: true, nextHopV4: '10.0.0.11' });
    const r = rib.flush(packer, BOTH, 100);
    assert.deepEqual(r.unsendable.map((x) => x.text), ['fd00::1/128']);
    const got = announced(decode(packer.take()));
    assert.deepEqual(got.get('10.0.0.1/32')!.nextHops, ['10.0.0.99']);
    assert.deepEqual(got.get('10.0.0.2/32')!.nextHops, ['10.0.0.11']);
    assert.equal(rib.announced, 2);
  });
});

describe('prefix encoding', () => {
  it('the allocation-free IPv4 path agrees with the general parser (seeded random texts)', () => {
    const random = seededRandom(95);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const octet = (): string => pick([String(Math.floor(random() * 256)), String(Math.floor(random() * 300)), `0${Math.floor(random() * 10)}`, '0', '255', '']);
    for (let i = 0; i < 20_000; i++) {
      const len = pick([String(Math.floor(random() * 34)), '32', '0', '08', '', '100', 'x']);
      const text = `${octet()}.${octet()}.${octet()}.${octet()}${pick(['/', '/', '/', ''])}${len}${pick(['', '', '', ' ', '.0'])}`;
      assert.deepEqual(encodePrefix(text), encodePrefixSlow(text), text);
      const wire = ipv4Wire(text);
      if (wire !== null) assert.equal(wireText('IPv4', wire), encodePrefixSlow(text)!.text, text);
    }
  });
});

describe('AdjRibOut', () => {
  it('sends only the difference: new, changed and removed prefixes', () => {
    const rib = new AdjRibOut();
    const packer = new UpdatePacker(EBGP);
    rib.set([{ prefix: '10.0.0.1/32' }, { prefix: '10.0.0.2/32' }, { prefix: '10.0.0.3/32' }]);
    assert.equal(announced(decode(flushAll(rib, packer))).size, 3);
    rib.set([{ prefix: '10.0.0.1/32' }, { prefix: '10.0.0.2/32', communities: ['1:1'] }, { prefix: '10.0.0.4/32' }]);
    assert.equal(rib.pending, 3);
    const u = decode(flushAll(rib, packer));
    assert.deepEqual([...announced(u).keys()].sort(), ['10.0.0.2/32', '10.0.0.4/32']);
    assert.deepEqual(withdrawn(u), ['10.0.0.3/32']);
    rib.set([{ prefix: '10.0.0.4/32' }, { prefix: '10.0.0.2/32', communities: ['1:1'] }, { prefix: '10.0.0.1/32' }]);
    assert.equal(rib.pending, 0, 'the same set in another order is no change');
  });

  it('a prefix added and removed before a flush never reaches the wire', () => {
    const rib = new AdjRibOut();
    rib.set([{ prefix: '10.0.0.1/32' }]);
    rib.set([]);
    assert.deepEqual(decode(flushAll(rib, new UpdatePacker(EBGP))), []);
  });

  it('merges duplicates like MetalLB: communities united, the first local preference kept; host bits masked', () => {
    const rib = new AdjRibOut();
    rib.set([
      { prefix: '10.0.0.7/24', localPref: 10, communities: ['1:1'] },
      { prefix: '10.0.0.0/24', localPref: 20, communities: ['2:2', '1:1'], largeCommunities: ['9:9:9'] },
    ]);
    const [route] = [...rib.desiredRoutes()];
    assert.equal(rib.size, 1);
    assert.equal(route!.text, '10.0.0.0/24');
    assert.deepEqual(route!.attrs, { localPref: 10, communities: [65537, 131074], largeCommunities: [[9, 9, 9]] });
  });

  it('refuses bad advertisements with a message and keeps the rest', () => {
    const rib = new AdjRibOut();
    const errors = rib.set([
      { prefix: 'nonsense' },
      { prefix: '10.0.0.1/33' },
      { prefix: '10.0.0.1/32', communities: ['70000:1'] },
      { prefix: '10.0.0.2/32', largeCommunities: ['1:2'] },
      { prefix: '10.0.0.3/32', localPref: -1 },
      { prefix: '10.0.0.4/32', nextHop: 'fd00::1' },
      { prefix: '10.0.0.5/32' },
    ]);
    assert.equal(errors.length, 6);
    assert.match(errors[2]!, /community "70000:1"/);
    assert.deepEqual([...rib.desiredRoutes()].map((r) => r.text), ['10.0.0.5/32']);
  });

  it('reset() after a session loss makes everything pending again; resend() re-sends one family', () => {
    const rib = new AdjRibOut();
    rib.set([{ prefix: '10.0.0.1/32' }, { prefix: 'fd00::1/128' }]);
    flushAll(rib, new UpdatePacker(EBGP));
    rib.resend('IPv6');
    assert.equal(rib.pending, 1);
    assert.deepEqual([...announced(decode(flushAll(rib, new UpdatePacker(EBGP)))).keys()], ['fd00::1/128']);
    rib.reset();
    assert.equal(rib.pending, 2);
    assert.equal(rib.announced, 0);
  });

  it('resend() keeps a pending withdrawal: a ROUTE-REFRESH before the flush does not leave the peer a stale route', () => {
    const rib = new AdjRibOut();
    rib.set([{ prefix: '10.0.0.1/32' }, { prefix: '10.0.0.2/32' }]);
    const packer = new UpdatePacker(EBGP);
    flushAll(rib, packer);
    rib.set([{ prefix: '10.0.0.1/32' }]);
    rib.resend('IPv4');
    const u = decode(flushAll(rib, packer));
    assert.deepEqual(withdrawn(u), ['10.0.0.2/32']);
    assert.deepEqual([...announced(u).keys()], ['10.0.0.1/32']);
    assert.equal(rib.announced, 1);
    assert.equal(rib.pending, 0);
  });

  it('what the peer holds ends equal to the wanted set through random set/partial flush/resend/reset sequences', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = seededRandom(seed);
      const rib = new AdjRibOut();
      const packer = new UpdatePacker(EBGP);
      /** Prefix -> communities, as the peer has it (from the decoded UPDATEs). */
      const peer = new Map<string, string>();
      let want = new Map<string, string>();
      const prefixes = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? `fd00:97::${(i + 1).toString(16)}/128` : v4(i)));
      const apply = (bufs: Buffer[]): void => {
        const u = decode(bufs);
        for (const p of withdrawn(u)) peer.delete(p);
        for (const [p, a] of announced(u)) {
          const c = a.attrs.find((x) => x.kind === 'communities');
          peer.set(p, c?.kind === 'communities' ? c.communities.map(formatStandardCommunity).join(',') : '');
        }
      };
      for (let step = 0; step < 60; step++) {
        const r = rnd();
        if (r < 0.45) {
          want = new Map();
          for (const p of prefixes) if (rnd() < 0.5) want.set(p, rnd() < 0.5 ? '' : `65000:${Math.floor(rnd() * 3)}`);
          rib.set([...want].map(([p, c]) => ({ prefix: p, ...(c ? { communities: [c] } : {}) })));
        } else if (r < 0.75) {
          apply((rib.flush(packer, BOTH, 1 + Math.floor(rnd() * 10)), packer.take()));
        } else if (r < 0.9) {
          rib.resend(rnd() < 0.5 ? 'IPv4' : 'IPv6');
        } else {
          rib.reset();
          peer.clear();
        }
      }
      apply(flushAll(rib, packer));
      assert.deepEqual(new Map([...peer].sort()), new Map([...want].sort()), `seed ${seed}`);
      assert.equal(rib.announced, want.size, `seed ${seed}`);
    }
  });

  it('families not negotiated are not sent (and not counted as announced)', () => {
    const rib = new AdjRibOut();
    rib.set([{ prefix: '10.0.0.1/32' }, { prefix: 'fd00::1/128' }]);
    const packer = new UpdatePacker(EBGP);
    const r = rib.flush(packer, new Set<IPFamily>(['IPv4']), 100);
    assert.deepEqual(r.unsendable.map((x) => x.text), ['fd00::1/128']);
    assert.equal(rib.announced, 1);
  });
});

describe('router ID, next hops, back-off', () => {
  const table: InterfaceTable = {
    lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
    eth0: [
      { address: '10.0.0.11', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '10.0.0.11/24' },
      { address: 'fd00::11', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fd00::11/64', scopeid: 0 },
      { address: 'fe80::11', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::11/64', scopeid: 2 },
    ],
    eth1: [{ address: 'fd01::11', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:02', internal: false, cidr: 'fd01::11/64', scopeid: 0 }],
  };

  it('router ID: configured, else the local IPv4 address, else an IPv4 address of the interface, else CRC-32 of the node name', () => {
    assert.equal(deriveRouterId({ configured: '1.2.3.4', localAddress: '10.0.0.11', nodeName: 'n', table }), '1.2.3.4');
    assert.equal(deriveRouterId({ localAddress: '10.0.0.11', nodeName: 'n', table }), '10.0.0.11');
    assert.equal(deriveRouterId({ localAddress: 'fd00::11', nodeName: 'n', table }), '10.0.0.11');
    // Go: crc32.ChecksumIEEE([]byte("node1")) written little-endian.
    const c = crc32(Buffer.from('node1'));
    assert.equal(c, 0x85ef2540);
    assert.equal(deriveRouterId({ localAddress: 'fd01::11', nodeName: 'node1', table }), '64.37.239.133');
  });

  it('next hops: the local address, the other family from the same interface, link-local only for on-link peers', () => {
    assert.deepEqual(deriveNextHops('10.0.0.11', '10.0.0.1', table), { v4: '10.0.0.11', v6: { global: 'fd00::11', linkLocal: 'fe80::11' } });
    assert.deepEqual(deriveNextHops('10.0.0.11', '192.168.7.1', table), { v4: '10.0.0.11', v6: { global: 'fd00::11' } });
    assert.deepEqual(deriveNextHops('fd00::11', 'fd00::1', table), { v4: '10.0.0.11', v6: { global: 'fd00::11', linkLocal: 'fe80::11' } });
    assert.deepEqual(deriveNextHops('fd01::11', 'fd02::1', table), { v6: { global: 'fd01::11' } });
  });

  it("MetalLB's back-off: 0, 1, 2, 4 … 120 s; connectTime fixes the interval", () => {
    assert.deepEqual([0, 1, 2, 3, 4, 7, 8, 20].map((n) => backoffDelay(n)), [0, 1000, 2000, 4000, 8000, 64000, 120000, 120000]);
    assert.equal(backoffDelay(5, 3), 3000);
    assert.equal(backoffDelay(0, 3), 0);
  });
});
