// Service semantics of kube-apiserver: defaulting, validation, cluster IP and node port allocation.
import { ApiError, internal, type FieldError } from './errors.js';
import { parseIP, type IPFamily as Family } from '../../net/ip.js';
import { canonicalIP, CidrAllocator, PortAllocator } from './ipalloc.js';
import { arr, clone, isObj, obj, type Obj } from './util.js';

export interface ServiceAllocators {
  v4?: CidrAllocator;
  v6?: CidrAllocator;
  nodePorts: PortAllocator;
}

/** Allocation transaction: what was taken (undone by rollback) and what to give back once committed. */
export class AllocTx {
  private readonly taken: (() => void)[] = [];
  private readonly toRelease: (() => void)[] = [];
  took(undo: () => void): void {
    this.taken.push(undo);
  }
  releaseOnCommit(fn: () => void): void {
    this.toRelease.push(fn);
  }
  commit(): void {
    for (const f of this.toRelease) f();
    this.taken.length = 0;
    this.toRelease.length = 0;
  }
  rollback(): void {
    for (const f of this.taken) f();
    this.taken.length = 0;
    this.toRelease.length = 0;
  }
}

const TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];
const POLICIES = ['SingleStack', 'PreferDualStack', 'RequireDualStack'];
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

const needsClusterIP = (spec: Obj): boolean => spec.type !== 'ExternalName';
const needsNodePorts = (spec: Obj): boolean => spec.type === 'NodePort' || (spec.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
const isHeadless = (spec: Obj): boolean => spec.clusterIP === 'None' || (Array.isArray(spec.clusterIPs) && spec.clusterIPs[0] === 'None');

/** Defaulting (pkg/apis/core/v1/defaults.go) on a Service being created or updated; mutates `svc`. */
export function defaultService(svc: Obj): void {
  if (!isObj(svc.spec)) svc.spec = {};
  const spec = svc.spec as Obj;
  if (spec.type === undefined || spec.type === '') spec.type = 'ClusterIP';
  if (spec.sessionAffinity === undefined || spec.sessionAffinity === '') spec.sessionAffinity = 'None';
  if (spec.sessionAffinity === 'ClientIP') {
    const cfg = obj(spec.sessionAffinityConfig);
    const cip = obj(cfg.clientIP);
    if (cip.timeoutSeconds === undefined) cip.timeoutSeconds = 10800;
    cfg.clientIP = cip;
    spec.sessionAffinityConfig = cfg;
  }
  if (Array.isArray(spec.ports)) {
    spec.ports = spec.ports.map((p) => {
      if (!isObj(p)) return p;
      const q = { ...p };
      if (q.protocol === undefined || q.protocol === '') q.protocol = 'TCP';
      if (q.targetPort === undefined || q.targetPort === 0 || q.targetPort === '') q.targetPort = q.port;
      return q;
    });
  }
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
    if (spec.externalTrafficPolicy === undefined || spec.externalTrafficPolicy === '') spec.externalTrafficPolicy = 'Cluster';
  } else {
    delete spec.externalTrafficPolicy;
    delete spec.healthCheckNodePort;
  }
  if (spec.type === 'LoadBalancer') {
    if (spec.allocateLoadBalancerNodePorts === undefined) spec.allocateLoadBalancerNodePorts = true;
  } else delete spec.allocateLoadBalancerNodePorts;
  if (spec.type === 'ClusterIP' || spec.type === 'ExternalName') {
    if (Array.isArray(spec.ports)) spec.ports = spec.ports.map((p) => (isObj(p) ? (({ nodePort: _n, ...rest }) => rest)(p) : p));
  }
  if (spec.type !== 'ExternalName') {
    if (spec.internalTrafficPolicy === undefined || spec.internalTrafficPolicy === '') spec.internalTrafficPolicy = 'Cluster';
  }
  if (!isObj(svc.status)) svc.status = { loadBalancer: {} };
  if (!isObj((svc.status as Obj).loadBalancer)) (svc.status as Obj).loadBalancer = {};
}

