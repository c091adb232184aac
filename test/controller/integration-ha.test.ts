// Integration: webhook over HTTPS, leader election hand-over between two controller processes, CLI errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import https from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Secret } from '../../src/k8s/types.js';
import type { LeaseObject } from '../../src/k8s/leader-election.js';
import { NS, ROOT, metricValue, metricsText, poolYaml, serviceYaml, startController, startEnv, waitFor, type ControllerHandle, type Env } from './helpers.js';

let env: Env;
const controllers: ControllerHandle[] = [];
let tmp: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'metallb-ctl-ha-'));
  env = await startEnv({ nodePortRange: '1024-65535' });
  await env.apply(poolYaml('main', ['192.0.2.0/24']));
  // An existing memberlist secret must never be overwritten.
  await env.kc(['create', 'secret', 'generic', 'memberlist', '-n', NS, '--from-literal=secretkey=keep-me-as-i-am']);
  await env.apply(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: metallb-webhook-configuration}
webhooks:
- name: ipaddresspoolvalidationwebhook.metallb.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  clientConfig:
    service: {name: metallb-webhook-service, namespace: ${NS}, path: /validate-metallb-io-v1beta1-ipaddresspool}
  rules:
  - {apiGroups: [metallb.io], apiVersions: [v1beta1], operations: [CREATE, UPDATE], resources: [ipaddresspools]}
`);
});

after(async () => {
  for (const c of controllers) await c.stop();
  await env?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const LE = ['--leader-elect', '--leader-elect-lease-duration', '3s', '--leader-elect-renew-deadline', '2s', '--leader-elect-retry-period', '500ms'];

function postReview(port: number, ca: string, path: string, body: unknown): Promise<{ response?: { allowed: boolean; status?: { message: string } } }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, method: 'POST', ca, servername: `metallb-webhook-service.${NS}.svc`, headers: { 'Content-Type': 'application/json' } },
      (res) => {
        let t = '';
        res.setEncoding('utf8').on('data', (c: string) => (t += c)).on('end', () => {
          try {
            resolve(JSON.parse(t));
          } catch (e) {
            reject(e);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('leader election: one leader writes, the standby takes over when the leader dies, SIGTERM releases the lease', async () => {
  const a = await startController(env.kubeconfig, { args: LE });
  controllers.push(a);
  await waitFor('a leads', () => a.lines().some((l) => l.msg === 'became leader'));
  await waitFor('a processing', () => a.lines().some((l) => l.msg === 'processing services'));
  const b = await startController(env.kubeconfig, { args: LE });
  controllers.push(b);
  await waitFor('b stands by', () => b.lines().some((l) => l.msg === 'another instance is the leader; standing by'));
  await env.apply(serviceYaml('default', 'ha1'));
  const [ip1] = await env.waitIPs('default', 'ha1');
  const bm = await metricsText(b);
  assert.equal(metricValue(bm, 'metallb_controller_leader_bool'), 0);
  assert.equal(metricValue(bm, 'metallb_k8s_client_updates_total'), 0, 'the standby did not write');
  assert.equal((await fetch(`http://127.0.0.1:${b.ports.health}/readyz`)).status, 200, 'a standby with synced caches is ready');

  const killedAt = Date.now();
  await a.kill('SIGKILL');
  await waitFor('b leads', () => b.lines().some((l) => l.msg === 'became leader'), 15_000, 50);
  const takeover = Date.now() - killedAt;
  assert.ok(takeover < 7000, `standby took over within the lease duration (+ retry): ${takeover} ms`);
  await env.apply(serviceYaml('default', 'ha2'));
  const [ip2] = await env.waitIPs('default', 'ha2');
  assert.notEqual(ip2, ip1);
  assert.deepEqual(await env.ips('default', 'ha1'), [ip1], 'the new leader kept the existing assignment');

  const ml = await env.api.get<Secret>(`/api/v1/namespaces/${NS}/secrets/memberlist`);
  assert.equal(Buffer.from(ml.data?.secretkey ?? '', 'base64').toString(), 'keep-me-as-i-am', 'existing memberlist secret untouched');
  assert.equal(await b.stop(), 0);
  const lease = await env.api.get<LeaseObject>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/metallb-controller`);
  assert.equal(lease.spec?.holderIdentity ?? '', '', 'released on SIGTERM');
  const c = await startController(env.kubeconfig, { args: LE });
  controllers.push(c);
  const t = Date.now();
  await waitFor('c leads', () => c.lines().some((l) => l.msg === 'became leader'), 10_000, 50);
  assert.ok(Date.now() - t < 2500, 'a released lease is taken at once');
  await c.stop();
});

test('webhook over HTTPS: generated certificate stored in the Secret, CA bundle patched, overlapping pool denied', async () => {
  const ctl = await startController(env.kubeconfig);
  controllers.push(ctl);
  assert.ok(ctl.ports.webhook);
  const secret = await env.api.get<Secret>(`/api/v1/namespaces/${NS}/secrets/metallb-webhook-cert`);
  const ca = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString('utf8');
  assert.match(ca, /BEGIN CERTIFICATE/);
  const vwc = await env.api.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/metallb-webhook-configuration');
  assert.equal(vwc.webhooks[0]?.clientConfig.caBundle, secret.data?.['ca.crt']);
  const review = (name: string, addresses: string[], namespace = NS) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${name}`,
      kind: { group: 'metallb.io', version: 'v1beta1', kind: 'IPAddressPool' },
      namespace,
      name,
      operation: 'CREATE',
      object: { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name, namespace }, spec: { addresses } },
    },
  });
  const path = '/validate-metallb-io-v1beta1-ipaddresspool';
  await waitFor('config loaded', async () => (await fetch(`http://127.0.0.1:${ctl.ports.health}/readyz`)).status === 200);
  const denied = await postReview(ctl.ports.webhook!, ca, path, review('overlap', ['192.0.2.128/25']));
  assert.equal(denied.response?.allowed, false);
  assert.match(denied.response?.status?.message ?? '', /overlap/);
  const allowed = await postReview(ctl.ports.webhook!, ca, path, review('fine', ['198.51.100.0/24']));
  assert.equal(allowed.response?.allowed, true);
  const wrongNs = await postReview(ctl.ports.webhook!, ca, path, review('elsewhere', ['203.0.113.0/24'], 'default'));
  assert.equal(wrongNs.response?.status?.message, `resource must be created in ${NS} namespace`);
  await ctl.stop();
  // A restarted controller reuses the stored certificate.
  const again = await startController(env.kubeconfig);
  controllers.push(again);
  assert.ok(again.lines().some((l) => String(l.msg).includes('using the certificate stored in the secret')));
  await again.stop();
});

