// Answers IPv6 neighbor solicitations for announced addresses on one interface, and sends unsolicited neighbor
// advertisements for them (MetalLB internal/layer2/ndp.go). A solicitation must carry a source link-layer address
// option (so duplicate address detection probes are left alone); the answer is a solicited advertisement
// (S=1, O=0, target link-layer address = this interface's MAC) to the solicitation's source, sent to the MAC that
// option names (RFC 4861 §7.2.4). Its source address is the announced address itself, as the Linux kernel does
// for its own addresses; MetalLB uses the interface's link-local address, which some clients (ndisc6) ignore
// when they asked about a global address.
import { ALL_NODES_MULTICAST, copyBytes, ipv6MulticastMac } from '../../net/addresses.js';
import { checksumOfSum, icmpv6Checksum, sumWords } from '../../net/checksum.js';
import { Icmpv6Type, IpProtocol } from '../../net/messages.js';
import { parseNdpFrame, scanNeighborSolicitation } from '../../net/parser.js';
import { NDP_FRAME_LENGTH, writeNdpFrame } from '../../net/serializer.js';
import type { AnnouncedIp, ResponderContext } from './announced.js';
import { FrameResponder } from './responder.js';

const ALL_NODES_MAC = ipv6MulticastMac(ALL_NODES_MULTICAST);

export class NdpResponder extends FrameResponder {
  /** A solicited advertisement with everything but the addresses and checksum filled in. */
  private readonly tx = Buffer.alloc(NDP_FRAME_LENGTH);
  private readonly at = new Int32Array(3);
  /**
   * The reply's checksum sum without its three addresses: the message as templated (type, S flag, the target
   * link-layer address option) and the pseudo-header's length and next header. Answering adds the announced
   * address twice (IPv6 source, target) and the requester's address (IPv6 destination).
   */
  private readonly txSum: number;
  /** The unsolicited advertisement with the address and checksum left zero. */
  private readonly gratuitous = Buffer.alloc(NDP_FRAME_LENGTH);

  constructor(name: string, index: number, mac: Buffer, ctx: ResponderContext) {
    super(name, index, mac, ctx, NDP_FRAME_LENGTH);
    const zero16 = Buffer.alloc(16);
    writeNdpFrame(this.tx, 0, {
      destination: zero16,
      source: mac,
      sourceAddress: zero16,
      destinationAddress: zero16,
      message: { type: Icmpv6Type.NeighborAdvertisement, router: false, solicited: true, override: false, targetAddress: zero16, targetLinkLayerAddress: mac },
    });
    const messageLength = NDP_FRAME_LENGTH - 54;
    this.txSum = sumWords(this.tx, 58, NDP_FRAME_LENGTH, sumWords(this.tx, 54, 56)) + messageLength + IpProtocol.ICMPv6;
    // RFC 4861 §7.2.6: to all nodes, S=0, O=1, with the target link-layer address; from the address itself.
    writeNdpFrame(this.gratuitous, 0, {
      destination: ALL_NODES_MAC,
      source: mac,
      sourceAddress: zero16,
      destinationAddress: ALL_NODES_MULTICAST,
      message: { type: Icmpv6Type.NeighborAdvertisement, router: false, solicited: false, override: true, targetAddress: zero16, targetLinkLayerAddress: mac },
    });
  }


  handleFrame(frame: Buffer, length: number): void {
    const at = this.at;
    if (!scanNeighborSolicitation(frame, length, at)) {
      const parsed = parseNdpFrame(frame, length);
      if (parsed.ok) this.ctx.dropped('notRequest', this.name, undefined);
      else this.ctx.dropped('malformed', this.name, parsed.reason);
      return;
    }
    const ipOffset = at[0]!;
    const icmp = at[1]!;
    const slla = at[2]!;
    if (slla < 0) {
      this.ctx.dropped('noSourceLinkLayer', this.name, undefined);
      return;
    }
    const ip = this.ctx.lookupV6(frame, icmp + 8);
    if (!ip) {
      this.ctx.dropped('notAnnounced', this.name, undefined);
      return;
    }
    if (!ip.matches(this.name)) {
      this.ctx.dropped('notMatchInterface', this.name, ip.text);
      return;
    }
    ip.counters.requestsReceived++;
    if (this.ctx.traceAnswer) this.ctx.traceAnswer(this.name, ip, frame.subarray(slla, slla + 6));
    // Ethernet to the source LLA; IPv6 from the address to the solicitation's source; target = the address.
    const tx = this.tx;
    copyBytes(frame, slla, tx, 0, 6);
    copyBytes(ip.bytes, 0, tx, 22, 16);
    copyBytes(frame, ipOffset + 8, tx, 38, 16);
    copyBytes(ip.bytes, 0, tx, 62, 16);
    const sum = sumWords(frame, ipOffset + 8, ipOffset + 24, this.txSum + 2 * ip.wordSum);
    tx.writeUInt16BE(checksumOfSum(sum), 56);
    try {
      this.transport?.send(tx, 0, NDP_FRAME_LENGTH);
      ip.counters.responsesSent++;
    } catch (err) {
      this.ctx.dropped('sendFailed', this.name, (err as Error).message);
    }
  }

  static readonly framesPerAddress = 1;
  static readonly frameLength = NDP_FRAME_LENGTH;

  /** Writes the unsolicited advertisement of `ip` at `offset` (frameLength bytes). */
  writeGratuitous(buf: Buffer, offset: number, ip: AnnouncedIp): void {
    buf.set(this.gratuitous, offset);
    copyBytes(ip.bytes, 0, buf, offset + 22, 16);
    copyBytes(ip.bytes, 0, buf, offset + 62, 16);
    buf.writeUInt16BE(icmpv6Checksum(buf, offset + 54, NDP_FRAME_LENGTH - 54, buf, buf, offset + 22, offset + 38), offset + 56);
  }
}
