// The native addon: its loader's errors, and AF_PACKET sockets on a veth pair (frames both ways, BPF filter,
// batches, membership, errors). Needs root (CAP_NET_RAW and NET_ADMIN for the veth pair).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseMac } from '../../src/net/addresses.js';
import { assemble, encode, jeq, label, ld, ret } from '../../src/net/bpf.js';
import { ArpOperation, EtherType } from '../../src/net/messages.js';
import { loadNative } from '../../src/net/native.js';
import { PacketSocket } from '../../src/net/packet-socket.js';
import { parseArpFrame } from '../../src/net/parser.js';
import { ARP_FRAME_LENGTH, writeArpFrame } from '../../src/net/serializer.js';
import { isRoot, Netns } from '../helpers/netns.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const skip = isRoot() ? false : 'needs root (raw sockets, veth pairs)';
const lab = new Netns('tl2-p');
after(() => lab.cleanup());

function loaderError(env: Record<string, string>): string {
  try {
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', "import { loadNative } from './src/net/native.ts'; loadNative();"], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: 'pipe',
    });
    return '';
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr);
  }
}

test('the loader names what is missing: an addon that is not built, or a file that is not an addon', () => {
  const missing = loaderError({ METALLB_NATIVE_ADDON: '/nonexistent/metallb_native.node' });
  assert.match(missing, /NativeUnavailableError: the native addon is not built \(looked for \/nonexistent\/metallb_native\.node\): run `npm run build:native`/);
  assert.match(missing, /python3, make and a C compiler/);
  const dir = mkdtempSync(join(tmpdir(), 'tl2-native-'));
  try {
    writeFileSync(join(dir, 'metallb_native.node'), 'not an ELF file');
    const garbage = loaderError({ METALLB_NATIVE_ADDON: join(dir, 'metallb_native.node') });
    assert.match(garbage, /the native addon .*metallb_native\.node does not load .*rebuild it with `npm run build:native`/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the addon is built by the install step and exports its functions', () => {
  const native = loadNative();
  for (const fn of ['packetOpen', 'packetSend', 'packetSendBatch', 'packetMembership', 'packetTimestamps', 'packetSetFilter', 'packetClose', 'tcpMd5Connect', 'tcpMd5SetKey', 'bpf']) {
    assert.equal(typeof (native as unknown as Record<string, unknown>)[fn], 'function', fn);
  }
});

const MAC_A = parseMac('02:93:00:00:01:0a')!;
const MAC_B = parseMac('02:93:00:00:01:0b')!;
const IP_A = Buffer.from([10, 93, 3, 1]);
const IP_B = Buffer.from([10, 93, 3, 2]);

function arpFrame(op: number, dst: Buffer = Buffer.alloc(6, 0xff)): Buffer {
  const buf = Buffer.alloc(ARP_FRAME_LENGTH);
  writeArpFrame(buf, 0, dst, MAC_A, {
    operation: op,
    senderHardwareAddress: MAC_A,
    senderProtocolAddress: IP_A,
    targetHardwareAddress: Buffer.alloc(6),
    targetProtocolAddress: IP_B,
  });
  return buf;
}

/** Collects parsed ARP operations received on a socket. */
function collector() {
  const got: { op: number; pktType: number; length: number }[] = [];
  let wake: (() => void) | undefined;
  return {
    got,
    onFrame(frame: Buffer, length: number, pktType: number) {
      const r = parseArpFrame(frame, length);
      if (r.ok) got.push({ op: r.value.arp.operation, pktType, length });
      wake?.();
    },
    async until(n: number, timeoutMs = 5000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (got.length < n && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
    },
  };
}

/** Resolves once a frame sent on `a` reaches `b`: a veth just set up drops frames until its queue is activated. */
async function linkCarries(a: string, b: string): Promise<void> {
  let got = 0;
  const rx = PacketSocket.open({ ifname: b, protocol: EtherType.ARP, onFrame: () => void got++ });
  const tx = PacketSocket.open({ ifname: a, protocol: EtherType.ARP, onFrame: () => undefined });
  try {
    for (let i = 0; i < 400 && got === 0; i++) {
      tx.send(arpFrame(ArpOperation.Request));
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(got > 0, `${a} -> ${b} carries no frame after 10 s`);
  } finally {
    rx.close();
    tx.close();
  }
}

test('AF_PACKET on a veth pair: frames sent on one end arrive on the other, filtered by BPF, in batches', { skip }, async () => {
  const a = lab.name('a');
  const b = lab.name('b');
  lab.veth({ name: a, mac: '02:93:00:00:01:0a' }, { name: b, mac: '02:93:00:00:01:0b' });
  // No IPv6 on these links, so the kernel sends nothing of its own on them.
  lab.sysctl(undefined, `net.ipv6.conf.${a}.disable_ipv6`, '1');
  lab.sysctl(undefined, `net.ipv6.conf.${b}.disable_ipv6`, '1');
  lab.ip(undefined, 'link', 'set', a, 'up');
  lab.ip(undefined, 'link', 'set', b, 'up');
  await linkCarries(a, b);

  const all = collector();
  const requestsOnly = collector();
  const sa = PacketSocket.open({ ifname: a, protocol: EtherType.ARP, onFrame: () => undefined });
  const sbAll = PacketSocket.open({ ifname: b, protocol: EtherType.ARP, onFrame: all.onFrame });
  const filter = encode(assemble([ld(2, 20), jeq(ArpOperation.Request, 'accept', 'drop'), label('accept'), ret(0xffff), label('drop'), ret(0)]));
  const sbRequests = PacketSocket.open({ ifname: b, protocol: EtherType.ARP, filter, onFrame: requestsOnly.onFrame });
  try {
    assert.equal(sa.ifindex, Number(execFileSync('cat', [`/sys/class/net/${a}/ifindex`], { encoding: 'utf8' })));
    sa.send(arpFrame(ArpOperation.Request));
    sa.send(arpFrame(ArpOperation.Reply, MAC_B));
    const frame = arpFrame(ArpOperation.Request);
    sa.send(Buffer.concat([Buffer.alloc(5), frame]), 5, frame.length);
    await all.until(3);
    await requestsOnly.until(2);
    assert.deepEqual(all.got.map((g) => g.op), [1, 2, 1]);
    assert.deepEqual(all.got.map((g) => g.pktType), [1, 0, 1], 'broadcast, to us (PACKET_HOST), broadcast');
    assert.deepEqual(requestsOnly.got.map((g) => g.op), [1, 1], 'the BPF filter kept only requests');
    assert.equal(all.got[0]!.length, 60);

    // 300 frames in one call (sendmmsg in chunks).
    const batch = Buffer.alloc(ARP_FRAME_LENGTH * 300);
    for (let i = 0; i < 300; i++) arpFrame(ArpOperation.Request).copy(batch, i * ARP_FRAME_LENGTH);
    assert.equal(sa.sendBatch(batch, ARP_FRAME_LENGTH, 300), 300);
    await all.until(303);
    assert.equal(all.got.length, 303);
    assert.equal(sbAll.stats().drops, 0, 'the 1 MiB receive queue held the burst');
    assert.equal(sa.sendBatch(batch, ARP_FRAME_LENGTH, 0), 0);

    // The filter replaced on the open socket: now only replies pass.
    sbRequests.setFilter(encode(assemble([ld(2, 20), jeq(ArpOperation.Reply, 'accept', 'drop'), label('accept'), ret(0xffff), label('drop'), ret(0)])));
    const kept = requestsOnly.got.length;
    sa.send(arpFrame(ArpOperation.Request));
    sa.send(arpFrame(ArpOperation.Reply, MAC_B));
    await all.until(305);
    await requestsOnly.until(kept + 1);
    assert.deepEqual(requestsOnly.got.slice(kept).map((g) => g.op), [2], 'after setFilter, the reply and not the request');
    assert.throws(() => sbRequests.setFilter(Buffer.alloc(7)), /filter must be a Buffer/);

    sbAll.addMembership(parseMac('33:33:ff:00:00:02')!);
    sbAll.dropMembership(parseMac('33:33:ff:00:00:02')!);
    assert.throws(() => sa.send(frame, 50, 20), /range inside buf/);
  } finally {
    sa.close();
    sbAll.close();
    sbRequests.close();
  }
  sa.close(); // idempotent
  assert.throws(() => sa.send(arpFrame(1)), /packet socket handle is not open/);
});

test('latency tracing: an answered frame gets its kernel receive -> read -> send() times; an unanswered one none', { skip }, async () => {
  const a = lab.name('ta');
  const b = lab.name('tb');
  lab.veth({ name: a, mac: '02:93:00:00:01:1a' }, { name: b, mac: '02:93:00:00:01:1b' });
  lab.sysctl(undefined, `net.ipv6.conf.${a}.disable_ipv6`, '1');
  lab.sysctl(undefined, `net.ipv6.conf.${b}.disable_ipv6`, '1');
  lab.ip(undefined, 'link', 'set', a, 'up');
  lab.ip(undefined, 'link', 'set', b, 'up');
  await linkCarries(a, b);
  await linkCarries(b, a);
  const sa = PacketSocket.open({ ifname: a, protocol: EtherType.ARP, onFrame: () => undefined });
  let requests = 0;
  let others = 0;
  // Answers requests only, as a responder does; replies are read and left unanswered.
  const sb: PacketSocket = PacketSocket.open({
    ifname: b,
    protocol: EtherType.ARP,
    traceLatency: true,
    onFrame(frame, length) {
      const r = parseArpFrame(frame, length);
      if (r.ok && r.value.arp.operation === ArpOperation.Request) {
        requests++;
        sb.send(arpFrame(ArpOperation.Reply, MAC_A));
      } else others++;
    },
  });
  const untraced = PacketSocket.open({ ifname: b, protocol: EtherType.ARP, onFrame: () => undefined });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    const before = Date.now();
    sa.send(arpFrame(ArpOperation.Request));
    sa.send(arpFrame(ArpOperation.Reply, MAC_B));
    for (let i = 0; i < 200 && requests === 0; i++) await sleep(25);
    for (let i = 0; i < 200 && others === 0; i++) await sleep(25);
    assert.deepEqual({ requests, others }, { requests: 1, others: 1 });
    const t = sb.latency();
    assert.equal(t.readUs.length, 1, 'one sample for the answered frame, none for the unanswered one');
    const elapsedUs = (Date.now() - before + 5) * 1000;
    const [read, send, sent] = [t.readUs[0]!, t.sendUs[0]!, t.sentUs[0]!];
    assert.ok(read >= 0 && read <= send && send <= sent && sent <= elapsedUs, `0 <= ${read} <= ${send} <= ${sent} <= ${elapsedUs} µs`);
    assert.deepEqual(sb.latency(), { readUs: [], sendUs: [], sentUs: [] }, 'drained');
    assert.deepEqual(untraced.latency(), { readUs: [], sendUs: [], sentUs: [] }, 'off unless asked');
  } finally {
    sa.close();
    sb.close();
    untraced.close();
  }
});

test('opening on a missing interface, or with a bad filter, is a clear error', { skip }, () => {
  assert.throws(() => PacketSocket.open({ ifname: 'tl2-nonexist', protocol: EtherType.ARP, onFrame: () => undefined }), /no interface named tl2-nonexist/);
  assert.throws(() => PacketSocket.open({ ifname: 'lo', protocol: EtherType.ARP, filter: Buffer.alloc(7), onFrame: () => undefined }), /filter must be a Buffer/);
  assert.throws(() => PacketSocket.open({ ifname: 'x'.repeat(16), protocol: EtherType.ARP, onFrame: () => undefined }), /1 to 15 bytes/);
  // A program the kernel refuses (jump out of range is caught by the assembler; here an invalid opcode).
  const invalid = encode([{ code: 0xffff, jt: 0, jf: 0, k: 0 }]);
  assert.throws(() => PacketSocket.open({ ifname: 'lo', protocol: EtherType.ARP, filter: invalid, onFrame: () => undefined }), /SO_ATTACH_FILTER/);
});

test('without CAP_NET_RAW, opening a packet socket says which capability is missing', { skip }, () => {
  // setpriv (util-linux) drops every capability for the child, like an unprivileged container without NET_RAW.
  let stderr = '';
  try {
    execFileSync(
      'setpriv',
      ['--inh-caps=-all', '--bounding-set=-all', '--', process.execPath, '--import', 'tsx', '--input-type=module', '-e',
        "import { PacketSocket } from './src/net/packet-socket.ts'; PacketSocket.open({ ifname: 'lo', protocol: 0x0806, onFrame() {} });"],
      { cwd: ROOT, stdio: 'pipe' },
    );
  } catch (err) {
    stderr = String((err as { stderr?: Buffer }).stderr);
  }
  assert.match(stderr, /opening a raw packet socket on lo needs CAP_NET_RAW: run as root or grant the NET_RAW capability/);
});
