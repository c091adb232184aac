// A Service port to one ready endpoint address, as kube-apiserver's aggregator resolves it with
// --enable-aggregator-routing (the control-plane host runs no kube-proxy, so a ClusterIP would lead nowhere):
// the Service's port, then a ready address of that port in its EndpointSlices (or its Endpoints).
import { isIP } from 'node:net';
import { resourceKey } from '../registry.js';
import type { Store } from '../store.js';
import { obj, str, type Obj } from '../util.js';

export type Resolution = { ok: true; host: string; port: number } | { ok: false; reason: 'ServiceNotFound' | 'ServicePortError' | 'MissingEndpoints'; message: string };

const arr = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);

export function resolveServicePort(store: Store, namespace: string, name: string, port: number, pick: (n: number) => number = (n) => Math.floor(Math.random() * n)): Resolution {
  const svc = store.get(resourceKey('', 'services'), namespace, name);
  if (!svc) return { ok: false, reason: 'ServiceNotFound', message: `service/${name} in ${JSON.stringify(namespace)} is not present` };
  const spec = obj(svc.spec);
  if (spec.type === 'ExternalName') {
    const host = str(spec.externalName) ?? '';
    return { ok: true, host, port };
  }
  const svcPort = arr(spec.ports).find((p) => p.port === port);
  if (!svcPort) return { ok: false, reason: 'ServicePortError', message: `service/${name} in ${JSON.stringify(namespace)} is not listening on port ${port}` };
  const portName = str(svcPort.name) ?? '';
  const candidates: { host: string; port: number }[] = [];
  for (const slice of store.list(resourceKey('discovery.k8s.io', 'endpointslices'), namespace)) {
    if (obj(obj(slice.metadata).labels)['kubernetes.io/service-name'] !== name) continue;
    const sp = arr(slice.ports).find((p) => (str(p.name) ?? '') === portName && (p.protocol ?? 'TCP') === 'TCP');
    if (!sp || typeof sp.port !== 'number') continue;
    for (const ep of arr(slice.endpoints)) {
      if (obj(ep.conditions).ready === false) continue;
      const a = arr(ep.addresses).map(String).find((x) => isIP(x));
      if (a) candidates.push({ host: a, port: sp.port });
    }
  }
  if (candidates.length === 0) {
    const eps = store.get(resourceKey('', 'endpoints'), namespace, name);
    for (const subset of arr(eps?.subsets)) {
      const sp = arr(subset.ports).find((p) => (str(p.name) ?? '') === portName);
      if (!sp || typeof sp.port !== 'number') continue;
      for (const a of arr(subset.addresses)) if (str(a.ip)) candidates.push({ host: String(a.ip), port: sp.port });
    }
  }
  if (candidates.length === 0)
    return { ok: false, reason: 'MissingEndpoints', message: `endpoints for service/${name} in ${JSON.stringify(namespace)} have no addresses with port name ${JSON.stringify(portName)}` };
  const c = candidates[pick(candidates.length)]!;
  return { ok: true, ...c };
}
