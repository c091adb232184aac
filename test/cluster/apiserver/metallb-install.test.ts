// MetalLB's published manifests applied unchanged with the real kubectl (1.32 and the oldest / newest beside it):
// the legacy ones hold PodSecurityPolicies a modern cluster no longer serves (kubectl: `no matches for kind`) while the
// rest applies; metallb-native applies entirely. Then MetalLB's roles of v0.13.11 and v0.15.3 (metallb-rbac.md) as
// RBAC decides them: `kubectl auth can-i --as=system:serviceaccount:metallb-system:…` and requests with the service
// accounts' own tokens, refused in kube-apiserver's words.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { existsSync, readFileSync } from 'node:fs';
import { kubectl, kubectlBinary, kubectlOk, startDevServer, tokenKubeconfig, type DevServerHandle } from '../../helpers/devserver.js';

/** MetalLB's manifests in ../shared (beside the checkout; worktrees find it under /work). */
const FIXTURES = [join(import.meta.dirname, '..', '..', '..', '..', 'shared'), '/work/shared']
  .map((b) => join(b, 'fixtures', 'metallb-manifests'))
  .find((p) => existsSync(p))!;
const RBAC = join(import.meta.dirname, '..', '..', 'fixtures', 'rbac');

let srv: DevServerHandle;
before(async () => {
  assert.ok(FIXTURES, "MetalLB's manifests are in ../shared/fixtures/metallb-manifests");
  srv = await startDevServer({ tls: true });
});
after(async () => {
  await srv?.stop();
});

interface Doc {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string };
}
const docs = (file: string): Doc[] => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Doc).filter(Boolean);

/** Apply a legacy manifest: PodSecurityPolicies refused as kube-apiserver >= 1.25 refuses them, everything else applied. */
async function applyLegacy(version: string, bin?: string): Promise<void> {
  const file = join(FIXTURES, `metallb-${version}.yaml`);
  await kubectlOk(['apply', '-f', join(FIXTURES, `namespace-${version}.yaml`)], srv.kubeconfig, bin ? { bin } : {});
  const r = await kubectl(['apply', '-f', file], srv.kubeconfig, bin ? { bin } : {});
  assert.equal(r.code, 1, `kubectl ${bin ?? ''} apply ${version}: ${r.stderr}`);
  const psps = docs(file).filter((d) => d.kind === 'PodSecurityPolicy');
  assert.equal(psps.length, 2);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('resource mapping not found') || l.startsWith('error:'));
  assert.equal(errors.length, 2, r.stderr);
  for (const e of errors) assert.match(e, /no matches for kind "PodSecurityPolicy" in version "policy\/v1beta1"/);
  for (const d of docs(file).filter((x) => x.kind !== 'PodSecurityPolicy')) {
    const ns = d.metadata.namespace ? ['-n', d.metadata.namespace] : [];
    const got = await kubectl(['get', `${d.kind.toLowerCase()}.${d.apiVersion.includes('/') ? d.apiVersion.split('/')[0] : ''}`.replace(/\.$/, ''), d.metadata.name, ...ns, '-o', 'name'], srv.kubeconfig);
    assert.equal(got.code, 0, `${d.kind} ${d.metadata.name} applied: ${got.stderr}`);
  }
}

test('MetalLB v0.9.3 and v0.12.1: everything but the PodSecurityPolicies applies (kubectl 1.32 and the oldest and newest here)', async () => {
  await applyLegacy('v0.9.3');
  await applyLegacy('v0.12.1');
  for (const v of ['1.27', '1.33']) {
    const bin = kubectlBinary(v);
    assert.ok(bin, `kubectl ${v} is installed beside the default one`);
    await applyLegacy('v0.12.1', bin);
  }
  // what kubectl asked: policy/v1beta1 is not served, policy/v1 is
  const groups = JSON.parse(await kubectlOk(['get', '--raw', '/apis/policy'], srv.kubeconfig)) as { versions: { version: string }[] };
  assert.deepEqual(groups.versions.map((v) => v.version), ['v1']);
});

test('metallb-native v0.14.9 applies entirely', async () => {
  const file = join(FIXTURES, 'metallb-native-v0.14.9.yaml');
  const r = await kubectl(['apply', '-f', file], srv.kubeconfig);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, docs(file).length);
  await kubectlOk(['wait', '--for=condition=Established', 'crd/ipaddresspools.metallb.io', '--timeout=30s'], srv.kubeconfig);
});

