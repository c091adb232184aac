// The XDP program that answers ARP requests and IPv6 neighbor solicitations in the kernel for the addresses
// announced on one interface, generated from the list (like the responders' socket filters): no map holds the
// answer set, so a change of the set is a new program swapped in atomically. Each answer adds 1 to the u64 at the
// address's index in the counter map (an array), which the announcer reads for metallb_layer2_*. Everything not
// answered, malformed frames included, is XDP_PASS untouched, so the kernel and the userspace responder see it as
// before.
//
// ARP (RFC 826): a request (htype 1, ptype 0x0800, hlen 6, plen 4, oper 1, untagged) sent to the broadcast address
// or to this interface's MAC, whose target protocol address is listed and which is not a gratuitous ARP (sender =
// target), is turned into the reply in place (the requester's addresses become the target's, ours the sender's,
// oper 2; Ethernet to the requester from us) and sent back out with XDP_TX.
//
// NDP (RFC 4861 §7.2.4): only the common shape of a solicitation is answered here: untagged, hop limit 255, no
// extension header, ICMPv6 type 135 code 0 with a valid checksum, 32 bytes (the message and one source link-layer
// address option), from a specified address, for a listed target. It becomes the solicited advertisement the
// userspace responder sends (S=1, O=0, from the target address to the solicitation's source, one target
// link-layer address option, to the MAC the solicitation's option names): same length, so rewritten in place, the
// checksum computed again with bpf_csum_diff. Any other solicitation is left to userspace, which knows every rule.
import {
  aluImm, aluReg, arrayAdd, assemble, BPF_ADD, BPF_AND, BPF_JEQ, BPF_JGT, BPF_JNE, BPF_OR, BPF_RSH, BPF_XOR, call, exit, Helper, hostU16, hostU32, ja,
  jmp32Imm, jmp32Reg, jmpImm, jmpReg, label, ldx, movImm, movReg, R0, R1, R2, R3, R4, R5, R6, R7, R8, st, stx, XdpAction, XdpMd,
  type Insn, type Reg, type Step,
} from '../../net/ebpf.js';

/** Ethernet header + ARP for IPv4 over Ethernet (RFC 826), in bytes. */
const ARP_FRAME = 42;
// Offsets in an ARP frame.
const ETH_DST = 0;
const ETH_SRC = 6;
const ETH_TYPE = 12;
const AR_HRD = 14; // hrd, pro: one 32-bit word
const AR_HLN = 18; // hln, pln, op: one 32-bit word
const AR_OP = 20;
const AR_SHA = 22;
const AR_SPA = 28;
const AR_THA = 32;
const AR_TPA = 38;

/** Ethernet + IPv6 + a neighbor solicitation/advertisement with one link-layer address option. */
const NDP_FRAME = 86;
// Offsets in an NDP frame.
const IP6_VTC = 14;
const IP6_PLEN = 18;
const IP6_NXT = 20; // next header, hop limit
const IP6_SRC = 22;
const IP6_DST = 38;
const ICMP6_TYPE = 54; // type, code
const ICMP6_CKSUM = 56;
const ND_FLAGS = 58;
const ND_TARGET = 62;
const ND_OPT = 78; // type, length
const ND_OPT_MAC = 80;
/** The checksum covers the pseudo-header's addresses and the message, contiguous from IP6_SRC to the end. */
const CSUM_FROM = IP6_SRC;
const CSUM_LENGTH = NDP_FRAME - IP6_SRC;

/**
 * The most addresses one program answers for on one interface; more are left to the userspace responder. Each
 * address costs three (IPv4) or six (IPv6) instructions and one counter.
 */
export const MAX_XDP_ADDRESSES = 4096;

export interface XdpResponderSpec {
  /** The interface's MAC: the replies' sender. */
  readonly mac: Uint8Array;
  /** IPv4 (4 bytes) and IPv6 (16 bytes) addresses, in counter-index order; at most MAX_XDP_ADDRESSES, no duplicates. */
  readonly addresses: readonly Uint8Array[];
  /** An array map of at least addresses.length u64 values; without it nothing is counted. */
  readonly counterMapFd?: number;
}

const be = (...bytes: number[]) => Uint8Array.from(bytes);
const text = (a: Uint8Array) => (a.length === 4 ? [...a].join('.') : Buffer.from(a).toString('hex'));

