// Timing and behaviour knobs: hashicorp/memberlist's Config fields (config.go) in milliseconds, plus
// the few extensions our fast failure detection adds, with memberlist's presets and ours.

export interface TimingConfig {
  /** How often each member is probed (memberlist ProbeInterval); also the deadline of one probe. */
  probeIntervalMs: number;
  /** Wait for a direct ack before asking others to probe indirectly (ProbeTimeout). */
  probeTimeoutMs: number;
  /** Members asked to probe indirectly (IndirectChecks). */
  indirectChecks: number;
  /** Suspicion timeout = SuspicionMult × max(1, log10 N) × ProbeInterval when confirmed. */
  suspicionMult: number;
  /** Unconfirmed suspicion lasts up to this many times the timeout above (SuspicionMaxTimeoutMult). */
  suspicionMaxTimeoutMult: number;
  /** Each broadcast is gossiped RetransmitMult × ceil(log10(N+1)) times (RetransmitMult). */
  retransmitMult: number;
  gossipIntervalMs: number;
  gossipNodes: number;
  /** Dead members still receive gossip this long, so they can learn they were declared dead. */
  gossipToTheDeadMs: number;
  /** Full state exchange over TCP with one random member (PushPullInterval); 0 disables. */
  pushPullIntervalMs: number;
  tcpTimeoutMs: number;
  /** Lifeguard: a member that misses nacks or must refute slows its own probing up to this factor. */
  awarenessMaxMultiplier: number;
  /** No TCP ping fallback when UDP probes fail (DisableTcpPings). */
  disableTcpPings: boolean;
  /** Largest UDP packet we build (UDPBufferSize). */
  udpBufferSize: number;
  /** Compress packets (when smaller) and streams with LZW (EnableCompression). */
  enableCompression: boolean;
  /** With a key: refuse unencrypted input (GossipVerifyIncoming) / encrypt output (GossipVerifyOutgoing). */
  gossipVerifyIncoming: boolean;
  gossipVerifyOutgoing: boolean;
  /** A dead member's name may move to a new address after this long (DeadNodeReclaimTime); 0 = never. */
  deadNodeReclaimMs: number;
  /** memberlist HandoffQueueDepth: received state messages waiting for processing before drops. */
  handoffQueueDepth: number;

  // Extensions. With `adaptive` false the member behaves exactly as hashicorp/memberlist.
  /**
   * Our detector: ping every member every interval (or, with onePingerPerPair, let the member whose name
   * sorts first ping and answer it) and judge each by how long it has been silent
   * (any packet from it counts), against a tolerance that stretches with the delays recently seen
   * from it and with our own event-loop lateness, and decays back to suspectAfterSilenceMs when quiet.
   */
  adaptive: boolean;
  /**
   * Adaptive mode: members watched closely, pinged every interval (our ring neighbours, half on each side; detector.ts
   * ringNeighbours). The others are pinged round robin, one per gossip interval.
   */
  monitoredPeers: number;
  /** Adaptive mode: of each pair of members, only the one whose name sorts first pings (detector.ts shouldPing). */
  onePingerPerPair: boolean;
  /** Silence that makes a member suspect on a quiet network. */
  suspectAfterSilenceMs: number;
  /** Tolerated silence is at least this many times the recent worst delay (its or ours). */
  jitterFactor: number;
  /** Assumed worst delay of a member not measured yet. */
  initialJitterMs: number;
  /** How fast a measured delay is forgotten (halves every this many ms). */
  jitterHalfLifeMs: number;
  /** Adaptive mode: independent suspicions (up to members−2) that shorten a suspicion to its minimum. */
  suspicionConfirmations: number;
  /** memberlist mode: consecutive failed probes before suspecting (memberlist: 1). */
  failedProbesToSuspect: number;
  /** Send suspect/dead/refuting alive messages straight to this many members as well as gossiping them. */
  directBroadcastFanout: number;
  /**
   * Adaptive mode's fast path (detector.ts): a member silent for `reachCheckAfterMs` has its host checked with a TCP
   * connect (then a TCP ping); no SYN-ACK within `reachTimeoutMs` (0: no fast path) and silence past
   * `suspectAfterSilenceMs` make it suspect for `unreachableSuspicionMs` only. A host that answers is checked again
   * after `reachRecheckMs`. Lifeguard: a check waits longer by the worst lateness of our own timers over the last
   * `localHealthHoldMs`.
   */
  reachCheckAfterMs: number;
  reachTimeoutMs: number;
  reachRecheckMs: number;
  unreachableSuspicionMs: number;
  localHealthHoldMs: number;
}

