// MetalLB's BGP advertisement policy (reference e.1): which node announces which Service, with which prefixes,
// local preference and communities, to which peer; configs built from real CRDs through the config parser.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../../../src/config/index.js';
import type { Node } from '../../../src/k8s/types.js';
import { parseIP, type IP } from '../../../src/net/ip.js';
import type { ServiceEndpoint } from '../../../src/speaker/endpoints.js';
import {
  clusterAdvertisements, peerFamilies, peersForNode, serviceAdvertisements, sessionConfig, shouldAnnounceBGP, toAdvertisement,
  type BgpAnnounceInput,
} from '../../../src/speaker/bgp/policy.js';
import { bfd, bgpAd, community, node, peer, pool, valid } from '../../config/helpers.js';

const ip = (t: string): IP => parseIP(t)!;
const NODES: Node[] = [node('node1', { zone: 'a', rack: '1' }), node('node2', { zone: 'b', rack: '1' }), node('node3', { zone: 'b', rack: '2' })];
const nodeMap = (list: Node[] = NODES): Map<string, Node> => new Map(list.map((n) => [n.metadata!.name!, n]));
const ready = (nodeName: string, extra: Partial<ServiceEndpoint> = {}): ServiceEndpoint => ({ nodeName, canServe: true, hasAddresses: true, ...extra });

const basePeers = [
  peer('tor-a', { myASN: 64512, peerASN: 64500, peerAddress: '10.0.0.1' }),
  peer('tor-b', { myASN: 64512, peerASN: 64500, peerAddress: '10.0.0.2', nodeSelectors: [{ matchLabels: { zone: 'b' } }] }),
  peer('tor-6', { myASN: 64512, peerASN: 64500, peerAddress: 'fd00::1' }),
];

function config(extra: Parameters<typeof valid>[0] = [], nodes = NODES): Config {
  return valid([
    pool('pool', { addresses: ['10.96.0.0/24', 'fd00:96::/120'] }),
    ...basePeers,
    ...extra,
  ], { nodes });
}

function input(cfg: Config, over: Partial<BgpAnnounceInput> = {}): BgpAnnounceInput {
  return {
    pool: cfg.pools[0]!, config: cfg, ips: [ip('10.96.0.5')], serviceLabels: { app: 'web' }, localTrafficPolicy: false,
    endpoints: [ready('node1')], nodes: nodeMap(), ignoreExcludeLB: false, ...over,
  };
}

const reason = (d: ReturnType<typeof shouldAnnounceBGP>): string => (d.announce ? 'announce' : d.reason);

