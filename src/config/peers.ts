// BGPPeer v1beta1 and v1beta2. MetalLB's native mode rejects the FRR-only fields (bfdProfile, keepaliveTime,
// dynamicASN, interface, ...); we validate them with the FRR-mode rules instead, our speaker implements them.
import { parseIP } from '../net/ip.js';
import type { Node, Secret } from '../k8s/types.js';
import type { BGPPeer } from './types.js';
import {
  checkKnownFields, fieldPath, hasEntries, optBool, optInt, optObject, optString, show, wrongType, UINT32,
  type JsonObject, type Report,
} from './fields.js';
import { parseSelectorList, selectNodes } from './selector.js';
import { parseGoDuration, wholeSeconds } from './duration.js';
import { readSpec, type Envelope } from './object.js';

const V1BETA1_FIELDS = [
  'myASN', 'peerASN', 'peerAddress', 'sourceAddress', 'peerPort', 'holdTime', 'keepaliveTime', 'routerID',
  'nodeSelectors', 'password', 'bfdProfile', 'ebgpMultiHop',
];
const V1BETA2_FIELDS = [
  ...V1BETA1_FIELDS, 'dynamicASN', 'localASN', 'interface', 'connectTime', 'passwordSecret', 'enableGracefulRestart',
  'vrf', 'disableMP', 'dualStackAddressFamily',
];

export const DEFAULT_BGP_PORT = 179;

export interface PeerContext {
  nodes: readonly Node[];
  secrets: readonly Secret[];
  /** Names of every BFDProfile object given. */
  bfdProfiles: ReadonlySet<string>;
  /** MetalLB's namespace: password secrets are read from it only. */
  namespace: string;
}

export interface ParsedPeer {
  env: Envelope;
  peer: BGPPeer;
}

export function parsePeer(env: Envelope, ctx: PeerContext): ParsedPeer {
  const { report } = env;
  const v1beta1 = env.version === 'v1beta1';
  const spec = readSpec(env, true);
  if (!spec) {
    // Missing or not an object: reported once, without a cascade of "missing field" errors.
    const empty: BGPPeer = { name: env.name, myASN: 0, peerPort: DEFAULT_BGP_PORT, nodeSelectors: [], enableGracefulRestart: false, ebgpMultiHop: false };
    return { env, peer: empty };
  }
  checkKnownFields(spec, v1beta1 ? V1BETA1_FIELDS : V1BETA2_FIELDS, 'spec', report);

  const asns = readASNs(spec, v1beta1, report);
  const { peerAddress, iface } = readEndpoint(spec, v1beta1, report);
  const sourceAddress = readIP(spec, 'sourceAddress', 'invalid source IP', report);
  const routerID = readIP(spec, 'routerID', 'invalid router ID', report);
  const peerPort = readPort(spec, v1beta1, report);
  const timers = readTimers(spec, report);
  const connectTime = readConnectTime(spec, report);
  const nodeSelectors = parseSelectorList(spec, 'nodeSelectors', 'spec', report, { valuesRequired: v1beta1 }) ?? [];
  const nodes = hasEntries(spec.nodeSelectors) ? selectNodes(ctx.nodes, nodeSelectors) : undefined;
  const passwords = readPassword(spec, env, ctx, report);

  const bfdProfile = optString(spec, 'bfdProfile', 'spec', report) || undefined;
  if (bfdProfile !== undefined && !ctx.bfdProfiles.has(bfdProfile)) {
    report('spec.bfdProfile', `peer references non existing bfd profile ${show(bfdProfile)}`);
  }
  const ebgpMultiHop = optBool(spec, 'ebgpMultiHop', 'spec', report) ?? false;
  if (ebgpMultiHop && asns.peerASN !== undefined && asns.peerASN === asns.myASN) {
    report('spec.ebgpMultiHop', `invalid ebgp-multihop parameter set for an ibgp peer (myASN and peerASN are both ${asns.myASN})`);
  }
  const vrf = optString(spec, 'vrf', 'spec', report) || undefined;
  if (vrf !== undefined && /[\r\n]/.test(vrf)) report('spec.vrf', 'VRF name contains invalid characters (line breaks)');
  const enableGracefulRestart = optBool(spec, 'enableGracefulRestart', 'spec', report) ?? false;
  const disableMP = optBool(spec, 'disableMP', 'spec', report) ?? false;
  const dualStackAddressFamily = optBool(spec, 'dualStackAddressFamily', 'spec', report) ?? false;

  const peer: BGPPeer = {
    name: env.name,
    myASN: asns.myASN ?? 0,
    peerPort,
    nodeSelectors,
    enableGracefulRestart,
    ebgpMultiHop,
    disableMP,
    dualStackAddressFamily,
    ...defined({
      peerASN: asns.peerASN, dynamicASN: asns.dynamicASN, localASN: asns.localASN, peerAddress, interface: iface,
      sourceAddress, routerID, holdTime: timers.holdTime, keepaliveTime: timers.keepaliveTime, connectTime,
      nodes, password: passwords.password, passwordSecret: passwords.passwordSecret, bfdProfile, vrf,
    }),
  };
  return { env, peer };
}

