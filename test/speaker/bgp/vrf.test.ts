// BGPPeer `vrf`: the session's TCP socket and its BFD sockets are bound to the VRF's master device, so they route
// in the VRF and take their source address and next hops from its interfaces. The topology has the VRF case in
// it: one node, two routers (BIRD) with the SAME address 10.91.106.1, one behind the node's eth0 (default VRF),
// one behind eth1. Only a socket bound to eth1's side reaches the second.
// This kernel may have no VRF driver (CONFIG_NET_VRF): the first namespace test then binds to eth1 itself (a
// device stand-in for the VRF master, the same SO_BINDTODEVICE path through the native addon); the second, with
// a real `ip link add vrf-red type vrf`, runs only where the kernel can create one and says why it is skipped.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kernelVrfs, vrfInterfaceTable, VrfError, type Vrf } from '../../../src/net/vrf.js';
import pino from 'pino';
import { EventEmitter } from 'node:events';
import { BfdEngine, type BfdSessionConfig, type BfdStatus } from '../../../src/speaker/bfd/engine.js';
import type { BfdManagerEvents } from '../../../src/speaker/bfd/manager.js';
import { CeaseSubcode } from '../../../src/speaker/bgp/messages.js';
import { Session, type PeerConfig } from '../../../src/speaker/bgp/session.js';
import { TransportError, type ConnectRequest, type Connector } from '../../../src/speaker/bgp/transport.js';
import { startRouter, type Router } from '../../../src/lab/routers/runner.js';
import { BgpSpeaker, type PeerStatus } from '../../../src/speaker/bgp/speaker.js';
import { eventually, NodeDriver } from '../../helpers/bgp-netns.js';
import { isRoot, Netns, run } from '../../helpers/netns.js';

