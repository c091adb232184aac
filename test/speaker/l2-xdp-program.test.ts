// The generated XDP ARP program, run by the kernel on frames without being attached (BPF_PROG_TEST_RUN): captured
// requests (iputils arping, 44-byte ARP padded; the kernel's, 28 bytes) for an announced address are turned into
// exactly the reply the kernel itself sends (XDP_TX); anything else passes unchanged. Needs root (bpf(2)).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { encode, XdpAction } from '../../src/net/ebpf.js';
import { BpfProgType, BpfAttachType, closeBpfFd, createArrayMap, loadProgram, lookupArrayElem, testRun } from '../../src/net/bpf-syscall.js';
import { MAX_XDP_ADDRESSES, xdpResponderProgram } from '../../src/speaker/l2/xdp-program.js';
import { AnnouncedIp } from '../../src/speaker/l2/announced.js';
import { NdpResponder } from '../../src/speaker/l2/ndp-responder.js';
import { icmpv6ChecksumValid } from '../../src/net/checksum.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (bpf(2))';
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** `frame` with `bytes` written at `at`. */
const modified = (frame: Buffer, at: number, bytes: number[]) => {
  const out = Buffer.from(frame);
  bytes.forEach((b, i) => (out[at + i] = b));
  return out;
};

const OUR_MAC = hex('029800000001');
const ANNOUNCED = [hex('0a620009'), hex('0a620001')]; // 10.98.0.9, 10.98.0.1 (index 1)

// tcpdump -xx on 02:98:00:00:00:01 (10.98.0.1): `arping -I txd-b 10.98.0.1` from 02:98:00:00:00:02 (10.98.0.2)...
const ARPING_REQUEST = hex(`
  ffff ffff ffff 0298 0000 0002 0806 0001
  0800 0604 0001 0298 0000 0002 0a62 0002
  0000 0000 0000 0a62 0001 0000 0000 0000
  0000 0000 0000 0000 0000`);
// ...and the kernel's reply to it, as the interface owning 10.98.0.1 sent it.
const KERNEL_REPLY = hex(`
  0298 0000 0002 0298 0000 0001 0806 0001
  0800 0604 0002 0298 0000 0001 0a62 0001
  0298 0000 0002 0a62 0002`);
// The same arping asking for 10.98.0.77 (ar$tpa, at 38), which nobody announces.
const ARPING_OTHER = modified(ARPING_REQUEST, 38, [10, 98, 0, 77]);

// tcpdump -xx on 02:98:00:00:00:01 (fd00:98::1): `ndisc6 fd00:98::1 txd-b` from 02:98:00:00:00:02...
const NDISC6_SOLICITATION = hex(`
  3333 ff00 0001 0298 0000 0002 86dd 6009
  28c0 0020 3aff fe80 0000 0000 0000 0098
  00ff fe00 0002 ff02 0000 0000 0000 0000
  0001 ff00 0001 8700 7b4f 0000 0000 fd00
  0098 0000 0000 0000 0000 0000 0001 0101
  0298 0000 0002`);
// ...and the kernel's advertisement (S=1, O=1: ours, like MetalLB's, has O=0).
const KERNEL_ADVERTISEMENT = hex(`
  0298 0000 0002 0298 0000 0001 86dd 6000
  0000 0020 3aff fd00 0098 0000 0000 0000
  0000 0000 0001 fe80 0000 0000 0000 0098
  00ff fe00 0002 8800 19bc 6000 0000 fd00
  0098 0000 0000 0000 0000 0000 0001 0201
  0298 0000 0001`);
const V6 = hex('fd000098000000000000000000000001');

/** What the userspace responder sends for `frame` (through a fake transport). */
function userspaceAdvertisement(frame: Buffer): Buffer | undefined {
  const ip = new AnnouncedIp('fd00:98::1', 6, V6, { requestsReceived: 0, responsesSent: 0, gratuitousSent: 0 });
  ip.holders.set('test', 'all');
  ip.recompute();
  let sent: Buffer | undefined;
  const r = new NdpResponder('txd-a', 2, OUR_MAC, {
    lookupV4: () => undefined,
    lookupV6: (f, o) => (f.subarray(o, o + 16).equals(V6) ? ip : undefined),
    dropped: () => undefined,
    traceAnswer: undefined,
  });
  r.attach(() => ({ send: (b, o, l) => void (sent = Buffer.from(b.subarray(o, o + l))), sendBatch: () => 0, close: () => undefined }));
  r.handleFrame(Buffer.from(frame), frame.length);
  return sent;
}

function load(addresses: readonly Buffer[], counterMapFd?: number): number {
  return loadProgram({
    type: BpfProgType.xdp,
    name: 'txd_arp',
    expectedAttachType: BpfAttachType.xdp,
    insns: encode(xdpResponderProgram({ mac: OUR_MAC, addresses, counterMapFd })),
  });
}

