// The per-Service pipeline: MetalLB's withdraw reasons in order, per-protocol decisions, metrics and events,
// config rejection; and the layer 2 handler with a recording announcer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnnouncePipeline, type AnnouncedGauge } from '../../src/speaker/pipeline.js';
import type { ProtocolHandler, ServiceAnnouncement } from '../../src/speaker/protocol.js';
import { Layer2Handler, type Announcer } from '../../src/speaker/l2/layer2.js';
import type { Config } from '../../src/config/index.js';
import type { KubeObject } from '../../src/k8s/types.js';
import { createLogger } from '../../src/log.js';
import { config, l2, lbService, mkNode, nodeMap, pool, ready } from './helpers.js';

const log = createLogger('test', 'none');
const NODES = ['node1', 'node2', 'node3'].map((n) => mkNode(n));

class Gauge implements AnnouncedGauge {
  readonly values = new Map<string, number>();
  private k(l: { service: string; protocol: string; node: string; ip: string }): string {
    return `${l.service}|${l.protocol}|${l.node}|${l.ip}`;
  }
  set(l: { service: string; protocol: string; node: string; ip: string }, v: number): void {
    this.values.set(this.k(l), v);
  }
  remove(l: { service: string; protocol: string; node: string; ip: string }): void {
    this.values.delete(this.k(l));
  }
}

interface Recorded {
  reason: string;
  message: string;
  type: string;
  name: string | undefined;
}
const recorder = (): { events: Recorded[]; record(o: KubeObject, type: string, reason: string, message: string): void } => {
  const events: Recorded[] = [];
  return { events, record: (o, type, reason, message) => void events.push({ type, reason, message, name: o.metadata?.name }) };
};

/** A protocol that announces what `decide` says and records calls. */
class FakeHandler implements ProtocolHandler {
  calls: string[] = [];
  decide: (a: ServiceAnnouncement) => string = () => '';
  constructor(readonly protocol: 'layer2' | 'bgp') {}
  get takesOverEarly(): boolean {
    return this.protocol === 'layer2';
  }
  setConfig(): void {
    this.calls.push('setConfig');
  }
  shouldAnnounce(a: ServiceAnnouncement): { announce: true } | { announce: false; reason: string } {
    const r = this.decide(a);
    return r ? { announce: false, reason: r } : { announce: true };
  }
  setBalancer(a: ServiceAnnouncement): { announced: readonly string[] } {
    this.calls.push(`set ${a.key} ${a.ips.join(',')} pool=${a.pool.name}`);
    return { announced: a.ips };
  }
  deleteBalancer(key: string, reason: string): void {
    this.calls.push(`delete ${key} ${reason}`);
  }
  setNode(): void {}
}

const cfg = config([pool('p', { addresses: ['10.97.0.0/24', 'fd00:97::/64'] }), pool('q', { addresses: ['10.97.1.0/24'] }), l2('all')], NODES);

function setup(opts: { lbClass?: string } = {}): { p: AnnouncePipeline; bgp: FakeHandler; l2: FakeHandler; gauge: Gauge; ev: ReturnType<typeof recorder> } {
  const bgp = new FakeHandler('bgp');
  const l2h = new FakeHandler('layer2');
  const gauge = new Gauge();
  const ev = recorder();
  const p = new AnnouncePipeline({ myNode: 'node1', handlers: [bgp, l2h], loadBalancerClass: opts.lbClass ?? '', events: ev, announced: gauge, log });
  return { p, bgp, l2: l2h, gauge, ev };
}

const inputs = (svc: ReturnType<typeof lbService> | undefined) => ({ service: svc, endpoints: [ready('node1')], nodes: nodeMap(NODES) });

