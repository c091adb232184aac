// What this node calls itself towards a peer: the BGP Identifier (MetalLB's derivation) and the next hops of each
// family, from the local end of the TCP connection and the interface that owns it.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { parseIP, parsePrefix, prefixContains } from '../../net/ip.js';

export type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** The interface holding `address`, and its addresses. */
export function interfaceOf(address: string, table: InterfaceTable = networkInterfaces()): { name: string; addresses: NetworkInterfaceInfo[] } | undefined {
  const want = parseIP(address);
  if (!want) return undefined;
  for (const [name, addresses] of Object.entries(table)) {
    if (!addresses) continue;
    for (const a of addresses) {
      const ip = parseIP(a.address);
      if (ip && ip.family === want.family && ip.value === want.value) return { name, addresses };
    }
  }
  return undefined;
}

const isLinkLocal6 = (a: string): boolean => /^fe[89ab][0-9a-f]:/i.test(a);

// CRC-32 (IEEE), as Go's crc32.ChecksumIEEE; zlib.crc32 only exists from Node 20.15.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * MetalLB's router ID: the configured one; else the local IPv4 address of the session; else the first IPv4 address
 * on the interface owning the local IPv6 address; else CRC-32 of the node name, its bytes little-endian.
 */
export function deriveRouterId(opts: { configured?: string; localAddress: string; nodeName: string; table?: InterfaceTable }): string {
  if (opts.configured) return opts.configured;
  const local = parseIP(opts.localAddress);
  if (local?.family === 'IPv4') return opts.localAddress;
  const owner = interfaceOf(opts.localAddress, opts.table);
  const v4 = owner?.addresses.find((a) => a.family === 'IPv4');
  if (v4) return v4.address;
  const c = crc32(Buffer.from(opts.nodeName, 'utf8'));
  return `${c & 0xff}.${(c >>> 8) & 0xff}.${(c >>> 16) & 0xff}.${c >>> 24}`;
}

export interface NextHops {
  v4?: string;
  v6?: { global: string; linkLocal?: string };
}

/**
 * Next hops for each family on a session from `localAddress` to `peerAddress`: the local address for its own
 * family, an address of the same interface for the other. The IPv6 link-local address goes along when the peer
 * is on the same link (RFC 2545 §3), which we take to mean: inside the subnet of one of the interface's addresses.
 */
export function deriveNextHops(localAddress: string, peerAddress: string, table: InterfaceTable = networkInterfaces()): NextHops {
  const local = parseIP(localAddress);
  const peer = parseIP(peerAddress);
  if (!local || !peer) return {};
  const owner = interfaceOf(localAddress, table);
  const addrs = owner?.addresses ?? [];
  const onLink = addrs.some((a) => {
    const p = a.cidr ? parsePrefix(a.cidr) : undefined;
    return p !== undefined && prefixContains(p, peer);
  });
  const out: NextHops = {};
  const v4 = local.family === 'IPv4' ? localAddress : addrs.find((a) => a.family === 'IPv4')?.address;
  if (v4) out.v4 = v4;
  const global = local.family === 'IPv6' && !isLinkLocal6(localAddress)
    ? localAddress
    : addrs.find((a) => a.family === 'IPv6' && !isLinkLocal6(a.address))?.address;
  if (global) {
    const ll = addrs.find((a) => a.family === 'IPv6' && isLinkLocal6(a.address))?.address;
    out.v6 = onLink && ll ? { global, linkLocal: ll } : { global };
  }
  return out;
}

/** The peer is inside the subnet of one of our addresses (directly connected: single-hop BFD, link-local next hop). */
export function peerOnLink(peerAddress: string, table: InterfaceTable = networkInterfaces()): boolean {
  const peer = parseIP(peerAddress);
  if (!peer) return false;
  for (const addresses of Object.values(table)) {
    for (const a of addresses ?? []) {
      if (a.internal) continue;
      const p = a.cidr ? parsePrefix(a.cidr) : undefined;
      if (p && prefixContains(p, peer)) return true;
    }
  }
  return false;
}
