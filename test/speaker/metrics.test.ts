// The speaker's metrics: MetalLB's names and types; layer 2 counters and memberlist members read at scrape time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpeakerMetrics } from '../../src/speaker/metrics.js';
import { metric } from './process.js';

test('metrics: names, types, and values read from the announcer and the membership at scrape time', async () => {
  const m = new SpeakerMetrics();
  let counts = new Map([['10.97.0.1', { requestsReceived: 3, responsesSent: 2, gratuitousSent: 10 }]]);
  let members: number | undefined;
  m.readL2CountersFrom(() => counts);
  m.readMembersFrom(() => members);
  m.announced.set({ service: 'default/web', protocol: 'layer2', node: 'node1', ip: '10.97.0.1' }, 1);
  let text = await m.text();
  for (const [name, type] of [
    ['metallb_speaker_announced', 'gauge'], ['metallb_layer2_requests_received', 'counter'], ['metallb_layer2_responses_sent', 'counter'],
    ['metallb_layer2_gratuitous_sent', 'counter'], ['metallb_k8s_client_updates_total', 'counter'], ['metallb_k8s_client_update_errors_total', 'counter'],
    ['metallb_k8s_client_config_loaded_bool', 'gauge'], ['metallb_k8s_client_config_stale_bool', 'gauge'], ['metallb_speaker_memberlist_members', 'gauge'],
  ]) {
    assert.match(text, new RegExp(`# TYPE ${name} ${type}\\n`), name);
  }
  assert.equal(metric(text, 'metallb_speaker_announced', { service: 'default/web', protocol: 'layer2', node: 'node1', ip: '10.97.0.1' }), 1);
  assert.equal(metric(text, 'metallb_layer2_requests_received', { ip: '10.97.0.1' }), 3);
  assert.equal(metric(text, 'metallb_layer2_responses_sent', { ip: '10.97.0.1' }), 2);
  assert.equal(metric(text, 'metallb_layer2_gratuitous_sent', { ip: '10.97.0.1' }), 10);
  assert.equal(metric(text, 'metallb_speaker_memberlist_members'), 0, '0 without memberlist');
  counts = new Map([['10.97.0.1', { requestsReceived: 5, responsesSent: 5, gratuitousSent: 10 }], ['fd00:97::1', { requestsReceived: 1, responsesSent: 1, gratuitousSent: 5 }]]);
  members = 3;
  text = await m.text();
  assert.equal(metric(text, 'metallb_layer2_requests_received', { ip: '10.97.0.1' }), 5);
  assert.equal(metric(text, 'metallb_layer2_gratuitous_sent', { ip: 'fd00:97::1' }), 5);
  assert.equal(metric(text, 'metallb_speaker_memberlist_members'), 3);
});

test('metrics: the failure detector\'s figures, read from the gossip thread at scrape time; zero without memberlist', async () => {
  const m = new SpeakerMetrics();
  let text = await m.text();
  assert.equal(metric(text, 'metallb_speaker_memberlist_reach_checks_total', { result: 'unreachable' }), 0, 'no source: zero');
  assert.doesNotMatch(text, /metallb_speaker_memberlist_reach_connect_seconds\{/, 'no source: no quantiles');
  let figures: Record<string, number> | undefined = {
    reach_checks: 12, reach_connected: 9, reach_unreachable: 2, reach_refused: 1, reach_answered_late: 1,
    fast_suspicions: 2, probes_failed: 5, reach_connect_p50_ms: 0.2, reach_connect_p99_ms: 1.5, reach_connect_max_ms: 12,
    loop_delay_p50_ms: 5.1, loop_delay_p99_ms: 9, loop_delay_max_ms: 40,
  };
  let reads = 0;
  m.readDetectorFrom(async () => {
    reads++;
    return figures;
  });
  text = await m.text();
  assert.equal(reads, 1, 'one read of the gossip thread per scrape, shared by the four collectors');
  assert.match(text, /# TYPE metallb_speaker_memberlist_reach_checks_total counter\n/);
  assert.match(text, /# TYPE metallb_speaker_memberlist_reach_connect_seconds gauge\n/);
  assert.equal(metric(text, 'metallb_speaker_memberlist_reach_checks_total', { result: 'started' }), 12);
  assert.equal(metric(text, 'metallb_speaker_memberlist_reach_checks_total', { result: 'connected' }), 9);
  assert.equal(metric(text, 'metallb_speaker_memberlist_reach_checks_total', { result: 'answered_late' }), 1);
  assert.equal(metric(text, 'metallb_speaker_memberlist_reach_checks_total', { result: 'inconclusive' }), 0);
  assert.equal(metric(text, 'metallb_speaker_memberlist_suspicions_total', { path: 'fast' }), 2);
  assert.equal(metric(text, 'metallb_speaker_memberlist_suspicions_total', { path: 'slow' }), 5);
  assert.equal(metric(text, 'metallb_speaker_memberlist_reach_connect_seconds', { quantile: '1' }), 0.012);
  assert.equal(metric(text, 'metallb_speaker_memberlist_loop_delay_seconds', { quantile: '0.99' }), 0.009);
  // A gossip thread that did not answer in time: the last figures, not zero (a counter that drops reads as a reset).
  figures = undefined;
  text = await m.text();
  assert.equal(metric(text, 'metallb_speaker_memberlist_reach_checks_total', { result: 'started' }), 12);
  assert.equal(metric(text, 'metallb_speaker_memberlist_reach_connect_seconds', { quantile: '1' }), 0.012);
});
