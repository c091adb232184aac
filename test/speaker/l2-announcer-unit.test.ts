// The layer 2 announcer without a network: interface rules, the exclude file, the BPF filters on captured frames,
// responses built from captured requests, gratuitous timing on a mocked clock, ref counting, rescans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatIpBytes, formatMac, ipToBytes, parseMac } from '../../src/net/addresses.js';
import { decode, encode, PacketType, run } from '../../src/net/bpf.js';
import { icmpv6Checksum } from '../../src/net/checksum.js';
import { ArpOperation, EtherType, Icmpv6Type } from '../../src/net/messages.js';
import { parseArpFrame, parseNdpFrame } from '../../src/net/parser.js';
import { createLogger } from '../../src/log.js';
import type { FrameTransport } from '../../src/speaker/l2/announced.js';
import { Announcer, type IntervalTimers, type OpenFrameSocket } from '../../src/speaker/l2/announcer.js';
import { DEFAULT_EXCLUDED_INTERFACES, compileExclude, loadExcludeRule } from '../../src/speaker/l2/exclude.js';
import {
  arpRequestFilter,
  arpRequestProgram,
  arpRequestProgramFor,
  MAX_FILTERED_ADDRESSES,
  neighborSolicitationProgram,
  neighborSolicitationProgramFor,
} from '../../src/speaker/l2/filters.js';
import { classifyInterfaces, IFF_BROADCAST, IFF_NOARP, IFF_UP, parseIfInet6, type LinkInfo } from '../../src/speaker/l2/interfaces.js';
import { MulticastMemberships, type MembershipSocket } from '../../src/speaker/l2/multicast.js';

const fixtures = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'net', 'frames.json'), 'utf8'),
) as Record<string, { hex: string }>;
const fixture = (name: string): Buffer => Buffer.from(fixtures[name]!.hex, 'hex');

const UP_BCAST = IFF_UP | IFF_BROADCAST | 0x1000;
const LL = (last: number) => Buffer.from(`fe80000000000000000000000000${last.toString(16).padStart(4, '0')}`, 'hex');
const link = (name: string, index: number, over: Partial<LinkInfo> = {}): LinkInfo => ({
  name,
  index,
  flags: UP_BCAST,
  type: 1,
  mac: parseMac(`02:93:00:00:20:${index.toString(16).padStart(2, '0')}`),
  hasMaster: false,
  linkLocal: LL(index),
  ...over,
});

test('interface rules: exclusion by name first, then up, master, NOARP, Ethernet; ARP needs BROADCAST, NDP a link-local', () => {
  const exclude = compileExclude(DEFAULT_EXCLUDED_INTERFACES, 'test').regexp;
  const scan = classifyInterfaces(
    [
      link('eth0', 2),
      link('lo', 1, { flags: IFF_UP | 0x8, type: 772 }),
      link('veth1234abcd', 3),
      link('cali0', 4),
      link('eth1', 5, { flags: 0x1002 }), // down
      link('eth2', 6, { hasMaster: true }),
      link('eth3', 7, { flags: UP_BCAST | IFF_NOARP }),
      link('eth4', 8, { linkLocal: undefined }),
      link('wg0', 9, { flags: IFF_UP | 0x10, mac: undefined, type: 65534 }),
      link('eth5', 10, { flags: IFF_UP }), // no BROADCAST: NDP only
      link('eth6', 11, { flags: IFF_UP, linkLocal: undefined }),
      link('lxcbr0', 12),
    ],
    exclude,
  );
  assert.deepEqual(scan.names, ['eth0', 'eth1', 'eth2', 'eth3', 'eth4', 'wg0', 'eth5', 'eth6'], 'excluded names are not node interfaces at all');
  assert.deepEqual(
    scan.usable.map((u) => [u.name, u.arp, u.ndp]),
    [
      ['eth0', true, true],
      ['eth4', true, false],
      ['eth5', false, true],
    ],
  );
  assert.deepEqual(Object.fromEntries(scan.skipped.map((s) => [s.name, s.why])), {
    lo: 'excluded by name',
    veth1234abcd: 'excluded by name',
    cali0: 'excluded by name',
    eth1: 'not up',
    eth2: 'has a master (bond or bridge port)',
    eth3: 'NOARP',
    wg0: 'not Ethernet (link type 65534)',
    eth6: 'neither BROADCAST nor an IPv6 link-local address',
    lxcbr0: 'excluded by name',
  });
});

test('/proc/net/if_inet6: the first link-local address per interface', () => {
  const text = [
    '00000000000000000000000000000001 01 80 10 80       lo',
    'fd000093000a00000000000000000001 02 40 00 80     eth0',
    'fe800000000000000093fffffe000001 02 40 20 80     eth0',
    'fe800000000000000000000000000002 02 40 20 80     eth0',
    'febf0000000000000000000000000009 03 40 20 80     eth1',
    'garbage line',
  ].join('\n');
  const ll = parseIfInet6(text);
  assert.deepEqual([...ll.keys()], ['eth0', 'eth1']);
  assert.equal(formatIpBytes(ll.get('eth0')!, 0, 16), 'fe80::93:ffff:fe00:1');
});

