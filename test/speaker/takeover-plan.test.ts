// Takeover plans: the pure holder the gossip thread keeps (used only for the membership it was made for, narrowed by
// drops, used once), the sender, the pipeline's per-Service plan against today's takeover pass, the planner's
// invalidation on every kind of change, and the path end to end (plan, death, frames, announcer, reconcile).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { parseMac } from '../../src/net/addresses.js';
import { createLogger } from '../../src/log.js';
import type { Config } from '../../src/config/index.js';
import type { Service } from '../../src/k8s/types.js';
import type { ServiceEndpoint } from '../../src/speaker/endpoints.js';
import { AnnouncePipeline, type PlannedTakeover, type ServiceInputs } from '../../src/speaker/pipeline.js';
import { Layer2Handler } from '../../src/speaker/l2/layer2.js';
import { Announcer, type OpenFrameSocket } from '../../src/speaker/l2/announcer.js';
import { compileExclude } from '../../src/speaker/l2/exclude.js';
import { IFF_BROADCAST, IFF_UP, type LinkInfo } from '../../src/speaker/l2/interfaces.js';
import { MulticastMemberships } from '../../src/speaker/l2/multicast.js';
import { electL2, shouldAnnounceL2 } from '../../src/speaker/l2/election.js';
import { TakeoverPlanHolder, type TakeoverPlan, type TakeoverReport } from '../../src/speaker/l2/takeover-plan.js';
import { attachTakeoverSender, TakeoverSender, type FrameSink } from '../../src/speaker/l2/takeover-sender.js';
import { TakeoverPlanner, type TakeoverPlannerDeps } from '../../src/speaker/takeover-planner.js';
import { SpeakerList, type MemberlistLike } from '../../src/speaker/membership.js';
import { allowsSharedIP, isLocalPolicy, serviceLabels } from '../../src/speaker/service-facts.js';
import { config, l2, lbService, mkNode, nodeMap, pool, ready } from './helpers.js';

const log = createLogger('test', 'none');
const NODES = ['node1', 'node2', 'node3'].map((n) => mkNode(n));
const LIVE = new Set(['node1', 'node2', 'node3']);
const microtasks = (): Promise<void> => new Promise((r) => setImmediate(r));

// ---------------------------------------------------------------- the holder (gossip thread side, pure)

/** A plan made by node2 under {node1, node2, node3}: node1's death gives it a and b, node3's gives it c. */
function samplePlan(id = 1): TakeoverPlan {
  const frames = (tags: string[]): Uint8Array => Buffer.concat(tags.map((t) => Buffer.alloc(4, t)));
  return {
    id,
    self: 'node2',
    live: ['node1', 'node2', 'node3'],
    members: {
      node1: {
        keys: ['ns/a', 'ns/b'],
        batches: [
          { ifname: 'eth0', frameLength: 4, frames: frames(['a', 'A', 'b', 'B']), counts: [2, 2] },
          { ifname: 'eth1', frameLength: 4, frames: frames(['b', 'B']), counts: [0, 2] },
        ],
      },
      node3: { keys: ['ns/c'], batches: [{ ifname: 'eth0', frameLength: 4, frames: frames(['c', 'C']), counts: [2] }] },
    },
  };
}
const text = (b: Buffer): string => b.toString('latin1').replace(/(.)\1{3}/g, '$1');

