// The fast path's decisions (src/speaker/memberlist/detector.ts), exhaustively over the check states; no clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fastPathAction, LocalHealth, RECHECK_BACKOFF_DOUBLINGS, recheckAfterMs, reachErrorResult, reachTimeoutMs, reachTimeoutResult, type ReachResult, HOST_UP_GRACE_MS, suspicionVerdict } from '../../../src/speaker/memberlist/detector.js';
import { FAST_CONFIG, LAN_CONFIG } from '../../../src/speaker/memberlist/config.js';

const t = { reachCheckAfterMs: 10, reachTimeoutMs: 15, reachRecheckMs: 50, suspectAfterSilenceMs: 20 };
const RESULTS: ReachResult[] = ['pending', 'connected', 'refused', 'unreachable', 'inconclusive'];

test('a member heard recently is left alone whatever its last check said', () => {
  for (const result of [undefined, ...RESULTS]) {
    for (const silence of [0, 5, 10]) {
      const check = result ? { startedAt: 990, result } : undefined;
      assert.equal(fastPathAction(t, 1000 + silence, 1000, check), 'none', `${result} ${silence}`);
    }
  }
});

test('a silent member without a check of the current silence gets one', () => {
  assert.equal(fastPathAction(t, 1011, 1000, undefined), 'check');
  // A check made before it last spoke is stale, whatever it found.
  for (const result of RESULTS) assert.equal(fastPathAction(t, 1011, 1000, { startedAt: 999, result }), 'check', result);
});

test('while the check is pending nothing happens, however long the silence', () => {
  for (const silence of [11, 20, 500, 10_000]) assert.equal(fastPathAction(t, 1000 + silence, 1000, { startedAt: 1005, result: 'pending' }), 'none');
});

test('a refusing host is accused once the silence passes the floor, not before', () => {
  assert.equal(fastPathAction(t, 1020, 1000, { startedAt: 1002, result: 'refused' }), 'none', 'at the floor');
  assert.equal(fastPathAction(t, 1021, 1000, { startedAt: 1002, result: 'refused' }), 'accuse', 'past the floor');
  assert.equal(fastPathAction(t, 5000, 1000, { startedAt: 1002, result: 'refused' }), 'accuse');
});

test('a host unreachable from us: others are asked to ping it before it is accused, past the floor', () => {
  assert.equal(fastPathAction(t, 1020, 1000, { startedAt: 1002, result: 'unreachable' }), 'none', 'at the floor');
  assert.equal(fastPathAction(t, 1021, 1000, { startedAt: 1002, result: 'unreachable' }), 'ask', 'no one asked yet');
  // Nobody to ask (a two-member cluster): our own check decides.
  const alone = { peers: 0, expectedNacks: 0, nacks: 0, deadline: 9999, giveUpAt: 9999 };
  assert.equal(fastPathAction(t, 1021, 1000, { startedAt: 1002, result: 'unreachable', indirect: alone }), 'accuse');
});

test('an indirect round: accused after its deadline once every relay nacked, or at its give-up time; never before the deadline', () => {
  const round = (nacks: number) => ({ peers: 3, expectedNacks: 2, nacks, deadline: 1040, giveUpAt: 1080 });
  const at = (now: number, nacks: number) => fastPathAction(t, now, 1000, { startedAt: 1002, result: 'unreachable', indirect: round(nacks) });
  // Every relay nacked early: a nack comes after the relay's probe timeout, a busy member's ack may still be coming.
  assert.equal(at(1039, 2), 'none');
  assert.equal(at(1040, 2), 'accuse');
  // A relay that said nothing was not running: that proves nothing until the give-up time.
  assert.equal(at(1040, 1), 'none');
  assert.equal(at(1079, 0), 'none');
  assert.equal(at(1080, 0), 'accuse');
  // A relayed ack makes the member heard after the check started: a new check (and round), no accusation.
  assert.equal(fastPathAction(t, 1090, 1050, { startedAt: 1002, result: 'unreachable', indirect: round(2) }), 'check');
});

test('a host that answered (or a check we could not time) is checked again only after the recheck interval', () => {
  for (const result of ['connected', 'inconclusive'] as const) {
    assert.equal(fastPathAction(t, 1049, 1000, { startedAt: 1000, result }), 'none', result);
    assert.equal(fastPathAction(t, 1050, 1000, { startedAt: 1000, result }), 'check', result);
  }
});