/** memberlist.DefaultLANConfig() (v0.5.x): what MetalLB runs with unless configured. */
export const LAN_CONFIG: Readonly<TimingConfig> = Object.freeze({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
  tcpTimeoutMs: 10_000,
  awarenessMaxMultiplier: 8,
  disableTcpPings: false,
  udpBufferSize: 1400,
  enableCompression: true,
  gossipVerifyIncoming: true,
  gossipVerifyOutgoing: true,
  deadNodeReclaimMs: 0,
  handoffQueueDepth: 1024,
  adaptive: false,
  monitoredPeers: 4,
  onePingerPerPair: false,
  suspectAfterSilenceMs: 0,
  jitterFactor: 0,
  initialJitterMs: 0,
  jitterHalfLifeMs: 0,
  suspicionConfirmations: 0,
  failedProbesToSuspect: 1,
  directBroadcastFanout: 0,
  reachCheckAfterMs: 0,
  reachTimeoutMs: 0,
  reachRecheckMs: 0,
  unreachableSuspicionMs: 0,
  localHealthHoldMs: 0,
});

/** memberlist.DefaultWANConfig() (MetalLB's --ml-wan-config). */
export const WAN_CONFIG: Readonly<TimingConfig> = Object.freeze({
  ...LAN_CONFIG,
  tcpTimeoutMs: 30_000,
  suspicionMult: 6,
  pushPullIntervalMs: 60_000,
  probeTimeoutMs: 3000,
  probeIntervalMs: 5000,
  gossipNodes: 4,
  gossipIntervalMs: 500,
  gossipToTheDeadMs: 60_000,
});

/** memberlist.DefaultLocalConfig(). */
export const LOCAL_CONFIG: Readonly<TimingConfig> = Object.freeze({
  ...LAN_CONFIG,
  tcpTimeoutMs: 1000,
  indirectChecks: 1,
  retransmitMult: 2,
  suspicionMult: 3,
  pushPullIntervalMs: 15_000,
  probeTimeoutMs: 200,
  probeIntervalMs: 1000,
  gossipIntervalMs: 100,
  gossipToTheDeadMs: 15_000,
});

/**
 * Our default: a dead member is declared dead well under 100 ms after it goes silent on a quiet
 * network, and a member that is merely slow (CPU starved) is given the time it has been seen to need.
 * See docs/speaker.md "Membership" for the reasoning and the measured figures.
 */
export const FAST_CONFIG: Readonly<TimingConfig> = Object.freeze({
  ...LAN_CONFIG,
  probeIntervalMs: 7,
  probeTimeoutMs: 5,
  indirectChecks: 3,
  suspicionMult: 2,
  suspicionMaxTimeoutMult: 8,
  retransmitMult: 4,
  gossipIntervalMs: 20,
  gossipNodes: 3,
  pushPullIntervalMs: 10_000,
  tcpTimeoutMs: 2000,
  adaptive: true,
  monitoredPeers: 4,
  onePingerPerPair: true,
  suspectAfterSilenceMs: 16,
  jitterFactor: 2,
  initialJitterMs: 40,
  jitterHalfLifeMs: 20_000,
  suspicionConfirmations: 2,
  failedProbesToSuspect: 1,
  directBroadcastFanout: 64,
  reachCheckAfterMs: 10,
  reachTimeoutMs: 6,
  reachRecheckMs: 50,
  unreachableSuspicionMs: 3,
  localHealthHoldMs: 100,
});

export const PRESETS = { fast: FAST_CONFIG, lan: LAN_CONFIG, wan: WAN_CONFIG, local: LOCAL_CONFIG } as const;
export type PresetName = keyof typeof PRESETS;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