test('plan holder: used at a death only when made for the membership just before it, and only once', () => {
  const h = new TakeoverPlanHolder();
  assert.equal(h.takeFor('node1', ['node2', 'node3']), undefined, 'no plan yet');
  h.set(samplePlan());
  const sent = h.takeFor('node1', ['node3', 'node2']);
  assert.deepEqual(sent?.keys, ['ns/a', 'ns/b']);
  assert.deepEqual(sent?.batches.map((b) => [b.ifname, b.count, text(b.frames)]), [['eth0', 4, 'abAB'], ['eth1', 2, 'bB']], 'every key\'s first frame (lower case) before any second one');
  assert.equal(h.takeFor('node3', ['node2']), undefined, 'a second death at once: the membership is not the plan\'s (and it is used up)');

  h.set(samplePlan(2));
  assert.equal(h.takeFor('node1', ['node2']), undefined, 'node3 died before node1 (two deaths): the plan does not hold');
  h.set(samplePlan(3));
  assert.equal(h.takeFor('node1', ['node2', 'node3', 'node4']), undefined, 'a speaker joined since the plan');
  h.set(samplePlan(4));
  assert.equal(h.takeFor('node1', ['node2', 'node3', 'node1']), undefined, 'the member is still alive (rejoined): nothing is sent');
  h.set(samplePlan(5));
  assert.equal(h.takeFor('node2', ['node1', 'node3']), undefined, 'our own leave sends nothing');
  h.set(samplePlan(6));
  assert.deepEqual(h.takeFor('node4', ['node1', 'node2', 'node3']), undefined, 'a member the plan did not know');
  h.set({ ...samplePlan(7), live: ['node1', 'node2', 'node3', 'node4'] });
  assert.deepEqual(h.takeFor('node4', ['node1', 'node2', 'node3']), { planId: 7, member: 'node4', keys: [], batches: [] }, 'a death that gives us nothing');
  h.set(samplePlan(8));
  assert.deepEqual(h.takeFor('node3', ['node1', 'node2'])?.keys, ['ns/c'], 'this node need not be in liveNow: it is always counted');
});

test('plan holder: frames go out in passes, first frames first, with keys of unequal counts and dropped ones', () => {
  const h = new TakeoverPlanHolder();
  const f = (tags: string[]): Uint8Array => Buffer.concat(tags.map((t) => Buffer.alloc(2, t)));
  h.set({
    id: 1, self: 'node2', live: ['node1', 'node2'],
    members: { node1: { keys: ['ns/a', 'ns/b', 'ns/c', 'ns/d'], batches: [{ ifname: 'eth0', frameLength: 2, frames: f(['a', 'A', 'b', 'c', 'C', 'x', 'd', 'D', 'E']), counts: [2, 1, 3, 3] }] } },
  });
  h.drop(['ns/c']);
  const sent = h.takeFor('node1', ['node2']);
  assert.equal(sent?.batches[0]?.count, 6);
  assert.equal(Buffer.from(sent!.batches[0]!.frames).toString('latin1').replace(/(.)\1/g, '$1'), 'abdADE');
});

test('plan holder: dropped Services are never sent; dropping all, or a new plan, resets', () => {
  const h = new TakeoverPlanHolder();
  h.drop(['ns/a']); // before any plan: nothing to drop from
  h.set(samplePlan());
  h.drop(['ns/a']);
  let sent = h.takeFor('node1', ['node2', 'node3']);
  assert.deepEqual(sent?.keys, ['ns/b']);
  assert.deepEqual(sent?.batches.map((b) => [b.ifname, text(b.frames)]), [['eth0', 'bB'], ['eth1', 'bB']]);
  h.set(samplePlan(2));
  h.drop(['ns/b']);
  h.drop(['ns/a']);
  sent = h.takeFor('node1', ['node2', 'node3']);
  assert.deepEqual(sent, { planId: 2, member: 'node1', keys: [], batches: [] }, 'every Service dropped: no frame');
  h.set(samplePlan(3));
  h.drop('all');
  assert.equal(h.planId, undefined);
  assert.equal(h.takeFor('node1', ['node2', 'node3']), undefined);
  h.set(samplePlan(4));
  h.drop(['ns/a']);
  h.set(samplePlan(5));
  assert.deepEqual(h.takeFor('node1', ['node2', 'node3'])?.keys, ['ns/a', 'ns/b'], 'drops concern the plan they were made against');
});

// ---------------------------------------------------------------- the sender

class Sinks {
  readonly opened: string[] = [];
  readonly sent: { ifname: string; frames: string }[] = [];
  failing = new Set<string>();
  unopenable = new Set<string>();
  closed: string[] = [];
  open = (ifname: string): FrameSink => {
    if (this.unopenable.has(ifname)) throw new Error('ENODEV');
    this.opened.push(ifname);
    return {
      sendBatch: (buf, stride, count) => {
        if (this.failing.has(ifname)) throw new Error('ENETDOWN');
        this.sent.push({ ifname, frames: text(buf.subarray(0, stride * count)) });
        return count;
      },
      close: () => void this.closed.push(ifname),
    };
  };
}

