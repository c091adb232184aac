import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConvergeResult } from '../../src/allocator/index.js';
import { ServiceAllocator, restoreOrder } from '../../src/allocator/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import type { KubeObject, Service } from '../../src/k8s/types.js';
import { ApiError } from '../../src/k8s/client.js';
import { POOL_ANNOTATION, REPROCESS_ALL, ServiceReconciler, ingressMatches, withAllocation, type ServiceAllocatorLike } from '../../src/controller/service-reconciler.js';
import { FeatureGates, type FeatureSwitch } from '../../src/k8s/features.js';
import { Registry } from 'prom-client';
import { WorkQueue } from '../../src/controller/workqueue.js';

const log = createLogger('test', 'none');

function svc(ns: string, name: string, extra: Partial<Service> = {}, rv = '1'): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: ns, name, uid: `uid-${name}`, resourceVersion: rv, ...(extra.metadata ?? {}) },
    spec: { type: 'LoadBalancer', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ports: [{ port: 80, protocol: 'TCP' }], ...(extra.spec ?? {}) },
    status: extra.status ?? {},
  };
}

/** A fake API: a map of Services; writes bump resourceVersion and check it (409 on mismatch). */
class FakeApi {
  readonly store = new Map<string, Service>();
  rv = 100;
  writes: string[] = [];
  failNext: ApiError | undefined;
  put(s: Service): void {
    this.store.set(`${s.metadata?.namespace}/${s.metadata?.name}`, structuredClone(s));
  }
  /** Reads of the fake API (conflict handling). */
  reads = 0;
  /** Called before each write is applied (to simulate someone else's edit racing ours). */
  beforeWrite: ((key: string) => void) | undefined;
  /** PUT of services/status: resourceVersion precondition; status and metadata from the body, spec kept. */
  private update(s: Service): Service {
    const key = `${s.metadata?.namespace}/${s.metadata?.name}`;
    this.beforeWrite?.(key);
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    const cur = this.store.get(key);
    if (!cur) throw new ApiError(404, 'not found');
    if (s.metadata?.resourceVersion !== cur.metadata?.resourceVersion) throw new ApiError(409, 'conflict', 'Conflict');
    const next = structuredClone({ ...cur, metadata: s.metadata, status: s.status });
    next.metadata = { ...next.metadata, resourceVersion: String(++this.rv) };
    this.store.set(key, next);
    this.writes.push(`status ${key}`);
    return structuredClone(next);
  }
  /** Someone else's edit of a Service: a new resourceVersion. */
  edit(key: string, mutate: (s: Service) => void): void {
    const next = structuredClone(this.store.get(key)!);
    mutate(next);
    next.metadata = { ...next.metadata, resourceVersion: String(++this.rv) };
    this.store.set(key, next);
  }
  writer = {
    write: async (s: Service) => this.update(s),
    read: async (ns: string, name: string) => {
      this.reads++;
      const s = this.store.get(`${ns}/${name}`);
      return s ? structuredClone(s) : undefined;
    },
  };
  /** The informer's cache: may lag behind the store (`stale`). */
  stale = new Map<string, Service>();
  cache = {
    get: (k: string) => this.stale.get(k) ?? this.store.get(k),
    list: () => [...this.store.keys()].map((k) => this.stale.get(k) ?? this.store.get(k)!),
  };
}

interface Harness {
  api: FakeApi;
  rec: ServiceReconciler;
  queue: WorkQueue<string>;
  events: { obj: string; type: string; reason: string; message: string }[];
  counters: { updates: number; errors: number };
}

function harness(allocator: ServiceAllocatorLike, api = new FakeApi(), serviceStatus?: FeatureSwitch): Harness {
  const events: Harness['events'] = [];
  const counters = { updates: 0, errors: 0 };
  let queue!: WorkQueue<string>;
  const rec = new ServiceReconciler({
    allocator,
    restoreOrder: (s) => restoreOrder(s),
    cache: api.cache,
    writer: api.writer,
    events: { record: (o: KubeObject, type, reason, message) => events.push({ obj: `${o.metadata?.namespace}/${o.metadata?.name}`, type, reason, message }) },
    log,
    counters: { updates: { inc: () => counters.updates++ }, updateErrors: { inc: () => counters.errors++ } },
    enqueue: (k) => queue.add(k),
    enqueueAfter: (k, ms) => queue.addAfter(k, ms),
    conflictRetryMs: 5,
    minReprocessIntervalMs: 0,
    ...(serviceStatus ? { serviceStatus } : {}),
  });
  queue = new WorkQueue<string>((k) => rec.reconcile(k), { concurrency: 4, baseDelayMs: 5 });
  return { api, rec, queue, events, counters };
}

