// What the ARP and NDP responders share: one interface, the socket they receive on and send through (a
// PacketSocket in production, a fake in unit tests), and its filter, batch send and latency trace.
import { emptySamples, type LatencySamples } from '../../net/latency-trace.js';
import type { FrameTransport, ResponderContext } from './announced.js';

export abstract class FrameResponder {
  protected transport: FrameTransport | undefined;
  private filter: Buffer | undefined;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly mac: Buffer,
    protected readonly ctx: ResponderContext,
    /** The length of every frame this responder sends. */
    private readonly frameLength: number,
  ) {}

  abstract handleFrame(frame: Buffer, length: number): void;

  /** Starts receiving through `open(onFrame)` (a PacketSocket bound to this interface in production). */
  attach(open: (onFrame: (frame: Buffer, length: number) => void) => FrameTransport): this {
    this.transport = open((frame, length) => this.handleFrame(frame, length));
    return this;
  }

  /** Sends `count` frames laid out back to back in `buf` (gratuitous announcements). */
  sendBatch(buf: Buffer, count: number): number {
    return this.transport ? this.transport.sendBatch(buf, this.frameLength, count) : 0;
  }

  /** Gives the socket `filter` unless it has it already. Throws as the socket does. */
  setFilter(filter: Buffer): void {
    if (this.filter?.equals(filter)) return;
    this.transport?.setFilter?.(filter);
    this.filter = filter;
  }

  /** Traced answer latencies since the previous call (Announcer option traceLatency). */
  latency(): LatencySamples {
    return this.transport?.latency?.() ?? emptySamples();
  }

  close(): void {
    this.transport?.close();
    this.transport = undefined;
  }
}
