// The native addon's own argument checks, called directly (the TypeScript wrappers check most arguments first, so
// nothing else reaches these): every function refuses what it cannot use with a TypeError that names it, and the
// calls on an open handle or fd still work. The handle and fd calls need root (a packet socket on lo).
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { loadNative, nativeAvailable, type NativeBinding } from '../../src/net/native.js';
import { socketFd } from '../../src/net/tcp-md5.js';
import { isRoot } from '../helpers/netns.js';

const skip = nativeAvailable() ? false : 'the native addon is not built';
const skipRoot = skip || (isRoot() ? false : 'needs root (a packet socket)');

type Call = (n: NativeBinding) => unknown;

function refuses(call: Call, message: string, code = 'ERR_INVALID_ARG_TYPE'): void {
  const n = loadNative();
  assert.throws(
    () => call(n),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, code, `${err.message}`);
      assert.ok(err.message.includes(message), `"${err.message}" names "${message}"`);
      return true;
    },
  );
}

const ETH_P_ARP = 0x0806;
const noop = (): undefined => undefined;
const filterOf = (instructions: number): Buffer => {
  // Each instruction "ret #0xffff" (BPF_RET | BPF_K): a valid program of any length.
  const b = Buffer.alloc(instructions * 8);
  for (let i = 0; i < instructions; i++) {
    b.writeUInt16LE(0x06, i * 8);
    b.writeUInt32LE(0xffff, i * 8 + 4);
  }
  return b;
};

test('packetOpen names the argument it cannot use', { skip }, () => {
  const rx = Buffer.alloc(2048);
  refuses((n) => (n.packetOpen as unknown as (...a: unknown[]) => unknown)('lo', ETH_P_ARP), 'packetOpen(ifname, protocol, filter, rx, onFrame, receiveBufferBytes)');
  refuses((n) => n.packetOpen(7 as unknown as string, ETH_P_ARP, null, rx, noop, 0), 'ifname must be a string');
  refuses((n) => n.packetOpen('', ETH_P_ARP, null, rx, noop, 0), 'ifname must be 1 to 15 bytes');
  refuses((n) => n.packetOpen('x'.repeat(16), ETH_P_ARP, null, rx, noop, 0), 'ifname must be 1 to 15 bytes');
  refuses((n) => n.packetOpen('x'.repeat(40), ETH_P_ARP, null, rx, noop, 0), 'ifname must be 1 to 15 bytes');
  refuses((n) => n.packetOpen('lo', 0x10000, null, rx, noop, 0), 'protocol must be an EtherType (0..65535)');
  refuses((n) => n.packetOpen('lo', -1, null, rx, noop, 0), 'protocol must be an EtherType (0..65535)');
  for (const bad of [Buffer.alloc(0), Buffer.alloc(7), filterOf(4097), 'ret' as unknown as Buffer]) {
    refuses((n) => n.packetOpen('lo', ETH_P_ARP, bad, rx, noop, 0), 'filter must be a Buffer of 1 to 4096 8-byte sock_filter instructions');
  }
  refuses((n) => n.packetOpen('lo', ETH_P_ARP, null, Buffer.alloc(63), noop, 0), 'rx must be a Buffer of >= 64 bytes');
  refuses((n) => n.packetOpen('lo', ETH_P_ARP, null, rx, 'f' as unknown as () => void, 0), 'onFrame must be a function');
  refuses((n) => n.packetOpen('lo', ETH_P_ARP, null, rx, noop, -1), 'receiveBufferBytes must be >= 0');
  refuses((n) => n.packetOpen('tl2-nonexist', ETH_P_ARP, null, rx, noop, 0), 'if_nametoindex', 'ENODEV');
});

test('a call on a packet socket handle that is not open says so', { skip }, () => {
  const notOpen = 'packet socket handle is not open';
  for (const id of [-1, 1_000_000, 'x' as unknown as number]) {
    refuses((n) => n.packetSend(id, Buffer.alloc(60), 0, 60), notOpen, 'ERR_INVALID_HANDLE');
    refuses((n) => n.packetSendBatch(id, Buffer.alloc(60), 60, 1), notOpen, 'ERR_INVALID_HANDLE');
    refuses((n) => n.packetMembership(id, true, Buffer.alloc(6)), notOpen, 'ERR_INVALID_HANDLE');
    refuses((n) => n.packetStats(id), notOpen, 'ERR_INVALID_HANDLE');
    refuses((n) => n.packetRef(id, true), notOpen, 'ERR_INVALID_HANDLE');
    refuses((n) => n.packetTimestamps?.(id, null), notOpen, 'ERR_INVALID_HANDLE');
    refuses((n) => n.packetSetFilter?.(id, filterOf(1)), notOpen, 'ERR_INVALID_HANDLE');
  }
  refuses((n) => n.packetClose('x' as unknown as number), 'packetClose(id)');
  const n = loadNative();
  n.packetClose(-1); // not open: nothing to do
  n.packetClose(1_000_000);
  refuses((b) => b.tcpMd5Cancel('x' as unknown as number), 'tcpMd5Cancel(id)');
  n.tcpMd5Cancel(-1);
  n.tcpMd5Cancel(1_000_000);
});

