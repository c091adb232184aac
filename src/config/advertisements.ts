// L2Advertisement and BGPAdvertisement: field parsing, pool and node resolution, and BGP's per-pool rules
// (aggregation length vs pool prefixes, LOCAL_PREF conflicts).
// MetalLB's native mode also rejects BGP advertisements of pools with IPv6 prefixes and large communities;
// our speaker announces both, so those rules (from DiscardFRROnly) are deliberately not applied.
import type { Node } from '../k8s/types.js';
import type { BGPAdvertisement, CommunityValue, L2Advertisement, PreferredNodeSelector, Selector } from './types.js';
import {
  checkInt, checkKnownFields, checkNoDuplicates, fieldPath, hasEntries, optInt, optList, optStringList, readObject,
  show, INT32, UINT32, type JsonObject, type Report,
} from './fields.js';
import { parseLabelSelector, parseSelectorList, selectNames, selectNodes } from './selector.js';
import { parseCommunity, sameCommunity } from './community.js';
import { readSpec, type Envelope } from './object.js';
import type { AliasTable } from './communities.js';
import type { ParsedPool } from './pools.js';

/** What advertisements need to know about pools and nodes. */
export interface AdContext {
  pools: readonly ParsedPool[];
  nodes: readonly Node[];
  communities: AliasTable;
}

interface CommonAdFields {
  pools: Set<string>;
  nodes?: Set<string>;
  nodeSelectors: Selector[];
  serviceSelectors: Selector[];
}

/** ipAddressPools / ipAddressPoolSelectors / nodeSelectors / serviceSelectors, shared by both kinds. */
function readCommon(spec: JsonObject, ctx: AdContext, report: Report): CommonAdFields {
  const poolNames = optStringList(spec, 'ipAddressPools', 'spec', report) ?? [];
  checkNoDuplicates(poolNames, 'spec.ipAddressPools', 'ipAddressPools', report);
  const poolSelectors = parseSelectorList(spec, 'ipAddressPoolSelectors', 'spec', report) ?? [];
  const nodeSelectors = parseSelectorList(spec, 'nodeSelectors', 'spec', report) ?? [];
  // MetalLB keeps service selectors sorted by their text.
  const serviceSelectors = (parseSelectorList(spec, 'serviceSelectors', 'spec', report) ?? [])
    .sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));

  const known = ctx.pools.filter((p) => p.env.name).map((p) => ({ name: p.env.name, labels: p.env.labels }));
  const pools = new Set<string>();
  const listsEmpty = !hasEntries(spec.ipAddressPools) && !hasEntries(spec.ipAddressPoolSelectors);
  if (listsEmpty) {
    // Only when both lists are empty does an advertisement apply to every pool; a selector matching nothing
    // selects nothing.
    for (const p of known) pools.add(p.name);
  } else {
    // Unknown pool names are ignored, as in MetalLB (the pool may be created later).
    for (const name of poolNames) if (known.some((p) => p.name === name)) pools.add(name);
    for (const name of selectNames(known, poolSelectors)) pools.add(name);
  }
  const nodes = hasEntries(spec.nodeSelectors) ? selectNodes(ctx.nodes, nodeSelectors) : undefined;
  return { pools, nodeSelectors, serviceSelectors, ...(nodes ? { nodes } : {}) };
}

export interface ParsedL2Advertisement {
  env: Envelope;
  ad: L2Advertisement;
}

const L2_FIELDS = ['ipAddressPools', 'ipAddressPoolSelectors', 'nodeSelectors', 'interfaces', 'serviceSelectors', 'preferredNodeSelectors'];

export function parseL2Advertisement(env: Envelope, ctx: AdContext): ParsedL2Advertisement {
  const { report } = env;
  const spec = readSpec(env, false) ?? {};
  checkKnownFields(spec, L2_FIELDS, 'spec', report);
  const common = readCommon(spec, ctx, report);
  const interfaces = optStringList(spec, 'interfaces', 'spec', report) ?? [];
  interfaces.forEach((name, i) => {
    if (name === '' || /[\s/]/.test(name)) report(fieldPath('spec.interfaces', i), `invalid interface name ${show(name)}`);
  });
  const preferred = readPreferredNodeSelectors(spec, report);
  const ad: L2Advertisement = {
    name: env.name,
    pools: common.pools,
    nodeSelectors: common.nodeSelectors,
    interfaces,
    serviceSelectors: common.serviceSelectors,
    preferredNodeSelectors: preferred,
    ...(common.nodes ? { nodes: common.nodes } : {}),
  };
  return { env, ad };
}

