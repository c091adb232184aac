// The session state machine against a scripted peer on loopback: OPEN negotiation, timers, UPDATE flow, and the
// NOTIFICATION our session sends for each malformed or unexpected message, followed by a clean reconnect.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { AttrFlag, MessageType, type Message, type NotificationMessage, type UpdateMessage } from '../../../src/speaker/bgp/messages.js';
import { frame, serializeKeepalive, serializeNotification, serializeOpen, serializeRouteRefresh, serializeUpdate } from '../../../src/speaker/bgp/serializer.js';
import { Session, type PeerConfig, type SessionState } from '../../../src/speaker/bgp/session.js';
import { DEFAULT_CAPS, FakePeer, type FakeConnection } from '../../helpers/fake-bgp-peer.js';
import { seededRandom } from '../../helpers/random.js';

const sessions: Session[] = [];

function session(peer: FakePeer, cfg: Partial<PeerConfig> = {}, opts: { connectTimeoutMs?: number } = {}): Session {
  const s = new Session({ name: 'fake', peerAddress: '127.0.0.1', peerPort: peer.port, myASN: 64512, peerASN: 64500, connectTime: 0.05, ...cfg }, { nodeName: 'node1', ...opts });
  sessions.push(s);
  return s;
}

function waitState(s: Session, want: SessionState, timeoutMs = 10_000): Promise<void> {
  if (s.state === want) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`session still ${s.state}, wanted ${want}`)), timeoutMs);
    const on = (st: SessionState): void => {
      if (st !== want) return;
      clearTimeout(timer);
      s.off('state', on);
      resolve();
    };
    s.on('state', on);
  });
}

async function established(peer: FakePeer, s: Session, open = {}): Promise<FakeConnection> {
  const c = await peer.accept();
  await c.handshake(open);
  await waitState(s, 'Established');
  return c;
}

