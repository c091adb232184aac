// Validating admission webhooks, called as kube-apiserver calls them, seen through the real kubectl: a small HTTPS
// webhook server of the test (its own CA), reached through a Service and its EndpointSlice; and our controller's
// webhook (deploy/manifests/webhook.yaml) refusing an invalid IPAddressPool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateServingCert } from '../../../src/controller/webhook-cert.js';
import { kubectl, kubectlOk, startDevServer, type DevServerHandle } from '../../helpers/devserver.js';
import { startController, type ControllerHandle } from '../../controller/helpers.js';

let srv: DevServerHandle;
let hook: Server;
let hookPort = 0;
let ca = '';
/** AdmissionReview requests the test webhook received, by path. */
const seen: { path: string; review: Record<string, unknown> }[] = [];
let delayMs = 0;

const k = (args: string[], input?: string) => kubectlOk(args, srv.kubeconfig, input === undefined ? {} : { input });
const kr = (args: string[], input?: string) => kubectl(args, srv.kubeconfig, input === undefined ? {} : { input });

interface Req {
  uid: string;
  operation: string;
  name?: string;
  object?: { metadata?: { name?: string; labels?: Record<string, string> }; apiVersion?: string; data?: Record<string, string> } | null;
  oldObject?: { metadata?: { name?: string } } | null;
  [k: string]: unknown;
}

before(async () => {
  // HTTPS: kubectl sends no credentials over plain HTTP, and the review's userInfo is under test
  srv = await startDevServer({ tls: true });
  const cert = await generateServingCert('hooks', 'whtest');
  ca = cert.ca;
  hook = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { apiVersion: string; request: Req };
      const path = (req.url ?? '').split('?')[0]!;
      seen.push({ path, review: { ...review, query: (req.url ?? '').split('?')[1] } });
      const r = review.request;
      let response: Record<string, unknown> = { uid: r.uid, allowed: true };
      const name = r.object?.metadata?.name ?? r.oldObject?.metadata?.name ?? '';
      if (path === '/deny' && name.startsWith('bad')) response = { uid: r.uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: `configmaps named ${name} are not welcome` } };
      if (path === '/deny' && name.startsWith('warn')) response = { uid: r.uid, allowed: true, warnings: ['this configmap is suspicious'] };
      if (path === '/deny' && name.startsWith('plain')) response = { uid: r.uid, allowed: false };
      if (path === '/wronguid') response = { uid: 'nope', allowed: true };
      if (path === '/mutate') {
        const patch = [{ op: 'add', path: '/metadata/labels', value: { ...(r.object?.metadata?.labels ?? {}), mutated: 'yes' } }];
        response = { uid: r.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64'), warnings: ['labelled by the mutating webhook'] };
      }
      if (path === '/badpatch') response = { uid: r.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify([{ op: 'replace', path: '/nope/deeper', value: 1 }])).toString('base64') };
      const send = (): void => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ apiVersion: review.apiVersion, kind: 'AdmissionReview', response }));
      };
      if (path === '/slow') setTimeout(send, delayMs);
      else send();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookPort = (hook.address() as AddressInfo).port;
  await k(['create', 'namespace', 'whtest']);
  await k(['apply', '-f', '-'], service('hooks', 'https', hookPort));
});
after(async () => {
  hook?.closeAllConnections();
  await new Promise<void>((r) => (hook ? hook.close(() => r()) : r()));
  await srv?.stop();
});