/** Drops undefined values so optional fields stay absent (exactOptionalPropertyTypes-friendly, and cleaner to print). */
function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function readASNs(spec: JsonObject, v1beta1: boolean, report: Report): {
  myASN?: number; peerASN?: number; dynamicASN?: 'internal' | 'external'; localASN?: number;
} {
  const absent = (k: string): boolean => spec[k] === undefined || spec[k] === null;
  const myASN = optInt(spec, 'myASN', 'spec', report, UINT32);
  if (absent('myASN') || myASN === 0) report('spec.myASN', 'missing local ASN (myASN is required and must not be 0)');
  // As in Go, a zero peerASN means "not set".
  const peerASN = optInt(spec, 'peerASN', 'spec', report, UINT32) || undefined;
  const dynamicText = v1beta1 ? undefined : optString(spec, 'dynamicASN', 'spec', report) || undefined;
  let dynamicASN: 'internal' | 'external' | undefined;
  if (dynamicText === 'internal' || dynamicText === 'external') dynamicASN = dynamicText;
  else if (dynamicText !== undefined) report('spec.dynamicASN', `invalid dynamicASN ${show(dynamicText)}: must be "internal" or "external"`);
  const peerASNTypeError = !absent('peerASN') && typeof spec.peerASN !== 'number';
  if (peerASN === undefined && dynamicText === undefined && !peerASNTypeError) {
    report('spec.peerASN', v1beta1 ? 'missing peer ASN (peerASN is required and must not be 0)' : 'missing peer ASN and dynamicASN: set exactly one of them');
  }
  if (peerASN !== undefined && dynamicText !== undefined) report('spec.dynamicASN', `both peer ASN (${peerASN}) and dynamicASN specified: set only one`);
  const localASN = v1beta1 ? undefined : optInt(spec, 'localASN', 'spec', report, { min: 1, max: UINT32.max });
  return defined({ myASN: myASN || undefined, peerASN, dynamicASN, localASN });
}

function readEndpoint(spec: JsonObject, v1beta1: boolean, report: Report): { peerAddress?: string; iface?: string } {
  const address = optString(spec, 'peerAddress', 'spec', report) || undefined;
  const iface = v1beta1 ? undefined : optString(spec, 'interface', 'spec', report) || undefined;
  const typeError = (k: string): boolean => spec[k] !== undefined && spec[k] !== null && typeof spec[k] !== 'string';
  if (!address && !iface && !typeError('peerAddress') && !typeError('interface')) {
    report('spec.peerAddress', v1beta1 ? 'peerAddress is required' : 'peer has no Address or Interface specified: set peerAddress or interface');
  }
  if (address && iface) report('spec.interface', 'peer has both Address and Interface specified: set only one');
  if (address && !parseIP(address)) report('spec.peerAddress', `invalid BGPPeer address ${show(address)}`);
  if (iface && /[\r\n]/.test(iface)) report('spec.interface', 'interface name contains invalid characters (line breaks)');
  return defined({ peerAddress: address, iface });
}

function readIP(spec: JsonObject, key: string, what: string, report: Report): string | undefined {
  const text = optString(spec, key, 'spec', report);
  if (!text) return undefined;
  if (!parseIP(text)) {
    report(fieldPath('spec', key), `${what} ${show(text)}`);
    return undefined;
  }
  return text;
}

function readPort(spec: JsonObject, v1beta1: boolean, report: Report): number {
  // v1beta2's CRD defaults the port to 179 and requires 1..16384; v1beta1 allows 0, which we read as the default.
  const port = optInt(spec, 'peerPort', 'spec', report, { min: v1beta1 ? 0 : 1, max: 16384 });
  return port === undefined || port === 0 ? DEFAULT_BGP_PORT : port;
}

function readDuration(spec: JsonObject, key: string, report: Report): number | undefined {
  const v = spec[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') {
    report(fieldPath('spec', key), wrongType('a duration string like "90s" or "1m30s"', v));
    return undefined;
  }
  const parsed = parseGoDuration(v);
  if (!parsed.ok) {
    report(fieldPath('spec', key), parsed.message);
    return undefined;
  }
  return parsed.nanoseconds;
}

/**
 * MetalLB's parseTimers: with only one timer set the other is derived (keepalive = hold/3, hold = 3*keepalive);
 * the hold time rounded down to seconds must be 0 or at least 3 s; keepalive may not exceed hold.
 * Deviation: an unset timer of a v1beta1 object stays unset (speaker default 90 s). MetalLB's conversion turns it
 * into an explicit 0 s hold time (no keepalives at all), which looks accidental.
 */
