// The BGP protocol handler end to end on loopback: config → sessions, Services → UPDATEs at a scripted peer,
// withdrawals, ServiceBGPStatus peers, and sessions following this node's labels.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Config } from '../../../src/config/index.js';
import type { Node, Service } from '../../../src/k8s/types.js';
import pino from 'pino';
import { parseIP } from '../../../src/net/ip.js';
import { BgpHandler } from '../../../src/speaker/bgp/handler.js';
import type { Message, UpdateMessage } from '../../../src/speaker/bgp/messages.js';
import { registerBgpMetrics } from '../../../src/speaker/bgp/metrics.js';
import { BgpSpeaker } from '../../../src/speaker/bgp/speaker.js';
import { Registry } from 'prom-client';
import type { ServiceAnnouncement } from '../../../src/speaker/protocol.js';
import { bgpAd, node, peer, pool, valid } from '../../config/helpers.js';
import { FakePeer, type FakeConnection } from '../../helpers/fake-bgp-peer.js';

const log = pino({ level: 'silent' });
const isUpdate = (m: Message): m is UpdateMessage => m.type === 'update';

function announcement(cfg: Config, name: string, ip: string, nodes: Map<string, Node>): ServiceAnnouncement {
  const service = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', labels: { app: name } }, spec: { type: 'LoadBalancer' } } as Service;
  return {
    key: `default/${name}`, service, ips: [ip], parsed: [parseIP(ip)!], pool: cfg.pools[0]!, config: cfg,
    endpoints: [{ nodeName: 'node1', canServe: true, hasAddresses: true }], nodes,
  };
}

describe('BgpHandler', () => {
  let fake: FakePeer;
  let speaker: BgpSpeaker;
  before(async () => {
    fake = await FakePeer.listen('127.0.0.1', 'lowPort');
  });
  after(async () => {
    await speaker?.close();
    await fake.close();
  });

  it('sessions from the config, Services as routes, withdrawals, status, and node labels deciding the sessions', async () => {
    const node1 = node('node1', { bgp: 'yes' });
    const nodes = new Map([['node1', node1]]);
    const cfg = valid([
      pool('pool', { addresses: ['10.96.0.0/24'] }),
      peer('tor', { myASN: 64512, peerASN: 64500, peerAddress: '127.0.0.1', peerPort: fake.port, nodeSelectors: [{ matchLabels: { bgp: 'yes' } }] }),
      bgpAd('ad', { ipAddressPools: ['pool'], communities: ['65000:7'], localPref: 50 }),
    ], { nodes: [node1] });
    speaker = new BgpSpeaker({ nodeName: 'node1', logger: log });
    const changed: string[] = [];
    const h = new BgpHandler({ myNode: 'node1', speaker, ignoreExcludeLB: false, log, onStatusChange: (k) => changed.push(k) });
    h.setNode(node1);
    h.setConfig(cfg);
    const c: FakeConnection = await fake.accept();
    await c.handshake();

    const a = announcement(cfg, 'a', '10.96.0.5', nodes);
    const b = announcement(cfg, 'b', '10.96.0.6', nodes);
    assert.deepEqual(h.shouldAnnounce(a), { announce: true });
    assert.deepEqual(h.setBalancer(a), { announced: ['10.96.0.5'] });
    h.setBalancer(b);
    const u = await c.next<UpdateMessage>((m) => isUpdate(m) && m.nlri.length > 0);
    assert.deepEqual(u.nlri.slice().sort(), ['10.96.0.5/32', '10.96.0.6/32'], 'both Services in one UPDATE');
    assert.deepEqual(u.pathAttributes.find((x) => x.kind === 'communities'), { kind: 'communities', flags: 0xc0, communities: [(65000 << 16 | 7) >>> 0] });
    assert.equal(u.pathAttributes.some((x) => x.kind === 'local-pref'), false, 'eBGP: no LOCAL_PREF');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(h.peersFor('default/a'), ['tor']);
    assert.deepEqual(changed.sort(), ['default/a', 'default/b']);

    h.deleteBalancer('default/a');
    const w = await c.next<UpdateMessage>((m) => isUpdate(m) && m.withdrawnRoutes.length > 0);
    assert.deepEqual(w.withdrawnRoutes, ['10.96.0.5/32']);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(h.peersFor('default/a'), []);

    // MetalLB's metric names, peer label `addr:port`.
    const registry = new Registry();
    registerBgpMetrics(registry, speaker);
    const text = await registry.metrics();
    const peerLabel = `peer="127.0.0.1:${fake.port}"`;
    assert.match(text, new RegExp(`metallb_bgp_session_up\\{${peerLabel}\\} 1`));
    assert.match(text, new RegExp(`metallb_bgp_announced_prefixes_total\\{${peerLabel}\\} 1`));
    assert.match(text, new RegExp(`metallb_bgp_pending_prefixes_total\\{${peerLabel}\\} 0`));
    assert.match(text, new RegExp(`metallb_bgp_updates_total\\{${peerLabel}\\} [1-9]`));
    assert.match(text, /# TYPE metallb_bgp_updates_total counter/);

    // The node loses the label the BGPPeer selects: its session is closed (Cease / Peer De-configured).
    h.setNode(node('node1', {}));
    const n = await c.notification();
    assert.deepEqual([n.errorCode, n.errorSubcode], [6, 3]);
    assert.deepEqual(speaker.status(), []);
  });
});
