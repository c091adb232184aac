// eBPF (Documentation/bpf/standardization/instruction-set.rst): instruction encoding with labels, enough to write
// small XDP programs from TypeScript. Opcode names are the kernel's (linux/bpf_common.h, linux/bpf.h). Packet
// loads are in host byte order, so constants compared with them go through hostU16/hostU32.
import { endianness } from 'node:os';

// Instruction classes.
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_JMP32 = 0x06;
export const BPF_ALU64 = 0x07;
// Sizes and modes of loads and stores.
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_DW = 0x18;
export const BPF_IMM = 0x00;
export const BPF_MEM = 0x60;
export const BPF_ATOMIC = 0xc0;
// Operand source.
export const BPF_K = 0x00;
export const BPF_X = 0x08;
// ALU operations.
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_XOR = 0xa0;
export const BPF_MOV = 0xb0;
// Jump operations.
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JNE = 0x50;
export const BPF_JLT = 0xa0;
export const BPF_CALL = 0x80;
export const BPF_EXIT = 0x90;
/** src_reg of a 64-bit immediate load whose imm is a map fd (linux/bpf.h). */
export const BPF_PSEUDO_MAP_FD = 1;

/** Helper function numbers (linux/bpf.h __BPF_FUNC_MAPPER). */
export const Helper = { mapLookupElem: 1, csumDiff: 28 } as const;

/** XDP verdicts (enum xdp_action). */
export const XdpAction = { aborted: 0, drop: 1, pass: 2, tx: 3, redirect: 4 } as const;

/** struct xdp_md field offsets. */
export const XdpMd = { data: 0, dataEnd: 4 } as const;

export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export const R0: Reg = 0, R1: Reg = 1, R2: Reg = 2, R3: Reg = 3, R4: Reg = 4, R5: Reg = 5;
export const R6: Reg = 6, R7: Reg = 7, R8: Reg = 8, R9: Reg = 9, R10: Reg = 10;

export type Size = 1 | 2 | 4 | 8;
const SIZE: Record<Size, number> = { 1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW };

/** One 8-byte slot of struct bpf_insn. */
export interface Insn {
  readonly code: number;
  readonly dst: Reg;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
}

type Jump = { readonly kind: 'jump'; readonly insn: Insn; readonly target: string };
type Label = { readonly kind: 'label'; readonly name: string };
export type Step = Insn | Jump | Label;

const insn = (code: number, dst: Reg, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm: imm | 0 });

export const label = (name: string): Label => ({ kind: 'label', name });

/** dst = imm (64-bit, sign-extended). */
export const movImm = (dst: Reg, imm: number) => insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
/** dst = src. */
export const movReg = (dst: Reg, src: Reg) => insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
/** dst op= imm, 64-bit. */
export const aluImm = (op: number, dst: Reg, imm: number) => insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
/** dst op= src, 64-bit. */
export const aluReg = (op: number, dst: Reg, src: Reg) => insn(BPF_ALU64 | op | BPF_X, dst, src, 0, 0);
/** dst = *(size *)(src + off). */
export const ldx = (size: Size, dst: Reg, src: Reg, off: number) => insn(BPF_LDX | BPF_MEM | SIZE[size], dst, src, off, 0);
/** *(size *)(dst + off) = src. */
export const stx = (size: Size, dst: Reg, off: number, src: Reg) => insn(BPF_STX | BPF_MEM | SIZE[size], dst, src, off, 0);
/** *(size *)(dst + off) = imm. */
export const st = (size: Size, dst: Reg, off: number, imm: number) => insn(BPF_ST | BPF_MEM | SIZE[size], dst, 0, off, imm);
/** lock *(size *)(dst + off) += src (size 4 or 8). */
export const atomicAdd = (size: 4 | 8, dst: Reg, off: number, src: Reg) => insn(BPF_STX | BPF_ATOMIC | SIZE[size], dst, src, off, BPF_ADD);
export const call = (helper: number) => insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper);
export const exit = () => insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

