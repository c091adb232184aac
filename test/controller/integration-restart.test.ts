// Integration: controller restart keeps every address (no churn); API server restart (--data-file) is survived.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Service } from '../../src/k8s/types.js';
import { startDevServer, type DevServerHandle } from '../helpers/devserver.js';
import { poolYaml, serviceYaml, startController, startEnv, waitFor, type ControllerHandle, type Env } from './helpers.js';

let env: Env;
let ctl: ControllerHandle | undefined;
let dir: string;
let srv2: DevServerHandle | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'metallb-ctl-restart-'));
  env = await startEnv({ dir, dataFile: join(dir, 'data.json'), nodePortRange: '1024-65535' });
  await env.apply(poolYaml('main', ['192.0.2.0/24']));
  await env.kc(['create', 'namespace', 'apps']);
});

after(async () => {
  await ctl?.stop();
  await srv2?.stop();
  await env?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function listApps(): Promise<Map<string, { ips: string[]; rv: string }>> {
  const list = await env.api.get<{ items: Service[] }>('/api/v1/namespaces/apps/services');
  return new Map(list.items.map((s) => [s.metadata!.name!, { ips: (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? ''), rv: s.metadata!.resourceVersion! }]));
}

test('controller restart: no address changes, no writes to assigned services, new ones get free addresses', async () => {
  ctl = await startController(env.kubeconfig);
  const names = Array.from({ length: 30 }, (_, i) => `s${String(i).padStart(2, '0')}`);
  await env.apply(names.map((n) => serviceYaml('apps', n)).join('---\n'));
  const before1 = await waitFor('30 services assigned', async () => {
    const m = await listApps();
    return [...m.values()].filter((v) => v.ips.length === 1).length === 30 ? m : undefined;
  });
  // Let the controller's own follow-up writes (annotation after status) settle.
  await waitFor('annotations written', async () => {
    const list = await env.api.get<{ items: Service[] }>('/api/v1/namespaces/apps/services');
    return list.items.every((s) => s.metadata?.annotations?.['metallb.io/ip-allocated-from-pool'] === 'main');
  });
  const assigned = await listApps();
  const t = Date.now();
  assert.equal(await ctl.stop(), 0, 'SIGTERM exits 0');
  assert.ok(Date.now() - t < 5000, 'promptly');

  // While it is down: new services appear (listed first by name), two old ones are deleted.
  await env.apply(['a-new1', 'a-new2', 'a-new3'].map((n) => serviceYaml('apps', n)).join('---\n'));
  await env.kc(['delete', 'service', '-n', 'apps', 's03', 's07']);

  ctl = await startController(env.kubeconfig);
  await waitFor('new services assigned', async () => {
    const m = await listApps();
    return ['a-new1', 'a-new2', 'a-new3'].every((n) => m.get(n)?.ips.length === 1) ? m : undefined;
  });
  const after1 = await listApps();
  for (const [name, v] of assigned) {
    if (name === 's03' || name === 's07') continue;
    assert.deepEqual(after1.get(name)?.ips, v.ips, `${name} kept its address`);
    assert.equal(after1.get(name)?.rv, v.rv, `${name} was not written to`);
  }
  const old = new Set([...before1.entries()].filter(([n]) => n !== 's03' && n !== 's07').map(([, v]) => v.ips[0]));
  for (const n of ['a-new1', 'a-new2', 'a-new3']) assert.ok(!old.has(after1.get(n)!.ips[0]), `${n} got an address nobody else holds`);
  const all = [...after1.values()].map((v) => v.ips[0]);
  assert.equal(new Set(all).size, all.length, 'no duplicates');
});

test('API server restart with --data-file: watches resume, the controller keeps working', async () => {
  assert.ok(ctl, 'controller from the previous test');
  const port = Number(new URL(env.srv.url).port);
  const beforeRestart = await listApps();
  await env.srv.kill('SIGTERM');
  srv2 = await startDevServer({ dir, dataFile: join(dir, 'data.json'), port, logLevel: 'warn', nodePortRange: '1024-65535' });
  // The controller's watches end with the old server. Whether it then sees a failed request or resumes at once
  // depends on how fast the new server listens; either way a Service created now must reach it through a watch.
  await env.apply(serviceYaml('apps', 'after-restart'));
  const [ip] = await env.waitIPs('apps', 'after-restart', 1, 30_000);
  const nowApps = await listApps();
  for (const [name, v] of beforeRestart) assert.deepEqual(nowApps.get(name)?.ips, v.ips, `${name} unchanged`);
  const others = new Set([...beforeRestart.values()].map((v) => v.ips[0]));
  assert.ok(!others.has(ip), 'a free address');
  await env.kc(['delete', 'service', '-n', 'apps', 'a-new1']);
  await waitFor('metrics still served', async () => {
    const r = await fetch(`http://127.0.0.1:${ctl!.ports.metrics}/metrics`);
    return r.status === 200;
  });
  assert.equal(ctl!.child.exitCode, null);
});

test('restart with an invalid config: nothing is touched until it is fixed, readyz says why', async () => {
  assert.ok(ctl);
  await ctl.stop();
  const before = await listApps();
  await env.apply(poolYaml('zz-overlap', ['192.0.2.128/25']));
  ctl = await startController(env.kubeconfig, { waitReady: false });
  const ev = await waitFor('InvalidConfiguration event', async () => {
    const list = await env.api.get<{ items: { reason: string; involvedObject: { name: string } }[] }>('/api/v1/namespaces/metallb-system/events');
    return list.items.find((e) => e.reason === 'InvalidConfiguration' && e.involvedObject.name === 'zz-overlap');
  });
  assert.ok(ev);
  const ready = await fetch(`http://127.0.0.1:${ctl.ports.health}/readyz`);
  assert.equal(ready.status, 503);
  assert.match(await ready.text(), /no valid configuration/);
  await env.apply(serviceYaml('apps', 'while-invalid'));
  await new Promise((r) => setTimeout(r, 1500));
  const during = await listApps();
  for (const [name, v] of before) assert.deepEqual(during.get(name), v, `${name} untouched (same resourceVersion)`);
  assert.deepEqual(during.get('while-invalid')?.ips, [], 'no allocation without a valid config');
  await env.kc(['delete', 'ipaddresspool', '-n', 'metallb-system', 'zz-overlap']);
  await env.waitIPs('apps', 'while-invalid');
  const after2 = await listApps();
  for (const [name, v] of before) assert.deepEqual(after2.get(name)?.ips, v.ips, `${name} kept its address`);
});
