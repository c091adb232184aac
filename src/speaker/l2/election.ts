// Which node announces a Service's addresses in layer 2 mode: MetalLB's layer2 ShouldAnnounce (reference d.1), as a
// pure function. Every speaker runs it on the same inputs and reaches the same answer without talking to the others;
// a mixed cluster of MetalLB and metallb-ts speakers agrees because the order is MetalLB's to the byte:
// preference score (sum of preferredNodeSelectors weights) descending, then sha256(node + "#" + ip) ascending, where
// ip is the Go text form of the Service's first ingress address.
import { createHash } from 'node:crypto';
import type { L2Advertisement } from '../../config/types.js';
import type { Node } from '../../k8s/types.js';
import { formatIP, parseIP } from '../../net/ip.js';
import type { ServiceEndpoint } from '../endpoints.js';
import { isExcludedFromBalancers, isNetworkUnavailable, nodeLabels } from '../nodes.js';

/** MetalLB's withdraw reasons for layer 2 (the `reason` of its serviceWithdrawn log). */
export type L2Reason = 'notOwner' | 'noMatchingAdvertisement' | 'sharedIPWithServiceSelector';

export interface L2ElectionInput {
  /** The Service's labels (for the advertisements' serviceSelectors). */
  serviceLabels: Readonly<Record<string, string>>;
  /** The Service carries a non-empty `allow-shared-ip` annotation (either prefix). */
  allowSharedIP: boolean;
  /** `externalTrafficPolicy: Local`. */
  localTrafficPolicy: boolean;
  /** The Service's ingress addresses in status order; the first one decides (dual-stack elects once). */
  ips: readonly string[];
  /** L2Advertisements of the Service's pool, in config order. */
  ads: readonly L2Advertisement[];
  /** Every Node the speaker knows, by name. */
  nodes: ReadonlyMap<string, Node>;
  /** Nodes whose speaker is alive (memberlist members); undefined when memberlist is disabled: every Node counts. */
  speakers?: ReadonlySet<string> | undefined;
  endpoints: readonly ServiceEndpoint[];
  /** --ignore-exclude-lb */
  ignoreExcludeLB: boolean;
}

export interface ExcludedNode {
  node: string;
  why: string;
}

export interface L2Election {
  /** Candidates in election order, winner first; empty when no node may announce. */
  order: string[];
  winner: string | undefined;
  /** Why no node announces (when `winner` is undefined). */
  reason?: L2Reason;
  message?: string;
  /** The pool's advertisements that apply to this Service (serviceSelectors match). */
  adsForService: L2Advertisement[];
  /** Preference score of each candidate (absent = 0). */
  scores: ReadonlyMap<string, number>;
  /** Known nodes (or speakers) that are not candidates, and why; for explanations. */
  excluded: ExcludedNode[];
  /** The address text the hash uses. */
  hashIP: string;
}

/** Go's net.IP.String() of an address as written in a Service status (dotted quad, RFC 5952). */
export function goIPString(text: string): string {
  const ip = parseIP(text);
  return ip ? formatIP(ip) : text;
}

// Every reprocess (a speaker joins or dies) elects every address again over the same (node, address) pairs: the
// hashes are kept, so a failover of thousands of addresses costs map lookups, not thousands of sha256 runs.
const HASH_CACHE_MAX = 200_000;
const hashCache = new Map<string, Buffer>();

/** sha256(node + "#" + ip), the per-address order of nodes. */
export function electionHash(node: string, ip: string): Buffer {
  const input = `${node}#${ip}`;
  let h = hashCache.get(input);
  if (h === undefined) {
    h = createHash('sha256').update(input, 'utf8').digest();
    if (hashCache.size >= HASH_CACHE_MAX) hashCache.clear();
    hashCache.set(input, h);
  }
  return h;
}

function adsForService(ads: readonly L2Advertisement[], labels: Readonly<Record<string, string>>): L2Advertisement[] {
  return ads.filter((ad) => ad.serviceSelectors.length === 0 || ad.serviceSelectors.some((s) => s.matches(labels)));
}

/** Whether `node` may announce under `ad` (nodeSelectors resolved at parse time; none = every known Node). */
function adHasNode(ad: L2Advertisement, node: string, nodes: ReadonlyMap<string, Node>): boolean {
  return ad.nodes ? ad.nodes.has(node) : nodes.has(node);
}

/**
 * Preference per node: for each advertisement, the weights of its preferredNodeSelectors matching the node, counted
 * only for nodes that advertisement itself selects; summed over the advertisements.
 */
