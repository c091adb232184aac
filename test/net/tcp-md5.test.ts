// TCP-MD5 (RFC 2385) between two Node processes in two network namespaces: the right password connects and every
// segment carries the MD5 option (tcpdump), a wrong or missing one does not connect, IPv4 and IPv6, a dual-stack
// listener, prefixes, timeouts, aborts and bad arguments.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectWithMd5, setMd5Key } from '../../src/net/tcp-md5.js';
import { isRoot, JsonLines, Netns } from '../helpers/netns.js';

const HELPER = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'md5-peer.ts');
const skip = isRoot() ? false : 'needs root (network namespaces)';
const lab = new Netns('tl2-m');
let client: JsonLines;
let server: JsonLines;
let serverNs = '';
let clientNs = '';
const SERVER4 = '10.93.4.2';
const CLIENT4 = '10.93.4.1';
const SERVER6 = 'fd00:93:4::2';
const CLIENT6 = 'fd00:93:4::1';

type Line = Record<string, unknown>;
const peer = (ns: string) => new JsonLines<Line>(lab.spawn(ns, process.execPath, ['--import', 'tsx', HELPER]));

before(async () => {
  if (skip) return;
  clientNs = lab.addNamespace('c');
  serverNs = lab.addNamespace('s');
  const ca = lab.name('ca');
  const sb = lab.name('sb');
  lab.veth({ ns: clientNs, name: ca }, { ns: serverNs, name: sb });
  lab.ip(clientNs, 'addr', 'add', `${CLIENT4}/24`, 'dev', ca);
  lab.ip(serverNs, 'addr', 'add', `${SERVER4}/24`, 'dev', sb);
  lab.ip(clientNs, 'addr', 'add', `${CLIENT6}/64`, 'dev', ca, 'nodad');
  lab.ip(serverNs, 'addr', 'add', `${SERVER6}/64`, 'dev', sb, 'nodad');
  lab.ip(clientNs, 'link', 'set', ca, 'up');
  lab.ip(serverNs, 'link', 'set', sb, 'up');
  server = peer(serverNs);
  client = peer(clientNs);
  // One dual-stack listener on :: (v4 clients arrive v4-mapped), keyed for the client's two addresses.
  server.send({ listen: { host: '::', port: 1179 } });
  await server.next((l) => l['event'] === 'listening');
  server.send({ key: { peer: CLIENT4, password: 'metallb-s3cret' } });
  await server.next((l) => l['event'] === 'keyed');
  server.send({ key: { peer: CLIENT6, password: 'metallb-s3cret' } });
  await server.next((l) => l['event'] === 'keyed');
});
after(() => lab.cleanup());

const connect = async (host: string, password: string, timeoutMs = 1500, port = 1179) => {
  client.send({ connect: { host, port, password, timeoutMs } });
  return client.next((l) => l['event'] === 'connected' || l['event'] === 'error');
};