/** A Service and the EndpointSlice the endpoint-slice controller would write for a webhook server on loopback. */
function service(name: string, portName: string, port: number, ns = 'whtest'): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  ports: [{name: ${portName}, port: 443, targetPort: ${port}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-x1, namespace: ${ns}, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
ports: [{name: ${portName}, port: ${port}, protocol: TCP}]
`;
}

function webhookConfig(name: string, hooks: Record<string, unknown>[]): string {
  return JSON.stringify({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name }, webhooks: hooks });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function wh(name: string, path: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    clientConfig: { service: { name: 'hooks', namespace: 'whtest', path }, caBundle: b64(ca) },
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['configmaps'] }],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    namespaceSelector: { matchLabels: { webhooks: 'on' } },
    ...extra,
  };
}

const last = (path: string): Req => {
  const s = [...seen].reverse().find((x) => x.path === path);
  assert.ok(s, `the webhook at ${path} was called`);
  return (s.review as { request: Req }).request;
};

test('a refusal reaches kubectl in kube-apiserver words; the AdmissionReview carries the request', async () => {
  await k(['create', 'namespace', 'wh1']);
  await k(['label', 'namespace', 'wh1', 'webhooks=on']);
  await k(['apply', '-f', '-'], webhookConfig('deny', [wh('deny.example.com', '/deny')]));
  const stored = JSON.parse(await k(['get', 'validatingwebhookconfiguration', 'deny', '-o', 'json'])) as { webhooks: Record<string, unknown>[] };
  // kube-apiserver's defaults
  assert.equal(stored.webhooks[0]!.failurePolicy, 'Fail');
  assert.equal(stored.webhooks[0]!.matchPolicy, 'Equivalent');
  assert.equal(stored.webhooks[0]!.timeoutSeconds, 10);
  const refused = await kr(['create', 'configmap', 'bad1', '-n', 'wh1', '--from-literal=a=b']);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr.trim(), 'error: failed to create configmap: admission webhook "deny.example.com" denied the request: configmaps named bad1 are not welcome');
  const applied = await kr(['apply', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad2, namespace: wh1}\ndata: {a: b}\n');
  assert.equal(applied.stderr.trim(), 'Error from server (Forbidden): error when creating "STDIN": admission webhook "deny.example.com" denied the request: configmaps named bad2 are not welcome');
  assert.equal((await kr(['get', 'configmap', 'bad2', '-n', 'wh1'])).code, 1);
  const plain = await kr(['apply', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain1, namespace: wh1}\n');
  // no Status from the webhook: code 400 and no reason, which kubectl prints without one
  assert.equal(plain.stderr.trim(), 'Error from server: error when creating "STDIN": admission webhook "deny.example.com" denied the request without explanation');

  await k(['create', 'configmap', 'good', '-n', 'wh1', '--from-literal=a=b']);
  const c = last('/deny');
  assert.equal(c.operation, 'CREATE');
  assert.equal(c.namespace, 'wh1');
  assert.equal(c.name, 'good');
  assert.deepEqual(c.kind, { group: '', version: 'v1', kind: 'ConfigMap' });
  assert.deepEqual(c.resource, { group: '', version: 'v1', resource: 'configmaps' });
  assert.deepEqual(c.requestKind, { group: '', version: 'v1', kind: 'ConfigMap' });
  assert.equal((c.userInfo as { username: string }).username, 'kubernetes-admin');
  assert.deepEqual((c.userInfo as { groups: string[] }).groups, ['system:masters', 'system:authenticated']);
  assert.deepEqual(c.object?.data, { a: 'b' });
  assert.ok((c.object?.metadata as { uid?: string }).uid, 'the object has its uid already');
  assert.equal(c.oldObject, null);
  assert.equal(c.dryRun, false);
  assert.equal((c.options as { kind: string }).kind, 'CreateOptions');
  assert.match(String(seen[seen.length - 1]!.review.query), /^timeout=10s$/);
  assert.equal(seen[seen.length - 1]!.review.apiVersion, 'admission.k8s.io/v1');

  await k(['label', 'configmap', 'good', '-n', 'wh1', 'x=y']);
  const u = last('/deny');
  assert.equal(u.operation, 'UPDATE');
  assert.equal(u.oldObject?.metadata?.name, 'good');
  assert.deepEqual(u.object?.metadata?.labels, { x: 'y' });
  assert.equal((u.options as { kind: string }).kind, 'UpdateOptions');

  await k(['create', 'configmap', 'dry', '-n', 'wh1', '--dry-run=server']);
  assert.equal(last('/deny').dryRun, true);

  const warned = await kr(['create', 'configmap', 'warn1', '-n', 'wh1']);
  assert.equal(warned.code, 0);
  assert.match(warned.stderr, /Warning: this configmap is suspicious/);

  await k(['delete', 'configmap', 'good', '-n', 'wh1']);
  const d = last('/deny');
  assert.equal(d.operation, 'DELETE');
  assert.equal(d.object, null);
  assert.equal(d.oldObject?.metadata?.name, 'good');
  assert.equal((d.options as { kind: string }).kind, 'DeleteOptions');

  // the namespaceSelector leaves other namespaces alone
  const before = seen.length;
  await k(['create', 'configmap', 'bad3', '-n', 'default']);
  assert.equal(seen.length, before);
  await k(['delete', 'validatingwebhookconfiguration', 'deny']);
});

test('rules: subresources, objectSelector, matchPolicy Equivalent across CRD versions, url clientConfig', async () => {
  await k(['create', 'namespace', 'wh2']);
  await k(['label', 'namespace', 'wh2', 'webhooks=on']);
  await k(['apply', '-f', '-'], webhookConfig('rules', [
    wh('status.example.com', '/status', { rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['services/status'] }] }),
    wh('selected.example.com', '/selected', { objectSelector: { matchLabels: { check: 'yes' } } }),
    wh('widgets.example.com', '/widgets', { rules: [{ apiGroups: ['example.com'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['gadgets'] }] }),
    { ...wh('url.example.com', '/url'), clientConfig: { url: `https://127.0.0.1:${hookPort}/url`, caBundle: b64(ca) }, rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['secrets'] }] },
  ]));
  await k(['create', 'service', 'clusterip', 's1', '--tcp=80', '-n', 'wh2']);
  assert.ok(!seen.some((x) => x.path === '/status'), 'a main-resource write does not match services/status');
  await k(['patch', 'service', 's1', '-n', 'wh2', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.9"}]}}}']);
  const st = last('/status');
  assert.equal(st.subResource, 'status');
  assert.equal(st.operation, 'UPDATE');
  assert.deepEqual(st.kind, { group: '', version: 'v1', kind: 'Service' });

  const n = seen.filter((x) => x.path === '/selected').length;
  await k(['create', 'configmap', 'unlabelled', '-n', 'wh2']);
  assert.equal(seen.filter((x) => x.path === '/selected').length, n);
  await k(['apply', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: labelled, namespace: wh2, labels: {check: "yes"}}\n');
  assert.equal(seen.filter((x) => x.path === '/selected').length, n + 1);

  await k(['apply', '-f', '-'], `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  - {name: v2, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`);
  await k(['apply', '-f', '-'], 'apiVersion: example.com/v2\nkind: Gadget\nmetadata: {name: g1, namespace: wh2}\n');
  const g = last('/widgets');
  assert.deepEqual(g.kind, { group: 'example.com', version: 'v1', kind: 'Gadget' });
  assert.deepEqual(g.requestKind, { group: 'example.com', version: 'v2', kind: 'Gadget' });
  assert.equal(g.object?.apiVersion, 'example.com/v1');

  await k(['create', 'secret', 'generic', 'viaurl', '-n', 'wh2']);
  assert.equal(last('/url').name, 'viaurl');
  await k(['delete', 'validatingwebhookconfiguration', 'rules']);
});

test('failures: no endpoints, wrong CA, timeout, a wrong uid; failurePolicy Ignore fails open; dry run needs sideEffects None', async () => {
  await k(['create', 'namespace', 'wh3']);
  await k(['label', 'namespace', 'wh3', 'webhooks=on']);
  await k(['apply', '-f', '-'], 'apiVersion: v1\nkind: Service\nmetadata: {name: nobody, namespace: whtest}\nspec: {ports: [{name: https, port: 443}]}\n');
  await k(['apply', '-f', '-'], webhookConfig('broken', [{ ...wh('noep.example.com', '/x'), clientConfig: { service: { name: 'nobody', namespace: 'whtest', path: '/x' }, caBundle: b64(ca) } }]));
  const noep = await kr(['create', 'configmap', 'c1', '-n', 'wh3']);
  assert.equal(
    noep.stderr.trim(),
    'error: failed to create configmap: Internal error occurred: failed calling webhook "noep.example.com": failed to call webhook: Post "https://nobody.whtest.svc:443/x?timeout=10s": no endpoints available for service "nobody"',
  );
  await k(['apply', '-f', '-'], webhookConfig('broken', [{ ...wh('noep.example.com', '/x'), failurePolicy: 'Ignore', clientConfig: { service: { name: 'nobody', namespace: 'whtest', path: '/x' }, caBundle: b64(ca) } }]));
  assert.equal((await kr(['create', 'configmap', 'c2', '-n', 'wh3'])).code, 0);

  const other = await generateServingCert('hooks', 'whtest');
  await k(['apply', '-f', '-'], webhookConfig('broken', [wh('ca.example.com', '/deny', { caBundle: undefined, clientConfig: { service: { name: 'hooks', namespace: 'whtest', path: '/deny' }, caBundle: b64(other.ca) } })]));
  const badCa = await kr(['create', 'configmap', 'c3', '-n', 'wh3']);
  assert.match(badCa.stderr, /failed calling webhook "ca\.example\.com": failed to call webhook: Post "https:\/\/hooks\.whtest\.svc:443\/deny\?timeout=10s": tls: failed to verify certificate: x509: certificate signed by unknown authority/);

  delayMs = 2500;
  await k(['apply', '-f', '-'], webhookConfig('broken', [wh('slow.example.com', '/slow', { timeoutSeconds: 1 })]));
  const slow = await kr(['create', 'configmap', 'c4', '-n', 'wh3']);
  assert.match(slow.stderr, /failed calling webhook "slow\.example\.com": failed to call webhook: Post "https:\/\/hooks\.whtest\.svc:443\/slow\?timeout=1s": context deadline exceeded/);

  await k(['apply', '-f', '-'], webhookConfig('broken', [wh('uid.example.com', '/wronguid')]));
  assert.match((await kr(['create', 'configmap', 'c5', '-n', 'wh3'])).stderr, /received invalid webhook response: expected response\.uid=".*", got "nope"/);

  await k(['apply', '-f', '-'], webhookConfig('broken', [wh('effects.example.com', '/deny', { sideEffects: 'Some' })]));
  const dry = await kr(['create', 'configmap', 'c6', '-n', 'wh3', '--dry-run=server']);
  assert.match(dry.stderr, /admission webhook "effects\.example\.com" does not support dry run/);
  // a broken webhook never locks its own configuration
  await k(['delete', 'validatingwebhookconfiguration', 'broken']);
  assert.equal((await kr(['create', 'configmap', 'c7', '-n', 'wh3'])).code, 0);
});

test('mutating webhooks run first, one after the other; the validating ones see the mutated object', async () => {
  await k(['create', 'namespace', 'wh4']);
  await k(['label', 'namespace', 'wh4', 'webhooks=on']);
  await k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'mut' }, webhooks: [wh('mutate.example.com', '/mutate')] }));
  await k(['apply', '-f', '-'], webhookConfig('val', [wh('seen.example.com', '/seen')]));
  const r = await kr(['create', 'configmap', 'm1', '-n', 'wh4']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Warning: labelled by the mutating webhook/);
  const cm = JSON.parse(await k(['get', 'configmap', 'm1', '-n', 'wh4', '-o', 'json'])) as { metadata: { labels?: Record<string, string> } };
  assert.deepEqual(cm.metadata.labels, { mutated: 'yes' });
  assert.deepEqual(last('/seen').object?.metadata?.labels, { mutated: 'yes' });
  assert.equal(last('/mutate').operation, 'CREATE');
  await k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'mut' }, webhooks: [wh('bad.example.com', '/badpatch')] }));
  const bad = await kr(['create', 'configmap', 'm2', '-n', 'wh4']);
  assert.match(bad.stderr, /Internal error occurred: failed calling webhook "bad\.example\.com": JSONPatch cannot be applied/);
  await k(['delete', 'mutatingwebhookconfiguration', 'mut']);
  await k(['delete', 'validatingwebhookconfiguration', 'val']);
});

