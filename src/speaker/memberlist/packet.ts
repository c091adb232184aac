// UDP packet framing (net.go ingestPacket/handleCommand/rawSendMsgPacket, label.go, util.go):
//   [244 len label]? ( encrypted: [vsn nonce ciphertext tag] with AAD = label ) →
//   [12 crc32(be) ...]? → message: [type body] where type 7 = compound [n, n×len16, parts], 9 = compress.
import { lzwCompress, lzwDecompress } from './lzw.js';
import { decodeCompress, encodeCompress, MessageType } from './messages.js';
import { type EncryptionVersion, type Keyring, open, seal } from './security.js';

export class PacketError extends Error {
  override name = 'PacketError';
}

const NO_LABEL = Buffer.alloc(0);
const labelBytes = (label: string): Buffer => (label === '' ? NO_LABEL : Buffer.from(label, 'utf8'));

/** A decompressed packet may not exceed this (a packet is at most one UDP datagram when sent). */
const MAX_PACKET_DECOMPRESSED = 1 << 20;

// CRC-32/IEEE, what Go's crc32.ChecksumIEEE computes (node:zlib has crc32 only from Node 22).
const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = (crcTable[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** label.go: returns the label and the rest; no header ⇒ label ''. */
export function removeLabelHeader(buf: Buffer): { label: string; rest: Buffer } {
  if (buf.length === 0 || buf[0] !== MessageType.hasLabel) return { label: '', rest: buf };
  if (buf.length < 2) throw new PacketError('label header: missing label size');
  const size = buf[1] as number;
  if (size < 1) throw new PacketError('label header cannot be empty when present');
  if (buf.length < 2 + size) throw new PacketError('label header: label is truncated');
  return { label: buf.subarray(2, 2 + size).toString('utf8'), rest: buf.subarray(2 + size) };
}
export function labelHeader(label: string): Buffer {
  if (label === '') return Buffer.alloc(0);
  const l = Buffer.from(label, 'utf8');
  if (l.length > 255) throw new PacketError('label is longer than 255 bytes');
  return Buffer.concat([Buffer.of(MessageType.hasLabel, l.length), l]);
}

export interface SecurityOptions {
  keyring?: Keyring | undefined;
  label: string;
  /** memberlist GossipVerifyIncoming: refuse plaintext when a keyring is set. */
  verifyIncoming: boolean;
  /** memberlist GossipVerifyOutgoing: encrypt what we send when a keyring is set. */
  verifyOutgoing: boolean;
  encryptionVersion: EncryptionVersion;
}

/** One protocol message out of a packet: its type byte and its (msgpack) body. */
export interface PacketMessage {
  type: number;
  body: Buffer;
}
export interface UnwrappedPacket {
  messages: PacketMessage[];
  /** compound parts announced but cut off (memberlist logs and keeps the complete ones). */
  truncated: number;
  encrypted: boolean;
}

export function decodeCompound(buf: Buffer): { parts: Buffer[]; truncated: number } {
  if (buf.length < 1) throw new PacketError('missing compound length byte');
  const n = buf[0] as number;
  if (buf.length < 1 + n * 2) throw new PacketError('truncated compound length slice');
  const parts: Buffer[] = [];
  let off = 1 + n * 2;
  for (let i = 0; i < n; i++) {
    const len = buf.readUInt16BE(1 + i * 2);
    if (off + len > buf.length) return { parts, truncated: n - i };
    parts.push(buf.subarray(off, off + len));
    off += len;
  }
  return { parts, truncated: 0 };
}

/** Joins messages into compound messages of at most 255 parts (util.go makeCompoundMessages). */
export function makeCompound(msgs: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < msgs.length; i += 255) {
    const batch = msgs.slice(i, i + 255);
    const head = Buffer.alloc(2 + batch.length * 2);
    head[0] = MessageType.compound;
    head[1] = batch.length;
    batch.forEach((m, j) => head.writeUInt16BE(m.length, 2 + j * 2));
    out.push(Buffer.concat([head, ...batch]));
  }
  return out;
}

export function compressMessage(msg: Uint8Array): Buffer {
  return encodeCompress({ Algo: 0, Buf: lzwCompress(msg) });
}
export function decompressMessage(body: Uint8Array, max: number): Buffer {
  const c = decodeCompress(body);
  if (c.Algo !== 0) throw new PacketError(`cannot decompress unknown algorithm ${c.Algo}`);
  return lzwDecompress(c.Buf, max);
}

const IN_COMPOUND = 1;
const IN_COMPRESS = 2;

function splitMessages(buf: Buffer, env: number, out: PacketMessage[], acc: { truncated: number }): void {
  if (buf.length < 1) throw new PacketError('missing message type byte');
  const type = buf[0] as number;
  const body = buf.subarray(1);
  if (type === MessageType.compound) {
    // Senders never nest envelopes; refusing nesting bounds the work one packet can cause.
    if (env & IN_COMPOUND) throw new PacketError('nested compound message');
    const { parts, truncated } = decodeCompound(body);
    acc.truncated += truncated;
    for (const p of parts) splitMessages(p, env | IN_COMPOUND, out, acc);
  } else if (type === MessageType.compress) {
    if (env & IN_COMPRESS) throw new PacketError('nested compressed message');
    splitMessages(decompressMessage(body, MAX_PACKET_DECOMPRESSED), env | IN_COMPRESS, out, acc);
  } else {
    out.push({ type, body });
  }
}

/** Everything ingestPacket does before dispatch. Throws PacketError / DecryptError / LzwError / MsgpackError. */
export function unwrapPacket(packet: Buffer, sec: SecurityOptions): UnwrappedPacket {
  let { label, rest: buf } = removeLabelHeader(packet);
  if (label !== sec.label) throw new PacketError(`discarding packet with unacceptable label "${label}"`);
  let encrypted = false;
  if (sec.keyring) {
    try {
      buf = open(sec.keyring.all(), buf, labelBytes(label));
      encrypted = true;
    } catch (err) {
      if (sec.verifyIncoming) throw err;
    }
  }
  if (buf.length >= 5 && buf[0] === MessageType.hasCrc) {
    const expected = buf.readUInt32BE(1);
    const got = crc32(buf.subarray(5));
    if (got !== expected) throw new PacketError(`invalid checksum ${got.toString(16)}, expected ${expected.toString(16)}`);
    buf = buf.subarray(5);
  }
  const messages: PacketMessage[] = [];
  const acc = { truncated: 0 };
  splitMessages(buf, 0, messages, acc);
  return { messages, truncated: acc.truncated, encrypted };
}

export interface WrapOptions {
  /** The recipient speaks protocol >= 5 (its pmax), so it checks a CRC. */
  crc: boolean;
  /** memberlist EnableCompression: compress when that makes the packet smaller. */
  compress: boolean;
}

/** rawSendMsgPacket: compress (if smaller), CRC, encrypt, label. */
export function wrapPacket(msg: Buffer, sec: SecurityOptions, opts: WrapOptions): Buffer {
  let buf = msg;
  if (opts.compress) {
    const c = compressMessage(buf);
    if (c.length < buf.length) buf = c;
  }
  if (opts.crc) {
    const head = Buffer.alloc(5);
    head[0] = MessageType.hasCrc;
    head.writeUInt32BE(crc32(buf), 1);
    buf = Buffer.concat([head, buf]);
  }
  if (sec.keyring && sec.verifyOutgoing) {
    buf = seal(sec.encryptionVersion, sec.keyring.primary, buf, labelBytes(sec.label));
  }
  return sec.label ? Buffer.concat([labelHeader(sec.label), buf]) : buf;
}
