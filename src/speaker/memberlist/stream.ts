// TCP stream messages (net.go readStream/rawSendMsgStream/sendLocalState/readRemoteState):
//   [244 len label]? at the start of the connection, then one message:
//   encrypted: [10][len u32][vsn nonce ciphertext tag], AAD = those 5 bytes + label;
//   compressed: [9][msgpack compress{Algo, Buf}];
//   plain: [type][msgpack values...][raw bytes].
// Plain messages carry no length, so the reader works on the bytes received so far and asks for more
// (returns null) until a whole message parses.
import { lzwDecompress } from './lzw.js';
import {
  type AckResp,
  decodeAck,
  decodeCompress,
  decodeErr,
  decodePing,
  decodePushNodeState,
  decodePushPullHeader,
  type ErrResp,
  MessageType,
  type Ping,
  type PushNodeState,
  type PushPullHeader,
  pushNodeStateStruct,
  pushPullHeaderStruct,
} from './messages.js';
import { decodeRecord, encodeStruct, MsgpackError, NeedMoreData, valueEnd } from './msgpack.js';
import { compressMessage, PacketError, type SecurityOptions } from './packet.js';
import { open, seal, encryptedLength } from './security.js';

/** net.go maxPushStateBytes: the most a peer may ask us to read for one message. */
export const MAX_STREAM_BYTES = 20 * 1024 * 1024;
const MAX_PUSH_NODES = 1 << 20;

export type StreamMessage =
  | { kind: 'pushPull'; header: PushPullHeader; nodes: PushNodeState[]; userState: Buffer }
  | { kind: 'ping'; ping: Ping }
  | { kind: 'ack'; ack: AckResp }
  | { kind: 'err'; err: ErrResp }
  | { kind: 'user'; payload: Buffer }
  | { kind: 'unknown'; type: number };

export interface StreamRead {
  message: StreamMessage;
  encrypted: boolean;
}

/**
 * Parses one message from the start of `buf` (the label header already removed).
 * Returns null when more bytes are needed; throws PacketError (and codec errors) when the bytes are bad.
 */
export function readStreamMessage(buf: Buffer, sec: SecurityOptions): StreamRead | null {
  if (buf.length < 1) return null;
  let type = buf[0] as number;
  let body = buf.subarray(1);
  let whole = false;
  let encrypted = false;
  if (type === MessageType.encrypt) {
    if (!sec.keyring) throw new PacketError('remote state is encrypted and encryption is not configured');
    if (buf.length < 5) return null;
    const len = buf.readUInt32BE(1);
    if (len > MAX_STREAM_BYTES) throw new PacketError(`remote node state is larger than limit (${len})`);
    if (buf.length < 5 + len) return null;
    const aad = Buffer.concat([buf.subarray(0, 5), Buffer.from(sec.label, 'utf8')]);
    const plain = open(sec.keyring.all(), buf.subarray(5, 5 + len), aad);
    if (plain.length === 0) throw new PacketError('decrypted message is empty');
    type = plain[0] as number;
    body = plain.subarray(1);
    whole = true;
    encrypted = true;
  } else if (sec.keyring && sec.verifyIncoming) {
    throw new PacketError('encryption is configured but remote state is not encrypted');
  }
  if (type === MessageType.compress) {
    const end = whole ? body.length : tryEnd(body, 0);
    if (end === null) return null;
    const c = decodeCompress(body.subarray(0, end));
    if (c.Algo !== 0) throw new PacketError(`cannot decompress unknown algorithm ${c.Algo}`);
    const decomp = lzwDecompress(c.Buf, 2 * MAX_STREAM_BYTES);
    if (decomp.length === 0) throw new PacketError('decompressed message is empty');
    type = decomp[0] as number;
    body = decomp.subarray(1);
    whole = true;
  }
  const message = parseBody(type, body, whole);
  return message === null ? null : { message, encrypted };
}

function tryEnd(buf: Buffer, off: number): number | null {
  try {
    return valueEnd(buf, off);
  } catch (err) {
    if (err instanceof NeedMoreData) return null;
    throw err;
  }
}

