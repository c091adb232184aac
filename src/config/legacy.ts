// The legacy ConfigMap (MetalLB <= 0.12, key `config`) and its conversion to CRDs, following MetalLB's
// configmaptocrs generator. Each generated object remembers where it came from, so that errors found later
// while parsing the CRDs point back at the ConfigMap field (`data.config: address-pools[0].addresses[1]`).
import { LineCounter, parseDocument } from 'yaml';
import type { ConfigError } from './types.js';
import type { KubeObject } from '../k8s/types.js';
import {
  checkKnownFields, fieldPath, isRecord, optBool, optInt, optList, optObject, optString, optStringList,
  optStringMap, readObject, requiredString, show, wrongType, INT32, UINT32, type JsonObject, type Report,
} from './fields.js';
import { formatGoDuration, parseGoDuration, wholeSeconds } from './duration.js';
import { DEFAULT_NAMESPACE } from './object.js';
import { collectionKeys, tooDeep, yamlErrorMessage } from './yaml.js';

export interface Origin {
  /** `ConfigMap namespace/name`. */
  label: string;
  /** CRD field path (e.g. `spec.holdTime`) → field in the ConfigMap (`data.config: peers[0].hold-time`). */
  mapField: (field: string) => string;
}

export interface GeneratedObject {
  object: KubeObject & { spec: JsonObject };
  origin: Origin;
}

export interface LegacyConversion {
  objects: GeneratedObject[];
  errors: ConfigError[];
  /** Things MetalLB accepts silently but that are most likely mistakes (e.g. `protocol: l2`). */
  warnings: ConfigError[];
}

const TOP_FIELDS = ['peers', 'bgp-communities', 'address-pools', 'bfd-profiles'];
const PEER_FIELDS = [
  'my-asn', 'peer-asn', 'peer-address', 'source-address', 'peer-port', 'hold-time', 'keepalive-time', 'router-id',
  'node-selectors', 'password', 'bfd-profile', 'ebgp-multihop',
];
const POOL_FIELDS = ['protocol', 'name', 'addresses', 'auto-assign', 'avoid-buggy-ips', 'bgp-advertisements'];
const ADV_FIELDS = ['aggregation-length', 'aggregation-length-v6', 'localpref', 'communities'];
const BFD_FIELDS = [
  'name', 'receive-interval', 'transmit-interval', 'detect-multiplier', 'echo-interval', 'echo-mode', 'passive-mode',
  'minimum-ttl',
];

/** CRD field names → legacy names, for error paths. */
const LEGACY_NAMES: Readonly<Record<string, string>> = {
  myASN: 'my-asn', peerASN: 'peer-asn', peerAddress: 'peer-address', sourceAddress: 'source-address',
  peerPort: 'peer-port', holdTime: 'hold-time', keepaliveTime: 'keepalive-time', routerID: 'router-id',
  nodeSelectors: 'node-selectors', bfdProfile: 'bfd-profile', ebgpMultiHop: 'ebgp-multihop',
  matchLabels: 'match-labels', matchExpressions: 'match-expressions',
  autoAssign: 'auto-assign', avoidBuggyIPs: 'avoid-buggy-ips',
  aggregationLength: 'aggregation-length', aggregationLengthV6: 'aggregation-length-v6', localPref: 'localpref',
  receiveInterval: 'receive-interval', transmitInterval: 'transmit-interval', detectMultiplier: 'detect-multiplier',
  echoInterval: 'echo-interval', echoMode: 'echo-mode', passiveMode: 'passive-mode', minimumTtl: 'minimum-ttl',
};

const legacyField = (path: string): string => (path ? `data.config: ${path}` : 'data.config');

/** Maps `spec.x.y[0]` of a generated object under the legacy element at `base` (e.g. `peers[2]`). */
function fieldMapper(base: string, whole = false): (field: string) => string {
  return (field) => {
    if (whole) return legacyField(base);
    const rest = field.replace(/^spec\.?/, '').replace(/^metadata\.name$/, 'name').replace(/^metadata.*/, '');
    const translated = rest.replace(/[A-Za-z0-9]+/g, (seg) => LEGACY_NAMES[seg] ?? seg);
    return legacyField(translated ? (translated.startsWith('[') ? `${base}${translated}` : `${base}.${translated}`) : base);
  };
}

const NAME_OK = /^[a-z][-a-z0-9]{0,61}[a-z0-9]$/;