describe('which node announces (ShouldAnnounce)', () => {
  it('every node with an advertisement announces a Service with a serving endpoint anywhere (Cluster policy)', () => {
    const cfg = config([bgpAd('all', { ipAddressPools: ['pool'] })]);
    for (const n of ['node1', 'node2', 'node3']) assert.equal(reason(shouldAnnounceBGP(n, input(cfg))), 'announce', n);
  });

  it('notOwner when no advertisement of the pool selects the node (or the pool has none)', () => {
    assert.equal(reason(shouldAnnounceBGP('node1', input(config()))), 'notOwner');
    const cfg = config([bgpAd('zone-b', { ipAddressPools: ['pool'], nodeSelectors: [{ matchLabels: { zone: 'b' } }] })]);
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg))), 'notOwner');
    assert.equal(reason(shouldAnnounceBGP('node2', input(cfg))), 'announce');
  });

  it("node labels are read from the Node as it is now, not as it was when the config was parsed", () => {
    const cfg = config([bgpAd('zone-b', { ipAddressPools: ['pool'], nodeSelectors: [{ matchLabels: { zone: 'b' } }] })]);
    const moved = nodeMap([node('node1', { zone: 'b' }), ...NODES.slice(1)]);
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg, { nodes: moved }))), 'announce');
  });

  it('noMatchingAdvertisement when the serviceSelectors exclude the Service', () => {
    const cfg = config([bgpAd('db', { ipAddressPools: ['pool'], serviceSelectors: [{ matchLabels: { app: 'db' } }] })]);
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg))), 'noMatchingAdvertisement');
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg, { serviceLabels: { app: 'db' } }))), 'announce');
  });

  it('conflictingAdvertisements: two selected advertisements would send one prefix to one peer with different LOCAL_PREF', () => {
    const a = { ipAddressPools: ['pool'], serviceSelectors: [{ matchLabels: { app: 'web' } }] };
    const cfg = config([bgpAd('a', { ...a, localPref: 100 }), bgpAd('b', { ...a, localPref: 200 })]);
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg))), 'conflictingAdvertisements');
    // Same local preference, or disjoint peers: no conflict. (serviceSelectors exclude aggregation lengths.)
    assert.equal(reason(shouldAnnounceBGP('node1', input(config([bgpAd('a', { ...a, localPref: 100 }), bgpAd('b', { ...a, localPref: 100 })])))), 'announce');
    assert.equal(reason(shouldAnnounceBGP('node1', input(config([bgpAd('a', { ...a, localPref: 100, peers: ['tor-a'] }), bgpAd('b', { ...a, localPref: 200, peers: ['tor-b'] })])))), 'announce');
  });

  it('nodeNetworkUnavailable and nodeLabeledExcludeBalancers (unless --ignore-exclude-lb)', () => {
    const cfg = config([bgpAd('all', { ipAddressPools: ['pool'] })]);
    const down: Node = { ...node('node1'), status: { conditions: [{ type: 'NetworkUnavailable', status: 'True' }] } } as Node;
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg, { nodes: nodeMap([down, ...NODES.slice(1)]) }))), 'nodeNetworkUnavailable');
    const excluded = node('node1', { 'node.kubernetes.io/exclude-from-external-load-balancers': '' });
    const nodes = nodeMap([excluded, ...NODES.slice(1)]);
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg, { nodes }))), 'nodeLabeledExcludeBalancers');
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg, { nodes, ignoreExcludeLB: true }))), 'announce');
  });

  it('externalTrafficPolicy Local: only nodes with a serving endpoint that has addresses (noLocalEndpoints)', () => {
    const cfg = config([bgpAd('all', { ipAddressPools: ['pool'] })]);
    const eps = [ready('node1'), ready('node2', { hasAddresses: false }), ready('node3', { canServe: false })];
    const local = (n: string): string => reason(shouldAnnounceBGP(n, input(cfg, { localTrafficPolicy: true, endpoints: eps })));
    assert.deepEqual(['node1', 'node2', 'node3'].map(local), ['announce', 'noLocalEndpoints', 'noLocalEndpoints']);
  });

  it('noEndpoints when nothing can serve (terminating-but-serving endpoints count)', () => {
    const cfg = config([bgpAd('all', { ipAddressPools: ['pool'] })]);
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg, { endpoints: [] }))), 'noEndpoints');
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg, { endpoints: [ready('node2', { canServe: false })] }))), 'noEndpoints');
    assert.equal(reason(shouldAnnounceBGP('node1', input(cfg, { endpoints: [ready('node2', { hasAddresses: false })] }))), 'noEndpoints');
  });
});