function poolsFrom(...specs: { name: string; addresses: string[]; autoAssign?: boolean }[]) {
  const objs = specs.map((s) => ({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name: s.name, namespace: 'metallb-system' },
    spec: { addresses: s.addresses, ...(s.autoAssign === false ? { autoAssign: false } : {}) },
  }));
  const r = parseConfig(objs, { namespaces: [], nodes: [], secrets: [] }, { namespace: 'metallb-system' });
  assert.deepEqual(r.errors, []);
  return r.config!.pools;
}

const ips = (s: Service | undefined): string[] => (s?.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '');

async function settle(h: Harness): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await h.queue.idle();
    await new Promise((r) => setTimeout(r, 15));
  }
  await h.queue.idle();
}

test('service reconcile: single-service keys are ignored until the first full pass', async () => {
  const calls: string[] = [];
  const fake: ServiceAllocatorLike = {
    handles: () => true,
    converge: (s) => {
      calls.push(s.metadata?.name ?? '');
      return { ingress: [], events: [], reprocessAll: false };
    },
    release: () => false,
  };
  const h = harness(fake);
  h.api.put(svc('ns', 'a'));
  await h.rec.reconcile('ns/a');
  assert.deepEqual(calls, [], 'no converge before the first pass');
  assert.equal(h.rec.ready, false);
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  assert.equal(h.rec.ready, true);
  assert.deepEqual(calls, ['a'], 'the pass converges, the per-key reconcile reuses the result for the same resourceVersion');
});

test('service reconcile: writes status and pool annotation only when they differ, emits the events', async () => {
  const result: ConvergeResult = { ingress: ['192.0.2.1'], pool: 'p1', events: [{ type: 'Normal', reason: 'IPAllocated', message: 'Assigned IP ["192.0.2.1"]' }], reprocessAll: false };
  const fake: ServiceAllocatorLike = { handles: () => true, converge: () => ({ ...result, events: [...result.events] }), release: () => false };
  const h = harness(fake);
  h.api.put(svc('ns', 'a'));
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  assert.deepEqual(ips(h.api.store.get('ns/a')), ['192.0.2.1']);
  assert.equal(h.api.store.get('ns/a')?.metadata?.annotations?.[POOL_ANNOTATION], 'p1');
  assert.deepEqual(h.api.writes, ['status ns/a'], 'status and annotation in one update of services/status');
  assert.equal(h.counters.updates, 1);
  assert.deepEqual(h.events.map((e) => e.reason), ['IPAllocated']);
  // Level-triggered: reconciling again changes nothing.
  h.api.writes = [];
  h.queue.add('ns/a');
  await settle(h);
  assert.deepEqual(h.api.writes, []);
});

test('service reconcile: updating a Service with metallb.universe.tf annotations warns deprecatedAnnotation, once per update', async () => {
  const result: ConvergeResult = { ingress: ['192.0.2.1'], pool: 'p1', events: [], reprocessAll: false };
  const fake: ServiceAllocatorLike = { handles: () => true, converge: () => ({ ...result, events: [] }), release: () => false };
  const h = harness(fake);
  h.api.put(svc('ns', 'old', { metadata: { annotations: { 'metallb.universe.tf/address-pool': 'p1', 'metallb.universe.tf/allow-shared-ip': 'k' } } }));
  h.api.put(svc('ns', 'new', { metadata: { annotations: { 'metallb.io/address-pool': 'p1' } } }));
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  const warned = h.events.filter((e) => e.reason === 'deprecatedAnnotation');
  assert.equal(warned.length, 1, 'only the Service with the old prefix');
  assert.equal(warned[0]!.type, 'Warning');
  assert.match(warned[0]!.message, /"metallb\.universe\.tf\/address-pool" \(use "metallb\.io\/address-pool"\), "metallb\.universe\.tf\/allow-shared-ip"/);
  // Nothing to write on the next reconcile: no new warning.
  h.queue.add('ns/old');
  await settle(h);
  assert.equal(h.events.filter((e) => e.reason === 'deprecatedAnnotation').length, 1);
});