async function waitFor(ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const isUpdate = (m: Message): m is UpdateMessage => m.type === 'update';
const isEndOfRib = (m: Message): boolean => isUpdate(m) && m.nlri.length === 0 && m.withdrawnRoutes.length === 0 &&
  (m.pathAttributes.length === 0 || (m.pathAttributes.length === 1 && m.pathAttributes[0]!.kind === 'mp-unreach-nlri' && m.pathAttributes[0]!.withdrawnRoutes.length === 0));

let peer: FakePeer;
before(async () => {
  peer = await FakePeer.listen();
});
after(async () => {
  await Promise.all(sessions.map((s) => s.stop()));
  await peer.close();
});

describe('OPEN exchange', () => {
  it("sends MetalLB's OPEN plus our capabilities and reaches Established; advertises, then End-of-RIB per family", async () => {
    const s = session(peer);
    s.setAdvertisements([{ prefix: '10.96.0.1/32', communities: ['65000:1'] }, { prefix: 'fd00:96::1/128', largeCommunities: ['1:2:3'] }]);
    s.start();
    const c = await peer.accept();
    const open = await c.handshake();
    assert.equal(open.version, 4);
    assert.equal(open.myAutonomousSystem, 64512);
    assert.equal(open.holdTime, 90);
    assert.equal(open.bgpIdentifier, '127.0.0.1');
    assert.deepEqual(open.capabilities.map((x) => x.kind).sort(), ['enhanced-route-refresh', 'four-octet-as', 'multiprotocol', 'multiprotocol', 'route-refresh']);
    await waitState(s, 'Established');
    const v4 = await c.next<UpdateMessage>((m) => isUpdate(m) && m.nlri.length > 0);
    assert.deepEqual(v4.nlri, ['10.96.0.1/32']);
    assert.deepEqual(v4.pathAttributes.find((a) => a.kind === 'next-hop'), { kind: 'next-hop', flags: AttrFlag.TRANSITIVE, nextHop: '127.0.0.1' });
    // The IPv6 route goes over the IPv4 session with lo's IPv6 address as next hop.
    const v6 = await c.next<UpdateMessage>((m) => isUpdate(m) && m.pathAttributes[0]?.kind === 'mp-reach-nlri');
    assert.deepEqual(v6.pathAttributes[0], { kind: 'mp-reach-nlri', flags: 0x90, afi: 2, safi: 1, nextHops: ['::1'], nlri: ['fd00:96::1/128'] });
    await c.next(isEndOfRib);
    await c.next(isEndOfRib);
    const st = s.stats();
    assert.equal(st.announced, 2);
    assert.equal(st.negotiated?.holdTime, 90);
    assert.equal(st.negotiated?.keepaliveTime, 30);
    assert.equal(st.negotiated?.fourOctetAs, true);
    assert.equal(st.establishedCount, 1);
    await s.stop();
    const n = await c.notification();
    assert.deepEqual([n.errorCode, n.errorSubcode], [6, 2]);
    assert.equal(s.state, 'Idle');
  });

  it('4-octet local AS: AS_TRANS in the OPEN, the real AS in the capability; graceful restart when asked', async () => {
    const s = session(peer, { myASN: 4200000001, gracefulRestart: true, holdTime: 30 });
    s.start();
    const c = await peer.accept();
    const open = await c.handshake();
    assert.equal(open.myAutonomousSystem, 23456);
    assert.deepEqual(open.capabilities.find((x) => x.kind === 'four-octet-as'), { kind: 'four-octet-as', asn: 4200000001 });
    // The first session of a new speaker is a restart (R bit); forwarding is kept for both families (F bits).
    assert.deepEqual(open.capabilities.find((x) => x.kind === 'graceful-restart'), {
      kind: 'graceful-restart', restartState: true, notification: true, restartTime: 120,
      families: [{ afi: 1, safi: 1, forwardingState: true }, { afi: 2, safi: 1, forwardingState: true }],
    });
    await waitState(s, 'Established');
    assert.equal(s.stats().negotiated?.restartState, true);
    assert.equal(s.stats().negotiated?.gracefulRestart, false, 'the peer sent no graceful restart capability');
    // A reconnect within the same process is no restart.
    c.close();
    await waitState(s, 'Idle');
    const c2 = await peer.accept();
    const open2 = await c2.handshake();
    const gr2 = open2.capabilities.find((x) => x.kind === 'graceful-restart');
    assert.equal(gr2?.kind === 'graceful-restart' && gr2.restartState, false);
    await waitState(s, 'Established');
    await s.stop();
  });

  it('graceful restart: End-of-RIB (IPv4: an empty UPDATE; IPv6: an empty MP_UNREACH_NLRI) waits until every route is known', async () => {
    const grCap = { kind: 'graceful-restart' as const, restartState: false, notification: true, restartTime: 90, families: [{ afi: 1, safi: 1, forwardingState: true }] };
    const s = new Session({ name: 'fake', peerAddress: '127.0.0.1', peerPort: peer.port, myASN: 64512, peerASN: 64500, connectTime: 0.05, gracefulRestart: true },
      { nodeName: 'node1' }, undefined, { restarting: true, ribComplete: false });
    sessions.push(s);
    s.setAdvertisements([{ prefix: '10.96.0.1/32' }]);
    s.start();
    const c = await established(peer, s, { capabilities: [...DEFAULT_CAPS, grCap] });
    await c.next((m) => isUpdate(m) && m.nlri.includes('10.96.0.1/32'));
    s.setAdvertisements([{ prefix: '10.96.0.1/32' }, { prefix: 'fd00:96::1/128' }]);
    await c.next((m) => isUpdate(m) && m.pathAttributes.some((a) => a.kind === 'mp-reach-nlri'));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.received.filter(isEndOfRib).length, 0, 'no End-of-RIB before the routes are all known');
    assert.deepEqual(s.stats().endOfRibSent, []);
    const n = s.stats().negotiated!;
    assert.equal(n.gracefulRestart, true);
    assert.equal(n.gracefulNotification, true);
    assert.deepEqual(n.peerGracefulRestart, { restartTime: 90, restartState: false, notification: true, forwarding: ['IPv4'] });
    s.setRibComplete(true);
    const v4 = await c.next<UpdateMessage>(isEndOfRib);
    const v6 = await c.next<UpdateMessage>(isEndOfRib);
    assert.deepEqual(v4.pathAttributes, []);
    assert.deepEqual(v6.pathAttributes, [{ kind: 'mp-unreach-nlri', flags: AttrFlag.OPTIONAL, afi: 2, safi: 1, withdrawnRoutes: [] }]);
    assert.deepEqual(s.stats().endOfRibSent, ['IPv4', 'IPv6']);
    // The peer's End-of-RIB markers are recognized as such, not taken for routes or errors.
    c.send(serializeUpdate({ withdrawnRoutes: [], pathAttributes: [], nlri: [] }));
    c.send(serializeUpdate({ withdrawnRoutes: [], pathAttributes: [{ kind: 'mp-unreach-nlri', flags: AttrFlag.OPTIONAL, afi: 2, safi: 1, withdrawnRoutes: [] }], nlri: [] }));
    await waitFor(() => s.stats().endOfRibReceived.length === 2);
    assert.deepEqual(s.stats().endOfRibReceived, ['IPv4', 'IPv6']);
    assert.equal(s.state, 'Established');
    // RFC 8538: with the N bit on both sides, an Administrative Shutdown goes as a Hard Reset carrying it, so the
    // peer drops our routes instead of keeping them stale.
    await s.stop(2, 'bye');
    const notif = await c.notification();
    assert.deepEqual([notif.errorCode, notif.errorSubcode], [6, 9]);
    assert.deepEqual([...notif.data.subarray(0, 3)], [6, 2, 3]);
    assert.equal(Buffer.from(notif.data.subarray(3)).toString(), 'bye');
  });

  it('graceful restart without the N bit at the peer: a plain Cease', async () => {
    const s = session(peer, { gracefulRestart: true });
    s.start();
    const c = await established(peer, s, { capabilities: [...DEFAULT_CAPS, { kind: 'graceful-restart', restartState: false, notification: false, restartTime: 90, families: [] }] });
    assert.equal(s.stats().negotiated?.gracefulNotification, false);
    await s.stop();
    const notif = await c.notification();
    assert.deepEqual([notif.errorCode, notif.errorSubcode], [6, 2]);
  });

  it('hold time: the smaller one wins and keepalives follow a third of it', async () => {
    const s = session(peer, { holdTime: 90 });
    s.start();
    const c = await established(peer, s, { holdTime: 3 });
    assert.equal(s.stats().negotiated?.holdTime, 3);
    assert.equal(s.stats().negotiated?.keepaliveTime, 1);
    const t0 = Date.now();
    await c.nextOfType('keepalive');
    await c.nextOfType('keepalive');
    assert.ok(Date.now() - t0 < 3000);
    await s.stop();
  });

  it('dynamicASN internal accepts our own AS (iBGP), external any other', async () => {
    const s = session(peer, { peerASN: undefined, dynamicASN: 'internal' });
    s.start();
    await established(peer, s, { myAutonomousSystem: 64512, capabilities: [...DEFAULT_CAPS.slice(0, 3), { kind: 'four-octet-as', asn: 64512 }] });
    assert.equal(s.stats().negotiated?.ibgp, true);
    await s.stop();
    const e = session(peer, { peerASN: undefined, dynamicASN: 'external' });
    e.start();
    await established(peer, e);
    assert.equal(e.stats().negotiated?.peerASN, 64500);
    await e.stop();
  });

  it('sourceAddress: the connection leaves from it, and it is the next hop and router ID', async () => {
    const s = session(peer, { sourceAddress: '127.0.0.2' });
    s.setAdvertisements([{ prefix: '10.96.0.9/32' }]);
    s.start();
    const c = await established(peer, s);
    assert.equal(c.socket.remoteAddress, '127.0.0.2');
    assert.equal(s.stats().negotiated?.localRouterId, '127.0.0.2');
    const u = await c.next<UpdateMessage>((m) => isUpdate(m) && m.nlri.length > 0);
    assert.deepEqual(u.pathAttributes.find((a) => a.kind === 'next-hop'), { kind: 'next-hop', flags: AttrFlag.TRANSITIVE, nextHop: '127.0.0.2' });
    await s.stop();
  });

  it('a peer without MP capabilities speaks IPv4 unicast only', async () => {
    const s = session(peer);
    s.start();
    await established(peer, s, { capabilities: [] });
    assert.deepEqual(s.stats().negotiated?.families, ['IPv4']);
    assert.equal(s.stats().negotiated?.fourOctetAs, false);
    await s.stop();
  });
});

