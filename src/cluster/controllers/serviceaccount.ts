// ServiceAccount controller: every active namespace has a `default` ServiceAccount.
import type { Informer } from '../../k8s/informers.js';
import { isAlreadyExists } from '../../k8s/client.js';
import { keyOf } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import type { Namespace, Obj } from '../common/types.js';
import type { ControllerContext } from './context.js';

export class ServiceAccountController implements Runnable {
  readonly name = 'serviceaccount';
  private readonly namespaces: Informer<Namespace>;
  private readonly accounts: Informer<Obj>;
  private readonly loop: ReconcileLoop;

  constructor(private readonly ctx: ControllerContext) {
    this.namespaces = ctx.informers.get<Namespace>(CR.namespaces);
    this.accounts = ctx.informers.get<Obj>(CR.serviceAccounts);
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.namespaces, this.accounts] });
    this.namespaces.addHandlers({ add: (n) => this.loop.enqueue(keyOf(n)), update: (_o, n) => this.loop.enqueue(keyOf(n)) });
    this.accounts.addHandlers({ delete: (sa) => sa.metadata?.name === 'default' && this.loop.enqueue(sa.metadata.namespace ?? '') });
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(ns: string): Promise<ReconcileOutcome | void> {
    const n = this.namespaces.get(ns);
    if (!n || n.metadata?.deletionTimestamp || n.status?.phase === 'Terminating') return;
    if (this.accounts.get(`${ns}/default`)) return;
    try {
      await this.ctx.writer.create(CR.serviceAccounts, ns, { metadata: { name: 'default', namespace: ns } });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
}