function rawRequest(method: string, path: string, token: string, body: string, contentType: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${srv.url}${path}`, { method, ca: srv.caCert, headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const can = async (as: string, args: string[]): Promise<string> => (await kubectl(['auth', 'can-i', ...args, '--as', `system:serviceaccount:metallb-system:${as}`], srv.kubeconfig)).stdout.trim();

for (const version of ['v0.13.11', 'v0.15.3']) {
  test(`MetalLB ${version}'s roles as RBAC decides them (kubectl auth can-i --as, service-account tokens)`, async () => {
    await kubectlOk(['create', 'namespace', 'metallb-system'], srv.kubeconfig).catch(() => '');
    await kubectlOk(['apply', '-f', join(RBAC, `metallb-${version}.yaml`)], srv.kubeconfig);
    // every metallb.io kind the roles name is served (configurationstates came with v0.15)
    await kubectlOk(['apply', '-f', join(import.meta.dirname, '..', '..', '..', 'deploy', 'crds')], srv.kubeconfig);
    // the controller: Services read-only, only `update` of services/status
    assert.equal(await can('controller', ['update', 'services', '--subresource=status', '-n', 'default']), 'yes');
    assert.equal(await can('controller', ['patch', 'services', '--subresource=status', '-n', 'default']), 'no');
    assert.equal(await can('controller', ['patch', 'services', '-n', 'default']), 'no');
    assert.equal(await can('controller', ['watch', 'services', '-A']), 'yes');
    assert.equal(await can('controller', ['list', 'nodes']), 'yes');
    assert.equal(await can('controller', ['watch', 'nodes']), 'no');
    assert.equal(await can('controller', ['create', 'events', '-n', 'default']), 'yes');
    assert.equal(await can('controller', ['get', 'ipaddresspools.metallb.io', '-n', 'metallb-system']), 'yes');
    assert.equal(await can('controller', ['get', 'ipaddresspools.metallb.io', '-n', 'default']), 'no');
    assert.equal(await can('controller', ['get', 'deployments.apps/controller', '-n', 'metallb-system']), 'yes');
    assert.equal(await can('controller', ['get', 'deployments.apps/speaker', '-n', 'metallb-system']), 'no');
    assert.equal(await can('controller', ['patch', 'validatingwebhookconfigurations.admissionregistration.k8s.io/metallb-webhook-configuration']), 'yes');
    assert.equal(await can('controller', ['patch', 'validatingwebhookconfigurations.admissionregistration.k8s.io/other']), 'no');
    assert.equal(await can('controller', ['update', 'ipaddresspools.metallb.io', '--subresource=status', '-n', 'metallb-system']), version === 'v0.15.3' ? 'yes' : 'no');
    assert.equal(await can('controller', ['create', 'configurationstates.metallb.io', '-n', 'metallb-system']), version === 'v0.15.3' ? 'yes' : 'no');
    // the speaker
    assert.equal(await can('speaker', ['list', 'endpointslices.discovery.k8s.io', '-A']), 'yes');
    assert.equal(await can('speaker', ['get', 'secrets/memberlist', '-n', 'metallb-system']), 'yes');
    assert.equal(await can('speaker', ['list', 'pods', '-n', 'metallb-system']), 'yes');
    assert.equal(await can('speaker', ['list', 'pods', '-n', 'default']), 'no');
    assert.equal(await can('speaker', ['delete', 'servicel2statuses.metallb.io', '-n', 'metallb-system']), version === 'v0.15.3' ? 'yes' : 'no');
    assert.equal(await can('speaker', ['update', 'services', '--subresource=status', '-n', 'default']), 'no');

    // the service accounts' own tokens: what is granted works, the rest is refused in kube-apiserver's words
    const ctl = tokenKubeconfig(srv, `controller-${version}`, (await kubectlOk(['create', 'token', 'controller', '-n', 'metallb-system'], srv.kubeconfig)).trim());
    await kubectlOk(['create', 'service', 'loadbalancer', `lb-${version.replace(/\./g, '-')}`, '--tcp=80', '-n', 'default'], srv.kubeconfig);
    const svcName = `lb-${version.replace(/\./g, '-')}`;
    const svc = await kubectlOk(['get', 'svc', svcName, '-n', 'default', '-o', 'json'], ctl);
    const upd = JSON.parse(svc) as { metadata: { annotations?: Record<string, string> }; status: unknown };
    upd.metadata.annotations = { 'metallb.io/ip-allocated-from-pool': 'pool' };
    upd.status = { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } };
    const put = await kubectl(['replace', '--subresource=status', '-f', '-'], ctl, { input: JSON.stringify(upd) });
    assert.equal(put.code, 0, put.stderr);
    const after = JSON.parse(await kubectlOk(['get', 'svc', svcName, '-n', 'default', '-o', 'json'], srv.kubeconfig)) as { metadata: { annotations: Record<string, string> }; status: { loadBalancer: { ingress: { ip: string }[] } } };
    assert.equal(after.metadata.annotations['metallb.io/ip-allocated-from-pool'], 'pool');
    assert.equal(after.status.loadBalancer.ingress[0]!.ip, '192.0.2.1');
    // kubectl patch reads services/status first, which is not granted either
    const patched = await kubectl(['patch', 'svc', svcName, '-n', 'default', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.2"}]}}}'], ctl);
    assert.match(patched.stderr, new RegExp(`services "${svcName}" is forbidden: User "system:serviceaccount:metallb-system:controller" cannot get resource "services/status" in API group "" in the namespace "default"`));
    const token = (await kubectlOk(['create', 'token', 'controller', '-n', 'metallb-system'], srv.kubeconfig)).trim();
    const direct = await rawRequest('PATCH', `/api/v1/namespaces/default/services/${svcName}/status`, token, '{"status":{}}', 'application/merge-patch+json');
    assert.equal(direct.status, 403);
    assert.equal(
      (JSON.parse(direct.body) as { message: string }).message,
      `services "${svcName}" is forbidden: User "system:serviceaccount:metallb-system:controller" cannot patch resource "services/status" in API group "" in the namespace "default"`,
    );
    const annotate = await kubectl(['annotate', 'svc', svcName, '-n', 'default', 'x=y'], ctl);
    assert.match(annotate.stderr, new RegExp(`services "${svcName}" is forbidden: User "system:serviceaccount:metallb-system:controller" cannot patch resource "services" in API group "" in the namespace "default"`));
    const spk = tokenKubeconfig(srv, `speaker-${version}`, (await kubectlOk(['create', 'token', 'speaker', '-n', 'metallb-system'], srv.kubeconfig)).trim());
    // MetalLB's speaker reads its memberlist Secret through a list restricted by name (resourceNames: memberlist)
    await kubectlOk(['get', 'secrets', '-n', 'metallb-system', '--field-selector', 'metadata.name=memberlist'], spk);
    const nodes = await kubectl(['get', 'nodes'], spk);
    assert.equal(nodes.code, 0, nodes.stderr);
    await kubectlOk(['delete', 'svc', svcName, '-n', 'default'], srv.kubeconfig);
  });
}
