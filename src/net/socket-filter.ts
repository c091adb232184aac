// A classic BPF filter on a UDP socket that keeps only datagrams whose IP TTL (IPv6 hop limit) is at least some
// value: RFC 5881 §5's TTL 255 check for single-hop BFD, a BFDProfile's minimumTtl for multihop (RFC 5883 §2).
// Node cannot read a datagram's TTL, so the kernel checks it before the datagram is queued.
import { assemble, encode, jge, label, ld, ret } from './bpf.js';
import { loadNative } from './native.js';
import { errnoCode } from './native.js';
import { socketFd } from './tcp-md5.js';

/** linux/filter.h: a load at SKF_NET_OFF + n reads the network header, not the UDP header the socket sees. */
const SKF_NET_OFF = -0x100000;
/** Offset of TTL in the IPv4 header, of Hop Limit in the IPv6 header. */
const TTL_OFFSET = { udp4: 8, udp6: 7 } as const;

/** The program: keep the datagram when TTL >= minimum, drop it otherwise. */
export function minimumTtlProgram(family: 'udp4' | 'udp6', minimum: number): Buffer {
  if (!Number.isInteger(minimum) || minimum < 1 || minimum > 255) throw new Error(`minimum TTL must be 1..255, got ${minimum}`);
  return encode(assemble([
    ld(1, SKF_NET_OFF + TTL_OFFSET[family]),
    jge(minimum, 'keep'),
    ret(0),
    label('keep'),
    ret(0xffffffff),
  ]));
}

/** Why the TTL filter cannot be attached here (no addon, or one built before it), or undefined. */
export function socketFilterUnsupportedReason(): string | undefined {
  try {
    return typeof loadNative().attachFilter === 'function' ? undefined : 'the native addon predates socket filters (no attachFilter): rebuild it with `npm run build:native`';
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Attaches (or replaces) the minimum-TTL filter on a bound dgram socket, and discards the datagrams queued before it
 * (the kernel filters only what arrives after: a packet that came between bind and now, or under a looser filter,
 * would be read unchecked; a BFD peer's next packet follows within its interval). Call it in the same turn as the
 * bind, before Node reads the socket. Returns how many were discarded.
 */
export function attachMinimumTtl(target: object, family: 'udp4' | 'udp6', minimum: number): number {
  const fd = socketFd(target);
  if (fd === undefined) throw new Error('attachMinimumTtl needs a bound socket (no file descriptor yet)');
  const native = loadNative();
  if (typeof native.attachFilter !== 'function') throw new Error(socketFilterUnsupportedReason());
  try {
    return native.attachFilter(fd, minimumTtlProgram(family, minimum), true) ?? 0;
  } catch (err) {
    const e = new Error(`attaching the minimum-TTL filter: ${(err as Error).message}`) as NodeJS.ErrnoException;
    const code = errnoCode(err);
    if (code) e.code = code;
    throw e;
  }
}