/** configmaptocrs' name fixing: names that are not valid object names are truncated, lower-cased, `_`→`-`, leading non-letters dropped. */
export function sanitizeName(name: string): string {
  if (NAME_OK.test(name)) return name;
  return name.slice(0, 63).toLowerCase().replaceAll('_', '-').replace(/^[^a-z]+/, '');
}

export interface LegacyInput {
  /** The ConfigMap as read (untrusted). */
  raw: JsonObject;
  /** MetalLB's namespace, used when the ConfigMap has none. */
  defaultNamespace?: string;
}

export function convertLegacy({ raw, defaultNamespace = DEFAULT_NAMESPACE }: LegacyInput): LegacyConversion {
  const meta = isRecord(raw.metadata) ? raw.metadata : {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : defaultNamespace;
  const name = typeof meta.name === 'string' && meta.name ? meta.name : '(unnamed)';
  const label = `ConfigMap ${namespace}/${name}`;
  const out: LegacyConversion = { objects: [], errors: [], warnings: [] };
  const report: Report = (field, message) => out.errors.push({ object: label, field, message });
  const warn: Report = (field, message) => out.warnings.push({ object: label, field, message });
  const legacyReport: Report = (field, message) => report(legacyField(field), message);

  const data = optObject(raw, 'data', '', report);
  const text = data ? optString(data, 'config', 'data', report) : undefined;
  if (text === undefined || text.trim() === '') {
    if (!data || typeof data.config === 'string' || data.config === undefined || data.config === null) {
      report('data.config', 'bad ConfigMap: no data (the key "config" must hold the MetalLB configuration)');
    }
    return out;
  }
  const deep = tooDeep(text);
  if (deep !== undefined) {
    report('data.config', `YAML error at line ${deep.line}, column ${deep.col} of the config: ${deep.message}`);
    return out;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = lineCounter.linePos(e.pos[0]);
      report('data.config', `YAML error at line ${pos.line}, column ${pos.col} of the config: ${yamlErrorMessage(e)}`);
    }
    return out;
  }
  let cfg: unknown;
  try {
    const keys = collectionKeys(doc);
    if (keys.length > 0) {
      for (const k of keys) {
        const pos = lineCounter.linePos(k.offset);
        report('data.config', `YAML error at line ${pos.line}, column ${pos.col} of the config: ${k.message}`);
      }
      return out;
    }
    cfg = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    report('data.config', `YAML error: ${err instanceof Error ? err.message : String(err)}`);
    return out;
  }
  if (cfg === null || cfg === undefined) return out;
  if (!isRecord(cfg)) {
    report('data.config', wrongType('a YAML mapping with peers, address-pools, bgp-communities, bfd-profiles', cfg));
    return out;
  }
  checkKnownFields(cfg, TOP_FIELDS, '', legacyReport);
  const emit = (object: GeneratedObject['object'], base: string, whole = false): void => {
    out.objects.push({ object, origin: { label, mapField: fieldMapper(base, whole) } });
  };
  const meta2 = (objName: string): { name: string; namespace: string } => ({ name: objName, namespace });

  // Peers become v1beta2 BGPPeers peer1..N.
  (optList(cfg, 'peers', '', legacyReport) ?? []).forEach((p, i) => {
    const at = fieldPath('peers', i);
    const spec = convertPeer(p, at, legacyReport);
    if (spec) emit({ apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: meta2(`peer${i + 1}`), spec }, at);
  });

  // Pools, their BGP advertisements (numbered across pools) and L2 advertisements.
  const pools = optList(cfg, 'address-pools', '', legacyReport) ?? [];
  let bgpIndex = 1;
  let l2Index = 1;
  const poolOut: GeneratedObject['object'][] = [];
  const adOut: [GeneratedObject['object'], string, boolean][] = [];
  const l2Out: [GeneratedObject['object'], string][] = [];
  const poolBases: string[] = [];
  pools.forEach((item, k) => {
    const at = fieldPath('address-pools', k);
    const p = readObject(item, at, legacyReport, POOL_FIELDS);
    if (!p) return;
    const rawName = requiredString(p, 'name', at, legacyReport);
    if (!rawName) return;
    const poolName = sanitizeName(rawName);
    const protocol = optString(p, 'protocol', at, legacyReport);
    const spec: JsonObject = {};
    const addresses = optStringList(p, 'addresses', at, legacyReport);
    if (addresses) spec.addresses = addresses;
    const autoAssign = optBool(p, 'auto-assign', at, legacyReport);
    if (autoAssign !== undefined) spec.autoAssign = autoAssign;
    if (optBool(p, 'avoid-buggy-ips', at, legacyReport)) spec.avoidBuggyIPs = true;
    poolOut.push({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: meta2(poolName), spec });
    poolBases.push(at);

    const ads = optList(p, 'bgp-advertisements', at, legacyReport) ?? [];
    ads.forEach((a, j) => {
      const adAt = fieldPath(fieldPath(at, 'bgp-advertisements'), j);
      const adSpec = convertBGPAdvertisement(a, adAt, legacyReport);
      if (!adSpec) return;
      adSpec.ipAddressPools = [poolName];
      adOut.push([{ apiVersion: 'metallb.io/v1beta1', kind: 'BGPAdvertisement', metadata: meta2(`bgpadvertisement${bgpIndex++}`), spec: adSpec }, adAt, false]);
    });
    if (ads.length === 0 && protocol === 'bgp') {
      adOut.push([{ apiVersion: 'metallb.io/v1beta1', kind: 'BGPAdvertisement', metadata: meta2(`bgpadvertisement${bgpIndex++}`), spec: { ipAddressPools: [poolName] } }, at, true]);
    }
    if (protocol === 'layer2') {
      l2Out.push([{ apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: meta2(`l2advertisement${l2Index++}`), spec: { ipAddressPools: [poolName] } }, at]);
    } else if (protocol !== 'bgp') {
      // MetalLB's generator silently produces no advertisement for any other protocol string.
      warn(legacyField(fieldPath(at, 'protocol')), `protocol ${show(protocol ?? '')} is neither "bgp" nor "layer2": the pool gets no advertisement and its IPs are never announced`);
    }
  });
  poolOut.forEach((o, i) => emit(o, poolBases[i] ?? 'address-pools'));
  for (const [o, base, whole] of adOut) emit(o, base, whole);
  for (const [o, base] of l2Out) emit(o, base, true);

  // BFD profiles.
  (optList(cfg, 'bfd-profiles', '', legacyReport) ?? []).forEach((b, i) => {
    const at = fieldPath('bfd-profiles', i);
    const converted = convertBFD(b, at, legacyReport);
    if (converted) emit({ apiVersion: 'metallb.io/v1beta1', kind: 'BFDProfile', metadata: meta2(converted.name), spec: converted.spec }, at);
  });

  // All community aliases go into one Community object named `communities`, sorted by alias name.
  const aliases = optStringMap(cfg, 'bgp-communities', '', legacyReport);
  if (aliases && Object.keys(aliases).length > 0) {
    const names = Object.keys(aliases).sort();
    const spec = { communities: names.map((n) => ({ name: n, value: aliases[n] ?? '' })) };
    const mapField = (field: string): string => {
      const m = /^spec\.communities\[(\d+)\]/.exec(field);
      const alias = m ? names[Number(m[1])] : undefined;
      return legacyField(alias !== undefined ? `bgp-communities.${alias}` : 'bgp-communities');
    };
    out.objects.push({ object: { apiVersion: 'metallb.io/v1beta1', kind: 'Community', metadata: meta2('communities'), spec }, origin: { label, mapField } });
  }
  return out;
}