// MetalLB's memberlist ConfigMap (metallb-memberlist-config, config.json) carries memberlist.Config
// fields; Go's encoding/json matches them case-insensitively and reads a time.Duration as integer
// nanoseconds. We also accept Go duration strings ("500ms") and snake_case names.
type FieldKind = 'duration' | 'int' | 'bool';
const GO_FIELDS: Record<string, [keyof TimingConfig, FieldKind]> = {
  tcptimeout: ['tcpTimeoutMs', 'duration'],
  indirectchecks: ['indirectChecks', 'int'],
  retransmitmult: ['retransmitMult', 'int'],
  suspicionmult: ['suspicionMult', 'int'],
  suspicionmaxtimeoutmult: ['suspicionMaxTimeoutMult', 'int'],
  pushpullinterval: ['pushPullIntervalMs', 'duration'],
  probetimeout: ['probeTimeoutMs', 'duration'],
  probeinterval: ['probeIntervalMs', 'duration'],
  disabletcppings: ['disableTcpPings', 'bool'],
  awarenessmaxmultiplier: ['awarenessMaxMultiplier', 'int'],
  gossipnodes: ['gossipNodes', 'int'],
  gossipinterval: ['gossipIntervalMs', 'duration'],
  gossiptothedeadtime: ['gossipToTheDeadMs', 'duration'],
  gossipverifyincoming: ['gossipVerifyIncoming', 'bool'],
  gossipverifyoutgoing: ['gossipVerifyOutgoing', 'bool'],
  enablecompression: ['enableCompression', 'bool'],
  handoffqueuedepth: ['handoffQueueDepth', 'int'],
  udpbuffersize: ['udpBufferSize', 'int'],
  deadnodereclaimtime: ['deadNodeReclaimMs', 'duration'],
};
/** memberlist Config fields that are not timing (name, addresses, ...): accepted and ignored here. */
const IGNORED_FIELDS = new Set(['name', 'bindaddr', 'bindport', 'advertiseaddr', 'advertiseport', 'dnsconfigpath', 'queuecheckinterval', 'protocolversion']);

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds. */
export function parseGoDuration(s: string): number {
  const t = s.trim();
  if (t === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let sign = 1;
  let rest = t;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '') throw new ConfigError(`invalid duration "${s}"`);
  let total = 0;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  let consumed = 0;
  while ((m = re.exec(rest)) !== null) {
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (consumed !== rest.length) throw new ConfigError(`invalid duration "${s}" (Go syntax, e.g. "500ms", "1.5s")`);
  return sign * total;
}

function fieldValue(kind: FieldKind, name: string, v: unknown): number | boolean {
  if (kind === 'bool') {
    if (typeof v === 'boolean') return v;
    throw new ConfigError(`${name}: expected true or false, got ${JSON.stringify(v)}`);
  }
  if (kind === 'int') {
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
    throw new ConfigError(`${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  }
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v / 1e6; // Go: nanoseconds
  if (typeof v === 'string') {
    const ms = parseGoDuration(v);
    if (ms < 0) throw new ConfigError(`${name}: negative duration ${v}`);
    return ms;
  }
  throw new ConfigError(`${name}: expected a duration (nanoseconds or "500ms"), got ${JSON.stringify(v)}`);
}

/**
 * Applies MetalLB's `metallb-memberlist-config` config.json (memberlist.Config fields) over `base`.
 * Unknown fields are an error naming them; a malformed file is an error, never a silent default.
 */
export function applyMemberlistConfigJson(base: Readonly<TimingConfig>, text: string): TimingConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`memberlist config.json is not valid JSON: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('memberlist config.json must be a JSON object');
  const out: TimingConfig = { ...base };
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const norm = key.toLowerCase().replace(/_/g, '');
    const f = GO_FIELDS[norm];
    if (!f) {
      if (!IGNORED_FIELDS.has(norm)) unknown.push(key);
      continue;
    }
    (out as unknown as Record<string, number | boolean>)[f[0]] = fieldValue(f[1], key, value);
  }
  if (unknown.length > 0) {
    throw new ConfigError(`memberlist config.json: unknown field(s) ${unknown.join(', ')} (known: ${Object.keys(GO_FIELDS).join(', ')})`);
  }
  validateTiming(out);
  return out;
}

/**
 * MetalLB's MEMBERLIST_* environment overrides (speakerlist.ApplyEnvOverrides): values that do not
 * parse or are out of range are skipped there silently; here they are returned as warnings.
 */
export function applyMemberlistEnv(base: Readonly<TimingConfig>, env: NodeJS.ProcessEnv, prefix = 'MEMBERLIST_'): { config: TimingConfig; warnings: string[] } {
  const out: TimingConfig = { ...base };
  const warnings: string[] = [];
  const set = (k: keyof TimingConfig, v: number | boolean): void => {
    (out as unknown as Record<string, number | boolean>)[k] = v;
  };
  const ints: Array<[string, keyof TimingConfig, number]> = [
    ['INDIRECT_CHECKS', 'indirectChecks', 1e6], ['RETRANSMIT_MULT', 'retransmitMult', 1e6], ['SUSPICION_MULT', 'suspicionMult', 1e6],
    ['SUSPICION_MAX_TIMEOUT_MULT', 'suspicionMaxTimeoutMult', 1e6], ['GOSSIP_NODES', 'gossipNodes', 1e6],
    ['AWARENESS_MAX_MULTIPLIER', 'awarenessMaxMultiplier', 1e6], ['HANDOFF_QUEUE_DEPTH', 'handoffQueueDepth', 1e7], ['UDP_BUFFER_SIZE', 'udpBufferSize', 1e7],
  ];
  const durations: Array<[string, keyof TimingConfig]> = [
    ['TCP_TIMEOUT', 'tcpTimeoutMs'], ['PUSH_PULL_INTERVAL', 'pushPullIntervalMs'], ['PROBE_TIMEOUT', 'probeTimeoutMs'],
    ['PROBE_INTERVAL', 'probeIntervalMs'], ['GOSSIP_INTERVAL', 'gossipIntervalMs'], ['GOSSIP_TO_THE_DEAD_TIME', 'gossipToTheDeadMs'],
  ];
  const bools: Array<[string, keyof TimingConfig]> = [
    ['GOSSIP_VERIFY_INCOMING', 'gossipVerifyIncoming'], ['GOSSIP_VERIFY_OUTGOING', 'gossipVerifyOutgoing'],
    ['DISABLE_TCP_PINGS', 'disableTcpPings'], ['ENABLE_COMPRESSION', 'enableCompression'],
  ];
  const get = (k: string): string | undefined => env[prefix + k]?.trim();
  for (const [k, f, max] of ints) {
    const v = get(k);
    if (v === undefined) continue;
    const n = Number(v);
    if (/^-?\d+$/.test(v) && n >= 0 && n <= max) set(f, n);
    else warnings.push(`${prefix}${k}=${v} ignored: not an integer in [0, ${max}]`);
  }
  for (const [k, f] of durations) {
    const v = get(k);
    if (v === undefined) continue;
    try {
      const ms = parseGoDuration(v);
      if (ms < 0 || ms > 86_400_000) throw new ConfigError('out of range');
      set(f, ms);
    } catch {
      warnings.push(`${prefix}${k}=${v} ignored: not a duration in [0, 24h]`);
    }
  }
  for (const [k, f] of bools) {
    const v = get(k);
    if (v === undefined) continue;
    // Go's strconv.ParseBool.
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) set(f, true);
    else if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) set(f, false);
    else warnings.push(`${prefix}${k}=${v} ignored: not a boolean`);
  }
  validateTiming(out);
  return { config: out, warnings };
}

