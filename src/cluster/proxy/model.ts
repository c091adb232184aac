// What kube-proxy programs, computed from Services, EndpointSlices and Nodes: one entry per (Service port, IP
// family) with its cluster IPs, node port, load-balancer and external IPs, traffic policy, session affinity and the
// endpoints usable for cluster-wide and for node-local traffic (pkg/proxy CategorizeEndpoints). Pure.
import { formatIP, formatPrefix, parseIP, parsePrefix, prefixesOverlap, type Prefix } from '../../net/ip.js';
import { compareIPText } from '../common/pods.js';
import type { EndpointSlice, Node, Service } from '../common/types.js';

export type Family = 4 | 6;
export type L4 = 'tcp' | 'udp' | 'sctp';

export interface ProxyEndpoint {
  ip: string;
  port: number;
  local: boolean;
}

export interface ServicePortEntry {
  /** `namespace/name/protocol/port-name-or-number`, unique per family. */
  id: string;
  family: Family;
  protocol: L4;
  port: number;
  clusterIPs: string[];
  nodePort?: number;
  /** status.loadBalancer.ingress[].ip (not those with ipMode Proxy) and spec.externalIPs. */
  externalIPs: string[];
  /** externalTrafficPolicy Local: external traffic only to this node's endpoints, client address kept. */
  externalLocal: boolean;
  /** sessionAffinity ClientIP: the timeout in seconds. */
  affinitySeconds?: number;
  /** Endpoints for traffic that may go anywhere (ready ones; else serving terminating ones). */
  clusterEndpoints: ProxyEndpoint[];
  /** Endpoints on this node, for externalTrafficPolicy Local. */
  localEndpoints: ProxyEndpoint[];
}

export const familyOf = (ip: string): Family | undefined => {
  const p = parseIP(ip);
  return p ? (p.family === 'IPv4' ? 4 : 6) : undefined;
};

const SERVICE_NAME = 'kubernetes.io/service-name';

/** Upstream's endpoint categories: ready endpoints; when none is ready, the serving ones that are terminating. */
function usable<T extends { ready: boolean; serving: boolean; terminating: boolean }>(eps: T[]): T[] {
  const ready = eps.filter((e) => e.ready);
  if (ready.length) return ready;
  return eps.filter((e) => e.serving && e.terminating);
}

/** The Node's addresses NodePorts answer on (InternalIP and ExternalIP). */
export function nodeIPs(node: Node | undefined): string[] {
  return (node?.status?.addresses ?? []).filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => a.address).filter((a) => familyOf(a) !== undefined);
}

/** The pod network: configured cluster CIDRs plus every node's podCIDRs, without prefixes contained in others. */
export function podCIDRs(configured: readonly string[], nodes: readonly Node[]): string[] {
  const all: Prefix[] = [];
  for (const c of [...configured, ...nodes.flatMap((n) => n.spec?.podCIDRs ?? (n.spec?.podCIDR ? [n.spec.podCIDR] : []))]) {
    const p = parsePrefix(c.trim());
    if (p) all.push(p);
  }
  all.sort((a, b) => a.length - b.length);
  const kept: Prefix[] = [];
  for (const p of all) if (!kept.some((k) => k.family === p.family && prefixesOverlap(k, p))) kept.push(p);
  return kept.map(formatPrefix);
}

/** Every Service port of every proxyable Service, per IP family, with its endpoints. */
export function buildEntries(services: readonly Service[], slices: readonly EndpointSlice[], nodeName: string): ServicePortEntry[] {
  const slicesBySvc = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const svc = s.metadata?.labels?.[SERVICE_NAME];
    if (!svc) continue;
    const k = `${s.metadata?.namespace ?? ''}/${svc}`;
    const l = slicesBySvc.get(k) ?? [];
    l.push(s);
    slicesBySvc.set(k, l);
  }
  const out: ServicePortEntry[] = [];
  for (const svc of services) {
    const spec = svc.spec;
    if (!spec || spec.type === 'ExternalName') continue;
    const ns = svc.metadata?.namespace ?? '';
    const name = svc.metadata?.name ?? '';
    const clusterIPs = (spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : []).filter((ip) => ip && ip !== 'None');
    // headless Services are DNS only
    if (clusterIPs.length === 0) continue;
    const external = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
    const lbIPs = spec.type === 'LoadBalancer' ? (svc.status?.loadBalancer?.ingress ?? []).filter((i) => i.ip && i.ipMode !== 'Proxy').map((i) => i.ip as string) : [];
    const extIPs = [...lbIPs, ...(spec.externalIPs ?? [])];
    const externalLocal = (external || extIPs.length > 0) && spec.externalTrafficPolicy === 'Local';
    const affinitySeconds = spec.sessionAffinity === 'ClientIP' ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800) : undefined;
    const svcSlices = slicesBySvc.get(`${ns}/${name}`) ?? [];
    for (const sp of spec.ports ?? []) {
      const protocol = (sp.protocol ?? 'TCP').toLowerCase() as L4;
      if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') continue;
      const portName = sp.name ?? '';
      for (const family of [4, 6] as Family[]) {
        const ips = clusterIPs.filter((ip) => familyOf(ip) === family);
        if (ips.length === 0) continue;
        const eps: { ip: string; port: number; local: boolean; ready: boolean; serving: boolean; terminating: boolean }[] = [];
        const seen = new Set<string>();
        for (const s of svcSlices) {
          if (s.addressType !== (family === 4 ? 'IPv4' : 'IPv6')) continue;
          const p = (s.ports ?? []).find((x) => (x.name ?? '') === portName && (x.protocol ?? 'TCP').toLowerCase() === protocol);
          if (!p?.port) continue;
          for (const e of s.endpoints ?? []) {
            const addr = e.addresses?.[0];
            if (!addr || familyOf(addr) !== family) continue;
            const ip = formatIP(parseIP(addr)!);
            const key = `${ip}|${p.port}`;
            if (seen.has(key)) continue;
            seen.add(key);
            const c = e.conditions ?? {};
            // nil ready/serving mean true, nil terminating false (discovery/v1 semantics)
            const ready = c.ready !== false;
            eps.push({ ip, port: p.port, local: e.nodeName === nodeName, ready, serving: c.serving ?? ready, terminating: c.terminating === true });
          }
        }
        eps.sort((a, b) => compareIPText(a.ip, b.ip) || a.port - b.port);
        const strip = (l: typeof eps): ProxyEndpoint[] => l.map(({ ip, port, local }) => ({ ip, port, local }));
        out.push({
          id: `${ns}/${name}/${protocol}/${portName || sp.port}`,
          family,
          protocol,
          port: sp.port,
          clusterIPs: ips,
          ...(external && sp.nodePort ? { nodePort: sp.nodePort } : {}),
          externalIPs: extIPs.filter((ip) => familyOf(ip) === family).map((ip) => formatIP(parseIP(ip)!)),
          externalLocal,
          ...(affinitySeconds !== undefined ? { affinitySeconds } : {}),
          clusterEndpoints: strip(usable(eps)),
          localEndpoints: strip(usable(eps.filter((e) => e.local))),
        });
      }
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id) || a.family - b.family);
}
