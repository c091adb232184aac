// hashicorp/memberlist messages (net.go), field names as on the wire. Go types: uint32 → number,
// string → string, []byte → Uint8Array, uint16 → number, []uint8 (Vsn) → Uint8Array.
import { decodeRecord, encodeMessage, MsgpackError, type WireStruct } from './msgpack.js';

/** net.go `messageType` (values are the protocol; append only). */
export const MessageType = {
  ping: 0,
  indirectPing: 1,
  ackResp: 2,
  suspect: 3,
  alive: 4,
  dead: 5,
  pushPull: 6,
  compound: 7,
  user: 8,
  compress: 9,
  encrypt: 10,
  nackResp: 11,
  hasCrc: 12,
  err: 13,
  /** label.go: deliberately far from the encryption version byte and the other types. */
  hasLabel: 244,
} as const;

/** state.go `NodeStateType`, as sent in push/pull. */
export const NodeState = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
export type NodeStateValue = (typeof NodeState)[keyof typeof NodeState];

export interface Ping {
  SeqNo: number;
  /** Intended recipient's name: a restarted agent with another name must not answer for the old one. */
  Node: string;
  SourceAddr?: Uint8Array;
  SourcePort?: number;
  SourceNode?: string;
}
export interface IndirectPingReq {
  SeqNo: number;
  Target: Uint8Array;
  Port: number;
  Node: string;
  /** true when the requester wants a nack back if the target does not answer (protocol >= 4). */
  Nack: boolean;
  SourceAddr?: Uint8Array;
  SourcePort?: number;
  SourceNode?: string;
}
export interface AckResp {
  SeqNo: number;
  Payload: Uint8Array;
}
export interface NackResp {
  SeqNo: number;
}
export interface ErrResp {
  Error: string;
}
export interface Suspect {
  Incarnation: number;
  Node: string;
  From: string;
}
export interface Alive {
  Incarnation: number;
  Node: string;
  Addr: Uint8Array;
  Port: number;
  Meta: Uint8Array;
  /** pmin, pmax, pcur, dmin, dmax, dcur */
  Vsn: Uint8Array;
}
/** A dead message with From == Node is a graceful leave. */
export interface Dead {
  Incarnation: number;
  Node: string;
  From: string;
}
export interface PushPullHeader {
  Nodes: number;
  UserStateLen: number;
  Join: boolean;
}
export interface PushNodeState {
  Name: string;
  Addr: Uint8Array;
  Port: number;
  Meta: Uint8Array;
  Incarnation: number;
  State: number;
  Vsn: Uint8Array;
}
export interface Compress {
  Algo: number;
  Buf: Uint8Array;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const empty = new Uint8Array(0);

// Go's decoder leaves a missing field at its zero value, so do we; a present field of the wrong type
// is an error (Go's decoder fails too).
function field(r: Record<string, unknown>, name: string): unknown {
  if (name in r) return r[name];
  // go-msgpack matches field names case-insensitively as a fallback.
  const lower = name.toLowerCase();
  for (const k of Object.keys(r)) if (k.toLowerCase() === lower) return r[k];
  return undefined;
}
function uint(r: Record<string, unknown>, name: string, max: number): number {
  const v = field(r, name);
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new MsgpackError(`field ${name}: expected an unsigned integer <= ${max}`);
  }
  return v;
}
function int(r: Record<string, unknown>, name: string): number {
  const v = field(r, name);
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new MsgpackError(`field ${name}: expected an integer`);
  return v;
}
function bool(r: Record<string, unknown>, name: string): boolean {
  const v = field(r, name);
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new MsgpackError(`field ${name}: expected a boolean`);
  return v;
}
function bytes(r: Record<string, unknown>, name: string): Uint8Array {
  const v = field(r, name);
  if (v === undefined || v === null) return empty;
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return new TextEncoder().encode(v);
  // Some encoders write []uint8 as an array of small integers.
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 255)) {
    return Uint8Array.from(v as number[]);
  }
  throw new MsgpackError(`field ${name}: expected bytes`);
}
function str(r: Record<string, unknown>, name: string): string {
  const v = field(r, name);
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return utf8.decode(v);
  throw new MsgpackError(`field ${name}: expected a string`);
}
const U16 = 0xffff;
const U32 = 0xffffffff;

