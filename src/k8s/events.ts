// core/v1 Event recorder. Events are sent in the background (a bounded queue, a few requests at a time) so that
// reconciles never wait for them. A repeat of the same event on the same object bumps `count` and `lastTimestamp`
// of the existing Event, as client-go's correlator does, instead of creating a new one.
import type { Logger } from '../log.js';
import type { KubeObject } from './types.js';
import { errorText, isNotFound, type KubeClient } from './client.js';
import type { FeatureSwitch } from './features.js';
import { objectPath, collectionPath, R } from './resources.js';

export type EventType = 'Normal' | 'Warning';

export interface EventSink {
  record(obj: KubeObject, type: EventType, reason: string, message: string): void;
}

export interface EventRecorderOptions {
  /** `source.component`, e.g. `metallb-controller`. */
  component: string;
  /** `source.host` / `reportingInstance`. */
  host?: string;
  /** Events waiting beyond this are dropped (logged at debug). Default 10000. */
  maxQueue?: number;
  /** Requests in flight. Default 4. */
  concurrency?: number;
  /** Remembered events for deduplication. Default 4096. */
  maxRemembered?: number;
  /** The `events` feature: events are dropped while it is off, and a refused create or patch turns it off. */
  feature?: FeatureSwitch;
}

interface Remembered {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

interface Pending {
  dedupeKey: string;
  obj: KubeObject;
  type: EventType;
  reason: string;
  message: string;
  /** Occurrences not yet sent. */
  times: number;
}

// Kubernetes truncates event messages at 1 KiB.
const MAX_MESSAGE = 1024;
let seq = 0;

export class EventRecorder implements EventSink {
  private readonly remembered = new Map<string, Remembered>();
  private readonly queue: Pending[] = [];
  private readonly queued = new Map<string, Pending>();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly component: string;
  private dropped = 0;
  private failures = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly opts: EventRecorderOptions,
  ) {
    this.component = opts.component;
  }

  record(obj: KubeObject, type: EventType, reason: string, message: string): void {
    if (this.opts.feature && !this.opts.feature.enabled) return;
    const md = obj.metadata ?? {};
    const msg = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const dedupeKey = `${md.uid ?? ''}|${obj.kind ?? ''}|${md.namespace ?? ''}/${md.name ?? ''}|${type}|${reason}|${msg}`;
    const q = this.queued.get(dedupeKey);
    if (q) {
      q.times++;
      q.obj = obj;
      return;
    }
    if (this.queue.length >= (this.opts.maxQueue ?? 10_000)) {
      if (this.dropped++ % 1000 === 0) this.log.debug({ reason, dropped: this.dropped }, 'event queue full, dropping events');
      return;
    }
    const p: Pending = { dedupeKey, obj, type, reason, message: msg, times: 1 };
    this.queue.push(p);
    this.queued.set(dedupeKey, p);
    this.pump();
  }

  /** Resolves when every queued event has been sent (or failed). */
  flush(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < (this.opts.concurrency ?? 4) && this.queue.length > 0) {
      const p = this.queue.shift() as Pending;
      this.queued.delete(p.dedupeKey);
      this.inFlight++;
      void this.send(p).finally(() => {
        this.inFlight--;
        this.pump();
        if (this.queue.length === 0 && this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async send(p: Pending): Promise<void> {
    const md = p.obj.metadata ?? {};
    const namespace = md.namespace || 'default';
    const now = new Date().toISOString();
    const prev = this.remembered.get(p.dedupeKey);
    try {
      if (prev) {
        try {
          prev.count += p.times;
          await this.client.mergePatch(objectPath(R.events, prev.namespace, prev.name), { count: prev.count, lastTimestamp: now });
          this.remember(p.dedupeKey, prev);
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
          this.remembered.delete(p.dedupeKey);
        }
      }
      const name = `${md.name ?? 'object'}.${(BigInt(Date.now()) * 1_000_000n + BigInt(seq++ % 1_000_000)).toString(16)}`;
      const ev = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          kind: p.obj.kind,
          apiVersion: p.obj.apiVersion,
          name: md.name,
          namespace: md.namespace,
          uid: md.uid,
          resourceVersion: md.resourceVersion,
        },
        reason: p.reason,
        message: p.message,
        type: p.type,
        source: { component: this.component, ...(this.opts.host ? { host: this.opts.host } : {}) },
        firstTimestamp: now,
        lastTimestamp: now,
        count: p.times,
        reportingComponent: this.component,
        reportingInstance: this.opts.host ?? '',
      };
      await this.client.post(collectionPath(R.events, namespace), ev);
      this.remember(p.dedupeKey, { name, namespace, count: p.times, firstTimestamp: now });
    } catch (err) {
      if (this.opts.feature?.offIfForbidden(err)) return;
      const level = this.failures++ < 10 ? 'warn' : 'debug';
      this.log[level]({ reason: p.reason, object: `${md.namespace ?? ''}/${md.name ?? ''}`, err: errorText(err) }, 'could not record event');
    }
  }

  private remember(key: string, r: Remembered): void {
    this.remembered.delete(key);
    this.remembered.set(key, r);
    const max = this.opts.maxRemembered ?? 4096;
    while (this.remembered.size > max) {
      const oldest = this.remembered.keys().next().value as string;
      this.remembered.delete(oldest);
    }
  }
}
