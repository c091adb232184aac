// Root CA publisher: the `kube-root-ca.crt` ConfigMap in every active namespace holds the API server's CA, so pods
// can verify kubernetes.default.svc (projected service-account volumes read it).
import type { Informer } from '../../k8s/informers.js';
import { isAlreadyExists } from '../../k8s/client.js';
import { keyOf } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import type { ConfigMap, Namespace } from '../common/types.js';
import type { ControllerContext } from './context.js';

export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
const DESCRIPTION_ANNOTATION = 'kubernetes.io/description';
const DESCRIPTION =
  'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.';

export class RootCAPublisher implements Runnable {
  readonly name = 'root-ca-cert-publisher';
  private readonly namespaces: Informer<Namespace>;
  private readonly configMaps: Informer<ConfigMap>;
  private readonly loop: ReconcileLoop;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly caPEM: string,
  ) {
    this.namespaces = ctx.informers.get<Namespace>(CR.namespaces);
    this.configMaps = ctx.informers.get<ConfigMap>(CR.configMaps, { fieldSelector: `metadata.name=${ROOT_CA_CONFIGMAP}` });
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.namespaces, this.configMaps] });
    this.namespaces.addHandlers({ add: (n) => this.loop.enqueue(keyOf(n)), update: (_o, n) => this.loop.enqueue(keyOf(n)) });
    const byCm = (cm: ConfigMap): void => this.loop.enqueue(cm.metadata?.namespace ?? '');
    this.configMaps.addHandlers({ update: (_o, cm) => byCm(cm), delete: byCm });
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
    const cm = this.configMaps.get(`${ns}/${ROOT_CA_CONFIGMAP}`);
    const data = { 'ca.crt': this.caPEM };
    if (!cm) {
      try {
        await this.ctx.writer.create<ConfigMap>(CR.configMaps, ns, { metadata: { name: ROOT_CA_CONFIGMAP, namespace: ns, annotations: { [DESCRIPTION_ANNOTATION]: DESCRIPTION } }, data });
      } catch (err) {
        if (isAlreadyExists(err)) return { requeueAfterMs: 200 };
        throw err;
      }
      return;
    }
    const ann = cm.metadata?.annotations ?? {};
    if (cm.data?.['ca.crt'] === this.caPEM && Object.keys(cm.data).length === 1 && ann[DESCRIPTION_ANNOTATION] === DESCRIPTION) return;
    const next: ConfigMap = { ...cm, metadata: { ...cm.metadata, annotations: { ...ann, [DESCRIPTION_ANNOTATION]: DESCRIPTION } }, data };
    const updated = await this.ctx.writer.update(CR.configMaps, next);
    this.configMaps.observeWrite(updated, cm.metadata?.resourceVersion);
  }
}
