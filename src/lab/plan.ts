// The lab's names and addresses, derived from its name and node count (pure; see docs/lab.md and INTERFACES.md).
// The default lab `lab` uses the fixed names (mlb-…, mlb-br0, 10.89.0.0/24); any other name derives its own prefix,
// bridge, state dir and address block so that two labs can run side by side on one host.

export const DEFAULT_LAB = 'lab';
export const MAX_NODES = 50;
const NAMED_LAB_SLOTS = 39;

export interface Machine {
  /** `node1`, `client`, `router` */
  name: string;
  netns: string;
  /** Interface inside the namespace. */
  interface: string;
  /** The veth end on the bridge, in the host namespace. */
  hostInterface: string;
  ipv4: string;
  ipv6: string;
  mac: string;
}

export interface NodePlan extends Machine {
  index: number;
  podCIDRs: [string, string];
}

export type LabMode = 'layer2' | 'bgp';
export const LAB_MODES: readonly LabMode[] = ['layer2', 'bgp'];
export type LabRouterDaemon = 'bird' | 'frr' | 'gobgp';

/** BGP mode: the router between the client and the LAN, and the addresses only it routes. */
export interface LabBgpPlan {
  daemon: LabRouterDaemon;
  /** The router's AS; the nodes' (the BGPPeer's myASN) is `nodeAsn`: eBGP, as most top-of-rack designs. */
  routerAsn: number;
  nodeAsn: number;
  /** The client's network behind the router (the router is `.1` / `::1` there). */
  uplink: { ipv4: string; ipv6: string; routerIPv4: string; routerIPv6: string };
}

export interface LabPlan {
  name: string;
  /** How Services are announced; absent in labs made before BGP mode existed (= layer2). */
  mode?: LabMode;
  /** BGP mode only. */
  bgp?: LabBgpPlan;
  /** Prefix of every namespace and host link the lab makes (`mlb-`). */
  prefix: string;
  podNetnsPrefix: string;
  bridge: string;
  /** cgroup directory name (under each hierarchy, or the v2 root). */
  cgroup: string;
  stateDir: string;
  /** Where `lab status|exec|down` look first; a symlink to `stateDir` when `--state-dir` moved it. */
  defaultStateDir: string;
  lan: { ipv4: string; ipv6: string };
  host: { ipv4: string; ipv6: string };
  /** The pool `lab up` installs: on the LAN in layer 2 mode, a block routed by BGP in BGP mode. */
  serviceRange: { ipv4: string; ipv6: string };
  serviceCIDRs: [string, string];
  /** IPv4 and IPv6 blocks every node's podCIDR lies in (kube-proxy's cluster CIDR). */
  clusterCIDRs: [string, string];
  nodePortRange: string;
  apiserverPort: number;
  /** On the LAN in layer 2 mode; behind the router (its `uplink`) in BGP mode. */
  client: Machine;
  router: Machine;
  nodes: NodePlan[];
}

export class LabPlanError extends Error {
  override name = 'LabPlanError';
}

/** A lab name: `lab`, or 1–4 lower-case letters/digits starting with a letter (interface names stay ≤ 15 chars). */
export function checkLabName(name: string): void {
  if (name === DEFAULT_LAB) return;
  if (!/^[a-z][a-z0-9]{0,3}$/.test(name)) {
    throw new LabPlanError(`lab name "${name}" is not valid: use "lab" or 1-4 lower-case letters and digits starting with a letter`);
  }
}

/** The address block of a named lab: 1..39, stable for a name (FNV-1a). The default lab is 0. */
export function labSlot(name: string): number {
  if (name === DEFAULT_LAB) return 0;
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(name, 'utf8')) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 1 + (h % NAMED_LAB_SLOTS);
}

export const defaultStateDir = (name: string): string => (name === DEFAULT_LAB ? '/var/run/metallb-lab' : `/var/run/metallb-lab-${name}`);

