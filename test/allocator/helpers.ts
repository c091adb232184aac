// Builders for allocator tests: Pools and Services from short strings, independent of the config parser.
import type { Pool, Selector } from '../../src/config/types.js';
import type { Service, ServiceSpec } from '../../src/k8s/types.js';
import { parseIP, parsePrefix, summarizeRange, type Prefix } from '../../src/net/ip.js';
import { ServiceAllocator, type ConvergeResult } from '../../src/allocator/index.js';

/** A matchLabels-only selector. */
export function labelSelector(match: Record<string, string>): Selector {
  const text = Object.keys(match).sort().map((k) => `${k}=${match[k]}`).join(',');
  return { text, matches: (labels) => Object.entries(match).every(([k, v]) => labels?.[k] === v) };
}

export interface PoolOpts {
  autoAssign?: boolean;
  avoidBuggyIPs?: boolean;
  priority?: number;
  namespaces?: string[];
  /** Default: true when namespaces is given. */
  restrictsNamespaces?: boolean;
  serviceSelectors?: Record<string, string>[];
  /** Force a serviceAllocation even with nothing in it (e.g. only priority). */
  allocation?: boolean;
}

function toPrefixes(addr: string): Prefix[] {
  if (addr.includes('/')) {
    const p = parsePrefix(addr);
    if (!p) throw new Error(`bad prefix ${addr}`);
    return [p];
  }
  const [a, b] = addr.split('-').map((s) => s.trim());
  const s = parseIP(a ?? '');
  const e = parseIP(b ?? '');
  if (!s || !e) throw new Error(`bad range ${addr}`);
  return summarizeRange(s, e);
}

export function pool(name: string, addresses: string[], o: PoolOpts = {}): Pool {
  const p: Pool = {
    name,
    addresses,
    prefixes: addresses.flatMap(toPrefixes),
    autoAssign: o.autoAssign ?? true,
    avoidBuggyIPs: o.avoidBuggyIPs ?? false,
    labels: {},
  };
  if (o.allocation || o.priority !== undefined || o.namespaces || o.serviceSelectors || o.restrictsNamespaces !== undefined) {
    p.serviceAllocation = {
      priority: o.priority ?? 0,
      restrictsNamespaces: o.restrictsNamespaces ?? o.namespaces !== undefined,
      namespaces: new Set(o.namespaces ?? []),
      serviceSelectors: (o.serviceSelectors ?? []).map(labelSelector),
    };
  }
  return p;
}

export interface SvcOpts {
  ns?: string;
  type?: string;
  ports?: string[];
  /** spec.loadBalancerIP */
  ip?: string;
  /** metallb.io/loadBalancerIPs */
  ips?: string;
  pool?: string;
  share?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  clusterIPs?: string[];
  policy?: ServiceSpec['ipFamilyPolicy'];
  families?: ServiceSpec['ipFamilies'];
  local?: Record<string, string>;
  status?: string[];
  lbClass?: string;
}

export function svc(name: string, o: SvcOpts = {}): Service {
  const annotations: Record<string, string> = { ...(o.annotations ?? {}) };
  if (o.ips !== undefined) annotations['metallb.io/loadBalancerIPs'] = o.ips;
  if (o.pool !== undefined) annotations['metallb.io/address-pool'] = o.pool;
  if (o.share !== undefined) annotations['metallb.io/allow-shared-ip'] = o.share;
  const spec: ServiceSpec = {
    type: o.type ?? 'LoadBalancer',
    ports: (o.ports ?? ['TCP/80']).map((p) => {
      const [protocol, port] = p.split('/');
      return { protocol: protocol!, port: Number(port) };
    }),
  };
  if (o.ip !== undefined) spec.loadBalancerIP = o.ip;
  if (o.clusterIPs) spec.clusterIPs = o.clusterIPs;
  if (o.policy) spec.ipFamilyPolicy = o.policy;
  if (o.families) spec.ipFamilies = o.families;
  if (o.local) {
    spec.externalTrafficPolicy = 'Local';
    spec.selector = o.local;
  }
  if (o.lbClass !== undefined) spec.loadBalancerClass = o.lbClass;
  const s: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.ns ?? 'default', annotations, labels: o.labels ?? {} },
    spec,
  };
  if (o.status) s.status = { loadBalancer: { ingress: o.status.map((ip) => ({ ip })) } };
  return s;
}

/** The Service as the controller would write it back after a converge. */
export function applyResult(s: Service, r: ConvergeResult): Service {
  const annotations = { ...(s.metadata?.annotations ?? {}) };
  if (r.pool !== undefined) annotations['metallb.io/ip-allocated-from-pool'] = r.pool;
  else delete annotations['metallb.io/ip-allocated-from-pool'];
  return {
    ...s,
    metadata: { ...s.metadata, annotations },
    status: { loadBalancer: { ingress: r.ingress.map((ip) => ({ ip })) } },
  };
}

/** Converges the services in order, writing results back; returns the allocator and the final services. */
export function runAll(pools: Pool[], services: Service[]): { a: ServiceAllocator; out: Service[]; results: ConvergeResult[] } {
  const a = new ServiceAllocator();
  a.setPools(pools);
  const results: ConvergeResult[] = [];
  const out = services.map((s) => {
    const r = a.converge(s);
    results.push(r);
    return applyResult(s, r);
  });
  return { a, out, results };
}
