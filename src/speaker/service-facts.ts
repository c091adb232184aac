// What the speaker reads from a Service, shared by the speaker's pipeline and `metallb dry-run`.
import { ANNOTATION_ALLOW_SHARED_IP } from '../allocator/index.js';
import type { Pool } from '../config/types.js';
import type { Service } from '../k8s/types.js';
import { parseIP, prefixContains, type IP } from '../net/ip.js';

const DEPRECATED_ALLOW_SHARED_IP = 'metallb.universe.tf/allow-shared-ip';

/** `status.loadBalancer.ingress[].ip` in order (hostname-only entries are ignored, as MetalLB does). */
export function ingressTexts(svc: Service): string[] {
  const ing: unknown = svc.status?.loadBalancer?.ingress;
  if (!Array.isArray(ing)) return [];
  // filter/map rather than push: an array grown by push reserves room for 17 elements (152 bytes for one address),
  // and the speaker keeps these per Service.
  return ing
    .filter((e): e is { ip: string } => !!e && typeof e === 'object' && typeof (e as { ip?: unknown }).ip === 'string' && (e as { ip: string }).ip !== '')
    .map((e) => e.ip);
}

/** The sharing key, with MetalLB's precedence (the `metallb.io/` spelling wins when present, even empty). */
export function allowsSharedIP(svc: Service): boolean {
  const a = svc.metadata?.annotations;
  if (!a || typeof a !== 'object') return false;
  const v = Object.prototype.hasOwnProperty.call(a, ANNOTATION_ALLOW_SHARED_IP) ? a[ANNOTATION_ALLOW_SHARED_IP] : a[DEPRECATED_ALLOW_SHARED_IP];
  return typeof v === 'string' && v !== '';
}

export const isLocalPolicy = (svc: Service): boolean => svc.spec?.externalTrafficPolicy === 'Local';

export const serviceLabels = (svc: Service): Readonly<Record<string, string>> => {
  const l = svc.metadata?.labels;
  return l && typeof l === 'object' ? l : {};
};

/**
 * MetalLB's poolFor: the pool whose prefixes contain every address (plain containment: avoidBuggyIPs is the
 * controller's business). Pools never overlap in a valid config, so at most one pool qualifies.
 */
export function poolForIPs(pools: readonly Pool[], ips: readonly IP[]): Pool | undefined {
  if (ips.length === 0) return undefined;
  return pools.find((p) => ips.every((ip) => p.prefixes.some((pr) => prefixContains(pr, ip))));
}

/** Parses the ingress addresses; undefined when one does not parse (MetalLB's `invalidIP`). */
export function parseIngress(texts: readonly string[]): IP[] | undefined {
  const out = texts.map(parseIP);
  return out.every((ip) => ip !== undefined) ? (out as IP[]) : undefined;
}
