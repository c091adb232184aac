// Volume setup on the node: each volume of a pod becomes a directory under `<root>/pods/<uid>/volumes/<plugin>/<name>`
// (hostPath: the host path itself). Secret, ConfigMap, projected and downward-API volumes are written with the atomic
// writer and rewritten on every pod sync, so a changed Secret shows up in running containers. The automounted
// service-account volume is added here when the API server did not add it at admission.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigMap, Secret } from '../../k8s/types.js';
import { writeAtomic, PayloadError, type PayloadFile } from './atomic-writer.js';
import { ContainerConfigError, podFieldValue, resourceFieldValue, type EnvSources } from './env.js';
import type { TokenManager } from './tokens.js';
import type { Container, DownwardAPIVolumeFile, KeyToPath, Pod, Volume, VolumeMount } from './types.js';
import { run } from './run.js';

export const SA_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Name of the service-account volume the kubelet adds itself (the API server's admission did not). */
export const KUBELET_SA_VOLUME = 'kube-api-access-kubelet';
const DEFAULT_MODE = 0o644;

/** A volume could not be set up; `message` follows the kubelet's FailedMount wording. */
export class VolumeError extends Error {
  override name = 'VolumeError';
  constructor(
    readonly volume: string,
    detail: string,
  ) {
    super(`MountVolume.SetUp failed for volume "${volume}" : ${detail}`);
  }
}

export interface PreparedVolume {
  name: string;
  path: string;
  /** Secret, ConfigMap, projected and downward-API volumes are always read-only in the container. */
  forceReadOnly: boolean;
}

export interface VolumeContext extends EnvSources {
  tokens: TokenManager;
  /** CA bundle for the kubelet's own service-account volume when `kube-root-ca.crt` does not exist yet. */
  fallbackCA?: Buffer;
  /** Whether the pod's service account allows automounting (undefined: unknown, treated as yes). */
  serviceAccountAutomount(namespace: string, name: string): Promise<boolean | undefined>;
}

export interface PreparedPodVolumes {
  volumes: Map<string, PreparedVolume>;
  /** Mounts to add to every container (the kubelet's own service-account mount), by container name. */
  extraMounts: Map<string, VolumeMount[]>;
  /** Earliest time a projected token must be renewed (ms epoch). */
  refreshAt?: number;
}

const pluginDir = (kind: string): string => `kubernetes.io~${kind}`;

function secretBytes(s: Secret, key: string): Buffer | undefined {
  if (s.data?.[key] !== undefined) return Buffer.from(s.data[key], 'base64');
  if (s.stringData?.[key] !== undefined) return Buffer.from(s.stringData[key], 'utf8');
  return undefined;
}

function keyedPayload(
  what: 'secret' | 'configmap',
  name: string,
  all: Map<string, Buffer>,
  items: KeyToPath[] | undefined,
  mode: number,
  optional: boolean,
  out: Map<string, PayloadFile>,
): void {
  if (!items || items.length === 0) {
    for (const [k, v] of all) out.set(k, { content: v, mode });
    return;
  }
  for (const it of items) {
    const v = all.get(it.key);
    if (v === undefined) {
      if (optional) continue;
      throw new Error(what === 'secret' ? `references non-existent secret key: ${it.key}` : `configmap references non-existent config key: ${it.key}`);
    }
    out.set(it.path, { content: v, mode: it.mode ?? mode });
  }
  void name;
}

function secretMap(s: Secret): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const k of Object.keys({ ...(s.stringData ?? {}), ...(s.data ?? {}) })) {
    const b = secretBytes(s, k);
    if (b) m.set(k, b);
  }
  return m;
}

function configMapMap(cm: ConfigMap & { binaryData?: Record<string, string> }): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(cm.data ?? {})) m.set(k, Buffer.from(v, 'utf8'));
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) m.set(k, Buffer.from(v, 'base64'));
  return m;
}

function downwardPayload(pod: Pod, items: DownwardAPIVolumeFile[], mode: number, ctx: VolumeContext, out: Map<string, PayloadFile>): void {
  for (const it of items) {
    let value: string;
    if (it.fieldRef) value = podFieldValue(pod, it.fieldRef, true);
    else if (it.resourceFieldRef) value = resourceFieldValue(pod, undefined, it.resourceFieldRef, ctx.nodeAllocatable);
    else continue;
    out.set(it.path, { content: Buffer.from(value, 'utf8'), mode: it.mode ?? mode });
  }
}

