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
 * silence only once the deadline has passed AND every relay that can nack has (it pinged and waited its own probe
 * timeout): a nack alone comes too early (5 ms with our timing, which a busy member misses while its ack is on the
 * way), and a relay that sent nothing by the deadline was not running, which proves nothing, until `giveUpAt`.
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
