// The fast path of our failure detector, as pure decisions (the engine does the I/O and the clock).
//
// A member that went silent is either dead to the network (cable cut, node powered off, kernel gone) or alive but not
// running its gossip on time (CPU starved, GC, a hung process). Fixed timing cannot tell the two apart, which is why
// fast detection flaps under load. The host's kernel can: it completes a TCP handshake to the member's gossip port
// (memberlist's own TCP ping) in softirq context, however starved the member's process is, and a cut cable completes
// nothing. So a silent member whose host does not answer a SYN within a few LAN round trips is accused at once; one
// whose host answers is left to the adaptive tolerance (the slow path), which stretches with measured delays.
//
// Lifeguard's rule applies to the accuser too: a member whose own timers ran late recently was not running when the
// answer was due, so it accuses nobody through the fast path until it has been on time for a while.

import { createHash } from 'node:crypto';

/** The state of one reachability check (a TCP connect to the member's gossip port, then a TCP ping). */
export type ReachResult =
  /** No SYN-ACK yet, still within the timeout. */
  | 'pending'
  /** The kernel answered: the host is up (the member may still be starved or hung). */
  | 'connected'
  /** RST: the host is up but nothing listens (the member's process is gone). */
  | 'refused'
  /** No answer within the timeout, or the network says the host is unreachable. */
  | 'unreachable'
  /** Our own timer ran too late to judge the timeout: no evidence either way. */
  | 'inconclusive';

export interface ReachCheck {
  startedAt: number;
  result: ReachResult;
  /** Checks made before this one during the same silence (0 for the first). */
  round?: number;
  /** Others asked to ping the member (memberlist's ping-req) along with this check. */
  indirect?: IndirectRound;
}

/**
 * Every check that completes a handshake takes a place in the member's listen queue until its process accepts it. A
 * member whose process is stalled (not a dead host) accepts nothing, and once the queue is full its kernel drops SYNs:
 * to us, exactly a cut cable. So while the host keeps answering, rechecks back off (the recheck interval doubles, up
 * to this many times), and the queue outlasts any stall the slow path does not judge first.
 */
export const RECHECK_BACKOFF_DOUBLINGS = 4;

/** How long after a check that found the host up (or could not tell) the next one is due. */
export function recheckAfterMs(t: Pick<FastPathTiming, 'reachRecheckMs'>, round = 0): number {
  return t.reachRecheckMs * 2 ** Math.min(Math.max(0, round), RECHECK_BACKOFF_DOUBLINGS);
}

/**
 * SWIM's indirect probe, on the fast path: our failure to reach a host says nothing about the others' paths to it (a
 * broken cable between two switches, a firewall rule), so along with our own check we ask a few members to ping it for
 * us. A relayed ack refutes the silence (the member is alive, only our path is broken). Its absence confirms the
 * silence as soon as every relay asked has nacked, or once the deadline has passed AND every relay that can nack has
 * (a relay that cannot nack, an old memberlist, may still relay an ack until then): a relay of ours nacks only when its own
 * kernel-level check of the host found no SYN-ACK either (`relayAnswer`), so a busy member whose host answers is
 * never nacked, and the deadline need not wait out the member's jitter. A relay that sent nothing was not running,
 * or saw the host up: that proves nothing, until `giveUpAt`, which does stretch with the member's tolerance.
 */
export interface IndirectRound {
  /** Members asked; 0 when there was nobody to ask. */
  peers: number;
  /** Of those, how many will nack (memberlist protocol ≥ 4). */
  expectedNacks: number;
  nacks: number;
  /** No relayed ack by then: none is coming, if the relays have said they tried. */
  deadline: number;
  /** No relayed ack by then: none is coming, whatever the relays said. */
  giveUpAt: number;
}

/**
 * The timing of the fast path's indirect round asked at `now`. `reachWaitMs` is our own reach check's SYN-ACK timeout
 * (with our local-health allowance). The deadline is that plus the relay's probe timeout: whatever the member's
 * tolerance, since a nack from a relay of ours already carries its own kernel-level evidence, and the tolerance (2× the
 * worst delay measured from the member over a 20 s half-life) had stretched it to 480–840 ms after a thousand Services
 * were set up. `giveUpAt`, for relays that said nothing, still waits twice half the tolerance, and at least
 * RELAY_SILENCE_MIN_MS.
 */
