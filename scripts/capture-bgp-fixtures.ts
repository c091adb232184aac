// Regenerates test/fixtures/bgp/*.json: real BGP sessions between BIRD 2, FRR and GoBGP (and our speaker towards
// each), captured with tcpdump in a pair of network namespaces, split into messages. Run as root:
//   node --import tsx scripts/capture-bgp-fixtures.ts
// Each pair: both sides originate routes (IPv4 and IPv6, with communities and large communities), one side
// withdraws its routes, then the session is shut down (Cease). The parser tests read these bytes.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from '../src/speaker/bgp/session.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'test', 'fixtures', 'bgp');
const A = 'tbg-cap-a';
const B = 'tbg-cap-b';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: 'inherit' });

type Kind = 'bird' | 'frr' | 'gobgp';
interface Side { kind: Kind; ns: string; addr4: string; addr6: string; asn: number; peer4: string; peerAsn: number; prefix: string }

function cleanup(): void {
  for (const ns of [A, B]) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // absent
    }
  }
}

function build(): void {
  cleanup();
  ip('netns', 'add', A);
  ip('netns', 'add', B);
  ip('link', 'add', 'eth0', 'netns', A, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', B);
  for (const [ns, n] of [[A, 1], [B, 2]] as const) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `10.95.200.${n}/24`, 'dev', 'eth0');
    ip('-n', ns, 'addr', 'add', `fd00:95:200::${n}/64`, 'dev', 'eth0', 'nodad');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
  }
}

const procs: { kill: () => void }[] = [];

function start(ns: string, argv: string[]): void {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'ignore', 'ignore'] });
  procs.push({ kill: () => child.kill('SIGTERM') });
}

function birdConf(s: Side): string {
  const v6 = s.prefix.replace('10.95.', 'fd00:95:').replace(/\.0\/24$/, '::/64');
  return `router id ${s.addr4};
protocol device {}
protocol static st4 { ipv4; route ${s.prefix} blackhole; }
protocol static st6 { ipv6; route ${v6} blackhole; }
protocol bgp peer_x {
  local as ${s.asn}; neighbor ${s.peer4} as ${s.peerAsn};
  connect delay time 1; connect retry time 2; hold time 30;
  ipv4 { import all; export filter { bgp_community.add((65000,4)); bgp_large_community.add((64512,1,4)); accept; }; };
  ipv6 { import all; export filter { bgp_community.add((65000,6)); bgp_large_community.add((64512,1,6)); accept; }; };
}
`;
}

function frrConf(s: Side): string {
  const v6 = s.prefix.replace('10.95.', 'fd00:95:').replace(/\.0\/24$/, '::/64');
  return `frr defaults traditional
hostname cap
route-map SET permit 10
 set community 65000:14
 set large-community 64512:1:14
router bgp ${s.asn}
 bgp router-id ${s.addr4}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor ${s.peer4} remote-as ${s.peerAsn}
 neighbor ${s.peer4} timers connect 1
 address-family ipv4 unicast
  network ${s.prefix} route-map SET
  neighbor ${s.peer4} activate
 exit-address-family
 address-family ipv6 unicast
  network ${v6} route-map SET
  neighbor ${s.peer4} activate
 exit-address-family
`;
}

function gobgpConf(s: Side): string {
  return `[global.config]
  as = ${s.asn}
  router-id = "${s.addr4}"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${s.peer4}"
    peer-as = ${s.peerAsn}
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`;
}

function startSide(s: Side, dir: string): () => void {
  const d = join(dir, s.kind + s.ns);
  mkdirSync(d, { recursive: true });
  const v6 = s.prefix.replace('10.95.', 'fd00:95:').replace(/\.0\/24$/, '::/64');
  if (s.kind === 'bird') {
    writeFileSync(join(d, 'bird.conf'), birdConf(s));
    start(s.ns, ['bird', '-f', '-c', join(d, 'bird.conf'), '-s', join(d, 'ctl'), '-P', join(d, 'pid')]);
    return () => execFileSync('birdc', ['-s', join(d, 'ctl'), 'disable', 'st4']);
  }
  if (s.kind === 'frr') {
    execFileSync('chown', ['frr:frr', d]);
    writeFileSync(join(d, 'bgpd.conf'), frrConf(s));
    execFileSync('chown', ['frr:frr', join(d, 'bgpd.conf')]);
    const common = ['--vty_socket', d, '-z', join(d, 'zserv.api'), '-P', '0'];
    start(s.ns, ['/usr/lib/frr/zebra', '-i', join(d, 'zebra.pid'), ...common, '-f', '/dev/null']);
    setTimeout(() => start(s.ns, ['/usr/lib/frr/bgpd', '-i', join(d, 'bgpd.pid'), ...common, '-n', '-f', join(d, 'bgpd.conf')]), 500);
    return () => execFileSync('vtysh', ['--vty_socket', d, '-c', 'configure terminal', '-c', `router bgp ${s.asn}`, '-c', 'address-family ipv4 unicast', '-c', `no network ${s.prefix} route-map SET`]);
  }
  writeFileSync(join(d, 'gobgpd.toml'), gobgpConf(s));
  const sock = `unix://${join(d, 'api.sock')}`;
  start(s.ns, ['gobgpd', '-f', join(d, 'gobgpd.toml'), '--api-hosts', sock, '--pprof-disable']);
  setTimeout(() => {
    execFileSync('gobgp', ['--target', sock, 'global', 'rib', 'add', '-a', 'ipv4', s.prefix, 'community', '65000:24', 'large-community', '64512:1:24']);
    execFileSync('gobgp', ['--target', sock, 'global', 'rib', 'add', '-a', 'ipv6', v6, 'community', '65000:26', 'large-community', '64512:1:26']);
  }, 1500);
  return () => execFileSync('gobgp', ['--target', sock, 'global', 'rib', 'del', '-a', 'ipv4', s.prefix]);
}

