// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: a lease is free when its holder is
// empty or when its record has not changed for leaseDuration as observed on *our* clock (no cross-node clock
// comparisons); the leader renews every retryPeriod and gives up when it could not renew for renewDeadline; on a
// clean stop the leader releases the lease (empty holder, 1 s duration) so a standby takes over at once.
import type { Logger } from '../log.js';
import { errorText, isAlreadyExists, isConflict, isNotFound, type KubeClient } from './client.js';
import { isForbidden } from './access.js';
import { LoopControl } from './loop.js';
import { collectionPath, objectPath, R } from './resources.js';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** Where the lease lives; `update` rejects (any error) when the object changed since it was read. */
export interface LeaseStore {
  get(): Promise<LeaseObject | undefined>;
  create(spec: LeaseSpec): Promise<LeaseObject>;
  update(obj: LeaseObject): Promise<LeaseObject>;
}

export class KubeLeaseStore implements LeaseStore {
  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
    private readonly name: string,
  ) {}
  async get(): Promise<LeaseObject | undefined> {
    try {
      return await this.client.get<LeaseObject>(objectPath(R.leases, this.namespace, this.name), { timeoutMs: 5000 });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
  create(spec: LeaseSpec): Promise<LeaseObject> {
    return this.client.post<LeaseObject>(
      collectionPath(R.leases, this.namespace),
      { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace }, spec },
      { timeoutMs: 5000 },
    );
  }
  update(obj: LeaseObject): Promise<LeaseObject> {
    return this.client.put<LeaseObject>(objectPath(R.leases, this.namespace, this.name), obj, { timeoutMs: 5000 });
  }
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
export const microTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export interface LeaderElectorOptions {
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStartedLeading(): void;
  /** Called once when leadership is lost (not on a clean `stop`). */
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
  /** The API server refused a Lease request (403); without it, refusals are logged and retried like other errors. */
  onForbidden?(err: unknown): void;
  log: Logger;
  now?: () => number;
}

export class LeaderElector {
  private leader = false;
  private readonly ctl = new LoopControl();
  private observedSpec = '';
  private observedTime = 0;
  private observedHolder = '';
  private lastRenew = 0;
  private readonly now: () => number;

  constructor(
    private readonly store: LeaseStore,
    private readonly opts: LeaderElectorOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    this.ctl.start(() => this.run());
  }

  /** Stops campaigning; a leader releases the lease. */
  async stop(): Promise<void> {
    await this.ctl.stop();
    if (this.leader) {
      this.leader = false;
      await this.release();
    }
  }

  private async run(): Promise<void> {
    const { log, retryPeriodMs, renewDeadlineMs } = this.opts;
    while (this.ctl.running && !this.leader) {
      if (await this.tryAcquireOrRenew()) {
        this.leader = true;
        this.lastRenew = this.now();
        log.info({ identity: this.opts.identity }, 'became leader');
        this.opts.onStartedLeading();
        break;
      }
      await this.ctl.sleep(retryPeriodMs * (1 + Math.random() * 0.2));
    }
    while (this.ctl.running && this.leader) {
      await this.ctl.sleep(retryPeriodMs);
      if (!this.ctl.running) break;
      if (await this.tryAcquireOrRenew()) {
        this.lastRenew = this.now();
      } else if (this.now() - this.lastRenew > renewDeadlineMs) {
        this.leader = false;
        log.error({ identity: this.opts.identity }, 'leader election lost: could not renew the lease in time');
        this.opts.onStoppedLeading();
        return;
      }
    }
  }

  /** One attempt; true when we hold the lease afterwards. Exported for tests through the class. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { identity, leaseDurationMs, log } = this.opts;
    const now = this.now();
    const leaseSeconds = Math.max(1, Math.round(leaseDurationMs / 1000));
    let obj: LeaseObject | undefined;
    try {
      obj = await this.store.get();
    } catch (err) {
      if (isForbidden(err) && this.opts.onForbidden) {
        this.opts.onForbidden(err);
        return false;
      }
      log.warn({ err: errorText(err) }, 'could not read the leader lease');
      return false;
    }
    if (!obj) {
      try {
        await this.store.create({
          holderIdentity: identity,
          leaseDurationSeconds: leaseSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        });
        this.observe({ holderIdentity: identity }, now);
        return true;
      } catch (err) {
        if (isForbidden(err) && this.opts.onForbidden) {
          this.opts.onForbidden(err);
          return false;
        }
        if (!isAlreadyExists(err) && !isConflict(err)) log.warn({ err: errorText(err) }, 'could not create the leader lease');
        return false;
      }
    }
    const spec = obj.spec ?? {};
    this.observe(spec, now);
    const holder = spec.holderIdentity ?? '';
    const duration = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
    if (holder !== '' && holder !== identity && this.observedTime + duration > now) return false;
    const mine = holder === identity;
    const next: LeaseObject = {
      ...obj,
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: leaseSeconds,
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      const updated = await this.store.update(next);
      this.observe(updated.spec ?? next.spec ?? {}, now);
      return true;
    } catch (err) {
      if (isForbidden(err) && this.opts.onForbidden) {
        this.opts.onForbidden(err);
        return false;
      }
      if (!isConflict(err)) log.warn({ err: errorText(err) }, 'could not update the leader lease');
      return false;
    }
  }

  private observe(spec: LeaseSpec, now: number): void {
    const text = JSON.stringify([spec.holderIdentity ?? '', spec.renewTime ?? '', spec.leaseDurationSeconds ?? 0]);
    if (text !== this.observedSpec) {
      this.observedSpec = text;
      this.observedTime = now;
      const holder = spec.holderIdentity ?? '';
      if (holder !== this.observedHolder) {
        this.observedHolder = holder;
        if (holder) this.opts.onNewLeader?.(holder);
      }
    }
  }

  private async release(): Promise<void> {
    try {
      const obj = await this.store.get();
      if (!obj || obj.spec?.holderIdentity !== this.opts.identity) return;
      const now = this.now();
      await this.store.update({
        ...obj,
        spec: {
          leaseDurationSeconds: 1,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: obj.spec?.leaseTransitions ?? 0,
        },
      });
      this.opts.log.info({ identity: this.opts.identity }, 'released the leader lease');
    } catch (err) {
      this.opts.log.warn({ err: errorText(err) }, 'could not release the leader lease');
    }
  }
}