test('the calls on an fd and the TCP-MD5 connect name the argument they cannot use', { skip }, () => {
  const peer4 = Buffer.from([127, 0, 0, 1]);
  const key = Buffer.from('secret');
  const setKey = 'tcpMd5SetKey(fd, family, peer: Buffer, prefixLength, key: Buffer)';
  refuses((n) => (n.tcpMd5SetKey as unknown as (...a: unknown[]) => unknown)(0, 4, peer4, -1), setKey);
  refuses((n) => n.tcpMd5SetKey(0, 4, 'x' as unknown as Buffer, -1, key), setKey);
  refuses((n) => n.tcpMd5SetKey(0, 4, peer4, 33, key), 'prefixLength is longer than the address');
  refuses((n) => n.tcpMd5SetKey(-1, 4, peer4, -1, key), 'setsockopt(TCP_MD5SIG)', 'EBADF');

  refuses((n) => (n.setHopLimit as unknown as (...a: unknown[]) => unknown)(0), 'setHopLimit(fd, hops)');
  refuses((n) => n.setHopLimit?.(0, 0), 'hops must be 1..255');
  refuses((n) => n.setHopLimit?.(0, 256), 'hops must be 1..255');
  refuses((n) => n.setHopLimit?.(-1, 64), 'setsockopt(IP_TTL/IPV6_UNICAST_HOPS)', 'EBADF');

  const attach = 'attachFilter(fd, filter: Buffer of 1 to 4096 8-byte sock_filter instructions, drain?: boolean)';
  refuses((n) => (n.attachFilter as unknown as (...a: unknown[]) => unknown)(0), attach);
  refuses((n) => (n.attachFilter as unknown as (...a: unknown[]) => unknown)(0, filterOf(1), 'yes'), attach);
  for (const bad of [Buffer.alloc(0), Buffer.alloc(9), filterOf(4097)]) refuses((n) => n.attachFilter?.(0, bad), attach);
  refuses((n) => n.attachFilter?.(-1, filterOf(1)), 'setsockopt(SO_ATTACH_FILTER)', 'EBADF');

  const bind = 'bindToDevice(fd, ifname: 1 to 15 characters)';
  refuses((n) => (n.bindToDevice as unknown as (...a: unknown[]) => unknown)(0), bind);
  for (const bad of ['', 'x'.repeat(16), 7 as unknown as string]) refuses((n) => n.bindToDevice?.(0, bad), bind);
  refuses((n) => n.bindToDevice?.(-1, 'lo'), 'setsockopt(SO_BINDTODEVICE)', 'EBADF');

  const connect = (over: Partial<Record<number, unknown>>) => (n: NativeBinding) => {
    const args: unknown[] = [4, peer4, 179, key, null, 0, 0, noop, null, null];
    for (const [i, v] of Object.entries(over)) args[Number(i)] = v;
    return (n.tcpMd5Connect as unknown as (...a: unknown[]) => unknown)(...args);
  };
  const usage = 'tcpMd5Connect(family, peer, port, key, local, localPort, scopeId, callback)';
  refuses(connect({ 7: 'f' }), usage);
  refuses(connect({ 1: 'x' }), usage);
  refuses(connect({ 4: 'x' }), usage);
  refuses(connect({ 2: 0 }), 'ports must be in 1..65535 (localPort 0..65535)');
  refuses(connect({ 5: 65536 }), 'ports must be in 1..65535 (localPort 0..65535)');
  refuses(connect({ 3: Buffer.alloc(81) }), 'key must be at most 80 bytes');
  for (const bad of ['', 'x'.repeat(16), 7]) refuses(connect({ 8: bad }), 'device must be an interface name (1 to 15 characters)');
  for (const bad of [0, 256, 'x']) refuses(connect({ 9: bad }), 'ttl must be 1..255');
  refuses(connect({ 1: Buffer.alloc(16) }), 'peer must be 4 bytes (family 4) or 16 bytes (family 6)');
  refuses(connect({ 4: Buffer.alloc(16) }), 'local address must be of the peer\'s family');
});

test('bpf names the argument it cannot use', { skip }, () => {
  const attr = Buffer.alloc(16);
  const bpf = (...a: unknown[]) => (n: NativeBinding) => (n.bpf as unknown as (...x: unknown[]) => unknown)(...a);
  refuses(bpf(0), 'bpf(cmd: number, attr: Buffer, pointers?: [offset, Buffer | null][])');
  refuses(bpf(0, Buffer.alloc(0)), 'bpf(cmd: number, attr: Buffer, pointers?: [offset, Buffer | null][])');
  refuses(bpf(0, attr, 5), 'bpf: pointers must be an array of [offset, Buffer | null]');
  for (const off of [4, -8, 16]) refuses(bpf(0, attr, [[off, null]]), 'bpf: a pointer offset must be 8-aligned and inside attr');
  refuses(bpf(0, attr, [[8, 'x']]), 'bpf: a pointer must be a Buffer or null');
});

