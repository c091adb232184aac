// BFD Control packets and the session state machine (RFC 5880), driven by a fake clock: two sessions wired back to
// back, with loss and delay where a test wants them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Diag, State, decodeControl, encodeControl, type ControlPacket, type StateName } from '../../../src/speaker/bfd/packet.js';
import { BfdSession, type BfdTimers, type TimerHost } from '../../../src/speaker/bfd/session.js';
import { bfdSignal } from '../../../src/speaker/bgp/speaker.js';
import { seededRandom } from '../../helpers/random.js';

class FakeClock implements TimerHost {
  t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private readonly rnd = seededRandom(5880);
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(h: unknown): void {
    this.timers.delete(h as number);
  }
  random(): number {
    return this.rnd();
  }
  /** Runs timers in order up to `ms` from now. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

const PROFILE: BfdTimers = { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, passiveMode: false };

interface Side {
  session: BfdSession;
  states: { at: number; state: StateName; diag: number; remoteState: StateName }[];
  sent: ControlPacket[];
}

interface Link {
  up: boolean;
  delay: number;
  /** Drops the packets it says so of (after `up`). */
  drop?: (p: ControlPacket) => boolean;
}

/** Two sessions back to back; `link.up` false drops every packet, `link.delay` delays them. */
function pair(a: Partial<BfdTimers> = {}, b: Partial<BfdTimers> = {}): { clock: FakeClock; A: Side; B: Side; link: Link } {
  const clock = new FakeClock();
  const link: Link = { up: true, delay: 1 };
  const sides: Side[] = [];
  const make = (discr: number, timers: BfdTimers, other: () => Side): Side => {
    const side: Side = {
      states: [],
      sent: [],
      session: new BfdSession(discr, timers, (buf) => {
        const p = decodeControl(buf);
        assert.notEqual(typeof p, 'string');
        side.sent.push(p as ControlPacket);
        if (!link.up || link.drop?.(p as ControlPacket)) return;
        const copy = Buffer.from(buf);
        clock.setTimer(() => {
          const q = decodeControl(copy);
          if (typeof q !== 'string') other().session.receive(q);
        }, link.delay);
      }, (state, diag, _previous, remoteState) => side.states.push({ at: clock.now(), state, diag, remoteState }), clock),
    };
    return side;
  };
  const A = make(0x11111111, { ...PROFILE, ...a }, () => sides[1]!);
  const B = make(0x22222222, { ...PROFILE, ...b }, () => sides[0]!);
  sides.push(A, B);
  return { clock, A, B, link };
}

describe('BFD Control packet (RFC 5880 §4.1)', () => {
  it('encodes and decodes every field', () => {
    const fields = {
      diag: Diag.CONTROL_DETECTION_TIME_EXPIRED, state: State.UP, poll: true, final: false, detectMult: 3,
      myDiscriminator: 0xdeadbeef, yourDiscriminator: 7, desiredMinTxInterval: 300_000, requiredMinRxInterval: 250_000,
      requiredMinEchoRxInterval: 0, controlPlaneIndependent: false, demand: false,
    };
    const b = encodeControl(fields);
    assert.equal(b.length, 24);
    assert.equal(b[0], 0x21);
    assert.equal(b[1], 0xe0);
    assert.deepEqual(decodeControl(b), { ...fields, version: 1, authenticationPresent: false, multipoint: false });
  });

  it('discards what §6.8.6 says to discard', () => {
    const ok = encodeControl({ diag: 0, state: State.DOWN, poll: false, final: false, detectMult: 3, myDiscriminator: 1, yourDiscriminator: 0, desiredMinTxInterval: 1, requiredMinRxInterval: 1, requiredMinEchoRxInterval: 0 });
    const bad = (mutate: (b: Buffer) => void): string => {
      const b = Buffer.from(ok);
      mutate(b);
      const r = decodeControl(b);
      assert.equal(typeof r, 'string');
      return r as string;
    };
    assert.match(bad((b) => (b[0] = 0x40)), /version 2/);
    assert.match(bad((b) => (b[2] = 0)), /Detect Mult 0/);
    assert.match(bad((b) => (b[1] |= 1)), /Multipoint/);
    assert.match(bad((b) => b.writeUInt32BE(0, 4)), /My Discriminator 0/);
    assert.match(bad((b) => (b[3] = 30)), /beyond/);
    assert.match(bad((b) => (b[3] = 20)), /too small/);
    assert.match(decodeControl(ok.subarray(0, 20)) as string, /shorter/);
  });
});