export function decodePing(buf: Uint8Array): Ping {
  const r = decodeRecord(buf);
  return {
    SeqNo: uint(r, 'SeqNo', U32),
    Node: str(r, 'Node'),
    SourceAddr: bytes(r, 'SourceAddr'),
    SourcePort: uint(r, 'SourcePort', U16),
    SourceNode: str(r, 'SourceNode'),
  };
}
export function decodeIndirectPing(buf: Uint8Array): IndirectPingReq {
  const r = decodeRecord(buf);
  return {
    SeqNo: uint(r, 'SeqNo', U32),
    Target: bytes(r, 'Target'),
    Port: uint(r, 'Port', U16),
    Node: str(r, 'Node'),
    Nack: bool(r, 'Nack'),
    SourceAddr: bytes(r, 'SourceAddr'),
    SourcePort: uint(r, 'SourcePort', U16),
    SourceNode: str(r, 'SourceNode'),
  };
}
export function decodeAck(buf: Uint8Array): AckResp {
  const r = decodeRecord(buf);
  return { SeqNo: uint(r, 'SeqNo', U32), Payload: bytes(r, 'Payload') };
}
export function decodeNack(buf: Uint8Array): NackResp {
  return { SeqNo: uint(decodeRecord(buf), 'SeqNo', U32) };
}
export function decodeErr(buf: Uint8Array): ErrResp {
  return { Error: str(decodeRecord(buf), 'Error') };
}
export function decodeSuspect(buf: Uint8Array): Suspect {
  const r = decodeRecord(buf);
  return { Incarnation: uint(r, 'Incarnation', U32), Node: str(r, 'Node'), From: str(r, 'From') };
}
export function decodeDead(buf: Uint8Array): Dead {
  const r = decodeRecord(buf);
  return { Incarnation: uint(r, 'Incarnation', U32), Node: str(r, 'Node'), From: str(r, 'From') };
}
export function decodeAlive(buf: Uint8Array): Alive {
  return aliveFromRecord(decodeRecord(buf));
}
function aliveFromRecord(r: Record<string, unknown>): Alive {
  return {
    Incarnation: uint(r, 'Incarnation', U32),
    Node: str(r, 'Node'),
    Addr: bytes(r, 'Addr'),
    Port: uint(r, 'Port', U16),
    Meta: bytes(r, 'Meta'),
    Vsn: bytes(r, 'Vsn'),
  };
}
export function decodePushPullHeader(buf: Uint8Array): PushPullHeader {
  const r = decodeRecord(buf);
  return { Nodes: int(r, 'Nodes'), UserStateLen: int(r, 'UserStateLen'), Join: bool(r, 'Join') };
}
export function decodePushNodeState(buf: Uint8Array): PushNodeState {
  const r = decodeRecord(buf);
  return {
    Name: str(r, 'Name'),
    Addr: bytes(r, 'Addr'),
    Port: uint(r, 'Port', U16),
    Meta: bytes(r, 'Meta'),
    Incarnation: uint(r, 'Incarnation', U32),
    State: int(r, 'State'),
    Vsn: bytes(r, 'Vsn'),
  };
}
export function decodeCompress(buf: Uint8Array): Compress {
  const r = decodeRecord(buf);
  return { Algo: uint(r, 'Algo', 255), Buf: bytes(r, 'Buf') };
}

// Encoders: Go writes every field, except those tagged `codec:",omitempty"` when zero.
const omitEmptyBytes = (b: Uint8Array | undefined): Uint8Array | undefined => (b && b.length > 0 ? b : undefined);
const omitZero = (n: number | undefined): number | undefined => (n ? n : undefined);
const omitEmptyStr = (s: string | undefined): string | undefined => (s ? s : undefined);

export function encodePing(p: Ping): Buffer {
  return encodeMessage(MessageType.ping, {
    SeqNo: p.SeqNo,
    Node: p.Node,
    SourceAddr: omitEmptyBytes(p.SourceAddr),
    SourcePort: omitZero(p.SourcePort),
    SourceNode: omitEmptyStr(p.SourceNode),
  });
}
export function encodeIndirectPing(p: IndirectPingReq): Buffer {
  return encodeMessage(MessageType.indirectPing, {
    SeqNo: p.SeqNo,
    Target: p.Target,
    Port: p.Port,
    Node: p.Node,
    Nack: p.Nack,
    SourceAddr: omitEmptyBytes(p.SourceAddr),
    SourcePort: omitZero(p.SourcePort),
    SourceNode: omitEmptyStr(p.SourceNode),
  });
}
export const encodeAck = (a: AckResp): Buffer => encodeMessage(MessageType.ackResp, { SeqNo: a.SeqNo, Payload: a.Payload });
export const encodeNack = (n: NackResp): Buffer => encodeMessage(MessageType.nackResp, { SeqNo: n.SeqNo });
export const encodeErr = (e: ErrResp): Buffer => encodeMessage(MessageType.err, { Error: e.Error });
export const encodeSuspect = (s: Suspect): Buffer => encodeMessage(MessageType.suspect, { ...s });
export const encodeDead = (d: Dead): Buffer => encodeMessage(MessageType.dead, { ...d });
export const encodeAlive = (a: Alive): Buffer => encodeMessage(MessageType.alive, { ...a });
export const pushPullHeaderStruct = (h: PushPullHeader): WireStruct => ({ ...h });
export const pushNodeStateStruct = (n: PushNodeState): WireStruct => ({ ...n });
export const encodeCompress = (c: Compress): Buffer => encodeMessage(MessageType.compress, { ...c });
