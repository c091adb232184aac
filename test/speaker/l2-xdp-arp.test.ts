// The generated XDP ARP program, run by the kernel on frames without being attached (BPF_PROG_TEST_RUN): captured
// requests (iputils arping, 44-byte ARP padded; the kernel's, 28 bytes) for an announced address are turned into
// exactly the reply the kernel itself sends (XDP_TX); anything else passes unchanged. Needs root (bpf(2)).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { encode, XdpAction } from '../../src/net/ebpf.js';
import { BpfProgType, BpfAttachType, closeBpfFd, createArrayMap, loadProgram, lookupArrayElem, testRun } from '../../src/net/bpf-syscall.js';
import { MAX_XDP_ADDRESSES, xdpArpProgram } from '../../src/speaker/l2/xdp-arp.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (bpf(2))';
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

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
// The same arping asking for 10.98.0.77, which nobody announces.
const ARPING_OTHER = hex(`
  ffff ffff ffff 0298 0000 0002 0806 0001
  0800 0604 0001 0298 0000 0002 0a62 0002
  0000 0000 0000 0a62 004d 0000 0000 0000
  0000 0000 0000 0000 0000`);

function load(addresses: readonly Buffer[], counterMapFd?: number): number {
  return loadProgram({
    type: BpfProgType.xdp,
    name: 'txd_arp',
    expectedAttachType: BpfAttachType.xdp,
    insns: encode(xdpArpProgram({ mac: OUR_MAC, addresses, counterMapFd })),
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

const modified = (frame: Buffer, at: number, bytes: number[]) => {
  const out = Buffer.from(frame);
  bytes.forEach((b, i) => (out[at + i] = b));
  return out;
};

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
  assert.throws(() => xdpArpProgram({ mac: OUR_MAC, addresses: [...many, hex('0a620001')] }), /at most 4096 addresses/);
  assert.throws(() => xdpArpProgram({ mac: OUR_MAC, addresses: [ANNOUNCED[0]!, ANNOUNCED[0]!] }), /10\.98\.0\.9 listed twice/);
});
