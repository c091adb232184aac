// FRR 8 (zebra + bgpd, and bfdd when a neighbor uses BFD) as the lab's router or a test's peer. The daemons run as
// the `frr` user from a directory it owns; every socket and pid file lives there, so several instances coexist.
import { join } from 'node:path';
import type { BfdPeerState, NeighborGracefulRestart, NeighborState, RouteEntry, RouterLayout, RouterSpec } from './types.js';

export const FRR_DIR = '/usr/lib/frr';
export const FRR_BFD_PROFILE = 'nodes';

export function frrBgpdConfig(spec: RouterSpec): string {
  const L: string[] = [
    'frr defaults traditional',
    'hostname router',
    'log stdout informational',
    '!',
    // No outbound policy: neighbors that should not get our routes get this.
    'route-map DENY_ALL deny 10',
    '!',
    `router bgp ${spec.asn}`,
    ` bgp router-id ${spec.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp default ipv4-unicast',
    ' no bgp network import-check',
    ' bgp bestpath as-path multipath-relax',
  ];
  for (const n of spec.neighbors) {
    L.push(` neighbor ${n.address} remote-as ${n.asn}`);
    L.push(` neighbor ${n.address} description ${n.name}`);
    if (n.passive ?? true) L.push(` neighbor ${n.address} passive`);
    else L.push(` neighbor ${n.address} timers connect 1`);
    if (n.password) {
      // FRR's `neighbor X password` is one word: bgpd refuses the line and the neighbor would run without a key.
      if (/\s/.test(n.password)) throw new Error(`FRR cannot take the password of neighbor ${n.name}: it contains white space`);
      L.push(` neighbor ${n.address} password ${n.password}`);
    }
    if (n.multihop !== undefined && n.asn !== spec.asn) L.push(` neighbor ${n.address} ebgp-multihop ${n.multihop}`);
    if (n.holdTime !== undefined) L.push(` neighbor ${n.address} timers ${Math.max(1, Math.floor(n.holdTime / 3))} ${n.holdTime}`);
    if (n.bfd) L.push(` neighbor ${n.address} bfd profile ${FRR_BFD_PROFILE}`);
  }
  for (const family of ['ipv4', 'ipv6'] as const) {
    const members = spec.neighbors.filter((n) => (n.families ?? ['ipv4', 'ipv6']).includes(family));
    const originated = (spec.originate ?? []).filter((p) => p.includes(':') === (family === 'ipv6'));
    if (members.length === 0 && originated.length === 0) continue;
    L.push(` address-family ${family} unicast`);
    // ECMP: every node advertising a Service address becomes a next hop of one kernel route.
    L.push('  maximum-paths 64', '  maximum-paths ibgp 64');
    for (const p of originated) L.push(`  network ${p}`);
    for (const n of members) {
      L.push(`  neighbor ${n.address} activate`);
      if (!n.exportOriginated) L.push(`  neighbor ${n.address} route-map DENY_ALL out`);
    }
    L.push(' exit-address-family');
  }
  L.push('!');
  return `${L.join('\n')}\n`;
}

export function frrBfddConfig(spec: RouterSpec): string {
  const bfd = spec.bfd ?? { transmitIntervalMs: 300, receiveIntervalMs: 300, detectMultiplier: 3 };
  return [
    'log stdout informational',
    'bfd',
    ` profile ${FRR_BFD_PROFILE}`,
    `  receive-interval ${bfd.receiveIntervalMs}`,
    `  transmit-interval ${bfd.transmitIntervalMs}`,
    `  detect-multiplier ${bfd.detectMultiplier}`,
    ' exit',
    'exit',
    '',
  ].join('\n');
}

export function frrLayout(spec: RouterSpec, dir: string): RouterLayout {
  const common = ['--vty_socket', dir, '-z', join(dir, 'zserv.api'), '-P', '0'];
  const processes: RouterLayout['processes'] = [{
    name: 'zebra',
    argv: [join(FRR_DIR, 'zebra'), '-i', join(dir, 'zebra.pid'), ...common, '-f', '/dev/null'],
    owner: 'frr',
    readyFile: join(dir, 'zebra.vty'),
  }];
  const files: Record<string, string> = { 'bgpd.conf': frrBgpdConfig(spec) };
  if (spec.neighbors.some((n) => n.bfd)) {
    files['bfdd.conf'] = frrBfddConfig(spec);
    processes.push({
      name: 'bfdd',
      argv: [join(FRR_DIR, 'bfdd'), '-i', join(dir, 'bfdd.pid'), ...common, '--bfdctl', join(dir, 'bfdd.sock'), '-f', join(dir, 'bfdd.conf')],
      owner: 'frr',
      readyFile: join(dir, 'bfdd.vty'),
    });
  }
  processes.push({
    name: 'bgpd',
    argv: [join(FRR_DIR, 'bgpd'), '-i', join(dir, 'bgpd.pid'), ...common, '-f', join(dir, 'bgpd.conf'), ...(spec.kernel ? [] : ['-n']),
      ...(spec.port !== undefined ? ['-p', String(spec.port)] : [])],
    owner: 'frr',
    readyFile: join(dir, 'bgpd.vty'),
  });
  return { daemon: 'frr', dir, files, processes };
}

interface FrrPath {
  peerId?: string;
  path?: string;
  aspath?: { string?: string };
  locPrf?: number;
  localpref?: number;
  community?: { list?: string[] };
  largeCommunity?: { list?: string[] };
  nexthops?: { ip?: string; scope?: string }[];
  stale?: boolean;
}

/** `show bgp <afi> unicast json` (paths without communities) or a map of `show bgp <afi> unicast PREFIX json`. */
export function parseFrrRoutes(json: unknown): RouteEntry[] {
  const routes = (json as { routes?: Record<string, FrrPath[]> } | null)?.routes ?? {};
  const out: RouteEntry[] = [];
  for (const [prefix, paths] of Object.entries(routes)) for (const p of paths) out.push(frrEntry(prefix, p));
  return out;
}

/** `show bgp <afi> unicast PREFIX json`: the detailed paths, communities included. */
export function parseFrrPrefix(json: unknown): RouteEntry[] {
  const j = json as { prefix?: string; paths?: FrrPath[] } | null;
  if (!j?.prefix) return [];
  return (j.paths ?? []).map((p) => frrEntry(j.prefix!, p));
}

function frrEntry(prefix: string, p: FrrPath & { peer?: { peerId?: string } }): RouteEntry {
  const pathText = p.path ?? p.aspath?.string ?? '';
  const localPref = p.locPrf ?? p.localpref;
  const from = p.peerId ?? p.peer?.peerId;
  return {
    prefix,
    nextHops: (p.nexthops ?? []).map((n) => n.ip ?? '').filter(Boolean),
    asPath: pathText.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number),
    ...(localPref !== undefined ? { localPref } : {}),
    communities: p.community?.list ?? [],
    largeCommunities: p.largeCommunity?.list ?? [],
    ...(from ? { from } : {}),
    ...(p.stale ? { stale: true } : {}),
  };
}

const FRR_STATES: Record<string, NeighborState> = {
  Idle: 'Idle', Connect: 'Connect', Active: 'Active', OpenSent: 'OpenSent', OpenConfirm: 'OpenConfirm', Established: 'Established',
};

/** `show bgp neighbors ADDR json` */
export function parseFrrNeighborState(json: unknown, address: string): NeighborState {
  const n = (json as Record<string, { bgpState?: string }> | null)?.[address];
  return FRR_STATES[n?.bgpState ?? ''] ?? 'Unknown';
}

interface FrrGrInfo {
  rBit?: boolean;
  gracefulRestartTimerMsecs?: number;
  gracefulStalepathTimerMsecs?: number;
  ipv4Unicast?: FrrGrFamily;
  ipv6Unicast?: FrrGrFamily;
}

interface FrrGrFamily {
  fBit?: boolean;
  endOfRibStatus?: { endOfRibRecv?: boolean };
}

/**
 * `show bgp neighbors ADDR json`: FRR holds the neighbor's routes while its restart timer runs (the neighbor is
 * away), then until the neighbor's End-of-RIB of each family (FRR 8.4 leaves the stale-path timer shown after it).
 */
export function parseFrrGracefulRestart(json: unknown, address: string): NeighborGracefulRestart {
  const gr = (json as Record<string, { gracefulRestartInfo?: FrrGrInfo }> | null)?.[address]?.gracefulRestartInfo ?? {};
  const families = [gr.ipv4Unicast, gr.ipv6Unicast].filter((f): f is FrrGrFamily => f !== undefined);
  return {
    active: gr.gracefulRestartTimerMsecs !== undefined ||
      (gr.gracefulStalepathTimerMsecs !== undefined && families.some((f) => f.endOfRibStatus?.endOfRibRecv !== true)),
    peerRestarted: gr.rBit === true,
    peerForwarding: (['ipv4', 'ipv6'] as const).filter((f) => gr[`${f}Unicast`]?.fBit === true),
  };
}

/** `show bfd peers json` */
export function parseFrrBfdPeers(json: unknown): BfdPeerState[] {
  if (!Array.isArray(json)) return [];
  return json.map((p: { peer?: string; status?: string; multihop?: boolean }) => {
    const s = (p.status ?? '').toLowerCase();
    const state: BfdPeerState['state'] = s === 'up' ? 'Up' : s === 'down' ? 'Down' : s === 'init' ? 'Init' : s === 'shutdown' ? 'AdminDown' : 'Unknown';
    return { address: p.peer ?? '', state, ...(typeof p.multihop === 'boolean' ? { multihop: p.multihop } : {}) };
  });
}
