// The XDP program that answers ARP requests in the kernel for the addresses announced on one interface, generated
// from the list (like the responders' socket filters): no map holds the answer set, so a change of the set is a
// new program swapped in atomically. A request (htype 1, ptype 0x0800, hlen 6, plen 4, oper 1, untagged) sent to
// the broadcast address or to this interface's MAC, whose target protocol address is listed, is turned into the
// reply in place (RFC 826: the requester's addresses become the target's, ours the sender's, oper 2; Ethernet to
// the requester from us) and sent back out with XDP_TX. Everything else, malformed frames included, is XDP_PASS
// untouched (gratuitous ARP too), so the kernel and the userspace responder see it as before. Each answer adds 1 to the u64 at the
// address's index in the counter map (an array), which the announcer reads for metallb_layer2_*.
import {
  aluImm, assemble, atomicAdd, BPF_ADD, BPF_JEQ, BPF_JGT, BPF_JNE, call, exit, Helper, hostU16, hostU32, ja, jmp32Imm, jmp32Reg, jmpImm, jmpReg, label,
  ldMapFd, ldx, movImm, movReg, R0, R1, R2, R3, R4, R5, R6, R7, R8, R10, st, stx, XdpAction, XdpMd, type Insn, type Step,
} from '../../net/ebpf.js';

/** Ethernet header + ARP for IPv4 over Ethernet (RFC 826), in bytes. */
const ARP_FRAME = 42;
// Offsets in the frame.
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

/**
 * The most addresses one program answers for on one interface; more are left to the userspace responder. Each
 * address costs three instructions and one counter.
 */
export const MAX_XDP_ADDRESSES = 4096;

export interface XdpArpSpec {
  /** The interface's MAC: the replies' sender. */
  readonly mac: Uint8Array;
  /** IPv4 addresses (4 bytes each), in counter-index order; at most MAX_XDP_ADDRESSES, no duplicates. */
  readonly addresses: readonly Uint8Array[];
  /** An array map of at least addresses.length u64 values; without it nothing is counted. */
  readonly counterMapFd?: number;
}

export function xdpArpProgram(spec: XdpArpSpec): Insn[] {
  const { mac, addresses } = spec;
  if (mac.length !== 6) throw new Error(`xdp arp: a MAC has 6 bytes, not ${mac.length}`);
  if (addresses.length > MAX_XDP_ADDRESSES) throw new Error(`xdp arp: at most ${MAX_XDP_ADDRESSES} addresses, not ${addresses.length}`);
  const seen = new Set<number>();
  for (const a of addresses) {
    if (a.length !== 4) throw new Error(`xdp arp: an IPv4 address has 4 bytes, not ${a.length}`);
    const key = hostU32(a);
    if (seen.has(key)) throw new Error(`xdp arp: address ${[...a].join('.')} listed twice`);
    seen.add(key);
  }
  // The verifier rejects unreachable code: with nothing to answer, the program is just the verdict.
  if (addresses.length === 0) return assemble([movImm(R0, XdpAction.pass), exit()]);
  const be = (...bytes: number[]) => Uint8Array.from(bytes);
  const steps: (Step | Step[])[] = [
    // R6 = data, R7 = data_end; the verifier allows reads below R6 + 42 once checked against R7.
    ldx(4, R6, R1, XdpMd.data),
    ldx(4, R7, R1, XdpMd.dataEnd),
    movReg(R2, R6),
    aluImm(BPF_ADD, R2, ARP_FRAME),
    jmpReg(BPF_JGT, R2, R7, 'pass'),
    ldx(2, R3, R6, ETH_TYPE),
    jmpImm(BPF_JNE, R3, hostU16(be(0x08, 0x06)), 'pass'),
    ldx(4, R3, R6, AR_HRD),
    jmp32Imm(BPF_JNE, R3, hostU32(be(0x00, 0x01, 0x08, 0x00)), 'pass'),
    ldx(4, R3, R6, AR_HLN),
    jmp32Imm(BPF_JNE, R3, hostU32(be(6, 4, 0x00, 0x01)), 'pass'),
    // Ethernet destination: broadcast or this interface (MetalLB's rule).
    ldx(4, R3, R6, ETH_DST),
    ldx(2, R4, R6, ETH_DST + 4),
    jmp32Imm(BPF_JNE, R3, -1, 'unicast'),
    jmpImm(BPF_JNE, R4, 0xffff, 'unicast'),
    ja('destinationOk'),
    label('unicast'),
    jmp32Imm(BPF_JNE, R3, hostU32(mac, 0), 'pass'),
    jmpImm(BPF_JNE, R4, hostU16(mac, 4), 'pass'),
    label('destinationOk'),
    // R5 = the target protocol address; R8 = its index in the list. A gratuitous ARP (ar$spa = ar$tpa: another
    // host announcing the address) asks nothing: it goes on to the kernel and the userspace responder.
    ldx(4, R5, R6, AR_TPA),
    ldx(4, R3, R6, AR_SPA),
    jmp32Reg(BPF_JEQ, R3, R5, 'pass'),
    ...addresses.map((a, i): Step[] => [jmp32Imm(BPF_JNE, R5, hostU32(a), `not${i}`), movImm(R8, i), ja('answer'), label(`not${i}`)]),
    label('pass'),
    movImm(R0, XdpAction.pass),
    exit(),
    label('answer'),
    // Ethernet destination and ar$tha = the requester's hardware address (ar$sha).
    ldx(4, R3, R6, AR_SHA),
    ldx(2, R4, R6, AR_SHA + 4),
    stx(4, R6, ETH_DST, R3),
    stx(2, R6, ETH_DST + 4, R4),
    stx(4, R6, AR_THA, R3),
    stx(2, R6, AR_THA + 4, R4),
    // ar$tpa = the requester's ar$spa; ar$spa = the address asked for.
    ldx(4, R3, R6, AR_SPA),
    stx(4, R6, AR_TPA, R3),
    stx(4, R6, AR_SPA, R5),
    // Ethernet source and ar$sha = ours; ar$op = reply.
    st(4, R6, ETH_SRC, hostU32(mac, 0)),
    st(2, R6, ETH_SRC + 4, hostU16(mac, 4)),
    st(4, R6, AR_SHA, hostU32(mac, 0)),
    st(2, R6, AR_SHA + 4, hostU16(mac, 4)),
    st(2, R6, AR_OP, hostU16(be(0x00, 0x02))),
  ];
  if (spec.counterMapFd !== undefined) {
    steps.push(
      stx(4, R10, -4, R8),
      ldMapFd(R1, spec.counterMapFd),
      movReg(R2, R10),
      aluImm(BPF_ADD, R2, -4),
      call(Helper.mapLookupElem),
      jmpImm(BPF_JEQ, R0, 0, 'transmit'),
      movImm(R1, 1),
      atomicAdd(8, R0, 0, R1),
      label('transmit'),
    );
  }
  steps.push(movImm(R0, XdpAction.tx), exit());
  return assemble(steps);
}