/** Static validation of a Service spec (after defaulting, before allocation). */
export function validateService(svc: Obj, nodePorts: PortAllocator): FieldError[] {
  const errs: FieldError[] = [];
  const spec = obj(svc.spec);
  const name = obj(svc.metadata).name;
  if (typeof name === 'string' && (!DNS1035.test(name) || name.length > 63))
    errs.push({
      type: 'Invalid',
      field: 'metadata.name',
      value: name,
      detail:
        name.length > 63
          ? 'must be no more than 63 characters'
          : "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    });
  if (!TYPES.includes(String(spec.type))) errs.push({ type: 'NotSupported', field: 'spec.type', value: spec.type, detail: `supported values: ${TYPES.map((t) => `"${t}"`).join(', ')}` });
  if (spec.sessionAffinity !== 'None' && spec.sessionAffinity !== 'ClientIP')
    errs.push({ type: 'NotSupported', field: 'spec.sessionAffinity', value: spec.sessionAffinity, detail: 'supported values: "ClientIP", "None"' });
  const ports = arr(spec.ports);
  if (spec.ports !== undefined && !Array.isArray(spec.ports)) errs.push({ type: 'Invalid', field: 'spec.ports', value: spec.ports, detail: 'must be a list' });
  if (spec.type === 'ExternalName') {
    if (typeof spec.externalName !== 'string' || spec.externalName === '') errs.push({ type: 'Required', field: 'spec.externalName' });
  } else if (ports.length === 0 && !isHeadless(spec)) errs.push({ type: 'Required', field: 'spec.ports' });
  const names = new Set<string>();
  const portProto = new Set<string>();
  ports.forEach((p, i) => {
    const f = `spec.ports[${i}]`;
    if (!isObj(p)) {
      errs.push({ type: 'Invalid', field: f, value: p, detail: 'must be an object' });
      return;
    }
    const pname = typeof p.name === 'string' ? p.name : '';
    if (ports.length > 1 && pname === '') errs.push({ type: 'Required', field: `${f}.name` });
    if (pname !== '') {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(pname) || pname.length > 63)
        errs.push({ type: 'Invalid', field: `${f}.name`, value: pname, detail: "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')" });
      if (names.has(pname)) errs.push({ type: 'Duplicate', field: `${f}.name`, value: pname });
      names.add(pname);
    }
    if (!(typeof p.port === 'number' && Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535))
      errs.push({ type: 'Invalid', field: `${f}.port`, value: p.port ?? 0, detail: 'must be between 1 and 65535, inclusive' });
    if (!PROTOCOLS.includes(String(p.protocol)))
      errs.push({ type: 'NotSupported', field: `${f}.protocol`, value: p.protocol, detail: 'supported values: "SCTP", "TCP", "UDP"' });
    const key = `${String(p.port)}/${String(p.protocol)}`;
    if (portProto.has(key)) errs.push({ type: 'Duplicate', field: f, value: { port: p.port, protocol: p.protocol } });
    portProto.add(key);
    const tp = p.targetPort;
    if (typeof tp === 'number') {
      if (!(Number.isInteger(tp) && tp >= 1 && tp <= 65535)) errs.push({ type: 'Invalid', field: `${f}.targetPort`, value: tp, detail: 'must be between 1 and 65535, inclusive' });
    } else if (typeof tp === 'string') {
      if (!IANA_SVC_NAME.test(tp) || !/[a-z]/.test(tp) || tp.includes('--'))
        errs.push({ type: 'Invalid', field: `${f}.targetPort`, value: tp, detail: 'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)' });
    } else if (tp !== undefined) errs.push({ type: 'Invalid', field: `${f}.targetPort`, value: tp, detail: 'must be an integer or a string' });
    if (p.nodePort !== undefined && p.nodePort !== 0) {
      if (spec.type === 'ClusterIP' || spec.type === 'ExternalName')
        errs.push({ type: 'Forbidden', field: `${f}.nodePort`, detail: `may not be used when \`type\` is '${String(spec.type)}'` });
      else if (typeof p.nodePort !== 'number' || p.nodePort < nodePorts.lo || p.nodePort > nodePorts.hi)
        errs.push({ type: 'Invalid', field: `${f}.nodePort`, value: p.nodePort, detail: `provided port is not in the valid range. The range of valid ports is ${nodePorts.range}` });
    }
  });
  if (spec.externalTrafficPolicy !== undefined && spec.externalTrafficPolicy !== 'Cluster' && spec.externalTrafficPolicy !== 'Local')
    errs.push({ type: 'NotSupported', field: 'spec.externalTrafficPolicy', value: spec.externalTrafficPolicy, detail: 'supported values: "Cluster", "Local"' });
  if (spec.internalTrafficPolicy !== undefined && spec.internalTrafficPolicy !== 'Cluster' && spec.internalTrafficPolicy !== 'Local')
    errs.push({ type: 'NotSupported', field: 'spec.internalTrafficPolicy', value: spec.internalTrafficPolicy, detail: 'supported values: "Cluster", "Local"' });
  if (spec.ipFamilyPolicy !== undefined && !POLICIES.includes(String(spec.ipFamilyPolicy)))
    errs.push({ type: 'NotSupported', field: 'spec.ipFamilyPolicy', value: spec.ipFamilyPolicy, detail: 'supported values: "PreferDualStack", "RequireDualStack", "SingleStack"' });
  arr(spec.ipFamilies).forEach((f, i) => {
    if (f !== 'IPv4' && f !== 'IPv6') errs.push({ type: 'NotSupported', field: `spec.ipFamilies[${i}]`, value: f, detail: 'supported values: "IPv4", "IPv6"' });
  });
  if (typeof spec.loadBalancerIP === 'string' && spec.loadBalancerIP !== '' && !parseIP(spec.loadBalancerIP))
    errs.push({ type: 'Invalid', field: 'spec.loadBalancerIP', value: spec.loadBalancerIP, detail: 'must be a valid IP address' });
  arr(spec.externalIPs).forEach((ip, i) => {
    if (typeof ip !== 'string' || !parseIP(ip)) errs.push({ type: 'Invalid', field: `spec.externalIPs[${i}]`, value: ip, detail: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)' });
  });
  if (spec.loadBalancerClass !== undefined && spec.type !== 'LoadBalancer')
    errs.push({ type: 'Forbidden', field: 'spec.loadBalancerClass', detail: 'may only be used when `type` is \'LoadBalancer\'' });
  return errs;
}

/** Validation of status.loadBalancer written through /status. */
export function validateServiceStatus(svc: Obj): FieldError[] {
  const errs: FieldError[] = [];
  const ingress = arr(obj(obj(svc.status).loadBalancer).ingress);
  ingress.forEach((ing, i) => {
    if (!isObj(ing)) return;
    if (ing.ip !== undefined && (typeof ing.ip !== 'string' || !parseIP(ing.ip)))
      errs.push({ type: 'Invalid', field: `status.loadBalancer.ingress[${i}].ip`, value: ing.ip, detail: 'must be a valid IP address' });
    if (ing.ipMode !== undefined && ing.ipMode !== 'VIP' && ing.ipMode !== 'Proxy')
      errs.push({ type: 'NotSupported', field: `status.loadBalancer.ingress[${i}].ipMode`, value: ing.ipMode, detail: 'supported values: "Proxy", "VIP"' });
    if (ing.ipMode !== undefined && ing.ip === undefined)
      errs.push({ type: 'Forbidden', field: `status.loadBalancer.ingress[${i}].ipMode`, detail: 'may not be specified when `ip` is not' });
  });
  return errs;
}

function allocatorFor(a: ServiceAllocators, f: Family): CidrAllocator | undefined {
  return f === 'IPv4' ? a.v4 : a.v6;
}

function primaryFamily(a: ServiceAllocators): Family {
  return a.v4 ? 'IPv4' : 'IPv6';
}

/**
 * Assign cluster IPs (`spec.clusterIP(s)`, `ipFamilies`, `ipFamilyPolicy`) for a new Service, or keep/extend
 * those of `old` on update. Field errors are returned; a full range throws a 500 like kube-apiserver.
 */
function assignClusterIPs(spec: Obj, old: Obj | undefined, a: ServiceAllocators, tx: AllocTx, errs: FieldError[]): void {
  if (!needsClusterIP(spec)) {
    if (old && needsClusterIP(old)) releaseIPs(old, a, tx);
    delete spec.clusterIP;
    delete spec.clusterIPs;
    delete spec.ipFamilies;
    delete spec.ipFamilyPolicy;
    return;
  }
  const oldNeeds = old !== undefined && needsClusterIP(old);
  if (oldNeeds) {
    // patchAllocatedValues: an update that omits the allocated values keeps them.
    if ((spec.clusterIP === undefined || spec.clusterIP === '') && old!.clusterIP !== undefined) spec.clusterIP = old!.clusterIP;
    if (!Array.isArray(spec.clusterIPs) || spec.clusterIPs.length === 0) {
      if (Array.isArray(old!.clusterIPs) && spec.clusterIP === old!.clusterIP) spec.clusterIPs = [...old!.clusterIPs];
    }
    if (!Array.isArray(spec.ipFamilies) || spec.ipFamilies.length === 0) {
      if (Array.isArray(old!.ipFamilies)) spec.ipFamilies = [...old!.ipFamilies];
    }
    if (spec.ipFamilyPolicy === undefined && old!.ipFamilyPolicy !== undefined) spec.ipFamilyPolicy = old!.ipFamilyPolicy;
  }
  let ips: string[] = Array.isArray(spec.clusterIPs) ? spec.clusterIPs.map(String) : [];
  const single = typeof spec.clusterIP === 'string' && spec.clusterIP !== '' ? spec.clusterIP : undefined;
  if (ips.length === 0 && single !== undefined) ips = [single];
  if (single !== undefined && ips[0] !== single) {
    errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: ips, detail: 'first value must match `clusterIP`' });
    return;
  }
  const headless = ips[0] === 'None';
  if (headless && ips.length > 1) errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: ips, detail: 'must not have more than one value when `clusterIP` is None' });
  if (ips.length > 2) {
    errs.push({ type: 'Invalid', field: 'spec.clusterIPs', value: ips, detail: 'may only hold up to 2 values' });
    return;
  }
  // families requested explicitly or implied by the requested IPs
  let families: Family[] = Array.isArray(spec.ipFamilies) ? (spec.ipFamilies.filter((f) => f === 'IPv4' || f === 'IPv6') as Family[]) : [];
  if (!headless) {
    ips.forEach((ip, i) => {
      const p = parseIP(ip);
      if (!p) {
        errs.push({ type: 'Invalid', field: `spec.clusterIPs[${i}]`, value: ip, detail: 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)' });
        return;
      }
      if (families[i] === undefined) families[i] = p.family;
      else if (families[i] !== p.family)
        errs.push({ type: 'Invalid', field: `spec.clusterIPs[${i}]`, value: ip, detail: `expected an ${families[i]} value as indicated by \`ipFamilies[${i}]\`` });
    });
  }
  if (errs.length) return;
  if (families.length === 2 && families[0] === families[1]) {
    errs.push({ type: 'Duplicate', field: 'spec.ipFamilies[1]', value: families[1] });
    return;
  }
  const dual = a.v4 !== undefined && a.v6 !== undefined;
  const policy = typeof spec.ipFamilyPolicy === 'string' ? spec.ipFamilyPolicy : families.length === 2 ? undefined : 'SingleStack';
  if (policy === undefined) {
    errs.push({ type: 'Required', field: 'spec.ipFamilyPolicy', detail: 'must be RequireDualStack or PreferDualStack when multiple IP families are specified' });
    return;
  }
  spec.ipFamilyPolicy = policy;
  if (policy === 'SingleStack' && families.length > 1) {
    errs.push({ type: 'Invalid', field: 'spec.ipFamilies', value: families, detail: 'when spec.ipFamilyPolicy is SingleStack only one ip family is allowed' });
    return;
  }
  if (policy === 'RequireDualStack' && !dual) {
    errs.push({ type: 'Invalid', field: 'spec.ipFamilyPolicy', value: policy, detail: 'this cluster is not configured for dual-stack services' });
    return;
  }
  for (let i = 0; i < families.length; i++) {
    if (!allocatorFor(a, families[i]!)) {
      if (i === 1 && policy === 'PreferDualStack') {
        families = families.slice(0, 1);
        break;
      }
      errs.push({ type: 'Invalid', field: `spec.ipFamilies[${i}]`, value: families[i], detail: 'not configured on this cluster' });
      return;
    }
  }
  if (families.length === 0) families = [primaryFamily(a)];
  if (families.length === 1 && policy !== 'SingleStack' && dual) families.push(families[0] === 'IPv4' ? 'IPv6' : 'IPv4');
  spec.ipFamilies = families;
  if (headless) {
    spec.clusterIP = 'None';
    spec.clusterIPs = ['None'];
    return;
  }
  const oldIPs: string[] = oldNeeds && Array.isArray(old!.clusterIPs) ? old!.clusterIPs.map(String) : [];
  if (oldNeeds && oldIPs.length > 0) {
    // The primary IP is immutable; a secondary may be added or removed (dual-stack upgrade / downgrade).
    if (ips[0] !== undefined && ips[0] !== oldIPs[0]) {
      errs.push({ type: 'Invalid', field: 'spec.clusterIPs[0]', value: ips, detail: 'may not change once set' });
      return;
    }
    if (ips.length >= 2 && oldIPs.length >= 2 && ips[1] !== oldIPs[1]) {
      errs.push({ type: 'Invalid', field: 'spec.clusterIPs[1]', value: ips, detail: 'may not change once set' });
      return;
    }
  }
  const out: string[] = [];
  for (let i = 0; i < families.length; i++) {
    const fam = families[i]!;
    const alloc = allocatorFor(a, fam)!;
    const want = ips[i];
    if (want !== undefined && oldIPs[i] !== undefined && canonicalIP(want) === canonicalIP(oldIPs[i]!)) {
      out.push(oldIPs[i]!);
      continue;
    }
    if (want === undefined && oldIPs[i] !== undefined && parseIP(oldIPs[i]!)?.family === fam) {
      out.push(oldIPs[i]!);
      continue;
    }
    if (want !== undefined) {
      const r = alloc.reserve(want);
      if (r === 'range') {
        errs.push({ type: 'Invalid', field: `spec.clusterIPs[${i}]`, value: want, detail: `provided IP is not in the valid range. The range of valid IPs is ${alloc.cidr}` });
        return;
      }
      if (r === 'taken') {
        errs.push({ type: 'Invalid', field: `spec.clusterIPs[${i}]`, value: want, detail: 'provided IP is already allocated' });
        return;
      }
      const canon = canonicalIP(want)!;
      tx.took(() => alloc.release(canon));
      out.push(canon);
    } else {
      const ip = alloc.allocate();
      if (ip === undefined) throw internal(`failed to allocate a serviceIP: range is full`);
      tx.took(() => alloc.release(ip));
      out.push(ip);
    }
  }
  // secondary dropped on downgrade
  for (let i = families.length; i < oldIPs.length; i++) {
    const ip = oldIPs[i]!;
    const fam = parseIP(ip)?.family;
    if (fam) tx.releaseOnCommit(() => allocatorFor(a, fam)?.release(ip));
  }
  spec.clusterIP = out[0];
  spec.clusterIPs = out;
}