function withProgram(addresses: readonly Buffer[], fn: (fd: number) => void, counterMapFd?: number): void {
  const fd = load(addresses, counterMapFd);
  try {
    fn(fd);
  } finally {
    closeBpfFd(fd);
  }
}

test('a captured request for an announced address becomes the kernel\'s own reply, sent back (XDP_TX)', { skip }, () => {
  withProgram(ANNOUNCED, (fd) => {
    const r = testRun(fd, ARPING_REQUEST);
    assert.equal(r.retval, XdpAction.tx);
    // The reply keeps the request's length (arping's padding, zeroed): the kernel's 42 bytes, then zeros.
    assert.equal(r.data.length, ARPING_REQUEST.length);
    assert.equal(r.data.subarray(0, 42).toString('hex'), KERNEL_REPLY.toString('hex'));
    assert.ok(r.data.subarray(42).every((b) => b === 0));
    // A kernel-made request (28-byte ARP, ar$tha zero) and a unicast one to our MAC are answered alike.
    const unpadded = ARPING_REQUEST.subarray(0, 42);
    assert.equal(testRun(fd, unpadded).data.toString('hex'), KERNEL_REPLY.toString('hex'));
    const unicast = modified(unpadded, 0, [...OUR_MAC]);
    const u = testRun(fd, unicast);
    assert.equal(u.retval, XdpAction.tx);
    assert.equal(u.data.toString('hex'), KERNEL_REPLY.toString('hex'));
    // An RFC 5227 probe (ar$spa 0.0.0.0) is answered, as the kernel and the userspace responder do.
    const probe = testRun(fd, modified(unpadded, 28, [0, 0, 0, 0]));
    assert.equal(probe.retval, XdpAction.tx);
    assert.equal(probe.data.subarray(38, 42).toString('hex'), '00000000');
    assert.equal(probe.data.subarray(28, 32).toString('hex'), '0a620001');
  });
});

test('everything else passes unchanged: other addresses, replies, gratuitous ARP, tagged, malformed, IPv4, short frames', { skip }, () => {
  withProgram(ANNOUNCED, (fd) => {
    const request = ARPING_REQUEST.subarray(0, 42);
    const cases: [string, Buffer][] = [
      ['a request for an address not announced', ARPING_OTHER],
      ['a reply', KERNEL_REPLY],
      ['a reply for an announced address', modified(KERNEL_REPLY, 28, [0x0a, 0x62, 0x00, 0x09])],
      ['a gratuitous ARP request for an announced address', modified(request, 28, [0x0a, 0x62, 0x00, 0x01])],
      ['a request to another MAC', modified(request, 0, [0x02, 0x98, 0, 0, 0, 0x99])],
      ['a request to a multicast MAC', modified(request, 0, [0x01, 0x00, 0x5e, 0, 0, 1])],
      ['htype 6', modified(request, 14, [0, 6])],
      ['ptype IPv6', modified(request, 16, [0x86, 0xdd])],
      ['hlen 8', modified(request, 18, [8])],
      ['plen 16', modified(request, 19, [16])],
      ['oper 3 (RARP)', modified(request, 20, [0, 3])],
      ['an 802.1Q-tagged request', Buffer.concat([request.subarray(0, 12), hex('81000064'), request.subarray(12)])],
      ['an IPv4 frame', Buffer.concat([request.subarray(0, 12), hex('0800 4500 001c 0000 4000 4001 0000 0a620002 0a620001 0800f7ff00000000')])],
      ['a request cut short (41 bytes)', request.subarray(0, 41)],
      ['an Ethernet header alone', request.subarray(0, 14)],
      ['garbage', Buffer.from('this is not an ARP frame at all, really'.repeat(2))],
    ];
    for (const [what, frame] of cases) {
      const r = testRun(fd, frame);
      assert.equal(r.retval, XdpAction.pass, what);
      assert.equal(r.data.toString('hex'), frame.toString('hex'), `${what}: unchanged`);
    }
  });
});

test('with no address listed, every request passes', { skip }, () => {
  withProgram([], (fd) => {
    assert.equal(testRun(fd, ARPING_REQUEST).retval, XdpAction.pass);
  });
});

test('each answer counts at the address\'s index of the counter map', { skip }, () => {
  const map = createArrayMap('txd_arp_count', 8, ANNOUNCED.length);
  try {
    withProgram(
      ANNOUNCED,
      (fd) => {
        for (let i = 0; i < 3; i++) assert.equal(testRun(fd, ARPING_REQUEST).retval, XdpAction.tx);
        assert.equal(testRun(fd, ARPING_OTHER).retval, XdpAction.pass);
        const v = Buffer.alloc(8);
        const read = (i: number) => (endianness() === 'LE' ? lookupArrayElem(map, i, v).readBigUInt64LE(0) : lookupArrayElem(map, i, v).readBigUInt64BE(0));
        assert.equal(read(1), 3n);
        assert.equal(read(0), 0n);
      },
      map,
    );
  } finally {
    closeBpfFd(map);
  }
});

