// Which pods back a Service and how (k8s.io/kubernetes/pkg/controller/util/endpoint(slice)): shared by the
// EndpointSlice and the legacy Endpoints controllers.
import { isIP } from 'node:net';
import { isPodReady } from '../common/pods.js';
import type { Pod, Service, ServicePort } from '../common/types.js';

/** Pods with an IP that have not finished (and, unless `includeTerminating`, are not being deleted). */
export function shouldPodBeInEndpoints(pod: Pod, includeTerminating: boolean): boolean {
  if (!pod.status?.podIP && !(pod.status?.podIPs ?? []).length) return false;
  if (!includeTerminating && pod.metadata?.deletionTimestamp) return false;
  const phase = pod.status?.phase;
  const policy = pod.spec?.restartPolicy ?? 'Always';
  if (policy === 'Never') return phase !== 'Failed' && phase !== 'Succeeded';
  if (policy === 'OnFailure') return phase !== 'Succeeded';
  return true;
}

export type AddressType = 'IPv4' | 'IPv6';

/** The pod's IPs of one family. */
export function podIPsOf(pod: Pod, family: AddressType): string[] {
  const all = (pod.status?.podIPs ?? []).map((p) => p.ip);
  if (all.length === 0 && pod.status?.podIP) all.push(pod.status.podIP);
  const want = family === 'IPv4' ? 4 : 6;
  return all.filter((ip) => isIP(ip) === want).slice(0, 1);
}

/** The address families of a Service's endpoints: spec.ipFamilies, else the cluster IP's family, else IPv4. */
export function addressTypesOf(svc: Service): AddressType[] {
  const fams = (svc.spec?.ipFamilies ?? []).filter((f): f is AddressType => f === 'IPv4' || f === 'IPv6');
  if (fams.length) return fams;
  const ip = svc.spec?.clusterIP;
  if (ip && isIP(ip) === 6) return ['IPv6'];
  return ['IPv4'];
}

/** The container port a Service port reaches on this pod (podutil.FindPort); undefined when a named port is absent. */
export function findPort(pod: Pod, sp: ServicePort): number | undefined {
  const tp = sp.targetPort;
  if (tp === undefined || tp === '' || tp === 0) return sp.port;
  if (typeof tp === 'number') return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  const proto = sp.protocol ?? 'TCP';
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === tp && (p.protocol ?? 'TCP') === proto) return p.containerPort;
  }
  return undefined;
}

/** The hostname an endpoint carries: the pod's spec.hostname when its subdomain is the Service (headless DNS). */
export function endpointHostname(pod: Pod, svc: Service): string | undefined {
  const h = pod.spec?.hostname;
  if (!h || pod.spec?.subdomain !== svc.metadata?.name || pod.metadata?.namespace !== svc.metadata?.namespace) return undefined;
  return h;
}

export const isHeadless = (svc: Service): boolean => svc.spec?.clusterIP === 'None';

export { isPodReady };
