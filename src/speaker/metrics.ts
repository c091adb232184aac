// The speaker's Prometheus metrics: MetalLB's names (reference f.1) plus memberlist figures of our own.
import { Counter, Gauge } from 'prom-client';
import { RuntimeMetrics } from '../controller/runtime-metrics.js';

/** What the ARP/NDP announcer counts per announced address. */
export interface L2PacketCounts {
  requestsReceived: number;
  responsesSent: number;
  gratuitousSent: number;
}

export class SpeakerMetrics extends RuntimeMetrics {
  readonly announced: Gauge<'service' | 'protocol' | 'node' | 'ip'>;
  readonly l2RequestsReceived: Counter<'ip'>;
  readonly l2ResponsesSent: Counter<'ip'>;
  readonly l2GratuitousSent: Counter<'ip'>;
  readonly memberlistEvents: Counter<'event'>;
  private membersSource: (() => number | undefined) | undefined;
  private detectorSource: (() => Promise<Record<string, number> | undefined>) | undefined;
  private l2Source: (() => Iterable<[string, L2PacketCounts]>) | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    super(opts);
    const r = [this.registry];
    this.announced = new Gauge({
      name: 'metallb_speaker_announced',
      help: 'Services being announced from this node. This is desired state, it does not guarantee that the routing protocols have converged.',
      labelNames: ['service', 'protocol', 'node', 'ip'],
      registers: r,
    });
    // The announcer counts packets per address; the counters are read from it at scrape time.
    const l2 = (): Iterable<[string, L2PacketCounts]> => this.l2Source?.() ?? [];
    const l2Counter = (name: string, help: string, field: keyof L2PacketCounts): Counter<'ip'> =>
      new Counter({
        name,
        help,
        labelNames: ['ip'],
        registers: r,
        collect() {
          this.reset();
          for (const [ip, c] of l2()) if (c[field] > 0) this.inc({ ip }, c[field]);
        },
      });
    this.l2RequestsReceived = l2Counter('metallb_layer2_requests_received', 'Number of layer2 requests received for owned IPs', 'requestsReceived');
    this.l2ResponsesSent = l2Counter('metallb_layer2_responses_sent', 'Number of layer2 responses sent for owned IPs', 'responsesSent');
    this.l2GratuitousSent = l2Counter('metallb_layer2_gratuitous_sent', 'Number of gratuitous layer2 packets sent for owned IPs', 'gratuitousSent');
    const members = (): number | undefined => this.membersSource?.();
    new Gauge({
      name: 'metallb_speaker_memberlist_members',
      help: 'Speakers this node sees alive through memberlist (itself included); 0 while memberlist is disabled.',
      registers: r,
      collect() {
        const n = members();
        this.set(n ?? 0);
      },
    });
    // The failure detector's own figures, from the gossip thread at scrape time: how close its verdicts come to the
    // evidence they rest on (a SYN-ACK answered near or after the reach timeout is a false accusation in waiting).
    // A scrape the gossip thread could not answer in time shows the last figures: a counter that drops reads as a reset.
    // The four collectors below share one round trip to the gossip thread per scrape (a scrape starts them all in one
    // turn, before the first read resolves).
    let last: Record<string, number> = {};
    let inFlight: Promise<Record<string, number>> | undefined;
    const detector = (): Promise<Record<string, number>> =>
      (inFlight ??= (async () => {
        try {
          const f = await this.detectorSource?.().catch(() => undefined);
          if (f) last = f;
          return last;
        } finally {
          inFlight = undefined;
        }
      })());
    new Counter({
      name: 'metallb_speaker_memberlist_reach_checks_total',
      help: 'Reachability checks of silent members (a TCP connect to their gossip port) by the fast failure detector, by result.',
      labelNames: ['result'],
      registers: r,
      async collect() {
        const f = await detector();
        this.reset();
        this.inc({ result: 'started' }, f['reach_checks'] ?? 0);
        for (const result of ['connected', 'unreachable', 'refused', 'inconclusive', 'answered_late'] as const) this.inc({ result }, f[`reach_${result}`] ?? 0);
      },
    });
    new Counter({
      name: 'metallb_speaker_memberlist_suspicions_total',
      help: 'Members this speaker suspected, by detector path: fast (silent and its host unreachable) or slow (silent past its adaptive tolerance).',
      labelNames: ['path'],
      registers: r,
      async collect() {
        const f = await detector();
        this.reset();
        this.inc({ path: 'fast' }, f['fast_suspicions'] ?? 0);
        this.inc({ path: 'slow' }, f['probes_failed'] ?? 0);
      },
    });
    const quantiles = (name: string, help: string, key: string): Gauge<'quantile'> =>
      new Gauge({
        name,
        help,
        labelNames: ['quantile'],
        registers: r,
        async collect() {
          const f = await detector();
          this.reset();
          for (const [quantile, suffix] of [['0.5', 'p50'], ['0.99', 'p99'], ['1', 'max']] as const) {
            const v = f[`${key}_${suffix}_ms`];
            if (v !== undefined) this.set({ quantile }, v / 1000);
          }
        },
      });
    quantiles('metallb_speaker_memberlist_reach_connect_seconds', 'Time from a reachability check to the member host\'s SYN-ACK, as seen by the gossip thread.', 'reach_connect');
    quantiles('metallb_speaker_memberlist_loop_delay_seconds', 'Event-loop delay of the gossip thread.', 'loop_delay');
    this.memberlistEvents = new Counter({
      name: 'metallb_speaker_memberlist_events_total',
      help: 'Memberlist membership changes seen by this speaker, by kind (join, leave, update).',
      labelNames: ['event'],
      registers: r,
    });
  }

  /** The layer 2 packet counters are read from `source` (the announcer's, per address) at every scrape. */
  readL2CountersFrom(source: () => Iterable<[string, L2PacketCounts]>): void {
    this.l2Source = source;
  }

  /** The failure detector's figures are read from `source` at every scrape. */
  readDetectorFrom(source: () => Promise<Record<string, number> | undefined>): void {
    this.detectorSource = source;
  }

  /** The member count is read from `source` at every scrape. */
  readMembersFrom(source: () => number | undefined): void {
    this.membersSource = source;
  }
}
