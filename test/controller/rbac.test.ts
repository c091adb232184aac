// Integration: the controller inside MetalLB's own permissions. The dev API server enforces RBAC (HTTPS); the
// controller authenticates with a TokenRequest token of the `controller` ServiceAccount bound exactly as MetalLB's
// v0.13.11 and v0.15.3 manifests bind it, and as ours (deploy/manifests/rbac.yaml) does. Every kind of Service of the
// foundation tests gets its address and the pool annotation through one update of services/status; what the roles
// do not grant is turned off with one warning and metallb_controller_feature_enabled 0, and nothing fails in a loop.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tokenKubeconfig } from '../helpers/devserver.js';
import { metallbRbac, rbacObjectsOfManifest, toYamlStream, type RbacObject } from '../helpers/metallb-rbac.js';
import { NS, ROOT, metricValue, metricsText, poolYaml, serviceYaml, startController, startEnv, waitFor, type ControllerHandle, type Env } from './helpers.js';
import { exerciseServices } from './scenario.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const ALL_FEATURES = ['service-status', 'pool-status', 'configuration-state', 'events', 'memberlist-secret', 'webhook-certificate-secret', 'webhook-ca-bundle', 'legacy-configmap'];

interface Case {
  name: string;
  rbac: RbacObject[];
  /** Features the roles do not grant. */
  off: string[];
  /** Caches the roles allow listing but not watching (polled). */
  polled: string[];
}

const CASES: Case[] = [
  { name: 'MetalLB v0.13.11', rbac: metallbRbac('v0.13.11'), off: ['configuration-state', 'legacy-configmap', 'pool-status'], polled: ['bgppeers.metallb.io in metallb-system', 'nodes'] },
  { name: 'MetalLB v0.15.3', rbac: metallbRbac('v0.15.3'), off: ['legacy-configmap'], polled: ['bgppeers.metallb.io in metallb-system', 'nodes'] },
  { name: 'metallb-ts deploy/manifests', rbac: rbacObjectsOfManifest(join(ROOT, 'deploy', 'manifests', 'rbac.yaml')), off: [], polled: [] },
];

/** A dev API server with RBAC, the CRDs, the roles of `c`, and a kubeconfig with the controller's token. */
async function setup(c: Case): Promise<{ env: Env; kubeconfig: string }> {
  const env = await startEnv({ tls: true, serviceCIDRv6: 'fd00:10:96::/112', nodePortRange: '1024-65535' });
  cleanups.push(() => env.close());
  await env.apply(toYamlStream(c.rbac));
  await env.kc(['create', 'namespace', 'apps']);
  // MetalLB's controller Deployment (the owner of the memberlist Secret; its roles let it read this one only).
  await env.apply(`apiVersion: apps/v1
kind: Deployment
metadata: {name: controller, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: metallb}}
  template:
    metadata: {labels: {app: metallb}}
    spec: {serviceAccountName: controller, containers: [{name: c, image: quay.io/metallb/controller:v0.15.3}]}
`);
  const token = (await env.kc(['create', 'token', 'controller', '-n', NS, '--duration', '2h'])).trim();
  return { env, kubeconfig: tokenKubeconfig(env.srv, `controller-${c.name.replace(/\W+/g, '-')}`, token) };
}