test('service reconcile: a 409 conflict re-reads and writes again, a 404 is ignored, other errors count and retry', async () => {
  const fake: ServiceAllocatorLike = { handles: () => true, converge: () => ({ ingress: ['192.0.2.7'], pool: 'p', events: [], reprocessAll: false }), release: () => false };
  const h = harness(fake);
  h.api.put(svc('ns', 'a'));
  h.api.failNext = new ApiError(409, 'conflict', 'Conflict');
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  await new Promise((r) => setTimeout(r, 50));
  await settle(h);
  assert.deepEqual(ips(h.api.store.get('ns/a')), ['192.0.2.7']);
  assert.equal(h.counters.errors, 1);
  assert.equal(h.api.reads, 1, 'the conflict read the Service again');
  h.api.put(svc('ns', 'b'));
  h.api.failNext = new ApiError(500, 'boom');
  h.queue.add('ns/b');
  await new Promise((r) => setTimeout(r, 100));
  await settle(h);
  assert.deepEqual(ips(h.api.store.get('ns/b')), ['192.0.2.7']);
  assert.equal(h.counters.errors, 2);
});

test('service reconcile: deletion releases and requests reprocess-all; unhandled classes are released without writes', async () => {
  const released: string[] = [];
  let passes = 0;
  const fake: ServiceAllocatorLike = {
    handles: (s) => !s.spec?.loadBalancerClass,
    converge: () => ({ ingress: [], events: [], reprocessAll: false }),
    release: (k) => {
      // Like the real allocator: true only when something was held.
      if (released.includes(k)) return false;
      released.push(k);
      return true;
    },
  };
  const h = harness(fake);
  const orig = h.rec.reconcile.bind(h.rec);
  h.rec.reconcile = async (k) => {
    if (k === REPROCESS_ALL) passes++;
    return orig(k);
  };
  h.api.put(svc('ns', 'a'));
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  assert.equal(passes, 1);
  h.api.store.delete('ns/a');
  h.queue.add('ns/a');
  await settle(h);
  assert.ok(released.includes('ns/a'));
  assert.equal(passes, 2, 'a freed address makes every service be reconsidered');
  h.api.put(svc('ns', 'c', { spec: { loadBalancerClass: 'other' } }));
  h.api.writes = [];
  h.queue.add('ns/c');
  await settle(h);
  assert.ok(released.includes('ns/c'));
  assert.deepEqual(h.api.writes, []);
});

test('service reconcile (real allocator): restart restores every address without churn, new services get free ones', async () => {
  const pools = poolsFrom({ name: 'p', addresses: ['192.0.2.0/29'] });
  // First controller life: allocate five services.
  const a1 = new ServiceAllocator();
  a1.setPools(pools);
  const h1 = harness(a1);
  for (const n of ['s1', 's2', 's3', 's4', 's5']) h1.api.put(svc('ns', n));
  h1.queue.start();
  h1.queue.add(REPROCESS_ALL);
  await settle(h1);
  const before = new Map([...h1.api.store].map(([k, s]) => [k, ips(s)]));
  assert.equal(new Set([...before.values()].map((x) => x[0])).size, 5, 'five distinct addresses');
  await h1.queue.shutdown();

  // Second life: a fresh allocator, the same API content plus new services listed *before* the old ones.
  const api2 = new FakeApi();
  for (const n of ['new1', 'new2']) api2.put(svc('aaa', n));
  for (const s of h1.api.store.values()) api2.put(s);
  const a2 = new ServiceAllocator();
  a2.setPools(pools);
  const h2 = harness(a2, api2);
  // Events for individual services arrive before the first pass: they must not allocate.
  h2.queue.add('aaa/new1');
  h2.queue.start();
  h2.queue.add(REPROCESS_ALL);
  await settle(h2);
  for (const [k, v] of before) assert.deepEqual(ips(api2.store.get(k)), v, `${k} kept its address`);
  const newIPs = ['aaa/new1', 'aaa/new2'].map((k) => ips(api2.store.get(k))[0]);
  assert.equal(newIPs.filter(Boolean).length, 2);
  for (const ip of newIPs) assert.ok(![...before.values()].some((v) => v[0] === ip), `${ip} was not taken from an existing service`);
  assert.ok(!api2.writes.some((w) => w.startsWith('status ns/')), 'no status write for restored services');
});