test('sender: sockets opened with the plan, one batch per interface at the death, failures reported and reopened', () => {
  const sinks = new Sinks();
  const s = new TakeoverSender(sinks.open);
  s.setPlan(samplePlan());
  assert.deepEqual(sinks.opened.sort(), ['eth0', 'eth1'], 'opened ahead, not at the death');
  const r = s.onDeath('node1', ['node2', 'node3'], 1000) as TakeoverReport;
  assert.deepEqual(sinks.sent, [{ ifname: 'eth0', frames: 'abAB' }, { ifname: 'eth1', frames: 'bB' }]);
  assert.equal(r.frames, 6);
  assert.deepEqual([r.planId, r.member, r.keys, r.live, r.errors, r.detectedAt], [1, 'node1', ['ns/a', 'ns/b'], ['node2', 'node3'], [], 1000]);
  assert.ok(r.sentAt >= 1000);
  assert.equal(s.onDeath('node3', ['node2']), undefined, 'used up');

  // A plan without eth1 closes its socket; a send that fails is reported and its socket opened again later.
  s.setPlan({ ...samplePlan(2), members: { node3: samplePlan().members.node3! } });
  assert.deepEqual(sinks.closed, ['eth1']);
  sinks.failing.add('eth0');
  const failed = s.onDeath('node3', ['node1', 'node2']) as TakeoverReport;
  assert.equal(failed.frames, 0);
  assert.deepEqual(failed.errors, [{ ifname: 'eth0', error: 'ENETDOWN' }]);
  sinks.failing.clear();
  sinks.unopenable.add('eth1');
  s.setPlan(samplePlan(3));
  assert.equal(sinks.opened.filter((i) => i === 'eth0').length, 2, 'eth0 opened again');
  const partial = s.onDeath('node1', ['node2', 'node3']) as TakeoverReport;
  assert.deepEqual(partial.errors, [{ ifname: 'eth1', error: 'no socket' }], 'an interface that cannot be opened is reported, the others sent');
  assert.equal(partial.frames, 4);
  s.close();
  s.setPlan(samplePlan(4));
  assert.equal(s.onDeath('node1', ['node2', 'node3']), undefined, 'closed: nothing is sent');
});

test('attachTakeoverSender: the engine\'s leave event sends with the members alive or suspect after it, and reports before later listeners', () => {
  const engine = new EventEmitter() as EventEmitter & { members(): { name: string; state: string }[] };
  const states: Record<string, string> = { node1: 'dead', node2: 'alive', node3: 'suspect', node4: 'left' };
  engine.members = () => Object.entries(states).map(([name, state]) => ({ name, state }));
  const sinks = new Sinks();
  const order: string[] = [];
  const reports: TakeoverReport[] = [];
  const sender = attachTakeoverSender(engine, (r) => {
    order.push('report');
    reports.push(r);
  }, undefined, sinks.open);
  engine.on('leave', () => order.push('leave forwarded'));
  engine.emit('leave', { name: 'node1' });
  assert.equal(reports.length, 0, 'no plan: nothing');
  sender.setPlan(samplePlan());
  states.node4 = 'dead';
  engine.emit('leave', { name: 'node1' });
  assert.deepEqual(order, ['leave forwarded', 'report', 'leave forwarded']);
  assert.deepEqual(reports[0]!.live, ['node2', 'node3']);
  assert.deepEqual(reports[0]!.keys, ['ns/a', 'ns/b']);
  assert.equal(sinks.sent.length, 2);
});

// ---------------------------------------------------------------- the pipeline's plan against today's path

const cfg = config([pool('p', { addresses: ['10.98.0.0/24', 'fd00:98::/64'] }), l2('all')], NODES);

function pipelineFor(myNode: string, live: () => ReadonlySet<string>, announcer = recordingAnnouncer()) {
  const handler = new Layer2Handler({ myNode, announcer: announcer.a, speakers: live, ignoreExcludeLB: false, events: { record: () => undefined }, log });
  const gauge = { set: () => undefined, remove: () => undefined };
  const p = new AnnouncePipeline({ myNode, handlers: [handler], loadBalancerClass: '', events: { record: () => undefined }, announced: gauge, log });
  p.setConfig(cfg);
  return { p, handler, announcer };
}