test('pipeline: no config yet, nothing happens; then announce on every protocol, metric per IP, one nodeAssigned per protocol', async () => {
  const { p, bgp, l2: l2h, gauge, ev } = setup();
  const svc = lbService('web', ['10.97.0.5', 'fd00:97::5']);
  await p.reconcile('default/web', inputs(svc));
  assert.deepEqual(bgp.calls, []);
  p.setConfig(cfg);
  assert.deepEqual(bgp.calls, ['setConfig']);
  await p.reconcile('default/web', inputs(svc));
  await p.reconcile('default/web', inputs(svc));
  assert.deepEqual(l2h.calls, ['setConfig', 'set default/web 10.97.0.5,fd00:97::5 pool=p', 'set default/web 10.97.0.5,fd00:97::5 pool=p']);
  assert.deepEqual([...gauge.values.keys()].sort(), [
    'default/web|bgp|node1|10.97.0.5', 'default/web|bgp|node1|fd00:97::5',
    'default/web|layer2|node1|10.97.0.5', 'default/web|layer2|node1|fd00:97::5',
  ]);
  assert.deepEqual(ev.events.map((e) => `${e.type} ${e.reason} ${e.message}`), [
    'Normal nodeAssigned announcing from node "node1" with protocol "bgp"',
    'Normal nodeAssigned announcing from node "node1" with protocol "layer2"',
  ]);
  assert.deepEqual(p.announcedKeys(), ['default/web']);
});

test('pipeline: withdraw reasons, in MetalLB\'s order', async () => {
  const cases: [string, ReturnType<typeof lbService> | undefined][] = [
    ['serviceDeleted', undefined],
    ['notLoadBalancer', lbService('web', ['10.97.0.5'], { type: 'ClusterIP' })],
    ['loadBalancerClass', lbService('web', ['10.97.0.5'], { lbClass: 'other' })],
    ['noIPAllocated', lbService('web', [])],
    ['invalidIP', lbService('web', ['10.97.0.300'])],
    ['ipNotAllowed', lbService('web', ['192.0.2.1'])],
  ];
  for (const [reason, svc] of cases) {
    const { p, l2: l2h, bgp, gauge } = setup();
    p.setConfig(cfg);
    await p.reconcile('default/web', inputs(lbService('web', ['10.97.0.5'])));
    await p.reconcile('default/web', inputs(svc));
    assert.equal(l2h.calls.at(-1), `delete default/web ${reason}`, reason);
    assert.equal(bgp.calls.at(-1), `delete default/web ${reason}`, reason);
    assert.equal(gauge.values.size, 0, reason);
    assert.deepEqual(p.announcedKeys(), []);
    // Withdrawing what is not announced does nothing.
    const before = l2h.calls.length;
    await p.reconcile('default/web', inputs(svc));
    assert.equal(l2h.calls.length, before);
  }
});

test('pipeline: an address change withdraws (loadBalancerIPChanged) then announces the new one', async () => {
  const { p, l2: l2h, gauge, ev } = setup();
  p.setConfig(cfg);
  await p.reconcile('default/web', inputs(lbService('web', ['10.97.0.5'])));
  await p.reconcile('default/web', inputs(lbService('web', ['10.97.1.7'])));
  assert.deepEqual(l2h.calls.slice(-2), ['delete default/web loadBalancerIPChanged', 'set default/web 10.97.1.7 pool=q']);
  assert.deepEqual([...gauge.values.keys()].filter((k) => k.includes('layer2')), ['default/web|layer2|node1|10.97.1.7']);
  assert.equal(ev.events.filter((e) => e.reason === 'nodeAssigned').length, 4);
});

test('pipeline: each protocol decides alone; a refusal withdraws only that protocol', async () => {
  const { p, l2: l2h, bgp, gauge } = setup();
  p.setConfig(cfg);
  await p.reconcile('default/web', inputs(lbService('web', ['10.97.0.5'])));
  l2h.decide = () => 'notOwner';
  await p.reconcile('default/web', inputs(lbService('web', ['10.97.0.5'])));
  assert.equal(l2h.calls.at(-1), 'delete default/web notOwner');
  assert.match(bgp.calls.at(-1) ?? '', /^set /);
  assert.deepEqual([...gauge.values.keys()], ['default/web|bgp|node1|10.97.0.5']);
  assert.deepEqual(p.announcedBy('layer2', 'default/web'), []);
  assert.deepEqual(p.announcedBy('bgp', 'default/web'), ['10.97.0.5']);
  assert.deepEqual(p.announcedKeys(), ['default/web']);
});

test('pipeline: --lb-class handles only that class', async () => {
  const { p, l2: l2h } = setup({ lbClass: 'metallb' });
  p.setConfig(cfg);
  await p.reconcile('default/a', inputs(lbService('a', ['10.97.0.5'])));
  await p.reconcile('default/b', inputs(lbService('b', ['10.97.0.6'], { lbClass: 'metallb' })));
  assert.deepEqual(l2h.calls.filter((c) => c.startsWith('set ')), ['set default/b 10.97.0.6 pool=p']);
});