for (const c of CASES) {
  test(`controller under ${c.name} RBAC: every kind of Service gets its address and pool annotation; ${c.off.length ? `${c.off.join(', ')} off` : 'every feature on'}`, async () => {
    const { env, kubeconfig } = await setup(c);
    const ctl: ControllerHandle = await startController(kubeconfig, { env: { METALLB_DEPLOYMENT: 'controller' } });
    cleanups.push(() => ctl.stop());
    await exerciseServices(env);

    const text = await metricsText(ctl);
    for (const f of ALL_FEATURES) {
      assert.equal(metricValue(text, 'metallb_controller_feature_enabled', `feature="${f}"`), c.off.includes(f) ? 0 : 1, `feature ${f}`);
    }
    assert.equal(metricValue(text, 'metallb_controller_feature_enabled', 'feature="leader-election"'), undefined, 'not used without --leader-elect');
    assert.equal(metricValue(text, 'metallb_k8s_client_update_errors_total'), 0);

    // The features the roles grant work; the others never wrote anything.
    const poolStatus = async (): Promise<Record<string, unknown> | undefined> =>
      (await env.api.get<{ status?: Record<string, unknown> }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/ipaddresspools/tiny`)).status;
    const state = async (): Promise<unknown> => env.api.get(`/apis/metallb.io/v1beta1/namespaces/${NS}/configurationstates/controller`).catch(() => undefined);
    if (c.off.includes('pool-status')) assert.equal((await poolStatus())?.assignedIPv4, undefined);
    else await waitFor('pool status written', async () => (await poolStatus())?.assignedIPv4 === 1);
    if (c.off.includes('configuration-state')) assert.equal(await state(), undefined);
    else await waitFor('ConfigurationState written', state);
    await waitFor('memberlist secret', () => env.api.get(`/api/v1/namespaces/${NS}/secrets/memberlist`).catch(() => undefined));
    await waitFor('webhook certificate secret', () => env.api.get(`/api/v1/namespaces/${NS}/secrets/metallb-webhook-cert`).catch(() => undefined));
    const evs = await env.api.get<{ items: { reason: string; involvedObject: { name: string } }[] }>('/api/v1/namespaces/apps/events');
    assert.ok(evs.items.some((e) => e.reason === 'IPAllocated' && e.involvedObject.name === 'dual'));

    const lines = ctl.lines();
    // One warning per feature turned off, naming the permission; no other line about a refusal; nothing failing in a loop.
    const featureLines = lines.filter((l) => l.feature !== undefined);
    assert.deepEqual(featureLines.map((l) => l.feature).sort(), [...c.off].sort(), JSON.stringify(featureLines));
    for (const w of featureLines) {
      assert.equal(w.level, 'warn');
      assert.match(String(w.msg), /turned off: not allowed to \S+ /);
    }
    const refusals = lines.filter((l) => l.feature === undefined && /\b403\b|forbidden/i.test(JSON.stringify(l)));
    assert.deepEqual(refusals, []);
    const looping = lines.filter((l) => ['list/watch failed, retrying', 'reconcile failed, will retry', 'could not update service'].includes(String(l.msg)));
    assert.deepEqual(looping, []);
    const polled = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('may list but not watch')).map((l) => l.resource).sort();
    assert.deepEqual(polled, c.polled);
  });
}

test('controller under MetalLB v0.13.11 RBAC with --leader-elect: no Lease permission, it leads alone after one warning', async () => {
  const c = CASES[0]!;
  const { env, kubeconfig } = await setup(c);
  const ctl = await startController(kubeconfig, { args: ['--leader-elect', '--webhook-mode', 'disabled'], waitReady: true });
  cleanups.push(() => ctl.stop());
  await env.apply(poolYaml('main', ['192.0.2.0/27']));
  await env.apply(serviceYaml('apps', 'web'));
  await env.waitIPs('apps', 'web');
  const text = await metricsText(ctl);
  assert.equal(metricValue(text, 'metallb_controller_feature_enabled', 'feature="leader-election"'), 0);
  assert.equal(metricValue(text, 'metallb_controller_leader_bool'), 1);
  const about = ctl.lines().filter((l) => l.feature === 'leader-election');
  assert.equal(about.length, 1);
  assert.equal(about[0]!.level, 'warn');
  assert.equal(about[0]!.msg, 'leader-election turned off: not allowed to get leases.coordination.k8s.io \"metallb-controller\" in namespace metallb-system; this instance runs as the only leader without a Lease: run a single replica');
  assert.ok(!ctl.lines().some((l) => /leader lease/.test(String(l.msg))), 'never tried the Lease');
});
