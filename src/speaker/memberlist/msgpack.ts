// MessagePack as hashicorp/memberlist writes it (go-msgpack `codec.MsgpackHandle{}`, WriteExt off):
// structs are maps keyed by field name in alphabetical order, `omitempty` fields left out when zero,
// strings AND []byte both in the old "raw" family (fixraw / raw16 / raw32, never str8 or bin),
// unsigned integers in their smallest form. @msgpack/msgpack decodes every format (Go peers and
// older memberlists emit raw, newer libraries bin), but it encodes byte arrays as bin and 32..255-byte
// strings as str8, which Go's handle never emits; so encoding is this small writer, byte-for-byte what
// a Go peer sends (tested against serf captures), and decoding is the library.
import { Decoder } from '@msgpack/msgpack';

export type WireValue = number | boolean | string | Uint8Array;
/** A struct to encode: undefined values are omitted (Go `omitempty`). */
export type WireStruct = Record<string, WireValue | undefined>;

const utf8 = new TextEncoder();

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function writeUint(w: Writer, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`msgpack: ${v} is not an unsigned integer`);
  if (v < 0x80) w.u8(v);
  else if (v <= 0xff) {
    w.u8(0xcc);
    w.u8(v);
  } else if (v <= 0xffff) {
    w.u8(0xcd);
    w.u16(v);
  } else if (v <= 0xffffffff) {
    w.u8(0xce);
    w.u32(v);
  } else {
    w.u8(0xcf);
    w.u32(Math.floor(v / 2 ** 32));
    w.u32(v >>> 0);
  }
}

function writeRaw(w: Writer, b: Uint8Array): void {
  if (b.length < 32) w.u8(0xa0 | b.length);
  else if (b.length <= 0xffff) {
    w.u8(0xda);
    w.u16(b.length);
  } else {
    w.u8(0xdb);
    w.u32(b.length);
  }
  w.bytes(b);
}

function writeValue(w: Writer, v: WireValue): void {
  if (typeof v === 'number') writeUint(w, v);
  else if (typeof v === 'boolean') w.u8(v ? 0xc3 : 0xc2);
  else if (typeof v === 'string') writeRaw(w, utf8.encode(v));
  else writeRaw(w, v);
}

/** Field names as written (raw header and bytes): the same few names are written hundreds of times a second. */
const encodedKeys = new Map<string, Buffer>();
function encodedKey(k: string): Buffer {
  let e = encodedKeys.get(k);
  if (e === undefined) {
    const w = new Writer();
    writeRaw(w, utf8.encode(k));
    e = Buffer.from(w.result());
    // Field names come from our own message types; the bound only guards against a caller passing data as keys.
    if (encodedKeys.size < 1024) encodedKeys.set(k, e);
  }
  return e;
}

/** Encodes one struct the way go-msgpack does (see the file comment). */
export function encodeStruct(s: WireStruct, w: Writer = new Writer()): Buffer {
  const keys = Object.keys(s)
    .filter((k) => s[k] !== undefined)
    .sort();
  if (keys.length < 16) w.u8(0x80 | keys.length);
  else {
    w.u8(0xde);
    w.u16(keys.length);
  }
  for (const k of keys) {
    w.bytes(encodedKey(k));
    writeValue(w, s[k] as WireValue);
  }
  return w.result();
}

/** A message type byte followed by the encoded struct (memberlist's `encode`). */
export function encodeMessage(type: number, s: WireStruct): Buffer {
  const w = new Writer();
  w.u8(type);
  return encodeStruct(s, w);
}

export class MsgpackError extends Error {
  override name = 'MsgpackError';
}

const decoder = new Decoder({
  rawStrings: true,
  // Bounds well above anything memberlist sends, so a hostile length cannot make us allocate much.
  maxStrLength: 32 << 20,
  maxBinLength: 32 << 20,
  maxArrayLength: 1 << 16,
  maxMapLength: 256,
  maxExtLength: 1 << 16,
});

/** Decodes exactly one value (the whole buffer) into a plain record, or throws MsgpackError. */
export function decodeRecord(buf: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = decoder.decode(buf);
  } catch (err) {
    throw new MsgpackError(`malformed msgpack: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
    throw new MsgpackError('msgpack value is not a map');
  }
  return v as Record<string, unknown>;
}

/** Incomplete input for a streaming read: wait for more bytes. */
export class NeedMoreData extends Error {}

/**
 * Returns the offset just past the msgpack value starting at `off`, without decoding it, so a stream
 * of values followed by raw bytes (push/pull: header, node states, user state) can be split.
 * Throws NeedMoreData when the buffer ends inside the value.
 */
export function valueEnd(buf: Uint8Array, off: number, depth = 0): number {
  if (depth > 32) throw new MsgpackError('msgpack nested too deeply');
  const need = (n: number): void => {
    if (off + n > buf.length) throw new NeedMoreData();
  };
  need(1);
  const b = buf[off] as number;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const len = (size: 1 | 2 | 4): number => {
    need(1 + size);
    return size === 1 ? view.getUint8(off + 1) : size === 2 ? view.getUint16(off + 1) : view.getUint32(off + 1);
  };
  const skip = (n: number): number => {
    need(n);
    return off + n;
  };
  const items = (count: number, start: number, perItem: number): number => {
    let p = start;
    for (let i = 0; i < count * perItem; i++) p = valueEnd(buf, p, depth + 1);
    return p;
  };
  if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return off + 1;
  if ((b & 0xe0) === 0xa0) return skip(1 + (b & 0x1f));
  if ((b & 0xf0) === 0x90) return items(b & 0x0f, off + 1, 1);
  if ((b & 0xf0) === 0x80) return items(b & 0x0f, off + 1, 2);
  switch (b) {
    case 0xcc: case 0xd0: return skip(2);
    case 0xcd: case 0xd1: return skip(3);
    case 0xce: case 0xd2: case 0xca: return skip(5);
    case 0xcf: case 0xd3: case 0xcb: return skip(9);
    case 0xc4: case 0xd9: return skip(2 + len(1));
    case 0xc5: case 0xda: return skip(3 + len(2));
    case 0xc6: case 0xdb: return skip(5 + len(4));
    case 0xd4: return skip(3);
    case 0xd5: return skip(4);
    case 0xd6: return skip(6);
    case 0xd7: return skip(10);
    case 0xd8: return skip(18);
    case 0xc7: return skip(3 + len(1));
    case 0xc8: return skip(4 + len(2));
    case 0xc9: return skip(6 + len(4));
    case 0xdc: return items(len(2), off + 3, 1);
    case 0xdd: return items(len(4), off + 5, 1);
    case 0xde: return items(len(2), off + 3, 2);
    case 0xdf: return items(len(4), off + 5, 2);
    default: throw new MsgpackError(`invalid msgpack type byte 0x${b.toString(16)}`);
  }
}
