// MetalLB's native-mode BGP metrics (reference f.1), read from the sessions when Prometheus scrapes; and the
// message counters and BFD metrics MetalLB exports in its FRR modes (from its FRR sidecar), since our native speaker
// has BFD too. BGP series are labelled `peer` = `addr:port` (native mode), BFD series `peer` = the address (FRR mode);
// series of a peer in a VRF also carry `vrf`.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BfdStatus } from '../bfd/engine.js';
import type { BgpSpeaker } from './speaker.js';

type PeerRow = ReturnType<BgpSpeaker['status']>[number];
/** A peer in a VRF gets a `vrf` label (as MetalLB's FRR mode has); others keep the native mode's `peer` alone. */
const labelsOf = (s: PeerRow): { peer: string; vrf?: string } => (s.config.vrf ? { peer: s.peer, vrf: s.config.vrf } : { peer: s.peer });

export function registerBgpMetrics(registry: Registry, speaker: BgpSpeaker): void {
  const registers = [registry];
  const status = (): ReturnType<BgpSpeaker['status']> => speaker.status();
  new Gauge({
    name: 'metallb_bgp_session_up',
    help: 'BGP session state (1 is up, 0 is down)',
    labelNames: ['peer', 'vrf'],
    registers,
    collect() {
      this.reset();
      for (const s of status()) this.set(labelsOf(s), s.stats.state === 'Established' ? 1 : 0);
    },
  });
  new Counter({
    name: 'metallb_bgp_updates_total',
    help: 'Number of BGP UPDATE messages sent',
    labelNames: ['peer', 'vrf'],
    registers,
    collect() {
      this.reset();
      // The session keeps the count; the counter mirrors it (a session replaced by a config change starts again at 0).
      for (const s of status()) this.inc(labelsOf(s), s.stats.updatesSent);
    },
  });
  new Gauge({
    name: 'metallb_bgp_announced_prefixes_total',
    help: 'Number of prefixes currently being advertised on the BGP session',
    labelNames: ['peer', 'vrf'],
    registers,
    collect() {
      this.reset();
      for (const s of status()) this.set(labelsOf(s), s.stats.announced);
    },
  });
  const counter = (name: string, help: string, value: (s: ReturnType<BgpSpeaker['status']>[number]['stats']) => number): void => {
    new Counter({
      name,
      help,
      labelNames: ['peer', 'vrf'],
      registers,
      collect() {
        this.reset();
        for (const s of status()) this.inc(labelsOf(s), value(s.stats));
      },
    });
  };
  counter('metallb_bgp_opens_sent', 'Number of BGP OPEN messages sent', (s) => s.opensSent);
  counter('metallb_bgp_opens_received', 'Number of BGP OPEN messages received', (s) => s.opensReceived);
  counter('metallb_bgp_notifications_sent', 'Number of BGP NOTIFICATION messages sent', (s) => s.notificationsSent);
  counter('metallb_bgp_updates_total_received', 'Number of BGP UPDATE messages received', (s) => s.updatesReceived);
  counter('metallb_bgp_keepalives_sent', 'Number of BGP KEEPALIVE messages sent', (s) => s.keepalivesSent);
  counter('metallb_bgp_keepalives_received', 'Number of BGP KEEPALIVE messages received', (s) => s.keepalivesReceived);
  // A worker that does not answer must not hold the scrape: no BFD series then.
  const bfdNow = (): Promise<BfdStatus[]> => Promise.race([
    speaker.bfdStatus().catch(() => []),
    new Promise<BfdStatus[]>((resolve) => setTimeout(() => resolve([]), 1000).unref()),
  ]);
  const bfdMetric = (name: string, help: string, value: (b: BfdStatus) => number, kind: 'gauge' | 'counter'): void => {
    const common = {
      name,
      help,
      labelNames: ['peer', 'vrf'] as const,
      registers,
    };
    // BFD runs in a worker: its status is asked for when Prometheus scrapes.
    if (kind === 'gauge') {
      new Gauge({ ...common, async collect() {
        this.reset();
        for (const b of await bfdNow()) this.set((b.vrf ? { peer: b.peerAddress, vrf: b.vrf } : { peer: b.peerAddress }), value(b));
      } });
    } else {
      new Counter({ ...common, async collect() {
        this.reset();
        for (const b of await bfdNow()) this.inc((b.vrf ? { peer: b.peerAddress, vrf: b.vrf } : { peer: b.peerAddress }), value(b));
      } });
    }
  };
  bfdMetric('metallb_bfd_session_up', 'BFD session state (1 is up, 0 is down)', (b) => (b.state === 'Up' ? 1 : 0), 'gauge');
  bfdMetric('metallb_bfd_control_packet_input', 'Number of received BFD control packets', (b) => b.packetsReceived, 'counter');
  bfdMetric('metallb_bfd_control_packet_output', 'Number of sent BFD control packets', (b) => b.packetsSent, 'counter');
  bfdMetric('metallb_bfd_session_up_events', 'Number of BFD session up events', (b) => b.upEvents, 'counter');
  bfdMetric('metallb_bfd_session_down_events', 'Number of BFD session down events', (b) => b.downEvents, 'counter');
  new Gauge({
    name: 'metallb_bgp_pending_prefixes_total',
    help: 'Number of prefixes that should be advertised on the BGP session but are not yet',
    labelNames: ['peer', 'vrf'],
    registers,
    collect() {
      this.reset();
      for (const s of status()) this.set(labelsOf(s), s.stats.pending);
    },
  });
}
