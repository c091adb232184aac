// A growable byte buffer for building messages (the shape of pg-protocol's buffer writer).
export class Writer {
  private buf: Buffer;
  length = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.length);
    this.length += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** Reserves a 1- or 2-byte length field; call the returned function once the content is written. */
  lengthField(size: 1 | 2): () => void {
    const at = this.length;
    if (size === 1) this.u8(0);
    else this.u16(0);
    return () => {
      const n = this.length - at - size;
      if (size === 1) this.buf[at] = n;
      else this.buf.writeUInt16BE(n, at);
    };
  }

  /** A copy of what was written. */
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}