test("our controller's webhook (deploy/manifests/webhook.yaml) refuses an invalid IPAddressPool through kubectl", async (t) => {
  const crds = join(import.meta.dirname, '..', '..', '..', 'deploy', 'crds');
  for (const f of readdirSync(crds)) await k(['apply', '-f', join(crds, f)]);
  await k(['create', 'namespace', 'metallb-system']);
  await k(['apply', '-f', join(import.meta.dirname, '..', '..', '..', 'deploy', 'manifests', 'webhook.yaml')]);
  let ctl: ControllerHandle | undefined;
  t.after(async () => {
    await ctl?.stop();
  });
  ctl = await startController(srv.kubeconfig);
  const deadline = Date.now() + 60_000;
  while (!ctl.ports.webhook && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(ctl.ports.webhook, 'the controller serves its webhook');
  // the controller puts its CA into the configuration; the endpoint-slice controller would publish its pod
  for (;;) {
    const cfg = JSON.parse(await k(['get', 'validatingwebhookconfiguration', 'metallb-webhook-configuration', '-o', 'json'])) as { webhooks: { clientConfig: { caBundle?: string } }[] };
    if (cfg.webhooks.every((w) => w.clientConfig.caBundle)) break;
    assert.ok(Date.now() < deadline, 'caBundle written');
    await new Promise((r) => setTimeout(r, 200));
  }
  await k(['apply', '-f', '-'], service('metallb-webhook-service', 'webhook', ctl.ports.webhook, 'metallb-system').replace(/^apiVersion: v1\nkind: Service[\s\S]*?---\n/, ''));
  await k(['apply', '-f', '-'], 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: first, namespace: metallb-system}\nspec: {addresses: [192.0.2.0/24]}\n');
  const r = await kr(['apply', '-f', '-'], 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: second, namespace: metallb-system}\nspec: {addresses: [192.0.2.128/25]}\n');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error from server \(Forbidden\): error when creating "STDIN": admission webhook "ipaddresspoolvalidationwebhook\.metallb\.io" denied the request: .*overlap/);
  assert.equal((await kr(['get', 'ipaddresspool', 'second', '-n', 'metallb-system'])).code, 1);
});