/** if (dst op imm) goto target, comparing 64-bit registers (imm sign-extended). */
export const jmpImm = (op: number, dst: Reg, imm: number, target: string): Jump => ({ kind: 'jump', insn: insn(BPF_JMP | op | BPF_K, dst, 0, 0, imm), target });
/** if (dst op src) goto target, 64-bit. */
export const jmpReg = (op: number, dst: Reg, src: Reg, target: string): Jump => ({ kind: 'jump', insn: insn(BPF_JMP | op | BPF_X, dst, src, 0, 0), target });
/** if ((u32)dst op (u32)imm) goto target: for 32-bit packet words, whatever their top bit. */
export const jmp32Imm = (op: number, dst: Reg, imm: number, target: string): Jump => ({ kind: 'jump', insn: insn(BPF_JMP32 | op | BPF_K, dst, 0, 0, imm), target });
/** if ((u32)dst op (u32)src) goto target. */
export const jmp32Reg = (op: number, dst: Reg, src: Reg, target: string): Jump => ({ kind: 'jump', insn: insn(BPF_JMP32 | op | BPF_X, dst, src, 0, 0), target });
export const ja = (target: string): Jump => ({ kind: 'jump', insn: insn(BPF_JMP | BPF_JA, 0, 0, 0, 0), target });

/** dst = the map whose fd is `fd` (a 64-bit immediate: two slots). */
export function ldMapFd(dst: Reg, fd: number): Insn[] {
  return [insn(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd), insn(0, 0, 0, 0, 0)];
}

/**
 * Adds `by` to the u64 at index `key` (a register holding a u32) of the array map `mapFd`, atomically; an index out
 * of range adds nothing. The key goes through the stack at R10 - 4 (bpf_map_lookup_elem takes a pointer). Clobbers
 * R0-R5 like any helper call; `done` names the label it defines at its end, unique in the program.
 */
export function arrayAdd(mapFd: number, key: Reg, by: number, done: string): Step[] {
  return [
    stx(4, R10, -4, key),
    ...ldMapFd(R1, mapFd),
    movReg(R2, R10),
    aluImm(BPF_ADD, R2, -4),
    call(Helper.mapLookupElem),
    jmpImm(BPF_JEQ, R0, 0, done),
    movImm(R1, by),
    atomicAdd(8, R0, 0, R1),
    label(done),
  ];
}

const LE = endianness() === 'LE';

/** The value a 2-byte load of `bytes[at..at+2)` puts in a register (host byte order). */
export function hostU16(bytes: Uint8Array, at = 0): number {
  return LE ? bytes[at]! | (bytes[at + 1]! << 8) : (bytes[at]! << 8) | bytes[at + 1]!;
}

/** The value a 4-byte load of `bytes[at..at+4)` puts in a register, as a signed 32-bit immediate. */
export function hostU32(bytes: Uint8Array, at = 0): number {
  const [a, b, c, d] = [bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!];
  return LE ? a | (b << 8) | (c << 16) | (d << 24) : (a << 24) | (b << 16) | (c << 8) | d;
}

/** Resolves labels (jump offsets count slots after the jump) and returns the program's slots. */
export function assemble(steps: readonly (Step | readonly Step[])[]): Insn[] {
  const flat = steps.flat() as Step[];
  const positions = new Map<string, number>();
  let pc = 0;
  for (const s of flat) {
    if ('kind' in s && s.kind === 'label') {
      if (positions.has(s.name)) throw new Error(`ebpf: label ${s.name} defined twice`);
      positions.set(s.name, pc);
    } else pc++;
  }
  const out: Insn[] = [];
  for (const s of flat) {
    if (!('kind' in s)) out.push(s);
    else if (s.kind === 'jump') {
      const to = positions.get(s.target);
      if (to === undefined) throw new Error(`ebpf: unknown label ${s.target}`);
      const off = to - out.length - 1;
      if (off < -32768 || off > 32767) throw new Error(`ebpf: jump to ${s.target} out of range (${off})`);
      out.push({ ...s.insn, off });
    }
  }
  if (out.length === 0 || out.length > 1_000_000) throw new Error('ebpf: a program has 1 to 1,000,000 instructions');
  return out;
}

/** struct bpf_insn[] in host byte order, as BPF_PROG_LOAD takes it. */
export function encode(program: readonly Insn[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  program.forEach((ins, i) => {
    const o = i * 8;
    buf.writeUInt8(ins.code, o);
    buf.writeUInt8(LE ? (ins.src << 4) | ins.dst : (ins.dst << 4) | ins.src, o + 1);
    if (LE) {
      buf.writeInt16LE(ins.off, o + 2);
      buf.writeInt32LE(ins.imm, o + 4);
    } else {
      buf.writeInt16BE(ins.off, o + 2);
      buf.writeInt32BE(ins.imm, o + 4);
    }
  });
  return buf;
}