describe('BFD session (RFC 5880 §6)', () => {
  it('comes Up in a three-way handshake, slow (1 s) until Up, then polls down to 300 ms', () => {
    const { clock, A, B } = pair();
    A.session.start();
    B.session.start();
    clock.advance(2500);
    assert.equal(A.session.state, 'Up');
    assert.equal(B.session.state, 'Up');
    // One side goes Down → Init → Up, the other (which hears Init first) Down → Up.
    const paths = [A, B].map((x) => x.states.map((s) => s.state).join(' ')).sort();
    assert.deepEqual(paths, ['Init Up', 'Up']);
    // Before Up, packets advertise 1 s; the Poll after Up brings both to 300 ms.
    assert.equal(A.sent[0]!.desiredMinTxInterval, 1_000_000);
    assert.ok(A.sent.some((p) => p.poll && p.desiredMinTxInterval === 300_000));
    assert.ok(B.sent.some((p) => p.final));
    clock.advance(3000);
    const st = A.session.status();
    assert.equal(st.txIntervalMs, 300);
    assert.equal(st.detectionTimeMs, 900);
    assert.equal(st.pollActive, false);
    // 300 ms with 75–100 % jitter: 3000 ms carries 10 to 14 packets.
    const recent = A.sent.filter((p) => p.state === State.UP).length;
    assert.ok(recent >= 10, `${recent} packets`);
  });

  it('a cut link is detected after Detect Mult × interval (0.9 s) with Control Detection Time Expired', () => {
    const { clock, A, B, link } = pair();
    A.session.start();
    B.session.start();
    clock.advance(4000);
    assert.equal(A.session.state, 'Up');
    link.up = false;
    const cutAt = clock.now();
    clock.advance(2000);
    const down = A.states.find((s) => s.state === 'Down')!;
    assert.equal(down.diag, Diag.CONTROL_DETECTION_TIME_EXPIRED);
    assert.ok(down.at - cutAt <= 900 + 1 && down.at - cutAt > 600, `${down.at - cutAt} ms`);
    assert.equal(A.session.remoteDiscriminator, 0);
    link.up = true;
    clock.advance(3000);
    assert.equal(A.session.state, 'Up');
    assert.equal(A.session.status().upEvents, 2);
  });

  it('the peer signalling AdminDown takes us Down (Neighbor Signaled Session Down) and says the peer is AdminDown (§6.8.6)', () => {
    const { clock, A, B } = pair();
    A.session.start();
    B.session.start();
    clock.advance(4000);
    void B.session.stop();
    clock.advance(10);
    assert.equal(A.session.state, 'Down');
    assert.deepEqual({ ...A.states.at(-1)!, at: 0 }, { at: 0, state: 'Down', diag: Diag.NEIGHBOR_SIGNALED_SESSION_DOWN, remoteState: 'AdminDown' });
    // Ours: AdminDown with Administratively Down (§6.8.16), reported as our own state, not as the peer's Down.
    assert.deepEqual({ ...B.states.at(-1)!, at: 0 }, { at: 0, state: 'AdminDown', diag: Diag.ADMINISTRATIVELY_DOWN, remoteState: 'Up' });
    assert.equal(B.sent.at(-1)!.state, State.ADMIN_DOWN);
    assert.equal(B.sent.at(-1)!.diag, Diag.ADMINISTRATIVELY_DOWN);
    // The client reads it as the peer's decision, not a failure (RFC 5882 §3.2); each side the same.
    assert.equal(bfdSignal(A.states.at(-1)!.state, 'Up', A.states.at(-1)!.remoteState), 'administrative');
    assert.equal(bfdSignal(B.states.at(-1)!.state, 'Up', B.states.at(-1)!.remoteState), 'administrative');
    // A stays Down without failing (no detection while Down), and comes Up when B is back.
    clock.advance(5000);
    assert.equal(A.states.filter((s) => s.diag === Diag.CONTROL_DETECTION_TIME_EXPIRED).length, 0);
  });

  it('the peer signalling Down (its detection expired) is a failure: remote state Down', () => {
    const { clock, A, B, link } = pair();
    A.session.start();
    B.session.start();
    clock.advance(4000);
    // Only B -> A is cut: B hears A, A stops hearing B, times out, and tells B Down.
    link.drop = (p) => p.myDiscriminator === 0x22222222;
    clock.advance(1500);
    link.drop = undefined;
    const aDown = A.states.find((s) => s.state === 'Down')!;
    assert.equal(aDown.diag, Diag.CONTROL_DETECTION_TIME_EXPIRED);
    const bDown = B.states.find((s) => s.state === 'Down')!;
    assert.equal(bDown.diag, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN);
    assert.equal(bDown.remoteState, 'Down');
    assert.equal(bfdSignal('Down', 'Up', bDown.remoteState), 'failed');
    assert.equal(bfdSignal('Down', 'Up', aDown.remoteState), 'failed');
  });

  it('stop(): AdminDown at the agreed interval for a Detection Time, so one lost packet does not make the peer fail (§6.8.16)', async () => {
    const { clock, A, B, link } = pair();
    A.session.start();
    B.session.start();
    clock.advance(4000);
    const sentBefore = B.sent.length;
    // The first AdminDown packet is lost.
    let lost = 0;
    link.drop = (p) => p.state === State.ADMIN_DOWN && lost++ === 0;
    let done = false;
    const stopping = B.session.stop().then(() => (done = true));
    clock.advance(400);
    assert.equal(A.session.state, 'Down', 'the second AdminDown arrived within the interval');
    assert.equal(A.states.at(-1)!.remoteState, 'AdminDown');
    assert.equal(A.states.filter((s) => s.diag === Diag.CONTROL_DETECTION_TIME_EXPIRED).length, 0, 'no failure detected');
    clock.advance(2000);
    await stopping;
    assert.equal(done, true);
    const adminDown = B.sent.slice(sentBefore);
    assert.ok(adminDown.every((p) => p.state === State.ADMIN_DOWN && p.diag === Diag.ADMINISTRATIVELY_DOWN));
    // 900 ms at 225–270 ms apart (75–90 %), the first at once: 4 to 6 packets, then silence.
    assert.ok(adminDown.length >= 4 && adminDown.length <= 6, `${adminDown.length} AdminDown packets`);
    const n = B.sent.length;
    clock.advance(5000);
    assert.equal(B.sent.length, n, 'silent afterwards');
    assert.equal(B.states.filter((s) => s.state === 'Down').length, 0, 'our side never reports Down');
  });

  it('stop() of a session that never heard its peer sends one AdminDown and is done; silence() ends the AdminDown packets early', async () => {
    const { clock, A } = pair();
    A.session.start();
    await A.session.stop();
    assert.equal(A.sent.length, 1);
    assert.equal(A.sent[0]!.state, State.ADMIN_DOWN);
    clock.advance(5000);
    assert.equal(A.sent.length, 1);

    const p = pair();
    p.A.session.start();
    p.B.session.start();
    p.clock.advance(4000);
    const stopping = p.B.session.stop();
    const n = p.B.sent.length;
    p.B.session.silence();
    await stopping;
    p.clock.advance(5000);
    assert.equal(p.B.sent.length, n);
  });

  it('the client reading of BFD states (RFC 5882 §3.2)', () => {
    assert.equal(bfdSignal('Up', 'Init', 'Up'), 'up');
    assert.equal(bfdSignal('Down', 'Up', 'Down'), 'failed');
    assert.equal(bfdSignal('Down', 'Up', 'AdminDown'), 'administrative');
    assert.equal(bfdSignal('AdminDown', 'Up', 'Up'), 'administrative');
    assert.equal(bfdSignal('Init', 'Down', 'Down'), 'none');
  });

  it('passive mode: silent until the peer speaks', () => {
    const { clock, A, B } = pair({ passiveMode: true });
    A.session.start();
    clock.advance(5000);
    assert.equal(A.sent.length, 0);
    B.session.start();
    clock.advance(3000);
    assert.equal(A.session.state, 'Up');
    assert.ok(A.sent.length > 0);
  });

  it('the slower side sets the pace: max(our Desired Min TX, their Required Min RX); detection from their Detect Mult', () => {
    const { clock, A, B } = pair({ transmitInterval: 100, receiveInterval: 100, detectMultiplier: 5 }, { transmitInterval: 500, receiveInterval: 400, detectMultiplier: 2 });
    A.session.start();
    B.session.start();
    clock.advance(5000);
    assert.equal(A.session.status().txIntervalMs, 400);
    assert.equal(B.session.status().txIntervalMs, 500);
    assert.equal(A.session.status().detectionTimeMs, 2 * 500);
    assert.equal(B.session.status().detectionTimeMs, 5 * 400);
  });

  it('new timers while Up go through a Poll Sequence and take effect after the Final', () => {
    const { clock, A, B } = pair();
    A.session.start();
    B.session.start();
    clock.advance(4000);
    A.session.setTimers({ ...PROFILE, transmitInterval: 1000, receiveInterval: 1000 });
    assert.equal(A.session.status().pollActive, true);
    // Slower sending waits for the Final, which comes within a link delay.
    clock.advance(50);
    assert.equal(A.session.status().pollActive, false);
    clock.advance(3000);
    assert.equal(A.session.status().txIntervalMs, 1000);
    assert.equal(B.session.status().txIntervalMs, 1000, "the peer honours our Required Min RX");
    assert.equal(A.session.state, 'Up');
    assert.equal(B.session.state, 'Up');
  });

  it('packets from an unknown discriminator, with authentication, or with zero Your Discriminator while Up are ignored', () => {
    const { clock, A, B } = pair();
    A.session.start();
    B.session.start();
    clock.advance(4000);
    const received = A.session.status().packetsReceived;
    const base = { diag: 0, state: State.DOWN, poll: false, final: false, detectMult: 3, myDiscriminator: 9, desiredMinTxInterval: 1, requiredMinRxInterval: 1, requiredMinEchoRxInterval: 0, version: 1, multipoint: false, controlPlaneIndependent: false, demand: false };
    A.session.receive({ ...base, yourDiscriminator: 0x12345678, authenticationPresent: false });
    A.session.receive({ ...base, yourDiscriminator: 0x11111111, authenticationPresent: true });
    A.session.receive({ ...base, state: State.UP, yourDiscriminator: 0, authenticationPresent: false });
    assert.equal(A.session.status().packetsReceived, received);
    assert.equal(A.session.state, 'Up');
  });

  it('jitter keeps every interval within 75–100 % of the agreed one', () => {
    const { clock, A, B } = pair();
    A.session.start();
    B.session.start();
    clock.advance(4000);
    const n = A.sent.length;
    clock.advance(30_000);
    const count = A.sent.length - n;
    assert.ok(count >= 100 && count <= 134, `${count} packets in 30 s at 300 ms with jitter`);
  });
});