/** Drives one bad OPEN exchange and returns the session's NOTIFICATION. */
async function badOpen(cfg: Partial<PeerConfig>, reply: (c: FakeConnection) => void): Promise<NotificationMessage> {
  const s = session(peer, cfg);
  s.start();
  const c = await peer.accept();
  await c.nextOfType('open');
  reply(c);
  const n = await c.notification();
  await waitState(s, 'Idle');
  await s.stop();
  return n;
}

const openBytes = (o: Partial<Parameters<typeof serializeOpen>[0]> = {}): Buffer =>
  serializeOpen({ version: 4, myAutonomousSystem: 64500, holdTime: 90, bgpIdentifier: '192.0.2.254', capabilities: DEFAULT_CAPS, ...o });

describe('OPEN errors (RFC 4271 §6.2) and FSM errors (RFC 6608)', () => {
  const cases: [string, Partial<PeerConfig>, (c: FakeConnection) => void, number, number][] = [
    ['wrong peer AS', {}, (c) => c.send(openBytes({ capabilities: [...DEFAULT_CAPS.slice(0, 3), { kind: 'four-octet-as', asn: 64999 }] })), 2, 2],
    ['dynamicASN internal, peer external', { peerASN: undefined, dynamicASN: 'internal' }, (c) => c.send(openBytes()), 2, 2],
    ['dynamicASN external, peer internal', { peerASN: undefined, dynamicASN: 'external' }, (c) => c.send(openBytes({ capabilities: [{ kind: 'four-octet-as', asn: 64512 }] })), 2, 2],
    ['version 3', {}, (c) => c.send(frame(1, Buffer.from([3, 0xfb, 0xf4, 0, 90, 192, 0, 2, 254, 0]))), 2, 1],
    ['hold time 2', {}, (c) => c.send(openBytes({ holdTime: 2 })), 2, 6],
    ['iBGP peer with our own router ID', { peerASN: 64512 }, (c) => c.send(openBytes({ bgpIdentifier: '127.0.0.1', capabilities: [{ kind: 'four-octet-as', asn: 64512 }] })), 2, 3],
    ['no address family in common', { families: ['IPv6'] }, (c) => c.send(openBytes({ capabilities: [{ kind: 'multiprotocol', afi: 1, safi: 1 }] })), 2, 7],
    ['unsupported optional parameter', {}, (c) => c.send(frame(1, Buffer.from([4, 0xfb, 0xf4, 0, 90, 192, 0, 2, 254, 3, 1, 1, 0]))), 2, 4],
    ['UPDATE in OpenSent', {}, (c) => c.send(serializeUpdate({ withdrawnRoutes: [], pathAttributes: [], nlri: [] })), 5, 1],
    ['KEEPALIVE in OpenSent', {}, (c) => c.send(serializeKeepalive()), 5, 1],
    ['ROUTE-REFRESH in OpenSent', {}, (c) => c.send(serializeRouteRefresh({ afi: 1, subtype: 0, safi: 1 })), 5, 1],
    ['UPDATE in OpenConfirm', {}, (c) => c.send(Buffer.concat([openBytes(), serializeUpdate({ withdrawnRoutes: [], pathAttributes: [], nlri: [] })])), 5, 2],
    ['OPEN in OpenConfirm', {}, (c) => c.send(Buffer.concat([openBytes(), openBytes()])), 5, 2],
    ['a bad header before the OPEN', {}, (c) => c.send(frame(42, Buffer.alloc(0))), 1, 3],
  ];
  for (const [name, cfg, reply, code, subcode] of cases) {
    it(`${name}: NOTIFICATION ${code}/${subcode}`, async () => {
      const n = await badOpen(cfg, reply);
      assert.deepEqual([n.errorCode, n.errorSubcode], [code, subcode]);
      if (code === 2 && subcode === 1) assert.deepEqual(Buffer.from(n.data), Buffer.from([0, 4]));
    });
  }

  it('no OPEN within the connect timeout: Hold Timer Expired, then a new attempt', async () => {
    const s = session(peer, {}, { connectTimeoutMs: 400 });
    s.start();
    const c = await peer.accept();
    await c.nextOfType('open');
    const n = await c.notification();
    assert.deepEqual([n.errorCode, n.errorSubcode], [4, 0]);
    const again = await peer.accept();
    await again.handshake();
    await waitState(s, 'Established');
    await s.stop();
  });
});