test('service reconcile (real allocator): type change clears, delete frees the address for a pending service', async () => {
  const a = new ServiceAllocator();
  a.setPools(poolsFrom({ name: 'p', addresses: ['192.0.2.10/32'] }));
  const h = harness(a);
  h.api.put(svc('ns', 'first'));
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  assert.deepEqual(ips(h.api.store.get('ns/first')), ['192.0.2.10']);
  h.api.put(svc('ns', 'second'));
  h.queue.add('ns/second');
  await settle(h);
  assert.deepEqual(ips(h.api.store.get('ns/second')), []);
  assert.ok(h.events.some((e) => e.obj === 'ns/second' && e.reason === 'AllocationFailed' && e.type === 'Warning'));
  // first becomes ClusterIP: cleared, the address is freed, second gets it through reprocess-all.
  const first = h.api.store.get('ns/first')!;
  h.api.put({ ...first, spec: { ...first.spec, type: 'ClusterIP' } });
  h.queue.add('ns/first');
  await settle(h);
  assert.deepEqual(ips(h.api.store.get('ns/first')), []);
  assert.equal(h.api.store.get('ns/first')?.metadata?.annotations?.[POOL_ANNOTATION], undefined);
  assert.deepEqual(ips(h.api.store.get('ns/second')), ['192.0.2.10']);
});

test('ingressMatches: a status of the wrong shape from the API does not match (and does not throw)', () => {
  const withIngress = (ingress: unknown): Service => svc('ns', 'g', { status: { loadBalancer: { ingress } } as Service['status'] });
  assert.equal(ingressMatches(withIngress([{ ip: '192.0.2.1' }]), ['192.0.2.1']), true);
  assert.equal(ingressMatches(withIngress([{ ip: '192.0.2.1', hostname: 'x' }]), ['192.0.2.1']), false);
  assert.equal(ingressMatches(withIngress('abc'), ['a', 'b', 'c']), false);
  assert.equal(ingressMatches(withIngress({ length: 1 }), ['192.0.2.1']), false);
  assert.equal(ingressMatches(withIngress([null]), ['192.0.2.1']), false);
  assert.equal(ingressMatches(withIngress(null), []), true);
});