/** The volume the ServiceAccount admission plugin adds (kube-api-access-xxxxx), for pods that lack it. */
export function serviceAccountVolume(name: string): Volume {
  return {
    name,
    projected: {
      defaultMode: DEFAULT_MODE,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

const allContainers = (pod: Pod): Container[] => [...(pod.spec.initContainers ?? []), ...pod.spec.containers];

export class VolumeManager {
  constructor(
    private readonly rootDir: string,
    private readonly ctx: VolumeContext,
  ) {}

  podDir(uid: string): string {
    return join(this.rootDir, 'pods', uid);
  }

  /** Sets up (or refreshes) every volume of the pod. Throws VolumeError for the first one that fails. */
  async prepare(pod: Pod): Promise<PreparedPodVolumes> {
    const uid = pod.metadata.uid ?? '';
    const out: PreparedPodVolumes = { volumes: new Map(), extraMounts: new Map() };
    const volumes = [...(pod.spec.volumes ?? [])];
    // The kubelet's own service-account mount, for containers without one (the API server did not inject it).
    const sa = pod.spec.serviceAccountName || pod.spec.serviceAccount || 'default';
    const ns = pod.metadata.namespace ?? 'default';
    const lacking = allContainers(pod).filter((c) => !(c.volumeMounts ?? []).some((m) => m.mountPath.replace(/\/+$/, '') === SA_MOUNT_PATH));
    let automount = pod.spec.automountServiceAccountToken;
    if (lacking.length > 0 && automount === undefined) automount = (await this.ctx.serviceAccountAutomount(ns, sa)) ?? true;
    let kubeletSA: Volume | undefined;
    if (lacking.length > 0 && automount !== false && !volumes.some((v) => v.name === KUBELET_SA_VOLUME)) {
      kubeletSA = serviceAccountVolume(KUBELET_SA_VOLUME);
      volumes.push(kubeletSA);
      for (const c of lacking) out.extraMounts.set(c.name, [{ name: KUBELET_SA_VOLUME, mountPath: SA_MOUNT_PATH, readOnly: true }]);
    }
    for (const v of volumes) {
      try {
        const pv = await this.prepareOne(pod, v, v === kubeletSA, out);
        if (pv) out.volumes.set(v.name, pv);
      } catch (err) {
        if (err instanceof VolumeError) throw err;
        throw new VolumeError(v.name, err instanceof Error ? err.message : String(err));
      }
    }
    void uid;
    return out;
  }

  private async prepareOne(pod: Pod, v: Volume, kubeletOwned: boolean, out: PreparedPodVolumes): Promise<PreparedVolume | undefined> {
    const uid = pod.metadata.uid ?? '';
    const ns = pod.metadata.namespace ?? 'default';
    const base = this.podDir(uid);
    if (v.secret) {
      const dir = join(base, 'volumes', pluginDir('secret'), v.name);
      const name = v.secret.secretName ?? '';
      const s = this.ctx.secret(ns, name);
      const payload = new Map<string, PayloadFile>();
      if (!s) {
        if (!v.secret.optional) throw new VolumeError(v.name, `secret "${name}" not found`);
      } else {
        keyedPayload('secret', name, secretMap(s), v.secret.items, v.secret.defaultMode ?? DEFAULT_MODE, v.secret.optional === true, payload);
      }
      writePayload(v.name, dir, payload);
      return { name: v.name, path: dir, forceReadOnly: true };
    }
    if (v.configMap) {
      const dir = join(base, 'volumes', pluginDir('configmap'), v.name);
      const name = v.configMap.name ?? '';
      const cm = this.ctx.configMap(ns, name);
      const payload = new Map<string, PayloadFile>();
      if (!cm) {
        if (!v.configMap.optional) throw new VolumeError(v.name, `configmap "${name}" not found`);
      } else {
        keyedPayload('configmap', name, configMapMap(cm), v.configMap.items, v.configMap.defaultMode ?? DEFAULT_MODE, v.configMap.optional === true, payload);
      }
      writePayload(v.name, dir, payload);
      return { name: v.name, path: dir, forceReadOnly: true };
    }
    if (v.downwardAPI) {
      const dir = join(base, 'volumes', pluginDir('downward-api'), v.name);
      const payload = new Map<string, PayloadFile>();
      downwardPayload(pod, v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? DEFAULT_MODE, this.ctx, payload);
      writePayload(v.name, dir, payload);
      return { name: v.name, path: dir, forceReadOnly: true };
    }
    if (v.projected) {
      const dir = join(base, 'volumes', pluginDir('projected'), v.name);
      const mode = v.projected.defaultMode ?? DEFAULT_MODE;
      const payload = new Map<string, PayloadFile>();
      for (const src of v.projected.sources ?? []) {
        if (src.secret) {
          const name = src.secret.name ?? '';
          const s = this.ctx.secret(ns, name);
          if (!s) {
            if (!src.secret.optional) throw new VolumeError(v.name, `secret "${name}" not found`);
            continue;
          }
          keyedPayload('secret', name, secretMap(s), src.secret.items, mode, src.secret.optional === true, payload);
        } else if (src.configMap) {
          const name = src.configMap.name ?? '';
          const cm = this.ctx.configMap(ns, name);
          if (!cm) {
            if (kubeletOwned && name === 'kube-root-ca.crt') {
              // Before the controller-manager publishes the cluster CA, the kubelet's own mount uses the CA it trusts.
              if (this.ctx.fallbackCA) payload.set('ca.crt', { content: this.ctx.fallbackCA, mode });
              continue;
            }
            if (!src.configMap.optional) throw new VolumeError(v.name, `configmap "${name}" not found`);
            continue;
          }
          keyedPayload('configmap', name, configMapMap(cm), src.configMap.items, mode, src.configMap.optional === true, payload);
        } else if (src.downwardAPI) {
          downwardPayload(pod, src.downwardAPI.items ?? [], mode, this.ctx, payload);
        } else if (src.serviceAccountToken) {
          const sa = pod.spec.serviceAccountName || pod.spec.serviceAccount || 'default';
          const t = await this.ctx.tokens.get(pod, sa, src.serviceAccountToken.audience, src.serviceAccountToken.expirationSeconds ?? 3600);
          payload.set(src.serviceAccountToken.path, { content: Buffer.from(t.token), mode });
          out.refreshAt = Math.min(out.refreshAt ?? Infinity, t.refreshAt);
        } else if (src.clusterTrustBundle) {
          throw new VolumeError(v.name, 'clusterTrustBundle projections are not supported by the lab kubelet');
        }
      }
      writePayload(v.name, dir, payload);
      return { name: v.name, path: dir, forceReadOnly: true };
    }
    if (v.emptyDir) {
      const dir = join(base, 'volumes', pluginDir('empty-dir'), v.name);
      mkdirSync(dir, { recursive: true, mode: 0o777 });
      chmodSync(dir, 0o777);
      if (v.emptyDir.medium === 'Memory' && !isMountPoint(dir)) {
        const size = v.emptyDir.sizeLimit !== undefined ? `,size=${String(v.emptyDir.sizeLimit).replace(/i$/, '')}` : '';
        await run(['mount', '-t', 'tmpfs', '-o', `mode=0777${size}`, 'tmpfs', dir]);
      }
      return { name: v.name, path: dir, forceReadOnly: false };
    }
    if (v.hostPath) {
      const p = v.hostPath.path;
      const type = v.hostPath.type ?? '';
      const exists = existsSync(p);
      switch (type) {
        case 'DirectoryOrCreate':
          if (!exists) mkdirSync(p, { recursive: true, mode: 0o755 });
          break;
        case 'FileOrCreate':
          if (!exists) writeFileSync(p, '', { mode: 0o644 });
          break;
        case 'Directory':
          if (!exists || !statSync(p).isDirectory()) throw new VolumeError(v.name, `hostPath type check failed: ${p} is not a directory`);
          break;
        case 'File':
          if (!exists || !statSync(p).isFile()) throw new VolumeError(v.name, `hostPath type check failed: ${p} is not a file`);
          break;
        case 'Socket':
          if (!exists || !statSync(p).isSocket()) throw new VolumeError(v.name, `hostPath type check failed: ${p} is not a socket file`);
          break;
        case 'CharDevice':
          if (!exists || !statSync(p).isCharacterDevice()) throw new VolumeError(v.name, `hostPath type check failed: ${p} is not a character device`);
          break;
        case 'BlockDevice':
          if (!exists || !statSync(p).isBlockDevice()) throw new VolumeError(v.name, `hostPath type check failed: ${p} is not a block device`);
          break;
        case '':
          if (!exists) mkdirSync(p, { recursive: true, mode: 0o755 });
          break;
        default:
          throw new VolumeError(v.name, `unknown hostPath type "${type}"`);
      }
      return { name: v.name, path: p, forceReadOnly: false };
    }
    const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
    throw new VolumeError(v.name, `volume type "${kind}" is not supported by the lab kubelet (supported: secret, configMap, projected, downwardAPI, emptyDir, hostPath)`);
  }

  /** Unmounts memory-backed emptyDirs and removes the pod's directory (logs and volumes). */
  async teardown(uid: string): Promise<void> {
    const dir = this.podDir(uid);
    if (!existsSync(dir)) return;
    for (const mp of mountPointsUnder(dir).sort((a, b) => b.length - a.length)) {
      await run(['umount', '-l', mp]).catch(() => undefined);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function writePayload(volume: string, dir: string, payload: Map<string, PayloadFile>): void {
  try {
    writeAtomic(dir, payload);
  } catch (err) {
    if (err instanceof PayloadError) throw new VolumeError(volume, err.message);
    throw err;
  }
}

function mountInfoLines(): string[][] {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '));
  } catch {
    return [];
  }
}

const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

export function isMountPoint(path: string): boolean {
  return mountInfoLines().some((f) => f[4] !== undefined && unescapeMount(f[4]) === path);
}

export function mountPointsUnder(dir: string): string[] {
  return mountInfoLines()
    .map((f) => (f[4] !== undefined ? unescapeMount(f[4]) : ''))
    .filter((p) => p.startsWith(`${dir}/`));
}

export { ContainerConfigError };
