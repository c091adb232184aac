// BIRD 2 as the lab's router (or a test's peer): its configuration, how to run it, and its answers read back.
import { join } from 'node:path';
import type { BfdPeerState, NeighborGracefulRestart, NeighborState, RouteEntry, RouterLayout, RouterSpec } from './types.js';

export const BIRD_SOCKET = 'bird.ctl';

const quote = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** BIRD protocol names: a letter first; `s` alone is a unit keyword (machine notes), so every name gets a prefix. */
export const birdProtocolName = (name: string): string => `peer_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;

export function birdConfig(spec: RouterSpec): string {
  const bfd = spec.bfd ?? { transmitIntervalMs: 300, receiveIntervalMs: 300, detectMultiplier: 3 };
  const lines: string[] = [
    `router id ${spec.routerId};`,
    'log stderr { info, remote, warning, error, auth, fatal, bug };',
    'protocol device { scan time 10; }',
  ];
  // Next hops of multihop peers resolve recursively: through the connected subnets and the routes the system was
  // given (`learn`: a default route added with `ip route`), as an IGP would provide them.
  const multihop = spec.neighbors.some((n) => n.multihop !== undefined);
  if (multihop) lines.push('protocol direct { ipv4; ipv6; }');
  const learned = multihop ? 'import all; ' : 'import none; ';
  if (spec.kernel) {
    // `merge paths` installs equal routes from several nodes as one multipath (ECMP) kernel route.
    lines.push(
      `protocol kernel kernel4 { ipv4 { ${learned}export filter { if source = RTS_BGP then accept; reject; }; }; merge paths yes limit 64;${multihop ? ' learn;' : ''} }`,
      `protocol kernel kernel6 { ipv6 { ${learned}export filter { if source = RTS_BGP then accept; reject; }; }; merge paths yes limit 64;${multihop ? ' learn;' : ''} }`,
    );
  } else if (multihop) {
    lines.push(
      'protocol kernel kernel4 { ipv4 { import all; export none; }; learn; }',
      'protocol kernel kernel6 { ipv6 { import all; export none; }; learn; }',
    );
  }
  if (spec.neighbors.some((n) => n.bfd)) {
    lines.push(
      'protocol bfd {',
      `  interface "*" { min rx interval ${bfd.receiveIntervalMs} ms; min tx interval ${bfd.transmitIntervalMs} ms; multiplier ${bfd.detectMultiplier}; };`,
      `  multihop { min rx interval ${bfd.receiveIntervalMs} ms; min tx interval ${bfd.transmitIntervalMs} ms; multiplier ${bfd.detectMultiplier}; };`,
      '}',
    );
  }
  if (spec.originate && spec.originate.length > 0) {
    const v4 = spec.originate.filter((p) => !p.includes(':'));
    const v6 = spec.originate.filter((p) => p.includes(':'));
    if (v4.length > 0) lines.push('protocol static originate4 {', '  ipv4;', ...v4.map((p) => `  route ${p} blackhole;`), '}');
    if (v6.length > 0) lines.push('protocol static originate6 {', '  ipv6;', ...v6.map((p) => `  route ${p} blackhole;`), '}');
  }
  for (const n of spec.neighbors) {
    const families = n.families ?? ['ipv4', 'ipv6'];
    const exportRule = n.exportOriginated ? 'export where source = RTS_STATIC;' : 'export none;';
    const ibgp = n.asn === spec.asn;
    lines.push(`protocol bgp ${birdProtocolName(n.name)} {`);
    if (n.disabled) lines.push('  disabled;');
    lines.push(spec.localAddress ? `  local ${spec.localAddress} as ${spec.asn};` : `  local as ${spec.asn};`);
    lines.push(`  neighbor ${n.address} as ${n.asn};`);
    // After an error (a BFD Down among them) BIRD refuses the neighbor for 60 s by default; nodes come back faster.
    lines.push('  error wait time 1, 10;');
    if (n.passive ?? true) lines.push('  passive on;');
    else lines.push('  connect retry time 1;', '  connect delay time 0;');
    if (n.password) lines.push(`  password ${quote(n.password)};`);
    if (n.bfd) lines.push('  bfd on;');
    if (n.multihop !== undefined) lines.push(`  multihop ${n.multihop};`);
    else if (ibgp) lines.push('  direct;');
    if (n.holdTime !== undefined) lines.push(`  hold time ${n.holdTime};`);
    // Single-hop next hops are on the LAN; multihop ones resolve through the connected routes.
    const gateway = n.multihop !== undefined ? 'gateway recursive;' : 'gateway direct;';
    for (const f of families) lines.push(`  ${f} { import all; ${exportRule} ${gateway} };`);
    lines.push('}');
  }
  return `${lines.join('\n')}\n`;
}

export function birdLayout(spec: RouterSpec, dir: string): RouterLayout {
  return {
    daemon: 'bird',
    dir,
    files: { 'bird.conf': birdConfig(spec) },
    processes: [{
      name: 'bird',
      // -f: stay in the foreground so the pid we spawn is the daemon's.
      argv: ['bird', '-f', '-c', join(dir, 'bird.conf'), '-s', join(dir, BIRD_SOCKET), '-P', join(dir, 'bird.pid')],
      readyFile: join(dir, BIRD_SOCKET),
    }],
  };
}

/**
 * `show route all` as birdc prints it (or BirdControl returns it). `protocolAddress` maps protocol names to
 * neighbor addresses for `from`.
 */
export function parseBirdRoutes(text: string, protocolAddress: ReadonlyMap<string, string> = new Map()): RouteEntry[] {
  const out: RouteEntry[] = [];
  let prefix = '';
  let cur: RouteEntry | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    // `unreachable`: a BGP route whose next hop does not resolve is still held (and still has its attributes).
    const head = /^(\S+)?\s+(?:unicast|unreachable) \[(\S+)[^\]]*\]/.exec(line);
    if (head) {
      if (head[1]) prefix = head[1];
      const from = /from (\S+)\]/.exec(line)?.[1] ?? protocolAddress.get(head[2]!);
      cur = { prefix, nextHops: [], asPath: [], communities: [], largeCommunities: [], ...(from ? { from } : {}) };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const attr = /^\s+BGP\.(\w+):\s*(.*)$/.exec(line);
    if (!attr) continue;
    const [, name, value = ''] = attr;
    switch (name) {
      case 'next_hop':
        cur.nextHops = value.split(/\s+/).filter(Boolean);
        break;
      case 'as_path':
        cur.asPath = value.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number);
        break;
      case 'local_pref':
        cur.localPref = Number(value);
        break;
      case 'community':
        cur.communities = [...value.matchAll(/\((\d+),(\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`);
        break;
      case 'large_community':
        cur.largeCommunities = [...value.matchAll(/\((\d+), (\d+), (\d+)\)/g)].map((m) => `${m[1]}:${m[2]}:${m[3]}`);
        break;
    }
  }
  return out;
}

