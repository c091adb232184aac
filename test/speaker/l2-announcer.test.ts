// The layer 2 announcer on a real LAN: a node namespace with two LAN interfaces, a client namespace on both, the
// announcer in the node (test/speaker/helpers/announcer-host.ts), and the real tools on the client: arping,
// ndisc6, tcpdump. Answers only for announced addresses, with the right MAC, on the allowed interfaces; gratuitous
// ARP / unsolicited NA as MetalLB sends them; garbage ignored; interfaces going down, up, appearing, enslaved.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { icmpv6Checksum } from '../../src/net/checksum.js';
import { isRoot, Netns, run } from '../helpers/netns.js';
import { eventually, lanAddresses, startAnnouncerHost, type AnnouncerHost } from './helpers/announcer-client.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const INJECT = join(HERE, '..', 'net', 'helpers', 'inject.ts');
const skip = isRoot() ? false : 'needs root (network namespaces, raw sockets)';

const lab = new Netns('tl2-');
let node = '';
let client = '';
let tmp = '';
const ifs = { na: '', nb: '', ca: '', cb: '' };
const MAC = { na: '02:93:10:00:00:01', nb: '02:93:11:00:00:01', ca: '02:93:10:00:00:64', cb: '02:93:11:00:00:64' };

const startHost = (options: Record<string, unknown>): Promise<AnnouncerHost> => startAnnouncerHost(lab, node, { logLevel: 'debug', ...options });