function releaseIPs(spec: Obj, a: ServiceAllocators, tx: AllocTx): void {
  for (const ip of arr(spec.clusterIPs)) {
    if (typeof ip !== 'string' || ip === 'None') continue;
    const fam = parseIP(ip)?.family;
    if (fam) tx.releaseOnCommit(() => allocatorFor(a, fam)?.release(ip));
  }
}

function usedNodePorts(spec: Obj | undefined): Set<number> {
  const s = new Set<number>();
  if (!spec) return s;
  for (const p of arr(spec.ports)) if (isObj(p) && typeof p.nodePort === 'number' && p.nodePort > 0) s.add(p.nodePort);
  if (typeof spec.healthCheckNodePort === 'number' && spec.healthCheckNodePort > 0) s.add(spec.healthCheckNodePort);
  return s;
}

function assignNodePorts(spec: Obj, old: Obj | undefined, a: ServiceAllocators, tx: AllocTx, errs: FieldError[]): void {
  const oldPorts = usedNodePorts(old);
  const oldList = old ? arr(old.ports).filter(isObj) : [];
  const ports = arr(spec.ports);
  const mine = new Set<number>();
  const reserve = (p: number, field: string): boolean => {
    if (oldPorts.has(p) || mine.has(p)) {
      mine.add(p);
      return true;
    }
    const r = a.nodePorts.reserve(p);
    if (r === 'range') {
      errs.push({ type: 'Invalid', field, value: p, detail: `provided port is not in the valid range. The range of valid ports is ${a.nodePorts.range}` });
      return false;
    }
    if (r === 'taken') {
      errs.push({ type: 'Invalid', field, value: p, detail: 'provided port is already allocated' });
      return false;
    }
    tx.took(() => a.nodePorts.release(p));
    mine.add(p);
    return true;
  };
  const allocate = (): number => {
    const p = a.nodePorts.allocate();
    if (p === undefined) throw internal(`failed to allocate a nodePort: range is full (${a.nodePorts.range})`);
    tx.took(() => a.nodePorts.release(p));
    mine.add(p);
    return p;
  };
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
    // keep the node ports of ports that survive an update without one
    const newPorts = ports.map((p) => {
      if (!isObj(p)) return p;
      if ((p.nodePort === undefined || p.nodePort === 0) && old) {
        const match = oldList.find((o) => o.port === p.port && (o.protocol ?? 'TCP') === (p.protocol ?? 'TCP')) ?? oldList.find((o) => o.name !== undefined && o.name === p.name);
        if (match && typeof match.nodePort === 'number' && match.nodePort > 0) return { ...p, nodePort: match.nodePort };
      }
      return p;
    });
    // explicit ports first, so that automatic ones do not take them
    newPorts.forEach((p, i) => {
      if (isObj(p) && typeof p.nodePort === 'number' && p.nodePort > 0) reserve(p.nodePort, `spec.ports[${i}].nodePort`);
    });
    if (errs.length) return;
    const byPortNumber = new Map<number, number>();
    spec.ports = newPorts.map((p) => {
      if (!isObj(p)) return p;
      if (typeof p.nodePort === 'number' && p.nodePort > 0) return p;
      if (!needsNodePorts(spec)) return p;
      // the same service port number for TCP and UDP shares one node port
      const shared = typeof p.port === 'number' ? byPortNumber.get(p.port) : undefined;
      const np = shared ?? allocate();
      if (typeof p.port === 'number') byPortNumber.set(p.port, np);
      return { ...p, nodePort: np };
    });
    if (spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local') {
      const h = spec.healthCheckNodePort;
      if (typeof h === 'number' && h > 0) reserve(h, 'spec.healthCheckNodePort');
      else if (old && typeof old.healthCheckNodePort === 'number' && old.healthCheckNodePort > 0 && old.externalTrafficPolicy === 'Local') {
        spec.healthCheckNodePort = old.healthCheckNodePort;
        mine.add(old.healthCheckNodePort);
      } else spec.healthCheckNodePort = allocate();
    } else delete spec.healthCheckNodePort;
  } else {
    delete spec.healthCheckNodePort;
  }
  for (const p of oldPorts) if (!mine.has(p)) tx.releaseOnCommit(() => a.nodePorts.release(p));
}