describe('established sessions', () => {
  it('the hold timer expires when the peer goes silent: NOTIFICATION 4/0, then reconnect', async () => {
    const s = session(peer, { holdTime: 3 });
    s.start();
    const c = await established(peer, s, { holdTime: 3 });
    const t0 = Date.now();
    const n = await c.notification(8000);
    assert.deepEqual([n.errorCode, n.errorSubcode], [4, 0]);
    const waited = Date.now() - t0;
    assert.ok(waited >= 2500 && waited < 6000, `${waited} ms`);
    assert.equal(s.stats().lastError, 'hold timer expired (3 s)');
    await established(peer, s, { holdTime: 3 });
    await s.stop();
  });

  it('a NOTIFICATION from the peer ends the session; it comes back at once', async () => {
    const s = session(peer);
    s.start();
    const c = await established(peer, s);
    c.send(serializeNotification({ errorCode: 6, errorSubcode: 2, data: Buffer.from([5, ...Buffer.from('maint')]) }));
    await waitState(s, 'Idle');
    assert.match(s.stats().lastError ?? '', /Cease \/ Administrative Shutdown: "maint"/);
    await established(peer, s);
    assert.equal(s.stats().establishedCount, 2);
    await s.stop();
  });

  it('routes follow setAdvertisements: additions, changes and withdrawals as diffs; re-advertised after a reconnect', async () => {
    const s = session(peer);
    s.setAdvertisements([{ prefix: '10.96.0.1/32' }, { prefix: '10.96.0.2/32' }]);
    s.start();
    const c = await established(peer, s);
    await c.next(isEndOfRib);
    const first = c.received.filter(isUpdate).flatMap((u) => u.nlri);
    assert.deepEqual(first.sort(), ['10.96.0.1/32', '10.96.0.2/32']);
    const mark = c.received.length;
    const later = (m: Message): boolean => c.received.indexOf(m) >= mark;
    s.setAdvertisements([{ prefix: '10.96.0.2/32', communities: ['1:2'] }, { prefix: '10.96.0.3/32' }]);
    const w = await c.next<UpdateMessage>((m) => later(m) && isUpdate(m) && m.withdrawnRoutes.length > 0);
    assert.deepEqual(w.withdrawnRoutes, ['10.96.0.1/32']);
    const changed = await c.next<UpdateMessage>((m) => later(m) && isUpdate(m) && m.nlri.includes('10.96.0.2/32'));
    assert.ok(changed.pathAttributes.some((a) => a.kind === 'communities'));
    assert.deepEqual(s.announcedPrefixes().sort(), ['10.96.0.2/32', '10.96.0.3/32']);
    c.close();
    await waitState(s, 'Idle');
    const c2 = await established(peer, s);
    await c2.next(isEndOfRib);
    assert.deepEqual(c2.received.filter(isUpdate).flatMap((u) => u.nlri).sort(), ['10.96.0.2/32', '10.96.0.3/32']);
    await s.stop();
  });

  it('ROUTE-REFRESH: everything is sent again, between BoRR and EoRR when enhanced route refresh is on', async () => {
    const s = session(peer);
    s.setAdvertisements([{ prefix: '10.96.0.1/32' }]);
    s.start();
    const c = await established(peer, s, { capabilities: [...DEFAULT_CAPS, { kind: 'enhanced-route-refresh' }] });
    await c.next(isEndOfRib);
    const mark = c.received.length;
    c.send(serializeRouteRefresh({ afi: 1, subtype: 0, safi: 1 }));
    const borr = await c.nextOfType('route-refresh');
    assert.equal(borr.subtype, 1);
    const again = await c.next<UpdateMessage>((m) => c.received.indexOf(m) >= mark && isUpdate(m) && m.nlri.length > 0);
    assert.deepEqual(again.nlri, ['10.96.0.1/32']);
    const eorr = await c.nextOfType('route-refresh');
    assert.equal(eorr.subtype, 2);
    assert.ok(c.received.indexOf(borr) < c.received.indexOf(again) && c.received.indexOf(again) < c.received.indexOf(eorr));
    // A refresh for a family not negotiated is ignored (RFC 2918 §4).
    c.send(serializeRouteRefresh({ afi: 25, subtype: 0, safi: 1 }));
    c.send(serializeKeepalive());
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(s.state, 'Established');
    await s.stop();
  });

  it('BFD down tears the session down with Cease / BFD Down and holds it until BFD is up again', async () => {
    const s = session(peer);
    s.setBfdState(true);
    s.start();
    const c = await established(peer, s);
    s.setBfdState(false);
    const n = await c.notification();
    assert.deepEqual([n.errorCode, n.errorSubcode], [6, 10]);
    assert.equal(s.state, 'Idle');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.state, 'Idle', 'no reconnection while BFD is down');
    s.setBfdState(true);
    await established(peer, s);
    await s.stop();
  });
});

