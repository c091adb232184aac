// A node and a peer with a router between them, for eBGP multihop and BFD multihop (RFC 5883) tests:
//
//   node ──eth0── hop (forwards) ──eth1── switch ──eth0── peer
//   10.94.S.2     10.94.S.1   10.94.S+1.1          10.94.S+1.2     (IPv6: fd00:94:S::2 … fd00:94:S+1::2)
//
// The node and the peer are on different subnets, so only packets whose TTL survives one hop reach each other.
// `cutPath()` takes the hop's port out of the switch: both ends of every link keep their carrier (no link-down for
// a daemon to notice) and packets simply stop, as when a cable further along the path is pulled.
// Names start with `tmh-`, addresses come from 10.94.0.0/16 and fd00:94::/32 (this helper's ranges).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns, isRoot } from './netns.js';

export interface RoutedEnd {
  netns: string;
  ipv4: string;
  ipv6: string;
}

export interface RoutedNet {
  node: RoutedEnd;
  /** The router in the middle: `ipv4`/`ipv6` on the node's side. */
  hop: RoutedEnd & { peerSideIpv4: string; peerSideIpv6: string };
  peer: RoutedEnd;
  /** A temp directory (world-traversable, for FRR's user), removed by destroy(). */
  dir: string;
  cutPath(): void;
  restorePath(): void;
  exec(netns: string, cmd: string, args: readonly string[]): string;
  /** A counter of the hop's kernel SNMP table, e.g. `Icmp OutTimeExcds` (/proc/net/snmp in its namespace). */
  hopCounter(group: 'Icmp' | 'Icmp6', name: string): number;
  destroy(): Promise<void>;
}

/** `subnet` picks 10.94.S.0/24 and 10.94.S+1.0/24 (S even, below 254). */
export function createRoutedNet(opts: { subnet: number }): RoutedNet {
  if (!isRoot()) throw new Error('the routed namespace tests need root (ip netns, veth, bridges)');
  const s = opts.subnet;
  const t = s + 1;
  const net = new Netns('tmh-');
  const dir = mkdtempSync(join(tmpdir(), 'tmh-'));
  chmodSync(dir, 0o755);
  const destroy = async (): Promise<void> => {
    await net.cleanup();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const node = net.addNamespace(`n${s}`);
    const hop = net.addNamespace(`h${s}`);
    const sw = net.addNamespace(`s${s}`);
    const peer = net.addNamespace(`p${s}`);
    net.veth({ ns: node, name: 'eth0' }, { ns: hop, name: 'eth0' });
    net.veth({ ns: hop, name: 'eth1' }, { ns: sw, name: 'hop' });
    net.veth({ ns: peer, name: 'eth0' }, { ns: sw, name: 'peer' });
    net.ip(sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    for (const l of ['br0', 'hop', 'peer']) net.ip(sw, 'link', 'set', l, 'up');
    for (const l of ['hop', 'peer']) net.ip(sw, 'link', 'set', l, 'master', 'br0');
    net.sysctl(hop, 'net.ipv4.ip_forward', '1');
    net.sysctl(hop, 'net.ipv6.conf.all.forwarding', '1');
    const addr = (ns: string, dev: string, v4: string, v6: string): void => {
      net.ip(ns, 'addr', 'add', `${v4}/24`, 'dev', dev);
      net.ip(ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad');
      net.ip(ns, 'link', 'set', dev, 'up');
    };
    addr(node, 'eth0', `10.94.${s}.2`, `fd00:94:${s}::2`);
    addr(hop, 'eth0', `10.94.${s}.1`, `fd00:94:${s}::1`);
    addr(hop, 'eth1', `10.94.${t}.1`, `fd00:94:${t}::1`);
    addr(peer, 'eth0', `10.94.${t}.2`, `fd00:94:${t}::2`);
    net.ip(node, 'route', 'add', 'default', 'via', `10.94.${s}.1`);
    net.ip(node, '-6', 'route', 'add', 'default', 'via', `fd00:94:${s}::1`);
    net.ip(peer, 'route', 'add', 'default', 'via', `10.94.${t}.1`);
    net.ip(peer, '-6', 'route', 'add', 'default', 'via', `fd00:94:${t}::1`);
    const snmp = (group: string, name: string): number => {
      const lines = net.exec(hop, 'cat', [group === 'Icmp6' ? '/proc/net/snmp6' : '/proc/net/snmp']).split('\n');
      if (group === 'Icmp6') {
        const line = lines.find((l) => l.startsWith(`Icmp6${name} `) || l.startsWith(`${name} `));
        return Number(line?.trim().split(/\s+/)[1] ?? NaN);
      }
      const rows = lines.filter((l) => l.startsWith(`${group}:`));
      const names = rows[0]?.split(/\s+/) ?? [];
      const values = rows[1]?.split(/\s+/) ?? [];
      return Number(values[names.indexOf(name)] ?? NaN);
    };
    return {
      node: { netns: node, ipv4: `10.94.${s}.2`, ipv6: `fd00:94:${s}::2` },
      hop: { netns: hop, ipv4: `10.94.${s}.1`, ipv6: `fd00:94:${s}::1`, peerSideIpv4: `10.94.${t}.1`, peerSideIpv6: `fd00:94:${t}::1` },
      peer: { netns: peer, ipv4: `10.94.${t}.2`, ipv6: `fd00:94:${t}::2` },
      dir,
      cutPath: () => void net.ip(sw, 'link', 'set', 'hop', 'nomaster'),
      restorePath: () => void net.ip(sw, 'link', 'set', 'hop', 'master', 'br0'),
      exec: (ns, cmd, args) => net.exec(ns, cmd, args),
      hopCounter: snmp,
      destroy,
    };
  } catch (err) {
    void destroy();
    throw err;
  }
}
