// A container's environment as the kubelet builds it: Service link variables, envFrom, env (values with $(VAR)
// expansion, the downward API, resource fields, Secret and ConfigMap keys), then command/args expansion. Pure: the
// objects it reads come through `EnvSources`.
import type { ConfigMap, Secret, Service } from '../../k8s/types.js';
import { milliCPU, parseQuantity, quantityOr } from './quantity.js';
import type { Container, EnvVar, ObjectFieldSelector, Pod, ResourceFieldSelector } from './types.js';

/** Thrown when a container cannot be configured; `message` is what its waiting state shows. */
export class ContainerConfigError extends Error {
  override name = 'ContainerConfigError';
}

export interface EnvSources {
  secret(namespace: string, name: string): Secret | undefined;
  configMap(namespace: string, name: string): ConfigMap | undefined;
  /** Services of the pod's namespace and of `default` (for the `kubernetes` Service). */
  services(namespace: string): Service[];
  /** Node allocatable, the value of an unset limit. */
  nodeAllocatable: { cpu: number; memory: number; 'ephemeral-storage': number };
}

/**
 * `$(VAR)` expansion as Kubernetes does it: a defined VAR is replaced, an undefined one stays as written, `$$` is a
 * literal `$`, anything else after `$` is kept.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  if (!input.includes('$')) return input;
  let out = '';
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c !== '$' || i + 1 >= input.length) {
      out += c;
      i++;
      continue;
    }
    const next = input[i + 1]!;
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += '$(';
        i += 2;
      } else {
        const name = input.slice(i + 2, close);
        const v = lookup(name);
        out += v ?? `$(${name})`;
        i = close + 1;
      }
    } else {
      out += `$${next}`;
      i += 2;
    }
  }
  return out;
}

const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** The downward API value of a pod field (env `fieldRef` and downwardAPI volume items). */
export function podFieldValue(pod: Pod, sel: ObjectFieldSelector, forVolume: boolean): string {
  const path = sel.fieldPath;
  const md = pod.metadata;
  const m = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(path) ?? /^metadata\.(labels|annotations)\["(.*)"\]$/.exec(path);
  if (m) {
    const map = (m[1] === 'labels' ? md.labels : md.annotations) ?? {};
    return map[m[2]!] ?? '';
  }
  switch (path) {
    case 'metadata.name':
      return md.name ?? '';
    case 'metadata.namespace':
      return md.namespace ?? '';
    case 'metadata.uid':
      return md.uid ?? '';
    case 'metadata.labels':
    case 'metadata.annotations':
      if (!forVolume) break;
      return formatMap((path === 'metadata.labels' ? md.labels : md.annotations) ?? {});
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? pod.spec.serviceAccount ?? '';
    case 'status.hostIP':
      return pod.status?.hostIP ?? '';
    case 'status.hostIPs':
      return (pod.status?.hostIPs ?? []).map((x) => x.ip).join(',');
    case 'status.podIP':
      return pod.status?.podIP ?? '';
    case 'status.podIPs':
      return (pod.status?.podIPs ?? []).map((x) => x.ip).join(',');
  }
  throw new ContainerConfigError(`unsupported fieldRef fieldPath "${path}"`);
}

/** `key="value"` lines, sorted, values quoted like Go's strconv.Quote (the downward API volume format). */
function formatMap(m: Record<string, string>): string {
  return Object.keys(m)
    .sort()
    .map((k) => `${k}=${JSON.stringify(m[k])}`)
    .join('\n');
}

/** The value of a `resourceFieldRef` (unset limits are the node's allocatable, as the kubelet does). */
export function resourceFieldValue(pod: Pod, defaultContainer: string | undefined, sel: ResourceFieldSelector, alloc: EnvSources['nodeAllocatable']): string {
  const cname = sel.containerName || defaultContainer;
  const c = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((x) => x.name === cname);
  if (!c) throw new ContainerConfigError(`resourceFieldRef: container "${cname ?? ''}" not found in the pod`);
  const [kind, res] = sel.resource.split('.', 2) as [string, string | undefined];
  if ((kind !== 'limits' && kind !== 'requests') || !res) throw new ContainerConfigError(`resourceFieldRef: unsupported resource "${sel.resource}"`);
  const raw = c.resources?.[kind]?.[res];
  let value: number;
  if (raw !== undefined) {
    try {
      value = parseQuantity(raw);
    } catch (err) {
      throw new ContainerConfigError(`resourceFieldRef: ${(err as Error).message}`);
    }
  } else if (kind === 'limits' && (res === 'cpu' || res === 'memory' || res === 'ephemeral-storage')) {
    value = alloc[res];
  } else {
    value = 0;
  }
  let divisor = 1;
  if (sel.divisor !== undefined) {
    const d = quantityOr(sel.divisor);
    if (d === undefined || d <= 0) throw new ContainerConfigError(`resourceFieldRef: invalid divisor "${String(sel.divisor)}"`);
    divisor = d;
  }
  if (res === 'cpu') return String(Math.ceil(milliCPU(value) / milliCPU(divisor)));
  return String(Math.ceil(value / divisor));
}

