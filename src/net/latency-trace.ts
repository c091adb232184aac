// Where a packet socket's answers spend their time, for benchmarks and diagnosis (PacketSocket's traceLatency).
// Per answered frame, from the kernel's receive timestamp: the frame read by the process (the wait to be
// scheduled and the event loop's wake-up), send() of the reply called (that plus the callback: parse, lookup,
// build) and send() returned (that plus the kernel carrying the reply on, synchronously, as far as it goes).
// A fixed ring, so tracing allocates nothing per frame either.

export interface LatencySamples {
  /** Microseconds from the kernel's receive timestamp to the frame read by the process. */
  readonly readUs: number[];
  /** ... to send() of the reply called. */
  readonly sendUs: number[];
  /** ... to send() returned. */
  readonly sentUs: number[];
}

const FIELDS = 3;

export class LatencyTrace {
  private readonly ring: Float64Array;
  private next = 0;
  private count = 0;

  constructor(readonly capacity = 16_384) {
    this.ring = new Float64Array(FIELDS * capacity);
  }

  /** One answer, in nanoseconds from the kernel's receive timestamp. */
  record(readNs: number, sendNs: number, sentNs: number): void {
    const at = FIELDS * this.next;
    this.ring[at] = readNs;
    this.ring[at + 1] = sendNs;
    this.ring[at + 2] = sentNs;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** The answers since the previous drain (the newest `capacity` of them), oldest first. */
  drain(): LatencySamples {
    const out: LatencySamples = { readUs: [], sendUs: [], sentUs: [] };
    const first = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const at = FIELDS * ((first + i) % this.capacity);
      out.readUs.push(this.ring[at]! / 1000);
      out.sendUs.push(this.ring[at + 1]! / 1000);
      out.sentUs.push(this.ring[at + 2]! / 1000);
    }
    this.count = 0;
    return out;
  }
}

export const emptySamples = (): LatencySamples => ({ readUs: [], sendUs: [], sentUs: [] });

export function mergeSamples(parts: readonly LatencySamples[]): LatencySamples {
  return { readUs: parts.flatMap((p) => p.readUs), sendUs: parts.flatMap((p) => p.sendUs), sentUs: parts.flatMap((p) => p.sentUs) };
}