describe('VRF lookup (sysfs)', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'tbg-vrf-'));
    const dev = (name: string, flags: number, master?: string): void => {
      mkdirSync(join(root, name));
      writeFileSync(join(root, name, 'flags'), `0x${flags.toString(16)}\n`);
      if (master) symlinkSync(`../${master}`, join(root, name, 'master'));
    };
    dev('vrf-red', 0x1481); // UP | NOARP | MASTER | LOWER_UP-ish bits, as the vrf driver sets them
    dev('bond0', 0x1403); // a bond is a master, but does ARP
    dev('eth1', 0x1003, 'vrf-red');
    dev('eth2', 0x1003, 'vrf-red');
    dev('eth3', 0x1003, 'bond0');
    dev('eth0', 0x1003);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('finds the master device and its enslaved interfaces', () => {
    assert.deepEqual(kernelVrfs(root)('vrf-red'), { name: 'vrf-red', device: 'vrf-red', interfaces: ['eth1', 'eth2'] });
  });

  it('says why a VRF cannot be used: no such device, not a VRF, not a device name', () => {
    const fails = (name: string, code: string, text: RegExp): void => {
      assert.throws(() => kernelVrfs(root)(name), (err: unknown) => err instanceof VrfError && err.code === code && text.test(err.message));
    };
    fails('blue', 'ENODEV', /VRF "blue" does not exist on this node/);
    fails('bond0', 'ENOTVRF', /bond0 is not a VRF master device/);
    fails('eth0', 'ENOTVRF', /not a VRF master device/);
    fails('../etc', 'EINVAL', /not a network device name/);
    fails('a-very-long-vrf-name', 'EINVAL', /not a network device name/);
  });

  it('the VRF interface table keeps only the VRF\'s interfaces', () => {
    const addr = (address: string): { address: string; netmask: string; family: 'IPv4'; mac: string; internal: boolean; cidr: string } =>
      ({ address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/24` });
    const table = { eth0: [addr('10.0.0.1')], eth1: [addr('10.0.1.1')], lo: [addr('127.0.0.1')] };
    assert.deepEqual(Object.keys(vrfInterfaceTable({ name: 'red', device: 'red', interfaces: ['eth1'] }, table)), ['eth1']);
  });
});

describe('a Session with a vrf (no network: the connector is recorded)', () => {
  const resolver = (name: string): Vrf => {
    if (name !== 'red') throw new VrfError(`VRF ${JSON.stringify(name)} does not exist on this node`, 'ENODEV');
    return { name, device: 'red', interfaces: ['lo'] };
  };
  async function firstAttempt(cfg: Partial<PeerConfig>): Promise<{ requests: ConnectRequest[]; lastError: string | undefined }> {
    const requests: ConnectRequest[] = [];
    const connector: Connector = async (req) => {
      requests.push(req);
      throw new TransportError('recorded', 'ECONNREFUSED');
    };
    const session = new Session({ name: 'p', peerAddress: '10.91.107.1', myASN: 64512, peerASN: 64500, connectTime: 30, ...cfg }, { nodeName: 'n', connector, vrfs: resolver });
    session.start();
    try {
      await eventually(async () => session.stats().lastError, (e) => e !== undefined, 5000, 'the first attempt');
      return { requests, lastError: session.stats().lastError };
    } finally {
      await session.stop(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN);
    }
  }

  it('binds the connection to the VRF device, with the source address checked against the VRF\'s interfaces', async () => {
    const ok = await firstAttempt({ vrf: 'red', sourceAddress: '127.0.0.1', password: 'k' });
    assert.deepEqual(ok.requests, [{ peerAddress: '10.91.107.1', peerPort: 179, sourceAddress: '127.0.0.1', password: 'k', vrf: 'red', device: 'red', ttl: 1 }]);
    const outside = await firstAttempt({ vrf: 'red', sourceAddress: '10.91.107.9' });
    assert.deepEqual(outside.requests, []);
    assert.match(outside.lastError!, /source address 10\.91\.107\.9 is not on an interface of VRF "red" \(lo\)/);
    const missing = await firstAttempt({ vrf: 'blue' });
    assert.deepEqual(missing.requests, []);
    assert.equal(missing.lastError, 'VRF "blue" does not exist on this node');
    const plain = await firstAttempt({});
    assert.deepEqual(plain.requests, [{ peerAddress: '10.91.107.1', peerPort: 179, ttl: 1 }]);
  });

  it('warns vrfUnusable for the VRF lookup\'s and the device binding\'s errors, not for a refused or timed-out connection', async () => {
    // The connector's messages name the VRF whatever failed (as defaultConnector's do): only the code may decide.
    async function warnings(cfg: Partial<PeerConfig>, code: string): Promise<Record<string, unknown>[]> {
      const lines: string[] = [];
      const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
      const connector: Connector = async (req) => {
        throw new TransportError(`connect to ${req.peerAddress}:${req.peerPort} in VRF ${req.vrf}: ${code}`, code);
      };
      const session = new Session({ name: 'p', peerAddress: '10.91.107.1', myASN: 64512, peerASN: 64500, connectTime: 30, ...cfg }, { nodeName: 'n', connector, vrfs: resolver, logger });
      session.start();
      try {
        await eventually(async () => session.stats().lastError, (e) => e !== undefined, 5000, 'the first attempt');
        return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['event'] === 'vrfUnusable');
      } finally {
        await session.stop(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN);
      }
    }
    assert.deepEqual(await warnings({ vrf: 'red' }, 'ECONNREFUSED'), []);
    assert.deepEqual(await warnings({ vrf: 'red' }, 'ETIMEDOUT'), []);
    assert.deepEqual(await warnings({ vrf: 'red' }, 'EHOSTUNREACH'), []);
    const gone = await warnings({ vrf: 'red' }, 'ENODEV');
    assert.equal(gone.length, 1, 'the device went away between the lookup and the binding');
    assert.equal(gone[0]!['code'], 'ENODEV');
    const missing = await warnings({ vrf: 'blue' }, 'ECONNREFUSED');
    assert.equal(missing.length, 1);
    assert.equal(missing[0]!['code'], 'ENODEV');
    assert.match(String(missing[0]!['reason']), /VRF "blue" does not exist/);
    const outside = await warnings({ vrf: 'red', sourceAddress: '10.91.107.9' }, 'ECONNREFUSED');
    assert.equal(outside[0]?.['code'], 'EADDRNOTAVAIL');
  });
});

/** A BFD manager that records what it is asked to run; the test says what state its sessions are in. */
class RecordingBfd extends EventEmitter<BfdManagerEvents> {
  readonly configured: string[][] = [];
  async configure(sessions: readonly BfdSessionConfig[]): Promise<void> {
    this.configured.push(sessions.map((s) => s.key));
  }
  async status(): Promise<BfdStatus[]> {
    return [];
  }
  async close(): Promise<void> {}
}

describe('a BgpSpeaker whose VRF peer loses its VRF while BFD is Up (no network: BFD and the connector are recorded)', () => {
  it('is not held down by a BFD session that waits for the VRF: it dials again, and BFD restarts, once the VRF is back', async () => {
    let vrfExists = true;
    const vrfs = (name: string): Vrf => {
      if (!vrfExists) throw new VrfError(`VRF ${JSON.stringify(name)} does not exist on this node`, 'ENODEV');
      return { name, device: name, interfaces: [] };
    };
    const dialled: ConnectRequest[] = [];
    const connector: Connector = async (req) => {
      dialled.push(req);
      throw new TransportError('refused', 'ECONNREFUSED');
    };
    const bfd = new RecordingBfd();
    const speaker = new BgpSpeaker({ nodeName: 'n', connector, vrfs, bfdManager: () => bfd, vrfRecheckMs: 200 });
    const timers = { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoMode: false, passiveMode: false, minimumTtl: 254 };
    // connectTime 1: a retry every second, so that "no attempt for 3 s" means held down.
    const red: PeerConfig = { name: 'red', peerAddress: '10.91.107.1', myASN: 64512, peerASN: 64500, connectTime: 1, vrf: 'red', bfd: timers };
    const plain: PeerConfig = { name: 'plain', peerAddress: '10.91.107.2', myASN: 64512, peerASN: 64500, connectTime: 1 };
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    try {
      speaker.setPeers([red]);
      await eventually(async () => bfd.configured.at(-1), (k) => k?.includes('red') === true, 10_000, 'BFD for red');
      bfd.emit('state', 'red', 'Up', 0, 'Init');
      // The VRF device is deleted: BFD detects it (Down) and holds the BGP session down.
      vrfExists = false;
      bfd.emit('state', 'red', 'Down', 1, 'Up');
      await sleep(500);
      const heldAt = dialled.length;
      await sleep(3000);
      assert.equal(dialled.length, heldAt, 'held down by BFD Down');
      // A configuration change reconfigures BFD: red's VRF is missing, so its BFD session waits for it.
      speaker.setPeers([red, plain]);
      await eventually(async () => bfd.configured.at(-1), (k) => k !== undefined && !k.includes('red'), 10_000, 'BFD without red');
      // The VRF comes back: the BGP session dials through it, and BFD for red runs again.
      vrfExists = true;
      const before = bfd.configured.length;
      await eventually(async () => dialled.filter((r) => r.device === 'red').length, (n) => n > 0, 30_000, 'red dialling through its VRF');
      await eventually(async () => bfd.configured.slice(before).some((k) => k.includes('red')), (v) => v, 30_000, 'BFD for red again');
    } finally {
      await speaker.close();
    }
  });
});

describe('BFD sessions bound to a device', { skip: isRoot() ? false : 'needs root (SO_BINDTODEVICE)' }, () => {
  it('a session whose device cannot be bound is reported (log, status) and tried again; the others start', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const engine = new BfdEngine(() => undefined, log, undefined, { singleHop: 23784, multiHop: 24784 });
    const timers = { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, passiveMode: false };
    try {
      await engine.configure([
        { key: 'gone', peerAddress: '127.0.0.2', multihop: false, vrf: 'gone', device: 'tbgnodev0', ...timers },
        { key: 'plain', peerAddress: '127.0.0.3', multihop: false, ...timers },
      ]);
      assert.deepEqual(engine.status().map((s) => [s.key, s.state, s.error !== undefined]), [['plain', 'Down', false], ['gone', 'Down', true]]);
      assert.match(engine.status()[1]!.error!, /binding a socket to tbgnodev0: .*(ENODEV|No such device)/);
      const warning = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['event'] === 'bfdSessionFailed');
      assert.equal(warning?.['peer'], 'gone');
      assert.equal(warning?.['vrf'], 'gone');
      assert.equal(warning?.['code'], 'ENODEV');
      assert.equal(warning?.['retryInMs'], 1000);
      assert.match(String(warning?.['err']), /binding a socket to tbgnodev0: .*(ENODEV|No such device)/);
      // Tried again on its own, with back-off; the same reason again is not a new warning.
      await eventually(async () => engine.status().find((s) => s.key === 'gone')?.attempts ?? 0, (n) => n >= 2, 30_000, 'a second attempt');
      assert.equal(lines.filter((l) => l.includes('"bfdSessionFailed"')).length, 1);
    } finally {
      await engine.close();
    }
  });
});

/**
 * A BFD peer in namespace `bp` behind a veth whose host end (the VRF device stand-in) can be deleted and made again.
 * The peer counts the datagrams that reach it; with `speak`, it also sends a BFD Control packet (Down, Your
 * Discriminator 0) every 300 ms, as a peer would to a passive session.
 */
async function devicePeer(net: Netns, port: number, speak: boolean): Promise<{ host: string; link: () => void; received: () => number }> {
  const ns = net.addNamespace('bp');
  const host = net.name('bh');
  const link = (): void => {
    net.veth({ name: host }, { ns, name: 'p0' });
    net.ip(undefined, 'addr', 'add', '10.91.181.1/24', 'dev', host);
    net.ip(undefined, 'link', 'set', host, 'up');
    net.ip(ns, 'addr', 'add', '10.91.181.2/24', 'dev', 'p0');
    net.ip(ns, 'link', 'set', 'p0', 'up');
  };
  link();
  const peer = net.spawn(ns, 'python3', ['-u', '-c', [
    'import select, socket, struct, time', 's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)', `s.bind(('10.91.181.2', ${port}))`,
    // Single-hop BFD is sent with TTL 255 (RFC 5881 §5); the engine's listener drops anything else.
    's.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)',
    // RFC 5880 §4.1: version 1, state Down, Detect Mult 3, length 24, My Discriminator 0x1234, Your Discriminator 0,
    // 300 ms intervals.
    "pkt = struct.pack('!BBBBIIIII', 0x20, 0x40, 3, 24, 0x1234, 0, 300000, 300000, 0)",
    'print("ready", flush=True)', 'due = 0',
    'while True:',
    `    if ${speak ? 'True' : 'False'} and time.time() >= due:`,
    '        due = time.time() + 0.3',
    '        try:',
    `            s.sendto(pkt, ('10.91.181.1', ${port}))`,
    '        except OSError:',
    '            pass',
    '    if select.select([s], [], [], 0.1)[0]:',
    '        s.recvfrom(512)',
    '        print("packet", flush=True)',
  ].join('\n')]);
  let ready = false;
  let received = 0;
  peer.stdout!.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) {
      if (l === 'ready') ready = true;
      if (l === 'packet') received++;
    }
  });
  await eventually(async () => ready, (v) => v, 30_000, 'the peer listening');
  return { host, link, received: () => received };
}

describe('a BFD session whose device is missing at first (its VRF not made yet)', { skip: isRoot() ? false : 'needs root' }, () => {
  it('starts on its own once the device exists, from the back-off retries alone (no device watch, no new configuration)', async () => {
    const net = new Netns('tbg-');
    // The device watch checks only once an hour here: the retries with back-off must do it.
    const engine = new BfdEngine(() => undefined, undefined, undefined, { ports: { singleHop: 23787, multiHop: 24787 }, devicePollMs: 3_600_000 });
    try {
      const peer = await devicePeer(net, 23787, false);
      net.ip(undefined, 'link', 'del', peer.host);
      await engine.configure([{
        key: 'red', peerAddress: '10.91.181.2', multihop: false, vrf: 'red', device: peer.host,
        receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, passiveMode: false,
      }]);
      const failing = engine.status();
      assert.equal(failing.length, 1);
      assert.equal(failing[0]!.state, 'Down');
      assert.match(failing[0]!.error ?? '', /ENODEV|No such device/);
      peer.link();
      await eventually(async () => peer.received(), (n) => n > 0, 60_000, 'BFD packets at the peer once the device exists');
      const started = engine.status();
      assert.equal(started.length, 1);
      assert.equal(started[0]!.error, undefined);
      assert.ok(started[0]!.packetsSent > 0);
    } finally {
      await engine.close();
      await net.cleanup();
    }
  });
});

describe('BFD sockets of a VRF whose device is deleted and made again', { skip: isRoot() ? false : 'needs root' }, () => {
  it('a passive session whose peer went silent is bound to the new device when it appears (nothing to send, nothing heard)', async () => {
    const net = new Netns('tbg-');
    const engine = new BfdEngine(() => undefined, undefined, undefined, { singleHop: 23786, multiHop: 24786 });
    try {
      const peer = await devicePeer(net, 23786, true);
      await engine.configure([{
        key: 'red', peerAddress: '10.91.181.2', multihop: false, vrf: 'red', device: peer.host,
        receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, passiveMode: true,
      }]);
      await eventually(async () => peer.received(), (n) => n > 0, 30_000, 'the passive session answering the peer');
      net.ip(undefined, 'link', 'del', peer.host);
      // Detection time (0.9 s) expires: the session forgets the peer and, passive, stops sending.
      await eventually(async () => engine.status()[0]!.state, (st) => st === 'Down', 30_000, 'the session Down');
      await new Promise((r) => setTimeout(r, 1500));
      const before = peer.received();
      peer.link();
      await eventually(async () => peer.received(), (n) => n > before, 30_000, 'the passive session answering through the re-created device');
    } finally {
      await engine.close();
      await net.cleanup();
    }
  });

  it('are bound to the new device (SO_BINDTODEVICE holds the old index): packets reach the peer again', async () => {
    const net = new Netns('tbg-');
    const engine = new BfdEngine(() => undefined, undefined, undefined, { singleHop: 23785, multiHop: 24785 });
    try {
      const peer = await devicePeer(net, 23785, false);
      await engine.configure([{
        key: 'red', peerAddress: '10.91.181.2', multihop: false, vrf: 'red', device: peer.host,
        receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, passiveMode: false,
      }]);
      await eventually(async () => peer.received(), (n) => n > 0, 30_000, 'BFD packets at the peer');
      net.ip(undefined, 'link', 'del', peer.host);
      // Lines of packets sent before the deletion are all read by now.
      await new Promise((r) => setTimeout(r, 1500));
      const before = peer.received();
      peer.link();
      await eventually(async () => peer.received(), (n) => n > before, 30_000, 'BFD packets at the peer through the re-created device');
    } finally {
      await engine.close();
      await net.cleanup();
    }
  });
});

/** Why this kernel cannot run the real-VRF test, or undefined when it can. */
function vrfUnsupported(): string | undefined {
  if (!isRoot()) return 'needs root';
  const probe = new Netns('tbg-');
  const ns = probe.addNamespace('vq');
  try {
    run('ip', ['-n', ns, 'link', 'add', 'vrf-probe', 'type', 'vrf', 'table', '10'], { allowFail: true });
    const made = run('ip', ['-n', ns, '-d', 'link', 'show', 'vrf-probe'], { allowFail: true });
    return /vrf table 10/.test(made) ? undefined
      : 'this kernel has no VRF driver (CONFIG_NET_VRF unset or the vrf module missing: `ip link add X type vrf` fails); the stand-in test above covers the socket binding';
  } finally {
    // No children to wait for: the namespace and its registry entry go at once.
    void probe.cleanup();
  }
}

const ROUTER_IP = '10.91.106.1';
const ROUTER_IP6 = 'fd00:91:106::1';
const NODE_ETH0 = '10.91.106.11';
const NODE_ETH1 = '10.91.106.12';
const NODE_ETH1_V6 = 'fd00:91:106::12';
const BFD = { receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3, echoMode: false, passiveMode: false, minimumTtl: 254 };

describe('a BGPPeer in a VRF beside one in the default VRF (namespaces, BIRD)', { concurrency: false, skip: isRoot() ? false : 'needs root' }, () => {
  const net = new Netns('tbg-');
  let node: string;
  let nsB: string;
  const routers: Router[] = [];
  const drivers: NodeDriver[] = [];
  let dir: string;
  let routerA: Router;
  let routerB: Router;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tbg-vrf-'));
    run('chmod', ['0755', dir]);
    node = net.addNamespace('vn');
    const a = net.addNamespace('va');
    const b = (nsB = net.addNamespace('vb'));
    net.veth({ ns: node, name: 'eth0' }, { ns: a, name: 'eth0' });
    net.veth({ ns: node, name: 'eth1' }, { ns: b, name: 'eth0' });
    for (const r of [a, b]) {
      net.ip(r, 'addr', 'add', `${ROUTER_IP}/24`, 'dev', 'eth0');
      net.ip(r, 'addr', 'add', `${ROUTER_IP6}/64`, 'dev', 'eth0', 'nodad');
      net.ip(r, 'link', 'set', 'eth0', 'up');
    }
    // eth0 first: the default VRF's route to 10.91.106.0/24 is eth0's, so an unbound socket reaches router A.
    net.ip(node, 'addr', 'add', `${NODE_ETH0}/24`, 'dev', 'eth0');
    net.ip(node, 'addr', 'add', 'fd00:91:106::11/64', 'dev', 'eth0', 'nodad');
    net.ip(node, 'link', 'set', 'eth0', 'up');
    net.ip(node, 'addr', 'add', `${NODE_ETH1}/24`, 'dev', 'eth1');
    net.ip(node, 'addr', 'add', `${NODE_ETH1_V6}/64`, 'dev', 'eth1', 'nodad');
    net.ip(node, 'link', 'set', 'eth1', 'up');
    routerA = await startRouter('bird', spec(NODE_ETH0), { netns: a, dir: join(dir, 'a') });
    routers.push(routerA);
    routerB = await startRouter('bird', spec(NODE_ETH1), { netns: b, dir: join(dir, 'b') });
    routers.push(routerB);
  });
  const spec = (address: string, password?: string): Parameters<typeof startRouter>[1] => ({
    asn: 64500, routerId: ROUTER_IP, neighbors: [{ name: 'node', address, asn: 64512, bfd: true, holdTime: 30, ...(password ? { password } : {}) }],
  });
  after(async () => {
    await Promise.all(drivers.map((d) => d.stop()));
    await Promise.all(routers.map((r) => r.stop()));
    await net.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const routesAt = async (r: Router, family: 'ipv4' | 'ipv6', from: string) => (await r.routes(family, { detail: true })).filter((e) => e.from === from);

  async function provePeering(d: NodeDriver, vrf: string, password?: string): Promise<void> {
    await d.request('peers', { peers: [
      { name: 'plain', peerAddress: ROUTER_IP, myASN: 64512, peerASN: 64500, holdTime: 30, bfd: BFD },
      { name: 'red', peerAddress: ROUTER_IP, myASN: 64512, peerASN: 64500, holdTime: 30, vrf, bfd: BFD, ...(password ? { password } : {}) },
      { name: 'ghost', peerAddress: '10.91.107.1', myASN: 64512, peerASN: 64500, vrf: 'nosuch', bfd: BFD },
    ] });
    await d.request('ads', { peer: 'plain', ads: [{ prefix: '10.91.200.1/32' }] });
    await d.request('ads', { peer: 'red', ads: [{ prefix: '10.91.200.2/32', communities: ['65000:2'] }, { prefix: 'fd00:91:200::2/128' }] });
    await d.waitSession('plain', 'Established', 60_000);
    await d.waitSession('red', 'Established', 60_000);
    assert.equal(await routerA.neighborState(NODE_ETH0), 'Established');
    assert.equal(await routerB.neighborState(NODE_ETH1), 'Established', 'router B sees the node at its VRF-side address');

    // Each router has the routes of its own session only, with next hops from that side's interface.
    const a4 = await eventually(() => routesAt(routerA, 'ipv4', NODE_ETH0), (x) => x.length === 1, 30_000, 'router A: the default-VRF route');
    assert.equal(a4[0]!.prefix, '10.91.200.1/32');
    assert.deepEqual(a4[0]!.nextHops, [NODE_ETH0]);
    const b4 = await eventually(() => routesAt(routerB, 'ipv4', NODE_ETH1), (x) => x.length === 1, 30_000, 'router B: the VRF route');
    assert.equal(b4[0]!.prefix, '10.91.200.2/32');
    assert.deepEqual(b4[0]!.nextHops, [NODE_ETH1]);
    assert.deepEqual(b4[0]!.communities, ['65000:2']);
    const b6 = await eventually(() => routesAt(routerB, 'ipv6', NODE_ETH1), (x) => x.length === 1, 30_000, 'router B: the VRF IPv6 route');
    assert.equal(b6[0]!.prefix, 'fd00:91:200::2/128');
    assert.equal(b6[0]!.nextHops[0], NODE_ETH1_V6, 'IPv6 next hop: the global address of the VRF\'s interface');

    // BFD runs in each VRF towards the same address, each session on its own side.
    await d.waitEvent((e) => e.event === 'bfd' && e.peer === 'plain' && e.state === 'Up', 60_000);
    await d.waitEvent((e) => e.event === 'bfd' && e.peer === 'red' && e.state === 'Up', 60_000);
    await eventually(() => routerB.bfdPeers(), (p) => p.some((x) => x.address === NODE_ETH1 && x.state === 'Up'), 30_000, 'router B: BFD Up');
    await eventually(() => routerA.bfdPeers(), (p) => p.some((x) => x.address === NODE_ETH0 && x.state === 'Up'), 30_000, 'router A: BFD Up');

    // A VRF the node does not have: that session stays down saying why; the others are unaffected.
    const ghost = await eventually(async () => (await d.request<PeerStatus[]>('status')).find((s) => s.name === 'ghost'),
      (s) => s?.stats.lastError !== undefined, 30_000, 'the ghost peer\'s error');
    assert.notEqual(ghost!.stats.state, 'Established');
    assert.match(ghost!.stats.lastError!, /VRF "nosuch" does not exist on this node/);
    await eventually(async () => d.stderr, (t) => /"event":"vrfUnusable"[^\n]*"vrf":"nosuch"|"vrf":"nosuch"[^\n]*"event":"vrfUnusable"/.test(t), 10_000, 'a warning naming the VRF');
    const metrics = await d.request<string>('metrics');
    assert.match(metrics, new RegExp(`metallb_bgp_session_up\\{peer="${ROUTER_IP}:179",vrf="${vrf}"\\} 1`));
    assert.match(metrics, new RegExp(`metallb_bgp_session_up\\{peer="${ROUTER_IP}:179"\\} 1`));
    assert.match(metrics, /metallb_bgp_session_up\{peer="10\.91\.107\.1:179",vrf="nosuch"\} 0/);
    assert.match(metrics, new RegExp(`metallb_bfd_session_up\\{peer="${ROUTER_IP}",vrf="${vrf}"\\} 1`));
    await d.request('ping');
  }

  it('stand-in: the VRF device is eth1 itself (same socket binding, any kernel)', async () => {
    const d = await NodeDriver.start(node, 'node1', { env: { BGP_DRIVER_VRF_STANDINS: 'red=eth1' } });
    drivers.push(d);
    await provePeering(d, 'red');
    await d.stop();
  });

  it('stand-in, with a TCP-MD5 password on the VRF peer (key and device set on one socket)', async () => {
    await routerB.stop();
    routers.splice(routers.indexOf(routerB), 1);
    routerB = await startRouter('bird', spec(NODE_ETH1, 'vrf-secret'), { netns: nsB, dir: join(dir, 'b-md5') });
    routers.push(routerB);
    const d = await NodeDriver.start(node, 'node1', { env: { BGP_DRIVER_VRF_STANDINS: 'red=eth1' } });
    drivers.push(d);
    await provePeering(d, 'red', 'vrf-secret');
    await d.stop();
  });

  it('a real VRF: eth1 enslaved to vrf-red (ip link add vrf-red type vrf table 10)', { skip: vrfUnsupported() }, async () => {
    net.ip(node, 'link', 'add', 'vrf-red', 'type', 'vrf', 'table', '10');
    net.ip(node, 'link', 'set', 'vrf-red', 'up');
    // Enslaving cycles eth1 down and up, which drops its IPv6 addresses unless keep_addr_on_down is set (the
    // kernel's VRF documentation says so); eth1's routes move to table 10.
    net.sysctl(node, 'net.ipv6.conf.all.keep_addr_on_down', '1');
    net.ip(node, 'link', 'set', 'eth1', 'master', 'vrf-red');
    net.ip(node, 'addr', 'replace', `${NODE_ETH1_V6}/64`, 'dev', 'eth1', 'nodad');
    await eventually(async () => run('ip', ['-n', node, '-6', 'route', 'show', 'vrf', 'vrf-red']), (t) => /fd00:91:106::\/64/.test(t), 10_000, 'the VRF\'s IPv6 route');
    const d = await NodeDriver.start(node, 'node1');
    drivers.push(d);
    await provePeering(d, 'vrf-red', 'vrf-secret');
    await d.stop();
  });
});
