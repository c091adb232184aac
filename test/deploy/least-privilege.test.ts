// Least privilege, measured: the controller runs as deploy/manifests/controller.yaml runs it (its arguments and
// environment), with a token of the `controller` ServiceAccount and exactly the roles of deploy/manifests/rbac.yaml,
// against the dev API server with RBAC and an audit log. After a scenario that uses every controller feature, the
// (verb, resource, subresource, name) of every request it made is compared with what the roles grant, both ways:
// nothing refused or granted elsewhere, nothing granted and never used, except the grants listed in RARELY with why.
// (The speaker's requests are compared the same way in test/speaker/rbac.test.ts: it needs network namespaces.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenKubeconfig } from '../helpers/devserver.js';
import { rbacObjectsOfManifest } from '../helpers/metallb-rbac.js';
import { compareUsage, grantsOf, readAudit, requestsOf } from '../helpers/rbac-usage.js';
import { NS, poolYaml, serviceYaml, sleep, startController, startEnv, waitFor, type ControllerHandle } from '../controller/helpers.js';
import { exerciseServices } from '../controller/scenario.js';
import { DEPLOY, loadYamlDocs, type Obj } from './lib.js';

/** Grants the scenario may not use, and why they are needed anyway. */
export const RARELY_CONTROLLER: Record<string, string> = {
  'get services': 'reads a Service again after a 409 on its status update (someone edited it meanwhile); unit-tested in test/controller/service-reconciler.test.ts',
};

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** The controller container of deploy/manifests/controller.yaml: its arguments with $(VAR) expanded, and its env. */
function manifestController(podName: string): { args: string[]; env: Record<string, string> } {
  const dep = loadYamlDocs(join(DEPLOY, 'manifests', 'controller.yaml')).find((d) => d.kind === 'Deployment')!;
  const c = (dep.spec.template.spec.containers as Obj[]).find((x) => x.name === 'controller')!;
  const fields: Record<string, string> = { 'metadata.namespace': NS, 'metadata.name': podName };
  const env: Record<string, string> = {};
  for (const e of c.env as Obj[]) env[e.name] = e.value ?? fields[e.valueFrom?.fieldRef?.fieldPath] ?? '';
  const args = (c.args as string[]).map((a) => a.replace(/\$\((\w+)\)/g, (_m, v: string) => env[v] ?? ''));
  return { args, env };
}

test('deploy/manifests/rbac.yaml grants the controller exactly what it uses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'least-priv-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const auditPath = join(dir, 'audit.log');
  const env = await startEnv({ tls: true, serviceCIDRv6: 'fd00:10:96::/112', nodePortRange: '1024-65535', extraArgs: ['--audit-log-path', auditPath] });
  cleanups.push(() => env.close());
  const rbac = rbacObjectsOfManifest(join(DEPLOY, 'manifests', 'rbac.yaml'));
  for (const f of ['rbac.yaml', 'webhook.yaml', 'controller.yaml']) await env.kc(['apply', '-f', join(DEPLOY, 'manifests', f)]);
  await env.kc(['create', 'namespace', 'apps']);
  const token = (await env.kc(['create', 'token', 'controller', '-n', NS, '--duration', '2h'])).trim();
  const kubeconfig = tokenKubeconfig(env.srv, 'controller', token);

  // As the Deployment runs it; the ports are the test's (any free port), the certificate is generated.
  const m = manifestController('controller-7d9f-abcde');
  assert.equal(m.args[0], 'controller');
  const args = m.args.slice(1).filter((a) => !/^--(metrics-port|health-probe-port|webhook-port)=/.test(a));
  const start = async (): Promise<ControllerHandle> => {
    const ctl = await startController(kubeconfig, { args, env: m.env });
    cleanups.push(() => ctl.stop());
    return ctl;
  };
  let ctl = await start();
  // The webhook configuration gets the generated CA.
  await waitFor('CA bundle in the webhook configuration', async () => {
    const vwc = await env.api.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/metallb-webhook-configuration');
    return vwc.webhooks.every((w) => w.clientConfig.caBundle);
  }, 30_000);
  // The admission webhook is reachable the way the API server reaches it: the Service's endpoints.
  await env.apply(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: metallb-webhook-service-x, namespace: ${NS}, labels: {kubernetes.io/service-name: metallb-webhook-service}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
ports: [{name: webhook, port: ${ctl.ports.webhook}, protocol: TCP}]
`);

  await exerciseServices(env);
  // A Service that stops being a LoadBalancer is cleared (status and annotation, one update).
  await env.kc(['patch', 'service', '-n', 'apps', 'v6', '--type=merge', '-p', '{"spec":{"type":"ClusterIP"}}']);
  await env.waitIPs('apps', 'v6', 0);
  // A configuration error the webhook lets through (references are checked at run time): an InvalidConfiguration
  // event and the ConfigurationState; then fixed.
  await env.apply(`apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: dangling, namespace: ${NS}}
spec: {ipAddressPools: [main], communities: [no-such-community]}
`);
  await waitFor('ConfigurationState Invalid', async () => {
    const cs = await env.api.get<{ status?: { result?: string } }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/configurationstates/controller`).catch(() => undefined);
    return cs?.status?.result === 'Invalid';
  });
  await waitFor('InvalidConfiguration event', async () => {
    const list = await env.api.get<{ items: { reason: string; involvedObject: { name: string } }[] }>(`/api/v1/namespaces/${NS}/events`);
    return list.items.some((e) => e.reason === 'InvalidConfiguration' && e.involvedObject.name === 'dangling');
  });
  await env.kc(['delete', 'bgpadvertisement', '-n', NS, 'dangling']);
  await waitFor('ConfigurationState Valid', async () => {
    const cs = await env.api.get<{ status?: { result?: string } }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/configurationstates/controller`);
    return cs.status?.result === 'Valid';
  });
  await waitFor('pool counters', async () => {
    const p = await env.api.get<{ status?: Record<string, number> }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/ipaddresspools/tiny`);
    return p.status?.assignedIPv4 === 1;
  });
  await waitFor('memberlist secret', () => env.api.get(`/api/v1/namespaces/${NS}/secrets/memberlist`).catch(() => undefined));

  // A stored webhook certificate that no longer fits (here: garbage) is replaced at the next start.
  const first = ctl;
  await ctl.stop();
  await env.api.mergePatch(`/api/v1/namespaces/${NS}/secrets/metallb-webhook-cert`, { data: { 'tls.crt': Buffer.from('garbage').toString('base64') } });
  ctl = await start();
  await waitFor('a new certificate stored', async () => {
    const s = await env.api.get<{ data: Record<string, string> }>(`/api/v1/namespaces/${NS}/secrets/metallb-webhook-cert`);
    return Buffer.from(s.data['tls.crt'] ?? '', 'base64').toString().includes('BEGIN CERTIFICATE');
  }, 30_000);
  await env.apply(serviceYaml('apps', 'after-restart'));
  await env.waitIPs('apps', 'after-restart');
  await ctl.stop();
  await sleep(500);

  const requests = requestsOf(readAudit(auditPath), `system:serviceaccount:${NS}:controller`);
  assert.ok(requests.length > 50, `${requests.length} requests recorded`);
  const usage = compareUsage(requests, grantsOf(rbac, NS, 'controller'), RARELY_CONTROLLER);
  assert.deepEqual(usage.missing, [], 'requests the roles do not grant');
  assert.deepEqual(usage.unused, [], 'grants never used');
  // Every feature was on (none lost its permission on the way).
  for (const l of [...first.lines(), ...ctl.lines()]) assert.equal(l.feature, undefined, JSON.stringify(l));
});