function readPreferredNodeSelectors(spec: JsonObject, report: Report): PreferredNodeSelector[] {
  const list = optList(spec, 'preferredNodeSelectors', 'spec', report) ?? [];
  const out: PreferredNodeSelector[] = [];
  list.forEach((raw, i) => {
    const at = fieldPath('spec.preferredNodeSelectors', i);
    const item = readObject(raw, at, report, ['weight', 'preference'], 'an object with weight and preference');
    if (!item) return;
    let weight: number | undefined;
    if (item.weight === undefined || item.weight === null) report(fieldPath(at, 'weight'), 'is required (1 to 100)');
    else weight = checkInt(item.weight, fieldPath(at, 'weight'), report, { min: 1, max: 100 });
    let preference: Selector | undefined;
    if (item.preference === undefined || item.preference === null) report(fieldPath(at, 'preference'), 'is required');
    else preference = parseLabelSelector(item.preference, fieldPath(at, 'preference'), report);
    if (weight !== undefined && preference) out.push({ weight, preference });
  });
  return out;
}

export interface ParsedBGPAdvertisement {
  env: Envelope;
  ad: BGPAdvertisement;
}

const BGP_FIELDS = [
  'aggregationLength', 'aggregationLengthV6', 'localPref', 'communities', 'ipAddressPools', 'ipAddressPoolSelectors',
  'nodeSelectors', 'peers', 'serviceSelectors',
];

export function parseBGPAdvertisement(env: Envelope, ctx: AdContext): ParsedBGPAdvertisement {
  const { report } = env;
  const spec = readSpec(env, false) ?? {};
  checkKnownFields(spec, BGP_FIELDS, 'spec', report);
  const common = readCommon(spec, ctx, report);

  const aggregationLength = readAggregation(spec, 'aggregationLength', 1, 32, report);
  const aggregationLengthV6 = readAggregation(spec, 'aggregationLengthV6', 0, 128, report);
  if (hasEntries(spec.serviceSelectors)) {
    if (aggregationLength !== undefined && aggregationLength !== 32) {
      report('spec.aggregationLength', `serviceSelectors and aggregationLength are mutually exclusive, both cannot be set (aggregationLength ${aggregationLength})`);
    }
    if (aggregationLengthV6 !== undefined && aggregationLengthV6 !== 128) {
      report('spec.aggregationLengthV6', `serviceSelectors and aggregationLengthV6 are mutually exclusive, both cannot be set (aggregationLengthV6 ${aggregationLengthV6})`);
    }
  }
  const localPref = optInt(spec, 'localPref', 'spec', report, UINT32) ?? 0;
  const communityTexts = optStringList(spec, 'communities', 'spec', report) ?? [];
  checkNoDuplicates(communityTexts, 'spec.communities', 'community', report);
  const communities: CommunityValue[] = [];
  communityTexts.forEach((text, i) => {
    const value = resolveCommunity(text, ctx.communities, fieldPath('spec.communities', i), report);
    if (value && !communities.some((c) => sameCommunity(c, value))) communities.push(value);
  });
  const peers = optStringList(spec, 'peers', 'spec', report) ?? [];
  checkNoDuplicates(peers, 'spec.peers', 'peers', report);

  const ad: BGPAdvertisement = {
    name: env.name,
    pools: common.pools,
    aggregationLength: aggregationLength ?? 32,
    aggregationLengthV6: aggregationLengthV6 ?? 128,
    localPref,
    communities,
    peers,
    nodeSelectors: common.nodeSelectors,
    serviceSelectors: common.serviceSelectors,
    ...(common.nodes ? { nodes: common.nodes } : {}),
  };
  return { env, ad };
}

function readAggregation(spec: JsonObject, key: string, min: number, max: number, report: Report): number | undefined {
  const v = optInt(spec, key, 'spec', report, INT32);
  if (v === undefined) return undefined;
  const family = max === 32 ? 'IPv4' : 'IPv6';
  if (v > max) {
    report(fieldPath('spec', key), `invalid aggregation length ${v} for ${family}: must be at most ${max}`);
    return undefined;
  }
  if (v < min) {
    report(fieldPath('spec', key), `invalid aggregation length ${v} for ${family}: must be at least ${min}`);
    return undefined;
  }
  return v;
}