function convertPeer(item: unknown, at: string, report: Report): JsonObject | undefined {
  const p = readObject(item, at, report, PEER_FIELDS);
  if (!p) return undefined;
  const spec: JsonObject = {};
  const copyInt = (from: string, to: string, range: { min: number; max: number }): void => {
    const v = optInt(p, from, at, report, range);
    if (v) spec[to] = v; // Go's omitempty: zero values are not written
  };
  const copyString = (from: string, to: string): void => {
    const v = optString(p, from, at, report);
    if (v) spec[to] = v;
  };
  copyInt('my-asn', 'myASN', UINT32);
  copyInt('peer-asn', 'peerASN', UINT32);
  copyString('peer-address', 'peerAddress');
  copyString('source-address', 'sourceAddress');
  copyInt('peer-port', 'peerPort', { min: 0, max: 65535 });
  copyString('router-id', 'routerID');
  copyString('password', 'password');
  const bfd = optString(p, 'bfd-profile', at, report);
  if (bfd) spec.bfdProfile = sanitizeName(bfd);
  if (optBool(p, 'ebgp-multihop', at, report)) spec.ebgpMultiHop = true;

  // hold-time is always written (default 90s), rounded down to whole seconds; keepalive-time only when given.
  const hold = optString(p, 'hold-time', at, report);
  const holdNs = hold ? parseGoDuration(hold) : { ok: true as const, nanoseconds: 90e9 };
  if (!holdNs.ok) report(fieldPath(at, 'hold-time'), `invalid hold time: ${holdNs.message}`);
  else {
    const seconds = wholeSeconds(holdNs.nanoseconds);
    if (seconds !== 0 && seconds < 3) report(fieldPath(at, 'hold-time'), `invalid hold time ${show(hold)}: must be 0 or >=3s`);
    else spec.holdTime = formatGoDuration(seconds);
  }
  const keepalive = optString(p, 'keepalive-time', at, report);
  if (keepalive) {
    const ka = parseGoDuration(keepalive);
    if (!ka.ok) report(fieldPath(at, 'keepalive-time'), `invalid keepalive time: ${ka.message}`);
    else spec.keepaliveTime = formatGoDuration(wholeSeconds(ka.nanoseconds));
  }

  const selectors = optList(p, 'node-selectors', at, report);
  if (selectors && selectors.length > 0) {
    spec.nodeSelectors = selectors.flatMap((s, i) => {
      const sAt = fieldPath(fieldPath(at, 'node-selectors'), i);
      const converted = convertNodeSelector(s, sAt, report);
      return converted ? [converted] : [];
    });
  }
  return spec;
}