function recordingAnnouncer() {
  const announced = new Map<string, string[]>();
  const calls: string[] = [];
  return {
    announced,
    calls,
    a: {
      setBalancer: (name: string, ip: string) => {
        calls.push(`set ${name} ${ip}`);
        announced.set(name, [...new Set([...(announced.get(name) ?? []), ip])]);
      },
      deleteBalancer: (name: string) => {
        calls.push(`delete ${name}`);
        announced.delete(name);
      },
      interfacesFor: () => ['eth0'],
    },
  };
}

/** 90 Services on the pool, some Local with endpoints on one node only, some dual-stack. */
function services(): Map<string, { svc: Service; endpoints: ServiceEndpoint[] }> {
  const out = new Map<string, { svc: Service; endpoints: ServiceEndpoint[] }>();
  for (let i = 0; i < 90; i++) {
    const ips = i % 7 === 0 ? [`10.98.0.${i}`, `fd00:98::${i.toString(16)}`] : [`10.98.0.${i}`];
    const local = i % 5 === 0;
    const endpoints = local ? [ready(`node${(i % 3) + 1}`)] : [ready('node1'), ready('node2')];
    out.set(`default/s${i}`, { svc: lbService(`s${i}`, ips, { local }), endpoints });
  }
  return out;
}

const inputsOf = (svcs: ReturnType<typeof services>) => (k: string): ServiceInputs => ({ service: svcs.get(k)?.svc, endpoints: svcs.get(k)?.endpoints ?? [], nodes: nodeMap(NODES) });

test('pipeline.planKey: a Service is planned for the member it belongs to now exactly when this node owns it once that member is gone (the election decides)', () => {
  const svcs = services();
  const { p } = pipelineFor('node2', () => LIVE);
  const inputs = inputsOf(svcs);
  let planned = 0;
  for (const [key, { svc, endpoints }] of svcs) {
    const plan = p.planKey(key, inputs(key), LIVE);
    const base = {
      serviceLabels: serviceLabels(svc), allowSharedIP: allowsSharedIP(svc), localTrafficPolicy: isLocalPolicy(svc),
      ips: svc.status!.loadBalancer!.ingress!.map((x) => x.ip!), ads: cfg.l2Advertisements, nodes: nodeMap(NODES), endpoints, ignoreExcludeLB: false,
    };
    const owner = electL2({ ...base, speakers: LIVE }).winner;
    for (const member of ['node1', 'node3']) {
      const without = new Set([...LIVE].filter((n) => n !== member));
      const expected = owner === member && shouldAnnounceL2('node2', { ...base, speakers: without }).announce;
      assert.equal(plan.some((x) => x.member === member), expected, `${key}, death of ${member}`);
      if (expected) planned++;
    }
    assert.ok(plan.every((x) => x.member !== 'node2'), 'never for this node itself');
  }
  assert.ok(planned > 10, `a fair share of the Services is planned (${planned})`);
});

test('pipeline.planKey: the plan for a death is what today\'s takeover pass announces after it, no more', () => {
  const svcs = services();
  const inputs = inputsOf(svcs);
  for (const dead of ['node1', 'node3']) {
    const planner = pipelineFor('node2', () => LIVE);
    const plannedKeys = [...svcs.keys()].filter((k) => planner.p.planKey(k, inputs(k), LIVE).some((x) => x.member === dead)).sort();
    const after = new Set([...LIVE].filter((n) => n !== dead));
    // Today: the Services this node announces after the death that it did not before it.
    const before = new Set(pipelineFor('node2', () => LIVE).p.takeOver(svcs.keys(), inputs));
    const today = pipelineFor('node2', () => after).p.takeOver(svcs.keys(), inputs).filter((k) => !before.has(k));
    assert.deepEqual(today.sort(), plannedKeys, `death of ${dead}`);
    assert.ok(plannedKeys.length > 0);
  }
});

