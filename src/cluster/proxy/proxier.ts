// The proxy: Services, EndpointSlices and Nodes from the API server (list + watch), one level-triggered sync that
// computes the whole ruleset and loads it when it changed. Bursts of changes are coalesced (min sync period).
import type { Logger } from '../../log.js';
import { errorText, type KubeClient } from '../../k8s/client.js';
import { CR } from '../common/resources.js';
import { InformerFactory, ReconcileLoop, type ReconcileOutcome } from '../common/runtime.js';
import type { EndpointSlice, Node, Service } from '../common/types.js';
import { buildEntries, nodeIPs, podCIDRs } from './model.js';
import { type NftRunner } from './nft.js';
import { buildRuleset, deleteScript, TABLE } from './ruleset.js';

export interface ProxierOptions {
  nodeName: string;
  /** Pod network CIDRs in addition to the nodes' podCIDRs. */
  clusterCIDRs: string[];
  /** NodePorts answer on these addresses instead of the Node's InternalIP/ExternalIP. */
  nodePortAddresses?: string[];
  masqueradeAll: boolean;
  /** Changes arriving within this window are applied together. */
  minSyncPeriodMs: number;
  /** How often to check that the table is still there (and load it again if not). */
  syncPeriodMs: number;
}

const SYNC = 'sync';

export class Proxier {
  private readonly informers: InformerFactory;
  private readonly services;
  private readonly slices;
  private readonly nodes;
  private readonly loop: ReconcileLoop;
  private lastApplied = '';
  private lastCheckedAt = 0;
  /** Number of successful loads (for tests and logs). */
  loads = 0;

  constructor(
    client: KubeClient,
    private readonly log: Logger,
    private readonly nft: NftRunner,
    private readonly opts: ProxierOptions,
  ) {
    this.informers = new InformerFactory(client, log);
    this.services = this.informers.get<Service>(CR.services);
    this.slices = this.informers.get<EndpointSlice>(CR.endpointSlices);
    this.nodes = this.informers.get<Node>(CR.nodes);
    this.loop = new ReconcileLoop('proxy', log, () => this.sync(), { workers: 1, waitFor: [this.services, this.slices, this.nodes] });
    const changed = (): void => this.loop.enqueueAfter(SYNC, opts.minSyncPeriodMs);
    for (const inf of [this.services, this.slices, this.nodes]) inf.addHandlers({ add: changed, update: changed, delete: changed });
  }

  async start(): Promise<void> {
    this.informers.start();
    await this.loop.start();
    this.loop.enqueue(SYNC);
  }

  /** Stops watching; with `cleanup` the table is removed (a clean exit leaves no rules behind). */
  async stop(cleanup: boolean): Promise<void> {
    await this.loop.stop();
    await this.informers.stop();
    if (cleanup) {
      try {
        await this.nft.apply(deleteScript());
        this.log.info({}, 'removed table inet kube-proxy');
      } catch (err) {
        this.log.warn({ err: errorText(err) }, 'could not remove table inet kube-proxy');
      }
    }
  }

  /** The ruleset for the current caches (exposed for tests). */
  ruleset(): string {
    const me = this.nodes.get(this.opts.nodeName);
    const entries = buildEntries(this.services.list(), this.slices.list(), this.opts.nodeName);
    return buildRuleset({
      entries,
      nodeIPs: this.opts.nodePortAddresses ?? nodeIPs(me),
      podCIDRs: podCIDRs(this.opts.clusterCIDRs, this.nodes.list()),
      masqueradeAll: this.opts.masqueradeAll,
    });
  }

  private async sync(): Promise<ReconcileOutcome | void> {
    const started = Date.now();
    const script = this.ruleset();
    // an unchanged ruleset is not reloaded (that would also forget session-affinity state); now and then we only
    // check that the table is still there (someone may have run `nft flush ruleset`)
    let load = script !== this.lastApplied;
    if (!load && started - this.lastCheckedAt >= this.opts.syncPeriodMs) {
      this.lastCheckedAt = started;
      load = !(await this.nft.hasTable('inet', TABLE));
      if (load) this.log.warn({}, 'table inet kube-proxy is gone; loading it again');
    }
    if (load) {
      await this.nft.apply(script);
      const first = this.loads === 0;
      this.loads++;
      this.lastApplied = script;
      this.lastCheckedAt = Date.now();
      this.log[first ? 'info' : 'debug']({ services: this.services.size, endpointSlices: this.slices.size, ms: Date.now() - started }, 'ruleset loaded');
    }
    return { requeueAfterMs: this.opts.syncPeriodMs };
  }
}