test("excludel2.yaml: absent gives MetalLB's manifest list; present is used as is; bad content is a clear error", () => {
  const dir = mkdtempSync(join(tmpdir(), 'tl2-exclude-'));
  try {
    const absent = loadExcludeRule(join(dir, 'none.yaml'));
    assert.equal(absent.source, 'built-in default');
    assert.ok(absent.regexp!.test('veth0') && absent.regexp!.test('lo') && !absent.regexp!.test('eth0') && !absent.regexp!.test('lo0'));
    const file = join(dir, 'excludel2.yaml');
    writeFileSync(file, 'announcedInterfacesToExclude: ["^tl2-b.*", "^bond1$"]\n');
    const custom = loadExcludeRule(file);
    assert.equal(custom.regexp!.source, '(^tl2-b.*)|(^bond1$)');
    assert.ok(custom.regexp!.test('tl2-b1') && !custom.regexp!.test('veth0') && !custom.regexp!.test('bond10'));
    writeFileSync(file, 'other: 1\n');
    assert.equal(loadExcludeRule(file).regexp, undefined, 'a file without the key excludes nothing (MetalLB)');
    writeFileSync(file, '');
    assert.equal(loadExcludeRule(file).regexp, undefined);
    writeFileSync(file, 'announcedInterfacesToExclude: ["(unclosed"]\n');
    assert.throws(() => loadExcludeRule(file), /announcedInterfacesToExclude entry "\(unclosed" is not a valid regular expression/);
    writeFileSync(file, 'announcedInterfacesToExclude: "^eth0"\n');
    assert.throws(() => loadExcludeRule(file), /must be a list of strings/);
    writeFileSync(file, 'announcedInterfacesToExclude: [\n');
    assert.throws(() => loadExcludeRule(file), /not valid YAML/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BPF filters on captured frames: ARP requests to broadcast or us; neighbor solicitations; nothing outgoing or tagged', () => {
  const arp = (name: string, meta: { pktType?: number; vlanTagPresent?: boolean } = {}) => run(arpRequestProgram, fixture(name), meta) > 0;
  assert.ok(arp('arpingRequest', { pktType: PacketType.broadcast }));
  assert.ok(arp('kernelArpRequest', { pktType: PacketType.host }));
  assert.ok(!arp('kernelArpReply', { pktType: PacketType.host }), 'replies');
  assert.ok(!arp('arpingRequest', { pktType: PacketType.outgoing }), 'our own frames');
  assert.ok(!arp('arpingRequest', { pktType: PacketType.otherHost }), 'to another host (promiscuous NIC)');
  assert.ok(!arp('arpingRequest', { pktType: PacketType.multicast }), 'to a multicast MAC (MetalLB: broadcast or us only)');
  assert.ok(!arp('arpingRequest', { pktType: PacketType.broadcast, vlanTagPresent: true }), 'tagged');
  assert.ok(!run(arpRequestProgram, fixture('arpingRequest').subarray(0, 21), { pktType: 1 }), 'too short for the opcode');

  const ns = (name: string, meta: { pktType?: number; vlanTagPresent?: boolean } = {}) => run(neighborSolicitationProgram, fixture(name), meta) > 0;
  assert.ok(ns('ndisc6Solicitation', { pktType: PacketType.multicast }));
  assert.ok(ns('kernelSolicitation', { pktType: PacketType.multicast }));
  assert.ok(ns('dadSolicitation', { pktType: PacketType.multicast }), 'DAD reaches the responder, which ignores it (no SLLA)');
  assert.ok(!ns('kernelSolicitedAdvertisement', { pktType: PacketType.host }));
  assert.ok(!ns('routerSolicitation', { pktType: PacketType.multicast }));
  assert.ok(!ns('mldReportWithHopByHop', { pktType: PacketType.multicast }));
  assert.ok(!ns('ndisc6Solicitation', { pktType: PacketType.outgoing }));
  assert.ok(!ns('ndisc6Solicitation', { pktType: PacketType.otherHost }));
  assert.ok(!ns('ndisc6Solicitation', { pktType: PacketType.multicast, vlanTagPresent: true }));
});

test('BPF filters naming the announced addresses: only requests and solicitations for them are kept', () => {
  const ip4 = (t: string) => ipToBytes(t)!.readUInt32BE(0);
  const arpFor = arpRequestProgramFor([ip4('10.93.20.200'), ip4('10.93.20.201')]);
  const asks = (program: ReturnType<typeof arpRequestProgramFor>, target: string) => run(program, arpRequest(target), { pktType: PacketType.broadcast }) > 0;
  assert.ok(asks(arpFor, '10.93.20.200') && asks(arpFor, '10.93.20.201'));
  assert.ok(!asks(arpFor, '10.93.20.202') && !asks(arpFor, '10.93.20.100'), 'other addresses stay in the kernel');
  assert.ok(!asks(arpRequestProgramFor([]), '10.93.20.200'), 'nothing announced: nothing kept');
  assert.ok(!run(arpFor, arpRequest('10.93.20.200'), { pktType: PacketType.otherHost }), 'the packet type rule still holds');
  assert.ok(!run(arpFor, arpRequest('10.93.20.200').subarray(0, 41), { pktType: PacketType.broadcast }), 'too short for the target');
  const many = Array.from({ length: MAX_FILTERED_ADDRESSES + 1 }, (_, i) => 0x0a5d0000 + i);
  assert.ok(asks(arpRequestProgramFor(many), '10.93.20.202'), 'past the limit every request is kept');
  const full = arpRequestProgramFor(many.slice(0, MAX_FILTERED_ADDRESSES));
  assert.ok(asks(full, '10.93.1.143') && !asks(full, '10.93.20.202'), 'at the limit the last one is still found');
  assert.deepEqual(decode(encode(full)), full, 'decode(encode(p)) is p');

  const v6 = ['fd00:93:20::200', 'fd00:93:21::200'].map((t) => ipToBytes(t)!);
  const nsFor = neighborSolicitationProgramFor(v6);
  const solicits = (program: ReturnType<typeof neighborSolicitationProgramFor>, target: string) =>
    run(program, solicitation(target), { pktType: PacketType.multicast }) > 0;
  assert.ok(solicits(nsFor, 'fd00:93:20::200') && solicits(nsFor, 'fd00:93:21::200'));
  for (const other of ['fd00:93:22::200', 'fd00:93:20::201', 'fe00:93:20::200', 'fd00:93:20:1::200']) assert.ok(!solicits(nsFor, other), other);
  const nsMany = neighborSolicitationProgramFor(Array.from({ length: MAX_FILTERED_ADDRESSES }, () => v6[1]!).concat([v6[0]!]));
  assert.ok(solicits(nsMany, 'fd00:93:22::200'), 'past the limit every solicitation is kept');
  const nsFull = neighborSolicitationProgramFor([...Array.from({ length: MAX_FILTERED_ADDRESSES - 1 }, () => v6[1]!), v6[0]!]);
  assert.ok(solicits(nsFull, 'fd00:93:20::200') && !solicits(nsFull, 'fd00:93:22::200'), 'at the limit (within 4096 instructions)');
  assert.ok(!run(nsFor, solicitation('fd00:93:20::200'), { pktType: PacketType.outgoing }));
});

// --- an announcer on fake interfaces and sockets ---

interface FakeSocket extends FrameTransport {
  ifname: string;
  protocol: number;
  sent: Buffer[];
  /** The filters the announcer gave it, opening filter first. */
  filters: Buffer[];
  closed: boolean;
  deliver(frame: Buffer): void;
}

/** A manual clock: intervals fire when tick() passes their time, in order. */
class FakeClock implements IntervalTimers {
  now = 1_000_000;
  private timers: { fn: () => void; ms: number; next: number; live: boolean }[] = [];
  setInterval(fn: () => void, ms: number) {
    const t = { fn, ms, next: this.now + ms, live: true };
    this.timers.push(t);
    return t;
  }
  clearInterval(h: unknown) {
    const t = this.timers.find((x) => x === h);
    if (t) t.live = false;
    this.timers = this.timers.filter((x) => x.live);
  }
  tick(ms: number) {
    const end = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      this.now = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.now = end;
  }
}

function harness(links: LinkInfo[], opts: { clock?: FakeClock } = {}) {
  const sockets: FakeSocket[] = [];
  const openSocket: OpenFrameSocket = (ifname, protocol, filter, onFrame) => {
    const s: FakeSocket = {
      ifname,
      protocol,
      sent: [],
      filters: [filter],
      setFilter(f) {
        this.filters.push(f);
      },
      closed: false,
      send(frame, offset, length) {
        this.sent.push(Buffer.from(frame.subarray(offset, offset + length)));
      },
      sendBatch(buf, stride, count) {
        for (let i = 0; i < count; i++) this.sent.push(Buffer.from(buf.subarray(i * stride, (i + 1) * stride)));
        return count;
      },
      close() {
        this.closed = true;
      },
      deliver(frame) {
        onFrame(frame, frame.length);
      },
    };
    sockets.push(s);
    return s;
  };
  const joined: string[] = [];
  const fakeMembership: MembershipSocket = {
    addMembership: (g, i) => void joined.push(`+${g}${i.slice(2)}`),
    dropMembership: (g, i) => void joined.push(`-${g}${i.slice(2)}`),
    close: () => undefined,
  };
  const current = { links };
  const announcer = new Announcer({
    log: createLogger('test', 'none'),
    exclude: compileExclude(DEFAULT_EXCLUDED_INTERFACES, 'test'),
    links: () => current.links,
    openSocket,
    memberships: new MulticastMemberships(() => fakeMembership),
    now: opts.clock ? () => opts.clock!.now : undefined,
    timers: opts.clock,
  }).start();
  const live = (ifname: string, protocol: number) => sockets.find((s) => s.ifname === ifname && s.protocol === protocol && !s.closed)!;
  return { announcer, sockets, joined, current, arp: (i: string) => live(i, EtherType.ARP), ndp: (i: string) => live(i, EtherType.IPv6) };
}

const CLIENT_MAC = parseMac('02:93:00:00:30:64')!;
function arpRequest(target: string, dst = 'ff:ff:ff:ff:ff:ff'): Buffer {
  const f = Buffer.from(fixture('kernelArpRequest'));
  parseMac(dst)!.copy(f, 0);
  CLIENT_MAC.copy(f, 6);
  CLIENT_MAC.copy(f, 22);
  ipToBytes('10.93.20.100')!.copy(f, 28);
  ipToBytes(target)!.copy(f, 38);
  return f;
}
function solicitation(target: string, withSlla = true): Buffer {
  const f = Buffer.from(fixture('ndisc6Solicitation'));
  CLIENT_MAC.copy(f, 6);
  ipToBytes('fe80::93:ff:fe00:3064')!.copy(f, 22);
  ipToBytes(target)!.copy(f, 62);
  CLIENT_MAC.copy(f, 80);
  const out = withSlla ? f : Buffer.concat([f.subarray(0, 78)]);
  if (!withSlla) out.writeUInt16BE(24, 18);
  out.writeUInt16BE(icmpv6Checksum(out, 54, out.readUInt16BE(18), out.subarray(22, 38), out.subarray(38, 54)), 56);
  return out;
}
const flush = () => new Promise<void>((r) => setImmediate(r));

test('ARP: a request for an announced address gets a reply from the interface MAC, to the requester', async () => {
  const h = harness([link('tl2-a', 2), link('tl2-b', 3)]);
  h.announcer.setBalancer('default/web', '10.93.20.200', 'all');
  await flush();
  const sock = h.arp('tl2-a');
  sock.sent.length = 0;
  sock.deliver(arpRequest('10.93.20.200'));
  assert.equal(sock.sent.length, 1);
  const r = parseArpFrame(sock.sent[0]!);
  assert.ok(r.ok);
  const { ethernet, arp } = r.value;
  assert.equal(formatMac(ethernet.destination), formatMac(CLIENT_MAC), 'to the requester');
  assert.equal(formatMac(ethernet.source), '02:93:00:00:20:02');
  assert.equal(arp.operation, ArpOperation.Reply);
  assert.equal(formatMac(arp.senderHardwareAddress), '02:93:00:00:20:02');
  assert.equal(formatIpBytes(arp.senderProtocolAddress, 0, 4), '10.93.20.200');
  assert.equal(formatMac(arp.targetHardwareAddress), formatMac(CLIENT_MAC));
  assert.equal(formatIpBytes(arp.targetProtocolAddress, 0, 4), '10.93.20.100');
  assert.equal(sock.sent[0]!.length, 60);

  // Unicast to our MAC is answered too; to another MAC, replies, other addresses and garbage are not.
  sock.deliver(arpRequest('10.93.20.200', '02:93:00:00:20:02'));
  sock.deliver(arpRequest('10.93.20.200', '02:93:00:00:99:99'));
  sock.deliver(arpRequest('10.93.20.201'));
  const reply = arpRequest('10.93.20.200');
  reply.writeUInt16BE(ArpOperation.Reply, 20);
  sock.deliver(reply);
  sock.deliver(arpRequest('10.93.20.200').subarray(0, 30));
  const wrongHardware = arpRequest('10.93.20.200');
  wrongHardware.writeUInt16BE(6, 14);
  sock.deliver(wrongHardware);
  assert.equal(sock.sent.length, 2);
  assert.deepEqual(h.announcer.counters().get('10.93.20.200'), { requestsReceived: 2, responsesSent: 2, gratuitousSent: 4 });
  assert.equal(h.announcer.drops.ethernetDestination, 1);
  assert.equal(h.announcer.drops.notAnnounced, 1);
  assert.equal(h.announcer.drops.notRequest, 1);
  assert.equal(h.announcer.drops.malformed, 2);
  h.announcer.close();
  assert.ok(h.sockets.every((s) => s.closed));
});

test('ARP: only on the selected interfaces; the selection can change; ref-counted by service; withdrawal sends nothing', async () => {
  const h = harness([link('tl2-a', 2), link('tl2-b', 3)]);
  h.announcer.setBalancer('ns/one', '10.93.20.200', ['tl2-a']);
  await flush();
  h.arp('tl2-a').sent.length = 0;
  assert.equal(h.arp('tl2-b').sent.length, 0, 'no gratuitous ARP on an interface not selected');
  h.arp('tl2-b').deliver(arpRequest('10.93.20.200'));
  assert.equal(h.arp('tl2-b').sent.length, 0);
  assert.equal(h.announcer.drops.notMatchInterface, 1);
  h.arp('tl2-a').deliver(arpRequest('10.93.20.200'));
  assert.equal(h.arp('tl2-a').sent.length, 1);

  // A second service on the same address, selecting tl2-b: the union answers.
  h.announcer.setBalancer('ns/two', '10.93.20.200', ['tl2-b', 'tl2-b']);
  h.arp('tl2-b').deliver(arpRequest('10.93.20.200'));
  assert.equal(h.arp('tl2-b').sent.filter((f) => f.readUInt16BE(20) === ArpOperation.Reply && f[0] !== 0xff).length, 1);
  h.announcer.deleteBalancer('ns/one');
  assert.ok(h.announcer.announceName('ns/two') && !h.announcer.announceName('ns/one'));
  const before = h.arp('tl2-a').sent.length + h.arp('tl2-b').sent.length;
  h.arp('tl2-a').deliver(arpRequest('10.93.20.200'));
  assert.equal(h.arp('tl2-a').sent.length + h.arp('tl2-b').sent.length, before, 'tl2-a was only ns/one');
  h.announcer.setBalancer('ns/two', '10.93.20.200', 'all');
  assert.deepEqual(h.announcer.announcements('ns/two'), [{ ip: '10.93.20.200', interfaces: 'all' }]);
  h.arp('tl2-a').deliver(arpRequest('10.93.20.200'));
  assert.equal(h.arp('tl2-a').sent.length + h.arp('tl2-b').sent.length, before + 1);
  h.announcer.deleteBalancer('ns/two');
  await flush();
  const after = h.arp('tl2-a').sent.length + h.arp('tl2-b').sent.length;
  h.arp('tl2-a').deliver(arpRequest('10.93.20.200'));
  h.announcer.deleteBalancer('ns/never');
  await flush();
  assert.equal(h.arp('tl2-a').sent.length + h.arp('tl2-b').sent.length, after, 'nothing sent after or at withdrawal');
  h.announcer.close();
});

test('each responder socket is narrowed to the addresses announced on its interface, in the turn of the change', async () => {
  const h = harness([link('tl2-a', 2), link('tl2-b', 3)]);
  const keeps = (sock: FakeSocket, frame: Buffer, pktType: number) => run(decode(sock.filters.at(-1)!), frame, { pktType }) > 0;
  assert.ok(run(decode(h.arp('tl2-a').filters[0]!), arpRequest('10.93.20.200'), { pktType: PacketType.broadcast }) > 0, 'opened taking every request');
  assert.ok(!keeps(h.arp('tl2-a'), arpRequest('10.93.20.200'), PacketType.broadcast), 'then narrowed: nothing announced yet');
  h.announcer.setBalancer('ns/a-only', '10.93.20.200', ['tl2-a']);
  h.announcer.setBalancer('ns/all', '10.93.20.201', 'all');
  h.announcer.setBalancer('ns/v6', 'fd00:93:20::200', 'all');
  await flush();
  const a = h.arp('tl2-a');
  const b = h.arp('tl2-b');
  assert.ok(keeps(a, arpRequest('10.93.20.200'), PacketType.broadcast) && keeps(a, arpRequest('10.93.20.201'), PacketType.broadcast));
  assert.ok(!keeps(a, arpRequest('10.93.20.202'), PacketType.broadcast));
  assert.ok(!keeps(b, arpRequest('10.93.20.200'), PacketType.broadcast), 'not on the interface its advertisement leaves out');
  assert.ok(keeps(b, arpRequest('10.93.20.201'), PacketType.broadcast));
  assert.ok(keeps(h.ndp('tl2-a'), solicitation('fd00:93:20::200'), PacketType.multicast));
  assert.ok(!keeps(h.ndp('tl2-a'), solicitation('fd00:93:20::201'), PacketType.multicast));
  const filtersBefore = a.filters.length;
  h.announcer.setBalancer('ns/all', '10.93.20.201', 'all'); // same table: the socket is not touched
  await flush();
  assert.equal(a.filters.length, filtersBefore);
  h.announcer.deleteBalancer('ns/a-only');
  await flush();
  assert.ok(!keeps(a, arpRequest('10.93.20.200'), PacketType.broadcast), 'withdrawn');
  // A responder created later starts with the current addresses.
  h.current.links = [link('tl2-a', 2), link('tl2-b', 3), link('tl2-c', 4)];
  h.announcer.rescan();
  assert.ok(keeps(h.arp('tl2-c'), arpRequest('10.93.20.201'), PacketType.broadcast) && !keeps(h.arp('tl2-c'), arpRequest('10.93.20.200'), PacketType.broadcast));
  h.announcer.close();
});

test('NDP: addresses that share their last 32 bits are told apart, each answered for itself, with a valid checksum', async () => {
  const h = harness([link('tl2-a', 2)]);
  h.announcer.setBalancer('ns/one', 'fd00:93:1::5', 'all');
  h.announcer.setBalancer('ns/two', 'fd00:93:2::5', 'all');
  await flush();
  const sock = h.ndp('tl2-a');
  const targetOf = (frame: Buffer) => {
    const r = parseNdpFrame(frame); // validates the ICMPv6 checksum
    assert.ok(r.ok, r.ok ? '' : r.reason);
    return formatIpBytes(r.value.message.targetAddress, 0, 16);
  };
  sock.sent.length = 0;
  for (const target of ['fd00:93:2::5', 'fd00:93:1::5', 'fd00:93:3::5', 'fd00:93:1::6']) sock.deliver(solicitation(target));
  assert.deepEqual(sock.sent.map(targetOf), ['fd00:93:2::5', 'fd00:93:1::5'], 'the two announced ones, not their neighbours');
  assert.equal(h.announcer.drops.notAnnounced, 2);
  h.announcer.deleteBalancer('ns/one');
  await flush();
  sock.sent.length = 0;
  sock.deliver(solicitation('fd00:93:1::5'));
  sock.deliver(solicitation('fd00:93:2::5'));
  assert.deepEqual(sock.sent.map(targetOf), ['fd00:93:2::5'], 'withdrawn: only the other one is left');
  h.announcer.deleteBalancer('ns/two');
  await flush();
  sock.deliver(solicitation('fd00:93:2::5'));
  assert.equal(sock.sent.length, 1);
  h.announcer.close();
});

test('NDP: a solicitation with a source LLA gets a solicited advertisement (S=1, O=0) with our MAC; DAD is left alone', async () => {
  const h = harness([link('tl2-a', 2)]);
  h.announcer.setBalancer('ns/v6', 'fd00:93:20::200', 'all');
  h.announcer.setBalancer('ns/v6', '10.93.20.200', 'all'); // dual stack: one name, two addresses
  await flush();
  const sock = h.ndp('tl2-a');
  sock.sent.length = 0;
  sock.deliver(solicitation('fd00:93:20::200'));
  assert.equal(sock.sent.length, 1);
  const r = parseNdpFrame(sock.sent[0]!);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  const { ethernet, ipv6, message } = r.value;
  assert.ok(message.type === Icmpv6Type.NeighborAdvertisement);
  assert.deepEqual([message.router, message.solicited, message.override], [false, true, false]);
  assert.equal(formatIpBytes(message.targetAddress, 0, 16), 'fd00:93:20::200');
  assert.equal(formatMac(message.targetLinkLayerAddress!), '02:93:00:00:20:02');
  assert.equal(formatMac(ethernet.destination), formatMac(CLIENT_MAC), 'to the MAC of the source LLA option');
  assert.equal(formatIpBytes(ipv6.destinationAddress, 0, 16), 'fe80::93:ff:fe00:3064', "to the solicitation's source");
  assert.equal(formatIpBytes(ipv6.sourceAddress, 0, 16), 'fd00:93:20::200', 'from the announced address');
  assert.equal(ipv6.hopLimit, 255);

  sock.deliver(solicitation('fd00:93:20::200', false));
  sock.deliver(fixture('dadSolicitation'));
  sock.deliver(solicitation('fd00:93:20::201'));
  const badSum = solicitation('fd00:93:20::200');
  badSum[60] ^= 0xff;
  sock.deliver(badSum);
  const zeroLength = solicitation('fd00:93:20::200');
  zeroLength[79] = 0;
  zeroLength.writeUInt16BE(icmpv6Checksum(zeroLength, 54, 32, zeroLength.subarray(22, 38), zeroLength.subarray(38, 54)), 56);
  sock.deliver(zeroLength);
  assert.equal(sock.sent.length, 1);
  assert.equal(h.announcer.drops.noSourceLinkLayer, 2);
  assert.equal(h.announcer.drops.malformed, 2);
  assert.deepEqual(h.announcer.counters().get('fd00:93:20::200'), { requestsReceived: 1, responsesSent: 1, gratuitousSent: 1 });
  h.announcer.deleteBalancer('ns/v6');
  assert.deepEqual(h.announcer.announcements('ns/v6'), []);
  sock.deliver(solicitation('fd00:93:20::200'));
  assert.equal(sock.sent.length, 1);
  h.announcer.close();
});

test('solicited-node groups: joined per NDP interface, ref-counted, joined on interfaces that appear later, left at the end', () => {
  const h = harness([link('tl2-a', 2), link('tl2-b', 3, { linkLocal: undefined })]);
  h.announcer.setBalancer('ns/x', 'fd00:93:20::1:200', 'all');
  h.announcer.setBalancer('ns/y', 'fd00:93:21::1:200', ['tl2-b']); // same low 24 bits: the same group
  h.announcer.setBalancer('ns/z', 'fd00:93:20::1:200', 'all'); // same address: no new join
  assert.deepEqual(h.joined, ['+ff02::1:ff01:200%tl2-a']);
  h.current.links = [link('tl2-a', 2), link('tl2-b', 3)];
  h.announcer.rescan();
  assert.deepEqual(h.joined.slice(1).sort(), ['+ff02::1:ff01:200%tl2-b']);
  h.announcer.deleteBalancer('ns/x');
  h.announcer.deleteBalancer('ns/y');
  assert.equal(h.joined.length, 2, 'ns/z still holds fd00:93:20::1:200');
  h.announcer.deleteBalancer('ns/z');
  assert.deepEqual(h.joined.slice(2).sort(), ['-ff02::1:ff01:200%tl2-a', '-ff02::1:ff01:200%tl2-b']);
  h.announcer.close();
});

test("gratuitous ARP and unsolicited NA on MetalLB's schedule: at once, then every 1.1 s until 5 s after the last setBalancer", async () => {
  const clock = new FakeClock();
  {
    const h = harness([link('tl2-a', 2), link('tl2-b', 3)], { clock });
    const bursts = (ifname: string, proto: number) => (proto === EtherType.ARP ? h.arp(ifname) : h.ndp(ifname)).sent.length;
    h.announcer.setBalancer('ns/a', '10.93.20.200', 'all');
    h.announcer.setBalancer('ns/b', 'fd00:93:20::200', ['tl2-b']);
    await flush();
    const g = h.arp('tl2-a').sent;
    assert.equal(g.length, 2);
    for (const [i, frame] of g.entries()) {
      const r = parseArpFrame(frame);
      assert.ok(r.ok);
      assert.equal(formatMac(r.value.ethernet.destination), 'ff:ff:ff:ff:ff:ff');
      assert.equal(r.value.arp.operation, i === 0 ? ArpOperation.Request : ArpOperation.Reply);
      assert.equal(formatIpBytes(r.value.arp.senderProtocolAddress, 0, 4), '10.93.20.200');
      assert.equal(formatIpBytes(r.value.arp.targetProtocolAddress, 0, 4), '10.93.20.200');
      assert.equal(formatMac(r.value.arp.targetHardwareAddress), 'ff:ff:ff:ff:ff:ff');
      assert.equal(formatMac(r.value.arp.senderHardwareAddress), '02:93:00:00:20:02');
    }
    const na = parseNdpFrame(h.ndp('tl2-b').sent[0]!);
    assert.ok(na.ok && na.value.message.type === Icmpv6Type.NeighborAdvertisement);
    assert.deepEqual([na.value.message.solicited, na.value.message.override], [false, true]);
    assert.equal(formatIpBytes(na.value.ipv6.destinationAddress, 0, 16), 'ff02::1');
    assert.equal(formatMac(na.value.ethernet.destination), '33:33:00:00:00:01');
    assert.equal(bursts('tl2-a', EtherType.IPv6), 0, 'the IPv6 address is announced on tl2-b only');

    const seen: number[] = [];
    for (let t = 100; t <= 8000; t += 100) {
      clock.tick(100);
      if (h.arp('tl2-a').sent.length / 2 > seen.length + 1) seen.push(t);
    }
    assert.deepEqual(seen, [1100, 2200, 3300, 4400], 'four more bursts: five in all');
    assert.equal(bursts('tl2-b', EtherType.IPv6), 5);
    assert.equal(h.announcer.counters().get('10.93.20.200')!.gratuitousSent, 20, '2 frames x 5 bursts x 2 interfaces');

    // A new setBalancer restarts the window: at once, then on the (restarted) ticker.
    h.announcer.setBalancer('ns/a', '10.93.20.200', 'all');
    await flush();
    assert.equal(h.arp('tl2-a').sent.length, 12);
    clock.tick(1100);
    assert.equal(h.arp('tl2-a').sent.length, 14);
    // Called again inside the window: no extra burst now, but the window extends (MetalLB).
    clock.tick(1000);
    h.announcer.setBalancer('ns/a', '10.93.20.200', 'all');
    await flush();
    assert.equal(h.arp('tl2-a').sent.length, 14);
    for (let i = 0; i < 10; i++) clock.tick(1100);
    assert.equal(h.arp('tl2-a').sent.length, 14 + 2 * 5, 'ticks at 2.2 .. 6.6 s after the first call, within 5 s of the second');
    // Withdrawn mid-window: the next ticks send nothing.
    h.announcer.setBalancer('ns/a', '10.93.20.200', 'all');
    await flush();
    const n = h.arp('tl2-a').sent.length;
    h.announcer.deleteBalancer('ns/a');
    for (let i = 0; i < 6; i++) clock.tick(1100);
    assert.equal(h.arp('tl2-a').sent.length, n);
    h.announcer.close();
  }
});

test('a takeover of 1,000 addresses goes out in one batch per interface, right after the calls', async () => {
  const h = harness([link('tl2-a', 2), link('tl2-b', 3)]);
  let batches = 0;
  const sock = h.arp('tl2-a');
  const original = sock.sendBatch.bind(sock);
  sock.sendBatch = (buf, stride, count) => {
    batches++;
    return original(buf, stride, count);
  };
  for (let i = 0; i < 1000; i++) h.announcer.setBalancer(`ns/s${i}`, `10.93.${30 + (i >> 8)}.${i & 255}`, 'all');
  assert.equal(sock.sent.length, 0, 'nothing before the turn ends');
  await Promise.resolve();
  assert.equal(batches, 1);
  assert.equal(sock.sent.length, 2000);
  assert.equal(h.arp('tl2-b').sent.length, 2000);
  const last = parseArpFrame(sock.sent[1999]!);
  assert.ok(last.ok && formatIpBytes(last.value.arp.senderProtocolAddress, 0, 4) === '10.93.33.231');
  h.announcer.close();
});

test('rescan: gone or down interfaces lose their responders, new ones get them, a changed MAC is picked up', () => {
  const h = harness([link('tl2-a', 2), link('tl2-b', 3)]);
  assert.deepEqual(h.announcer.responders(), { arp: ['tl2-a', 'tl2-b'], ndp: ['tl2-a', 'tl2-b'] });
  h.current.links = [link('tl2-a', 2, { flags: 0x1002 }), link('tl2-c', 4)];
  h.announcer.rescan();
  assert.deepEqual(h.announcer.responders(), { arp: ['tl2-c'], ndp: ['tl2-c'] });
  assert.deepEqual(h.announcer.interfacesFor('10.93.20.200', 'all'), ['tl2-a', 'tl2-c'], 'down interfaces still count (MetalLB)');
  assert.deepEqual(h.announcer.interfacesFor('10.93.20.200', ['tl2-b', 'tl2-c']), ['tl2-c']);
  assert.deepEqual(h.announcer.interfacesFor('10.93.20.200', ['tl2-b']), []);
  const before = h.sockets.length;
  h.current.links = [link('tl2-c', 4, { mac: parseMac('02:93:00:00:20:99') })];
  h.announcer.rescan();
  assert.equal(h.sockets.length, before + 2, 'new sockets for the new MAC');
  h.announcer.close();
});

test('bad input to setBalancer is a clear error; failing sockets and interface lists are logged, not thrown', () => {
  const h = harness([link('tl2-a', 2)]);
  assert.throws(() => h.announcer.setBalancer('ns/x', '10.93.20.300', 'all'), /setBalancer\("ns\/x"\): "10.93.20.300" is not an IP address/);
  assert.throws(() => h.announcer.setBalancer('ns/x', 'fe80::1%eth0', 'all'), /is not an IP address/);
  h.current.links = [];
  const broken = new Announcer({
    log: createLogger('test', 'none'),
    exclude: compileExclude([], 'test'),
    links: () => {
      throw new Error('sysfs not mounted');
    },
    openSocket: () => {
      throw new Error('EPERM');
    },
  }).start();
  broken.rescan();
  assert.deepEqual(broken.responders(), { arp: [], ndp: [] });
  const noSockets = new Announcer({ log: createLogger('test', 'none'), exclude: compileExclude([], 'test'), links: () => [link('tl2-a', 2)], openSocket: () => { throw new Error('EPERM'); } }).start();
  assert.deepEqual(noSockets.responders(), { arp: [], ndp: [] });
  noSockets.setBalancer('ns/x', '10.93.20.1', 'all');
  broken.close();
  noSockets.close();
  h.announcer.close();
  // IPv4-mapped IPv6 is IPv4, as in Go.
  const m = harness([link('tl2-a', 2)]);
  m.announcer.setBalancer('ns/m', '::ffff:10.93.20.7', 'all');
  assert.deepEqual(m.announcer.announcements('ns/m'), [{ ip: '10.93.20.7', interfaces: 'all' }]);
  m.announcer.close();
});
