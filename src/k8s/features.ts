// Features that depend on what the ServiceAccount may do (pool status counters, ConfigurationState, events, leader
// election, ...). A feature whose permission is missing is turned off with ONE warning naming the permission and the
// consequence, and the gauge `metallb_<component>_feature_enabled{feature}` drops to 0, instead of a crash loop or a
// log line per retry. A feature turned off by a refusal at run time (roles changed after start) goes the same way.
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { errorText } from './client.js';
import { isForbidden } from './access.js';

/** One feature's switch, handed to the module that implements it. */
export interface FeatureSwitch {
  readonly name: string;
  readonly enabled: boolean;
  /** Turns the feature off (logged once). */
  disable(why: string, fields?: Record<string, unknown>): void;
  /** For a failed request: a 403 turns the feature off and returns true; anything else returns false. */
  offIfForbidden(err: unknown): boolean;
  /** Turns the feature back on (a request that needs it succeeded again). */
  enable(): void;
}

export interface FeatureGatesOptions<F extends string> {
  /** `controller` or `speaker`: the metric is `metallb_<component>_feature_enabled`. */
  component: string;
  registry: Registry;
  log: Logger;
  /** Every feature, with what is lost when it is off (ends the warning). */
  features: Record<F, string>;
}

export class FeatureGates<F extends string = string> {
  private readonly state = new Map<F, boolean>();
  private readonly warned = new Set<F>();
  private readonly gauge: Gauge<'feature'>;
  private readonly log: Logger;
  private readonly consequence: Record<F, string>;

  constructor(opts: FeatureGatesOptions<F>) {
    this.log = opts.log;
    this.consequence = opts.features;
    this.gauge = new Gauge({
      name: `metallb_${opts.component}_feature_enabled`,
      help: `1 when a ${opts.component} feature runs, 0 when it is turned off because the ServiceAccount may not do what it needs (the warning in the log names the permission)`,
      labelNames: ['feature'],
      registers: [opts.registry],
    });
    for (const f of Object.keys(opts.features) as F[]) {
      this.state.set(f, true);
      this.gauge.set({ feature: f }, 1);
    }
  }

  enabled(f: F): boolean {
    return this.state.get(f) ?? false;
  }

  /** Features currently off. */
  disabled(): F[] {
    return [...this.state].filter(([, on]) => !on).map(([f]) => f);
  }

  disable(f: F, why: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled(f)) return;
    this.state.set(f, false);
    this.gauge.set({ feature: f }, 0);
    // A feature that comes and goes (roles edited back and forth) warns the first time only.
    const level = this.warned.has(f) ? 'debug' : 'warn';
    this.warned.add(f);
    this.log[level]({ feature: f, ...fields }, `${f} turned off: ${why}; ${this.consequence[f]}`);
  }

  /** A feature this configuration does not use (e.g. leader election without --leader-elect): no series. */
  notUsed(f: F): void {
    this.state.set(f, false);
    this.gauge.remove({ feature: f });
  }

  enable(f: F): void {
    if (this.enabled(f)) return;
    this.state.set(f, true);
    this.gauge.set({ feature: f }, 1);
    this.log.info({ feature: f }, `${f} turned on again: the API server accepted its request`);
  }

  switch(f: F): FeatureSwitch {
    const gates = this as FeatureGates<F>;
    return {
      name: f,
      get enabled() {
        return gates.enabled(f);
      },
      disable: (why, fields) => gates.disable(f, why, fields),
      offIfForbidden: (err) => {
        if (!isForbidden(err)) return false;
        gates.disable(f, 'the API server refused its request', { err: errorText(err) });
        return true;
      },
      enable: () => gates.enable(f),
    };
  }
}

/** A switch that is always on (tests, modules used without gates). */
export const alwaysOn = (name: string): FeatureSwitch => ({
  name,
  enabled: true,
  disable: () => undefined,
  offIfForbidden: () => false,
  enable: () => undefined,
});