/**
 * Default, validate and allocate for a create (`old` undefined) or an update of a Service. Mutates `svc`.
 * Returns the transaction to commit once the object is stored (or roll back); throws ApiError 422 / 500.
 */
export function prepareService(svc: Obj, old: Obj | undefined, a: ServiceAllocators, invalidErr: (errs: FieldError[]) => ApiError): AllocTx {
  defaultService(svc);
  const errs = validateService(svc, a.nodePorts);
  if (errs.length) throw invalidErr(errs);
  const tx = new AllocTx();
  try {
    const spec = svc.spec as Obj;
    const oldSpec = old ? clone(obj(old.spec)) : undefined;
    assignClusterIPs(spec, oldSpec, a, tx, errs);
    if (!errs.length) assignNodePorts(spec, oldSpec, a, tx, errs);
    if (errs.length) throw invalidErr(errs);
  } catch (e) {
    tx.rollback();
    throw e;
  }
  return tx;
}

/** Give back everything a stored Service holds (on delete). */
export function releaseService(svc: Obj, a: ServiceAllocators): void {
  const spec = obj(svc.spec);
  const tx = new AllocTx();
  if (needsClusterIP(spec)) releaseIPs(spec, a, tx);
  for (const p of usedNodePorts(spec)) tx.releaseOnCommit(() => a.nodePorts.release(p));
  tx.commit();
}

/** Re-reserve what stored Services hold (after loading a data file). */
export function reserveService(svc: Obj, a: ServiceAllocators): void {
  const spec = obj(svc.spec);
  for (const ip of arr(spec.clusterIPs)) {
    if (typeof ip !== 'string') continue;
    const fam = parseIP(ip)?.family;
    if (fam) allocatorFor(a, fam)?.reserve(ip);
  }
  for (const p of usedNodePorts(spec)) a.nodePorts.reserve(p);
}
