// GoBGP (gobgpd + the gobgp CLI) as the lab's router or a test's peer. The gRPC API listens on a unix socket in
// the instance's directory, so the CLI reaches it from any namespace. GoBGP has no BFD, and its zebra client panics
// on FRR 8.4's zebra (zebra API 6, any software-name), so `kernel` is not done by the daemon itself here.
import { join } from 'node:path';
import type { NeighborGracefulRestart, NeighborState, RouteEntry, RouterLayout, RouterSpec } from './types.js';

export const GOBGP_SOCKET = 'gobgp.sock';

const tomlString = (s: string): string => JSON.stringify(s);

export function gobgpConfig(spec: RouterSpec): string {
  const L: string[] = [
    '[global.config]',
    `  as = ${spec.asn}`,
    `  router-id = ${tomlString(spec.routerId)}`,
    `  port = ${spec.port ?? 179}`,
    ...(spec.localAddress ? [`  local-address-list = [${tomlString(spec.localAddress)}]`] : []),
    // ECMP: every node's path is passed to zebra as one multipath route.
    '[global.use-multiple-paths.config]',
    '  enabled = true',
  ];
  for (const n of spec.neighbors) {
    L.push('[[neighbors]]', '  [neighbors.config]', `    neighbor-address = ${tomlString(n.address)}`, `    peer-as = ${n.asn}`,
      `    description = ${tomlString(n.name)}`);
    if (n.password) L.push(`    auth-password = ${tomlString(n.password)}`);
    L.push('  [neighbors.transport.config]', `    passive-mode = ${n.passive ?? true}`);
    if (spec.localAddress) L.push(`    local-address = ${tomlString(spec.localAddress)}`);
    L.push('  [neighbors.timers.config]', '    connect-retry = 1');
    if (n.holdTime !== undefined) L.push(`    hold-time = ${n.holdTime}`, `    keepalive-interval = ${Math.max(1, Math.floor(n.holdTime / 3))}`);
    if (n.multihop !== undefined && n.asn !== spec.asn) {
      L.push('  [neighbors.ebgp-multihop.config]', '    enabled = true', `    multihop-ttl = ${n.multihop}`);
    }
    if (n.gracefulRestart) {
      // helper-only: GoBGP keeps the neighbor's routes through its restart, and claims no restart of its own.
      L.push('  [neighbors.graceful-restart.config]', '    enabled = true', `    restart-time = ${n.gracefulRestart.restartTime ?? 120}`, '    helper-only = true');
    }
    if (!n.exportOriginated) {
      L.push('  [neighbors.apply-policy.config]', '    default-export-policy = "reject-route"');
    }
    for (const f of n.families ?? ['ipv4', 'ipv6']) {
      L.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', `      afi-safi-name = "${f}-unicast"`);
      if (n.gracefulRestart) L.push('    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true');
    }
  }
  return `${L.join('\n')}\n`;
}

export function gobgpLayout(spec: RouterSpec, dir: string): RouterLayout {
  const processes: RouterLayout['processes'] = [];
  processes.push({
    name: 'gobgpd',
    argv: ['gobgpd', '-f', join(dir, 'gobgpd.toml'), '--api-hosts', `unix://${join(dir, GOBGP_SOCKET)}`, '--pprof-disable', '-p'],
    readyFile: join(dir, GOBGP_SOCKET),
  });
  return { daemon: 'gobgp', dir, files: { 'gobgpd.toml': gobgpConfig(spec) }, processes };
}

/** The CLI's arguments to reach this instance. */
export const gobgpTarget = (dir: string): string[] => ['--target', `unix://${join(dir, GOBGP_SOCKET)}`];

interface GobgpAttr {
  type: number;
  value?: unknown;
  as_paths?: { asns?: number[] }[];
  nexthop?: string;
  communities?: number[];
}

/** `gobgp global rib -a ipv4|ipv6 -j` */
export function parseGobgpRib(json: unknown): RouteEntry[] {
  const out: RouteEntry[] = [];
  const table = (json ?? {}) as Record<string, { nlri?: { prefix?: string }; attrs?: GobgpAttr[]; 'neighbor-ip'?: string; stale?: boolean }[]>;
  for (const [prefix, paths] of Object.entries(table)) {
    for (const p of paths) {
      const e: RouteEntry = { prefix, nextHops: [], asPath: [], communities: [], largeCommunities: [] };
      if (p['neighbor-ip']) e.from = p['neighbor-ip'];
      if (p.stale) e.stale = true;
      for (const a of p.attrs ?? []) {
        switch (a.type) {
          case 2:
            e.asPath = (a.as_paths ?? []).flatMap((s) => s.asns ?? []);
            break;
          case 3:
          case 14:
            if (a.nexthop) e.nextHops = [a.nexthop];
            break;
          case 5:
            e.localPref = Number(a.value);
            break;
          case 8:
            e.communities = (a.communities ?? []).map((c) => `${c >>> 16}:${c & 0xffff}`);
            break;
          case 32:
            e.largeCommunities = ((a.value ?? []) as { ASN: number; LocalData1: number; LocalData2: number }[])
              .map((l) => `${l.ASN}:${l.LocalData1}:${l.LocalData2}`);
            break;
        }
      }
      out.push(e);
    }
  }
  return out;
}

/**
 * Graceful restart towards one neighbor from `gobgp neighbor ADDR -j` (per family: GR negotiated, End-of-RIB received
 * since the session came up) and the text of `gobgp neighbor ADDR` (the neighbor's capability: R and F bits; the JSON
 * has it only as an encoded protobuf). GoBGP waits for a family's End-of-RIB while its routes are stale.
 */
export function parseGobgpGracefulRestart(json: unknown, text: string): NeighborGracefulRestart {
  const afiSafis = (json as { afi_safis?: { mp_graceful_restart?: { state?: { enabled?: boolean; end_of_rib_received?: boolean } } }[] } | null)
    ?.afi_safis ?? [];
  const active = afiSafis.some((a) => a.mp_graceful_restart?.state?.enabled === true && a.mp_graceful_restart.state.end_of_rib_received !== true);
  // "graceful-restart:<tab>advertised and received / Remote: restart time 120 sec, restart flag set, ... /
  // <tab>    ipv4-unicast, forward flag set"
  const remote = /graceful-restart:[^\n]*\n\s*Remote:([^\n]*)((?:\n[^\n]*-unicast[^\n]*)*)/.exec(text);
  const peerForwarding = [...(remote?.[2] ?? '').matchAll(/(ipv4|ipv6)-unicast, forward flag set/g)].map((m) => m[1] as 'ipv4' | 'ipv6');
  return { active, peerRestarted: /restart flag set/.test(remote?.[1] ?? ''), peerForwarding };
}

const SESSION_STATES: Record<string, NeighborState> = {
  idle: 'Idle', connect: 'Connect', active: 'Active', opensent: 'OpenSent', openconfirm: 'OpenConfirm', established: 'Established',
};

/** `gobgp neighbor ADDR -j` */
export function parseGobgpNeighborState(json: unknown): NeighborState {
  const s = (json as { state?: { session_state?: unknown } } | null)?.state?.session_state;
  if (typeof s === 'string') return SESSION_STATES[s.toLowerCase()] ?? 'Unknown';
  // The API's enum: 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.
  const byNumber: NeighborState[] = ['Unknown', 'Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'];
  return typeof s === 'number' ? byNumber[s] ?? 'Unknown' : 'Unknown';
}