export function indirectRound(now: number, peers: number, expectedNacks: number, t: { toleranceMs: number; reachWaitMs: number; probeTimeoutMs: number }): IndirectRound {
  return {
    peers,
    expectedNacks,
    nacks: 0,
    deadline: now + t.reachWaitMs + t.probeTimeoutMs,
    giveUpAt: now + Math.max(2 * (Math.max(t.toleranceMs / 2, t.reachWaitMs) + t.probeTimeoutMs), RELAY_SILENCE_MIN_MS),
  };
}

/**
 * The least a round waits for relays that said nothing before accusing. A relay of ours that can reach the member
 * acks (or, host up, withholds), so its silence is no evidence of a dead host: only a stalled relay or one that saw
 * the host up is silent. On CI's loaded machine a relayed ack took more than the 81 ms that twice half a quiet
 * tolerance gave, and a live member cut off from us alone was declared dead. A cut cable is unaffected: our relays
 * nack it from their own reach check in 5-16 ms, and the deadline decides. memberlist's relays nack after 500 ms.
 */
export const RELAY_SILENCE_MIN_MS = 500;

/**
 * As a relay of someone's indirect ping (memberlist's ping-req), once our own ping of the target went unanswered for
 * our probe timeout: what to tell the requester, from what we know of the target ourselves. memberlist nacks then,
 * which says only "no ack within 5 ms" — a busy member misses that. With our fast path on, a nack also means its host
 * did not answer our own kernel-level reach check; a host that answered (a starved or hung process) gets no nack, so
 * the requester's verdict waits for its own evidence or its give-up time.
 * - `ack`: the target spoke to us after we were asked (any packet is proof of life, as in our own detector).
 * - `nack`: our check of its current silence found no SYN-ACK, or a RST (its process is gone).
 * - `withhold`: its host answered a check we made since the ask, or we could not judge in time: say nothing.
 * - `wait`: our check of its current silence is pending (or not started yet): ask again a probe timeout later.
 */
export type RelayAnswer = 'ack' | 'nack' | 'withhold' | 'wait';

export function relayAnswer(
  now: number,
  askedAt: number,
  target: { lastHeard: number; reach?: ReachCheck } | undefined,
  /** Past this we say nothing more (the requester has given up by then, or decides on its own evidence). */
  judgeUntil: number,
): RelayAnswer {
  if (!target) return 'nack';
  if (target.lastHeard > askedAt) return 'ack';
  const r = target.reach;
  const current = r !== undefined && r.startedAt >= target.lastHeard;
  if (current && (r.result === 'unreachable' || r.result === 'refused')) return 'nack';
  // The host answered a check made since we were asked: a starved or hung process, not a dead host. An answer from
  // before the ask says nothing of the host now (under load a check connects and the member's reply is slow; the cable
  // can be cut in between): the check the ask starts decides.
  if (current && r.result === 'connected' && r.startedAt >= askedAt) return 'withhold';
  return now < judgeUntil ? 'wait' : 'withhold';
}

export interface FastPathTiming {
  /** Silence after which the member's host is checked. */
  reachCheckAfterMs: number;
  /** A SYN-ACK later than this counts as no answer. 0 turns the fast path off. */
  reachTimeoutMs: number;
  /** A host that answered is checked again after this long if the member stays silent (doubling, recheckAfterMs). */
  reachRecheckMs: number;
  /** Silence required before an accusation, whatever the check says (the detector's floor). */
  suspectAfterSilenceMs: number;
}

/**
 * When the fast path's watch must next look, given when each live member was last heard: a quarter probe interval
 * from now while one is already silent past `reachCheckAfterMs` (a check or round in progress has deadlines of its
 * own), else just after the first silence can pass it — every packet moves that on, so a quiet cluster is looked at
 * about once per packet gap instead of four times per interval — and at most a probe interval from now.
 */
export function watchDueAt(now: number, lastHeard: Iterable<number>, reachCheckAfterMs: number, probeIntervalMs: number): number {
  let next = now + probeIntervalMs;
  for (const heard of lastHeard) {
    // fastPathAction wants the silence strictly past reachCheckAfterMs: a hair after it.
    const due = heard + reachCheckAfterMs + 0.01;
    if (due <= now) return now + Math.max(1, probeIntervalMs / 4);
    if (due < next) next = due;
  }
  return next;
}