test('pipeline.planKey: nothing without a config, for a Service gone, without an address, or whose addresses changed since announced', async () => {
  const { p } = pipelineFor('node2', () => LIVE);
  const svc = lbService('x', ['10.98.0.77']);
  const fresh = new AnnouncePipeline({ myNode: 'node2', handlers: [], loadBalancerClass: '', events: { record: () => undefined }, announced: { set: () => undefined, remove: () => undefined }, log });
  assert.deepEqual(fresh.planKey('default/x', { service: svc, endpoints: [ready()], nodes: nodeMap(NODES) }, LIVE), [], 'no config');
  assert.deepEqual(p.planKey('default/x', { service: undefined, endpoints: [], nodes: nodeMap(NODES) }, LIVE), []);
  assert.deepEqual(p.planKey('default/x', { service: lbService('x', []), endpoints: [ready()], nodes: nodeMap(NODES) }, LIVE), []);
  assert.deepEqual(p.planKey('default/x', { service: lbService('x', ['10.99.9.9']), endpoints: [ready()], nodes: nodeMap(NODES) }, LIVE), [], 'in no pool');
  // Find an address whose order is [node1, node2, ...]: planned for node1 until its addresses change under an announcement.
  let ip = '';
  for (let i = 100; i < 200 && !ip; i++) {
    const order = electL2({ serviceLabels: {}, allowSharedIP: false, localTrafficPolicy: false, ips: [`10.98.0.${i}`], ads: cfg.l2Advertisements, nodes: nodeMap(NODES), speakers: LIVE, endpoints: [ready()], ignoreExcludeLB: false }).order;
    if (order[0] === 'node1' && order[1] === 'node2') ip = `10.98.0.${i}`;
  }
  assert.ok(ip);
  const inp = (s: Service): ServiceInputs => ({ service: s, endpoints: [ready()], nodes: nodeMap(NODES) });
  assert.deepEqual(p.planKey('default/y', inp(lbService('y', [ip])), LIVE).map((x) => x.member), ['node1']);
  // Announced with other addresses (by this node, under another membership): left to the reconcile, as takeOver does.
  const alone = pipelineFor('node2', () => new Set(['node2']));
  await alone.p.reconcile('default/y', inp(lbService('y', ['10.98.0.5'])));
  assert.deepEqual(alone.p.planKey('default/y', inp(lbService('y', [ip])), LIVE), []);
});

// ---------------------------------------------------------------- the planner

function plannerHarness(over: Partial<TakeoverPlannerDeps> = {}) {
  const svcs = services();
  let live: ReadonlySet<string> | undefined = LIVE;
  const { p, handler } = pipelineFor('node2', () => live ?? LIVE);
  const inputs = inputsOf(svcs);
  const published: (TakeoverPlan | null)[] = [];
  const drops: (string[] | 'all')[] = [];
  const planCalls: string[] = [];
  const timers = { fn: undefined as (() => void) | undefined, setTimeout: (fn: () => void) => ((timers.fn = fn), 1), clearTimeout: () => void (timers.fn = undefined) };
  const planner = new TakeoverPlanner({
    myNode: 'node2',
    log,
    live: () => live,
    keys: () => svcs.keys(),
    plan: (key, l) => {
      planCalls.push(key);
      return p.planKey(key, inputs(key), l);
    },
    addresses: (x) => handler.planned(x.announcement),
    // One "interface", a 1-byte frame per address: its last octet, so batches are easy to read.
    frames: (entries) => [{
      ifname: 'eth0', frameLength: 1, count: entries.length, perEntry: entries.map(() => 1),
      frames: Buffer.from(entries.map((e) => Number(e.ip.split(/[.:]/).filter(Boolean).pop()!) & 255)),
    }],
    publish: (plan) => void published.push(plan),
    drop: (keys) => void drops.push(keys === 'all' ? 'all' : [...keys]),
    timers,
    ...over,
  });
  return { svcs, planner, published, drops, planCalls, timers, setLive: (l: ReadonlySet<string> | undefined) => (live = l), p };
}

