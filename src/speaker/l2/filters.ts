// The kernel-side filters of the responders' packet sockets: only frames a responder could answer wake the event
// loop. What they let through is still fully validated in TypeScript (and counted when malformed). With the list
// of addresses announced on the interface, a request or solicitation for any other address stays in the kernel:
// on a busy LAN every host's ARP broadcasts would otherwise wake every speaker.
import { Ancillary, assemble, encode, jeq, label, ld, ldAncillary, PacketType, ret, type Instruction } from '../../net/bpf.js';
import { ArpOperation, Icmpv6Type, IpProtocol } from '../../net/messages.js';

const KEEP = 0xffff;

/**
 * The most addresses a filter names (a solicitation's target takes 9 instructions, of at most 4096); with more,
 * the filter keeps every request and TypeScript sorts them out, as without a list.
 */
export const MAX_FILTERED_ADDRESSES = 400;

/**
 * ARP socket (bound to EtherType 0x0806): requests (ar$op at offset 20) sent to the broadcast address or to this
 * interface (packet type broadcast or host: MetalLB's Ethernet destination rule), untagged (a tagged frame
 * belongs to a VLAN interface, which has its own responder); with `targets` (IPv4 addresses as numbers), only
 * those asking for one of them (ar$tpa at offset 38, as in every Ethernet/IPv4 request).
 */
export function arpRequestProgramFor(targets?: readonly number[]): Instruction[] {
  const listed = targets !== undefined && targets.length <= MAX_FILTERED_ADDRESSES;
  return assemble([
    ldAncillary(Ancillary.pktType),
    jeq(PacketType.host, 'pktOk'),
    jeq(PacketType.broadcast, 'pktOk', 'drop'),
    label('pktOk'),
    ldAncillary(Ancillary.vlanTagPresent),
    jeq(0, 'untagged', 'drop'),
    label('untagged'),
    ld(2, 20),
    jeq(ArpOperation.Request, listed ? 'request' : 'keep', 'drop'),
    label('drop'),
    ret(0),
    ...(listed
      ? [
          label('request'),
          ld(4, 38),
          // One address after the other, each with its own `ret` close by (jumps reach at most 255 ahead).
          ...targets.flatMap((ip, i) => [jeq(ip >>> 0, 'next', `not${i}`), ret(KEEP), label(`not${i}`)]),
          ret(0),
        ]
      : [label('keep'), ret(KEEP)]),
  ]);
}

/**
 * IPv6 socket (bound to EtherType 0x86dd): ICMPv6 (next header at 20) neighbor solicitations (type at 54) sent
 * to this interface or to a multicast group, untagged; with `targets` (16-byte addresses), only those whose target
 * address (offset 62) is one of them. Solicitations behind extension headers are not seen (the kernel's own NDP
 * does not send such).
 */
export function neighborSolicitationProgramFor(targets?: readonly Uint8Array[]): Instruction[] {
  const listed = targets !== undefined && targets.length <= MAX_FILTERED_ADDRESSES;
  const word = (b: Uint8Array, i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  return assemble([
    ldAncillary(Ancillary.pktType),
    jeq(PacketType.host, 'pktOk'),
    jeq(PacketType.multicast, 'pktOk'),
    jeq(PacketType.broadcast, 'pktOk', 'drop'),
    label('pktOk'),
    ldAncillary(Ancillary.vlanTagPresent),
    jeq(0, 'untagged', 'drop'),
    label('untagged'),
    ld(1, 20),
    jeq(IpProtocol.ICMPv6, 'icmp', 'drop'),
    label('icmp'),
    ld(1, 54),
    jeq(Icmpv6Type.NeighborSolicitation, listed ? 'solicitation' : 'keep', 'drop'),
    label('drop'),
    ret(0),
    ...(listed
      ? [
          label('solicitation'),
          ...targets.flatMap((ip, i) => [
            ...[0, 4, 8, 12].flatMap((o) => [ld(4, 62 + o), jeq(word(ip, o), 'next', `not${i}`)]),
            ret(KEEP),
            label(`not${i}`),
          ]),
          ret(0),
        ]
      : [label('keep'), ret(KEEP)]),
  ]);
}

/** Every request / solicitation, whatever its target. */
export const arpRequestProgram: readonly Instruction[] = arpRequestProgramFor();
export const neighborSolicitationProgram: readonly Instruction[] = neighborSolicitationProgramFor();

export const arpRequestFilter = (targets?: readonly number[]): Buffer => encode(arpRequestProgramFor(targets));
export const neighborSolicitationFilter = (targets?: readonly Uint8Array[]): Buffer => encode(neighborSolicitationProgramFor(targets));
