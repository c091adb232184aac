// The dev API server over HTTPS with its own CA, driven with the real kubectl: the admin kubeconfig, static tokens,
// anonymous requests, service-account tokens (kubectl create token), RBAC with kube-apiserver's refusals, impersonation,
// kubectl auth can-i / whoami, the kubernetes Service endpoints and kubeadm's kube-proxy ConfigMap.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { parse } from 'yaml';
import { kubectl, kubectlBinary, kubectlOk, startDevServer, tokenKubeconfig, type DevServerHandle } from '../../helpers/devserver.js';

let srv: DevServerHandle;
const k = (args: string[], input?: string) => kubectlOk(args, srv.kubeconfig, input === undefined ? {} : { input });
let bob: string;

let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'devserver-tls-'));
  srv = await startDevServer({
    dir,
    tls: true,
    tokens: 'tok-bob,bob,bob-uid,"dev,qa"\ntok-proxy,system:kube-proxy,\n',
    extraArgs: ['--advertise-address', '127.0.0.1', '--kube-proxy-configmap', 'nftables', '--cluster-cidr', '10.244.0.0/16,fd00:10:244::/56', '--kubeconfig-for', `system:node:node1,system:nodes=${join(dir, 'node1.kubeconfig')}`],
  });
  bob = tokenKubeconfig(srv, 'bob', 'tok-bob');
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('HTTPS with a CA of its own: the admin kubeconfig carries the CA and a kubernetes-admin client certificate in system:masters', async () => {
  assert.match(srv.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const kc = parse(readFileSync(srv.kubeconfig, 'utf8')) as { clusters: { cluster: Record<string, string> }[]; users: { name: string; user: Record<string, string> }[] };
  assert.ok(kc.clusters[0]!.cluster['certificate-authority-data']);
  assert.equal(kc.clusters[0]!.cluster['insecure-skip-tls-verify'], undefined);
  assert.equal(kc.users[0]!.name, 'kubernetes-admin');
  const cert = new X509Certificate(Buffer.from(kc.users[0]!.user['client-certificate-data']!, 'base64'));
  assert.equal(cert.subject, 'CN=kubernetes-admin\nO=system:masters');
  const who = await k(['auth', 'whoami', '-o', 'json']);
  assert.deepEqual((JSON.parse(who) as { status: { userInfo: unknown } }).status.userInfo, { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] });
  // the serving certificate names the kubernetes Service and the advertised address
  const serving = new X509Certificate(readFileSync(join(srv.dir, 'pki', 'apiserver.crt')));
  for (const san of ['DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local', 'IP Address:10.96.0.1', 'IP Address:127.0.0.1']) assert.ok(serving.subjectAltName!.includes(san), san);
  assert.equal(statSync(join(srv.dir, 'pki', 'ca.key')).mode & 0o777, 0o600);
  // with another CA, kubectl refuses the server
  const wrongCa = tokenKubeconfig({ ...srv, caCert: readFileSync(join(srv.dir, 'pki', 'admin.crt'), 'utf8') }, 'wrong-ca', 'tok-bob');
  const bad = await kubectl(['get', 'ns'], wrongCa);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /certificate signed by unknown authority/);
});

test('kubeconfigs for other identities (--kubeconfig-for) and static tokens (--token-auth-file)', async () => {
  const node = await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username} {.status.userInfo.groups}'], join(dir, 'node1.kubeconfig'));
  assert.equal(node, 'system:node:node1 ["system:nodes","system:authenticated"]');
  // a kubelet reads its pods' service accounts (automountServiceAccountToken) and asks for their tokens
  const nodeCan = async (...args: string[]) => (await kubectl(['auth', 'can-i', ...args], join(dir, 'node1.kubeconfig'))).stdout.trim();
  assert.equal(await nodeCan('get', 'serviceaccounts', '-n', 'default'), 'yes');
  assert.equal(await nodeCan('create', 'serviceaccounts', '--subresource=token', '-n', 'default'), 'yes');
  assert.equal(await nodeCan('update', 'serviceaccounts', '-n', 'default'), 'no');
  const b = await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username} {.status.userInfo.uid} {.status.userInfo.groups}'], bob);
  assert.equal(b, 'bob bob-uid ["dev","qa","system:authenticated"]');
  const wrong = await kubectl(['get', 'pods', '--token', 'nope'], bob);
  assert.equal(wrong.code, 1);
  // (kubectl words a 401 either way, depending on which of its requests met it)
  assert.match(wrong.stderr, /error: You must be logged in to the server \((Unauthorized|the server has asked for the client to provide credentials)\)/);
});