/** `ask`: our check failed; ask others to ping it (an IndirectRound) before accusing. */
export type FastPathAction = 'none' | 'check' | 'ask' | 'accuse';

/** What to do about one alive member at `now`, given when we last heard from it and its latest check. */
export function fastPathAction(t: FastPathTiming, now: number, lastHeard: number, check: ReachCheck | undefined): FastPathAction {
  if (t.reachTimeoutMs <= 0) return 'none';
  const silence = now - lastHeard;
  if (silence <= t.reachCheckAfterMs) return 'none';
  // A check started before the member last spoke says nothing about the current silence.
  if (!check || check.startedAt < lastHeard) return 'check';
  switch (check.result) {
    case 'pending':
      return 'none';
    case 'unreachable': {
      if (silence <= t.suspectAfterSilenceMs) return 'none';
      const ind = check.indirect;
      if (!ind) return 'ask';
      // A relayed ack would have made the member heard after this check started (a new check above).
      if (ind.peers === 0 || now >= ind.giveUpAt) return 'accuse';
      // Every relay said no: none of them will relay an ack, so the deadline has nothing left to wait for.
      if (ind.nacks >= ind.peers) return 'accuse';
      return now >= ind.deadline && ind.nacks >= ind.expectedNacks ? 'accuse' : 'none';
    }
    case 'refused':
      // The host's own kernel answered: the path works and nothing listens, whatever others would see.
      return silence > t.suspectAfterSilenceMs ? 'accuse' : 'none';
    case 'connected':
    case 'inconclusive':
      return now - check.startedAt >= recheckAfterMs(t, check.round) ? 'check' : 'none';
  }
}

/**
 * How a check ends when its timer fires: `lateMs` is how late that timer ran. A late timer means we were not
 * running; the SYN-ACK may be waiting unread, or may have been delayed by the same starvation: no verdict.
 */
export function reachTimeoutResult(current: ReachResult, lateMs: number, timeoutMs: number): ReachResult {
  if (current !== 'pending') return current;
  return lateMs > timeoutMs / 2 ? 'inconclusive' : 'unreachable';
}

/** Maps a connect error code to a check result ('pending' for errors that say nothing about the host). */
export function reachErrorResult(code: string | undefined): ReachResult {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'ETIMEDOUT':
      return 'unreachable';
    default:
      return 'inconclusive';
  }
}

/**
 * Lifeguard local health for the fast path. A member whose own timers ran late was not running when answers were due,
 * and on a saturated machine the peer's kernel may be slow too: it does not accuse on the usual evidence. Rather than
 * falling back to the slow path, it asks for more: a check must wait for a SYN-ACK as long again as the worst lateness
 * of our timers in the last `holdMs` (`allowance`), so detection degrades with our own health instead of flapping.
 */
export class LocalHealth {
  private late: Array<{ at: number; ms: number }> = [];

  constructor(
    /** Lateness up to this is being on time. */
    private readonly lateMs: number,
    private readonly holdMs: number,
  ) {}

  noteTick(latenessMs: number, now: number): void {
    if (latenessMs <= this.lateMs) return;
    this.late = this.late.filter((x) => now - x.at < this.holdMs);
    this.late.push({ at: now, ms: latenessMs });
  }

  /** Extra time a reachability check waits now: the worst recent lateness, 0 when we have been on time. */
  allowance(now: number): number {
    let worst = 0;
    for (const x of this.late) if (now - x.at < this.holdMs && x.ms > worst) worst = x.ms;
    return worst;
  }
}

/**
 * Adaptive mode, when a suspicion's time is up: a member heard from since the suspicion began (its silence ended: it
 * is running, only slowly, and will refute when it gets to it), or within the floor, is held alive rather than
 * declared dead; its next silence starts a new suspicion. Memberlist's own rule (only a refutation clears a
 * suspicion) declared a CPU-starved member dead in the soak, 192 ms after it had last spoken during its suspicion.
 */
export function suspicionVerdict(now: number, lastHeard: number, suspectedAt: number, floorMs: number, hostUpGraceMs = 0): 'hold' | 'fail' {
  if (lastHeard > suspectedAt || now - lastHeard < floorMs) return 'hold';
  // Its host answered our reach check during this silence: a starved or hung process, not a dead node. Only a hang
  // this long is judged (a dead host or process is the fast path's, through the reach check).
  return now - lastHeard < hostUpGraceMs ? 'hold' : 'fail';
}