/** `show protocols all NAME`: the BGP state line. */
export function parseBirdBgpState(text: string): NeighborState {
  const m = /BGP state:\s+(\w+)/.exec(text);
  const s = m?.[1];
  if (s === 'Established' || s === 'Idle' || s === 'Connect' || s === 'Active' || s === 'OpenSent' || s === 'OpenConfirm') return s;
  if (s === 'Passive') return 'Idle';
  if (s === 'Down') return 'Idle';
  return 'Unknown';
}

/**
 * `show protocols all NAME`: BIRD marks no route stale in `show route`, but says that it holds a neighbor's routes
 * through its restart ("Neighbor graceful restart active" while it is away, "Neighbor GR:" on a channel until its
 * End-of-RIB), and what the neighbor's capability said ("Restart recovery" is the R bit, "AF preserved" the F bits).
 */
export function parseBirdGracefulRestart(text: string): NeighborGracefulRestart {
  // The neighbor's capabilities come between these two lines; "Restart recovery" and "AF preserved" only in its GR one.
  const gr = /Neighbor capabilities([\s\S]*?)Session:/.exec(text)?.[1] ?? '';
  return {
    active: /Neighbor graceful restart active/.test(text) || /Neighbor GR:\s+(Regular|Long-lived)/.test(text),
    peerRestarted: /Restart recovery/.test(gr),
    peerForwarding: (/AF preserved:\s*(.*)/.exec(gr)?.[1] ?? '').split(/\s+/).filter((f): f is 'ipv4' | 'ipv6' => f === 'ipv4' || f === 'ipv6'),
  };
}

/** `show bfd sessions`: `IP  Interface  State  Since  Interval  Timeout`. */
export function parseBirdBfdSessions(text: string): BfdPeerState[] {
  const out: BfdPeerState[] = [];
  for (const line of text.split('\n')) {
    // A multihop session has no interface: `---`.
    const m = /^(\S+)\s+(\S+)\s+(Up|Down|Init|AdminDown)\s/.exec(line.trim());
    if (m) out.push({ address: m[1]!, state: m[3] as BfdPeerState['state'], multihop: m[2] === '---' });
  }
  return out;
}

/** `show protocols all NAME`: BGP state and routes imported over all channels. */
export function parseBirdProtocolStats(text: string): { state: NeighborState; imported: number } {
  let imported = 0;
  for (const m of text.matchAll(/Routes:\s+(\d+) imported/g)) imported += Number(m[1]);
  return { state: parseBirdBgpState(text), imported };
}

/** `show route count`: total routes per table. */
export function parseBirdRouteCount(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/(\d+) of \d+ routes for \d+ networks in table/g)) total += Number(m[1]);
  return total;
}