test('pipeline: a config orphaning an announced address is refused; one that keeps it is accepted', async () => {
  const { p } = setup();
  p.setConfig(cfg);
  await p.reconcile('default/web', inputs(lbService('web', ['10.97.1.7'])));
  const without = config([pool('p', { addresses: ['10.97.0.0/24'] }), l2('all')], NODES);
  assert.match(p.checkConfig(without) ?? '', /service default\/web announces 10\.97\.1\.7, which would belong to no IPAddressPool/);
  const renamed = config([pool('renamed', { addresses: ['10.97.1.0/25'] }), l2('all')], NODES);
  assert.equal(p.checkConfig(renamed), undefined);
});

class RecordingAnnouncer implements Announcer {
  calls: string[] = [];
  present = new Set(['eth0', 'eth1']);
  setBalancer(name: string, ip: string, interfaces: readonly string[] | 'all'): void {
    this.calls.push(`set ${name} ${ip} ${interfaces === 'all' ? 'all' : interfaces.join('+')}`);
  }
  deleteBalancer(name: string): void {
    this.calls.push(`delete ${name}`);
  }
  interfacesFor(_ip: string, interfaces: readonly string[] | 'all'): string[] {
    return interfaces === 'all' ? [...this.present] : interfaces.filter((i) => this.present.has(i));
  }
}

function l2Setup(c: Config, myNode: string): { p: AnnouncePipeline; a: RecordingAnnouncer; h: Layer2Handler; ev: ReturnType<typeof recorder>; changes: string[] } {
  const a = new RecordingAnnouncer();
  const ev = recorder();
  const changes: string[] = [];
  const h = new Layer2Handler({ myNode, announcer: a, speakers: () => undefined, ignoreExcludeLB: false, events: ev, log, onStatusChange: (k) => changes.push(k) });
  const p = new AnnouncePipeline({ myNode, handlers: [h], loadBalancerClass: '', events: ev, announced: new Gauge(), log });
  p.setConfig(c);
  return { p, a, h, ev, changes };
}

test('layer2 handler: only the elected node drives the announcer; status follows', async () => {
  // Hash order for 10.97.0.1 among node1..3: node3, node1, node2.
  const results: Record<string, string[]> = {};
  for (const n of ['node1', 'node2', 'node3']) {
    const { p, a, h } = l2Setup(cfg, n);
    await p.reconcile('default/web', { service: lbService('web', ['10.97.0.1']), endpoints: [ready('node1')], nodes: nodeMap(NODES) });
    results[n] = a.calls;
    if (n === 'node3') assert.deepEqual(h.statusFor('default/web'), { interfaces: 'all', ips: ['10.97.0.1'] });
    else assert.equal(h.statusFor('default/web'), undefined);
  }
  assert.deepEqual(results, { node1: [], node2: [], node3: ['set default/web 10.97.0.1 all'] });
  // The winner loses its endpoint: withdraws.
  const { p, a, h, changes } = l2Setup(cfg, 'node3');
  await p.reconcile('default/web', { service: lbService('web', ['10.97.0.1']), endpoints: [ready('node1')], nodes: nodeMap(NODES) });
  await p.reconcile('default/web', { service: lbService('web', ['10.97.0.1']), endpoints: [], nodes: nodeMap(NODES) });
  assert.deepEqual(a.calls, ['set default/web 10.97.0.1 all', 'delete default/web']);
  assert.equal(h.statusFor('default/web'), undefined);
  assert.deepEqual(changes, ['default/web', 'default/web']);
});

