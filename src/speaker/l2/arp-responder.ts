// Answers ARP requests for announced IPv4 addresses on one interface, and sends gratuitous ARP for them
// (MetalLB internal/layer2/arp.go). Requests to the broadcast address or to this interface, for an address
// announced on this interface, get a reply from the interface's MAC, sent to the requester's hardware address.
import { BROADCAST_MAC, ArpOperation } from '../../net/messages.js';
import { bytesEqual, copyBytes } from '../../net/addresses.js';
import { arpPacketOffset, parseArpFrame } from '../../net/parser.js';
import { ARP_FRAME_LENGTH, writeArpFrame } from '../../net/serializer.js';
import type { AnnouncedIp, ResponderContext } from './announced.js';
import { FrameResponder } from './responder.js';

export class ArpResponder extends FrameResponder {
  /** A reply with everything but the addresses filled in: answering copies 20 bytes and sends. */
  private readonly tx = Buffer.alloc(ARP_FRAME_LENGTH);
  /** The two gratuitous frames with the address left zero: a takeover copies them and fills in 4 x 4 bytes. */
  private readonly gratuitous = Buffer.alloc(2 * ARP_FRAME_LENGTH);

  constructor(name: string, index: number, mac: Buffer, ctx: ResponderContext) {
    super(name, index, mac, ctx, ARP_FRAME_LENGTH);
    const zero = Buffer.alloc(6);
    writeArpFrame(this.tx, 0, zero, mac, {
      operation: ArpOperation.Reply,
      senderHardwareAddress: mac,
      senderProtocolAddress: zero,
      targetHardwareAddress: zero,
      targetProtocolAddress: zero,
    });
    // RFC 5227 §3 announcement, as MetalLB sends it: a request and a reply, sender = target = the address,
    // target hardware address broadcast, to the Ethernet broadcast address.
    for (const [i, operation] of [ArpOperation.Request, ArpOperation.Reply].entries()) {
      writeArpFrame(this.gratuitous, i * ARP_FRAME_LENGTH, BROADCAST_MAC, mac, {
        operation,
        senderHardwareAddress: mac,
        senderProtocolAddress: zero,
        targetHardwareAddress: BROADCAST_MAC,
        targetProtocolAddress: zero,
      });
    }
  }


  handleFrame(frame: Buffer, length: number): void {
    const arp = arpPacketOffset(frame, length);
    if (arp < 0) {
      const parsed = parseArpFrame(frame, length);
      this.ctx.dropped('malformed', this.name, parsed.ok ? 'not an ARP frame' : parsed.reason);
      return;
    }
    if (((frame[arp + 6]! << 8) | frame[arp + 7]!) !== ArpOperation.Request) {
      this.ctx.dropped('notRequest', this.name, undefined);
      return;
    }
    if (!bytesEqual(frame, 0, BROADCAST_MAC, 0, 6) && !bytesEqual(frame, 0, this.mac, 0, 6)) {
      this.ctx.dropped('ethernetDestination', this.name, undefined);
      return;
    }
    const ip = this.ctx.lookupV4(frame.readUInt32BE(arp + 24));
    if (!ip) {
      this.ctx.dropped('notAnnounced', this.name, undefined);
      return;
    }
    if (!ip.matches(this.name)) {
      this.ctx.dropped('notMatchInterface', this.name, ip.text);
      return;
    }
    ip.counters.requestsReceived++;
    if (this.ctx.traceAnswer) this.ctx.traceAnswer(this.name, ip, frame.subarray(arp + 8, arp + 14));
    // RFC 826 reply: to the requester's hardware address (Ethernet and ar$tha), for its ar$spa, from us.
    const tx = this.tx;
    copyBytes(frame, arp + 8, tx, 0, 6);
    copyBytes(ip.bytes, 0, tx, 28, 4);
    copyBytes(frame, arp + 8, tx, 32, 6);
    copyBytes(frame, arp + 14, tx, 38, 4);
    try {
      this.transport?.send(tx, 0, ARP_FRAME_LENGTH);
      ip.counters.responsesSent++;
    } catch (err) {
      this.ctx.dropped('sendFailed', this.name, (err as Error).message);
    }
  }

  /** Frames per address of a gratuitous announcement: a request and a reply, as MetalLB sends. */
  static readonly framesPerAddress = 2;
  static readonly frameLength = ARP_FRAME_LENGTH;

  /** Writes the two gratuitous frames of `ip` at `offset` (2 x frameLength bytes). */
  writeGratuitous(buf: Buffer, offset: number, ip: AnnouncedIp): void {
    buf.set(this.gratuitous, offset);
    for (const frame of [offset, offset + ARP_FRAME_LENGTH]) {
      copyBytes(ip.bytes, 0, buf, frame + 28, 4);
      copyBytes(ip.bytes, 0, buf, frame + 38, 4);
    }
  }
}
