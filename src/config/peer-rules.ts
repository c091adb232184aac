// The rules MetalLB's FRR modes apply to the set of BGPPeers one node runs (checkFRRPeersCompatible), kept only
// where our native speaker cannot do what they forbid. Peers sharing a node may have different router IDs and
// different local ASNs with us (every session has its own), so those two FRR rules are not applied; two peers that
// would open the same connection from one node (same address, or interface, and port, in one VRF) are refused, as
// the router would see one peer twice.
import { formatIP, parseIP } from '../net/ip.js';
import type { ParsedPeer } from './peers.js';

/** The nodes two peers share: undefined sets mean every node. */
function shareANode(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): string | undefined {
  if (!a && !b) return 'every node';
  if (!a) return b!.size > 0 ? [...b!].sort()[0] : undefined;
  if (!b) return a.size > 0 ? [...a].sort()[0] : undefined;
  return [...a].sort().find((n) => b.has(n));
}

function endpointOf(p: ParsedPeer['peer']): string | undefined {
  const target = p.peerAddress ? formatIP(parseIP(p.peerAddress) ?? { family: 'IPv4', value: 0n }) : p.interface ? `interface ${p.interface}` : undefined;
  return target === undefined ? undefined : `${target} port ${p.peerPort} vrf ${JSON.stringify(p.vrf ?? '')}`;
}

export function checkPeersPerNode(peers: readonly ParsedPeer[]): void {
  const seen: { parsed: ParsedPeer; endpoint: string }[] = [];
  for (const parsed of peers) {
    const endpoint = endpointOf(parsed.peer);
    if (endpoint === undefined) continue;
    for (const other of seen) {
      if (other.endpoint !== endpoint) continue;
      const node = shareANode(other.parsed.peer.nodes, parsed.peer.nodes);
      if (node === undefined) continue;
      const where = parsed.peer.peerAddress ? 'spec.peerAddress' : 'spec.interface';
      parsed.env.report(where, `BGPPeer ${JSON.stringify(other.parsed.peer.name)} already connects to ${endpoint} from ${node === 'every node' ? 'every node' : `node ${node}`}: ` +
        'one node can have one session to a peer (select different nodes with nodeSelectors)');
    }
    seen.push({ parsed, endpoint });
  }
}