function convertNodeSelector(item: unknown, at: string, report: Report): JsonObject | undefined {
  const s = readObject(item, at, report, ['match-labels', 'match-expressions'], 'an object with match-labels and match-expressions');
  if (!s) return undefined;
  const out: JsonObject = {};
  const labels = optStringMap(s, 'match-labels', at, report);
  if (labels && Object.keys(labels).length > 0) out.matchLabels = labels;
  const exprs = optList(s, 'match-expressions', at, report);
  if (exprs && exprs.length > 0) {
    out.matchExpressions = exprs.map((e, i) => {
      const eAt = fieldPath(fieldPath(at, 'match-expressions'), i);
      if (!isRecord(e)) {
        report(eAt, wrongType('an object with key, operator and values', e));
        return {};
      }
      // Go's case-insensitive JSON field matching: the legacy schema has no tags on these.
      const pick = (name: string): unknown => Object.entries(e).find(([k]) => k.toLowerCase() === name)?.[1];
      for (const k of Object.keys(e)) {
        if (!['key', 'operator', 'values'].includes(k.toLowerCase())) report(fieldPath(eAt, k), 'unknown field (known fields: key, operator, values)');
      }
      const expr: JsonObject = {};
      const key = pick('key');
      const operator = pick('operator');
      const values = pick('values');
      if (key !== undefined) expr.key = key;
      if (operator !== undefined) expr.operator = operator;
      if (values !== undefined && values !== null) expr.values = values;
      return expr;
    });
  }
  return out;
}

function convertBGPAdvertisement(item: unknown, at: string, report: Report): JsonObject | undefined {
  const a = readObject(item, at, report, ADV_FIELDS);
  if (!a) return undefined;
  const spec: JsonObject = {};
  const agg = optInt(a, 'aggregation-length', at, report, INT32);
  if (agg !== undefined) spec.aggregationLength = agg;
  const agg6 = optInt(a, 'aggregation-length-v6', at, report, INT32);
  if (agg6 !== undefined) spec.aggregationLengthV6 = agg6;
  const localPref = optInt(a, 'localpref', at, report, UINT32);
  if (localPref) spec.localPref = localPref;
  const communities = optStringList(a, 'communities', at, report);
  if (communities && communities.length > 0) spec.communities = communities;
  return spec;
}

function convertBFD(item: unknown, at: string, report: Report): { name: string; spec: JsonObject } | undefined {
  const b = readObject(item, at, report, BFD_FIELDS);
  if (!b) return undefined;
  const name = requiredString(b, 'name', at, report);
  if (!name) return undefined;
  const spec: JsonObject = {};
  const ints: [string, string][] = [
    ['receive-interval', 'receiveInterval'], ['transmit-interval', 'transmitInterval'],
    ['detect-multiplier', 'detectMultiplier'], ['echo-interval', 'echoInterval'], ['minimum-ttl', 'minimumTtl'],
  ];
  for (const [from, to] of ints) {
    const v = optInt(b, from, at, report, UINT32);
    if (v !== undefined) spec[to] = v;
  }
  // The generator always writes both booleans (they are plain bools in the legacy schema).
  spec.echoMode = optBool(b, 'echo-mode', at, report) ?? false;
  spec.passiveMode = optBool(b, 'passive-mode', at, report) ?? false;
  return { name: sanitizeName(name), spec };
}
