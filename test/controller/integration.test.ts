// Integration: the dev API server and `metallb controller` as separate processes, driven with kubectl and the client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Secret } from '../../src/k8s/types.js';
import { NS, metricValue, metricsText, poolYaml, serviceYaml, sleep, startController, startEnv, waitFor, type ControllerHandle, type Env } from './helpers.js';

let env: Env;
let ctl: ControllerHandle;

before(async () => {
  env = await startEnv({ serviceCIDRv6: 'fd00:10:96::/112', nodePortRange: '1024-65535' });
  await env.apply(
    [
      poolYaml('main', ['192.0.2.0/27', '2001:db8::/120']),
      poolYaml('tiny', ['203.0.113.10/32'], '  autoAssign: false\n'),
      poolYaml('moving', ['198.51.100.0/30'], '  autoAssign: false\n'),
    ].join('---\n'),
  );
  await env.kc(['create', 'namespace', 'apps']);
  ctl = await startController(env.kubeconfig);
});

after(async () => {
  await ctl?.stop();
  await env?.close();
});

const events = async (ns: string, name: string): Promise<{ type: string; reason: string; message: string; count?: number; source?: { component?: string }; involvedObject?: { uid?: string } }[]> => {
  const list = await env.api.get<{ items: { type: string; reason: string; message: string; involvedObject: { name: string; kind: string; uid?: string } }[] }>(`/api/v1/namespaces/${ns}/events`);
  return list.items.filter((e) => e.involvedObject.name === name);
};

test('IPv4, IPv6 and dual-stack services get addresses, the pool annotation, and an IPAllocated event', async () => {
  await env.apply([serviceYaml('apps', 'v4'), serviceYaml('apps', 'v6', { family: 'v6' }), serviceYaml('apps', 'dual', { family: 'dual' })].join('---\n'));
  const v4 = await env.waitIPs('apps', 'v4', 1);
  assert.match(v4[0]!, /^192\.0\.2\./);
  const v6 = await env.waitIPs('apps', 'v6', 1);
  assert.match(v6[0]!, /^2001:db8::/);
  const dual = await env.waitIPs('apps', 'dual', 2);
  assert.match(dual[0]!, /^192\.0\.2\./, 'v4 first');
  assert.match(dual[1]!, /^2001:db8::/);
  const s = await env.svc('apps', 'v4');
  assert.equal(s.metadata?.annotations?.['metallb.io/ip-allocated-from-pool'], 'main');
  const evs = await waitFor('IPAllocated event', async () => {
    const e = await events('apps', 'v4');
    return e.some((x) => x.reason === 'IPAllocated') ? e : undefined;
  });
  const ev = evs.find((x) => x.reason === 'IPAllocated')!;
  assert.equal(ev.type, 'Normal');
  assert.equal(ev.source?.component, 'metallb-controller');
  assert.equal(ev.involvedObject?.uid, s.metadata?.uid);
  const describe = await env.kc(['describe', 'service', '-n', 'apps', 'v4']);
  assert.match(describe, /IPAllocated\s+.*metallb-controller\s+Assigned IP/);
});

test('allow-shared-ip services share an address; loadBalancerIPs requests a given one', async () => {
  const share = { 'metallb.io/allow-shared-ip': 'k1', 'metallb.io/loadBalancerIPs': '192.0.2.20' };
  await env.apply([serviceYaml('apps', 'share-a', { annotations: share, ports: [80] }), serviceYaml('apps', 'share-b', { annotations: share, ports: [443] })].join('---\n'));
  assert.deepEqual(await env.waitIPs('apps', 'share-a'), ['192.0.2.20']);
  assert.deepEqual(await env.waitIPs('apps', 'share-b'), ['192.0.2.20']);
  // Same port on the same address is a conflict: the third one stays without an address and gets a Warning.
  await env.apply(serviceYaml('apps', 'share-c', { annotations: share, ports: [80] }));
  const ev = await waitFor('AllocationFailed for share-c', async () => (await events('apps', 'share-c')).find((e) => e.reason === 'AllocationFailed'));
  assert.equal(ev.type, 'Warning');
  assert.deepEqual(await env.ips('apps', 'share-c'), []);
  await env.kc(['delete', 'service', '-n', 'apps', 'share-c']);
});

test('an updated service follows its new request (annotation changed, then removed)', async () => {
  await env.apply(serviceYaml('apps', 'req', { annotations: { 'metallb.io/loadBalancerIPs': '192.0.2.25' } }));
  assert.deepEqual(await env.waitIPs('apps', 'req'), ['192.0.2.25']);
  await env.kc(['annotate', 'service', '-n', 'apps', 'req', '--overwrite', 'metallb.io/loadBalancerIPs=192.0.2.26']);
  await waitFor('req moved to .26', async () => (await env.ips('apps', 'req'))[0] === '192.0.2.26');
  // Without a request the service keeps what it has.
  await env.kc(['annotate', 'service', '-n', 'apps', 'req', 'metallb.io/loadBalancerIPs-']);
  await sleep(1000);
  assert.deepEqual(await env.ips('apps', 'req'), ['192.0.2.26']);
  await env.kc(['delete', 'service', '-n', 'apps', 'req']);
});