test('while the host keeps answering a silent member, rechecks back off (its listen queue must outlast a stall)', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((r) => recheckAfterMs(t, r)), [50, 100, 200, 400, 800, 800, 800]);
  assert.equal(recheckAfterMs(t), 50, 'the first check of a silence');
  assert.equal(RECHECK_BACKOFF_DOUBLINGS, 4);
  for (const result of ['connected', 'inconclusive'] as const) {
    assert.equal(fastPathAction(t, 1399, 1000, { startedAt: 1000, result, round: 3 }), 'none', result);
    assert.equal(fastPathAction(t, 1400, 1000, { startedAt: 1000, result, round: 3 }), 'check', result);
  }
  // Backing off never delays an accusation: a host that stops answering is judged on that check's result.
  const nobodyElse = { peers: 0, expectedNacks: 0, nacks: 0, deadline: 0, giveUpAt: 0 };
  assert.equal(fastPathAction(t, 1021, 1000, { startedAt: 1010, result: 'unreachable', round: 9, indirect: nobodyElse }), 'accuse');
  // Connections per second a stalled member's queue takes from one peer, from the first recheck on.
  const perPeer = (seconds: number): number => {
    let at = 0;
    let n = 0;
    for (let r = 0; at <= seconds * 1000; r++, n++) at += recheckAfterMs(FAST_CONFIG, r);
    return n;
  };
  assert.ok(perPeer(60) < 100, `${perPeer(60)} checks in a minute`);
});

test('no fast path when its timeout is 0 (memberlist presets)', () => {
  const off = { ...t, reachTimeoutMs: 0 };
  for (const result of [undefined, ...RESULTS]) assert.equal(fastPathAction(off, 9999, 0, result ? { startedAt: 1, result } : undefined), 'none');
  assert.equal(LAN_CONFIG.reachTimeoutMs, 0);
  assert.ok(FAST_CONFIG.reachTimeoutMs > 0 && FAST_CONFIG.reachCheckAfterMs < FAST_CONFIG.suspectAfterSilenceMs);
});

test('a check timer that fired on time makes a pending check unreachable; a late one proves nothing', () => {
  assert.equal(reachTimeoutResult('pending', 0, 15), 'unreachable');
  assert.equal(reachTimeoutResult('pending', 7.5, 15), 'unreachable');
  assert.equal(reachTimeoutResult('pending', 7.6, 15), 'inconclusive');
  assert.equal(reachTimeoutResult('pending', 300, 15), 'inconclusive');
  // A result already known stays.
  for (const r of ['connected', 'refused', 'unreachable', 'inconclusive'] as const) assert.equal(reachTimeoutResult(r, 300, 15), r);
});

test('connect errors: RST is a refusal, routing errors are unreachable, the rest inconclusive', () => {
  assert.equal(reachErrorResult('ECONNREFUSED'), 'refused');
  for (const c of ['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT']) assert.equal(reachErrorResult(c), 'unreachable', c);
  for (const c of ['EMFILE', 'ECONNRESET', 'EADDRNOTAVAIL', undefined]) assert.equal(reachErrorResult(c), 'inconclusive', String(c));
});

test('local health: late ticks add their lateness to the checks for the hold time after them', () => {
  const h = new LocalHealth(10, 100);
  assert.equal(h.allowance(0), 0);
  h.noteTick(10, 5);
  assert.equal(h.allowance(5), 0, 'lateness at the limit is on time');
  h.noteTick(40, 1000);
  h.noteTick(25, 1050);
  assert.equal(h.allowance(1000), 40, 'the worst in the window');
  assert.equal(h.allowance(1099), 40);
  assert.equal(h.allowance(1100), 25, 'the 40 ms one has left the window');
  assert.equal(h.allowance(1149), 25);
  assert.equal(h.allowance(1150), 0);
});

test('a check waits its base timeout plus the allowance, capped', () => {
  assert.equal(reachTimeoutMs(10, 0), 10);
  assert.equal(reachTimeoutMs(10, 35), 45);
  assert.equal(reachTimeoutMs(10, 5000), 1000);
  assert.equal(reachTimeoutMs(10, 5000, 200), 200);
});

test('a suspicion whose time is up holds a member heard since it began or within the floor, and fails a silent one', () => {
  // Suspected at 1000 (floor 20 ms), verdict at 1331.
  assert.equal(suspicionVerdict(1331, 995, 1000, 20), 'fail', 'silent since before the suspicion');
  assert.equal(suspicionVerdict(1331, 1000, 1000, 20), 'fail', 'last heard exactly when suspected');
  assert.equal(suspicionVerdict(1331, 1192, 1000, 20), 'hold', 'spoke during the suspicion (the soak: silent 139 ms at the verdict)');
  assert.equal(suspicionVerdict(1331, 1320, 1000, 20), 'hold', 'talking right now');
  // A short (fast-path) suspicion: only silence since before it counts against the member.
  assert.equal(suspicionVerdict(1003, 970, 1000, 20), 'fail');
  assert.equal(suspicionVerdict(1003, 1001, 1000, 20), 'hold');
});

test('a member whose host answered our reach check during its silence is held until the host-up grace is over', () => {
  // The soak: silent 784 ms, suspected 454 ms ago, host answering.
  assert.equal(suspicionVerdict(1784, 1000, 1330, 20, 0), 'fail', 'no reach evidence: the tolerance decides');
  assert.equal(suspicionVerdict(1784, 1000, 1330, 20, HOST_UP_GRACE_MS), 'hold');
  assert.equal(suspicionVerdict(1000 + HOST_UP_GRACE_MS, 1000, 1330, 20, HOST_UP_GRACE_MS), 'fail', 'a hang this long is judged');
});