test('--webhook-mode onlywebhook: serves the webhook, leaves Services alone', async () => {
  const ctl = await startController(env.kubeconfig, { args: ['--webhook-mode', 'onlywebhook'], waitReady: false });
  controllers.push(ctl);
  assert.ok(ctl.ports.webhook);
  await env.apply(serviceYaml('default', 'untouched'));
  await waitFor('ready', async () => (await fetch(`http://127.0.0.1:${ctl.ports.health}/readyz`)).status === 200);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await env.ips('default', 'untouched'), []);
  assert.ok(!ctl.lines().some((l) => l.msg === 'processing services'));
  assert.ok(ctl.lines().some((l) => l.msg === 'webhook-only mode: not reconciling services'));
  assert.equal(await ctl.kill('SIGINT'), 0, 'SIGINT exits 0 too');
});

function runCli(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'metallb.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stderr, stdout });
    });
  });
}

test('CLI: a broken kubeconfig is one clear error line and exit 2; --help lists the flags', async () => {
  const cases: [string, string | undefined, RegExp][] = [
    ['missing', undefined, /file does not exist/],
    ['garbage', 'clusters: [: :', /not valid YAML/],
    ['nocontext', 'apiVersion: v1\nkind: Config\nclusters: []\n', /no current-context/],
    ['nocluster', 'apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n', /undefined cluster "c"/],
    ['badserver', 'apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {server: "::nope"}\n', /invalid server URL/],
  ];
  for (const [name, content, re] of cases) {
    const p = join(tmp, name);
    if (content !== undefined) writeFileSync(p, content);
    const r = await runCli(['controller', '--kubeconfig', p]);
    assert.equal(r.code, 2, `${name}: exit 2 (${r.stderr})`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${name}: one line: ${r.stderr}`);
    assert.match(lines[0]!, re);
    assert.match(lines[0]!, new RegExp(p.replace(/[/.]/g, '\\$&')));
  }
  const help = await runCli(['controller', '--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--kubeconfig', '--namespace', '--lb-class', '--metrics-port', '--health-probe-port', '--webhook-port', '--cert-dir', '--webhook-mode', '--ml-secret-name', '--leader-elect', '--log-level']) {
    assert.ok(help.stdout.includes(flag), `help mentions ${flag}`);
  }
});
