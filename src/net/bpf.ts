// Classic BPF (the SO_ATTACH_FILTER kind, Documentation/networking/filter.rst): a small assembler with labels, the
// encoder to struct sock_filter, and an interpreter for the subset we emit so that filters are unit-tested on
// captured frames without a socket.
import { endianness } from 'node:os';

// Opcode parts (linux/bpf_common.h).
const BPF_LD = 0x00;
const BPF_JMP = 0x05;
const BPF_RET = 0x06;
const BPF_W = 0x00;
const BPF_H = 0x08;
const BPF_B = 0x10;
const BPF_ABS = 0x20;
const BPF_JEQ = 0x10;
const BPF_JGE = 0x30;
const BPF_K = 0x00;

/** Ancillary loads (linux/filter.h SKF_AD_*), read with an absolute load at SKF_AD_OFF + n. */
const SKF_AD_OFF = -0x1000;
export const Ancillary = { protocol: 0, pktType: 4, vlanTag: 44, vlanTagPresent: 48 } as const;

/** sll_pkttype values (linux/if_packet.h). */
export const PacketType = { host: 0, broadcast: 1, multicast: 2, otherHost: 3, outgoing: 4 } as const;

export interface Instruction {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

type Target = string | 'next';
type Step =
  | { readonly op: 'ld'; readonly size: 1 | 2 | 4; readonly offset: number }
  | { readonly op: 'jeq' | 'jge'; readonly k: number; readonly ifTrue: Target; readonly ifFalse: Target }
  | { readonly op: 'ret'; readonly k: number }
  | { readonly op: 'label'; readonly name: string };

/** Loads `size` bytes (network order) at `offset` of the frame into A; a load past the end rejects the frame. */
export const ld = (size: 1 | 2 | 4, offset: number): Step => ({ op: 'ld', size, offset });
/** Loads one of the kernel's ancillary fields (packet type, VLAN tag...) into A. */
export const ldAncillary = (field: number): Step => ({ op: 'ld', size: 4, offset: SKF_AD_OFF + field });
export const jeq = (k: number, ifTrue: Target, ifFalse: Target = 'next'): Step => ({ op: 'jeq', k, ifTrue, ifFalse });
export const jge = (k: number, ifTrue: Target, ifFalse: Target = 'next'): Step => ({ op: 'jge', k, ifTrue, ifFalse });
export const ret = (k: number): Step => ({ op: 'ret', k });
export const label = (name: string): Step => ({ op: 'label', name });

/** Resolves labels to forward jump offsets (classic BPF only jumps forward, at most 255 instructions). */
export function assemble(steps: readonly Step[]): Instruction[] {
  const positions = new Map<string, number>();
  let pc = 0;
  for (const s of steps) {
    if (s.op === 'label') {
      if (positions.has(s.name)) throw new Error(`bpf: label ${s.name} defined twice`);
      positions.set(s.name, pc);
    } else pc++;
  }
  const out: Instruction[] = [];
  const offset = (target: Target, at: number): number => {
    if (target === 'next') return 0;
    const to = positions.get(target);
    if (to === undefined) throw new Error(`bpf: unknown label ${target}`);
    const d = to - at - 1;
    if (d < 0 || d > 255) throw new Error(`bpf: jump to ${target} out of range (${d})`);
    return d;
  };
  for (const s of steps) {
    const at = out.length;
    switch (s.op) {
      case 'label':
        break;
      case 'ld': {
        const size = s.size === 1 ? BPF_B : s.size === 2 ? BPF_H : BPF_W;
        out.push({ code: BPF_LD | size | BPF_ABS, jt: 0, jf: 0, k: s.offset >>> 0 });
        break;
      }
      case 'jeq':
      case 'jge':
        out.push({
          code: BPF_JMP | (s.op === 'jeq' ? BPF_JEQ : BPF_JGE) | BPF_K,
          jt: offset(s.ifTrue, at),
          jf: offset(s.ifFalse, at),
          k: s.k >>> 0,
        });
        break;
      case 'ret':
        out.push({ code: BPF_RET | BPF_K, jt: 0, jf: 0, k: s.k >>> 0 });
        break;
    }
  }
  if (out.length === 0 || out.length > 4096) throw new Error('bpf: a program has 1 to 4096 instructions');
  return out;
}

/** struct sock_filter[] in host byte order, as SO_ATTACH_FILTER takes it. */
export function encode(program: readonly Instruction[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  const le = endianness() === 'LE';
  program.forEach((ins, i) => {
    const o = i * 8;
    if (le) buf.writeUInt16LE(ins.code, o);
    else buf.writeUInt16BE(ins.code, o);
    buf.writeUInt8(ins.jt, o + 2);
    buf.writeUInt8(ins.jf, o + 3);
    if (le) buf.writeUInt32LE(ins.k, o + 4);
    else buf.writeUInt32BE(ins.k, o + 4);
  });
  return buf;
}

/** The inverse of encode (for tests and diagnosis: what a socket was given). */
export function decode(buf: Buffer): Instruction[] {
  if (buf.length % 8 !== 0) throw new Error(`bpf: ${buf.length} bytes is not a whole number of instructions`);
  const le = endianness() === 'LE';
  const out: Instruction[] = [];
  for (let o = 0; o < buf.length; o += 8) {
    out.push({
      code: le ? buf.readUInt16LE(o) : buf.readUInt16BE(o),
      jt: buf.readUInt8(o + 2),
      jf: buf.readUInt8(o + 3),
      k: le ? buf.readUInt32LE(o + 4) : buf.readUInt32BE(o + 4),
    });
  }
  return out;
}

/** What the kernel knows about a frame beyond its bytes, for the interpreter. */
export interface FrameMeta {
  readonly pktType?: number;
  readonly vlanTagPresent?: boolean;
}

/** Runs a program we emit over a frame: the number of bytes the kernel would keep (0 = dropped). */
export function run(program: readonly Instruction[], frame: Uint8Array, meta: FrameMeta = {}): number {
  let a = 0;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  for (let pc = 0; pc < program.length; pc++) {
    const ins = program[pc]!;
    const cls = ins.code & 0x07;
    if (cls === BPF_LD) {
      const k = ins.k | 0;
      if (k < 0) {
        const field = k - SKF_AD_OFF;
        if (field === Ancillary.pktType) a = meta.pktType ?? PacketType.host;
        else if (field === Ancillary.vlanTagPresent) a = meta.vlanTagPresent ? 1 : 0;
        else throw new Error(`bpf: ancillary field ${field} not modelled`);
        continue;
      }
      const size = ins.code & 0x18;
      const n = size === BPF_B ? 1 : size === BPF_H ? 2 : 4;
      if (k + n > frame.length) return 0;
      a = n === 1 ? view.getUint8(k) : n === 2 ? view.getUint16(k) : view.getUint32(k);
    } else if (cls === BPF_JMP) {
      const op = ins.code & 0xf0;
      const taken = op === BPF_JEQ ? a === ins.k : a >= ins.k;
      pc += taken ? ins.jt : ins.jf;
    } else if (cls === BPF_RET) {
      return Math.min(ins.k, frame.length);
    } else {
      throw new Error(`bpf: opcode ${ins.code} not modelled`);
    }
  }
  return 0;
}