test('a deleted service frees its address for a pending one; a type change releases', async () => {
  const pin = { 'metallb.io/address-pool': 'tiny' };
  await env.apply(serviceYaml('apps', 'first', { annotations: pin }));
  assert.deepEqual(await env.waitIPs('apps', 'first'), ['203.0.113.10']);
  await env.apply(serviceYaml('apps', 'second', { annotations: pin }));
  await waitFor('AllocationFailed for second', async () => (await events('apps', 'second')).find((e) => e.reason === 'AllocationFailed'));
  await env.kc(['delete', 'service', '-n', 'apps', 'first']);
  assert.deepEqual(await env.waitIPs('apps', 'second'), ['203.0.113.10']);
  // LoadBalancer -> ClusterIP: the controller clears status and annotation, the address is free again.
  await env.kc(['patch', 'service', '-n', 'apps', 'second', '--type=merge', '-p', '{"spec":{"type":"ClusterIP"}}']);
  await env.waitIPs('apps', 'second', 0);
  await waitFor('annotation removed', async () => (await env.svc('apps', 'second')).metadata?.annotations?.['metallb.io/ip-allocated-from-pool'] === undefined);
  await env.apply(serviceYaml('apps', 'third', { annotations: pin }));
  assert.deepEqual(await env.waitIPs('apps', 'third'), ['203.0.113.10']);
  await env.kc(['delete', 'service', '-n', 'apps', 'second', 'third']);
});

test('pool changes: a service still allowed never moves; a removed range reallocates', async () => {
  const pin = { 'metallb.io/address-pool': 'moving' };
  await env.apply(serviceYaml('apps', 'mover', { annotations: pin }));
  const [first] = await env.waitIPs('apps', 'mover');
  assert.equal(first, '198.51.100.0');
  await env.apply(poolYaml('moving', ['198.51.100.8/30', '198.51.100.0/30'], '  autoAssign: false\n'));
  await sleep(1500);
  assert.deepEqual(await env.ips('apps', 'mover'), ['198.51.100.0'], 'still allowed: not moved');
  await env.apply(poolYaml('moving', ['198.51.100.8/30'], '  autoAssign: false\n'));
  await waitFor('mover reallocated', async () => (await env.ips('apps', 'mover'))[0] === '198.51.100.8');
});

test('namespace labels feed namespaceSelectors: a label change reconfigures without moving existing services', async () => {
  await env.apply(poolYaml('team', ['203.0.113.64/28'], '  serviceAllocation:\n    namespaceSelectors:\n    - matchLabels: {team: blue}\n'));
  await env.kc(['create', 'namespace', 'blue']);
  await env.apply(serviceYaml('blue', 'early'));
  const [early] = await env.waitIPs('blue', 'early');
  assert.match(early!, /^192\.0\.2\./, 'namespace not selected yet: a plain pool');
  const changes = (): number => ctl.lines().filter((l) => String(l.msg).includes('configuration changed')).length;
  const before = changes();
  await env.kc(['label', 'namespace', 'blue', 'team=blue']);
  await waitFor('config reparsed after the label change', () => changes() > before);
  await env.apply(serviceYaml('blue', 'late'));
  const [late] = await env.waitIPs('blue', 'late');
  assert.match(late!, /^203\.0\.113\.6[4-9]|^203\.0\.113\.7\d/, 'selected namespace: the team pool');
  assert.deepEqual(await env.ips('blue', 'early'), [early], 'the existing service did not move');
});

