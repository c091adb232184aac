// The install artefacts applied for real: the development API server (`metallb dev-apiserver`) and the real kubectl.
// Every object of the all-in-one and of the individual manifests must be accepted and read back unchanged; the
// example configuration must apply once the CRDs are established; the CRD schemas must be enforced by the server.
// Not covered here: CEL rules (the dev server ignores x-kubernetes-validations) and admission webhooks (the dev
// server calls them like kube-apiserver, but no controller serves them in this test, so the configuration is removed
// before metallb.io objects are created; test/cluster/apiserver/webhooks.test.ts runs our webhook for real).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { stringify } from 'yaml';
import { startDevServer, kubectl, kubectlOk, kubectlBinary, type DevServerHandle } from '../helpers/devserver.js';
import { DEPLOY, FIXTURES, ROOT, exampleFiles, loadYamlDocs, type Obj } from './lib.js';

const NS = 'metallb-system';
const ALL_IN_ONE = join(DEPLOY, 'metallb-ts.yaml');
let srv: DevServerHandle | undefined;
const kc = () => srv!.kubeconfig;

before(async () => {
  srv = await startDevServer();
});
after(async () => {
  await srv?.stop();
});

/** Every field given in `expected` is present in `actual` with the same value (the server may add defaults). */
function assertSubset(actual: unknown, expected: unknown, path: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: array expected`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((e, i) => assertSubset(actual[i], e, `${path}[${i}]`));
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: object expected, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) assertSubset((actual as Obj)[k], v, `${path}.${k}`);
  } else {
    assert.equal(actual, expected, path);
  }
}

const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

async function getAll(file: string): Promise<Map<string, Obj>> {
  const list = JSON.parse(await kubectlOk(['get', '-f', file, '-o', 'json'], kc())) as Obj;
  const items: Obj[] = list.kind === 'List' ? list.items : [list];
  return new Map(items.map((o) => [key(o), o]));
}

function withoutStatus(o: Obj): Obj {
  const { status: _status, ...rest } = o;
  return rest;
}

test('the individual manifests apply in the documented order (namespace, CRDs, RBAC, webhook, controller, speaker)', async () => {
  for (const f of ['manifests/namespace.yaml', 'crds', 'manifests/rbac.yaml', 'manifests/webhook.yaml', 'manifests/controller.yaml', 'manifests/speaker.yaml']) {
    const out = await kubectlOk(['apply', '-f', join(DEPLOY, f)], kc());
    assert.match(out, / created\n/, f);
  }
});

test('the all-in-one applies on top as "unchanged" (same objects), also with every kubectl version here', async () => {
  const r = await kubectl(['apply', '-f', ALL_IN_ONE], kc());
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, loadYamlDocs(ALL_IN_ONE).length);
  for (const l of lines) assert.match(l, / unchanged$/);
  // Every exact kubectl version installed next to the default one (1.27 ... 1.33 on the development machines).
  for (const v of ['1.27', '1.28', '1.29', '1.30', '1.31', '1.33']) {
    const bin = kubectlBinary(v);
    if (!bin) continue;
    const r2 = await kubectl(['apply', '-f', ALL_IN_ONE], kc(), { bin });
    assert.equal(r2.code, 0, `kubectl ${v}: ${r2.stderr}`);
    for (const l of r2.stdout.trim().split('\n')) assert.match(l, / unchanged$/, `kubectl ${v}`);
  }
});

test('every object of the all-in-one is retrievable with kubectl get and holds what was applied', async () => {
  const docs = loadYamlDocs(ALL_IN_ONE);
  const got = await getAll(ALL_IN_ONE);
  assert.equal(got.size, docs.length);
  for (const d of docs) {
    const o = got.get(key(d));
    assert.ok(o, `${key(d)} retrievable`);
    assertSubset(o, d, key(d));
  }
  for (const name of ['deployment/controller', 'daemonset/speaker', 'service/metallb-webhook-service', 'serviceaccount/speaker']) {
    await kubectlOk(['get', '-n', NS, name], kc());
  }
  await kubectlOk(['get', 'validatingwebhookconfiguration', 'metallb-webhook-configuration'], kc());
});

test('the CRDs become Established and are served under their names, short names and the metallb category', async () => {
  await kubectlOk(['wait', '--for=condition=Established', '--timeout=30s', '-f', join(DEPLOY, 'crds')], kc());
  const resources = await kubectlOk(['api-resources', '--api-group=metallb.io', '-o', 'name'], kc());
  for (const p of ['ipaddresspools', 'l2advertisements', 'bgpadvertisements', 'bgppeers', 'bfdprofiles', 'communities', 'servicel2statuses', 'servicebgpstatuses', 'configurationstates']) {
    assert.ok(resources.includes(`${p}.metallb.io`), p);
  }
  await kubectlOk(['get', 'ipp', '-n', NS], kc());
  await kubectlOk(['get', 'metallb', '-n', NS], kc());
  await kubectlOk(['get', 'bgppeers.v1beta1.metallb.io', '-n', NS], kc());
  await kubectlOk(['get', 'bgppeers.v1beta2.metallb.io', '-n', NS], kc());
});

test('without a controller to answer it, the webhook configuration is removed (failurePolicy Fail would refuse every pool)', async () => {
  const refused = await kubectl(['apply', '-f', '-'], kc(), { input: 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: early, namespace: metallb-system}\nspec: {addresses: [192.0.2.0/28]}\n' });
  assert.match(refused.stderr, /failed calling webhook "ipaddresspoolvalidationwebhook\.metallb\.io": .*no endpoints available for service "metallb-webhook-service"/);
  await kubectlOk(['delete', 'validatingwebhookconfiguration', 'metallb-webhook-configuration'], kc());
});

for (const file of exampleFiles()) {
  const rel = file.slice(ROOT.length + 1);
  test(`${rel} applies after the CRDs and every object reads back (with schema defaults)`, async () => {
    const r = await kubectl(['apply', '-f', file], kc());
    assert.equal(r.code, 0, r.stderr);
    const docs = loadYamlDocs(file);
    const got = await getAll(file);
    for (const d of docs) {
      const o = got.get(key({ ...d, metadata: { namespace: NS, ...d.metadata } }));
      assert.ok(o, `${key(d)} retrievable`);
      // Status is a subresource: the server drops it on create (checked below through /status).
      assertSubset(o, withoutStatus(d), key(d));
    }
  });
}

test('schema defaults are applied by the server: autoAssign true, peerPort 179, aggregation lengths 32/128', async () => {
  const pool = JSON.parse(await kubectlOk(['get', '-n', NS, 'ipaddresspool', 'first-pool', '-o', 'json'], kc()));
  assert.equal(pool.spec.autoAssign, true);
  const peer = JSON.parse(await kubectlOk(['get', '-n', NS, 'bgppeers.v1beta2.metallb.io', 'router-frr', '-o', 'json'], kc()));
  assert.equal(peer.spec.peerPort, 179);
  const adv = JSON.parse(await kubectlOk(['get', '-n', NS, 'bgpadvertisement', 'bgp-selected', '-o', 'json'], kc()));
  assert.deepEqual([adv.spec.aggregationLength, adv.spec.aggregationLengthV6], [32, 128]);
  // The v1beta1 object is served as v1beta2 (conversion None) and the other way round.
  const legacy = JSON.parse(await kubectlOk(['get', '-n', NS, 'bgppeers.v1beta2.metallb.io', 'legacy-peer', '-o', 'json'], kc()));
  assert.equal(legacy.apiVersion, 'metallb.io/v1beta2');
  assert.equal(legacy.spec.peerAddress, '172.30.0.3');
});

test('using the deprecated BGPPeer v1beta1 makes kubectl print the CRD\'s deprecation warning', async () => {
  const r = await kubectl(['get', 'bgppeers.v1beta1.metallb.io', '-n', NS], kc());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /v1beta1 is deprecated, please use v1beta2/);
});

test('status subresources: status is written through /status and validated against the schema', async () => {
  const patch = (kind: string, name: string, status: Obj) =>
    kubectl(['patch', '-n', NS, kind, name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })], kc());
  const ok = await patch('servicel2status', 'l2-abcde', { node: 'node-1', serviceName: 'web', serviceNamespace: 'default' });
  assert.equal(ok.code, 0, ok.stderr);
  const got = JSON.parse(await kubectlOk(['get', '-n', NS, 'servicel2status', 'l2-abcde', '-o', 'json'], kc()));
  assert.equal(got.status.node, 'node-1');
  const pool = await patch('ipaddresspool', 'first-pool', { assignedIPv4: 1, assignedIPv6: 0, availableIPv4: 260, availableIPv6: 16 });
  assert.equal(pool.code, 0, pool.stderr);
  const bad = await patch('configurationstate', 'controller', { result: 'Broken' });
  assert.notEqual(bad.code, 0, 'result must be Valid, Invalid or Unknown');
  assert.match(bad.stderr, /result/);
});

test('the server rejects the invalid fixture objects (types, enums, ranges, required fields, unknown fields)', async () => {
  for (const d of loadYamlDocs(join(FIXTURES, 'invalid.yaml'))) {
    const expect = d.metadata.annotations.expect as string;
    if (d.status && !d.spec) {
      // Status-only kinds: create the object, then the invalid status must be refused by /status.
      await kubectlOk(['apply', '-f', '-'], kc(), { input: stringify(withoutStatus(d), { version: '1.1' }) });
      const r = await kubectl(
        ['patch', '-n', NS, d.kind.toLowerCase(), d.metadata.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: d.status })],
        kc(),
      );
      assert.notEqual(r.code, 0, `${d.kind} ${d.metadata.name} status accepted: ${expect}`);
      continue;
    }
    const r = await kubectl(['apply', '-f', '-'], kc(), { input: stringify(d, { version: '1.1' }) });
    assert.notEqual(r.code, 0, `${d.kind} ${d.metadata.name} accepted: ${expect}\n${r.stdout}`);
    assert.match(r.stderr, /invalid|unknown field|must be|Unsupported|Required/i, `${d.metadata.name}: ${r.stderr}`);
  }
});

test('the controller Deployment\'s args and env start the real controller against the applied install', { timeout: 90_000 }, async (t) => {
  // the webhook configuration removed above is back, for the controller to fill in its caBundle
  await kubectlOk(['apply', '-f', join(DEPLOY, 'manifests', 'webhook.yaml')], kc());
  const dep = loadYamlDocs(join(DEPLOY, 'manifests', 'controller.yaml')).find((d) => d.kind === 'Deployment')!;
  const c = dep.spec.template.spec.containers[0] as Obj;
  // The values the kubelet would give the fieldRef variables; then $(VAR) substitution as in Kubernetes.
  const env: Record<string, string> = {};
  for (const e of c.env as Obj[]) {
    const ref = e.valueFrom?.fieldRef?.fieldPath as string | undefined;
    env[e.name] = ref === 'metadata.namespace' ? NS : ref === 'metadata.name' ? 'controller-test-pod' : String(e.value);
  }
  const args = (c.args as string[]).map((a) => a.replace(/\$\((\w+)\)/g, (_, v: string) => env[v] ?? ''));
  // Same arguments, plus the kubeconfig and free ports (later options win) so parallel tests cannot collide.
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'metallb.js'), ...args, '--kubeconfig', kc(), '--metrics-port=0', '--health-probe-port=0', '--webhook-port=0'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  });
  const deadline = Date.now() + 60_000;
  let caBundle = '';
  let memberlist = false;
  while (Date.now() < deadline && !(caBundle && memberlist)) {
    assert.ok(child.exitCode === null && child.signalCode === null, `controller exited (${child.exitCode ?? child.signalCode}):\n${out}`);
    const vwc = JSON.parse(await kubectlOk(['get', 'validatingwebhookconfiguration', 'metallb-webhook-configuration', '-o', 'json'], kc()));
    caBundle = (vwc.webhooks as Obj[]).every((w) => w.clientConfig.caBundle) ? vwc.webhooks[0].clientConfig.caBundle : '';
    memberlist = (await kubectl(['get', 'secret', '-n', NS, 'memberlist'], kc())).code === 0;
    if (!(caBundle && memberlist)) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(caBundle, `the controller filled in the webhooks' caBundle:\n${out}`);
  assert.ok(memberlist, `the controller created the memberlist Secret:\n${out}`);
  const secret = JSON.parse(await kubectlOk(['get', 'secret', '-n', NS, 'memberlist', '-o', 'json'], kc()));
  assert.ok(secret.data.secretkey, 'memberlist Secret has key secretkey (mounted by the speaker at /etc/ml_secret_key)');
  await kubectlOk(['get', 'secret', '-n', NS, 'metallb-webhook-cert'], kc());
});
