import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../src/k8s/client.js';
import { LeaderElector, type LeaseObject, type LeaseSpec, type LeaseStore } from '../../src/k8s/leader-election.js';
import { createLogger } from '../../src/log.js';

const log = createLogger('test', 'none');

/** An in-memory Lease with resourceVersion checks, like the API server. */
class MemStore implements LeaseStore {
  obj: LeaseObject | undefined;
  rv = 0;
  down = false;
  async get(): Promise<LeaseObject | undefined> {
    if (this.down) throw new ApiError(0, 'connection refused');
    return this.obj ? structuredClone(this.obj) : undefined;
  }
  async create(spec: LeaseSpec): Promise<LeaseObject> {
    if (this.down) throw new ApiError(0, 'connection refused');
    if (this.obj) throw new ApiError(409, 'exists', 'AlreadyExists');
    this.obj = { metadata: { name: 'l', namespace: 'ns', resourceVersion: String(++this.rv) }, spec };
    return structuredClone(this.obj);
  }
  async update(o: LeaseObject): Promise<LeaseObject> {
    if (this.down) throw new ApiError(0, 'connection refused');
    if (!this.obj || o.metadata.resourceVersion !== this.obj.metadata.resourceVersion) throw new ApiError(409, 'conflict', 'Conflict');
    this.obj = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.obj);
  }
}

function elector(store: LeaseStore, id: string, clock: { t: number }, cb: { started?: () => void; stopped?: () => void } = {}) {
  return new LeaderElector(store, {
    identity: id,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    onStartedLeading: cb.started ?? (() => undefined),
    onStoppedLeading: cb.stopped ?? (() => undefined),
    log,
    now: () => clock.t,
  });
}

test('leader election: the first candidate acquires; a second cannot while the lease is renewed', async () => {
  const store = new MemStore();
  const clock = { t: 1_000_000 };
  const a = elector(store, 'a', clock);
  const b = elector(store, 'b', clock);
  assert.equal(await a.tryAcquireOrRenew(), true);
  assert.equal(store.obj?.spec?.holderIdentity, 'a');
  assert.equal(store.obj?.spec?.leaseTransitions, 0);
  assert.equal(await b.tryAcquireOrRenew(), false, 'b sees the lease for the first time');
  clock.t += 10_000;
  assert.equal(await a.tryAcquireOrRenew(), true, 'a renews');
  clock.t += 10_000;
  assert.equal(await b.tryAcquireOrRenew(), false, 'renewed 10 s ago (as b observed it): still valid');
});

test('leader election: a lease not renewed for its duration (on the observer clock) is taken over', async () => {
  const store = new MemStore();
  const clock = { t: 5_000 };
  const a = elector(store, 'a', clock);
  const b = elector(store, 'b', clock);
  assert.equal(await a.tryAcquireOrRenew(), true);
  assert.equal(await b.tryAcquireOrRenew(), false);
  clock.t += 14_000;
  assert.equal(await b.tryAcquireOrRenew(), false);
  clock.t += 2_000;
  assert.equal(await b.tryAcquireOrRenew(), true, 'expired: b takes over');
  assert.equal(store.obj?.spec?.holderIdentity, 'b');
  assert.equal(store.obj?.spec?.leaseTransitions, 1);
  assert.equal(await a.tryAcquireOrRenew(), false, 'a lost it');
});

test('leader election: a released lease (empty holder) is taken at once', async () => {
  const store = new MemStore();
  const clock = { t: Date.now() };
  let started = 0;
  const a = new LeaderElector(store, { identity: 'a', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 20, onStartedLeading: () => started++, onStoppedLeading: () => undefined, log });
  a.start();
  for (let i = 0; i < 50 && !a.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(a.isLeader, true);
  assert.equal(started, 1);
  await a.stop();
  assert.equal(store.obj?.spec?.holderIdentity, undefined, 'released');
  assert.equal(store.obj?.spec?.leaseDurationSeconds, 1);
  const b = elector(store, 'b', clock);
  assert.equal(await b.tryAcquireOrRenew(), true);
});

test('leader election: a leader that cannot renew within the deadline steps down', async () => {
  const store = new MemStore();
  let stopped = 0;
  const a = new LeaderElector(store, { identity: 'a', leaseDurationMs: 300, renewDeadlineMs: 100, retryPeriodMs: 20, onStartedLeading: () => undefined, onStoppedLeading: () => stopped++, log });
  a.start();
  for (let i = 0; i < 50 && !a.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(a.isLeader, true);
  store.down = true;
  for (let i = 0; i < 50 && a.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(a.isLeader, false);
  assert.equal(stopped, 1);
  await a.stop();
});

test('leader election: concurrent candidates, exactly one wins (optimistic concurrency)', async () => {
  const store = new MemStore();
  const clock = { t: 1 };
  const results = await Promise.all(['a', 'b', 'c', 'd'].map((id) => elector(store, id, clock).tryAcquireOrRenew()));
  assert.equal(results.filter(Boolean).length, 1);
});
