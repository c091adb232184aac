import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  applyMemberlistConfigJson,
  applyMemberlistEnv,
  ConfigError,
  FAST_CONFIG,
  LAN_CONFIG,
  parseGoDuration,
  retransmitLimit,
  suspicionTimeoutMs,
  WAN_CONFIG,
} from '../../../src/speaker/memberlist/config.js';
import { memberlistOptionsFromMetallb, parseDelegateVersion } from '../../../src/speaker/memberlist/metallb.js';
import { metallbKey } from '../../../src/speaker/memberlist/security.js';
import { remainingSuspicionMs } from '../../../src/speaker/memberlist/suspicion.js';

test("presets carry memberlist's DefaultLANConfig / DefaultWANConfig values", () => {
  assert.equal(LAN_CONFIG.probeIntervalMs, 1000);
  assert.equal(LAN_CONFIG.probeTimeoutMs, 500);
  assert.equal(LAN_CONFIG.suspicionMult, 4);
  assert.equal(LAN_CONFIG.suspicionMaxTimeoutMult, 6);
  assert.equal(LAN_CONFIG.pushPullIntervalMs, 30_000);
  assert.equal(LAN_CONFIG.adaptive, false);
  assert.equal(WAN_CONFIG.probeIntervalMs, 5000);
  assert.equal(WAN_CONFIG.probeTimeoutMs, 3000);
  assert.equal(WAN_CONFIG.suspicionMult, 6);
  assert.equal(FAST_CONFIG.adaptive, true);
});

test('Go durations', () => {
  assert.equal(parseGoDuration('500ms'), 500);
  assert.equal(parseGoDuration('1.5s'), 1500);
  assert.equal(parseGoDuration('1m30s'), 90_000);
  assert.equal(parseGoDuration('250us'), 0.25);
  assert.equal(parseGoDuration('0'), 0);
  assert.throws(() => parseGoDuration('5'), ConfigError);
  assert.throws(() => parseGoDuration('1 s'), ConfigError);
  assert.throws(() => parseGoDuration('ms'), ConfigError);
});

test('config.json: memberlist.Config fields, Go JSON semantics, clear errors', () => {
  const c = applyMemberlistConfigJson(LAN_CONFIG, JSON.stringify({ ProbeInterval: 200_000_000, probetimeout: '100ms', SuspicionMult: 3, GossipVerifyIncoming: false, gossip_nodes: 5, Name: 'ignored' }));
  assert.equal(c.probeIntervalMs, 200);
  assert.equal(c.probeTimeoutMs, 100);
  assert.equal(c.suspicionMult, 3);
  assert.equal(c.gossipVerifyIncoming, false);
  assert.equal(c.gossipNodes, 5);
  assert.throws(() => applyMemberlistConfigJson(LAN_CONFIG, '{"ProbeIntervall": 1}'), /unknown field\(s\) ProbeIntervall/);
  assert.throws(() => applyMemberlistConfigJson(LAN_CONFIG, '{"SuspicionMult": "x"}'), /SuspicionMult: expected a non-negative integer/);
  assert.throws(() => applyMemberlistConfigJson(LAN_CONFIG, '{'), /not valid JSON/);
  assert.throws(() => applyMemberlistConfigJson(LAN_CONFIG, '[]'), /must be a JSON object/);
  assert.throws(() => applyMemberlistConfigJson(LAN_CONFIG, '{"ProbeInterval": 0}'), /probeIntervalMs must be > 0/);
});

test('MEMBERLIST_* environment: applied as MetalLB does, bad values reported', () => {
  const { config, warnings } = applyMemberlistEnv(LAN_CONFIG, {
    MEMBERLIST_PROBE_INTERVAL: '300ms',
    MEMBERLIST_SUSPICION_MULT: '5',
    MEMBERLIST_ENABLE_COMPRESSION: 'false',
    MEMBERLIST_GOSSIP_NODES: '-1',
    MEMBERLIST_TCP_TIMEOUT: 'soon',
  });
  assert.equal(config.probeIntervalMs, 300);
  assert.equal(config.suspicionMult, 5);
  assert.equal(config.enableCompression, false);
  assert.equal(config.gossipNodes, LAN_CONFIG.gossipNodes);
  assert.equal(warnings.length, 2);
});

test('MetalLB settings: key from the Secret file, config.json over our defaults, unencrypted warning', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tml-ml-'));
  try {
    writeFileSync(join(dir, 'secretkey'), 'Ur5lq0YZ3p6Xe2v9CqQmxw');
    writeFileSync(join(dir, 'config.json'), '{"ProbeInterval": "20ms"}');
    const r = memberlistOptionsFromMetallb({ nodeName: 'node1', bindAddr: '10.94.0.1', secretKeyPath: dir, configJsonPath: join(dir, 'config.json') });
    assert.deepEqual(r.options.secretKeys, [metallbKey('Ur5lq0YZ3p6Xe2v9CqQmxw')]);
    assert.equal(r.options.bindPort, 7946);
    assert.equal(r.timing.probeIntervalMs, 20);
    assert.equal(r.timing.adaptive, true);
    const plain = memberlistOptionsFromMetallb({ nodeName: 'node1', bindAddr: '10.94.0.1', wan: true, configJsonPath: join(dir, 'missing.json') });
    assert.deepEqual(plain.options.secretKeys, []);
    assert.equal(plain.timing.probeIntervalMs, 5000);
    assert.ok(plain.notes.some((n) => /will not be encrypted/.test(n)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("delegate versions: MetalLB's none by default, serf's on request (METALLB_ML_DELEGATE_VERSION), bad text named", () => {
  const dflt = memberlistOptionsFromMetallb({ nodeName: 'node1', bindAddr: '10.94.0.1', configJsonPath: '/nonexistent/config.json' });
  assert.equal(dflt.options.delegateVersion, undefined);
  const serf = memberlistOptionsFromMetallb({ nodeName: 'node1', bindAddr: '10.94.0.1', configJsonPath: '/nonexistent/config.json', delegateVersion: '2,5,5' });
  assert.deepEqual(serf.options.delegateVersion, { min: 2, max: 5, cur: 5 });
  assert.ok(serf.notes.some((n) => /MetalLB speakers \(0,0,0\) cannot join/.test(n)));
  assert.deepEqual(parseDelegateVersion(' 0, 0 ,0', 'X'), { min: 0, max: 0, cur: 0 });
  for (const bad of ['2,5', '2,5,5,5', 'a,b,c', '2,5,6', '5,2,3', '2,5,256', '-1,0,0', '']) {
    assert.throws(() => parseDelegateVersion(bad, 'METALLB_ML_DELEGATE_VERSION'), /METALLB_ML_DELEGATE_VERSION: ".*"/, bad);
  }
});

test("suspicion and retransmit arithmetic as memberlist's", () => {
  assert.equal(suspicionTimeoutMs(4, 3, 1000), 4000);
  assert.equal(suspicionTimeoutMs(4, 100, 1000), 8000);
  assert.equal(retransmitLimit(4, 3), 4);
  assert.equal(retransmitLimit(4, 10), 8);
  // No confirmations: the maximum; all k: the minimum; never below it.
  assert.equal(remainingSuspicionMs(0, 3, 0, 2000, 30_000), 30_000);
  assert.equal(remainingSuspicionMs(3, 3, 0, 2000, 30_000), 2000);
  assert.equal(remainingSuspicionMs(1, 3, 0, 2000, 30_000), 16_000);
  assert.equal(remainingSuspicionMs(3, 3, 5000, 2000, 30_000), -3000);
});