/** An alias name wins over a literal; an unknown `A:B`-less word is reported as an unknown alias. */
function resolveCommunity(text: string, aliases: AliasTable, path: string, report: Report): CommunityValue | undefined {
  const alias = aliases.values.get(text);
  if (alias) return alias;
  if (aliases.names.has(text)) return undefined; // a broken alias, already reported on its Community object
  const parsed = parseCommunity(text);
  if (parsed.ok) return parsed.value;
  if (parsed.kind === 'format') {
    // MetalLB retries this case (the Community may not exist yet); a config that names a missing alias is
    // not usable either way, so it is an error here.
    report(path, `${show(text)} is neither a defined community alias (Community objects) nor a community value: ${parsed.message}`);
  } else {
    report(path, parsed.message);
  }
  return undefined;
}

/** Whether two advertisements may announce from a common node (undefined = every node). */
function nodesIntersect(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): boolean {
  if (!a && !b) return true;
  if (!a) return (b?.size ?? 0) > 0;
  if (!b) return a.size > 0;
  for (const n of a) if (b.has(n)) return true;
  return false;
}

function familiesOf(pool: ParsedPool): { v4: boolean; v6: boolean } {
  const families = new Set(pool.entries.flatMap((e) => e.prefixes.map((p) => p.family)));
  return { v4: families.has('IPv4'), v6: families.has('IPv6') };
}

/** MetalLB's BGPAdvertisementsHaveCompatibleLocalPref for two ads on one pool. */
function compatibleLocalPref(a: BGPAdvertisement, b: BGPAdvertisement, pool: ParsedPool): boolean {
  if (a.localPref === b.localPref) return true;
  const { v4, v6 } = familiesOf(pool);
  const v4Differs = a.aggregationLength !== b.aggregationLength;
  const v6Differs = a.aggregationLengthV6 !== b.aggregationLengthV6;
  if (!v4 && !v6) return true;
  if ((v4Differs && !v6) || (v6Differs && !v4) || (v4Differs && v6Differs)) return true;
  if (a.peers.length > 0 && b.peers.length > 0 && !a.peers.some((p) => b.peers.includes(p))) return true;
  return !nodesIntersect(a.nodes, b.nodes);
}

/**
 * Per-pool rules of MetalLB's validateBGPAdvPerPool, applied in input order: the aggregation length may not
 * be longer than the prefix of any address entry (for a range: its shortest summarized prefix), and two ads
 * without service selectors on one pool must agree on LOCAL_PREF unless they cannot produce the same route.
 */
export function checkBGPAdvertisementsPerPool(ads: readonly ParsedBGPAdvertisement[], pools: readonly ParsedPool[]): void {
  const attached = new Map<string, ParsedBGPAdvertisement[]>();
  for (const parsed of ads) {
    const { ad, env } = parsed;
    for (const pool of pools) {
      if (!pool.env.name || !ad.pools.has(pool.env.name)) continue;
      checkAggregation(ad, pool, env.report);
      const previous = attached.get(pool.env.name) ?? [];
      if (ad.serviceSelectors.length === 0) {
        // With service selectors MetalLB defers the check to the speaker, per service.
        const clash = previous.find((o) => o.ad.serviceSelectors.length === 0 && !compatibleLocalPref(ad, o.ad, pool));
        if (clash) {
          env.report('spec.localPref', `invalid local preference ${ad.localPref}: BGPAdvertisement ${show(clash.ad.name)} already sets local preference ${clash.ad.localPref} for the same routes of pool ${show(pool.env.name)} (same aggregation length, common peers and nodes)`);
        }
      }
      attached.set(pool.env.name, [...previous, parsed]);
    }
  }
}

function checkAggregation(ad: BGPAdvertisement, pool: ParsedPool, fail: Report): void {
  for (const entry of pool.entries) {
    const first = entry.prefixes[0];
    if (!first) continue;
    const v6 = first.family === 'IPv6';
    const length = v6 ? ad.aggregationLengthV6 : ad.aggregationLength;
    const lowest = Math.min(...entry.prefixes.map((p) => p.length));
    if (length < lowest) {
      const field = v6 ? 'spec.aggregationLengthV6' : 'spec.aggregationLength';
      fail(field, `invalid aggregation length ${length}: prefix ${lowest} in pool ${show(pool.env.name)} is more specific than the aggregation length for addresses ${show(entry.text)}`);
      return;
    }
  }
}
