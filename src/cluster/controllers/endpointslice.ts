// EndpointSlice controller (discovery.k8s.io/v1): for each Service with a selector, slices per address family and
// port set holding the matching pods that have an IP: addresses, conditions (ready / serving / terminating as
// upstream computes them), nodeName, zone (from the node's label, when it has one), targetRef; labels
// `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`; owned by the Service.
import type { Informer } from '../../k8s/informers.js';
import { compareIPText, controllerRef, deepEqual, isPodReady, keyOf, ownerRefTo, stableStringify } from '../common/pods.js';
import { CR } from '../common/resources.js';
import { Index, ReconcileLoop, type ReconcileOutcome, type Runnable } from '../common/runtime.js';
import { matchesMap } from '../common/selectors.js';
import type { Endpoint, EndpointPort, EndpointSlice, Node, Pod, Service } from '../common/types.js';
import { Expectations } from '../common/expectations.js';
import type { ControllerContext } from './context.js';
import { addressTypesOf, endpointHostname, findPort, isHeadless, podIPsOf, shouldPodBeInEndpoints, type AddressType } from './endpoints-util.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY = 'endpointslice-controller.k8s.io';
const HEADLESS_LABEL = 'service.kubernetes.io/headless';
const ZONE_LABEL = 'topology.kubernetes.io/zone';
const MAX_ENDPOINTS = 100;

export interface DesiredSlice {
  addressType: AddressType;
  ports: EndpointPort[];
  endpoints: Endpoint[];
}

/** Endpoints of the Service grouped by (address type, port set), each group cut into slices of at most 100. */
export function desiredSlices(svc: Service, pods: readonly Pod[], nodeOf: (name: string) => Node | undefined): DesiredSlice[] {
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const groups = new Map<string, DesiredSlice>();
  const types = addressTypesOf(svc);
  for (const pod of pods) {
    if (!matchesMap(svc.spec?.selector, pod.metadata?.labels)) continue;
    if (!shouldPodBeInEndpoints(pod, true)) continue;
    const ports: EndpointPort[] = [];
    for (const sp of svc.spec?.ports ?? []) {
      const port = findPort(pod, sp);
      if (port === undefined) continue;
      ports.push({ name: sp.name ?? '', port, protocol: sp.protocol ?? 'TCP', ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}) });
    }
    const serving = publishNotReady || isPodReady(pod);
    const terminating = !!pod.metadata?.deletionTimestamp;
    // a terminating pod is never "ready" (unless the Service publishes not-ready addresses) but may still be serving
    const ready = publishNotReady || (serving && !terminating);
    const nodeName = pod.spec?.nodeName;
    const zone = nodeName ? nodeOf(nodeName)?.metadata?.labels?.[ZONE_LABEL] : undefined;
    const hostname = endpointHostname(pod, svc);
    for (const t of types) {
      const addresses = podIPsOf(pod, t);
      if (addresses.length === 0) continue;
      const ep: Endpoint = {
        addresses,
        conditions: { ready, serving, terminating },
        ...(hostname ? { hostname } : {}),
        targetRef: { kind: 'Pod', namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
        ...(nodeName ? { nodeName } : {}),
        ...(zone ? { zone } : {}),
      };
      const gk = `${t}|${stableStringify(ports)}`;
      let g = groups.get(gk);
      if (!g) groups.set(gk, (g = { addressType: t, ports, endpoints: [] }));
      g.endpoints.push(ep);
    }
  }
  const out: DesiredSlice[] = [];
  for (const g of [...groups.values()].sort((a, b) => groupKey(a).localeCompare(groupKey(b)))) {
    g.endpoints.sort((a, b) => compareIPText(a.addresses[0] ?? '', b.addresses[0] ?? ''));
    for (let i = 0; i < g.endpoints.length; i += MAX_ENDPOINTS) out.push({ addressType: g.addressType, ports: g.ports, endpoints: g.endpoints.slice(i, i + MAX_ENDPOINTS) });
  }
  // a Service without endpoints still gets one empty slice per family (upstream's placeholder)
  for (const t of types) if (!out.some((s) => s.addressType === t)) out.push({ addressType: t, ports: [], endpoints: [] });
  return out;
}

const groupKey = (s: { addressType: string; ports?: EndpointPort[] | null }): string => `${s.addressType}|${stableStringify(s.ports ?? [])}`;

/** The labels of the Service's slices: the Service's own, plus ours. */
export function sliceLabels(svc: Service): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(svc.metadata?.labels ?? {})) if (k !== SERVICE_NAME_LABEL && k !== MANAGED_BY_LABEL && k !== HEADLESS_LABEL) out[k] = v;
  out[SERVICE_NAME_LABEL] = svc.metadata?.name ?? '';
  out[MANAGED_BY_LABEL] = MANAGED_BY;
  if (isHeadless(svc)) out[HEADLESS_LABEL] = '';
  return out;
}

export class EndpointSliceController implements Runnable {
  readonly name = 'endpointslice';
  private readonly services: Informer<Service>;
  private readonly pods: Informer<Pod>;
  private readonly nodes: Informer<Node>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly podsByNs: Index<Pod>;
  private readonly servicesByNs: Index<Service>;
  private readonly slicesByService: Index<EndpointSlice>;
  private readonly loop: ReconcileLoop;
  /** Slices we created or deleted that the cache does not show yet: until it does, a reconcile would duplicate them. */
  private readonly expectations = new Expectations(30_000);

