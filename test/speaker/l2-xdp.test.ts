// The XDP fast path of the ARP responder on a real LAN: a node namespace with one interface cabled straight to the
// client and one on a bridge the client is also on, the announcer in the node (helpers/announcer-host.ts) with
// xdp 'auto', arping on the client. The kernel answers for announced addresses only, with the right MAC, through
// the bridge too; the userspace responder never sees those requests (a capture on the node does not either: XDP
// runs before the taps); the counters count the kernel's answers; a new set swaps the program without losing
// counts; withdrawal, an empty set and the speaker's death detach it. Without the capabilities (a bounding set
// without CAP_BPF/CAP_SYS_ADMIN), userspace answers everything. Needs root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, Netns, run } from '../helpers/netns.js';
import { eventually, lanAddresses, startAnnouncerHost, type AnnouncerHost } from './helpers/announcer-client.js';

const skip = isRoot() ? false : 'needs root (network namespaces, bpf(2))';

const lab = new Netns('txd-');
let node = '';
let client = '';
let sw = '';
let tmp = '';
const ifs = { na: '', nb: '', ca: '', cb: '', sn: '', sc: '', br: '' };
const MAC = { na: '02:98:01:00:00:01', nb: '02:98:02:00:00:01', ca: '02:98:01:00:00:64', cb: '02:98:02:00:00:64' };

type Counters = Record<string, { requestsReceived: number; responsesSent: number; gratuitousSent: number }>;
const startHost = (options: Record<string, unknown>, prefix: readonly string[] = []): Promise<AnnouncerHost> =>
  startAnnouncerHost(lab, node, { logLevel: 'info', excludeConfigPath: join(tmp, 'absent.yaml'), ...options }, prefix);

