// parseConfig: every config object of every supported kind and version, validated together as one config.
// Errors are collected for all objects; cross-object rules only look at the parts that parsed, so one mistake
// is reported once and not again by every rule that depends on it.
import type { KubeObject, Namespace, Node, Secret } from '../k8s/types.js';
import type { BFDProfile, CommunityValue, Config, ConfigError } from './types.js';
import { isRecord, show, type JsonObject } from './fields.js';
import {
  checkUniqueNames, classifyObject, DEFAULT_NAMESPACE, ErrorCollector, readEnvelope, type ConfigKind, type Envelope,
} from './object.js';
import { convertLegacy, type Origin } from './legacy.js';
import { checkPoolSet, parsePool, type ParsedPool } from './pools.js';
import { parseCommunityObjects } from './communities.js';
import { parseBFDProfile, type ParsedBFDProfile } from './bfd.js';
import {
  checkBGPAdvertisementsPerPool, parseBGPAdvertisement, parseL2Advertisement, type ParsedBGPAdvertisement,
} from './advertisements.js';
import { parsePeer, type ParsedPeer } from './peers.js';
import { checkPeersPerNode } from './peer-rules.js';

/** What the parse needs from the cluster besides the config objects themselves. */
export interface ClusterContext {
  namespaces: readonly Namespace[];
  nodes: readonly Node[];
  secrets: readonly Secret[];
}

export interface ParseOptions {
  /** MetalLB's namespace; objects without a namespace are taken to be in it. Default `metallb-system`. */
  namespace?: string;
}

export interface ParseResult {
  /** Present only when `errors` is empty. */
  config?: Config;
  errors: ConfigError[];
  /** Accepted but suspicious input (e.g. a legacy pool with an unknown protocol); never blocks the config. */
  warnings?: ConfigError[];
}

interface Item {
  raw: JsonObject;
  kind: ConfigKind;
  version: string;
  index: number;
  origin?: Origin;
}

/** Parses and validates every MetalLB config object (CRDs of any supported version and the legacy ConfigMap) as one config. */
export function parseConfig(objects: readonly KubeObject[], ctx: ClusterContext, opts: ParseOptions = {}): ParseResult {
  const namespace = opts.namespace ?? DEFAULT_NAMESPACE;
  ctx = sanitizeContext(ctx);
  const collector = new ErrorCollector();
  const warnings: ConfigError[] = [];
  const items = expandObjects(objects, namespace, collector, warnings);

  const byKind = (kind: ConfigKind): Envelope[] => items
    .filter((i) => i.kind === kind)
    .map((i) => readEnvelope(i.raw, i.kind, i.version, collector, { namespace, index: i.index, ...(i.origin ? { origin: i.origin } : {}) }));

  const communityEnvs = byKind('Community');
  const communities = parseCommunityObjects(communityEnvs);
  checkUniqueNames(communityEnvs);

  const bfdProfiles = byKind('BFDProfile').map(parseBFDProfile);
  checkUniqueNames(bfdProfiles.map((b) => b.env), (name) => `found duplicate bfd profile name ${show(name)}`);

  const pools = byKind('IPAddressPool').map((env) => parsePool(env, ctx.namespaces));
  checkPoolSet(pools);

  const adContext = { pools, nodes: ctx.nodes, communities };
  const l2Ads = byKind('L2Advertisement').map((env) => parseL2Advertisement(env, adContext));
  checkUniqueNames(l2Ads.map((a) => a.env));
  const bgpAds = byKind('BGPAdvertisement').map((env) => parseBGPAdvertisement(env, adContext));
  checkUniqueNames(bgpAds.map((a) => a.env));
  checkBGPAdvertisementsPerPool(bgpAds, pools);

  const peerContext = {
    nodes: ctx.nodes, secrets: ctx.secrets, namespace,
    bfdProfiles: new Set(bfdProfiles.map((b) => b.env.name).filter(Boolean)),
  };
  const peers = byKind('BGPPeer').map((env) => parsePeer(env, peerContext));
  checkUniqueNames(peers.map((p) => p.env));
  checkPeersPerNode(peers);
  checkBFDEchoOnIPv6(pools, bgpAds, peers, bfdProfiles);
  warnings.push(...deprecationWarnings(peers));

  const errors = collector.sorted();
  if (errors.length > 0) return { errors, warnings };
  const config: Config = {
    pools: pools.map((p) => p.pool),
    l2Advertisements: l2Ads.map((a) => a.ad),
    bgpAdvertisements: bgpAds.map((a) => a.ad),
    peers: peers.map((p) => p.peer),
    bfdProfiles: new Map<string, BFDProfile>(bfdProfiles.map((b) => [b.profile.name, b.profile])),
    communities: new Map<string, CommunityValue>(communities.values),
  };
  return { config, errors, warnings };
}

/** The context comes from the API or from files: keep only objects with metadata, so lookups cannot throw. */
function sanitizeContext(ctx: ClusterContext | undefined): ClusterContext {
  const usable = <T extends KubeObject>(list: readonly T[] | undefined): T[] =>
    (Array.isArray(list) ? list : []).filter((o): o is T => isRecord(o) && isRecord(o.metadata) && typeof o.metadata.name === 'string'
      && (o.metadata.labels === undefined || isRecord(o.metadata.labels)));
  return { namespaces: usable(ctx?.namespaces), nodes: usable(ctx?.nodes), secrets: usable(ctx?.secrets) };
}

