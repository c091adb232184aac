// The Internet checksum (RFC 1071) as ICMPv6 uses it: over an IPv6 pseudo-header and the message (RFC 4443 §2.3,
// pseudo-header per RFC 8200 §8.1).
import { IpProtocol } from './messages.js';

/** 32-bit running sum of big-endian 16-bit words of bytes [start, end); an odd last byte is padded with zero. */
export function sumWords(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Sum of the RFC 8200 §8.1 pseudo-header for an ICMPv6 message of `length` bytes. */
function pseudoHeaderSum(source: Uint8Array, sourceOffset: number, destination: Uint8Array, destinationOffset: number, length: number): number {
  let sum = sumWords(source, sourceOffset, sourceOffset + 16);
  sum = sumWords(destination, destinationOffset, destinationOffset + 16, sum);
  sum += Math.floor(length / 0x10000) + (length & 0xffff);
  return sum + IpProtocol.ICMPv6;
}

/**
 * The checksum to put in the ICMPv6 message at [offset, offset + length); its checksum field (bytes 2-3) is
 * skipped, whatever it holds. Addresses are 16-byte IPv6 addresses at the given offsets.
 */
export function icmpv6Checksum(
  message: Uint8Array,
  offset: number,
  length: number,
  source: Uint8Array,
  destination: Uint8Array,
  sourceOffset = 0,
  destinationOffset = 0,
): number {
  let sum = sumWords(message, offset, offset + 2, pseudoHeaderSum(source, sourceOffset, destination, destinationOffset, length));
  return checksumOfSum(sumWords(message, offset + 4, offset + length, sum));
}

/** The checksum for a running sum (sumWords) of the pseudo-header and the message, checksum field left out. */
export function checksumOfSum(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** True when the message, checksum field included, sums to all ones with its pseudo-header. */
export function icmpv6ChecksumValid(
  message: Uint8Array,
  offset: number,
  length: number,
  source: Uint8Array,
  destination: Uint8Array,
  sourceOffset = 0,
  destinationOffset = 0,
): boolean {
  return fold(sumWords(message, offset, offset + length, pseudoHeaderSum(source, sourceOffset, destination, destinationOffset, length))) === 0xffff;
}
