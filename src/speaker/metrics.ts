// The speaker's Prometheus metrics: MetalLB's names (reference f.1) plus memberlist figures of our own.
import { Counter, Gauge } from 'prom-client';
import { RuntimeMetrics } from '../controller/runtime-metrics.js';

export class SpeakerMetrics extends RuntimeMetrics {
  readonly announced: Gauge<'service' | 'protocol' | 'node' | 'ip'>;
  readonly l2RequestsReceived: Counter<'ip'>;
  readonly l2ResponsesSent: Counter<'ip'>;
  readonly l2GratuitousSent: Counter<'ip'>;
  readonly memberlistEvents: Counter<'event'>;
  private membersSource: (() => number | undefined) | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    super(opts);
    const r = [this.registry];
    this.announced = new Gauge({
      name: 'metallb_speaker_announced',
      help: 'Services being announced from this node. This is desired state, it does not guarantee that the routing protocols have converged.',
      labelNames: ['service', 'protocol', 'node', 'ip'],
      registers: r,
    });
    this.l2RequestsReceived = new Counter({ name: 'metallb_layer2_requests_received', help: 'Number of layer2 requests received for owned IPs', labelNames: ['ip'], registers: r });
    this.l2ResponsesSent = new Counter({ name: 'metallb_layer2_responses_sent', help: 'Number of layer2 responses sent for owned IPs', labelNames: ['ip'], registers: r });
    this.l2GratuitousSent = new Counter({ name: 'metallb_layer2_gratuitous_sent', help: 'Number of gratuitous layer2 packets sent for owned IPs', labelNames: ['ip'], registers: r });
    const members = (): number | undefined => this.membersSource?.();
    new Gauge({
      name: 'metallb_speaker_memberlist_members',
      help: 'Speakers this node sees alive through memberlist (itself included); absent while memberlist is disabled.',
      registers: r,
      collect() {
        const n = members();
        if (n === undefined) this.reset();
        else this.set(n);
      },
    });
    this.memberlistEvents = new Counter({
      name: 'metallb_speaker_memberlist_events_total',
      help: 'Memberlist membership changes seen by this speaker, by kind (join, leave, update).',
      labelNames: ['event'],
      registers: r,
    });
  }

  /** The member count is read from `source` at every scrape. */
  readMembersFrom(source: () => number | undefined): void {
    this.membersSource = source;
  }
}
