// Randomized property test: thousands of add / remove / update / setPools / reprocess steps over small pools
// (so exhaustion and sharing happen), checking the allocator's invariants after every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pool } from '../../src/config/types.js';
import type { Service } from '../../src/k8s/types.js';
import { parseIP, type IP } from '../../src/net/ip.js';
import { ServiceAllocator, restoreOrder, viewService, type ConvergeResult } from '../../src/allocator/index.js';
import { poolAdmits, poolHolds } from '../../src/allocator/pool-set.js';
import { applyResult, pool, svc, type SvcOpts } from './helpers.js';
import { seededRandom } from '../helpers/random.js';


const CONFIGS: (() => Pool[])[] = [
  () => [pool('a', ['10.0.0.0/30']), pool('b', ['10.0.1.254-10.0.2.1'], { avoidBuggyIPs: true }), pool('d', ['10.0.3.0/31', 'fd00::/127'])],
  () => [pool('a', ['10.0.0.0/31']), pool('ns', ['10.0.0.2/31'], { namespaces: ['prod'], priority: 1 }), pool('web', ['10.0.3.0/31', 'fd00::/126'], { serviceSelectors: [{ app: 'web' }] })],
  () => [pool('renamed', ['10.0.0.0/30']), pool('manual', ['10.0.1.254-10.0.2.1'], { autoAssign: false }), pool('d', ['10.0.3.0/31', 'fd00::/127'], { priority: 2 })],
  () => [pool('a', ['10.0.0.0/29'], { avoidBuggyIPs: true }), pool('v6', ['fd00::/126']), pool('empty-ns', ['10.0.3.0/31'], { namespaces: [], restrictsNamespaces: true })],
  () => [pool('lo', ['10.0.0.0/31']), pool('hi', ['10.0.0.2/31']), pool('d', ['10.0.3.0/31', 'fd00::/127'])],
  () => [],
];

const IP_CHOICES = ['10.0.0.0', '10.0.0.1', '10.0.0.3', '10.0.2.0', '10.0.1.255', '10.0.3.1', 'fd00::1', '192.168.0.1'];

function randomService(rnd: () => number, name: string): Service {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const o: SvcOpts = {
    ns: pick(['default', 'prod', 'dev']),
    ports: pick([['TCP/80'], ['TCP/443'], ['UDP/53'], ['TCP/53'], ['TCP/80', 'TCP/443'], []]),
    labels: rnd() < 0.3 ? { app: 'web' } : {},
  };
  if (rnd() < 0.5) o.share = pick(['k1', 'k2']);
  if (rnd() < 0.2) o.local = { app: pick(['x', 'y']) };
  const fam = rnd();
  if (fam < 0.15) o.families = ['IPv6'];
  else if (fam < 0.25) o.policy = 'PreferDualStack';
  else if (fam < 0.35) o.policy = 'RequireDualStack';
  const req = rnd();
  if (req < 0.12) o.ip = pick(IP_CHOICES);
  else if (req < 0.18) o.pool = pick(['a', 'b', 'd', 'manual', 'hi', 'nope']);
  if (rnd() < 0.05) o.type = 'NodePort';
  return svc(name, o);
}

interface World {
  a: ServiceAllocator;
  pools: Pool[];
  services: Map<string, Service>;
}