/** 02:00 + the IPv4 address: readable, unique on the LAN, locally administered. */
export function macFor(ipv4: string): string {
  return ['02', '00', ...ipv4.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

interface Blocks {
  v4: string; // "10.89.0"
  v6: string; // "fd00:89:" (the /64 prefix without the trailing ':')
  pod4: string; // "10.244"
  pod6: string; // "fd00:10:244"
}

function blocks(slot: number): Blocks {
  if (slot === 0) return { v4: '10.89.0', v6: 'fd00:89:', pod4: '10.244', pod6: 'fd00:10:244' };
  // Decimal digits written as hex digits, as for the node addresses: slot 7 = fd00:89:7::/64.
  return { v4: `10.89.${slot}`, v6: `fd00:89:${slot}:`, pod4: `10.${200 + slot}`, pod6: `fd00:10:${200 + slot}` };
}

function machine(b: Blocks, prefix: string, name: string, hostByte: number): Machine {
  const ipv4 = `${b.v4}.${hostByte}`;
  return {
    name,
    netns: `${prefix}${name}`,
    interface: 'eth0',
    hostInterface: `${prefix}${name}`,
    ipv4,
    // The IPv6 suffix is the IPv4 host byte's decimal digits written as hex digits (node1 = .11 = ::11).
    ipv6: `${b.v6}:${hostByte}`,
    mac: macFor(ipv4),
  };
}

export function nodePlan(plan: Pick<LabPlan, 'name' | 'prefix'>, index: number): NodePlan {
  if (!Number.isInteger(index) || index < 1 || index > MAX_NODES) throw new LabPlanError(`node index ${index} is out of range 1-${MAX_NODES}`);
  const b = blocks(labSlot(plan.name));
  return {
    ...machine(b, plan.prefix, `node${index}`, 10 + index),
    index,
    podCIDRs: [`${b.pod4}.${index}.0/24`, `${b.pod6}:${index}::/64`],
  };
}

export interface PlanOptions {
  name?: string;
  nodes?: number;
  stateDir?: string;
  mode?: LabMode;
  router?: LabRouterDaemon;
}

export const LAB_ROUTER_ASN = 64501;
export const LAB_NODE_ASN = 64500;

/**
 * BGP mode's blocks: the client's network behind the router is 10.89.(200+slot).0/24, the Service range
 * 10.89.(100+slot).200-250 (named labs use 10.89.1-39, so these never meet another lab's).
 */
function bgpBlocks(slot: number): { uplink4: string; uplink6: string; svc4: string; svc6: string } {
  return { uplink4: `10.89.${200 + slot}`, uplink6: `fd00:89:${200 + slot}:`, svc4: `10.89.${100 + slot}`, svc6: `fd00:89:${100 + slot}:` };
}

export function makePlan(opts: PlanOptions = {}): LabPlan {
  const name = opts.name ?? DEFAULT_LAB;
  checkLabName(name);
  const count = opts.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) throw new LabPlanError(`--nodes ${count}: must be an integer from 1 to ${MAX_NODES}`);
  const slot = labSlot(name);
  const b = blocks(slot);
  const prefix = name === DEFAULT_LAB ? 'mlb-' : `mlb${name}-`;
  const stateDefault = defaultStateDir(name);
  const base = { name, prefix };
  const mode = opts.mode ?? 'layer2';
  const g = bgpBlocks(slot);
  const router = machine(b, prefix, 'router', 254);
  let client = machine(b, prefix, 'client', 100);
  let serviceRange = { ipv4: `${b.v4}.200-${b.v4}.250`, ipv6: `${b.v6}:200-${b.v6}:250` };
  let bgp: LabBgpPlan | undefined;
  if (mode === 'bgp') {
    const uplinkClient = `${g.uplink4}.100`;
    client = { ...client, ipv4: uplinkClient, ipv6: `${g.uplink6}:100`, hostInterface: '', mac: macFor(uplinkClient) };
    serviceRange = { ipv4: `${g.svc4}.200-${g.svc4}.250`, ipv6: `${g.svc6}:200-${g.svc6}:250` };
    bgp = {
      daemon: opts.router ?? 'bird',
      routerAsn: LAB_ROUTER_ASN,
      nodeAsn: LAB_NODE_ASN,
      uplink: { ipv4: `${g.uplink4}.0/24`, ipv6: `${g.uplink6}:/64`, routerIPv4: `${g.uplink4}.1`, routerIPv6: `${g.uplink6}:1` },
    };
  } else if (opts.router) {
    throw new LabPlanError('--router needs --mode bgp');
  }
  return {
    name,
    mode,
    ...(bgp ? { bgp } : {}),
    prefix,
    podNetnsPrefix: `${prefix}pod-`,
    bridge: `${prefix}br0`,
    cgroup: name === DEFAULT_LAB ? 'metallb-lab' : `metallb-lab-${name}`,
    stateDir: opts.stateDir ?? stateDefault,
    defaultStateDir: stateDefault,
    lan: { ipv4: `${b.v4}.0/24`, ipv6: `${b.v6}:/64` },
    host: { ipv4: `${b.v4}.1`, ipv6: `${b.v6}:1` },
    serviceRange,
    serviceCIDRs: ['10.96.0.0/16', 'fd00:10:96::/112'],
    clusterCIDRs: [`${b.pod4}.0.0/16`, `${b.pod6}::/56`],
    nodePortRange: '30000-32767',
    apiserverPort: 6443,
    client,
    router,
    nodes: Array.from({ length: count }, (_, i) => nodePlan(base, i + 1)),
  };
}

/** The machine a `lab exec` target names: `node2`, `client`, `router`, or a namespace name. */
export function findMachine(plan: LabPlan, target: string): Machine | undefined {
  const all: Machine[] = [...plan.nodes, plan.client, ...(plan.mode === 'bgp' ? [plan.router] : [])];
  return all.find((m) => m.name === target || m.netns === target);
}

export const apiserverURL = (plan: LabPlan): string => `https://${plan.host.ipv4}:${plan.apiserverPort}`;