function preferenceScores(ads: readonly L2Advertisement[], candidates: readonly string[], nodes: ReadonlyMap<string, Node>): Map<string, number> {
  const scores = new Map<string, number>();
  for (const ad of ads) {
    if (ad.preferredNodeSelectors.length === 0) continue;
    for (const name of candidates) {
      if (!adHasNode(ad, name, nodes)) continue;
      const labels = nodeLabels(nodes.get(name));
      let w = 0;
      for (const p of ad.preferredNodeSelectors) if (p.preference.matches(labels)) w += p.weight;
      if (w > 0) scores.set(name, (scores.get(name) ?? 0) + w);
    }
  }
  return scores;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Election order of `candidates` for `ip`: score descending, then hash ascending (byte-wise). */
export function electionOrder(candidates: readonly string[], ip: string, scores: ReadonlyMap<string, number> = new Map()): string[] {
  const keyed = candidates.map((name) => ({ name, score: scores.get(name) ?? 0, hash: electionHash(name, ip) }));
  keyed.sort((a, b) => b.score - a.score || Buffer.compare(a.hash, b.hash) || byName(a.name, b.name));
  return keyed.map((k) => k.name);
}

/** The cluster-wide answer: who announces this Service, or why nobody does. */
export function electL2(input: L2ElectionInput): L2Election {
  const hashIP = input.ips.length > 0 ? goIPString(input.ips[0] as string) : '';
  const ads = adsForService(input.ads, input.serviceLabels);
  const out = (fields: Partial<L2Election>): L2Election => ({
    order: [], winner: undefined, adsForService: ads, scores: new Map(), excluded: [], hashIP, ...fields,
  });
  if (!input.endpoints.some((e) => e.canServe)) {
    return out({ reason: 'notOwner', message: 'the service has no serving endpoint' });
  }
  if (input.ads.length === 0) {
    return out({ reason: 'noMatchingAdvertisement', message: 'no L2Advertisement selects the service\'s pool' });
  }
  if (ads.length === 0) {
    return out({ reason: 'noMatchingAdvertisement', message: 'the serviceSelectors of every L2Advertisement of the pool exclude the service' });
  }
  if (input.allowSharedIP && ads.some((ad) => ad.serviceSelectors.length > 0)) {
    return out({
      reason: 'sharedIPWithServiceSelector',
      message: 'a service with allow-shared-ip is not announced through an L2Advertisement with serviceSelectors (MetalLB rule)',
    });
  }

  const excluded: ExcludedNode[] = [];
  const pool = input.speakers ? [...input.speakers] : [...input.nodes.keys()];
  if (input.speakers) {
    for (const n of input.nodes.keys()) if (!input.speakers.has(n)) excluded.push({ node: n, why: 'no live speaker' });
  }
  let candidates: string[] = [];
  for (const name of pool.sort(byName)) {
    const node = input.nodes.get(name);
    if (isNetworkUnavailable(node)) excluded.push({ node: name, why: 'NetworkUnavailable' });
    else if (!input.ignoreExcludeLB && isExcludedFromBalancers(node)) excluded.push({ node: name, why: 'labelled node.kubernetes.io/exclude-from-external-load-balancers' });
    else if (!ads.some((ad) => adHasNode(ad, name, input.nodes))) {
      excluded.push({ node: name, why: node ? 'not selected by the nodeSelectors of the L2Advertisements' : 'not a known Node' });
    } else candidates.push(name);
  }
  if (input.localTrafficPolicy) {
    const withEndpoint = new Set(input.endpoints.filter((e) => e.canServe && e.nodeName).map((e) => e.nodeName as string));
    const kept: string[] = [];
    for (const c of candidates) {
      if (withEndpoint.has(c)) kept.push(c);
      else excluded.push({ node: c, why: 'no serving endpoint on the node (externalTrafficPolicy: Local)' });
    }
    candidates = kept;
  }
  excluded.sort((a, b) => byName(a.node, b.node));
  if (candidates.length === 0) {
    const detail = excluded.length > 0 ? `: ${excluded.map((e) => `${e.node} (${e.why})`).join(', ')}` : '';
    return out({ reason: 'notOwner', message: `no node may announce the service${detail}`, excluded });
  }
  const scores = preferenceScores(ads, candidates, input.nodes);
  const order = electionOrder(candidates, hashIP, scores);
  return out({ order, winner: order[0], scores, excluded });
}

export type L2Decision =
  | { announce: true; election: L2Election }
  | { announce: false; reason: L2Reason; message: string; election: L2Election };

/** What `myNode`'s speaker does: announce, or withdraw with MetalLB's reason. */
export function shouldAnnounceL2(myNode: string, input: L2ElectionInput): L2Decision {
  const election = electL2(input);
  // Reasons found before the candidate set is built apply to every node alike.
  const early = election.reason === 'noMatchingAdvertisement' || election.reason === 'sharedIPWithServiceSelector';
  if (early || !input.endpoints.some((e) => e.canServe)) {
    return { announce: false, reason: election.reason ?? 'notOwner', message: election.message ?? '', election };
  }
  // The node-local guard comes before the candidate set in MetalLB: a node no advertisement covers sits out with
  // its own reason, whoever wins.
  if (!election.adsForService.some((ad) => adHasNode(ad, myNode, input.nodes))) {
    return { announce: false, reason: 'noMatchingAdvertisement', message: `no L2Advertisement for the service selects node ${myNode}`, election };
  }
  if (election.winner === myNode) return { announce: true, election };
  const message = election.winner ? `node ${election.winner} announces the service` : (election.message ?? 'no node may announce the service');
  return { announce: false, reason: 'notOwner', message, election };
}

/**
 * The interfaces this node announces an address on, from the advertisements of the Service that select the node
 * (MetalLB's ipAdvertisementFor): 'all' as soon as one of them lists no interface, else the union of their lists.
 */
export function interfacesForNode(ads: readonly L2Advertisement[], myNode: string, nodes: ReadonlyMap<string, Node>): readonly string[] | 'all' {
  const set = new Set<string>();
  for (const ad of ads) {
    if (!adHasNode(ad, myNode, nodes)) continue;
    if (ad.interfaces.length === 0) return 'all';
    for (const i of ad.interfaces) set.add(i);
  }
  return [...set].sort(byName);
}