test('planner: every Service planned at first; the plan lists, per member, the Services and a frame count per Service', () => {
  const h = plannerHarness();
  h.planner.recompute();
  const plan = h.published.at(-1)!;
  assert.ok(plan);
  assert.deepEqual(plan.live, ['node1', 'node2', 'node3']);
  assert.equal(plan.self, 'node2');
  assert.equal(h.planCalls.length, 90);
  for (const [member, mp] of Object.entries(plan.members)) {
    const expected = [...h.svcs.keys()].filter((k) => h.p.planKey(k, inputsOf(h.svcs)(k), LIVE).some((x) => x.member === member)).sort();
    assert.deepEqual(mp.keys, expected, member);
    // Dual-stack Services have two addresses: two frames.
    assert.deepEqual(mp.batches[0]!.counts, mp.keys.map((k) => h.svcs.get(k)!.svc.status!.loadBalancer!.ingress!.length));
  }
  // The main thread finds a plan's announcements back from the report of the gossip thread.
  const [member, mp] = Object.entries(plan.members)[0]!;
  const back = h.planner.planned(plan.id, member, mp.keys.slice(0, 2)) as PlannedTakeover[];
  assert.deepEqual(back.map((x) => x.announcement.key), mp.keys.slice(0, 2));
  assert.equal(h.planner.planned(plan.id + 1, member, mp.keys), undefined, 'a plan never published');
});

test('planner: a changed Service is dropped from the gossip thread\'s plan in the same turn, then planned again alone', async () => {
  const h = plannerHarness();
  h.planner.recompute();
  h.planCalls.length = 0;
  h.planner.touch('default/s1');
  h.planner.touch('default/s2');
  assert.deepEqual(h.drops, [], 'batched to the end of the turn');
  await microtasks();
  assert.deepEqual(h.drops, [['default/s1', 'default/s2']]);
  assert.ok(h.timers.fn, 'a recompute is scheduled');
  h.timers.fn!();
  assert.deepEqual(h.planCalls.sort(), ['default/s1', 'default/s2'], 'only the changed Services are planned again');
  assert.equal(h.published.length, 2);
  // A Service deleted leaves the plan.
  const deletedKey = Object.values(h.published[1]!.members)[0]!.keys[0]!;
  h.svcs.delete(deletedKey);
  h.planner.touch(deletedKey);
  h.timers.fn!();
  assert.ok(Object.values(h.published[2]!.members).every((m) => !m.keys.includes(deletedKey)));

  // A report of that plan after a change: the main thread does not apply the changed Service's old announcement.
  const plan = h.published[2]!;
  const [member, mp] = Object.entries(plan.members).find(([, m]) => m.keys.length >= 2)!;
  assert.equal(h.planner.planned(plan.id, member, mp.keys)!.length, mp.keys.length);
  h.planner.touch(mp.keys[0]!);
  assert.deepEqual(h.planner.planned(plan.id, member, mp.keys)!.map((x) => x.announcement.key), mp.keys.slice(1));
  h.planner.touchAll();
  assert.deepEqual(h.planner.planned(plan.id, member, mp.keys), []);
  h.timers.fn!();
  const next = h.published.at(-1)!;
  assert.ok(next.id > plan.id);
  assert.equal(h.planner.planned(next.id, member, next.members[member]!.keys)!.length, next.members[member]!.keys.length, 'the new plan covers them again');
});

test('planner: nodes, config, membership or interfaces changing drop the whole plan at once and plan everything again', async () => {
  const h = plannerHarness();
  h.planner.recompute();
  h.planCalls.length = 0;
  h.planner.touch('default/s1');
  h.planner.touchAll();
  h.planner.touch('default/s2');
  await microtasks();
  assert.deepEqual(h.drops, ['all'], 'one drop of everything');
  h.timers.fn!();
  assert.equal(h.planCalls.length, 90);
  // The membership changed under a single touched Service (the planner was not told): still a full plan.
  h.planCalls.length = 0;
  h.setLive(new Set(['node2', 'node3']));
  h.planner.touch('default/s1');
  h.timers.fn!();
  assert.equal(h.planCalls.length, 90);
  const plan = h.published.at(-1)!;
  assert.deepEqual(plan.live, ['node2', 'node3']);
  assert.deepEqual(Object.keys(plan.members).filter((m) => m === 'node1'), [], 'nothing planned for a member not alive');
});