/**
 * Classifies the input and replaces each legacy ConfigMap by the CRDs it converts to (in its position, so input
 * order is kept). Objects of other kinds are skipped; metallb.io kinds in versions we do not read are errors.
 */
function expandObjects(objects: readonly KubeObject[], namespace: string, collector: ErrorCollector, warnings: ConfigError[]): Item[] {
  const items: Item[] = [];
  (Array.isArray(objects) ? objects : []).forEach((obj: unknown, index) => {
    const c = classifyObject(obj);
    if (c.type === 'other' || !isRecord(obj)) return;
    if (c.type === 'unsupported') {
      const meta = isRecord(obj.metadata) ? obj.metadata : {};
      const name = typeof meta.name === 'string' ? meta.name : '';
      const ns = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : namespace;
      collector.add({
        object: `${c.kind || '(no kind)'} ${ns}/${name || `(unnamed object #${index + 1})`}`,
        field: c.kind ? 'apiVersion' : 'kind',
        message: c.kind ? `unsupported apiVersion ${show(c.apiVersion)} for kind ${c.kind}` : `missing kind for a ${show(c.apiVersion)} object`,
      }, index);
      return;
    }
    if (c.kind !== 'ConfigMap') {
      items.push({ raw: obj, kind: c.kind, version: c.version, index });
      return;
    }
    // The ConfigMap's own envelope (name, namespace), then its content.
    readEnvelope(obj, 'ConfigMap', 'v1', collector, { namespace, index });
    const converted = convertLegacy({ raw: obj, defaultNamespace: namespace });
    for (const e of converted.errors) collector.add(e, index);
    warnings.push(...converted.warnings);
    for (const g of converted.objects) {
      const c2 = classifyObject(g.object);
      if (c2.type === 'config') items.push({ raw: g.object as unknown as JsonObject, kind: c2.kind, version: c2.version, index, origin: g.origin });
    }
  });
  return preferResources(items, namespace, warnings);
}

/**
 * The migration to CRDs applies `metallb config convert`'s output next to the ConfigMap: an object of the same kind,
 * namespace and name as one the ConfigMap converts to replaces it (with a warning), so the configuration does not
 * change while both exist and deleting the ConfigMap afterwards changes nothing either.
 */
function preferResources(items: Item[], namespace: string, warnings: ConfigError[]): Item[] {
  const key = (i: Item): string => {
    const meta = isRecord(i.raw.metadata) ? i.raw.metadata : {};
    const ns = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : namespace;
    return `${i.kind} ${ns}/${typeof meta.name === 'string' ? meta.name : ''}`;
  };
  const resources = new Set(items.filter((i) => !i.origin).map(key));
  return items.filter((i) => {
    if (!i.origin || !resources.has(key(i))) return true;
    warnings.push({
      object: i.origin.label,
      field: 'data.config',
      message: `${key(i)} is also defined as an object of its own, which is used instead (delete the ConfigMap once the migration to CRDs is done)`,
    });
    return false;
  });
}

/** MetalLB's webhook warns about these; they still work. */
function deprecationWarnings(peers: readonly ParsedPeer[]): ConfigError[] {
  const out: ConfigError[] = [];
  for (const { env, peer } of peers) {
    if (env.version === 'v1beta1') {
      out.push({ object: env.label, field: 'apiVersion', message: 'metallb.io/v1beta1 BGPPeer is deprecated, please use metallb.io/v1beta2' });
    }
    if (peer.disableMP) out.push({ object: env.label, field: 'spec.disableMP', message: 'disableMP is deprecated, use dualStackAddressFamily instead' });
  }
  return out;
}

/**
 * MetalLB's validateConfig: a pool with an IPv6 prefix may not be advertised (through a BGPAdvertisement's peers,
 * or all peers) to a peer whose BFD profile enables echo mode.
 */
function checkBFDEchoOnIPv6(
  pools: readonly ParsedPool[], ads: readonly ParsedBGPAdvertisement[], peers: readonly ParsedPeer[],
  profiles: readonly ParsedBFDProfile[],
): void {
  const echo = new Set(profiles.filter((p) => p.profile.echoMode).map((p) => p.profile.name));
  if (echo.size === 0) return;
  for (const pool of pools) {
    if (!pool.pool.prefixes.some((p) => p.family === 'IPv6')) continue;
    for (const { ad, env } of ads) {
      if (!ad.pools.has(pool.pool.name)) continue;
      const targets = ad.peers.length === 0 ? peers : peers.filter((p) => ad.peers.includes(p.peer.name));
      for (const { peer } of targets) {
        if (peer.bfdProfile && echo.has(peer.bfdProfile)) {
          env.report(ad.peers.length === 0 ? 'spec' : 'spec.peers',
            `pool ${show(pool.pool.name)} has IPv6 addresses and this advertisement reaches peer ${show(peer.name)}, whose bfd profile ${show(peer.bfdProfile)} has echo mode enabled, which is not possible`);
        }
      }
    }
  }
}
