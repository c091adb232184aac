// BGP mode inside `metallb speaker`: the sessions (BgpSpeaker), MetalLB's bgpController (BgpHandler, a protocol of
// the pipeline), MetalLB's native-mode metrics, and the ServiceBGPStatus objects, written where the CRD is served
// and RBAC allows it (probed once, when a Service first goes to a peer; a 403 later turns them off with one warning). Stopping closes every
// session with a Cease, so the routers withdraw this node's routes at once instead of after the hold time.
import { isForbidden } from '../../k8s/access.js';
import { errorText } from '../../k8s/client.js';
import { Informer } from '../../k8s/informers.js';
import { R } from '../../k8s/resources.js';
import type { Logger } from '../../log.js';
import { WorkQueue } from '../../controller/workqueue.js';
import { LABEL_NODE, statusServiceKey } from '../status-objects.js';
import type { SpeakerPart, SpeakerPartContext } from '../part.js';
import { BgpHandler } from './handler.js';
import { registerBgpMetrics } from './metrics.js';
import { BgpSpeaker, type BgpSpeakerOptions } from './speaker.js';
import { BgpStatusWriter, type ServiceBGPStatus } from './status.js';
import { statusObjectForSpeaker } from '../cache-transforms.js';

export interface BgpPartOptions {
  nodeName: string;
  log: Logger;
  ignoreExcludeLB: boolean;
  /** Write ServiceBGPStatus objects where possible (default true). */
  status?: boolean;
  /** Passed to the BgpSpeaker (tests: BFD inline, timers). */
  speaker?: Omit<BgpSpeakerOptions, 'nodeName' | 'logger'>;
}

export class BgpPart implements SpeakerPart {
  readonly speaker: BgpSpeaker;
  readonly handler: BgpHandler;
  private ctx: SpeakerPartContext | undefined;
  private informer: Informer<ServiceBGPStatus> | undefined;
  private queue: WorkQueue<string> | undefined;
  private writer: BgpStatusWriter | undefined;
  private statusEnabled = false;
  private stopped = false;
  private activation: Promise<void> | undefined;
  /** Services whose status changed before the status objects were set up. */
  private readonly pending = new Set<string>();

  constructor(private readonly o: BgpPartOptions) {
    const log = o.log.child({ component: 'bgp' });
    // After a restart, peers holding our routes as stale drop those we do not send before End-of-RIB: it waits until
    // every Service has been decided once (start()).
    this.speaker = new BgpSpeaker({ holdEndOfRib: true, ...o.speaker, nodeName: o.nodeName, logger: log });
    this.handler = new BgpHandler({
      myNode: o.nodeName,
      speaker: this.speaker,
      ignoreExcludeLB: o.ignoreExcludeLB,
      log,
      onStatusChange: (key) => this.enqueue(key),
    });
  }

  async start(ctx: SpeakerPartContext): Promise<void> {
    this.ctx = ctx;
    registerBgpMetrics(ctx.metrics.registry, this.speaker);
    // The handler hands the decided routes to the sessions on the next turn of the event loop; this comes after it.
    void ctx.firstPass.then(() => setImmediate(() => this.speaker.setRibComplete()));
  }

  /**
   * Status objects are set up when a Service first goes to a BGP peer, not at start: a speaker that only does
   * layer 2 (under an older MetalLB's RBAC, without the CRD) never asks for them and never warns about them.
   */
  private enqueue(key: string): void {
    if (this.stopped || !this.ctx || this.o.status === false) return;
    if (this.queue) {
      if (this.statusEnabled) this.queue.add(key);
      return;
    }
    this.pending.add(key);
    this.activation ??= this.activateStatus(this.ctx).finally(() => this.pending.clear());
  }

  private async activateStatus(ctx: SpeakerPartContext): Promise<void> {
    const access = await ctx.access.probeList(R.serviceBGPStatuses, ctx.namespace);
    if (this.stopped) return;
    if (access !== 'ok') {
      ctx.log.warn({ resource: 'servicebgpstatuses.metallb.io', access },
        `${access === 'forbidden' ? 'not allowed to read' : 'the API server does not serve'} servicebgpstatuses.metallb.io: BGP status objects are not written (MetalLB < v0.15 has no such CRD)`);
      return;
    }
    this.statusEnabled = true;
    const informer = new Informer<ServiceBGPStatus>(ctx.client, R.serviceBGPStatuses, ctx.log, {
      namespace: ctx.namespace, labelSelector: `${LABEL_NODE}=${ctx.nodeName}`, transform: statusObjectForSpeaker,
    });
    this.informer = informer;
    const byService = informer.addIndex(statusServiceKey);
    this.writer = new BgpStatusWriter({
      client: ctx.client,
      namespace: ctx.namespace,
      myNode: ctx.nodeName,
      log: ctx.log,
      peersFor: (key) => this.handler.peersFor(key),
      cached: () => informer.list(),
      cachedFor: (key) => byService.get(key),
      cachedNamed: (name) => informer.get(`${ctx.namespace}/${name}`),
      owner: ctx.owner,
      counters: { updates: ctx.metrics.updates, updateErrors: ctx.metrics.updateErrors },
    });
    const writer = this.writer;
    const queue = new WorkQueue<string>((key) => writer.reconcile(key), {
      concurrency: 4,
      baseDelayMs: 200,
      maxDelayMs: 30_000,
      observer: ctx.metrics.queueObserver('servicebgpstatus', () => this.queue?.length ?? 0),
      onError: (key, err, failures, retryInMs) => {
        if (isForbidden(err)) return this.disableStatus(err);
        ctx.log[failures > 3 ? 'warn' : 'debug']({ service: key, err: errorText(err), failures, retryInMs }, 'ServiceBGPStatus update failed, will retry');
      },
    });
    this.queue = queue;
    // Someone else changed or deleted one of our objects: converge it again (once every Service has been decided
    // after start, so that an object of an earlier run is not deleted just before it would be wanted again).
    let settled = false;
    const mine = (o: ServiceBGPStatus, force = false): void => {
      const key = statusServiceKey(o);
      if ((settled || force) && key && o.metadata?.labels?.[LABEL_NODE] === ctx.nodeName) this.enqueue(key);
    };
    informer.addHandlers({ add: (o) => mine(o), update: (_a, b) => mine(b), delete: (o) => mine(o) });
    informer.start();
    // Nothing is written before the cache is filled: objects of an earlier run are found and reused, not doubled.
    try {
      await informer.waitForSync(ctx.signal);
    } catch {
      return;
    }
    queue.start();
    for (const key of this.pending) queue.add(key);
    // Objects this node left behind (before a restart) are checked once every Service has been decided.
    void ctx.firstPass.then(() => {
      settled = true;
      for (const o of informer.list()) mine(o, true);
    });
  }

  private disableStatus(err: unknown): void {
    if (!this.statusEnabled) return;
    this.statusEnabled = false;
    this.ctx?.log.warn({ err: errorText(err) }, 'cannot write ServiceBGPStatus objects; BGP status reporting turned off');
  }

  ownerKnown(): void {
    for (const o of this.informer?.list() ?? []) {
      const key = statusServiceKey(o);
      if (key) this.enqueue(key);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // The Ceases go out at once; a peer that does not close its end is not waited for long (the pod's grace period).
    const closed = this.speaker.close().catch(() => undefined);
    await Promise.all([Promise.race([closed, new Promise((r) => setTimeout(r, 800).unref())]), this.queue?.shutdown(), this.informer?.stop()]);
  }
}