test('invalid config is rejected: previous kept, Warning event on the newcomer, config_stale_bool 1; fixed -> 0', async () => {
  // "aa-bad" sorts before "main" by name, yet the overlap is reported on it: the newer object is the one in the
  // wrong. creationTimestamp has second precision, so make sure it is later than main's.
  await sleep(1100);
  await env.apply(poolYaml('aa-bad', ['192.0.2.16/28']));
  const ev = await waitFor('InvalidConfiguration event', async () => {
    const list = await env.api.get<{ items: { type: string; reason: string; message: string; involvedObject: { name: string; kind: string } }[] }>(`/api/v1/namespaces/${NS}/events`);
    return list.items.find((e) => e.reason === 'InvalidConfiguration' && e.involvedObject.name === 'aa-bad');
  });
  assert.equal(ev.type, 'Warning');
  assert.equal(ev.involvedObject.kind, 'IPAddressPool');
  assert.match(ev.message, /overlap/);
  await waitFor('stale=1', async () => metricValue(await metricsText(ctl), 'metallb_k8s_client_config_stale_bool') === 1);
  const state = await waitFor('ConfigurationState Invalid', async () => {
    const cs = await env.api.get<{ status?: { result?: string; errorSummary?: string; conditions?: { type: string; status: string; reason: string }[] } }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/configurationstates/controller`);
    return cs.status?.result === 'Invalid' ? cs : undefined;
  });
  assert.match(state.status?.errorSummary ?? '', /aa-bad.*overlap/);
  assert.deepEqual(state.status?.conditions?.map((c) => [c.type, c.status, c.reason]), [['poolReconcilerValid', 'False', 'ConfigurationError']]);
  // The previous config is still in force: a new service gets an address from "main", none from "bad".
  await env.apply(serviceYaml('apps', 'during-bad'));
  const [ip] = await env.waitIPs('apps', 'during-bad');
  assert.match(ip!, /^192\.0\.2\./);
  const text = await metricsText(ctl);
  assert.equal(metricValue(text, 'metallb_allocator_addresses_total', 'pool="aa-bad"'), undefined, 'the rejected pool is not in use');
  assert.ok(ctl.lines().some((l) => l.level === 'error' && String(l.msg).includes('invalid configuration rejected') && l.object === `IPAddressPool ${NS}/aa-bad`));
  await env.kc(['delete', 'ipaddresspool', '-n', NS, 'aa-bad']);
  await waitFor('stale=0', async () => metricValue(await metricsText(ctl), 'metallb_k8s_client_config_stale_bool') === 0);
  await waitFor('ConfigurationState Valid', async () => {
    const cs = await env.api.get<{ status?: { result?: string } }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/configurationstates/controller`);
    return cs.status?.result === 'Valid';
  });
});

test('a service with garbage annotations gets a Warning event, the controller keeps working', async () => {
  await env.apply(serviceYaml('apps', 'garbage', { annotations: { 'metallb.io/loadBalancerIPs': 'not-an-ip,,,', 'metallb.io/address-pool': '' } }));
  const ev = await waitFor('a Warning event on garbage', async () => (await events('apps', 'garbage')).find((e) => e.type === 'Warning'));
  assert.ok(ev.message.length > 0);
  assert.deepEqual(await env.ips('apps', 'garbage'), []);
  await env.apply(serviceYaml('apps', 'after-garbage'));
  await env.waitIPs('apps', 'after-garbage');
  assert.equal(ctl.child.exitCode, null);
});

test('metrics endpoint: MetalLB metric names and values', async () => {
  // Scraped right after a Service shows its address: the pool gauges must already count it (they used to lag by
  // the pool-status debounce).
  await env.apply(serviceYaml('apps', 'metrics-probe'));
  await env.waitIPs('apps', 'metrics-probe');
  const text = await metricsText(ctl);
  assert.ok((metricValue(text, 'metallb_allocator_addresses_in_use_total', 'pool="main"') ?? 0) > 0, 'in-use gauge counts the addresses in status');
  assert.equal(metricValue(text, 'metallb_allocator_ipv4_addresses_total', 'pool="main"'), 32);
  assert.equal(metricValue(text, 'metallb_allocator_ipv6_addresses_total', 'pool="main"'), 256);
  assert.equal(metricValue(text, 'metallb_allocator_addresses_total', 'pool="main"'), 288);
  assert.ok((metricValue(text, 'metallb_allocator_ipv6_addresses_in_use_total', 'pool="main"') ?? 0) >= 2);
  assert.ok((metricValue(text, 'metallb_k8s_client_updates_total') ?? 0) > 0);
  assert.equal(metricValue(text, 'metallb_k8s_client_update_errors_total') !== undefined, true);
  assert.equal(metricValue(text, 'metallb_k8s_client_config_loaded_bool'), 1);
  const ready = await fetch(`http://127.0.0.1:${ctl.ports.health}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${ctl.ports.health}/healthz`)).status, 200);
});

test('IPAddressPool status counters are written through the status subresource', async () => {
  await waitFor('status of pool tiny', async () => {
    const p = await env.api.get<{ status?: Record<string, number> }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/ipaddresspools/tiny`);
    return p.status && p.status.assignedIPv4 === 0 && p.status.availableIPv4 === 1 ? p : undefined;
  });
  const main = await env.api.get<{ status?: Record<string, number> }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/ipaddresspools/main`);
  assert.ok((main.status?.assignedIPv4 ?? 0) > 0);
  assert.equal((main.status?.assignedIPv4 ?? 0) + (main.status?.availableIPv4 ?? 0), 32);
});

test('memberlist secret is created with a 22-character key', async () => {
  const s = await waitFor('memberlist secret', () => env.api.get<Secret>(`/api/v1/namespaces/${NS}/secrets/memberlist`).catch(() => undefined));
  const key = Buffer.from(s.data?.secretkey ?? '', 'base64').toString('utf8');
  assert.equal(key.length, 22);
  assert.equal(Buffer.from(key, 'base64').length, 16);
});