test('planner: no membership (or not started) publishes no plan; stopped, it does nothing', async () => {
  const h = plannerHarness();
  h.setLive(undefined);
  h.planner.recompute();
  assert.deepEqual(h.published, [null]);
  h.setLive(LIVE);
  h.planner.stop();
  h.planner.touch('default/s1');
  h.planner.touchAll();
  await microtasks();
  assert.equal(h.timers.fn, undefined);
  assert.deepEqual(h.drops, []);
});

test('planner: only the last plans are kept for reports', () => {
  const h = plannerHarness();
  for (let i = 0; i < 10; i++) h.planner.recompute();
  const ids = h.published.map((p) => p!.id);
  const [member, mp] = Object.entries(h.published.at(-1)!.members)[0]!;
  assert.equal(h.planner.planned(ids[0]!, member, mp.keys), undefined);
  assert.ok(h.planner.planned(ids.at(-1)!, member, mp.keys));
});

// ---------------------------------------------------------------- end to end on one node (no threads, fake sockets)

const UP = IFF_UP | IFF_BROADCAST | 0x1000;
const eth0: LinkInfo = { name: 'eth0', index: 2, flags: UP, type: 1, mac: parseMac('02:98:00:00:00:02'), hasMaster: false, linkLocal: Buffer.from('fe800000000000000000000000000002', 'hex') };

function realAnnouncer(links: LinkInfo[]) {
  const sent: Buffer[] = [];
  const openSocket: OpenFrameSocket = (_ifname, protocol) => ({
    send: () => undefined,
    sendBatch: (buf, stride, count) => {
      for (let i = 0; i < count; i++) sent.push(Buffer.from(buf.subarray(i * stride, (i + 1) * stride)));
      return count;
    },
    close: () => undefined,
    setFilter: () => undefined,
    protocol,
  });
  const current = { links };
  const announcer = new Announcer({
    log, exclude: compileExclude([], 'test'), links: () => current.links, openSocket,
    memberships: new MulticastMemberships(() => ({ addMembership: () => undefined, dropMembership: () => undefined, close: () => undefined })),
  }).start();
  return { announcer, sent, current };
}

test('end to end: the frames sent at the death are the announcer\'s own gratuitous frames; the announcer then holds the addresses; a Service no longer ours is withdrawn by its reconcile', async () => {
  const svcs = services();
  const inputs = inputsOf(svcs);
  const net = realAnnouncer([eth0]);
  let live: ReadonlySet<string> = LIVE;
  const handler = new Layer2Handler({ myNode: 'node2', announcer: net.announcer, speakers: () => live, ignoreExcludeLB: false, events: { record: () => undefined }, log });
  const p = new AnnouncePipeline({ myNode: 'node2', handlers: [handler], loadBalancerClass: '', events: { record: () => undefined }, announced: { set: () => undefined, remove: () => undefined }, log });
  p.setConfig(cfg as Config);
  const sinks = new Sinks();
  const raw: Buffer[] = [];
  const sender = new TakeoverSender((ifname) => {
    const s = sinks.open(ifname);
    return { ...s, sendBatch: (buf, stride, count) => { for (let i = 0; i < count; i++) raw.push(Buffer.from(buf.subarray(i * stride, (i + 1) * stride))); return s.sendBatch(buf, stride, count); } };
  });
  const planner = new TakeoverPlanner({
    myNode: 'node2', log, live: () => live, keys: () => svcs.keys(),
    plan: (key, l) => p.planKey(key, inputs(key), l),
    addresses: (x) => handler.planned(x.announcement),
    frames: (entries) => net.announcer.gratuitousFrames(entries),
    publish: (plan) => sender.setPlan(plan),
    drop: (keys) => sender.drop(keys),
  });
  net.announcer.onInterfacesChanged(() => planner.touchAll());
  // What node2 owns already is announced (its reconciles ran).
  for (const k of svcs.keys()) await p.reconcile(k, inputs(k));
  await microtasks();
  planner.recompute();
  // One Service changes after the plan was made: its frames must not go out.
  const changedKey = [...svcs.keys()].find((k) => p.planKey(k, inputs(k), LIVE).some((x) => x.member === 'node1'))!;
  assert.ok(changedKey);
  planner.touch(changedKey);
  await microtasks();

  // node1 dies: the gossip thread sends, the main thread applies the same Services.
  const report = sender.onDeath('node1', ['node2', 'node3']) as TakeoverReport;
  assert.ok(report, 'the plan held');
  assert.ok(!report.keys.includes(changedKey), 'the changed Service was dropped');
  live = new Set(report.live);
  const planned = planner.planned(report.planId, 'node1', report.keys)!;
  net.sent.length = 0;
  const taken = p.applyPlanned(planned);
  assert.deepEqual(taken.sort(), [...report.keys].sort());
  await microtasks();
  // The announcer's own burst for those addresses: the same frames, byte for byte.
  const hex = (bs: Buffer[]): string[] => bs.map((b) => b.toString('hex')).sort();
  assert.deepEqual(hex(raw), hex(net.sent));
  assert.equal(report.frames, raw.length);
  for (const k of report.keys) assert.ok(net.announcer.announceName(k), `${k} announced`);
  // What the plan did not cover is left to today's pass, which finds exactly the rest.
  const rest = p.takeOver(svcs.keys(), inputs);
  assert.deepEqual(rest, [changedKey]);

  // node1 comes back before the reconciles: the Services taken over by the plan are withdrawn by them.
  live = LIVE;
  for (const k of report.keys) await p.reconcile(k, inputs(k));
  for (const k of report.keys) assert.ok(!net.announcer.announceName(k), `${k} withdrawn`);

  // An interface change drops the plan at once.
  planner.recompute();
  assert.ok(sender.planId !== undefined);
  net.current.links = [eth0, { ...eth0, name: 'eth1', index: 3, mac: parseMac('02:98:00:00:00:03') }];
  net.announcer.rescan();
  await microtasks();
  assert.equal(sender.planId, undefined);
  planner.stop();
  net.announcer.close();
});