test('layer2 handler: interfaces missing on the winner => announceFailed, nothing announced, retried later', async () => {
  const c = config([pool('p', { addresses: ['10.97.0.0/24'] }), l2('ifs', { interfaces: ['bond7'] })], NODES);
  const { p, a, ev } = l2Setup(c, 'node3');
  const r = await p.reconcile('default/web', { service: lbService('web', ['10.97.0.1']), endpoints: [ready()], nodes: nodeMap(NODES) });
  assert.deepEqual(a.calls, []);
  assert.deepEqual(r, { retryAfterMs: 10_000 });
  assert.deepEqual(ev.events.map((e) => `${e.type} ${e.reason} ${e.message}`), [
    'Warning announceFailed the interfaces specified by LB IP "10.97.0.1" doesn\'t exist in assigned node "node3" with protocol "layer2"',
  ]);
  // The interface appears: announced on it.
  a.present.add('bond7');
  await p.reconcile('default/web', { service: lbService('web', ['10.97.0.1']), endpoints: [ready()], nodes: nodeMap(NODES) });
  assert.deepEqual(a.calls, ['set default/web 10.97.0.1 bond7']);
  assert.equal(ev.events.filter((e) => e.reason === 'nodeAssigned').length, 1);
});

test('takeover pass: layer 2 Services newly ours are announced at once, in one pass; announced, withdrawn or invalid ones are left to the reconciles', async () => {
  const { p, bgp, l2: l2h, gauge, ev } = setup();
  const svcs = new Map([
    ['default/a', lbService('a', ['10.97.0.1'])],
    ['default/b', lbService('b', ['10.97.0.2'])],
    ['default/c', lbService('c', ['10.97.0.3'])],
    ['default/none', lbService('none', [])],
    ['default/outside', lbService('outside', ['10.99.0.9'])],
  ]);
  const inp = (k: string) => inputs(svcs.get(k));
  assert.deepEqual(p.takeOver(svcs.keys(), inp), [], 'nothing without a config');
  p.setConfig(cfg);
  l2h.decide = (a) => (a.key === 'default/c' ? 'notOwner' : '');
  await p.reconcile('default/a', inp('default/a'));
  l2h.calls = [];
  bgp.calls = [];
  const before = ev.events.length;
  assert.deepEqual(p.takeOver([...svcs.keys(), 'default/deleted'], inp), ['default/b']);
  assert.deepEqual(l2h.calls, ['set default/b 10.97.0.2 pool=p'], 'only the one newly ours; a is announced already, c is not ours');
  assert.deepEqual(bgp.calls, [], 'BGP is not urgent');
  assert.equal(ev.events.length, before, 'no events: the reconcile records them');
  assert.equal(gauge.values.size, 2, 'metrics untouched (a on both protocols)');
  // The reconcile that follows finds b announced and does the bookkeeping.
  await p.reconcile('default/b', inp('default/b'));
  assert.deepEqual(p.announcedBy('layer2', 'default/b'), ['10.97.0.2']);
  // A handler that throws for one Service does not stop the pass.
  l2h.decide = (a) => {
    if (a.key === 'default/c') throw new Error('boom');
    return '';
  };
  svcs.set('default/d', lbService('d', ['10.97.0.4']));
  assert.deepEqual(p.takeOver(svcs.keys(), inp), ['default/d']);
});

test('takeover pass: a Service taken over, then no longer ours before its reconcile (the dead node is back), is withdrawn from the handler', async () => {
  const { p, l2: l2h, gauge } = setup();
  const svc = lbService('b', ['10.97.0.2']);
  const inp = () => inputs(svc);
  p.setConfig(cfg);
  l2h.decide = () => 'notOwner';
  await p.reconcile('default/b', inp());
  l2h.calls = [];
  // node1 died: b is ours, the takeover pass announces it ahead of the reconcile.
  l2h.decide = () => '';
  assert.deepEqual(p.takeOver(['default/b'], inp), ['default/b']);
  // node1 is back before the reconcile runs: b is not ours any more.
  l2h.decide = () => 'notOwner';
  await p.reconcile('default/b', inp());
  assert.deepEqual(l2h.calls, ['set default/b 10.97.0.2 pool=p', 'delete default/b notOwner']);
  assert.deepEqual([...gauge.values.keys()].filter((k) => k.includes('layer2')), []);
  // Once withdrawn, a further reconcile has nothing to withdraw.
  await p.reconcile('default/b', inp());
  assert.equal(l2h.calls.length, 2);
  // Shutdown withdraws what a takeover announced and no reconcile has seen yet.
  l2h.decide = () => '';
  p.takeOver(['default/b'], inp);
  await p.withdrawEverything('shutdown');
  assert.equal(l2h.calls.at(-1), 'delete default/b shutdown');
});