describe('what is advertised (SetBalancer, adsForPeer)', () => {
  const peersOf = (cfg: Config, n: string): { name: string; families: ('IPv4' | 'IPv6')[] }[] =>
    peersForNode(cfg, n, nodeMap()).map((p) => ({ name: p.name, families: peerFamilies(p) }));

  it('BGPPeer nodeSelectors decide which sessions a node has', () => {
    const cfg = config();
    assert.deepEqual(peersForNode(cfg, 'node1', nodeMap()).map((p) => p.name), ['tor-a', 'tor-6']);
    assert.deepEqual(peersForNode(cfg, 'node2', nodeMap()).map((p) => p.name), ['tor-a', 'tor-b', 'tor-6']);
  });

  it('each address × advertisement: the prefix at the aggregation length, to the peers of its family', () => {
    const cfg = config([bgpAd('host', { ipAddressPools: ['pool'] }), bgpAd('agg', { ipAddressPools: ['pool'], aggregationLength: 24, aggregationLengthV6: 120 })]);
    const d = shouldAnnounceBGP('node2', input(cfg, { ips: [ip('10.96.0.5'), ip('fd00:96::5')] }));
    assert.ok(d.announce);
    const ads = serviceAdvertisements([ip('10.96.0.5'), ip('fd00:96::5')], d.ads, peersOf(cfg, 'node2'));
    const by = (peer: string): string[] => ads.filter((a) => a.peer === peer).map((a) => a.prefix).sort();
    assert.deepEqual(by('tor-a'), ['10.96.0.0/24', '10.96.0.5/32']);
    assert.deepEqual(by('tor-b'), ['10.96.0.0/24', '10.96.0.5/32']);
    assert.deepEqual(by('tor-6'), ['fd00:96::/120', 'fd00:96::5/128']);
  });

  it('an advertisement naming peers reaches only those (among the node\'s sessions)', () => {
    const cfg = config([bgpAd('only-b', { ipAddressPools: ['pool'], peers: ['tor-b'] })]);
    const d = shouldAnnounceBGP('node1', input(cfg));
    assert.ok(d.announce);
    assert.deepEqual(serviceAdvertisements([ip('10.96.0.5')], d.ads, peersOf(cfg, 'node1')), [], 'node1 has no tor-b session');
    assert.deepEqual(serviceAdvertisements([ip('10.96.0.5')], d.ads, peersOf(cfg, 'node2')).map((a) => a.peer), ['tor-b']);
  });

  it('dualStackAddressFamily carries both families over one session', () => {
    const cfg = valid([
      pool('pool', { addresses: ['10.96.0.0/24', 'fd00:96::/120'] }),
      peer('ds', { myASN: 64512, peerASN: 64500, peerAddress: '10.0.0.1', dualStackAddressFamily: true }),
      bgpAd('all', { ipAddressPools: ['pool'] }),
    ], { nodes: NODES });
    const peers = peersOf(cfg, 'node1');
    assert.deepEqual(peers, [{ name: 'ds', families: ['IPv4', 'IPv6'] }]);
    assert.deepEqual(serviceAdvertisements([ip('10.96.0.5'), ip('fd00:96::5')], cfg.bgpAdvertisements, peers).map((a) => a.prefix), ['10.96.0.5/32', 'fd00:96::5/128']);
  });

  it('local preference and communities (literal, large, aliases) in MetalLB\'s order; the session form splits large ones', () => {
    const cfg = config([
      community('aliases', [{ name: 'no-export', value: '65535:65281' }, { name: 'big', value: 'large:64512:1:2' }]),
      bgpAd('c', { ipAddressPools: ['pool'], localPref: 250, communities: ['65000:300', 'no-export', 'big', '65000:100', 'large:1:2:3'] }),
    ]);
    const [a] = serviceAdvertisements([ip('10.96.0.5')], cfg.bgpAdvertisements, [{ name: 'tor-a', families: ['IPv4'] }]);
    assert.deepEqual(a, { peer: 'tor-a', prefix: '10.96.0.5/32', localPref: 250, communities: ['large:1:2:3', 'large:64512:1:2', '65000:100', '65000:300', '65535:65281'] });
    assert.deepEqual(toAdvertisement(a!), {
      prefix: '10.96.0.5/32', localPref: 250, communities: ['65000:100', '65000:300', '65535:65281'], largeCommunities: ['1:2:3', '64512:1:2'],
    });
    assert.deepEqual(toAdvertisement({ prefix: '10.96.0.5/32', localPref: 0, communities: [] }), { prefix: '10.96.0.5/32' }, 'localPref 0 = unset');
  });
});

describe('session configuration from a BGPPeer', () => {
  it('maps every field the session uses; the BFD profile travels with it', () => {
    const cfg = valid([
      bfd('fast', { receiveInterval: 100, transmitInterval: 150, detectMultiplier: 5 }),
      peer('p', {
        myASN: 64512, peerASN: 64500, peerAddress: 'fd00::1', peerPort: 1179, sourceAddress: 'fd00::11', holdTime: '30s', keepaliveTime: '10s',
        connectTime: '5s', routerID: '10.0.0.11', password: 'pw', bfdProfile: 'fast', enableGracefulRestart: true, ebgpMultiHop: true, localASN: 65001,
      }),
    ], { nodes: NODES });
    assert.deepEqual(sessionConfig(cfg.peers[0]!, cfg.bfdProfiles), {
      name: 'p', peerAddress: 'fd00::1', peerPort: 1179, myASN: 64512, peerASN: 64500, localASN: 65001, sourceAddress: 'fd00::11',
      holdTime: 30, keepaliveTime: 10, connectTime: 5, routerID: '10.0.0.11', password: 'pw', ebgpMultiHop: true, gracefulRestart: true,
      families: ['IPv6'],
      bfd: { receiveInterval: 100, transmitInterval: 150, detectMultiplier: 5, echoMode: false, passiveMode: false, minimumTtl: 254 },
    });
  });
});

describe('dry-run: every node\'s routes for a Service', () => {
  it('lists node, peer, prefix, local preference and communities for each announcing node', () => {
    const cfg = config([bgpAd('all', { ipAddressPools: ['pool'], localPref: 120, communities: ['65000:1'] })]);
    const rows = clusterAdvertisements({ ...input(cfg), config: cfg, localTrafficPolicy: true, endpoints: [ready('node2')] });
    assert.deepEqual(rows, [
      { node: 'node2', peer: 'tor-a', prefix: '10.96.0.5/32', localPref: 120, communities: ['65000:1'] },
      { node: 'node2', peer: 'tor-b', prefix: '10.96.0.5/32', localPref: 120, communities: ['65000:1'] },
    ]);
  });
});
