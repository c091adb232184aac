// The kernel-side filters of the responders' packet sockets: only frames a responder could answer wake the event
// loop. What they let through is still fully validated in TypeScript (and counted when malformed).
import { Ancillary, assemble, encode, jeq, label, ld, ldAncillary, PacketType, ret, type Instruction } from '../../net/bpf.js';
import { ArpOperation, Icmpv6Type, IpProtocol } from '../../net/messages.js';

const KEEP = 0xffff;

/**
 * ARP socket (bound to EtherType 0x0806): requests (ar$op at offset 20) sent to the broadcast address or to this
 * interface (packet type broadcast or host: MetalLB's Ethernet destination rule), untagged (a tagged frame
 * belongs to a VLAN interface, which has its own responder).
 */
export const arpRequestProgram: readonly Instruction[] = assemble([
  ldAncillary(Ancillary.pktType),
  jeq(PacketType.host, 'pktOk'),
  jeq(PacketType.broadcast, 'pktOk', 'drop'),
  label('pktOk'),
  ldAncillary(Ancillary.vlanTagPresent),
  jeq(0, 'untagged', 'drop'),
  label('untagged'),
  ld(2, 20),
  jeq(ArpOperation.Request, 'keep', 'drop'),
  label('keep'),
  ret(KEEP),
  label('drop'),
  ret(0),
]);

/**
 * IPv6 socket (bound to EtherType 0x86dd): ICMPv6 (next header at 20) neighbor solicitations (type at 54) sent
 * to this interface or to a multicast group, untagged. Solicitations behind extension headers are not seen
 * (the kernel's own NDP does not send such).
 */
export const neighborSolicitationProgram: readonly Instruction[] = assemble([
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
  jeq(Icmpv6Type.NeighborSolicitation, 'keep', 'drop'),
  label('keep'),
  ret(KEEP),
  label('drop'),
  ret(0),
]);

export const arpRequestFilter = (): Buffer => encode(arpRequestProgram);
export const neighborSolicitationFilter = (): Buffer => encode(neighborSolicitationProgram);