/** The MAC that answered an ARP request from the client on `ifname`, or undefined after a few tries. */
function arping(ifname: string, ip: string, tries = 3): string | undefined {
  const out = run('ip', ['netns', 'exec', client, 'arping', '-c', String(tries), '-W', '0.3', '-C', '1', '-I', ifname, ip], { allowFail: true });
  return /bytes from ([0-9a-f:]{17}) \(/i.exec(out)?.[1]?.toLowerCase();
}

function ndisc6(ifname: string, ip: string): string | undefined {
  const out = run('ip', ['netns', 'exec', client, 'ndisc6', '-1', '-r', '2', '-w', '700', ip, ifname], { allowFail: true });
  return /Target link-layer address: ([0-9A-F:]{17})/i.exec(out)?.[1]?.toLowerCase();
}

before(() => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'tl2-l2-'));
  node = lab.addNamespace('n');
  client = lab.addNamespace('c');
  for (const k of ['na', 'nb', 'ca', 'cb'] as const) ifs[k] = lab.name(k);
  for (const [n, c, subnet] of [['na', 'ca', 10], ['nb', 'cb', 11]] as const) {
    lab.veth({ ns: node, name: ifs[n], mac: MAC[n] }, { ns: client, name: ifs[c], mac: MAC[c] });
    lanAddresses(lab, { ns: node, ifname: ifs[n] }, { ns: client, ifname: ifs[c] }, `10.93.${subnet}`, `fd00:93:${subnet}`);
  }
});
after(async () => {
  await lab.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('ARP and NDP: answers for announced addresses only, with the MAC of the interface asked, on the allowed interfaces', { skip }, async () => {
  const host = await startHost({ scanIntervalMs: 500, excludeConfigPath: join(tmp, 'absent.yaml') });
  try {
    await eventually('responders', () => host.call<{ arp: string[]; ndp: string[] }>('responders'), (r) => r.arp.length === 2 && r.ndp.length === 2);
    await host.call('set', { name: 'default/all', ip: '10.93.10.200', interfaces: 'all' });
    await host.call('set', { name: 'default/only-a', ip: '10.93.10.201', interfaces: [ifs.na] });
    await host.call('set', { name: 'default/all', ip: 'fd00:93:10::200', interfaces: 'all' });
    await host.call('set', { name: 'default/only-a6', ip: 'fd00:93:10::201', interfaces: [ifs.na] });
    // ndisc6 takes any advertisement for its target, from any interface: let the unsolicited ones (5 s) pass.
    await new Promise((r) => setTimeout(r, 5500));

    assert.equal(arping(ifs.ca, '10.93.10.200'), MAC.na);
    assert.equal(arping(ifs.cb, '10.93.10.200'), MAC.nb, 'the same address on the other LAN, with that interface MAC');
    assert.equal(arping(ifs.ca, '10.93.10.201'), MAC.na);
    assert.equal(arping(ifs.cb, '10.93.10.201', 2), undefined, 'not on an interface the selection leaves out');
    assert.equal(arping(ifs.ca, '10.93.10.202', 2), undefined, 'not for an address nobody announces');
    assert.equal(arping(ifs.ca, '10.93.10.1'), MAC.na, "the kernel still answers for the node's own address");

    assert.equal(ndisc6(ifs.ca, 'fd00:93:10::200'), MAC.na);
    assert.equal(ndisc6(ifs.cb, 'fd00:93:10::200'), MAC.nb);
    assert.equal(ndisc6(ifs.ca, 'fd00:93:10::201'), MAC.na);
    assert.equal(ndisc6(ifs.cb, 'fd00:93:10::201'), undefined);
    assert.equal(ndisc6(ifs.ca, 'fd00:93:10::202'), undefined);
    // Those for other addresses (nobody's, the node's own, one announced on the other interface only) stayed in
    // the kernel: the socket filters name the addresses announced on each interface.
    const drops = await host.call<Record<string, number>>('drops');
    assert.deepEqual([drops['notAnnounced'], drops['notMatchInterface']], [0, 0], JSON.stringify(drops));

    // The client's own kernel (what real traffic uses) resolves both addresses to the node's MAC.
    lab.exec(client, 'python3', ['-c', [
      'import socket',
      "for fam, a in ((socket.AF_INET, '10.93.10.200'), (socket.AF_INET6, 'fd00:93:10::200')):",
      '    s = socket.socket(fam); s.settimeout(1)',
      '    try: s.connect((a, 9))',
      '    except OSError: pass',
    ].join('\n')]);
    const neigh = lab.ip(client, 'neigh', 'show', 'dev', ifs.ca);
    assert.match(neigh, new RegExp(`10\\.93\\.10\\.200 lladdr ${MAC.na} (REACHABLE|STALE|DELAY)`), neigh);
    assert.match(neigh, new RegExp(`fd00:93:10::200 lladdr ${MAC.na} (REACHABLE|STALE|DELAY)`), neigh);

    const counters = await host.call<Record<string, { requestsReceived: number; responsesSent: number; gratuitousSent: number }>>('counters');
    assert.ok(counters['10.93.10.200']!.requestsReceived >= 2 && counters['10.93.10.200']!.responsesSent >= 2);
    assert.ok(counters['fd00:93:10::200']!.responsesSent >= 2);
    assert.ok(counters['10.93.10.200']!.gratuitousSent >= 4, 'gratuitous ARP on both interfaces');
    assert.equal(counters['10.93.10.202'], undefined);
    assert.deepEqual(await host.call('interfacesFor', { ip: '10.93.10.200', interfaces: [ifs.nb, 'eth9'] }), [ifs.nb]);

    // Withdrawal: no more answers (and nothing sent to say so).
    await host.call('delete', { name: 'default/all' });
    assert.equal(arping(ifs.ca, '10.93.10.200', 2), undefined);
    assert.equal(ndisc6(ifs.ca, 'fd00:93:10::200'), undefined);
    assert.equal(arping(ifs.ca, '10.93.10.201'), MAC.na, 'other services keep theirs');
  } finally {
    await host.call('close').catch(() => undefined);
  }
});

test("gratuitous ARP and unsolicited NA as a capture on the client sees them: MetalLB's content and timing", { skip }, async () => {
  const host = await startHost({ excludeConfigPath: join(tmp, 'absent.yaml') });
  const dump = lab.spawn(client, 'tcpdump', ['-i', ifs.ca, '-n', '-e', '-tt', '-l', '-v', 'arp or (icmp6 and ip6[40] == 136)']);
  let text = '';
  dump.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  dump.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  try {
    await eventually('tcpdump listening', () => text, (t) => t.includes('listening on'));
    await host.call('set', { name: 'default/g', ip: '10.93.10.210', interfaces: 'all' });
    await host.call('set', { name: 'default/g', ip: 'fd00:93:10::210', interfaces: 'all' });
    await new Promise((r) => setTimeout(r, 7000));
  } finally {
    dump.kill('SIGINT');
    await once(dump, 'exit');
    await host.call('close').catch(() => undefined);
  }
  const lines = text.split('\n');
  const arp = lines.filter((l) => l.includes('10.93.10.210'));
  const requests = arp.filter((l) => /Request who-has 10\.93\.10\.210 \(ff:ff:ff:ff:ff:ff\) tell 10\.93\.10\.210/.test(l));
  const replies = arp.filter((l) => /Reply 10\.93\.10\.210 is-at 02:93:10:00:00:01/.test(l));
  for (const l of [...requests, ...replies]) assert.match(l, /02:93:10:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP/, l);
  assert.equal(requests.length, replies.length, 'a request and a reply in every burst');
  // Five bursts from a fresh ticker (0, 1.1, 2.2, 3.3, 4.4 s) within a 5 s window. On a loaded CI machine a tick can
  // run hundreds of milliseconds late (a burst then falls out of the window, and the gap after a late tick is
  // short), so the spacing is judged by the median gap; each gap must still be a burst's, not a flood or a stall.
  assert.ok(requests.length >= 3 && requests.length <= 6, `bursts: ${requests.length}\n${arp.join('\n')}`);
  const times = requests.map((l) => Number(l.split(' ')[0]));
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
  const shown = gaps.map((g) => g.toFixed(3)).join(', ');
  assert.ok(median >= 1.0 && median < 1.5, `median gap ${median.toFixed(3)} s between bursts, MetalLB's is 1.1 s (${shown})`);
  assert.ok(gaps.every((g) => g > 0.4 && g < 3), `gaps ${shown} s`);
  assert.ok(times.at(-1)! - times[0]! < 7, 'no burst long after the 5 s window');

  const na = lines.filter((l) => l.includes('tgt is fd00:93:10::210'));
  assert.ok(na.length >= 3 && na.length <= 6, `unsolicited NAs: ${na.length}`);
  for (const l of na) {
    assert.match(l, /02:93:10:00:00:01 > 33:33:00:00:00:01/);
    assert.match(l, /fd00:93:10::210 > ff02::1: \[icmp6 sum ok\] ICMP6, neighbor advertisement/);
    assert.match(l, /Flags \[override\]/);
  }
  const opts = text.split('\n').filter((l) => /destination link-address option/.test(l));
  assert.ok(opts.every((l) => l.includes('02:93:10:00:00:01')) && opts.length >= na.length);
});

test('garbage and truncated frames from the client are ignored and counted; the announcer keeps answering', { skip }, async () => {
  const host = await startHost({ excludeConfigPath: join(tmp, 'absent.yaml') });
  try {
    await host.call('set', { name: 'default/g', ip: '10.93.10.220', interfaces: 'all' });
    await host.call('set', { name: 'default/g6', ip: 'fd00:93:10::220', interfaces: 'all' });
    assert.equal(arping(ifs.ca, '10.93.10.220'), MAC.na);
    const bcast = 'ffffffffffff';
    const src = MAC.ca.replace(/:/g, '');
    const arpHeader = (hw: string, proto: string, hlen: string, plen: string) => `${bcast}${src}0806${hw}${proto}${hlen}${plen}0001`;
    const body = `${src}0a5d0a64000000000000` + '0a5d0adc';
    const ns = (mutate: (b: Buffer) => void) => {
      // A valid solicitation for fd00:93:10::220 from the client, then broken.
      const b = Buffer.from(
        '3333ff000220' + src + '86dd' + '6000000000203aff' + 'fe80000000000000009310fffe000064' + 'ff0200000000000000000001ff000220' +
          '87000000' + '00000000' + 'fd000093001000000000000000000220' + '0101' + src,
        'hex',
      );
      b.writeUInt16BE(icmpv6Checksum(b, 54, 32, b.subarray(22, 38), b.subarray(38, 54)), 56);
      mutate(b);
      return b.toString('hex');
    };
    const frames = [
      arpHeader('0001', '0800', '06', '04').slice(0, 50), // truncated after the opcode
      arpHeader('0006', '0800', '06', '04') + body, // IEEE 802 hardware
      arpHeader('0001', '86dd', '06', '04') + body, // protocol IPv6
      arpHeader('0001', '0800', '08', '04') + body + '0000', // odd hardware length
      `${bcast}${src}0806` + 'ffffffffffff0001' + 'ff'.repeat(38), // noise (with the request opcode the filter lets in)
      ns((b) => (b[57] ^= 0x55)), // bad checksum
      ns((b) => b.writeUInt16BE(64, 18)), // payload length beyond the frame
      ns((b) => (b[21] = 64)), // hop limit 64
      ns((b) => (b[79] = 0)), // option of length 0 (checksum wrong too: either reason drops it)
      ns(() => undefined).slice(0, 120), // truncated solicitation
    ];
    for (let round = 0; round < 20; round++) {
      const out = lab.exec(client, process.execPath, ['--import', 'tsx', INJECT, ifs.ca, JSON.stringify(frames)]);
      assert.match(out, /"sent":10/);
    }
    // 7 of the 10 reach the announcer, which counts them; the socket filters keep in the kernel the noise (its
    // target is not announced) and the two too short to have a target.
    const drops = await eventually('malformed counted', () => host.call<Record<string, number>>('drops'), (d) => (d['malformed'] ?? 0) >= 100);
    assert.ok(drops['malformed']! <= 140, `${drops['malformed']} malformed: more than the filters let through`);
    assert.equal(arping(ifs.ca, '10.93.10.220'), MAC.na, 'still answering ARP');
    assert.equal(ndisc6(ifs.ca, 'fd00:93:10::220'), MAC.na, 'still answering NDP');
  } finally {
    await host.call('close').catch(() => undefined);
  }
});

test('interfaces going down and up, appearing later, or becoming a bridge port are picked up by the rescan', { skip }, async () => {
  const host = await startHost({ scanIntervalMs: 400, excludeConfigPath: join(tmp, 'absent.yaml') });
  const nc = lab.name('nc');
  const cc = lab.name('cc');
  const br = lab.name('br');
  try {
    await host.call('set', { name: 'default/r', ip: '10.93.10.230', interfaces: 'all' });
    assert.equal(arping(ifs.cb, '10.93.10.230'), MAC.nb);
    lab.ip(node, 'link', 'set', ifs.nb, 'down');
    await eventually('nb dropped', () => host.call<{ arp: string[] }>('responders'), (r) => !r.arp.includes(ifs.nb));
    lab.ip(node, 'link', 'set', ifs.nb, 'up');
    await eventually('nb back', () => host.call<{ arp: string[] }>('responders'), (r) => r.arp.includes(ifs.nb));
    assert.equal(await eventually('answer on nb', () => arping(ifs.cb, '10.93.10.230'), (m) => m !== undefined), MAC.nb);

    // A new interface after start: answered once the periodic scan has seen it.
    lab.veth({ ns: node, name: nc, mac: '02:93:12:00:00:01' }, { ns: client, name: cc, mac: '02:93:12:00:00:64' });
    lab.ip(client, 'addr', 'add', '10.93.12.100/24', 'dev', cc);
    lab.ip(node, 'link', 'set', nc, 'up');
    lab.ip(client, 'link', 'set', cc, 'up');
    await eventually('nc responder', () => host.call<{ arp: string[] }>('responders'), (r) => r.arp.includes(nc));
    assert.equal(await eventually('answer on nc', () => arping(cc, '10.93.10.230'), (m) => m !== undefined), '02:93:12:00:00:01');

    // Enslaved to a bridge: MetalLB leaves bridge ports alone.
    lab.ip(node, 'link', 'add', br, 'type', 'bridge');
    lab.ip(node, 'link', 'set', nc, 'master', br);
    await eventually('nc dropped as a bridge port', () => host.call<{ arp: string[] }>('responders'), (r) => !r.arp.includes(nc));
    // NOARP: no responder either.
    lab.ip(node, 'link', 'set', ifs.nb, 'arp', 'off');
    await eventually('nb dropped for NOARP', () => host.call<{ arp: string[]; ndp: string[] }>('responders'), (r) => !r.arp.includes(ifs.nb) && !r.ndp.includes(ifs.nb));
  } finally {
    lab.ip(node, 'link', 'set', ifs.nb, 'arp', 'on');
    await host.call('close').catch(() => undefined);
  }
});

test('interfaces excluded by /etc/metallb/excludel2.yaml are never answered on, even for "all"', { skip }, async () => {
  const file = join(tmp, 'excludel2.yaml');
  writeFileSync(file, `announcedInterfacesToExclude:\n  - "^${ifs.nb}$"\n  - "^veth.*"\n`);
  const host = await startHost({ excludeConfigPath: file });
  try {
    const r = await host.call<{ arp: string[]; ndp: string[] }>('responders');
    assert.ok(r.arp.includes(ifs.na) && r.ndp.includes(ifs.na), JSON.stringify(r));
    assert.ok(!r.arp.includes(ifs.nb) && !r.ndp.includes(ifs.nb), JSON.stringify(r));
    await host.call('set', { name: 'default/x', ip: '10.93.10.240', interfaces: 'all' });
    assert.equal(arping(ifs.ca, '10.93.10.240'), MAC.na);
    assert.equal(arping(ifs.cb, '10.93.10.240', 2), undefined);
    assert.ok(!(await host.call<string[]>('interfacesFor', { ip: '10.93.10.240', interfaces: 'all' })).includes(ifs.nb));
  } finally {
    await host.call('close').catch(() => undefined);
  }
});
