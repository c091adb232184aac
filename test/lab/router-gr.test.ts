// Reading graceful restart state back from the routers: BIRD's `show protocols all`, FRR's `show bgp neighbors
// json` and GoBGP's `gobgp neighbor ADDR [-j]`, excerpts of outputs captured during
// test/speaker/bgp/graceful-restart.test.ts (BIRD 2.0.12, FRR 8.4, GoBGP 3.10); the FRR config refusing a key it cannot
// express; GoBGP's helper config.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBirdGracefulRestart } from '../../src/lab/routers/bird.js';
import { frrBgpdConfig, parseFrrGracefulRestart } from '../../src/lab/routers/frr.js';
import { gobgpConfig, parseGobgpGracefulRestart, parseGobgpRib } from '../../src/lab/routers/gobgp.js';

const BIRD_AWAY = `peer_node1 BGP        ---        start  00:14:51.341  Passive       Socket: Connection closed
  BGP state:          Passive
    Neighbor address: 10.95.112.11
    Neighbor AS:      64512
    Local AS:         64500
    Neighbor graceful restart active
    Restart timer:    116.991/-
    Last error:       Socket: Connection closed
  Channel ipv4
    State:          START
    Neighbor GR:    Regular
`;

const BIRD_BACK = `peer_node1 BGP        ---        up     00:14:58.170  Established
  BGP state:          Established
    Neighbor address: 10.95.112.11
    Local capabilities
      Multiprotocol
        AF announced: ipv4 ipv6
      Graceful restart
      4-octet AS numbers
    Neighbor capabilities
      Multiprotocol
        AF announced: ipv4 ipv6
      Route refresh
      Graceful restart
        Restart time: 120
        Restart recovery
        AF supported: ipv4 ipv6
        AF preserved: ipv4 ipv6
      4-octet AS numbers
      Enhanced refresh
    Session:          external AS4
  Channel ipv4
    State:          UP
`;

test('BIRD: graceful restart active while the neighbor is away; R and F bits of its new OPEN', () => {
  assert.deepEqual(parseBirdGracefulRestart(BIRD_AWAY), { active: true, peerRestarted: false, peerForwarding: [] });
  assert.deepEqual(parseBirdGracefulRestart(BIRD_BACK), { active: false, peerRestarted: true, peerForwarding: ['ipv4', 'ipv6'] });
  assert.equal(parseBirdGracefulRestart(BIRD_BACK.replace('        Restart recovery\n', '')).peerRestarted, false);
});

test('FRR: active while the restart timer runs or a family has no End-of-RIB yet; not after (the stale-path timer stays shown)', () => {
  const family = (eor: boolean) => ({ fBit: true, endOfRibStatus: { endOfRibSend: true, endOfRibSentAfterUpdate: true, endOfRibRecv: eor } });
  const away = { '10.0.0.11': { gracefulRestartInfo: { gracefulRestartTimerMsecs: 116000, rBit: false, nBit: false } } };
  assert.deepEqual(parseFrrGracefulRestart(away, '10.0.0.11'), { active: true, peerRestarted: false, peerForwarding: [] });
  const waiting = { '10.0.0.11': { gracefulRestartInfo: { gracefulStalepathTimerMsecs: 351000, rBit: true, ipv4Unicast: family(true), ipv6Unicast: family(false) } } };
  assert.deepEqual(parseFrrGracefulRestart(waiting, '10.0.0.11'), { active: true, peerRestarted: true, peerForwarding: ['ipv4', 'ipv6'] });
  const done = { '10.0.0.11': { gracefulRestartInfo: { gracefulStalepathTimerMsecs: 351000, rBit: true, ipv4Unicast: family(true), ipv6Unicast: family(true) } } };
  assert.equal(parseFrrGracefulRestart(done, '10.0.0.11').active, false);
  assert.deepEqual(parseFrrGracefulRestart(null, '10.0.0.11'), { active: false, peerRestarted: false, peerForwarding: [] });
});

test('FRR config: a password with white space is refused by name (bgpd would drop the line and run keyless)', () => {
  const spec = (password: string) => ({ asn: 64500, routerId: '10.0.0.1', neighbors: [{ name: 'node1', address: '10.0.0.11', asn: 64512, password }] });
  assert.match(frrBgpdConfig(spec('one-word')), /neighbor 10\.0\.0\.11 password one-word/);
  assert.throws(() => frrBgpdConfig(spec('two words')), /neighbor node1: it contains white space/);
});

// `gobgp neighbor ADDR` (3.10; the tabs are its own).
const GOBGP_TEXT = `BGP neighbor is 10.95.181.11, remote AS 64512
  BGP state = ESTABLISHED, up for 00:00:02
  Neighbor capabilities:
    route-refresh:\tadvertised and received
    graceful-restart:\tadvertised and received
        Remote: restart time 120 sec, restart flag set, notification flag set
\t    ipv4-unicast, forward flag set
\t    ipv6-unicast, forward flag set
    4-octet-as:\tadvertised and received
`;
const gobgpFamilies = (eor: boolean | undefined) => ({
  afi_safis: [1, 2].map((afi) => ({
    mp_graceful_restart: { config: { enabled: true }, state: { enabled: true, received: true, ...(eor === undefined ? {} : { end_of_rib_received: eor }) } },
    config: { family: { afi, safi: 1 }, enabled: true },
  })),
});

test('GoBGP: active while a family has no End-of-RIB since the neighbor went; R and F bits from the text', () => {
  assert.deepEqual(parseGobgpGracefulRestart(gobgpFamilies(undefined), GOBGP_TEXT), { active: true, peerRestarted: true, peerForwarding: ['ipv4', 'ipv6'] });
  assert.equal(parseGobgpGracefulRestart(gobgpFamilies(true), GOBGP_TEXT).active, false);
  const noR = GOBGP_TEXT.replace('restart flag set, ', '').replaceAll('forward flag set', 'forward flag unset');
  assert.deepEqual(parseGobgpGracefulRestart(gobgpFamilies(true), noR), { active: false, peerRestarted: false, peerForwarding: [] });
  // Without GR negotiated: no mp_graceful_restart state, no capability.
  assert.deepEqual(parseGobgpGracefulRestart({ afi_safis: [{ config: {} }] }, 'BGP neighbor is x\n'), { active: false, peerRestarted: false, peerForwarding: [] });
  const rib = parseGobgpRib({ '10.96.10.1/32': [{ nlri: { prefix: '10.96.10.1/32' }, attrs: [{ type: 3, nexthop: '10.95.181.11' }], stale: true, 'neighbor-ip': '10.95.181.11' }] });
  assert.equal(rib[0]?.stale, true);
});

test('GoBGP config: a neighbor with gracefulRestart is a helper for every family', () => {
  const toml = gobgpConfig({ asn: 64500, routerId: '10.0.0.1', neighbors: [{ name: 'node1', address: '10.0.0.11', asn: 64512, gracefulRestart: { restartTime: 90 } }] });
  assert.match(toml, /\[neighbors\.graceful-restart\.config\]\n {4}enabled = true\n {4}restart-time = 90\n {4}helper-only = true/);
  assert.equal(toml.match(/\[neighbors\.afi-safis\.mp-graceful-restart\.config\]\n {6}enabled = true/g)?.length, 2);
  assert.doesNotMatch(gobgpConfig({ asn: 64500, routerId: '10.0.0.1', neighbors: [{ name: 'n', address: '10.0.0.11', asn: 64512 }] }), /graceful-restart/);
});