test('withAllocation: ingress and annotation set or removed, nothing else touched', () => {
  const base = svc('ns', 'w', { metadata: { annotations: { keep: 'me', [POOL_ANNOTATION]: 'old' }, labels: { a: 'b' } }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.9' }] }, conditions: [{ type: 'X' }] } as Service['status'] });
  const set = withAllocation(base, ['192.0.2.1', '2001:db8::1'], 'p');
  assert.deepEqual(set.status?.loadBalancer?.ingress, [{ ip: '192.0.2.1' }, { ip: '2001:db8::1' }]);
  assert.deepEqual(set.metadata?.annotations, { keep: 'me', [POOL_ANNOTATION]: 'p' });
  assert.deepEqual(set.metadata?.labels, { a: 'b' });
  assert.deepEqual((set.status as { conditions?: unknown }).conditions, [{ type: 'X' }]);
  assert.equal(set.metadata?.resourceVersion, base.metadata?.resourceVersion, 'the precondition is the copy it came from');
  const cleared = withAllocation(base, [], undefined);
  assert.equal(cleared.status?.loadBalancer?.ingress, undefined);
  assert.deepEqual(cleared.metadata?.annotations, { keep: 'me' });
  assert.deepEqual(base.metadata?.annotations?.[POOL_ANNOTATION], 'old', 'the cached copy is not mutated');
});

test('service reconcile (real allocator): a Service edited while we write is converged again from the fresh copy: no lost, no duplicated address', async () => {
  const a = new ServiceAllocator();
  a.setPools(poolsFrom({ name: 'p', addresses: ['192.0.2.0/29'] }));
  const h = harness(a);
  h.api.put(svc('ns', 'a'));
  h.api.put(svc('ns', 'b'));
  // Our cache lags: just before our first write for ns/a lands, its owner asks for a specific address.
  let raced = false;
  h.api.beforeWrite = (key) => {
    if (key !== 'ns/a' || raced) return;
    raced = true;
    h.api.edit('ns/a', (s) => {
      s.metadata = { ...s.metadata, annotations: { 'metallb.io/loadBalancerIPs': '192.0.2.5' } };
    });
  };
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  assert.ok(raced);
  assert.deepEqual(ips(h.api.store.get('ns/a')), ['192.0.2.5'], 'the fresh copy was converged');
  assert.equal(h.api.store.get('ns/a')?.metadata?.annotations?.['metallb.io/loadBalancerIPs'], '192.0.2.5', "the owner's edit is kept");
  assert.equal(h.api.store.get('ns/a')?.metadata?.annotations?.[POOL_ANNOTATION], 'p');
  const bIP = ips(h.api.store.get('ns/b'))[0];
  assert.ok(bIP && bIP !== '192.0.2.5');
  // The allocator holds exactly what the API shows: .5 for a, b's address for b; the address a had first is free.
  const stats = a.poolStats().find((s) => s.pool === 'p');
  assert.equal(stats?.ipv4InUse, 2);
  assert.equal(h.counters.errors, 1);
  assert.equal(h.api.reads, 1);
});

test('service reconcile: conflicts that persist hand the key back to the queue, which converges again', async () => {
  const fake: ServiceAllocatorLike = { handles: () => true, converge: () => ({ ingress: ['192.0.2.7'], pool: 'p', events: [], reprocessAll: false }), release: () => false };
  const h = harness(fake);
  h.api.put(svc('ns', 'a'));
  let conflicts = 4;
  h.api.beforeWrite = (key) => {
    if (conflicts-- > 0) h.api.edit(key, () => undefined);
  };
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  await new Promise((r) => setTimeout(r, 50));
  await settle(h);
  assert.deepEqual(ips(h.api.store.get('ns/a')), ['192.0.2.7']);
  assert.equal(h.counters.errors, 4);
  assert.equal(h.counters.updates, 1);
});

test('service reconcile: a refused write (403) turns service-status off once; Services wait; unblock writes them', async () => {
  const lines: string[] = [];
  const wlog = createLogger('test', 'none');
  const gates = new FeatureGates({ component: 'controller', registry: new Registry(), log: wlog, features: { 'service-status': 'x' } });
  const sw = gates.switch('service-status');
  const fake: ServiceAllocatorLike = { handles: () => true, converge: (s) => ({ ingress: [s.metadata?.name === 'a' ? '192.0.2.1' : '192.0.2.2'], pool: 'p', events: [], reprocessAll: false }), release: () => false };
  const h = harness(fake, new FakeApi(), sw);
  h.api.put(svc('ns', 'a'));
  h.api.put(svc('ns', 'b'));
  let refuse = true;
  h.api.beforeWrite = () => {
    if (refuse) {
      lines.push('refused');
      h.api.failNext = new ApiError(403, 'PUT services/status: 403 forbidden');
    }
  };
  h.queue.start();
  h.queue.add(REPROCESS_ALL);
  await settle(h);
  assert.equal(sw.enabled, false);
  // Both may have been in flight together (several workers); none is tried again while the feature is off.
  assert.ok(lines.length >= 1 && lines.length <= 2, `${lines.length} refused requests`);
  await new Promise((r) => setTimeout(r, 100));
  await settle(h);
  assert.ok(lines.length <= 2, 'no retries while off');
  assert.equal(h.rec.blockedCount, 2);
  assert.deepEqual(h.api.writes, []);
  refuse = false;
  sw.enable();
  h.rec.unblock();
  await settle(h);
  assert.deepEqual(ips(h.api.store.get('ns/a')), ['192.0.2.1']);
  assert.deepEqual(ips(h.api.store.get('ns/b')), ['192.0.2.2']);
  assert.equal(h.rec.blockedCount, 0);
});