/**
 * Silence tolerated from a member whose host answers our reach checks before its suspicion may end in death. The
 * soak at load 24 saw node1's process silent 784 ms with its host up, over a 324 ms tolerance: declared dead.
 */
export const HOST_UP_GRACE_MS = 5000;

/** The SYN-ACK timeout of a check started now: the base timeout plus our allowance, capped. */
export function reachTimeoutMs(baseMs: number, allowanceMs: number, capMs = 1000): number {
  return Math.min(capMs, baseMs + allowanceMs);
}

/**
 * One pinger per pair. A ping and its ack each tell one side the other is alive, so when both members of a pair ping
 * each other, each side hears the other twice an interval at two unrelated phases, and the longest gap between what
 * it hears is anywhere between half an interval and a whole one. With one pinger, each side hears the other once an
 * interval, regularly: half the packets, and at a somewhat shorter interval the same worst gap with fewer packets
 * than before (FAST_CONFIG). The member whose name sorts first pings; the other answers, and pings only while the
 * first's pings are not arriving (a member of another version or timing, one pinging round robin in a large cluster,
 * one that is slow or gone), so no pair is ever without a pinger; the round trips of those pings then measure the
 * late pinger's delay, as every ping did before. Both sides work the roles out alike without talking. Silence is
 * judged as before, from any packet.
 */
export const PINGER_GRACE_INTERVALS = 1.5;

/** Whether `self` pings `peer` this interval; `peerPingedUsAt` is when `peer`'s last ping to us arrived. */
export function shouldPing(self: string, peer: string, now: number, peerPingedUsAt: number | undefined, intervalMs: number): boolean {
  if (self < peer) return true;
  return peerPingedUsAt === undefined || now - peerPingedUsAt > PINGER_GRACE_INTERVALS * intervalMs;
}


/**
 * Ring monitoring: who watches whom closely in a cluster too large for everyone to ping everyone every interval.
 * Pinging every peer every 7 ms costs each member in proportion to the cluster (8× the three-member cost at 17
 * members), and a round robin over too many peers left each one unheard for longer than the fast path tolerates:
 * at 26 members every speaker ran reach checks and indirect rounds all the time (a storm; measured 2026-12-02). So
 * the members alive or suspect are placed on a ring, and each watches only its `perSide` nearest on either side:
 * every member is watched by the same number of others however large the cluster, each pair is watched from both
 * ends, and every member works the ring out alike from its own member list without talking. Up to 2 × perSide + 1
 * members everyone watches everyone, as before. The ring is ordered by a hash of the names, not the names: nodes
 * named by rack ("rack-a-…", "rack-b-…") would otherwise be watched only by their own rack, and a cut between racks
 * would be seen by no member's close watch (the round robin in `backstopSilenceMs` still sees it, only slowly).
 */
export function ringNeighbours(members: Iterable<string>, self: string, perSide: number): Set<string> {
  const ring = [...new Set([...members, self])].map((name) => ({ name, h: ringPosition(name) }));
  ring.sort((a, b) => a.h - b.h || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out = new Set<string>();
  const n = ring.length;
  if (n - 1 <= 2 * perSide) {
    for (const m of ring) if (m.name !== self) out.add(m.name);
    return out;
  }
  const at = ring.findIndex((m) => m.name === self);
  for (let d = 1; d <= perSide; d++) {
    out.add(ring[(at + d) % n]!.name);
    out.add(ring[(at - d + n) % n]!.name);
  }
  return out;
}

/** The ring's order: evenly spread whatever the names share (FNV-style hashes of names differing early are not). */
function ringPosition(name: string): number {
  return createHash('sha256').update(name, 'utf8').digest().readUInt32BE(0);
}

/**
 * Members outside our ring neighbours are pinged round robin, one every `rrIntervalMs`, so a partition that no close
 * watch spans is still seen. Each is then heard once a cycle; two missed cycles and its tolerance make it suspect,
 * and the usual suspicion (refuted by a live member that hears of it) follows — but never before HOST_UP_GRACE_MS:
 * we do not check its host, and its watchers hold a starved member whose host answers them alive that long.
 */
export function backstopSilenceMs(othersCount: number, rrIntervalMs: number, toleranceMs: number): number {
  return Math.max(HOST_UP_GRACE_MS, 2 * Math.max(1, othersCount) * rrIntervalMs + toleranceMs);
}
