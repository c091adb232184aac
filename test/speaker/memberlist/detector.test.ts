// The fast path's decisions (src/speaker/memberlist/detector.ts), exhaustively over the check states; no clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fastPathAction, watchDueAt, indirectRound, LocalHealth, relayAnswer, RECHECK_BACKOFF_DOUBLINGS, recheckAfterMs, reachErrorResult, reachTimeoutMs, reachTimeoutResult, type ReachResult, HOST_UP_GRACE_MS, PINGER_GRACE_INTERVALS, RELAY_SILENCE_MIN_MS, shouldPing, suspicionVerdict, ringNeighbours, backstopSilenceMs } from '../../../src/speaker/memberlist/detector.js';
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
  // Every relay that can nack did, early: the one that cannot (an old memberlist) may still relay an ack.
  assert.equal(at(1039, 2), 'none');
  assert.equal(at(1040, 2), 'accuse');
  // A relay that said nothing was not running: that proves nothing until the give-up time.
  assert.equal(at(1040, 1), 'none');
  assert.equal(at(1079, 0), 'none');
  assert.equal(at(1080, 0), 'accuse');
  // A relayed ack makes the member heard after the check started: a new check (and round), no accusation.
  assert.equal(fastPathAction(t, 1090, 1050, { startedAt: 1002, result: 'unreachable', indirect: round(2) }), 'check');
});