/** `<NAME>_SERVICE_HOST`, `<NAME>_PORT_…` for the Services a pod sees (Kubernetes' docker-link style variables). */
export function serviceEnv(pod: Pod, services: Service[]): Record<string, string> {
  const ns = pod.metadata.namespace ?? 'default';
  const links = pod.spec.enableServiceLinks !== false;
  const chosen = new Map<string, Service>();
  for (const s of services) {
    const ip = s.spec?.clusterIP;
    if (!ip || ip === 'None') continue;
    const name = s.metadata?.name ?? '';
    if (s.metadata?.namespace === 'default' && name === 'kubernetes') {
      if (!chosen.has(name)) chosen.set(name, s);
    } else if (s.metadata?.namespace === ns && links) {
      chosen.set(name, s);
    }
  }
  const env: Record<string, string> = {};
  for (const s of [...chosen.values()].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))) {
    const prefix = (s.metadata?.name ?? '').toUpperCase().replace(/-/g, '_');
    const ip = s.spec!.clusterIP!;
    const ports = s.spec?.ports ?? [];
    env[`${prefix}_SERVICE_HOST`] = ip;
    if (ports.length === 0) continue;
    env[`${prefix}_SERVICE_PORT`] = String(ports[0]!.port);
    for (const p of ports) if (p.name) env[`${prefix}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.port);
    const hostPort = (port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
    const first = ports[0]!;
    env[`${prefix}_PORT`] = `${(first.protocol ?? 'TCP').toLowerCase()}://${hostPort(first.port)}`;
    for (const p of ports) {
      const proto = (p.protocol ?? 'TCP').toUpperCase();
      const k = `${prefix}_PORT_${p.port}_${proto}`;
      env[k] = `${proto.toLowerCase()}://${hostPort(p.port)}`;
      env[`${k}_PROTO`] = proto.toLowerCase();
      env[`${k}_PORT`] = String(p.port);
      env[`${k}_ADDR`] = ip;
    }
  }
  return env;
}

function decodeSecret(s: Secret, key: string): string | undefined {
  const b64 = s.data?.[key];
  if (b64 !== undefined) return Buffer.from(b64, 'base64').toString('utf8');
  return s.stringData?.[key];
}

export interface BuiltEnv {
  env: Record<string, string>;
  /** envFrom keys that are not valid variable names (the kubelet reports them in an Event). */
  skippedKeys: string[];
}

/** The environment of `c`, in the kubelet's order of precedence. Throws ContainerConfigError. */
export function buildEnv(pod: Pod, c: Container, src: EnvSources): BuiltEnv {
  const ns = pod.metadata.namespace ?? 'default';
  const svcEnv = serviceEnv(pod, src.services(ns));
  const env: Record<string, string> = {};
  const skippedKeys: string[] = [];
  for (const from of c.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    let data: Record<string, string> | undefined;
    if (from.configMapRef) {
      const name = from.configMapRef.name ?? '';
      const cm = src.configMap(ns, name);
      if (!cm) {
        if (from.configMapRef.optional) continue;
        throw new ContainerConfigError(`configmap "${name}" not found`);
      }
      data = { ...(cm.data ?? {}) };
    } else if (from.secretRef) {
      const name = from.secretRef.name ?? '';
      const s = src.secret(ns, name);
      if (!s) {
        if (from.secretRef.optional) continue;
        throw new ContainerConfigError(`secret "${name}" not found`);
      }
      data = {};
      for (const k of Object.keys(s.data ?? {})) data[k] = decodeSecret(s, k) ?? '';
    }
    for (const [k, v] of Object.entries(data ?? {})) {
      const name = prefix + k;
      if (!ENV_NAME.test(name)) {
        skippedKeys.push(name);
        continue;
      }
      env[name] = v;
    }
  }
  const lookup = (name: string): string | undefined => env[name] ?? svcEnv[name];
  for (const v of c.env ?? []) env[v.name] = envValue(pod, c, v, src, lookup);
  for (const [k, v] of Object.entries(svcEnv)) if (!(k in env)) env[k] = v;
  return { env, skippedKeys };
}

function envValue(pod: Pod, c: Container, v: EnvVar, src: EnvSources, lookup: (n: string) => string | undefined): string {
  const ns = pod.metadata.namespace ?? 'default';
  if (!v.valueFrom) return expand(v.value ?? '', lookup);
  const f = v.valueFrom;
  if (f.fieldRef) return podFieldValue(pod, f.fieldRef, false);
  if (f.resourceFieldRef) return resourceFieldValue(pod, c.name, f.resourceFieldRef, src.nodeAllocatable);
  if (f.secretKeyRef) {
    const { name = '', key, optional } = f.secretKeyRef;
    const s = src.secret(ns, name);
    if (!s) {
      if (optional) return '';
      throw new ContainerConfigError(`secret "${name}" not found`);
    }
    const val = decodeSecret(s, key);
    if (val === undefined) {
      if (optional) return '';
      throw new ContainerConfigError(`couldn't find key ${key} in Secret ${ns}/${name}`);
    }
    return val;
  }
  if (f.configMapKeyRef) {
    const { name = '', key, optional } = f.configMapKeyRef;
    const cm = src.configMap(ns, name);
    if (!cm) {
      if (optional) return '';
      throw new ContainerConfigError(`configmap "${name}" not found`);
    }
    const val = cm.data?.[key];
    if (val === undefined) {
      if (optional) return '';
      throw new ContainerConfigError(`couldn't find key ${key} in ConfigMap ${ns}/${name}`);
    }
    return val;
  }
  return '';
}

/** command/args with `$(VAR)` expanded against the container's final environment. */
export function expandArgs(list: string[] | undefined, env: Record<string, string>): string[] | undefined {
  if (!list) return undefined;
  return list.map((s) => expand(s, (n) => env[n]));
}
