// The foundation tests' kinds of Service, as one scenario the RBAC and least-privilege tests run against a controller:
// pending until a pool exists, IPv4, IPv6, dual-stack, a shared IP, requested IPs, a pool chosen by annotation,
// deleted and freed for a waiting one; every address and pool annotation checked through the API.
import assert from 'node:assert/strict';
import type { Service } from '../../src/k8s/types.js';
import { poolYaml, serviceYaml, waitFor, type Env } from './helpers.js';

const annotation = (s: Service): string | undefined => s.metadata?.annotations?.['metallb.io/ip-allocated-from-pool'];

/** Runs in namespace `apps` (which must exist) with pools `main` and `tiny`, created here. */
export async function exerciseServices(env: Env): Promise<void> {
  // Pending while there is no pool; assigned once one appears.
  await env.apply(serviceYaml('apps', 'early'));
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(await env.ips('apps', 'early'), []);
  await env.apply([poolYaml('main', ['192.0.2.0/27', '2001:db8::/120']), poolYaml('tiny', ['203.0.113.10/32'], '  autoAssign: false\n')].join('---\n'));
  const [early] = await env.waitIPs('apps', 'early', 1, 30_000);
  assert.match(early!, /^192\.0\.2\./);
  // IPv4, IPv6, dual-stack.
  await env.apply([serviceYaml('apps', 'v4'), serviceYaml('apps', 'v6', { family: 'v6' }), serviceYaml('apps', 'dual', { family: 'dual' })].join('---\n'));
  assert.match((await env.waitIPs('apps', 'v4', 1))[0]!, /^192\.0\.2\./);
  assert.match((await env.waitIPs('apps', 'v6', 1))[0]!, /^2001:db8::/);
  const dual = await env.waitIPs('apps', 'dual', 2);
  assert.match(dual[0]!, /^192\.0\.2\./);
  assert.match(dual[1]!, /^2001:db8::/);
  // Shared IP and requested IPs (annotation and spec.loadBalancerIP).
  const share = { 'metallb.io/allow-shared-ip': 'k', 'metallb.io/loadBalancerIPs': '192.0.2.20' };
  await env.apply([serviceYaml('apps', 'share-a', { annotations: share, ports: [80] }), serviceYaml('apps', 'share-b', { annotations: share, ports: [443] }), serviceYaml('apps', 'asked', { loadBalancerIP: '192.0.2.25' })].join('---\n'));
  assert.deepEqual(await env.waitIPs('apps', 'share-a'), ['192.0.2.20']);
  assert.deepEqual(await env.waitIPs('apps', 'share-b'), ['192.0.2.20']);
  assert.deepEqual(await env.waitIPs('apps', 'asked'), ['192.0.2.25']);
  // The pool annotation picks the pool; a second Service of that full pool waits, and gets the address once the
  // first is deleted.
  const pin = { 'metallb.io/address-pool': 'tiny' };
  await env.apply(serviceYaml('apps', 'pinned', { annotations: pin }));
  assert.deepEqual(await env.waitIPs('apps', 'pinned'), ['203.0.113.10']);
  await env.apply(serviceYaml('apps', 'waiting', { annotations: pin }));
  // A new configuration reports lasting failures again: the repeated AllocationFailed bumps the Event's count.
  const failedCount = async (): Promise<number> => {
    const list = await env.api.get<{ items: { reason: string; count?: number; involvedObject: { name: string } }[] }>('/api/v1/namespaces/apps/events');
    return list.items.find((e) => e.reason === 'AllocationFailed' && e.involvedObject.name === 'waiting')?.count ?? 0;
  };
  await waitFor('AllocationFailed for waiting', async () => (await failedCount()) >= 1);
  await env.apply(poolYaml('spare', ['198.51.100.0/30'], '  autoAssign: false\n'));
  await waitFor('AllocationFailed counted twice', async () => (await failedCount()) >= 2);
  assert.deepEqual(await env.ips('apps', 'waiting'), []);
  await env.kc(['delete', 'service', '-n', 'apps', 'pinned']);
  assert.deepEqual(await env.waitIPs('apps', 'waiting', 1, 30_000), ['203.0.113.10']);
  // Every address and pool annotation arrived through the status update.
  const expected: Record<string, string> = { early: 'main', v4: 'main', v6: 'main', dual: 'main', 'share-a': 'main', 'share-b': 'main', asked: 'main', waiting: 'tiny' };
  for (const [name, pool] of Object.entries(expected)) {
    const s = await waitFor(`${name} annotated`, async () => {
      const svc = await env.svc('apps', name);
      return annotation(svc) === pool ? svc : undefined;
    });
    assert.equal(annotation(s), pool);
  }
}

