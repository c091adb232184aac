// A minimal MRT TABLE_DUMP_V2 writer (RFC 6396 §4.3): the one bulk route source `gobgp mrt inject` reads, so a
// GoBGP instance can originate 100,000 routes in one call instead of 100,000 CLI calls.
import { AttrFlag, AttrType } from '../../speaker/bgp/messages.js';
import { addressBytes, encodePrefix } from '../../speaker/bgp/nlri.js';
import { Writer } from '../../speaker/bgp/writer.js';

const TABLE_DUMP_V2 = 13;
const PEER_INDEX_TABLE = 1;
const RIB_IPV4_UNICAST = 2;
const RIB_IPV6_UNICAST = 4;

function record(w: Writer, subtype: number, body: Buffer, timestamp: number): void {
  w.u32(timestamp).u16(TABLE_DUMP_V2).u16(subtype).u32(body.length).bytes(body);
}

/** One RIB entry per prefix, all from one peer with ORIGIN IGP, an empty AS_PATH and `nextHop`. */
export function mrtTableDump(prefixes: readonly string[], opts: { peerAddress: string; peerAsn: number; routerId: string; nextHopV4?: string; nextHopV6?: string }): Buffer {
  const now = Math.floor(Date.now() / 1000);
  const out = new Writer(64 + prefixes.length * 40);
  const v6Peer = opts.peerAddress.includes(':');
  const peers = new Writer();
  peers.bytes(addressBytes(opts.routerId)).u16(0).u16(1); // collector BGP ID, empty view name, one peer
  peers.u8((v6Peer ? 1 : 0) | 2).bytes(addressBytes(opts.routerId)).bytes(addressBytes(opts.peerAddress)).u32(opts.peerAsn);
  record(out, PEER_INDEX_TABLE, peers.result(), now);
  const origin = Buffer.from([AttrFlag.TRANSITIVE, AttrType.ORIGIN, 1, 0]);
  const asPath = Buffer.from([AttrFlag.TRANSITIVE, AttrType.AS_PATH, 0]);
  const attrsV4 = Buffer.concat([origin, asPath, Buffer.from([AttrFlag.TRANSITIVE, AttrType.NEXT_HOP, 4]), addressBytes(opts.nextHopV4 ?? '0.0.0.0')]);
  // RFC 6396 §4.3.4: in RIB entries MP_REACH_NLRI keeps only the next hop length and next hop.
  const nh6 = addressBytes(opts.nextHopV6 ?? '::');
  const attrsV6 = Buffer.concat([origin, asPath, Buffer.from([AttrFlag.OPTIONAL, AttrType.MP_REACH_NLRI, 1 + nh6.length, nh6.length]), nh6]);
  prefixes.forEach((text, seq) => {
    const p = encodePrefix(text);
    if (!p) throw new Error(`not a prefix: ${JSON.stringify(text)}`);
    const attrs = p.family === 'IPv4' ? attrsV4 : attrsV6;
    const body = new Writer(32 + attrs.length);
    body.u32(seq).bytes(Buffer.from(p.wire, 'latin1')).u16(1);
    body.u16(0).u32(now).u16(attrs.length).bytes(attrs);
    record(out, p.family === 'IPv4' ? RIB_IPV4_UNICAST : RIB_IPV6_UNICAST, body.result(), now);
  });
  return out.result();
}