function readTimers(spec: JsonObject, report: Report): { holdTime?: number; keepaliveTime?: number } {
  const hold = readDuration(spec, 'holdTime', report);
  const keepalive = readDuration(spec, 'keepaliveTime', report);
  if (hold === undefined && keepalive === undefined) return {};
  if (hold !== undefined && hold < 0) {
    report('spec.holdTime', `invalid hold time ${show(spec.holdTime)}: must not be negative`);
    return {};
  }
  if (keepalive !== undefined && keepalive < 0) {
    report('spec.keepaliveTime', `invalid keepaliveTime ${show(spec.keepaliveTime)}: must not be negative`);
    return {};
  }
  const holdNs = hold ?? (keepalive ?? 0) * 3;
  const keepaliveNs = keepalive ?? holdNs / 3;
  const holdSeconds = wholeSeconds(holdNs);
  if (holdSeconds !== 0 && holdSeconds < 3) {
    const field = hold !== undefined ? 'spec.holdTime' : 'spec.keepaliveTime';
    report(field, `invalid hold time ${show(spec.holdTime ?? `3 x ${String(spec.keepaliveTime)}`)}: must be 0 or >=3s`);
    return {};
  }
  if (keepaliveNs > holdNs) {
    report('spec.keepaliveTime', `invalid keepaliveTime ${show(spec.keepaliveTime)}: must be lower than holdTime ${show(spec.holdTime)}`);
    return {};
  }
  return { holdTime: holdSeconds, keepaliveTime: wholeSeconds(keepaliveNs) };
}

function readConnectTime(spec: JsonObject, report: Report): number | undefined {
  const ns = readDuration(spec, 'connectTime', report);
  if (ns === undefined) return undefined;
  // The CRD's CEL rule: whole seconds between 1 and 65535.
  if (ns % 1e9 !== 0 || ns < 1e9 || ns > 65535e9) {
    report('spec.connectTime', `invalid connectTime ${show(spec.connectTime)}: must be a whole number of seconds between 1s and 65535s`);
    return undefined;
  }
  return ns / 1e9;
}

function readPassword(spec: JsonObject, env: Envelope, ctx: PeerContext, report: Report): {
  password?: string; passwordSecret?: { name: string; namespace?: string };
} {
  const plain = optString(spec, 'password', 'spec', report) || undefined;
  if (plain !== undefined && /[\r\n]/.test(plain)) report('spec.password', 'password contains invalid characters (line breaks)');
  const ref = env.version === 'v1beta1' ? undefined : optObject(spec, 'passwordSecret', 'spec', report);
  if (!ref) return defined({ password: plain });
  checkKnownFields(ref, ['name', 'namespace'], 'spec.passwordSecret', report);
  const name = optString(ref, 'name', 'spec.passwordSecret', report) || undefined;
  const namespace = optString(ref, 'namespace', 'spec.passwordSecret', report) || undefined;
  if (!name) return defined({ password: plain }); // `passwordSecret: {}` is how MetalLB's generator writes "none"
  const passwordSecret = { name, ...defined({ namespace }) };
  if (plain !== undefined) {
    report('spec.passwordSecret', 'can not have both password and passwordSecret set');
    return { password: plain, passwordSecret };
  }
  if (namespace !== undefined && namespace !== ctx.namespace) {
    report('spec.passwordSecret.namespace', `the secret must be in the MetalLB namespace ${show(ctx.namespace)}, got ${show(namespace)}`);
    return { passwordSecret };
  }
  const secret = ctx.secrets.find((s) => s.metadata?.name === name && (s.metadata.namespace ?? ctx.namespace) === ctx.namespace);
  if (!secret) {
    report('spec.passwordSecret.name', `secret ${show(`${ctx.namespace}/${name}`)} not found`);
    return { passwordSecret };
  }
  if (secret.type !== 'kubernetes.io/basic-auth') {
    report('spec.passwordSecret.name', `secret ${show(`${ctx.namespace}/${name}`)} has type ${show(secret.type ?? '')}, type "kubernetes.io/basic-auth" is expected`);
    return { passwordSecret };
  }
  const password = secretPassword(secret);
  if (password === undefined) {
    report('spec.passwordSecret.name', `password not specified in the secret ${show(`${ctx.namespace}/${name}`)} (key "password")`);
    return { passwordSecret };
  }
  if (/[\r\n]/.test(password)) report('spec.passwordSecret.name', 'the password in the secret contains invalid characters (line breaks)');
  return { password, passwordSecret };
}

/** `stringData` (as written in files) wins over `data` (base64, as read from the API), like the API server merges them. */
function secretPassword(secret: Secret): string | undefined {
  const text = secret.stringData?.password;
  if (typeof text === 'string') return text;
  const encoded = secret.data?.password;
  if (typeof encoded !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) return undefined;
  return Buffer.from(encoded, 'base64').toString('utf8');
}