export function validateTiming(c: TimingConfig): void {
  const positive: Array<keyof TimingConfig> = ['probeIntervalMs', 'probeTimeoutMs', 'gossipIntervalMs', 'tcpTimeoutMs', 'udpBufferSize', 'suspicionMult', 'monitoredPeers', 'failedProbesToSuspect'];
  for (const k of positive) {
    const v = c[k];
    if (typeof v !== 'number' || !(v > 0)) throw new ConfigError(`memberlist timing: ${k} must be > 0 (got ${String(v)})`);
  }
  if (c.suspicionMaxTimeoutMult < 1) throw new ConfigError('memberlist timing: suspicionMaxTimeoutMult must be >= 1');
  if (c.awarenessMaxMultiplier < 1) throw new ConfigError('memberlist timing: awarenessMaxMultiplier must be >= 1');
  if (c.udpBufferSize < 256) throw new ConfigError('memberlist timing: udpBufferSize must be >= 256');
}

/** memberlist util.go suspicionTimeout, in ms. */
export function suspicionTimeoutMs(suspicionMult: number, n: number, intervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return (suspicionMult * Math.floor(nodeScale * 1000) * intervalMs) / 1000;
}

/** memberlist util.go retransmitLimit. */
export function retransmitLimit(retransmitMult: number, n: number): number {
  return retransmitMult * Math.ceil(Math.log10(n + 1));
}