export function xdpResponderProgram(spec: XdpResponderSpec): Insn[] {
  const { mac, addresses } = spec;
  if (mac.length !== 6) throw new Error(`xdp: a MAC has 6 bytes, not ${mac.length}`);
  if (addresses.length > MAX_XDP_ADDRESSES) throw new Error(`xdp: at most ${MAX_XDP_ADDRESSES} addresses, not ${addresses.length}`);
  const seen = new Set<string>();
  for (const a of addresses) {
    if (a.length !== 4 && a.length !== 16) throw new Error(`xdp: an address has 4 or 16 bytes, not ${a.length}`);
    const key = Buffer.from(a).toString('hex');
    if (seen.has(key)) throw new Error(`xdp: address ${text(a)} listed twice`);
    seen.add(key);
  }
  const v4 = addresses.flatMap((a, i) => (a.length === 4 ? [{ a, i }] : []));
  const v6 = addresses.flatMap((a, i) => (a.length === 16 ? [{ a, i }] : []));
  // The verifier rejects unreachable code: with nothing to answer, the program is just the verdict.
  if (addresses.length === 0) return assemble([movImm(R0, XdpAction.pass), exit()]);

  const steps: (Step | Step[])[] = [
    // R6 = data, R7 = data_end; the verifier allows reads below R6 + n once R6 + n is checked against R7.
    ldx(4, R6, R1, XdpMd.data),
    ldx(4, R7, R1, XdpMd.dataEnd),
    movReg(R2, R6),
    aluImm(BPF_ADD, R2, ARP_FRAME),
    jmpReg(BPF_JGT, R2, R7, 'pass'),
    ldx(2, R3, R6, ETH_TYPE),
    v4.length ? jmpImm(BPF_JEQ, R3, hostU16(be(0x08, 0x06)), 'arp') : [],
    v6.length ? jmpImm(BPF_JEQ, R3, hostU16(be(0x86, 0xdd)), 'ndp') : [],
    label('pass'),
    movImm(R0, XdpAction.pass),
    exit(),
  ];
  if (v4.length) steps.push(arp(mac, v4));
  if (v6.length) steps.push(ndp(mac, v6));
  steps.push(label('count'));
  if (spec.counterMapFd !== undefined) steps.push(arrayAdd(spec.counterMapFd, R8, 1, 'transmit'));
  steps.push(movImm(R0, XdpAction.tx), exit());
  return assemble(steps);
}

/** A listed address and its counter index. */
interface Listed {
  a: Uint8Array;
  i: number;
}

/** The registers that hold the NDP target, one 32-bit word each. */
const TARGET: readonly Reg[] = [R2, R3, R4, R5];

/**
 * Both branches' lookup: the address asked for is in `registers` (one 32-bit word each, as loaded from the frame);
 * the first listed address equal to it sets R8 to its index and goes on to `answer`; none passes the frame.
 */
function matchAddress(registers: readonly Reg[], listed: readonly Listed[], answer: string): Step[] {
  return [
    ...listed.flatMap(({ a, i }): Step[] => [
      ...registers.map((r, w) => jmp32Imm(BPF_JNE, r, hostU32(a, 4 * w), `not${i}`)),
      movImm(R8, i),
      ja(answer),
      label(`not${i}`),
    ]),
    ja('pass'),
    label(answer),
  ];
}

/** The 6-byte MAC at `from` in the frame, copied to each offset of `to` (through R3 and R4). */
function copyMac(from: number, to: readonly number[]): Step[] {
  return [ldx(4, R3, R6, from), ldx(2, R4, R6, from + 4), ...to.flatMap((o): Step[] => [stx(4, R6, o, R3), stx(2, R6, o + 4, R4)])];
}

/** `mac` written at `at` in the frame. */
function storeMac(mac: Uint8Array, at: number): Step[] {
  return [st(4, R6, at, hostU32(mac, 0)), st(2, R6, at + 4, hostU16(mac, 4))];
}

/** The ARP branch: frames of at least 42 bytes with EtherType 0x0806. Sets R8 to the address's index, then 'count'. */
function arp(mac: Uint8Array, v4: readonly Listed[]): Step[] {
  return [
    label('arp'),
    ldx(4, R3, R6, AR_HRD),
    jmp32Imm(BPF_JNE, R3, hostU32(be(0x00, 0x01, 0x08, 0x00)), 'pass'),
    ldx(4, R3, R6, AR_HLN),
    jmp32Imm(BPF_JNE, R3, hostU32(be(6, 4, 0x00, 0x01)), 'pass'),
    // Ethernet destination: broadcast or this interface (MetalLB's rule).
    ldx(4, R3, R6, ETH_DST),
    ldx(2, R4, R6, ETH_DST + 4),
    jmp32Imm(BPF_JNE, R3, -1, 'arpUnicast'),
    jmpImm(BPF_JNE, R4, 0xffff, 'arpUnicast'),
    ja('arpDestinationOk'),
    label('arpUnicast'),
    jmp32Imm(BPF_JNE, R3, hostU32(mac, 0), 'pass'),
    jmpImm(BPF_JNE, R4, hostU16(mac, 4), 'pass'),
    label('arpDestinationOk'),
    // R5 = the target protocol address. A gratuitous ARP (ar$spa = ar$tpa: another host announcing the address)
    // asks nothing: it goes on to the kernel and the userspace responder.
    ldx(4, R5, R6, AR_TPA),
    ldx(4, R3, R6, AR_SPA),
    jmp32Reg(BPF_JEQ, R3, R5, 'pass'),
    ...matchAddress([R5], v4, 'arpAnswer'),
    // Ethernet destination and ar$tha = the requester's hardware address (ar$sha).
    ...copyMac(AR_SHA, [ETH_DST, AR_THA]),
    // ar$tpa = the requester's ar$spa; ar$spa = the address asked for.
    ldx(4, R3, R6, AR_SPA),
    stx(4, R6, AR_TPA, R3),
    stx(4, R6, AR_SPA, R5),
    // Ethernet source and ar$sha = ours; ar$op = reply.
    ...storeMac(mac, ETH_SRC),
    ...storeMac(mac, AR_SHA),
    st(2, R6, AR_OP, hostU16(be(0x00, 0x02))),
    ja('count'),
  ];
}

