// What the allocator reads from a Service: annotations (both spellings), requested IPs, family and policy,
// ports and sharing identity. Tolerant of malformed objects (wrong types are ignored here; `serviceProblems`
// reports them for callers that read user files, like `metallb dry-run`).
import { isRecord } from '../config/fields.js';
import { parseIP, type IP, type IPFamily } from '../net/ip.js';
import type { IPFamilyPolicy, Service } from '../k8s/types.js';
import type { AllocationRequest, PortKey, ServiceFamily } from './types.js';

export const DEPRECATED_ANNOTATION_PREFIX = 'metallb.universe.tf/';
export const ANNOTATION_ADDRESS_POOL = 'metallb.io/address-pool';
export const ANNOTATION_LOADBALANCER_IPS = 'metallb.io/loadBalancerIPs';
export const ANNOTATION_ALLOW_SHARED_IP = 'metallb.io/allow-shared-ip';
export const ANNOTATION_IP_ALLOCATED_FROM_POOL = 'metallb.io/ip-allocated-from-pool';

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(v)) return out;
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/** MetalLB's valueForAnnotation: the `metallb.io/` spelling wins when present (even empty), else the deprecated one. */
function annotationPair(annotations: Readonly<Record<string, unknown>>, stable: string, deprecated: string): string {
  const v = annotations[stable];
  if (v !== undefined || Object.prototype.hasOwnProperty.call(annotations, stable)) return typeof v === 'string' ? v : '';
  const d = annotations[deprecated];
  return typeof d === 'string' ? d : '';
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** The deprecated `metallb.universe.tf/*` annotations a Service carries (MetalLB warns with `deprecatedAnnotation`). */
export function deprecatedAnnotations(svc: Service): string[] {
  return Object.keys(stringMap(svc.metadata?.annotations)).filter((k) => k.startsWith(DEPRECATED_ANNOTATION_PREFIX)).sort();
}

/** Go's %q of a list of strings: `["a" "b"]`. */
export const goQuoteList = (items: readonly string[]): string => `[${items.map((s) => JSON.stringify(s)).join(' ')}]`;

/** MetalLB's ipfamily.ForAddresses over parsed addresses. */
export function familyOfAddresses(ips: readonly IP[], texts: readonly string[]): { family: ServiceFamily } | { error: string } {
  if (ips.length === 1) return { family: ips[0]!.family };
  if (ips.length === 2) {
    if (ips[0]!.family === ips[1]!.family) return { error: `IPFamilyForAddresses: same address family ${goQuoteList(texts)}` };
    return { family: 'dual' };
  }
  return { error: `IPFamilyForAddresses: invalid ips length ${ips.length} ${goQuoteList(texts)}` };
}

export type Requested =
  | { kind: 'none' }
  | { kind: 'ips'; ips: IP[]; texts: string[]; family: ServiceFamily | undefined; familyError?: string }
  | { kind: 'invalid'; error: string };

export interface ServiceView {
  key: string;
  namespace: string;
  name: string;
  type: string;
  loadBalancerClass: string | undefined;
  policy: IPFamilyPolicy;
  /** undefined when the family cannot be determined (malformed clusterIPs); see familyError. */
  family: ServiceFamily | undefined;
  familyError?: string;
  /** Number of cluster IPs the Service declares; when none are written (dry-run input) the derived family counts. */
  clusterIPCount: number;
  clusterIPTexts: string[];
  /** `status.loadBalancer.ingress[].ip` (entries with only a hostname are ignored). */
  currentTexts: string[];
  currentIPs: IP[];
  /** True when some ingress IP does not parse. */
  currentInvalid: boolean;
  requested: Requested;
  /** `metallb.io/address-pool`, "" when unset. */
  desiredPool: string;
  request: AllocationRequest;
}

/**
 * The family of a Service. With clusterIPs (or clusterIP) it is MetalLB's ForService. Without any (Services as
 * people write them for `metallb dry-run`), it is what a dual-stack API server would assign: dual for
 * RequireDualStack / PreferDualStack, else `ipFamilies[0]`, else IPv4.
 */
function serviceFamily(spec: Record<string, unknown>, policy: IPFamilyPolicy): {
  family?: ServiceFamily; error?: string; count: number; texts: string[];
} {
  let texts: string[] = [];
  if (Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0) {
    texts = spec.clusterIPs.filter((x): x is string => typeof x === 'string' && x !== '' && x !== 'None');
  } else if (typeof spec.clusterIP === 'string' && spec.clusterIP !== '' && spec.clusterIP !== 'None') {
    texts = [spec.clusterIP];
  }
  if (texts.length > 0) {
    const ips: IP[] = [];
    for (const t of texts) {
      const ip = parseIP(t);
      if (!ip) return { error: `invalid clusterIP ${JSON.stringify(t)}`, count: texts.length, texts };
      ips.push(ip);
    }
    const f = familyOfAddresses(ips, texts);
    return 'family' in f ? { family: f.family, count: texts.length, texts } : { error: f.error, count: texts.length, texts };
  }
  const fams = Array.isArray(spec.ipFamilies) ? spec.ipFamilies.filter((x): x is IPFamily => x === 'IPv4' || x === 'IPv6') : [];
  if (policy === 'RequireDualStack' || policy === 'PreferDualStack') return { family: 'dual', count: 2, texts };
  return { family: fams[0] ?? 'IPv4', count: 1, texts };
}

const NONE: Requested = Object.freeze({ kind: 'none' });

function requestedIPs(annotations: Readonly<Record<string, unknown>>, specIP: string): Requested {
  const annotated = annotationPair(annotations, ANNOTATION_LOADBALANCER_IPS, 'metallb.universe.tf/loadBalancerIPs');
  if (annotated === '' && specIP === '') return NONE;
  if (annotated !== '' && specIP !== '') {
    return { kind: 'invalid', error: `service can not have both ${ANNOTATION_LOADBALANCER_IPS} and svc.Spec.LoadBalancerIP` };
  }
  const texts = annotated !== '' ? annotated.split(',').map((s) => s.trim()) : [specIP];
  const ips: IP[] = [];
  for (const t of texts) {
    const ip = parseIP(t);
    if (!ip) {
      return annotated !== ''
        ? { kind: 'invalid', error: `invalid ${ANNOTATION_LOADBALANCER_IPS}: ${JSON.stringify(annotated)}` }
        : { kind: 'invalid', error: `invalid spec.loadBalancerIP ${JSON.stringify(specIP)}` };
    }
    ips.push(ip);
  }
  const f = familyOfAddresses(ips, texts);
  return 'family' in f
    ? { kind: 'ips', ips, texts, family: f.family }
    : { kind: 'ips', ips, texts, family: undefined, familyError: f.error };
}

function portKeys(spec: Record<string, unknown>): PortKey[] {
  if (!Array.isArray(spec.ports)) return [];
  const out: PortKey[] = [];
  for (const p of spec.ports) {
    if (!isRecord(p) || typeof p.port !== 'number') continue;
    const proto = typeof p.protocol === 'string' && p.protocol !== '' ? p.protocol : 'TCP';
    out.push(`${proto}/${p.port}`);
  }
  return out;
}

/** k8salloc.BackendKey: Local traffic policy ties sharing to the exact pod selector. */
function backendKey(spec: Record<string, unknown>): string {
  if (spec.externalTrafficPolicy !== 'Local') return '';
  const sel = stringMap(spec.selector);
  return Object.keys(sel).sort().map((k) => `${k}=${sel[k]}`).join(',');
}

export function viewService(svc: Service): ServiceView {
  const meta: Record<string, unknown> = isRecord(svc.metadata) ? (svc.metadata as Record<string, unknown>) : {};
  const spec: Record<string, unknown> = isRecord(svc.spec) ? (svc.spec as Record<string, unknown>) : {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
  const name = typeof meta.name === 'string' ? meta.name : '';
  // Read in place (no copies: this runs on every converge); values of the wrong type are ignored by the readers.
  const annotations: Readonly<Record<string, unknown>> = isRecord(meta.annotations) ? meta.annotations : EMPTY;
  const labels = (isRecord(meta.labels) ? meta.labels : EMPTY) as Readonly<Record<string, string>>;
  const policy: IPFamilyPolicy =
    spec.ipFamilyPolicy === 'PreferDualStack' || spec.ipFamilyPolicy === 'RequireDualStack' ? spec.ipFamilyPolicy : 'SingleStack';
  const fam = serviceFamily(spec, policy);
  const ipFamilies = Array.isArray(spec.ipFamilies) ? spec.ipFamilies : [];

  const currentTexts: string[] = [];
  const status = isRecord(svc.status) ? (svc.status as Record<string, unknown>) : {};
  const lb = isRecord(status.loadBalancer) ? status.loadBalancer : {};
  if (Array.isArray(lb.ingress)) {
    for (const ing of lb.ingress) if (isRecord(ing) && typeof ing.ip === 'string' && ing.ip !== '') currentTexts.push(ing.ip);
  }
  const currentIPs: IP[] = [];
  let currentInvalid = false;
  for (const t of currentTexts) {
    const ip = parseIP(t);
    if (ip) currentIPs.push(ip);
    else currentInvalid = true;
  }
  const key = `${namespace}/${name}`;
  const view: ServiceView = {
    key,
    namespace,
    name,
    type: typeof spec.type === 'string' ? spec.type : 'ClusterIP',
    loadBalancerClass: typeof spec.loadBalancerClass === 'string' ? spec.loadBalancerClass : undefined,
    policy,
    family: fam.family,
    clusterIPCount: fam.count,
    clusterIPTexts: fam.texts,
    currentTexts,
    currentIPs,
    currentInvalid,
    requested: requestedIPs(annotations, typeof spec.loadBalancerIP === 'string' ? spec.loadBalancerIP : ''),
    desiredPool: annotationPair(annotations, ANNOTATION_ADDRESS_POOL, 'metallb.universe.tf/address-pool'),
    request: {
      key,
      namespace,
      labels,
      ports: portKeys(spec),
      family: fam.family ?? 'IPv4',
      policy,
      primaryFamily: ipFamilies[0] === 'IPv6' ? 'IPv6' : 'IPv4',
      sharing: annotationPair(annotations, ANNOTATION_ALLOW_SHARED_IP, 'metallb.universe.tf/allow-shared-ip'),
      backend: backendKey(spec),
    },
  };
  if (fam.error !== undefined) view.familyError = fam.error;
  return view;
}

const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);

/** Problems with the shape of a Service object read from a file, as `field: message`; empty when usable. */
export function serviceProblems(obj: unknown): string[] {
  const out: string[] = [];
  if (!isRecord(obj)) return ['the object is not a mapping'];
  const strMap = (v: unknown, field: string): void => {
    if (v === undefined || v === null) return;
    if (!isRecord(v)) out.push(`${field}: must be a mapping of strings`);
    else for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') out.push(`${field}.${k}: must be a string`);
  };
  const str = (v: unknown, field: string): void => {
    if (v !== undefined && v !== null && typeof v !== 'string') out.push(`${field}: must be a string`);
  };
  const meta = obj.metadata;
  if (!isRecord(meta)) {
    out.push('metadata: must be a mapping with a name');
  } else {
    if (typeof meta.name !== 'string' || meta.name === '') out.push('metadata.name: is required');
    str(meta.namespace, 'metadata.namespace');
    strMap(meta.labels, 'metadata.labels');
    strMap(meta.annotations, 'metadata.annotations');
  }
  const spec = obj.spec;
  if (spec !== undefined && spec !== null) {
    if (!isRecord(spec)) {
      out.push('spec: must be a mapping');
    } else {
      for (const f of ['type', 'clusterIP', 'loadBalancerIP', 'loadBalancerClass', 'externalTrafficPolicy'] as const) str(spec[f], `spec.${f}`);
      strMap(spec.selector, 'spec.selector');
      if (spec.ipFamilyPolicy !== undefined && !['SingleStack', 'PreferDualStack', 'RequireDualStack'].includes(String(spec.ipFamilyPolicy))) {
        out.push('spec.ipFamilyPolicy: must be SingleStack, PreferDualStack or RequireDualStack');
      }
      if (spec.ipFamilies !== undefined) {
        if (!Array.isArray(spec.ipFamilies) || spec.ipFamilies.length > 2 || spec.ipFamilies.some((f) => f !== 'IPv4' && f !== 'IPv6')) {
          out.push('spec.ipFamilies: must be a list of at most two of IPv4, IPv6');
        }
      }
      if (spec.clusterIPs !== undefined && (!Array.isArray(spec.clusterIPs) || spec.clusterIPs.some((x) => typeof x !== 'string'))) {
        out.push('spec.clusterIPs: must be a list of strings');
      }
      if (spec.ports !== undefined && spec.ports !== null) {
        if (!Array.isArray(spec.ports)) {
          out.push('spec.ports: must be a list');
        } else {
          spec.ports.forEach((p, i) => {
            if (!isRecord(p)) {
              out.push(`spec.ports[${i}]: must be a mapping`);
              return;
            }
            if (typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
              out.push(`spec.ports[${i}].port: must be an integer between 1 and 65535`);
            }
            if (p.protocol !== undefined && (typeof p.protocol !== 'string' || !PROTOCOLS.has(p.protocol))) {
              out.push(`spec.ports[${i}].protocol: must be TCP, UDP or SCTP`);
            }
          });
        }
      }
    }
  }
  const status = obj.status;
  if (status !== undefined && status !== null) {
    const lb = isRecord(status) ? status.loadBalancer : undefined;
    if (!isRecord(status) || (lb !== undefined && lb !== null && !isRecord(lb))) {
      out.push('status: must be a mapping');
    } else if (isRecord(lb) && lb.ingress !== undefined && lb.ingress !== null) {
      if (!Array.isArray(lb.ingress)) out.push('status.loadBalancer.ingress: must be a list');
      else lb.ingress.forEach((ing, i) => {
        if (!isRecord(ing)) out.push(`status.loadBalancer.ingress[${i}]: must be a mapping`);
        else if (ing.ip !== undefined && (typeof ing.ip !== 'string' || !parseIP(ing.ip))) {
          out.push(`status.loadBalancer.ingress[${i}].ip: not an IP address`);
        }
      });
    }
  }
  return out;
}
