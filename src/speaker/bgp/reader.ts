// A cursor over one message's bytes. Every read is bounds-checked by the caller through `remaining`, so a short
// buffer is a protocol error there, never an exception here; `need` is the guard that turns it into one.
export class Reader {
  offset: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  /** Throws `onShort()` when fewer than n bytes are left. */
  need(n: number, onShort: () => Error): void {
    if (this.remaining < n) throw onShort();
  }

  u8(): number {
    return this.buf[this.offset++]!;
  }

  u16(): number {
    const b = this.buf;
    const v = (b[this.offset]! << 8) | b[this.offset + 1]!;
    this.offset += 2;
    return v;
  }

  u32(): number {
    const b = this.buf;
    const v = ((b[this.offset]! << 24) >>> 0) + ((b[this.offset + 1]! << 16) | (b[this.offset + 2]! << 8) | b[this.offset + 3]!);
    this.offset += 4;
    return v;
  }

  bytes(n: number): Uint8Array {
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** A reader over the next n bytes, which this one skips. */
  sub(n: number): Reader {
    const r = new Reader(this.buf, this.offset, this.offset + n);
    this.offset += n;
    return r;
  }
}
