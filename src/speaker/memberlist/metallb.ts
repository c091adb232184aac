// MetalLB's speaker settings → MemberlistOptions: the `memberlist` Secret's key, the
// metallb-memberlist-config ConfigMap (config.json) or MEMBERLIST_* environment, --ml-wan-config.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyMemberlistConfigJson, applyMemberlistEnv, FAST_CONFIG, type TimingConfig, WAN_CONFIG } from './config.js';
import type { MemberlistOptions, VersionRange } from './engine.js';
import { metallbKey } from './security.js';

/** The key file inside --ml-secret-key-path (MetalLB's k8s.MLSecretKeyName). */
export const ML_SECRET_KEY_NAME = 'secretkey';
/** Where MetalLB's manifests mount the metallb-memberlist-config ConfigMap. */
export const ML_CONFIG_PATH = '/etc/metallb/memberlist/config.json';

export interface MetallbMemberlistSettings {
  /** METALLB_NODE_NAME: the member name. */
  nodeName: string;
  /** --ml-bindaddr / METALLB_ML_BIND_ADDR (the pod IP in MetalLB's manifests). */
  bindAddr: string;
  /** --ml-bindport / METALLB_ML_BIND_PORT; default 7946. */
  bindPort?: number;
  /** --ml-secret-key-path / METALLB_ML_SECRET_KEY_PATH: directory holding `secretkey`. */
  secretKeyPath?: string;
  /** The secret itself, when already read. */
  secret?: string | Uint8Array;
  /** --ml-wan-config: memberlist's WAN defaults instead of our fast timing. */
  wan?: boolean;
  /** config.json text or path (optional). */
  configJson?: string;
  configJsonPath?: string;
  /** Environment for MEMBERLIST_* overrides (MetalLB's custom-config mode). */
  env?: NodeJS.ProcessEnv;
  /**
   * METALLB_ML_DELEGATE_VERSION (ours, not MetalLB's): delegate protocol versions to advertise. MetalLB's speakers have
   * none (0,0,0, the default); serf agents refuse to merge with members whose versions do not overlap theirs (2..5),
   * so observing the speakers' gossip with serf needs "2,5,5" on every speaker (and then no MetalLB speaker can join).
   */
  delegateVersion?: string;
}

/** "min,max,cur", each 0..255 (memberlist's DelegateProtocolMin/Max/Version). */
export function parseDelegateVersion(text: string, what: string): VersionRange {
  const v = text.split(',').map((x) => (/^\s*\d+\s*$/.test(x) ? Number(x) : NaN));
  if (v.length !== 3 || v.some((x) => !Number.isInteger(x) || x > 255)) throw new Error(`${what}: "${text}" is not three integers 0..255 (min,max,current), e.g. 2,5,5`);
  const [min, max, cur] = v as [number, number, number];
  if (!(min <= cur && cur <= max)) throw new Error(`${what}: "${text}": the current version must lie between min and max`);
  return { min, max, cur };
}

export interface ResolvedMetallbMemberlist {
  options: MemberlistOptions;
  timing: TimingConfig;
  /** Human-readable notes for the log: unencrypted mode, ignored overrides, where timing came from. */
  notes: string[];
}

export function memberlistOptionsFromMetallb(s: MetallbMemberlistSettings): ResolvedMetallbMemberlist {
  const notes: string[] = [];
  let timing: TimingConfig = { ...(s.wan ? WAN_CONFIG : FAST_CONFIG) };
  notes.push(s.wan ? 'timing: memberlist WAN defaults (--ml-wan-config)' : 'timing: metallb-ts fast failure detection defaults');
  let jsonText = s.configJson;
  if (jsonText === undefined && s.configJsonPath) {
    try {
      jsonText = readFileSync(s.configJsonPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  if (jsonText !== undefined && jsonText.trim() !== '') {
    timing = applyMemberlistConfigJson(timing, jsonText);
    notes.push('timing: overridden by the memberlist config.json');
  }
  if (s.env) {
    const r = applyMemberlistEnv(timing, s.env);
    timing = r.config;
    notes.push(...r.warnings);
  }
  let secret = s.secret;
  // MetalLB uses the file's bytes as they are (no trimming).
  if (secret === undefined && s.secretKeyPath) secret = readFileSync(join(s.secretKeyPath, ML_SECRET_KEY_NAME));
  if (!secret || secret.length === 0) notes.push('no memberlist secret key set, memberlist traffic will not be encrypted');
  const delegateVersion = s.delegateVersion ? parseDelegateVersion(s.delegateVersion, 'METALLB_ML_DELEGATE_VERSION') : undefined;
  if (delegateVersion) notes.push(`advertising delegate protocol versions ${s.delegateVersion} (serf's); MetalLB speakers (0,0,0) cannot join this cluster`);
  return {
    options: {
      name: s.nodeName,
      bindAddr: s.bindAddr,
      bindPort: s.bindPort ?? 7946,
      secretKeys: secret && secret.length > 0 ? [metallbKey(secret)] : [],
      timing,
      ...(delegateVersion ? { delegateVersion } : {}),
    },
    timing,
    notes,
  };
}
