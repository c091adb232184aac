// The per-node peer rules of MetalLB's FRR modes that the native speaker needs (src/config/peer-rules.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { invalid, node, peer, valid } from './helpers.js';

const NODES = [node('n1', { rack: 'a' }), node('n2', { rack: 'b' })];
const base = { myASN: 64512, peerASN: 64500 };

describe('BGPPeers on one node', () => {
  it('two peers to the same address and port from a shared node are refused, naming the node', () => {
    invalid([peer('a', { ...base, peerAddress: '10.0.0.1' }), peer('b', { ...base, peerAddress: '10.0.0.1' })],
      { object: 'BGPPeer metallb-system/b', field: 'spec.peerAddress', message: ['"a" already connects to 10.0.0.1 port 179', 'every node'] }, { nodes: NODES });
    invalid([
      peer('a', { ...base, peerAddress: 'fd00:0::1', nodeSelectors: [{ matchLabels: { rack: 'a' } }] }),
      peer('b', { ...base, peerAddress: 'fd00::1' }),
    ], { field: 'spec.peerAddress', message: 'from node n1' }, { nodes: NODES });
    invalid([peer('a', { ...base, interface: 'eth1' }), peer('b', { ...base, interface: 'eth1' })], { field: 'spec.interface' }, { nodes: NODES });
  });

  it('different nodes, ports or VRFs are fine', () => {
    valid([
      peer('a', { ...base, peerAddress: '10.0.0.1', nodeSelectors: [{ matchLabels: { rack: 'a' } }] }),
      peer('b', { ...base, peerAddress: '10.0.0.1', nodeSelectors: [{ matchLabels: { rack: 'b' } }] }),
      peer('c', { ...base, peerAddress: '10.0.0.1', peerPort: 1179 }),
      peer('d', { ...base, peerAddress: '10.0.0.1', vrf: 'red' }),
    ], { nodes: NODES });
  });

  it('what FRR modes refuse and the native speaker does: different router IDs and local ASNs on one node', () => {
    const cfg = valid([
      peer('a', { myASN: 64512, peerASN: 64500, peerAddress: '10.0.0.1', routerID: '10.0.0.11' }),
      peer('b', { myASN: 4200000001, peerASN: 64501, peerAddress: '10.0.0.2', routerID: '10.9.9.9' }),
    ], { nodes: NODES });
    assert.equal(cfg.peers.length, 2);
  });
});