const keyOf = (s: Service): string => `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`;
const ipsOf = (s: Service): string[] => (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter((x) => x !== '');

function converge(w: World, s: Service): ConvergeResult {
  const r = w.a.converge(s);
  w.services.set(keyOf(s), applyResult(s, r));
  return r;
}

function reprocess(w: World): void {
  for (let round = 0; round < 10; round++) {
    let again = false;
    for (const s of restoreOrder([...w.services.values()])) if (converge(w, s).reprocessAll) again = true;
    if (!again) return;
  }
  assert.fail('reprocess did not settle');
}

function checkInvariants(w: World, where: string): void {
  const byIP = new Map<string, Service[]>();
  for (const s of w.services.values()) {
    const v = viewService(s);
    const ips = ipsOf(s);
    const held = w.a.allocator.holding(v.key);
    assert.deepEqual([...(held?.texts ?? [])], ips, `${where}: status vs memory of ${v.key}`);
    if (held) assert.equal(s.metadata?.annotations?.['metallb.io/ip-allocated-from-pool'], held.pool);
    if (ips.length === 0) continue;
    assert.equal(v.type, 'LoadBalancer', `${where}: ${v.key} not LB but holds ${ips}`);
    const parsed = ips.map((t) => parseIP(t)!) as IP[];
    const p = w.pools.find((pl) => parsed.every((ip) => poolHolds(pl, ip)));
    assert.ok(p, `${where}: ${v.key} holds ${ips} outside every pool`);
    assert.equal(s.metadata?.annotations?.['metallb.io/ip-allocated-from-pool'], p.name, `${where}: pool annotation of ${v.key}`);
    assert.ok(poolAdmits(p, v.request), `${where}: pool ${p.name} does not admit ${v.key}`);
    if (v.desiredPool !== '') assert.equal(p.name, v.desiredPool, `${where}: ${v.key} not in requested pool`);
    if (v.requested.kind === 'ips') assert.deepEqual([...ips].sort(), [...v.requested.texts].sort(), `${where}: ${v.key} requested IPs`);
    if (ips.length === 2) assert.notEqual(parsed[0]!.family, parsed[1]!.family);
    if (v.family !== 'dual') assert.equal(ips.length, 1);
    if (v.policy === 'RequireDualStack') assert.equal(ips.length, 2);
    for (const ip of ips) byIP.set(ip, [...(byIP.get(ip) ?? []), s]);
  }
  // No address held by two services that may not share it.
  for (const [ip, users] of byIP) {
    if (users.length < 2) continue;
    const views = users.map(viewService);
    const first = views[0]!.request;
    const seen = new Set<string>();
    for (const v of views) {
      assert.notEqual(v.request.sharing, '', `${where}: ${ip} shared by ${views.map((x) => x.key)} without a key`);
      assert.equal(v.request.sharing, first.sharing, `${where}: ${ip} sharing keys differ`);
      assert.equal(v.request.backend, first.backend, `${where}: ${ip} backend keys differ`);
      for (const port of v.request.ports) {
        assert.ok(!seen.has(port), `${where}: ${ip} port ${port} used twice by ${views.map((x) => x.key)}`);
        seen.add(port);
      }
    }
  }
  // Pools never over-allocated; in-use counts match the statuses.
  for (const st of w.a.poolStats()) {
    assert.ok(BigInt(st.ipv4InUse) <= st.ipv4Total && BigInt(st.ipv6InUse) <= st.ipv6Total, `${where}: ${st.pool} over-allocated`);
    const p = w.pools.find((x) => x.name === st.pool)!;
    const distinct = [...byIP.keys()].filter((t) => poolHolds(p, parseIP(t)!));
    assert.equal(st.ipv4InUse + st.ipv6InUse, distinct.length, `${where}: ${st.pool} in-use count`);
  }
  // Idempotent: converging everything again changes nothing and says nothing.
  // (The first re-converge may re-word a failure whose cause changed since, e.g. one more service on an
  // address it asked for; the second one is silent.)
  for (const round of [1, 2]) {
    for (const s of w.services.values()) {
      const r = w.a.converge(s);
      assert.deepEqual(r.ingress, ipsOf(s), `${where}: converge not idempotent for ${keyOf(s)}`);
      const unexpected = round === 1 ? r.events.filter((e) => e.type !== 'Warning') : r.events;
      assert.deepEqual(unexpected, [], `${where}: events on re-converge ${round} of ${keyOf(s)}: ${JSON.stringify(r.events)}`);
      assert.equal(r.reprocessAll, false);
    }
  }
  // Restore: a fresh allocator fed the statuses in restoreOrder gives everybody the same addresses.
  const fresh = new ServiceAllocator();
  fresh.setPools(w.pools);
  const restored = new Map<string, Service>();
  let again = true;
  for (let pass = 0; again && pass < 5; pass++) {
    again = false;
    const list = pass === 0 ? [...w.services.values()] : [...restored.values()];
    for (const s of restoreOrder(list)) {
      const r = fresh.converge(s);
      if (r.reprocessAll) again = true;
      if (pass === 0 && ipsOf(s).length > 0) {
        assert.deepEqual(r.ingress.slice(0, ipsOf(s).length), ipsOf(s), `${where}: restore lost ${keyOf(s)}: ${JSON.stringify(r)}`);
      }
      restored.set(keyOf(s), applyResult(s, r));
    }
  }
  for (const [k, s] of restored) assert.deepEqual(ipsOf(s), ipsOf(w.services.get(k)!), `${where}: restore of ${k} differs`);
}

test('property: random add/remove/update/setPools sequences keep the invariants', () => {
  const SEQUENCES = 250;
  const STEPS = 40;
  let steps = 0;
  let shared = 0;
  let pending = 0;
  for (let seq = 0; seq < SEQUENCES; seq++) {
    const rnd = seededRandom(1000 + seq);
    const w: World = { a: new ServiceAllocator(), pools: CONFIGS[0]!(), services: new Map() };
    w.a.setPools(w.pools);
    let n = 0;
    for (let step = 0; step < STEPS; step++) {
      const op = rnd();
      const where = `seq ${seq} step ${step}`;
      const keys = [...w.services.keys()];
      if (op < 0.45 || keys.length === 0) {
        const s = randomService(rnd, `s${n++}`);
        if (converge(w, s).reprocessAll) reprocess(w);
      } else if (op < 0.6) {
        const k = keys[Math.floor(rnd() * keys.length)]!;
        w.services.delete(k);
        if (w.a.release(k)) reprocess(w);
      } else if (op < 0.8) {
        const k = keys[Math.floor(rnd() * keys.length)]!;
        const old = w.services.get(k)!;
        const next = randomService(rnd, old.metadata!.name!);
        // Keep the namespace (it is part of the key) and the status (it is what the Service holds).
        next.metadata!.namespace = old.metadata!.namespace!;
        if (old.status) next.status = old.status;
        if (converge(w, next).reprocessAll) reprocess(w);
      } else if (op < 0.9) {
        w.pools = CONFIGS[Math.floor(rnd() * CONFIGS.length)]!();
        w.a.setPools(w.pools);
        reprocess(w);
      } else {
        reprocess(w);
      }
      checkInvariants(w, where);
      steps++;
    }
    for (const s of w.services.values()) if (ipsOf(s).length === 0) pending++;
    const counts = new Map<string, number>();
    for (const s of w.services.values()) for (const ip of ipsOf(s)) counts.set(ip, (counts.get(ip) ?? 0) + 1);
    for (const c of counts.values()) if (c > 1) shared++;
  }
  assert.equal(steps, SEQUENCES * STEPS);
  // The generator must actually exercise exhaustion and sharing.
  assert.ok(shared > 20, `shared addresses seen: ${shared}`);
  assert.ok(pending > 20, `pending services seen: ${pending}`);
});