/** A request without credentials (kubectl would prompt for a user name), verifying the server with the CA. */
function anonymous(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${srv.url}${path}`, { ca: srv.caCert }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('anonymous requests: public info only (system:public-info-viewer), discovery refused like kube-apiserver', async () => {
  const v = await anonymous('/version');
  assert.equal(v.status, 200);
  assert.equal((JSON.parse(v.body) as { major: string }).major, '1');
  assert.deepEqual(await anonymous('/healthz'), { status: 200, body: 'ok' });
  const api = await anonymous('/api');
  assert.equal(api.status, 403);
  assert.deepEqual(JSON.parse(api.body), {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'forbidden: User "system:anonymous" cannot get path "/api"',
    reason: 'Forbidden',
    details: {},
    code: 403,
  });
  const pods = await anonymous('/api/v1/namespaces/default/pods');
  assert.equal(pods.status, 403);
  assert.equal((JSON.parse(pods.body) as { message: string }).message, 'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default"');
});

test('RBAC: a refusal in kube-apiserver words; bindings grant; resourceNames; list by metadata.name; non-resource URLs', async () => {
  const denied = await kubectl(['get', 'services'], bob);
  assert.equal(denied.code, 1);
  assert.equal(denied.stderr.trim(), 'Error from server (Forbidden): services is forbidden: User "bob" cannot list resource "services" in API group "" in the namespace "default"');
  await k(['create', 'namespace', 'rbac1']);
  await k(['create', 'rolebinding', 'bob-view', '--clusterrole=view', '--user=bob', '-n', 'rbac1']);
  assert.match(await kubectlOk(['get', 'services', '-n', 'rbac1'], bob), /No resources found|^$/);
  const cross = await kubectl(['get', 'services', '-n', 'default'], bob);
  assert.equal(cross.code, 1);
  // view does not include secrets; a Role with resourceNames grants one
  await k(['create', 'secret', 'generic', 'memberlist', '--from-literal=k=v', '-n', 'rbac1']);
  await k(['create', 'secret', 'generic', 'other', '--from-literal=k=v', '-n', 'rbac1']);
  await k(['create', 'role', 'ml', '--verb=get,list', '--resource=secrets', '--resource-name=memberlist', '-n', 'rbac1']);
  await k(['create', 'rolebinding', 'ml', '--role=ml', '--group=qa', '-n', 'rbac1']);
  assert.match(await kubectlOk(['get', 'secret', 'memberlist', '-n', 'rbac1', '-o', 'name'], bob), /secret\/memberlist/);
  const other = await kubectl(['get', 'secret', 'other', '-n', 'rbac1'], bob);
  assert.equal(other.stderr.trim(), 'Error from server (Forbidden): secrets "other" is forbidden: User "bob" cannot get resource "secrets" in API group "" in the namespace "rbac1"');
  // a list restricted to the granted name by a field selector is allowed (how MetalLB's speaker reads `memberlist`)
  assert.match(await kubectlOk(['get', 'secrets', '-n', 'rbac1', '--field-selector', 'metadata.name=memberlist', '-o', 'name'], bob), /secret\/memberlist/);
  assert.equal((await kubectl(['get', 'secrets', '-n', 'rbac1'], bob)).code, 1);
  // cluster-scoped refusal and a ClusterRole with a non-resource URL
  const nodes = await kubectl(['get', 'nodes'], bob);
  assert.equal(nodes.stderr.trim(), 'Error from server (Forbidden): nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope');
  assert.notEqual((await kubectl(['get', '--raw', '/metrics'], bob)).code, 0);
  await k(['create', 'clusterrole', 'metrics-reader', '--verb=get', '--non-resource-url=/metrics*']);
  await k(['create', 'clusterrolebinding', 'bob-metrics', '--clusterrole=metrics-reader', '--user=bob']);
  const m = await kubectl(['get', '--raw', '/metrics'], bob);
  assert.doesNotMatch(m.stderr, /forbidden/);
});

test('ClusterRole aggregation keeps admin/edit/view up to date', async () => {
  await k(['create', 'clusterrole', 'pools-view', '--verb=get,list,watch', '--resource=nodes']);
  await k(['label', 'clusterrole', 'pools-view', 'rbac.authorization.k8s.io/aggregate-to-view=true']);
  const has = async (role: string): Promise<boolean> => {
    const r = JSON.parse(await k(['get', 'clusterrole', role, '-o', 'json'])) as { rules?: { resources?: string[] }[] };
    return (r.rules ?? []).some((x) => x.resources?.includes('nodes'));
  };
  assert.ok(await has('view'));
  assert.ok(await has('edit'));
  assert.ok(await has('admin'));
  await k(['delete', 'clusterrole', 'pools-view']);
  assert.ok(!(await has('view')));
  assert.ok(!(await has('admin')));
});

test('kubectl auth can-i (--as, --list) and impersonation gated by the impersonate verb', async () => {
  assert.equal((await kubectl(['auth', 'can-i', 'list', 'services', '-n', 'rbac1', '--as', 'bob'], srv.kubeconfig)).stdout.trim(), 'yes');
  const no = await kubectl(['auth', 'can-i', 'delete', 'services', '-n', 'rbac1', '--as', 'bob'], srv.kubeconfig);
  assert.equal(no.stdout.trim(), 'no');
  assert.equal(no.code, 1);
  assert.equal((await kubectl(['auth', 'can-i', 'get', 'pods', '--as', 'system:serviceaccount:kube-system:default'], srv.kubeconfig)).stdout.trim(), 'no');
  assert.equal((await kubectl(['auth', 'can-i', 'list', 'nodes', '--as', 'system:kube-proxy'], srv.kubeconfig)).stdout.trim(), 'yes');
  assert.equal((await kubectl(['auth', 'can-i', 'create', 'pods', '--subresource', 'binding', '--as', 'system:kube-scheduler'], srv.kubeconfig)).stdout.trim(), 'yes');
  const list = await kubectlOk(['auth', 'can-i', '--list', '-n', 'rbac1', '--as', 'bob', '--as-group', 'qa'], srv.kubeconfig);
  assert.match(list, /^Resources\s+Non-Resource URLs\s+Resource Names\s+Verbs/);
  assert.match(list, /secrets\s+\[\]\s+\[memberlist\]\s+\[get list\]/);
  assert.match(list, /\[\/version\]\s+\[\]\s+\[get\]/);
  const mine = await kubectlOk(['auth', 'can-i', '--list'], bob);
  assert.match(mine, /selfsubjectaccessreviews\.authorization\.k8s\.io/);
  // bob may not impersonate
  const imp = await kubectl(['get', 'pods', '--as', 'alice'], bob);
  assert.equal(imp.stderr.trim(), 'Error from server (Forbidden): users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope');
  const impSa = await kubectl(['get', 'pods', '--as', 'system:serviceaccount:rbac1:default'], bob);
  assert.equal(impSa.stderr.trim(), 'Error from server (Forbidden): serviceaccounts "default" is forbidden: User "bob" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "rbac1"');
  // the impersonated service account gets its groups
  const who = await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.groups}', '--as', 'system:serviceaccount:rbac1:default'], srv.kubeconfig);
  assert.equal(who, '["system:serviceaccounts","system:serviceaccounts:rbac1","system:authenticated"]');
});

test('service-account tokens: kubectl create token authenticates as the SA until it is deleted; duration limits', async () => {
  await k(['create', 'namespace', 'sa1']);
  await k(['create', 'serviceaccount', 'robot', '-n', 'sa1']);
  const token = (await k(['create', 'token', 'robot', '-n', 'sa1'])).trim();
  assert.equal(token.split('.').length, 3);
  const kc = tokenKubeconfig(srv, 'robot', token);
  assert.equal(await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], kc), 'system:serviceaccount:sa1:robot');
  const refused = await kubectl(['get', 'pods', '-n', 'sa1'], kc);
  assert.equal(refused.stderr.trim(), 'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:sa1:robot" cannot list resource "pods" in API group "" in the namespace "sa1"');
  await k(['create', 'rolebinding', 'robot', '--clusterrole=edit', '--serviceaccount=sa1:robot', '-n', 'sa1']);
  assert.equal((await kubectl(['get', 'pods', '-n', 'sa1'], kc)).code, 0);
  const short = await kubectl(['create', 'token', 'robot', '-n', 'sa1', '--duration', '5m'], srv.kubeconfig);
  assert.match(short.stderr, /TokenRequest.authentication.k8s.io "robot" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes/);
  const missing = await kubectl(['create', 'token', 'ghost', '-n', 'sa1'], srv.kubeconfig);
  assert.match(missing.stderr, /serviceaccounts "ghost" not found/);
  // a legacy token Secret is filled in as the token controller would, and works
  await k(['apply', '-f', '-'], 'apiVersion: v1\nkind: Secret\nmetadata: {name: robot-token, namespace: sa1, annotations: {kubernetes.io/service-account.name: robot}}\ntype: kubernetes.io/service-account-token\n');
  const sec = JSON.parse(await k(['get', 'secret', 'robot-token', '-n', 'sa1', '-o', 'json'])) as { data: Record<string, string> };
  assert.equal(Buffer.from(sec.data['ca.crt']!, 'base64').toString(), srv.caCert);
  assert.equal(Buffer.from(sec.data.namespace!, 'base64').toString(), 'sa1');
  const legacy = tokenKubeconfig(srv, 'robot-legacy', Buffer.from(sec.data.token!, 'base64').toString());
  assert.equal(await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], legacy), 'system:serviceaccount:sa1:robot');
  await k(['delete', 'serviceaccount', 'robot', '-n', 'sa1']);
  const gone = await kubectl(['get', 'pods', '-n', 'sa1'], kc);
  assert.match(gone.stderr, /Unauthorized/);
  assert.match((await kubectl(['get', 'pods', '-n', 'sa1'], legacy)).stderr, /Unauthorized/);
});

test('the kubernetes Service points at the advertised address; kubeadm kube-proxy ConfigMap and the strictARP edit from the MetalLB docs', async () => {
  const eps = JSON.parse(await k(['get', 'endpointslice', 'kubernetes', '-n', 'default', '-o', 'json'])) as { addressType: string; endpoints: { addresses: string[] }[]; ports: { port: number; name: string }[] };
  const port = Number(new URL(srv.url).port);
  assert.equal(eps.addressType, 'IPv4');
  assert.deepEqual(eps.endpoints.map((e) => e.addresses), [['127.0.0.1']]);
  assert.deepEqual(eps.ports.map((p) => [p.name, p.port]), [['https', port]]);
  const svc = JSON.parse(await k(['get', 'svc', 'kubernetes', '-o', 'json'])) as { spec: { ports: { port: number; targetPort: number }[]; clusterIP: string } };
  assert.deepEqual(svc.spec.ports.map((p) => [p.port, p.targetPort]), [[443, port]]);
  const cm = await k(['get', 'configmap', 'kube-proxy', '-n', 'kube-system', '-o', 'yaml']);
  assert.match(cm, /mode: nftables/);
  assert.match(cm, /strictARP: false/);
  assert.match(cm, /clusterCIDR: 10\.244\.0\.0\/16,fd00:10:244::\/56/);
  const applied = await k(['apply', '-f', '-', '-n', 'kube-system'], cm.replace('strictARP: false', 'strictARP: true'));
  assert.match(applied, /configmap\/kube-proxy configured/);
  const conf = parse(JSON.parse(await k(['get', 'configmap', 'kube-proxy', '-n', 'kube-system', '-o', 'json'])).data['config.conf'] as string) as { ipvs: { strictARP: boolean }; kind: string };
  assert.equal(conf.kind, 'KubeProxyConfiguration');
  assert.equal(conf.ipvs.strictARP, true);
  // kube-proxy's identity can read what it needs, nothing more
  const proxy = tokenKubeconfig(srv, 'proxy', 'tok-proxy');
  assert.equal((await kubectl(['get', 'endpointslices', '-A'], proxy)).code, 0);
  assert.equal((await kubectl(['get', 'secrets', '-A'], proxy)).code, 1);
});

test('the oldest and newest kubectl here (1.27, 1.33): can-i, create token, whoami, and the same refusal', async () => {
  for (const v of ['1.27', '1.33']) {
    const bin = kubectlBinary(v);
    assert.ok(bin, `kubectl ${v} is installed beside the default one`);
    assert.equal((await kubectl(['auth', 'can-i', 'list', 'services', '-n', 'rbac1', '--as', 'bob'], srv.kubeconfig, { bin })).stdout.trim(), 'yes', v);
    assert.equal((await kubectl(['auth', 'can-i', 'delete', 'services', '-n', 'rbac1', '--as', 'bob'], srv.kubeconfig, { bin })).stdout.trim(), 'no', v);
    const token = (await kubectlOk(['create', 'token', 'default', '-n', 'rbac1'], srv.kubeconfig, { bin })).trim();
    const kc = tokenKubeconfig(srv, `default-${v}`, token);
    const refused = await kubectl(['get', 'secrets', '-n', 'rbac1'], kc, { bin });
    assert.equal(refused.stderr.trim(), 'Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:rbac1:default" cannot list resource "secrets" in API group "" in the namespace "rbac1"', v);
    // SelfSubjectReview is authentication.k8s.io/v1 on a 1.32 server; kubectl 1.27 only knows v1alpha1/v1beta1
    if (v !== '1.27') assert.equal(await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], kc, { bin }), 'system:serviceaccount:rbac1:default');
  }
});

test('escalation prevention: roles and bindings only with permissions held (or the escalate / bind verbs)', async () => {
  await k(['create', 'namespace', 'esc1']);
  await k(['create', 'rolebinding', 'bob-admin', '--clusterrole=admin', '--user=bob', '-n', 'esc1']);
  // within what admin holds in the namespace: allowed
  assert.match(await kubectlOk(['create', 'role', 'pod-reader', '--verb=get,list', '--resource=pods', '-n', 'esc1'], bob), /role.rbac.authorization.k8s.io\/pod-reader created/);
  const beyond = await kubectl(['create', 'role', 'node-reader', '--verb=list,watch', '--resource=nodes,priorityclasses.scheduling.k8s.io', '-n', 'esc1'], bob);
  assert.equal(
    beyond.stderr.trim(),
    'Error from server (Forbidden): roles.rbac.authorization.k8s.io "node-reader" is forbidden: user "bob" (groups=["dev" "qa" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n' +
      '{APIGroups:[""], Resources:["nodes"], Verbs:["list" "watch"]}\n{APIGroups:["scheduling.k8s.io"], Resources:["priorityclasses"], Verbs:["list" "watch"]}',
  );
  const bindAdmin = await kubectl(['create', 'rolebinding', 'grab', '--clusterrole=cluster-admin', '--user=bob', '-n', 'esc1'], bob);
  assert.match(bindAdmin.stderr, /rolebindings.rbac.authorization.k8s.io "grab" is forbidden: user "bob" .* is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\["\*"\], Resources:\["\*"\], Verbs:\["\*"\]\}/);
  // the bind verb on a role lets bob bind it without holding its permissions
  await k(['create', 'clusterrole', 'node-viewer', '--verb=get,list', '--resource=nodes']);
  assert.notEqual((await kubectl(['create', 'rolebinding', 'nv', '--clusterrole=node-viewer', '--user=alice', '-n', 'esc1'], bob)).code, 0);
  await k(['create', 'clusterrole', 'bind-node-viewer', '--verb=bind', '--resource=clusterroles', '--resource-name=node-viewer']);
  await k(['create', 'rolebinding', 'bob-bind', '--clusterrole=bind-node-viewer', '--user=bob', '-n', 'esc1']);
  assert.match(await kubectlOk(['create', 'rolebinding', 'nv', '--clusterrole=node-viewer', '--user=alice', '-n', 'esc1'], bob), /created/);
  // a binding's roleRef cannot change
  const changed = await kubectl(['patch', 'rolebinding', 'nv', '-n', 'esc1', '--type=merge', '-p', '{"roleRef":{"name":"view"}}'], srv.kubeconfig);
  assert.match(changed.stderr, /The RoleBinding "nv" is invalid: roleRef: Invalid value: .*: cannot change roleRef/);
});

test('the endpoint reconciler puts the kubernetes Service and its endpoints back', { timeout: 60_000 }, async () => {
  await k(['delete', 'endpointslice', 'kubernetes', '-n', 'default']);
  await k(['delete', 'service', 'kubernetes', '-n', 'default']);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const svc = await kubectl(['get', 'service', 'kubernetes', '-n', 'default', '-o', 'jsonpath={.spec.clusterIP}'], srv.kubeconfig);
    const eps = await kubectl(['get', 'endpointslice', 'kubernetes', '-n', 'default', '-o', 'jsonpath={.endpoints[0].addresses[0]}'], srv.kubeconfig);
    if (svc.code === 0 && eps.code === 0) {
      assert.equal(svc.stdout, '10.96.0.1');
      assert.equal(eps.stdout, '127.0.0.1');
      break;
    }
    assert.ok(Date.now() < deadline, 'recreated within 30 s');
    await new Promise((r) => setTimeout(r, 500));
  }
});