test('the right password connects over IPv4, and tcpdump sees the MD5 option on the SYN and SYN-ACK', { skip }, async () => {
  const dump = lab.spawn(serverNs, 'tcpdump', ['-i', lab.name('sb'), '-n', '-v', '-l', '-c', '2', 'tcp port 1179 and tcp[tcpflags] & tcp-syn != 0']);
  let text = '';
  dump.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  dump.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  await new Promise((r) => setTimeout(r, 1000)); // tcpdump is listening ("listening on ..." goes to stderr)
  const r = await connect(SERVER4, 'metallb-s3cret');
  assert.equal(r['event'], 'connected', JSON.stringify(r));
  assert.equal(r['reply'], 'echo:ping');
  assert.equal(r['remote'], SERVER4);
  assert.equal(r['local'], CLIENT4);
  await Promise.race([once(dump, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
  const syns = text.split('\n').filter((l) => /Flags \[S\.?\]/.test(l));
  assert.equal(syns.length, 2, text);
  for (const l of syns) assert.match(l, /options \[[^\]]*md5/, `MD5 option in: ${l}`);
  assert.equal((await server.next((l) => l['event'] === 'accepted'))['remote'], `::ffff:${CLIENT4}`);
});

test('the right password connects over IPv6', { skip }, async () => {
  const r = await connect(SERVER6, 'metallb-s3cret');
  assert.equal(r['event'], 'connected', JSON.stringify(r));
  assert.equal(r['remote'], SERVER6);
  assert.equal(r['reply'], 'echo:ping');
});

test('a wrong password never connects: the signed SYN is dropped and the attempt times out', { skip }, async () => {
  const t0 = Date.now();
  const r = await connect(SERVER4, 'wrong', 800);
  assert.equal(r['event'], 'error');
  assert.equal(r['code'], 'ETIMEDOUT');
  assert.match(String(r['message']), /connecting to 10\.93\.4\.2:1179: timed out after 800 ms/);
  assert.ok(Date.now() - t0 >= 700);
  const r6 = await connect(SERVER6, 'wrong', 500);
  assert.equal(r6['code'], 'ETIMEDOUT');
  assert.match(String(r6['message']), /\[fd00:93:4::2\]:1179/);
});

test('a peer without a key refuses signed segments, and a keyed listener refuses unsigned ones', { skip }, async () => {
  // A second listener with no key at all.
  server.send({ listen: { host: SERVER4, port: 1180 } });
  await server.next((l) => l['event'] === 'listening');
  const r = await connect(SERVER4, 'metallb-s3cret', 800, 1180);
  assert.equal(r['code'], 'ETIMEDOUT');
  // Plain TCP (Node's own connect) to the keyed listener.
  const plain = lab.spawn(clientNs, process.execPath, [
    '-e',
    `const s = require('net').connect({ host: '${SERVER4}', port: 1179 }); s.setTimeout(800, () => { console.log('timeout'); process.exit(0); }); s.on('connect', () => { console.log('connected'); process.exit(0); });`,
  ]);
  let out = '';
  plain.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await once(plain, 'exit');
  assert.equal(out.trim(), 'timeout');
});

test('a key for a prefix admits any client in it', { skip }, async () => {
  server.send({ listen: { host: SERVER4, port: 1181 } });
  await server.next((l) => l['event'] === 'listening');
  server.send({ key: { peer: '10.93.4.0', password: 'prefix-key', prefixLength: 24 } });
  await server.next((l) => l['event'] === 'keyed');
  const r = await connect(SERVER4, 'prefix-key', 1500, 1181);
  assert.equal(r['event'], 'connected', JSON.stringify(r));
});

test('an unreachable network fails at once', { skip }, async () => {
  // The client namespace has no default route.
  const t0 = Date.now();
  const r = await connect('10.93.250.1', 'x', 5000);
  assert.equal(r['code'], 'ENETUNREACH', JSON.stringify(r));
  assert.match(String(r['message']), /connecting to 10\.93\.250\.1:1179 with TCP-MD5: connect: Network is unreachable/);
  assert.ok(Date.now() - t0 < 2000);
});

test('abort, and bad passwords, ports and addresses', { skip: isRoot() ? false : 'needs the addon' }, async () => {
  // A closed port on loopback answers with an unsigned RST, which a keyed socket ignores: the attempt hangs.
  const ac = new AbortController();
  const pending = connectWithMd5({ host: '127.0.0.1', port: 9, password: 'x', timeoutMs: 10_000, signal: ac.signal });
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(pending, (err: Error & { code?: string }) => err.code === 'ABORT_ERR' && /127\.0\.0\.1:9: aborted/.test(err.message));
  await assert.rejects(connectWithMd5({ host: '127.0.0.1', port: 9, password: 'x', timeoutMs: 200 }), /timed out after 200 ms/);
  await assert.rejects(connectWithMd5({ host: '10.93.4.2', port: 179, password: '' }), /1 to 80 bytes, this one is 0/);
  await assert.rejects(connectWithMd5({ host: '10.93.4.2', port: 179, password: 'x'.repeat(81) }), /1 to 80 bytes, this one is 81/);
  await assert.rejects(connectWithMd5({ host: '10.93.4.2', port: 0, password: 'x' }), /port must be 1\.\.65535/);
  await assert.rejects(connectWithMd5({ host: '10.93.4.2', port: 179, password: 'x', localAddress: 'fd00::1' }), /not of the family/);
  await assert.rejects(connectWithMd5({ host: 'no-such-host.invalid', port: 179, password: 'x' }), /cannot resolve no-such-host\.invalid/);
  assert.throws(() => setMd5Key(-1, '10.93.4.1', 'x'), /needs a listening server or an open socket/);
  assert.throws(() => setMd5Key(0, 'not-an-ip', 'x'), /peer not-an-ip is not an IP address/);
});