  constructor(private readonly ctx: ControllerContext) {
    this.services = ctx.informers.get<Service>(CR.services);
    this.pods = ctx.informers.get<Pod>(CR.pods);
    this.nodes = ctx.informers.get<Node>(CR.nodes);
    this.slices = ctx.informers.get<EndpointSlice>(CR.endpointSlices);
    this.podsByNs = new Index(this.pods, (p) => [p.metadata?.namespace ?? '']);
    this.servicesByNs = new Index(this.services, (s) => [s.metadata?.namespace ?? '']);
    this.slicesByService = new Index(this.slices, (s) => {
      const l = s.metadata?.labels ?? {};
      return l[MANAGED_BY_LABEL] === MANAGED_BY && l[SERVICE_NAME_LABEL] ? [`${s.metadata?.namespace ?? ''}/${l[SERVICE_NAME_LABEL]}`] : [];
    });
    this.loop = new ReconcileLoop(this.name, ctx.log, (k) => this.reconcile(k), { workers: ctx.workers, waitFor: [this.services, this.pods, this.nodes, this.slices] });
    const enqueueSvc = (s: Service): void => this.loop.enqueue(keyOf(s));
    this.services.addHandlers({ add: enqueueSvc, update: (_o, s) => enqueueSvc(s), delete: enqueueSvc });
    this.pods.addHandlers({
      add: (p) => this.enqueueForPod(p),
      update: (o, p) => {
        this.enqueueForPod(p);
        if (!deepEqual(o.metadata?.labels, p.metadata?.labels)) this.enqueueForPod(o);
      },
      delete: (p) => this.enqueueForPod(p),
    });
    const enqueueSlice = (s: EndpointSlice): void => {
      const l = s.metadata?.labels ?? {};
      if (l[MANAGED_BY_LABEL] === MANAGED_BY && l[SERVICE_NAME_LABEL]) this.loop.enqueue(`${s.metadata?.namespace ?? ''}/${l[SERVICE_NAME_LABEL]}`);
    };
    this.slices.addHandlers({ add: enqueueSlice, update: (_o, s) => enqueueSlice(s), delete: enqueueSlice });
    this.nodes.addHandlers({
      update: (o, n) => {
        if (o.metadata?.labels?.[ZONE_LABEL] === n.metadata?.labels?.[ZONE_LABEL]) return;
        for (const s of this.services.list()) this.loop.enqueue(keyOf(s));
      },
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
    const svc = this.services.get(key);
    // a deleted Service's slices go with it (garbage collector, through their ownerReference)
    if (!svc || !svc.spec?.selector || svc.metadata?.deletionTimestamp) {
      this.expectations.forget(key);
      return;
    }
    const namespace = svc.metadata?.namespace ?? '';
    const seen = this.expectations.satisfied(key, (name) => (this.slices.get(`${namespace}/${name}`) ? 'present' : 'absent'));
    if (!seen) return { requeueAfterMs: 200 };
    const want = desiredSlices(svc, this.podsByNs.get(namespace), (n) => this.nodes.get(n));
    const labels = sliceLabels(svc);
    const ownerRef = ownerRefTo(svc, 'v1', 'Service');
    const existing = this.slicesByService.get(key).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
    const stale: EndpointSlice[] = [];
    const pool = new Map<string, EndpointSlice[]>();
    for (const s of existing) {
      // slices of an earlier Service of the same name are not reused
      if (controllerRef(s)?.uid !== svc.metadata?.uid) {
        stale.push(s);
        continue;
      }
      const k = groupKey(s);
      const l = pool.get(k) ?? [];
      l.push(s);
      pool.set(k, l);
    }
    const toCreate: EndpointSlice[] = [];
    const toUpdate: EndpointSlice[] = [];
    for (const d of want) {
      const body = { addressType: d.addressType, endpoints: d.endpoints, ports: d.ports };
      const candidates = pool.get(groupKey(d)) ?? [];
      const reuse = candidates.shift();
      if (reuse) {
        const next: EndpointSlice = { ...reuse, metadata: { ...reuse.metadata, labels: { ...labels }, ownerReferences: [ownerRef] }, ...body };
        if (!sameSlice(reuse, next)) toUpdate.push(next);
      } else {
        toCreate.push({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { generateName: `${svc.metadata?.name ?? ''}-`, namespace, labels: { ...labels }, ownerReferences: [ownerRef] }, ...body });
      }
    }
    for (const left of pool.values()) stale.push(...left);
    for (const s of toUpdate) {
      const updated = await this.ctx.writer.update(CR.endpointSlices, s);
      this.slices.observeWrite(updated, s.metadata?.resourceVersion);
    }
    for (const s of toCreate) {
      const created = await this.ctx.writer.create(CR.endpointSlices, namespace, s);
      this.expectations.expectCreated(key, created.metadata?.name ?? '');
    }
    for (const s of stale) {
      await this.ctx.writer.delete(CR.endpointSlices, namespace, s.metadata?.name ?? '', { preconditions: { uid: s.metadata?.uid } });
      this.expectations.expectDeleted(key, s.metadata?.name ?? '');
    }
  }
}

function sameSlice(a: EndpointSlice, b: EndpointSlice): boolean {
  return (
    deepEqual(a.endpoints ?? [], b.endpoints ?? []) &&
    deepEqual(a.ports ?? [], b.ports ?? []) &&
    deepEqual(a.metadata?.labels ?? {}, b.metadata?.labels ?? {}) &&
    deepEqual(a.metadata?.ownerReferences ?? [], b.metadata?.ownerReferences ?? []) &&
    a.addressType === b.addressType
  );
}