/** arping's replies: the MACs that answered, one per reply. */
function arping(ifname: string, ip: string, count = 3): string[] {
  const out = run('ip', ['netns', 'exec', client, 'arping', '-c', String(count), '-W', '0.3', '-I', ifname, ip], { allowFail: true });
  return [...out.matchAll(/bytes from ([0-9a-f:]{17}) \(/gi)].map((m) => m[1]!.toLowerCase());
}

const xdpOn = (ifname: string) => /\bxdp(generic|drv)?\b/.test(lab.ip(node, '-d', 'link', 'show', ifname)) && /prog\/xdp id \d+/.test(lab.ip(node, '-d', 'link', 'show', ifname));

/** The MAC ndisc6 on the client got for `ip` (one solicitation), or undefined. */
function ndisc6(ifname: string, ip: string): string | undefined {
  const out = run('ip', ['netns', 'exec', client, 'ndisc6', '-1', '-r', '1', '-w', '700', ip, ifname], { allowFail: true });
  return /Target link-layer address: ([0-9A-F:]{17})/i.exec(out)?.[1]?.toLowerCase();
}

/** A capture on the node's interface while `fn` runs: the ARP lines it saw. */
async function captureOnNode(ifname: string, fn: () => void, filter = 'arp'): Promise<string> {
  const dump = lab.spawn(node, 'tcpdump', ['-i', ifname, '-n', '-l', filter]);
  let out = '';
  let err = '';
  dump.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  dump.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  await eventually('tcpdump listening', () => err, (e) => e.includes('listening on'));
  fn();
  await new Promise((r) => setTimeout(r, 500));
  const exited = once(dump, 'exit');
  dump.kill('SIGINT');
  await exited;
  return out;
}

before(() => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'txd-l2-'));
  node = lab.addNamespace('n');
  client = lab.addNamespace('c');
  sw = lab.addNamespace('s');
  for (const k of ['na', 'nb', 'ca', 'cb', 'sn', 'sc', 'br'] as const) ifs[k] = lab.name(k);
  // LAN a: node and client cabled together. LAN b: both on a bridge (in its own namespace).
  lab.veth({ ns: node, name: ifs.na, mac: MAC.na }, { ns: client, name: ifs.ca, mac: MAC.ca });
  lab.veth({ ns: node, name: ifs.nb, mac: MAC.nb }, { ns: sw, name: ifs.sn });
  lab.veth({ ns: client, name: ifs.cb, mac: MAC.cb }, { ns: sw, name: ifs.sc });
  lab.ip(sw, 'link', 'add', ifs.br, 'type', 'bridge');
  for (const port of [ifs.sn, ifs.sc]) {
    lab.ip(sw, 'link', 'set', port, 'master', ifs.br);
    lab.ip(sw, 'link', 'set', port, 'up');
  }
  lab.ip(sw, 'link', 'set', ifs.br, 'up');
  for (const [n, c, subnet] of [['na', 'ca', 1], ['nb', 'cb', 2]] as const) {
    lanAddresses(lab, { ns: node, ifname: ifs[n] }, { ns: client, ifname: ifs[c] }, `10.98.${subnet}`, `fd00:98:${subnet}`);
  }
});
after(async () => {
  await lab.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('XDP answers ARP for announced addresses, cabled and through a bridge; userspace never sees those requests', { skip }, async () => {
  const host = await startHost({ xdp: 'auto', scanIntervalMs: 500 });
  try {
    await eventually('responders', () => host.call<{ arp: string[] }>('responders'), (r) => r.arp.length === 2);
    await host.call('set', { name: 'default/all', ip: '10.98.1.200', interfaces: 'all' });
    await host.call('set', { name: 'default/only-a', ip: '10.98.1.201', interfaces: [ifs.na] });
    const xdp = await eventually(
      'XDP attached',
      () => host.call<{ name: string; mode: string; addresses: number }[]>('xdp'),
      (x) => x.length === 2,
    );
    assert.deepEqual(xdp, [
      { name: ifs.na, mode: 'generic', addresses: 2 },
      { name: ifs.nb, mode: 'generic', addresses: 1 },
    ].sort((a, b) => a.name.localeCompare(b.name)));
    assert.ok(xdpOn(ifs.na) && xdpOn(ifs.nb), 'ip link shows the programs');
    assert.match(host.stderr(), /answering ARP and NDP in the kernel \(XDP\) on this interface/);
    // Past the gratuitous window (5 s): every reply the client sees from now on is an answer to its requests.
    await new Promise((r) => setTimeout(r, 5500));
    const before = await host.call<Counters>('counters');

    let cabled: string[] = [];
    const seen = await captureOnNode(ifs.na, () => {
      cabled = arping(ifs.ca, '10.98.1.200');
      assert.deepEqual(arping(ifs.ca, '10.98.1.202', 2), [], 'nobody announces .202');
    });
    assert.deepEqual(cabled, [MAC.na, MAC.na, MAC.na]);
    assert.doesNotMatch(seen, /who-has 10\.98\.1\.200/, `XDP runs before the taps: ${seen}`);
    assert.match(seen, /who-has 10\.98\.1\.202/, `other requests reach the node: ${seen}`);
    const bridged = arping(ifs.cb, '10.98.1.200');
    assert.deepEqual(bridged, [MAC.nb, MAC.nb, MAC.nb], 'through the bridge, with that interface MAC');
    assert.deepEqual(arping(ifs.ca, '10.98.1.201'), [MAC.na, MAC.na, MAC.na]);
    assert.deepEqual(arping(ifs.cb, '10.98.1.201', 2), [], 'not on an interface the selection leaves out');
    assert.deepEqual(arping(ifs.ca, '10.98.1.1', 2), [MAC.na, MAC.na], "the kernel still answers for the node's own address");

    // The kernel's answers are counted, and the userspace responder did not see one of those requests.
    const after1 = await host.call<Counters>('counters');
    const d = (ip: string, c: Counters) => c[ip]!.responsesSent - (before[ip]?.responsesSent ?? 0);
    assert.equal(d('10.98.1.200', after1), 6);
    assert.equal(after1['10.98.1.200']!.requestsReceived - before['10.98.1.200']!.requestsReceived, 6);
    assert.equal(d('10.98.1.201', after1), 3);
    const drops = await host.call<Record<string, number>>('drops');
    assert.equal(drops['notAnnounced'], 0, JSON.stringify(drops));

    // A new address: a new program swapped in; the counts of the old one are kept.
    await host.call('set', { name: 'default/third', ip: '10.98.1.203', interfaces: 'all' });
    await eventually('three addresses', () => host.call<{ name: string; addresses: number }[]>('xdp'), (x) => x.find((i) => i.name === ifs.na)?.addresses === 3);
    assert.deepEqual(arping(ifs.ca, '10.98.1.203', 1), [MAC.na]);
    assert.deepEqual(arping(ifs.ca, '10.98.1.200', 1), [MAC.na]);
    const after2 = await host.call<Counters>('counters');
    assert.equal(d('10.98.1.200', after2), 7);

    // Withdrawal: no answer for it, from the kernel or from userspace.
    await host.call('delete', { name: 'default/all' });
    await host.call('delete', { name: 'default/third' });
    await eventually('withdrawn', () => host.call<{ name: string; addresses: number }[]>('xdp'), (x) => x.length === 1 && x[0]!.addresses === 1);
    assert.deepEqual(arping(ifs.ca, '10.98.1.200', 2), []);
    assert.deepEqual(arping(ifs.cb, '10.98.1.200', 2), []);
    assert.ok(!xdpOn(ifs.nb), 'nothing announced on nb: its program is detached');
    assert.deepEqual(arping(ifs.ca, '10.98.1.201', 1), [MAC.na]);
    assert.equal((await host.call<Counters>('counters'))['10.98.1.200']!.responsesSent, after2['10.98.1.200']!.responsesSent, 'counts kept after withdrawal');
    await host.call('delete', { name: 'default/only-a' });
    await eventually('all detached', () => host.call<unknown[]>('xdp'), (x) => x.length === 0);
    assert.ok(!xdpOn(ifs.na));
  } finally {
    await host.call('close').catch(() => undefined);
  }
});

test('XDP answers NDP solicitations for announced IPv6 addresses; userspace never sees them', { skip }, async () => {
  const host = await startHost({ xdp: 'auto', scanIntervalMs: 500 });
  try {
    await eventually('responders', () => host.call<{ ndp: string[] }>('responders'), (r) => r.ndp.length === 2);
    await host.call('set', { name: 'default/v6', ip: 'fd00:98:1::200', interfaces: 'all' });
    await host.call('set', { name: 'default/v4', ip: '10.98.1.230', interfaces: 'all' });
    await eventually('XDP attached', () => host.call<{ name: string; addresses: number }[]>('xdp'), (x) => x.length === 2 && x.every((i) => i.addresses === 2));
    // ndisc6 takes any advertisement for its target: let the unsolicited ones (5 s) pass.
    await new Promise((r) => setTimeout(r, 5500));
    const before = await host.call<Counters>('counters');
    let cabled: string | undefined;
    const seen = await captureOnNode(
      ifs.na,
      () => {
        cabled = ndisc6(ifs.ca, 'fd00:98:1::200');
        assert.equal(ndisc6(ifs.ca, 'fd00:98:1::202'), undefined, 'nobody announces ::202');
      },
      'icmp6 and ip6[40] == 135',
    );
    assert.equal(cabled, MAC.na);
    assert.doesNotMatch(seen, /who has fd00:98:1::200/, `XDP runs before the taps: ${seen}`);
    assert.match(seen, /who has fd00:98:1::202/, `other solicitations reach the node: ${seen}`);
    assert.equal(ndisc6(ifs.cb, 'fd00:98:1::200'), MAC.nb, 'through the bridge, with that interface MAC');
    assert.equal(ndisc6(ifs.ca, 'fd00:98:1::1'), MAC.na, "the kernel still answers for the node's own address");
    // The client's own kernel (what real traffic uses) accepts the answer.
    lab.exec(client, 'python3', ['-c', "import socket\ns = socket.socket(socket.AF_INET6); s.settimeout(1)\ntry: s.connect(('fd00:98:1::200', 9))\nexcept OSError: pass"]);
    assert.match(lab.ip(client, 'neigh', 'show', 'dev', ifs.ca), new RegExp(`fd00:98:1::200 lladdr ${MAC.na} (REACHABLE|STALE|DELAY)`));
    const after1 = await host.call<Counters>('counters');
    assert.ok(after1['fd00:98:1::200']!.responsesSent - before['fd00:98:1::200']!.responsesSent >= 2);
    assert.equal(
      after1['fd00:98:1::200']!.responsesSent - before['fd00:98:1::200']!.responsesSent,
      after1['fd00:98:1::200']!.requestsReceived - before['fd00:98:1::200']!.requestsReceived,
    );
    const drops = await host.call<Record<string, number>>('drops');
    assert.equal(drops['notAnnounced'], 0, JSON.stringify(drops));
    await host.call('delete', { name: 'default/v6' });
    await eventually('withdrawn', () => host.call<{ addresses: number }[]>('xdp'), (x) => x.every((i) => i.addresses === 1));
    assert.equal(ndisc6(ifs.ca, 'fd00:98:1::200'), undefined);
  } finally {
    await host.call('close').catch(() => undefined);
  }
});

test('a speaker that dies stops answering: the kernel detaches its program with its last fd', { skip }, async () => {
  const host = await startHost({ xdp: 'auto', scanIntervalMs: 500 });
  await eventually('responders', () => host.call<{ arp: string[] }>('responders'), (r) => r.arp.length === 2);
  await host.call('set', { name: 'default/all', ip: '10.98.1.210', interfaces: 'all' });
  await eventually('XDP attached', () => host.call<unknown[]>('xdp'), (x) => x.length === 2);
  assert.deepEqual(arping(ifs.ca, '10.98.1.210', 1), [MAC.na]);
  const exited = once(host.lines.child, 'exit');
  host.lines.child.kill('SIGKILL');
  await exited;
  await eventually('programs gone', () => xdpOn(ifs.na) || xdpOn(ifs.nb), (on) => !on, 10_000);
  assert.deepEqual(arping(ifs.ca, '10.98.1.210', 2), []);
  assert.deepEqual(arping(ifs.cb, '10.98.1.210', 2), []);
});

test('without CAP_BPF/CAP_SYS_ADMIN (or with xdp off), userspace answers everything, and says why once', { skip }, async () => {
  for (const [what, options, prefix, reason] of [
    ['no capability', { xdp: 'auto' }, ['setpriv', '--bounding-set', '-sys_admin,-bpf,-perfmon', '--'], /no permission to load and attach XDP programs.*XDP cannot be used on this node/],
    ['off', { xdp: 'off' }, [], /ARP and NDP answered in userspace only \(--l2-xdp off\)/],
  ] as const) {
    const host = await startHost({ ...options, scanIntervalMs: 500 }, [...prefix]);
    try {
      await eventually('responders', () => host.call<{ arp: string[] }>('responders'), (r) => r.arp.length === 2);
      await host.call('set', { name: 'default/all', ip: '10.98.1.220', interfaces: 'all' });
      await host.call('set', { name: 'default/other', ip: '10.98.1.221', interfaces: 'all' });
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(await host.call('xdp'), [], what);
      assert.ok(!xdpOn(ifs.na), what);
      assert.deepEqual(arping(ifs.ca, '10.98.1.220', 1), [MAC.na], what);
      assert.deepEqual(arping(ifs.cb, '10.98.1.221', 1), [MAC.nb], what);
      assert.match(host.stderr(), reason, what);
      assert.equal(host.stderr().match(/XDP cannot be used|userspace only/g)?.length, 1, `${what}: said once`);
    } finally {
      await host.call('close').catch(() => undefined);
    }
  }
});