/**
 * R0 = the ones' complement sum (folded to 16 bits, host order) of the pseudo-header and the 32-byte message:
 * bpf_csum_diff over the addresses and the message (contiguous), seeded with the upper-layer length (32) and the
 * next header (58), which share one 32-bit word of the sum.
 */
function checksumSum(): Step[] {
  return [
    movImm(R1, 0),
    movImm(R2, 0),
    movReg(R3, R6),
    aluImm(BPF_ADD, R3, CSUM_FROM),
    movImm(R4, CSUM_LENGTH),
    movImm(R5, hostU32(be(0, 0, 0, NDP_FRAME - ICMP6_TYPE + 58))),
    call(Helper.csumDiff),
    ...[0, 1].flatMap((): Step[] => [movReg(R1, R0), aluImm(BPF_RSH, R1, 16), aluImm(BPF_AND, R0, 0xffff), aluReg(BPF_ADD, R0, R1)]),
  ];
}

/** The NDP branch: frames of at least 42 bytes with EtherType 0x86dd. Sets R8 to the address's index, then 'count'. */
function ndp(mac: Uint8Array, v6: readonly Listed[]): Step[] {
  const words = [0, 4, 8, 12];
  return [
    label('ndp'),
    movReg(R2, R6),
    aluImm(BPF_ADD, R2, NDP_FRAME),
    jmpReg(BPF_JGT, R2, R7, 'pass'),
    ldx(2, R3, R6, IP6_NXT),
    jmpImm(BPF_JNE, R3, hostU16(be(58, 255)), 'pass'),
    ldx(2, R3, R6, IP6_PLEN),
    jmpImm(BPF_JNE, R3, hostU16(be(0, NDP_FRAME - ICMP6_TYPE)), 'pass'),
    ldx(2, R3, R6, ICMP6_TYPE),
    jmpImm(BPF_JNE, R3, hostU16(be(135, 0)), 'pass'),
    ldx(2, R3, R6, ND_OPT),
    jmpImm(BPF_JNE, R3, hostU16(be(1, 1)), 'pass'),
    // From a specified address (one from :: carries no source link-layer option: malformed, userspace says so).
    ldx(4, R3, R6, IP6_SRC),
    ...[4, 8, 12].flatMap((o): Step[] => [ldx(4, R4, R6, IP6_SRC + o), aluReg(BPF_OR, R3, R4)]),
    jmpImm(BPF_JEQ, R3, 0, 'pass'),
    // The checksum, with its own field, sums to 0xffff.
    ...checksumSum(),
    jmpImm(BPF_JNE, R0, 0xffff, 'pass'),
    // The target (R2..R5: its four words).
    ...TARGET.map((r, w) => ldx(4, r, R6, ND_TARGET + 4 * w)),
    ...matchAddress(TARGET, v6, 'ndpAnswer'),
    // Ethernet: to the MAC the source link-layer address option names, from ours.
    ...copyMac(ND_OPT_MAC, [ETH_DST]),
    ...storeMac(mac, ETH_SRC),
    // IPv6: version 6, traffic class and flow label 0; to the solicitation's source, from the target.
    st(4, R6, IP6_VTC, hostU32(be(0x60, 0, 0, 0))),
    ...words.flatMap((o): Step[] => [ldx(4, R3, R6, IP6_SRC + o), stx(4, R6, IP6_DST + o, R3), ldx(4, R3, R6, ND_TARGET + o), stx(4, R6, IP6_SRC + o, R3)]),
    // Advertisement, S=1; a target link-layer address option with our MAC.
    st(2, R6, ICMP6_TYPE, hostU16(be(136, 0))),
    st(2, R6, ICMP6_CKSUM, 0),
    st(4, R6, ND_FLAGS, hostU32(be(0x40, 0, 0, 0))),
    st(2, R6, ND_OPT, hostU16(be(2, 1))),
    ...storeMac(mac, ND_OPT_MAC),
    ...checksumSum(),
    aluImm(BPF_XOR, R0, 0xffff),
    stx(2, R6, ICMP6_CKSUM, R0),
    ja('count'),
  ];
}
