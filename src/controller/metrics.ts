// The controller's Prometheus metrics, with MetalLB's names (reference f.1), in a registry of their own.
import { Gauge } from 'prom-client';
import type { PoolStats } from '../allocator/index.js';
import { RuntimeMetrics } from './runtime-metrics.js';

export class ControllerMetrics extends RuntimeMetrics {
  readonly addressesTotal: Gauge<'pool'>;
  readonly ipv4AddressesTotal: Gauge<'pool'>;
  readonly ipv6AddressesTotal: Gauge<'pool'>;
  readonly addressesInUse: Gauge<'pool'>;
  readonly ipv4AddressesInUse: Gauge<'pool'>;
  readonly ipv6AddressesInUse: Gauge<'pool'>;
  readonly servicesAllocated: Gauge<'pool'>;
  readonly isLeader: Gauge;
  private readonly knownPools = new Set<string>();
  private poolStatsSource: (() => readonly PoolStats[]) | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    super(opts);
    const r = [this.registry];
    const poolGauge = (name: string, help: string, collect?: () => void): Gauge<'pool'> =>
      new Gauge({ name, help, labelNames: ['pool'], registers: r, ...(collect ? { collect } : {}) });
    // The pool gauges are read from the allocator at scrape time (the first pool gauge's collect fills them all), so
    // they can never lag behind the Service status the controller has written.
    this.addressesTotal = poolGauge('metallb_allocator_addresses_total', 'Number of usable IP addresses, per pool', () => {
      if (this.poolStatsSource) this.setPoolStats(this.poolStatsSource());
    });
    this.ipv4AddressesTotal = poolGauge('metallb_allocator_ipv4_addresses_total', 'Number of usable IPv4 addresses, per pool');
    this.ipv6AddressesTotal = poolGauge('metallb_allocator_ipv6_addresses_total', 'Number of usable IPv6 addresses, per pool');
    this.addressesInUse = poolGauge('metallb_allocator_addresses_in_use_total', 'Number of IP addresses in use, per pool');
    this.ipv4AddressesInUse = poolGauge('metallb_allocator_ipv4_addresses_in_use_total', 'Number of IPv4 addresses in use, per pool');
    this.ipv6AddressesInUse = poolGauge('metallb_allocator_ipv6_addresses_in_use_total', 'Number of IPv6 addresses in use, per pool');
    this.servicesAllocated = poolGauge('metallb_allocator_services_allocated_total', 'Number of services allocated, per pool (registered by MetalLB, never set)');
    this.isLeader = new Gauge({ name: 'metallb_controller_leader_bool', help: '1 if this controller instance is the leader (or leader election is off).', registers: r });
  }

  /** The pool gauges are computed from `source` at every scrape. */
  readPoolStatsFrom(source: () => readonly PoolStats[]): void {
    this.poolStatsSource = source;
  }

  /** Sets the per-pool gauges from the allocator; pools that disappeared lose their series. */
  setPoolStats(stats: readonly PoolStats[]): void {
    const seen = new Set<string>();
    const num = (b: bigint): number => Number(b);
    for (const s of stats) {
      seen.add(s.pool);
      const l = { pool: s.pool };
      this.ipv4AddressesTotal.set(l, num(s.ipv4Total));
      this.ipv6AddressesTotal.set(l, num(s.ipv6Total));
      this.addressesTotal.set(l, num(s.ipv4Total + s.ipv6Total));
      this.ipv4AddressesInUse.set(l, s.ipv4InUse);
      this.ipv6AddressesInUse.set(l, s.ipv6InUse);
      this.addressesInUse.set(l, s.ipv4InUse + s.ipv6InUse);
    }
    for (const p of this.knownPools) {
      if (seen.has(p)) continue;
      for (const g of [this.addressesTotal, this.ipv4AddressesTotal, this.ipv6AddressesTotal, this.addressesInUse, this.ipv4AddressesInUse, this.ipv6AddressesInUse]) {
        g.remove({ pool: p });
      }
    }
    this.knownPools.clear();
    for (const p of seen) this.knownPools.add(p);
  }

}
