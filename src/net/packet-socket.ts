// An AF_PACKET socket on one interface: raw Ethernet frames in and out, received on the event loop.
// Frames arrive in one Buffer owned by the socket and are valid only during the onFrame call, so a busy link does
// not allocate per frame; copy what must outlive the call.
import { emptySamples, LatencyTrace, type LatencySamples } from './latency-trace.js';
import { errnoCode, loadNative, type NativeBinding } from './native.js';

export interface PacketSocketOptions {
  readonly ifname: string;
  /** EtherType to receive (0x0806 ARP, 0x86dd IPv6, 0x0003 all). */
  readonly protocol: number;
  /** Classic BPF program (bpf.encode), attached before any frame is queued. */
  readonly filter?: Buffer;
  /** Largest frame kept whole; longer ones arrive truncated with their wire length. Default 2048. */
  readonly bufferSize?: number;
  /** `frame` is the shared receive buffer; bytes [0, length) are the frame. */
  onFrame(frame: Buffer, length: number, pktType: number, wireLength: number): void;
  /** A receive error (rare: the interface vanished...). Default: ignored. */
  onError?(err: Error): void;
  /** Kernel receive queue size; default 1 MiB (the system default holds only ~270 small frames). */
  readonly receiveBufferBytes?: number;
  /** Whether the open socket keeps the process alive. Default true. */
  readonly ref?: boolean;
  /**
   * Records, for each frame whose onFrame call sent a reply on this socket, how long after the kernel received
   * it the process read it and sent the reply (see latency()). Off by default: it timestamps every received frame.
   */
  readonly traceLatency?: boolean;
}

export class PacketSocketError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'PacketSocketError';
  }
}

export class PacketSocket {
  private closed = false;

  private constructor(
    private readonly native: NativeBinding,
    private readonly id: number,
    readonly ifname: string,
    readonly ifindex: number,
    private readonly trace: LatencyTrace | undefined,
  ) {}

  static open(options: PacketSocketOptions): PacketSocket {
    const native = loadNative();
    const rx = Buffer.alloc(options.bufferSize ?? 2048);
    const { onFrame, onError } = options;
    if (options.traceLatency && typeof native.packetTimestamps !== 'function') {
      throw new PacketSocketError('latency tracing needs a newer native addon: rebuild it with `npm run build:native`', undefined);
    }
    // Over an ArrayBuffer of its own, so that its memory never moves (the addon writes to it between calls).
    const timing = options.traceLatency ? new Float64Array(new ArrayBuffer(24)) : undefined;
    const trace = timing ? new LatencyTrace() : undefined;
    let opened: { id: number; ifindex: number };
    try {
      opened = native.packetOpen(options.ifname, options.protocol, options.filter ?? null, rx, (length, pktType, wireLength) => {
        if (length < 0) {
          onError?.(new PacketSocketError(`receiving on ${options.ifname}: errno ${-length}`, undefined));
          return;
        }
        onFrame(rx, length, pktType, wireLength);
        if (timing && timing[1]! >= 0) trace!.record(timing[0]!, timing[1]!, timing[2]!);
      }, options.receiveBufferBytes ?? 1 << 20);
    } catch (err) {
      throw describeOpenError(err, options.ifname);
    }
    const sock = new PacketSocket(native, opened.id, options.ifname, opened.ifindex, trace);
    if (options.ref === false) native.packetRef(opened.id, false);
    if (timing) {
      try {
        native.packetTimestamps!(opened.id, timing);
      } catch (err) {
        sock.close();
        throw new PacketSocketError(`latency tracing on ${options.ifname}: ${(err as Error).message}`, errnoCode(err));
      }
    }
    return sock;
  }

  /** Sends one whole Ethernet frame (header included). Throws PacketSocketError (e.g. ENETDOWN, ENOBUFS). */
  send(frame: Buffer, offset = 0, length = frame.length - offset): void {
    try {
      this.native.packetSend(this.id, frame, offset, length);
    } catch (err) {
      throw new PacketSocketError(`sending on ${this.ifname}: ${(err as Error).message}`, errnoCode(err));
    }
  }

  /** Sends `count` frames of `stride` bytes laid end to end in `buf`, in few system calls; returns how many left. */
  sendBatch(buf: Buffer, stride: number, count: number): number {
    if (count === 0) return 0;
    try {
      return this.native.packetSendBatch(this.id, buf, stride, count);
    } catch (err) {
      throw new PacketSocketError(`sending on ${this.ifname}: ${(err as Error).message}`, errnoCode(err));
    }
  }

  /** Replaces the BPF filter (bpf.encode), atomically: no frame passes unfiltered meanwhile. */
  setFilter(filter: Buffer): void {
    if (typeof this.native.packetSetFilter !== 'function') {
      throw new PacketSocketError('changing a filter needs a newer native addon: rebuild it with `npm run build:native`', undefined);
    }
    try {
      this.native.packetSetFilter(this.id, filter);
    } catch (err) {
      throw new PacketSocketError(`filter on ${this.ifname}: ${(err as Error).message}`, errnoCode(err));
    }
  }

  /** Accepts frames to a link-layer multicast address (PACKET_ADD_MEMBERSHIP). */
  addMembership(mac: Buffer): void {
    this.native.packetMembership(this.id, true, mac);
  }

  dropMembership(mac: Buffer): void {
    this.native.packetMembership(this.id, false, mac);
  }

  /** Frames the kernel queued and dropped (receive queue full) since the previous call. */
  stats(): { packets: number; drops: number } {
    return this.native.packetStats(this.id);
  }

  /** The traced answers since the previous call (traceLatency), else none. */
  latency(): LatencySamples {
    return this.trace?.drain() ?? emptySamples();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.packetClose(this.id);
  }
}

function describeOpenError(err: unknown, ifname: string): Error {
  const code = errnoCode(err);
  const detail = (err as Error).message;
  if (code === 'EPERM' || code === 'EACCES') {
    return new PacketSocketError(
      `opening a raw packet socket on ${ifname} needs CAP_NET_RAW: run as root or grant the NET_RAW capability (${detail})`,
      code,
    );
  }
  if (code === 'ENODEV' || code === 'ENXIO') return new PacketSocketError(`no interface named ${ifname} (${detail})`, code);
  if (err instanceof Error && err.name === 'NativeUnavailableError') return err;
  return new PacketSocketError(`opening a raw packet socket on ${ifname}: ${detail}`, code);
}