// `whole`: the body is complete (it came decrypted or decompressed), so running short is an error.
function parseBody(type: number, body: Buffer, whole: boolean): StreamMessage | null {
  const one = (): Buffer | null => {
    const end = tryEnd(body, 0);
    if (end === null) {
      if (whole) throw new PacketError(`message type ${type} is truncated`);
      return null;
    }
    return body.subarray(0, end);
  };
  switch (type) {
    case MessageType.ping: {
      const v = one();
      return v && { kind: 'ping', ping: decodePing(v) };
    }
    case MessageType.ackResp: {
      const v = one();
      return v && { kind: 'ack', ack: decodeAck(v) };
    }
    case MessageType.err: {
      const v = one();
      return v && { kind: 'err', err: decodeErr(v) };
    }
    case MessageType.user: {
      const end = tryEnd(body, 0);
      if (end === null) {
        if (whole) throw new PacketError('user message is truncated');
        return null;
      }
      const len = intField(decodeRecord(body.subarray(0, end)), 'UserMsgLen');
      if (len < 0 || len > MAX_STREAM_BYTES) throw new PacketError(`user message length (${len}) exceeds limit`);
      if (body.length < end + len) {
        if (whole) throw new PacketError('user message is truncated');
        return null;
      }
      return { kind: 'user', payload: body.subarray(end, end + len) };
    }
    case MessageType.pushPull:
      return parsePushPull(body, whole);
    default:
      return { kind: 'unknown', type };
  }
}

function intField(r: Record<string, unknown>, name: string): number {
  const v = r[name];
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new MsgpackError(`field ${name}: expected an integer`);
  return v;
}

function parsePushPull(body: Buffer, whole: boolean): StreamMessage | null {
  const short = (): null => {
    if (whole) throw new PacketError('push/pull message is truncated');
    return null;
  };
  let off = tryEnd(body, 0);
  if (off === null) return short();
  const header = decodePushPullHeader(body.subarray(0, off));
  if (header.Nodes < 0 || header.Nodes > MAX_PUSH_NODES) {
    throw new PacketError(`number of nodes in header (${header.Nodes}) exceeds limit`);
  }
  if (header.UserStateLen < 0 || header.UserStateLen > MAX_STREAM_BYTES) {
    throw new PacketError(`user state length (${header.UserStateLen}) exceeds limit`);
  }
  const nodes: PushNodeState[] = [];
  for (let i = 0; i < header.Nodes; i++) {
    const end = tryEnd(body, off);
    if (end === null) return short();
    nodes.push(decodePushNodeState(body.subarray(off, end)));
    off = end;
  }
  if (body.length < off + header.UserStateLen) return short();
  return { kind: 'pushPull', header, nodes, userState: body.subarray(off, off + header.UserStateLen) };
}

/** sendLocalState's plaintext: [6][header][node states...][user state]. */
export function encodePushPull(header: PushPullHeader, nodes: readonly PushNodeState[], userState: Buffer): Buffer {
  const parts = [Buffer.of(MessageType.pushPull), encodeStruct(pushPullHeaderStruct(header))];
  for (const n of nodes) parts.push(encodeStruct(pushNodeStateStruct(n)));
  parts.push(userState);
  return Buffer.concat(parts);
}

/** rawSendMsgStream: compress (if enabled), then encrypt into [10][len][sealed]. */
export function wrapStream(plain: Buffer, sec: SecurityOptions, compress: boolean): Buffer {
  let buf = compress ? compressMessage(plain) : plain;
  if (sec.keyring && sec.verifyOutgoing) {
    const head = Buffer.alloc(5);
    head[0] = MessageType.encrypt;
    head.writeUInt32BE(encryptedLength(sec.encryptionVersion, buf.length), 1);
    const aad = Buffer.concat([head, Buffer.from(sec.label, 'utf8')]);
    buf = Buffer.concat([head, seal(sec.encryptionVersion, sec.keyring.primary, buf, aad)]);
  }
  return buf;
}
