// eBPF encoding (bytes as the kernel's uapi lays them out) and the bpf(2) wrapper: a program loads, runs on a frame
// without being attached (BPF_PROG_TEST_RUN), a rejected one says why, an array map is read. The kernel parts need
// root (CAP_BPF), as CI runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import {
  aluImm, arrayAdd, assemble, BPF_ADD, BPF_JEQ, BPF_JGT, jmpReg, encode, exit, hostU16, hostU32, ja, jmpImm, label, ldMapFd, ldx, movImm, movReg,
  R0, R1, R2, R6, R10, st, stx, XdpAction,
} from '../../src/net/ebpf.js';
import { BpfProgType, closeBpfFd, createArrayMap, loadProgram, lookupArrayElem, testRun, BpfError } from '../../src/net/bpf-syscall.js';
import { isRoot } from '../helpers/netns.js';

const skip = isRoot() ? false : 'needs root (bpf(2))';
const LE = endianness() === 'LE';

test('instructions encode as struct bpf_insn: opcode, dst/src nibbles, off, imm', { skip: !LE && 'byte layouts written for little-endian' }, () => {
  const bytes = encode(assemble([movImm(R0, XdpAction.pass), ldx(2, R2, R1, 12), jmpImm(BPF_JEQ, R2, 0x0608, 'out'), stx(4, R10, -4, R2), label('out'), exit()]));
  assert.equal(
    bytes.toString('hex'),
    [
      'b700000002000000', // r0 = 2
      '6912' + '0c00' + '00000000', // r2 = *(u16 *)(r1 + 12)
      '1502' + '0100' + '08060000', // if r2 == 0x608 goto +1
      '632a' + 'fcff' + '00000000', // *(u32 *)(r10 - 4) = r2
      '9500000000000000', // exit
    ].join(''),
  );
  // A map fd load takes two slots, and jumps count them.
  const withMap = assemble([ja('end'), ldMapFd(R1, 7), label('end'), exit()]);
  assert.equal(withMap.length, 4);
  assert.equal(withMap[0]!.off, 2);
  assert.equal(encode(withMap).subarray(8, 16).toString('hex'), '1811000007000000');
});

test('assemble refuses unknown and duplicate labels', () => {
  assert.throws(() => assemble([ja('nowhere'), exit()]), /unknown label nowhere/);
  assert.throws(() => assemble([label('a'), label('a'), exit()]), /label a defined twice/);
});

test('hostU16/hostU32 give what a packet load of those bytes reads', () => {
  const b = Uint8Array.from([0x08, 0x06, 0xff, 0x01]);
  assert.equal(hostU16(b), LE ? 0x0608 : 0x0806);
  assert.equal(hostU32(b), LE ? 0x01ff0608 : 0x0806ff01);
  assert.equal(hostU32(Uint8Array.from([0xff, 0xff, 0xff, 0xff])), -1);
});

test('a program loads and runs on a frame without being attached; it can rewrite the frame', { skip }, () => {
  // Writes 0xabcd at offset 0 of a frame of at least 14 bytes and returns XDP_TX; XDP_PASS for a shorter one.
  const fd = loadProgram({
    type: BpfProgType.xdp,
    name: 'txd_test',
    insns: encode(
      assemble([
        ldx(4, R2, R1, 0),
        ldx(4, 3, R1, 4),
        movReg(4, R2),
        aluImm(BPF_ADD, 4, 14),
        jmpReg(BPF_JGT, 4, 3, 'pass'),
        st(2, R2, 0, hostU16(Uint8Array.from([0xab, 0xcd]))),
        movImm(R0, XdpAction.tx),
        exit(),
        label('pass'),
        movImm(R0, XdpAction.pass),
        exit(),
      ]),
    ),
  });
  try {
    const frame = Buffer.alloc(60, 0x11);
    const r = testRun(fd, frame);
    assert.equal(r.retval, XdpAction.tx);
    assert.equal(r.data.length, 60);
    assert.equal(r.data.subarray(0, 4).toString('hex'), 'abcd1111');
    assert.equal(frame[0], 0x11, 'the input buffer is not changed');
  } finally {
    closeBpfFd(fd);
  }
});

test('a program the verifier rejects fails with EACCES/EINVAL and the verifier says why', { skip }, () => {
  // Reads the packet without a bounds check.
  const bad = encode(assemble([ldx(4, R2, R1, 0), ldx(4, R0, R2, 0), exit()]));
  assert.throws(
    () => loadProgram({ type: BpfProgType.xdp, name: 'txd_bad', insns: bad }),
    (err: unknown) => err instanceof BpfError && (err.code === 'EACCES' || err.code === 'EINVAL') && /invalid access to packet/.test(err.message),
  );
});

test('an array map counts what a program adds and is read back', { skip }, () => {
  const map = createArrayMap('txd_count', 8, 4);
  let prog: number | undefined;
  try {
    prog = loadProgram({
      type: BpfProgType.xdp,
      name: 'txd_count',
      insns: encode(
        assemble([movImm(R6, 2), arrayAdd(map, R6, 5, 'out'), movImm(R6, 9), arrayAdd(map, R6, 5, 'out9'), movImm(R0, XdpAction.pass), exit()]),
      ),
    });
    for (let i = 0; i < 3; i++) assert.equal(testRun(prog, Buffer.alloc(64)).retval, XdpAction.pass);
    const value = Buffer.alloc(8);
    const u64 = (b: Buffer) => (LE ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0));
    assert.equal(u64(lookupArrayElem(map, 2, value)), 15n);
    assert.equal(u64(lookupArrayElem(map, 1, value)), 0n);
    assert.throws(() => lookupArrayElem(map, 9, value), (err: unknown) => err instanceof BpfError && err.code === 'ENOENT');
  } finally {
    if (prog !== undefined) closeBpfFd(prog);
    closeBpfFd(map);
  }
});
