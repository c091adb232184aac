// Debounced IPAddressPool `.status` counters (assignedIPv4/assignedIPv6/availableIPv4/availableIPv6). `trigger()` is
// cheap and may be called after every change; the work happens at most once per debounce interval, and a pool's
// status is written only when its counters differ from what the cache shows. (The pool gauges are read from the
// allocator at scrape time: see ControllerMetrics.readPoolStatsFrom.)
import type { PoolStats } from '../allocator/index.js';
import type { Logger } from '../log.js';
import type { KubeObject } from '../k8s/types.js';
import { errorText, isConflict, isNotFound } from '../k8s/client.js';
import type { FeatureSwitch } from '../k8s/features.js';

export interface PoolStatus {
  assignedIPv4: bigint;
  assignedIPv6: bigint;
  availableIPv4: bigint;
  availableIPv6: bigint;
}

const INT64_MAX = (1n << 63n) - 1n;
const clamp = (v: bigint): bigint => (v < 0n ? 0n : v > INT64_MAX ? INT64_MAX : v);

export function statusFromStats(s: PoolStats): PoolStatus {
  return {
    assignedIPv4: BigInt(s.ipv4InUse),
    assignedIPv6: BigInt(s.ipv6InUse),
    availableIPv4: clamp(s.ipv4Total - BigInt(s.ipv4InUse)),
    availableIPv6: clamp(s.ipv6Total - BigInt(s.ipv6InUse)),
  };
}

function sameStatus(obj: KubeObject & { status?: Record<string, unknown> }, st: PoolStatus): boolean {
  const cur = obj.status ?? {};
  return (Object.keys(st) as (keyof PoolStatus)[]).every((k) => String(cur[k] ?? '') === st[k].toString());
}

export interface PoolStatusDeps {
  stats(): PoolStats[];
  /** The IPAddressPool objects currently cached (legacy ConfigMap pools have no object and get no status). */
  poolObjects(): (KubeObject & { status?: Record<string, unknown> })[];
  writeStatus(pool: KubeObject, status: PoolStatus): Promise<void>;
  canWrite?(): boolean;
  /** The `pool-status` feature: nothing is written while it is off; a refused write turns it off. */
  feature?: FeatureSwitch;
  log: Logger;
  debounceMs?: number;
}

export class PoolStatusUpdater {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly d: PoolStatusDeps) {}

  trigger(delayMs?: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, delayMs ?? this.d.debounceMs ?? 500);
  }

  /** Runs an update now and waits for it. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.run();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      await this.running;
      return;
    }
    this.running = this.update();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
    if (this.again) {
      this.again = false;
      this.trigger();
    }
  }

  private async update(): Promise<void> {
    let stats: PoolStats[];
    try {
      stats = this.d.stats();
    } catch (err) {
      this.d.log.debug({ err: errorText(err) }, 'pool stats unavailable');
      return;
    }
    if (this.d.canWrite && !this.d.canWrite()) return;
    if (this.d.feature && !this.d.feature.enabled) return;
    const byName = new Map(stats.map((s) => [s.pool, s]));
    let failed = false;
    let conflicted = false;
    for (const obj of this.d.poolObjects()) {
      const s = byName.get(obj.metadata?.name ?? '');
      if (!s) continue;
      const st = statusFromStats(s);
      if (sameStatus(obj, st)) continue;
      try {
        await this.d.writeStatus(obj, st);
      } catch (err) {
        if (isNotFound(err)) continue;
        if (this.d.feature?.offIfForbidden(err)) return;
        if (isConflict(err)) {
          // Our copy of the pool is older than the server's (an edit): the watch brings the new one.
          conflicted = true;
          continue;
        }
        this.d.log.warn({ pool: obj.metadata?.name, err: errorText(err) }, 'could not update IPAddressPool status');
        failed = true;
      }
    }
    if (failed) this.trigger(5000);
    else if (conflicted) this.trigger(1000);
  }
}