test('an indirect round in which every relay asked nacked is decided at once, before its deadline', () => {
  const round = (nacks: number) => ({ peers: 2, expectedNacks: 2, nacks, deadline: 1040, giveUpAt: 1080 });
  const at = (now: number, nacks: number) => fastPathAction(t, now, 1000, { startedAt: 1002, result: 'unreachable', indirect: round(nacks) });
  assert.equal(at(1021, 2), 'accuse', 'all nacked, past the floor');
  assert.equal(at(1020, 2), 'none', 'all nacked, but the silence is not past the floor');
  assert.equal(at(1021, 1), 'none', 'one relay has not answered');
  assert.equal(at(1039, 1), 'none');
  assert.equal(at(1040, 1), 'none', 'the deadline needs every nack it expects');
  // Our own check must have found the host unreachable too: the relays' word alone accuses nobody.
  for (const result of ['pending', 'connected', 'inconclusive'] as const) {
    assert.notEqual(fastPathAction(t, 1021, 1000, { startedAt: 1002, result, indirect: round(2) }), 'accuse', result);
  }
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

test("an indirect round's deadline is our reach wait plus the relay's probe timeout, whatever the member's tolerance", () => {
  for (const toleranceMs of [20, 246, 1660]) {
    const r = indirectRound(1000, 2, 1, { toleranceMs, reachWaitMs: 10, probeTimeoutMs: 5 });
    assert.deepEqual({ ...r, giveUpAt: 0 }, { peers: 2, expectedNacks: 1, nacks: 0, deadline: 1015, giveUpAt: 0 }, `tolerance ${toleranceMs}`);
  }
  // Relays that said nothing: twice half the tolerance (or the reach wait, if longer) plus the probe timeout, and never
  // less than RELAY_SILENCE_MIN_MS (a relayed ack on a loaded machine took longer than 81 ms).
  assert.equal(indirectRound(1000, 2, 1, { toleranceMs: 20, reachWaitMs: 10, probeTimeoutMs: 5 }).giveUpAt, 1000 + RELAY_SILENCE_MIN_MS);
  assert.equal(indirectRound(1000, 2, 1, { toleranceMs: 1660, reachWaitMs: 10, probeTimeoutMs: 5 }).giveUpAt, 2670);
  // Our own lateness stretches the deadline, and the give-up time past the floor.
  assert.deepEqual(indirectRound(1000, 1, 1, { toleranceMs: 20, reachWaitMs: 60, probeTimeoutMs: 5 }), { peers: 1, expectedNacks: 1, nacks: 0, deadline: 1065, giveUpAt: 1000 + RELAY_SILENCE_MIN_MS });
  assert.equal(indirectRound(1000, 1, 1, { toleranceMs: 20, reachWaitMs: 300, probeTimeoutMs: 5 }).giveUpAt, 1610);
});

test('a cut cable with a stretched tolerance (a thousand Services just set up): accused once the nacks are in, not at half the tolerance', () => {
  // The bench's trial: node1's jitter 123 ms (tolerance 246), our check unreachable, the relay's nack at +6 ms.
  const round = indirectRound(1012, 1, 1, { toleranceMs: 246, reachWaitMs: 10, probeTimeoutMs: 5 });
  const check = { startedAt: 1012, result: 'unreachable' as const, indirect: round };
  assert.equal(fastPathAction(t, 1026, 1000, check), 'none', 'before the deadline');
  assert.equal(fastPathAction(t, 1027, 1000, check), 'none', 'deadline passed, the relay has not nacked yet');
  round.nacks = 1;
  assert.equal(fastPathAction(t, 1027, 1000, check), 'accuse');
  // Without the nack, only the give-up time, which still follows the tolerance.
  round.nacks = 0;
  assert.equal(fastPathAction(t, round.giveUpAt - 1, 1000, check), 'none');
  assert.equal(fastPathAction(t, round.giveUpAt, 1000, check), 'accuse');
});

describe('as a relay, with the fast path on', () => {
  const asked = 1000;
  const until = 1050;
  const at = (now: number, target: Parameters<typeof relayAnswer>[2]) => relayAnswer(now, asked, target, until);

  test('a target we heard from after the request: an ack, whatever our check says', () => {
    for (const result of [undefined, ...RESULTS]) {
      const reach = result ? { startedAt: 990, result } : undefined;
      assert.equal(at(1005, { lastHeard: 1001, ...(reach ? { reach } : {}) }), 'ack', String(result));
      assert.equal(at(2000, { lastHeard: 1001, ...(reach ? { reach } : {}) }), 'ack', `${result}, after the judging time`);
    }
  });

  test('a nack only when our own check of its current silence found the host down or nothing listening', () => {
    for (const result of ['unreachable', 'refused'] as const) {
      assert.equal(at(1005, { lastHeard: 995, reach: { startedAt: 998, result } }), 'nack', result);
      assert.equal(at(1005, { lastHeard: 995, reach: { startedAt: 995, result } }), 'nack', `${result}, started as it last spoke`);
      // A check made before it last spoke says nothing about this silence.
      assert.equal(at(1005, { lastHeard: 995, reach: { startedAt: 990, result } }), 'wait', `${result}, stale`);
    }
  });

  test('a host that answered a check made since the ask (a starved or hung process): no nack, ever', () => {
    for (const now of [1005, 1049, 1050, 5000]) assert.equal(at(now, { lastHeard: 995, reach: { startedAt: 1000, result: 'connected' } }), 'withhold', String(now));
  });

  test('a host that answered a check from before the ask: no word yet (the check the ask starts decides), never a nack', () => {
    const target = { lastHeard: 995, reach: { startedAt: 998, result: 'connected' as const } };
    assert.equal(at(1005, target), 'wait');
    assert.equal(at(1049, target), 'wait');
    assert.equal(at(1050, target), 'withhold');
  });

  test('our check pending, inconclusive, stale or not started: wait until the judging time, then say nothing', () => {
    const targets = [
      { lastHeard: 995 },
      { lastHeard: 995, reach: { startedAt: 998, result: 'pending' as const } },
      { lastHeard: 995, reach: { startedAt: 998, result: 'inconclusive' as const } },
      { lastHeard: 995, reach: { startedAt: 990, result: 'connected' as const } },
    ];
    for (const target of targets) {
      assert.equal(at(1005, target), 'wait', JSON.stringify(target));
      assert.equal(at(1049, target), 'wait', JSON.stringify(target));
      assert.equal(at(1050, target), 'withhold', JSON.stringify(target));
    }
  });

  test('a target we do not know: a nack, as memberlist sends it', () => {
    assert.equal(at(1005, undefined), 'nack');
  });
});

describe('watchDueAt: when the fast path looks again', () => {
  test('just after the first member whose silence can pass reachCheckAfterMs, not on a fixed poll', () => {
    // Heard 2 ms and 7 ms ago: the member heard 7 ms ago is due 3 ms from now.
    const due = watchDueAt(1000, [998, 993], 10, 10);
    assert.ok(due > 1003 && due < 1003.1, `due at ${due}`);
    // The check it leads to starts there: a hair later, fastPathAction says check.
    assert.equal(fastPathAction({ ...t, reachCheckAfterMs: 10 }, due, 993, undefined), 'check');
    assert.equal(fastPathAction({ ...t, reachCheckAfterMs: 10 }, 1003, 993, undefined), 'none');
  });

  test('polls every quarter interval while a member is already silent past it', () => {
    assert.equal(watchDueAt(1000, [998, 985], 10, 10), 1002.5);
    assert.equal(watchDueAt(1000, [985], 10, 2), 1001, 'never more often than every millisecond');
  });

  test('at most a probe interval away, also with nobody to watch', () => {
    assert.equal(watchDueAt(1000, [], 10, 10), 1010);
    assert.equal(watchDueAt(1000, [999], 50, 10), 1010);
  });
});

test('one pinger per pair: the member whose name sorts first always pings; the other only while its pings stop coming', () => {
  const I = FAST_CONFIG.probeIntervalMs;
  // node1 < node2: node1 pings whatever it hears.
  for (const pingedAt of [undefined, 0, 995, 1000]) assert.equal(shouldPing('node1', 'node2', 1000, pingedAt, I), true);
  // node2 leaves it to node1 while node1's pings arrive within the grace...
  assert.equal(shouldPing('node2', 'node1', 1000, 1000 - I, I), false);
  assert.equal(shouldPing('node2', 'node1', 1000, 1000 - PINGER_GRACE_INTERVALS * I, I), false);
  // ...and pings it itself once they stop (or before the first), so the pair never goes without a pinger.
  assert.equal(shouldPing('node2', 'node1', 1000, 1000 - PINGER_GRACE_INTERVALS * I - 0.1, I), true);
  assert.equal(shouldPing('node2', 'node1', 1000, undefined, I), true);
  // Both sides agree on the roles: exactly one of the two is the pinger while the pinger's pings arrive.
  for (const [a, b] of [['a', 'b'], ['node10', 'node9'], ['x', 'x-1']] as const) {
    assert.equal(shouldPing(a, b, 50, 49, I) !== shouldPing(b, a, 50, 49, I), true, `${a} / ${b}`);
  }
  assert.ok(FAST_CONFIG.onePingerPerPair);
  assert.equal(LAN_CONFIG.onePingerPerPair, false);
});

describe('ring monitoring', () => {
  const names = (n: number, prefix = 'node'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

  test('up to 2 × perSide + 1 members everyone watches everyone', () => {
    for (let n = 1; n <= 5; n++) {
      const all = names(n);
      for (const self of all) assert.deepEqual([...ringNeighbours(all, self, 2)].sort(), all.filter((x) => x !== self).sort());
    }
  });

  test('beyond that each member watches 2 × perSide others, is watched by as many, and pairs are watched from both ends', () => {
    for (const perSide of [1, 2, 3]) {
      for (const n of [2 * perSide + 2, 10, 33, 100]) {
        const all = names(n);
        const near = new Map(all.map((m) => [m, ringNeighbours(all, m, perSide)]));
        const watchedBy = new Map(all.map((m) => [m, 0]));
        for (const [self, set] of near) {
          assert.equal(set.size, 2 * perSide, `${self} of ${n}`);
          assert.ok(!set.has(self));
          for (const peer of set) {
            assert.ok(near.get(peer)!.has(self), `${self} watches ${peer} but not the other way (n ${n})`);
            watchedBy.set(peer, watchedBy.get(peer)! + 1);
          }
        }
        for (const [m, count] of watchedBy) assert.equal(count, 2 * perSide, `${m} watched by ${count} of ${n}`);
      }
    }
  });

  test('every member works out the same ring from its own list, in any order, with or without itself', () => {
    const all = names(20);
    const shuffled = [...all].reverse();
    for (const self of all) {
      const a = [...ringNeighbours(all, self, 2)].sort();
      assert.deepEqual([...ringNeighbours(shuffled, self, 2)].sort(), a);
      assert.deepEqual([...ringNeighbours(all.filter((x) => x !== self), self, 2)].sort(), a);
      assert.deepEqual([...ringNeighbours([...all, ...all], self, 2)].sort(), a);
    }
  });

  test('nodes named by rack are watched across racks, not only by their own', () => {
    // In name order only the members at the racks' ends would have a watcher in the other rack (4 of 20).
    const all = [...names(10, 'rack-a-'), ...names(10, 'rack-b-')];
    const crossWatched = all.filter((m) => [...ringNeighbours(all, m, 2)].some((p) => p.slice(0, 6) !== m.slice(0, 6)));
    assert.ok(crossWatched.length >= 10, `only ${crossWatched.length} of 20 have a watcher in the other rack`);
  });

  test('the round robin suspects after two of its cycles and the tolerance, and never before a host-up grace', () => {
    assert.equal(backstopSilenceMs(200, 20, 16), 2 * 200 * 20 + 16);
    assert.equal(backstopSilenceMs(10, 20, 16), HOST_UP_GRACE_MS);
    assert.equal(backstopSilenceMs(0, 20, 16), HOST_UP_GRACE_MS);
  });
});