test('the calls on an open packet socket check their arguments and still work', { skip: skipRoot }, async () => {
  const n = loadNative();
  const { id, ifindex } = n.packetOpen('lo', ETH_P_ARP, filterOf(1), Buffer.alloc(2048), noop, 1 << 16);
  const udp = createSocket('udp4');
  try {
    assert.ok(ifindex > 0);
    refuses((b) => b.packetSend(id, Buffer.alloc(60), 50, 20), 'packetSend(id, buf, offset, length) with the range inside buf');
    refuses((b) => b.packetSend(id, Buffer.alloc(60), 0, 0), 'packetSend(id, buf, offset, length) with the range inside buf');
    refuses((b) => b.packetSendBatch(id, Buffer.alloc(60), 60, 2), 'packetSendBatch(id, buf, stride, count) with stride*count <= buf.length');
    assert.equal(n.packetSendBatch(id, Buffer.alloc(60), 60, 0), 0);
    refuses((b) => b.packetMembership(id, true, Buffer.alloc(5)), 'packetMembership(id, add: boolean, mac: 6-byte Buffer)');
    refuses((b) => b.packetMembership(id, 1 as unknown as boolean, Buffer.alloc(6)), 'packetMembership(id, add: boolean, mac: 6-byte Buffer)');
    for (const bad of [Buffer.alloc(7), filterOf(4097)]) {
      refuses((b) => b.packetSetFilter?.(id, bad), 'filter must be a Buffer of 1 to 4096 8-byte sock_filter instructions');
    }
    n.packetSetFilter?.(id, filterOf(2));
    refuses((b) => b.packetTimestamps?.(id, new Float64Array(2)), 'packetTimestamps(id, timing: Float64Array of >= 3 | null)');
    n.packetTimestamps?.(id, new Float64Array(3));
    n.packetTimestamps?.(id, null);
    refuses((b) => b.packetRef(id, 1 as unknown as boolean), 'packetRef(id, ref: boolean)');
    n.packetRef(id, false);
    n.packetRef(id, true);
    const stats = n.packetStats(id);
    assert.equal(typeof stats.packets, 'number');
    assert.equal(typeof stats.drops, 'number');

    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    const fd = socketFd(udp);
    assert.ok(fd !== undefined && fd >= 0, 'the bound UDP socket has an fd');
    n.attachFilter?.(fd, filterOf(1));
    n.setHopLimit?.(fd, 64);
    n.bindToDevice?.(fd, 'lo');
  } finally {
    n.packetClose(id);
    udp.close();
  }
  n.packetClose(id); // idempotent
  refuses((b) => b.packetStats(id), 'packet socket handle is not open', 'ERR_INVALID_HANDLE');
});

test('signalWatch and signalUnwatch refuse what they cannot use; a watch is closed again', { skip }, () => {
  refuses((n) => n.signalWatch!(0, noop), 'signalWatch(signum: 1..64, callback: function)');
  refuses((n) => n.signalWatch!(65, noop), 'signalWatch(signum: 1..64, callback: function)');
  refuses((n) => n.signalWatch!(15, 'x' as unknown as () => void), 'signalWatch(signum: 1..64, callback: function)');
  refuses((n) => n.signalUnwatch!('x' as unknown as number), 'signalUnwatch(id)');
  const n = loadNative();
  // SIGWINCH: harmless if it came; the watch neither keeps the loop alive nor outlives signalUnwatch (twice is fine).
  const id = n.signalWatch!(28, noop);
  assert.equal(typeof id, 'number');
  n.signalUnwatch!(id);
  n.signalUnwatch!(id);
});

test('exitProcess refuses what is not an exit status; from a worker thread it ends the whole process', { skip }, () => {
  refuses((n) => n.exitProcess!('x' as unknown as number), 'exitProcess(status: 0..255)');
  refuses((n) => n.exitProcess!(-1), 'exitProcess(status: 0..255)');
  refuses((n) => n.exitProcess!(256), 'exitProcess(status: 0..255)');
  // The main thread would run for ever (an interval); a worker's process.exit would end only the worker.
  const native = new URL('../../src/net/native.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const worker = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(native)}); }).then((m) => m.loadNative().exitProcess(7))`;
  const main = `import { Worker } from 'node:worker_threads'; setInterval(() => {}, 1000); new Worker(${JSON.stringify(worker)}, { eval: true });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', main], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, String(r.error));
  assert.deepEqual([r.status, r.signal], [7, null], r.stderr);
});
