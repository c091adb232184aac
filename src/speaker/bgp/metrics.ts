// MetalLB's native-mode BGP metrics (reference f.1), read from the sessions when Prometheus scrapes.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BgpSpeaker } from './speaker.js';

export function registerBgpMetrics(registry: Registry, speaker: BgpSpeaker): void {
  const registers = [registry];
  const status = (): ReturnType<BgpSpeaker['status']> => speaker.status();
  new Gauge({
    name: 'metallb_bgp_session_up',
    help: 'BGP session state (1 is up, 0 is down)',
    labelNames: ['peer'],
    registers,
    collect() {
      this.reset();
      for (const s of status()) this.set({ peer: s.peer }, s.stats.state === 'Established' ? 1 : 0);
    },
  });
  new Counter({
    name: 'metallb_bgp_updates_total',
    help: 'Number of BGP UPDATE messages sent',
    labelNames: ['peer'],
    registers,
    collect() {
      this.reset();
      // The session keeps the count; the counter mirrors it (a session replaced by a config change starts again at 0).
      for (const s of status()) this.inc({ peer: s.peer }, s.stats.updatesSent);
    },
  });
  new Gauge({
    name: 'metallb_bgp_announced_prefixes_total',
    help: 'Number of prefixes currently being advertised on the BGP session',
    labelNames: ['peer'],
    registers,
    collect() {
      this.reset();
      for (const s of status()) this.set({ peer: s.peer }, s.stats.announced);
    },
  });
  new Gauge({
    name: 'metallb_bgp_pending_prefixes_total',
    help: 'Number of prefixes that should be advertised on the BGP session but are not yet',
    labelNames: ['peer'],
    registers,
    collect() {
      this.reset();
      for (const s of status()) this.set({ peer: s.peer }, s.stats.pending);
    },
  });
}