/** The two directions of the TCP stream carrying the session (the one with the most bytes), as raw bytes. */
function streams(pcap: string): { fromA: Buffer; fromB: Buffer } {
  const ids = [...new Set(execFileSync('tshark', ['-r', pcap, '-T', 'fields', '-e', 'tcp.stream']).toString().split('\n').filter(Boolean))];
  let best = { fromA: Buffer.alloc(0), fromB: Buffer.alloc(0) };
  for (const id of ids) {
    const s = stream(pcap, id);
    if (s.fromA.length + s.fromB.length > best.fromA.length + best.fromB.length) best = s;
  }
  return best;
}

function stream(pcap: string, id: string): { fromA: Buffer; fromB: Buffer } {
  const out = execFileSync('tshark', ['-r', pcap, '-q', '-z', `follow,tcp,raw,${id}`], { maxBuffer: 64 * 1024 * 1024 }).toString();
  // follow output: hex lines; those from node 1 (the side that did not send the SYN) are indented with a tab.
  let node0 = '';
  let first = '';
  let second = '';
  let started = false;
  for (const line of out.split('\n')) {
    const m = /^Node 0: (\S+):\d+$/.exec(line);
    if (m) node0 = m[1]!;
    if (line.startsWith('Node 1:')) {
      started = true;
      continue;
    }
    if (!started || line.startsWith('====') || line.trim() === '') continue;
    if (line.startsWith('\t')) second += line.trim();
    else first += line.trim();
  }
  const aFirst = node0 === '10.95.200.1';
  return { fromA: Buffer.from(aFirst ? first : second, 'hex'), fromB: Buffer.from(aFirst ? second : first, 'hex') };
}

function split(stream: Buffer): string[] {
  const out: string[] = [];
  let i = 0;
  while (i + 19 <= stream.length) {
    const len = stream.readUInt16BE(i + 16);
    out.push(stream.subarray(i, i + len).toString('hex'));
    i += len;
  }
  return out;
}

async function capturePair(a: Kind, b: Kind | 'metallb-ts', dir: string): Promise<void> {
  build();
  const pcap = join(dir, `${a}-${b}.pcap`);
  const dump = spawn('ip', ['netns', 'exec', A, 'tcpdump', '-i', 'eth0', '-w', pcap, '-U', 'tcp port 179'], { stdio: 'ignore' });
  await sleep(1000);
  const sa: Side = { kind: a, ns: A, addr4: '10.95.200.1', addr6: 'fd00:95:200::1', asn: 64501, peer4: '10.95.200.2', peerAsn: 4200000002, prefix: '10.95.101.0/24' };
  const withdraw = startSide(sa, dir);
  if (b === 'metallb-ts') {
    // Our speaker, from this process: put a driver in namespace B.
    const child = spawn('ip', ['netns', 'exec', B, process.execPath, '--import', 'tsx', join(ROOT, 'scripts', 'capture-bgp-fixtures.ts'), '--speaker'], { stdio: 'inherit', cwd: ROOT });
    procs.push({ kill: () => child.kill('SIGTERM') });
  } else {
    startSide({ kind: b, ns: B, addr4: '10.95.200.2', addr6: 'fd00:95:200::2', asn: 4200000002, peer4: '10.95.200.1', peerAsn: 64501, prefix: '10.95.102.0/24' }, dir);
  }
  await sleep(9000);
  withdraw();
  await sleep(3000);
  for (const p of procs.splice(0).reverse()) p.kill();
  await sleep(1500);
  dump.kill('SIGTERM');
  await sleep(500);
  const { fromA, fromB } = streams(pcap);
  const file = join(OUT, `${a}-${b}.json`);
  writeFileSync(file, `${JSON.stringify({ description: `${a} (AS 64501, 10.95.200.1) <-> ${b} (AS 4200000002, 10.95.200.2), captured by scripts/capture-bgp-fixtures.ts`, [a]: split(fromA), [b]: split(fromB) }, null, 1)}\n`);
  process.stdout.write(`${file}: ${split(fromA).length} + ${split(fromB).length} messages\n`);
  cleanup();
}

async function speakerSide(): Promise<void> {
  const s = new Session({ name: 'cap', peerAddress: '10.95.200.1', myASN: 4200000002, peerASN: 64501, holdTime: 30 }, { nodeName: 'node-cap' });
  s.setAdvertisements([
    { prefix: '10.95.102.1/32', communities: ['65000:34'], largeCommunities: ['64512:1:34'] },
    { prefix: '10.95.102.2/32', communities: ['65000:34'], largeCommunities: ['64512:1:34'] },
    { prefix: 'fd00:95:102::1/128', communities: ['65000:36'] },
  ]);
  s.start();
  setTimeout(() => s.setAdvertisements([{ prefix: 'fd00:95:102::1/128', communities: ['65000:36'] }]), 6000);
  process.once('SIGTERM', () => void s.stop().then(() => process.exit(0)));
}

if (process.argv.includes('--speaker')) {
  await speakerSide();
} else {
  mkdirSync(OUT, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'tbg-cap-'));
  chmodSync(dir, 0o755); // FRR drops to the frr user, which must reach its directory
  try {
    await capturePair('bird', 'frr', dir);
    await capturePair('frr', 'gobgp', dir);
    await capturePair('gobgp', 'bird', dir);
    for (const d of ['bird', 'frr', 'gobgp'] as const) await capturePair(d, 'metallb-ts', dir);
  } finally {
    for (const p of procs) p.kill();
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}