// ---------------------------------------------------------------- the membership

class FakeML extends EventEmitter implements MemberlistLike {
  alive = new Set(['node1', 'node2', 'node3']);
  plans: (TakeoverPlan | null)[] = [];
  drops: (readonly string[] | 'all')[] = [];
  async join(addrs: readonly string[]): Promise<number> {
    return addrs.length;
  }
  async liveMembers(): Promise<string[]> {
    return [...this.alive];
  }
  async leave(): Promise<void> {}
  async shutdown(): Promise<void> {}
  setTakeoverPlan(plan: TakeoverPlan | null): void {
    this.plans.push(plan);
  }
  dropTakeoverPlan(keys: readonly string[] | 'all'): void {
    this.drops.push(keys);
  }
}

test('SpeakerList: a takeover report puts the gossip thread\'s live set in force at once and is heard as the leave; the leave event after it changes nothing', async () => {
  const ml = new FakeML();
  const sl = new SpeakerList({ nodeName: 'node2', log, peerPort: 7946, create: async () => ml, listPods: async () => [{ metadata: { name: 's' }, status: { phase: 'Running', podIP: '10.98.1.1' } }] });
  const heard: [string, string, TakeoverReport | undefined][] = [];
  sl.onChange((event, member, report) => heard.push([event, member, report]));
  await sl.start();
  heard.length = 0;
  sl.setTakeoverPlan(samplePlan());
  sl.dropTakeoverPlan(['ns/a']);
  assert.equal(ml.plans.length, 1);
  assert.deepEqual(ml.drops, [['ns/a']]);
  const report: TakeoverReport = { planId: 1, member: 'node1', live: ['node2', 'node3'], keys: ['ns/b'], frames: 2, errors: [], detectedAt: 1, sentAt: 2 };
  ml.emit('takeover', report);
  assert.deepEqual([...sl.usable()].sort(), ['node2', 'node3'], 'no round trip to the gossip thread');
  assert.deepEqual(heard, [['leave', 'node1', report]]);
  ml.alive.delete('node1');
  ml.emit('leave', { name: 'node1' });
  await microtasks();
  assert.equal(heard.length, 1, 'the leave itself was heard already');
  await sl.stop();
  sl.setTakeoverPlan(null);
  assert.equal(ml.plans.length, 1, 'stopped: no plan');
});
