// Endpoints controller (core/v1, legacy): one Endpoints object per Service with a selector, named as the Service,
// its subsets grouping the pods' primary-family addresses by port set, ready pods in `addresses`, the others in
// `notReadyAddresses`. MetalLB v0.9/v0.12 speakers read these rather than EndpointSlices.
import type { Informer } from '../../k8s/informers.js';
import { isAlreadyExists } from '../../k8s/client.js';
import { compareIPText, deepEqual, isPodReady, keyOf, splitKey, stableStringify } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { Index, ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import { matchesMap } from '../common/selectors.js';
import type { EndpointAddress, EndpointSubset, Endpoints, Pod, Service } from '../common/types.js';
import type { ControllerContext } from './context.js';
import { addressTypesOf, endpointHostname, findPort, isHeadless, podIPsOf, shouldPodBeInEndpoints } from './endpoints-util.js';

const SKIP_MIRROR = 'endpointslice.kubernetes.io/skip-mirror';
const HEADLESS_LABEL = 'service.kubernetes.io/headless';

type SubsetPort = NonNullable<EndpointSubset['ports']>[number];

export function desiredSubsets(svc: Service, pods: readonly Pod[]): EndpointSubset[] {
  const tolerateUnready = svc.spec?.publishNotReadyAddresses === true;
  const family = addressTypesOf(svc)[0] ?? 'IPv4';
  const bySet = new Map<string, { ports: SubsetPort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }>();
  const add = (ports: SubsetPort[], addr: EndpointAddress, ready: boolean): void => {
    const k = stableStringify(ports);
    let e = bySet.get(k);
    if (!e) bySet.set(k, (e = { ports, ready: [], notReady: [] }));
    (ready ? e.ready : e.notReady).push(addr);
  };
  for (const pod of pods) {
    if (!matchesMap(svc.spec?.selector, pod.metadata?.labels)) continue;
    if (!shouldPodBeInEndpoints(pod, tolerateUnready)) continue;
    const ip = podIPsOf(pod, family)[0];
    if (!ip) continue;
    const hostname = endpointHostname(pod, svc);
    const addr: EndpointAddress = {
      ip,
      ...(hostname ? { hostname } : {}),
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      targetRef: { kind: 'Pod', namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
    };
    const ready = tolerateUnready || isPodReady(pod);
    const svcPorts = svc.spec?.ports ?? [];
    if (svcPorts.length === 0) {
      if (isHeadless(svc)) add([], addr, ready);
      continue;
    }
    const ports: SubsetPort[] = [];
    for (const sp of svcPorts) {
      const port = findPort(pod, sp);
      if (port === undefined) continue;
      ports.push({ ...(sp.name ? { name: sp.name } : {}), port, protocol: sp.protocol ?? 'TCP', ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}) });
    }
    if (ports.length) add(ports, addr, ready);
  }
  const byIP = (a: EndpointAddress, b: EndpointAddress): number => compareIPText(a.ip, b.ip) || (a.targetRef?.uid ?? '').localeCompare(b.targetRef?.uid ?? '');
  return [...bySet.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, e]) => ({
      ...(e.ready.length ? { addresses: e.ready.sort(byIP) } : {}),
      ...(e.notReady.length ? { notReadyAddresses: e.notReady.sort(byIP) } : {}),
      ...(e.ports.length ? { ports: e.ports } : {}),
    }));
}

export function endpointsLabels(svc: Service): Record<string, string> {
  const out: Record<string, string> = { ...(svc.metadata?.labels ?? {}) };
  delete out[HEADLESS_LABEL];
  if (isHeadless(svc)) out[HEADLESS_LABEL] = '';
  // the EndpointSlice mirroring controller leaves alone what the Endpoints controller made
  out[SKIP_MIRROR] = 'true';
  return out;
}

export class EndpointsController implements Runnable {
  readonly name = 'endpoints';
  private readonly services: Informer<Service>;
  private readonly pods: Informer<Pod>;
  private readonly endpoints: Informer<Endpoints>;
  private readonly podsByNs: Index<Pod>;
  private readonly servicesByNs: Index<Service>;
  private readonly loop: ReconcileLoop;

  constructor(private readonly ctx: ControllerContext) {
    this.services = ctx.informers.get<Service>(CR.services);
    this.pods = ctx.informers.get<Pod>(CR.pods);
    this.endpoints = ctx.informers.get<Endpoints>(CR.endpoints);
    this.podsByNs = new Index(this.pods, (p) => [p.metadata?.namespace ?? '']);
    this.servicesByNs = new Index(this.services, (s) => [s.metadata?.namespace ?? '']);
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.services, this.pods, this.endpoints] });
    const enqueue = (o: Service | Endpoints): void => this.loop.enqueue(keyOf(o));
    this.services.addHandlers({ add: enqueue, update: (_o, s) => enqueue(s), delete: enqueue });
    this.endpoints.addHandlers({ update: (_o, e) => enqueue(e), delete: enqueue });
    this.pods.addHandlers({
      add: (p) => this.enqueueForPod(p),
      update: (o, p) => {
        this.enqueueForPod(p);
        if (!deepEqual(o.metadata?.labels, p.metadata?.labels)) this.enqueueForPod(o);
      },
      delete: (p) => this.enqueueForPod(p),
    });
  }

  private enqueueForPod(p: Pod): void {
    for (const s of this.servicesByNs.get(p.metadata?.namespace ?? '')) {
      if (s.spec?.selector && matchesMap(s.spec.selector, p.metadata?.labels)) this.loop.enqueue(keyOf(s));
    }
  }

  start(): Promise<void> {
    return this.loop.start();
  }
  stop(): Promise<void> {
    return this.loop.stop();
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    const { namespace, name } = splitKey(key);
    const svc = this.services.get(key);
    const current = this.endpoints.get(key);
    if (!svc) {
      // the Service is gone: so are the endpoints we kept for it
      if (current && current.metadata?.labels?.[SKIP_MIRROR] === 'true') {
        await this.ctx.writer.delete(CR.endpoints, namespace, name, { preconditions: { uid: current.metadata?.uid } });
      }
      return;
    }
    if (!svc.spec?.selector) return;
    const subsets = desiredSubsets(svc, this.podsByNs.get(namespace));
    const labels = endpointsLabels(svc);
    if (current && deepEqual(current.subsets ?? [], subsets) && deepEqual(current.metadata?.labels ?? {}, labels)) return;
    if (!current) {
      try {
        await this.ctx.writer.create<Endpoints>(CR.endpoints, namespace, { metadata: { name, namespace, labels }, subsets });
      } catch (err) {
        // made by an earlier reconcile, not in the cache yet: look again once it is
        if (isAlreadyExists(err)) return { requeueAfterMs: 200 };
        throw err;
      }
      return;
    }
    const next: Endpoints = { ...current, metadata: { ...current.metadata, labels }, subsets };
    const updated = await this.ctx.writer.update(CR.endpoints, next);
    this.endpoints.observeWrite(updated, current.metadata?.resourceVersion);
  }
}