test(`the most addresses a program takes (${MAX_XDP_ADDRESSES}) load, and the last one is answered`, { skip }, () => {
  const many = Array.from({ length: MAX_XDP_ADDRESSES }, (_, i) => Buffer.from([10, 98, 100 + (i >> 8), i & 255]));
  const map = createArrayMap('txd_arp_many', 8, many.length);
  try {
    withProgram(
      many,
      (fd) => {
        const last = many.at(-1)!;
        const r = testRun(fd, modified(ARPING_REQUEST, 38, [...last]));
        assert.equal(r.retval, XdpAction.tx);
        assert.equal(r.data.subarray(28, 32).toString('hex'), last.toString('hex'));
        assert.equal(testRun(fd, ARPING_REQUEST).retval, XdpAction.pass);
      },
      map,
    );
  } finally {
    closeBpfFd(map);
  }
  assert.throws(() => xdpResponderProgram({ mac: OUR_MAC, addresses: [...many, hex('0a620001')] }), /at most 4096 addresses/);
  assert.throws(() => xdpResponderProgram({ mac: OUR_MAC, addresses: [ANNOUNCED[0]!, ANNOUNCED[0]!] }), /10\.98\.0\.9 listed twice/);
});

test('a captured solicitation for an announced IPv6 address becomes the userspace responder\'s advertisement (XDP_TX)', { skip }, () => {
  withProgram([ANNOUNCED[0]!, hex('fd000098000000000000000000000009'), V6], (fd) => {
    const r = testRun(fd, NDISC6_SOLICITATION);
    assert.equal(r.retval, XdpAction.tx);
    const expected = userspaceAdvertisement(NDISC6_SOLICITATION)!;
    assert.equal(r.data.toString('hex'), expected.toString('hex'));
    // Which is the kernel's own, but for the O flag (and so the checksum).
    const kernelButO = Buffer.from(KERNEL_ADVERTISEMENT);
    kernelButO[58] = 0x40;
    assert.equal(r.data.subarray(0, 56).toString('hex'), kernelButO.subarray(0, 56).toString('hex'));
    assert.equal(r.data.subarray(58).toString('hex'), kernelButO.subarray(58).toString('hex'));
    assert.ok(icmpv6ChecksumValid(r.data, 54, 32, r.data.subarray(22, 38), r.data.subarray(38, 54)), 'the checksum is right');
    // A unicast solicitation (neighbour unreachability detection) is answered alike.
    const unicast = Buffer.from(NDISC6_SOLICITATION);
    OUR_MAC.copy(unicast, 0);
    V6.copy(unicast, 38);
    fixChecksum(unicast);
    const u = testRun(fd, unicast);
    assert.equal(u.retval, XdpAction.tx);
    assert.equal(u.data.toString('hex'), userspaceAdvertisement(unicast)!.toString('hex'));
  });
});

function fixChecksum(frame: Buffer): void {
  frame.writeUInt16BE(0, 56);
  let sum = 32 + 58;
  for (let o = 22; o < 86; o += 2) sum += frame.readUInt16BE(o);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  frame.writeUInt16BE(~sum & 0xffff, 56);
}

test('solicitations XDP does not answer pass unchanged (userspace knows every rule)', { skip }, () => {
  withProgram([ANNOUNCED[1]!, V6], (fd) => {
    const edit = (at: number, bytes: number[], fix = true) => {
      const f = modified(NDISC6_SOLICITATION, at, bytes);
      if (fix) fixChecksum(f);
      return f;
    };
    const other = hex('fd000098000000000000000000000077');
    const cases: [string, Buffer][] = [
      ['a target nobody announces', edit(62, [...other])],
      ['a bad checksum', edit(56, [0x12, 0x34], false)],
      ['hop limit 64', edit(21, [64])],
      ['code 1', edit(55, [1])],
      ['an advertisement', KERNEL_ADVERTISEMENT],
      ['no source link-layer option (a nonce option instead)', edit(78, [14, 1])],
      ['from :: (duplicate address detection)', edit(22, Array(16).fill(0))],
      ['a longer message (two options)', Buffer.concat([edit(18, [0, 40]), Buffer.alloc(8)])],
      ['cut short (85 bytes)', NDISC6_SOLICITATION.subarray(0, 85)],
      ['a hop-by-hop header first', edit(20, [0])],
    ];
    for (const [what, frame] of cases) {
      const r = testRun(fd, frame);
      assert.equal(r.retval, XdpAction.pass, what);
      assert.equal(r.data.toString('hex'), frame.toString('hex'), `${what}: unchanged`);
    }
    // And the IPv4 address is still answered by ARP in the same program.
    assert.equal(testRun(fd, ARPING_REQUEST).retval, XdpAction.tx);
  });
  // A program with IPv6 addresses only passes ARP.
  withProgram([V6], (fd) => assert.equal(testRun(fd, ARPING_REQUEST).retval, XdpAction.pass));
});