/** An UPDATE body from its parts. */
const rawUpdate = (withdrawn: number[], attrs: number[], nlri: number[]): Buffer =>
  frame(MessageType.UPDATE, Buffer.from([withdrawn.length >> 8, withdrawn.length & 255, ...withdrawn, attrs.length >> 8, attrs.length & 255, ...attrs, ...nlri]));
const GOOD_ATTRS = [0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfb, 0xf4, 0x40, 3, 4, 10, 0, 0, 1];

describe('malformed messages after Established: the right NOTIFICATION, then a clean reconnect', () => {
  const corpus: [string, Buffer, number, number][] = [
    ['marker not all ones', (() => { const b = Buffer.from(serializeKeepalive()); b[0] = 0; return b; })(), 1, 1],
    ['length 18', (() => { const b = Buffer.from(serializeKeepalive()); b.writeUInt16BE(18, 16); return b; })(), 1, 2],
    ['length 5000', (() => { const b = Buffer.alloc(19, 0xff); b.writeUInt16BE(5000, 16); b[18] = 2; return b; })(), 1, 2],
    ['KEEPALIVE with a body', frame(4, Buffer.from([1])), 1, 2],
    ['type 9', frame(9, Buffer.alloc(0)), 1, 3],
    ['OPEN in Established', openBytes(), 5, 3],
    ['withdrawn routes length past the end', rawUpdate([], [], []).fill(0x7f, 19, 20), 3, 1],
    ['prefix length 33', rawUpdate([], GOOD_ATTRS, [33, 1, 2, 3, 4, 5]), 3, 10],
    ['unrecognized well-known attribute', rawUpdate([], [...GOOD_ATTRS, 0x40, 77, 0], [24, 10, 1, 1]), 3, 2],
    ['MP_REACH_NLRI twice', rawUpdate([], [0x80, 15, 3, 0, 2, 1, 0x80, 15, 3, 0, 2, 1], []), 3, 1],
    ['MP_REACH_NLRI next hop overrun', rawUpdate([], [0x80, 14, 5, 0, 2, 1, 200, 0], []), 3, 9],
    ['ROUTE-REFRESH of 24 octets', frame(5, Buffer.from([0, 1, 0, 1, 0])), 7, 1],
  ];
  for (const [name, bytes, code, subcode] of corpus) {
    it(`${name}: ${code}/${subcode}`, async () => {
      const s = session(peer);
      s.start();
      const c = await established(peer, s);
      c.send(bytes);
      const n = await c.notification();
      assert.deepEqual([n.errorCode, n.errorSubcode], [code, subcode]);
      await established(peer, s);
      await s.stop();
    });
  }

  it('RFC 7606 treat-as-withdraw and attribute-discard cases keep the session up', async () => {
    const s = session(peer);
    s.start();
    const c = await established(peer, s);
    c.send(rawUpdate([], [0x40, 1, 1, 7, ...GOOD_ATTRS.slice(4)], [24, 10, 1, 1])); // bad ORIGIN value
    c.send(rawUpdate([], [...GOOD_ATTRS, 0xc0, 8, 3, 1, 2, 3], [24, 10, 1, 1])); // COMMUNITIES not a multiple of 4
    c.send(rawUpdate([], [...GOOD_ATTRS, 0x40, 6, 1, 0], [24, 10, 1, 1])); // ATOMIC_AGGREGATE with a value
    c.send(rawUpdate([], GOOD_ATTRS.slice(4), [24, 10, 1, 1])); // ORIGIN missing
    c.send(serializeKeepalive());
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.state, 'Established');
    assert.equal(s.stats().updatesReceived, 4);
    assert.equal(c.received.filter((m) => m.type === 'notification').length, 0);
    await s.stop();
  });

  it('fuzzed messages (random bit flips, truncations, garbage; seeded) never crash or wedge the session', async () => {
    const random = seededRandom(8);
    const s = session(peer);
    s.start();
    const valid: Buffer[] = [
      rawUpdate([], GOOD_ATTRS, [24, 10, 1, 1]),
      serializeUpdate({ withdrawnRoutes: ['10.9.0.0/16'], nlri: [], pathAttributes: [] }),
      serializeUpdate({ withdrawnRoutes: [], nlri: [], pathAttributes: [
        { kind: 'mp-reach-nlri', flags: 0x90, afi: 2, safi: 1, nextHops: ['fd00::1', 'fe80::1'], nlri: ['fd00:1::/64'] },
        { kind: 'origin', flags: 0x40, origin: 0 }, { kind: 'as-path', flags: 0x40, segments: [{ type: 2, asns: [64500] }] },
        { kind: 'large-communities', flags: 0xc0, communities: [[1, 2, 3]] },
      ] }),
      serializeRouteRefresh({ afi: 1, subtype: 0, safi: 1 }),
      serializeKeepalive(),
    ];
    let notifications = 0;
    let c = await established(peer, s);
    for (let round = 0; round < 150; round++) {
      const base = Buffer.from(valid[Math.floor(random() * valid.length)]!);
      const mode = random();
      let bytes: Buffer;
      if (mode < 0.5) {
        // Flip bytes past the marker (the marker check is trivial); keep the length field half of the time.
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++) {
          const at = 16 + Math.floor(random() * (base.length - 16));
          if (at === 16 || at === 17) {
            if (random() < 0.5) continue;
          }
          base[at] = Math.floor(random() * 256);
        }
        bytes = base;
      } else if (mode < 0.8) {
        // Truncate the body but fix the length field, so the header is consistent and the body is not.
        const cut = 19 + Math.floor(random() * (base.length - 19));
        bytes = Buffer.from(base.subarray(0, cut));
        bytes.writeUInt16BE(cut, 16);
      } else {
        bytes = Buffer.from(Array.from({ length: 19 + Math.floor(random() * 60) }, () => Math.floor(random() * 256)));
        if (random() < 0.7) bytes.fill(0xff, 0, 16);
      }
      c.send(bytes);
      c.send(serializeKeepalive());
      // Either the session stays up, or it sends a NOTIFICATION, closes, and comes back. The session leaves
      // Established at the moment it decides to send one, so its state tells which.
      await new Promise((r) => setTimeout(r, 60));
      if (s.state !== 'Established' || c.received.some((m) => m.type === 'notification')) {
        const n = await c.nextOfType('notification', 5000);
        assert.ok(n.errorCode >= 1 && n.errorCode <= 7, `round ${round}: ${bytes.toString('hex')}`);
        notifications++;
        await c.closed;
        c = await established(peer, s);
      }
    }
    assert.ok(notifications > 20, `${notifications} NOTIFICATIONs`);
    assert.equal(s.state, 'Established');
    await s.stop();
  });
});

describe('connection failures', () => {
  it('a refused connection is retried with the back-off', async () => {
    const closed = await FakePeer.listen();
    const port = closed.port;
    await closed.close();
    const s = new Session({ name: 'refused', peerAddress: '127.0.0.1', peerPort: port, myASN: 1, peerASN: 2 }, { nodeName: 'n' });
    sessions.push(s);
    const states: string[] = [];
    s.on('state', (st, _p, reason) => states.push(`${st}${reason ? `:${reason}` : ''}`));
    s.start();
    await once(s, 'state'); // Connect
    await waitState(s, 'Idle');
    assert.match(s.stats().lastError ?? '', /ECONNREFUSED/);
    await s.stop();
  });
});
