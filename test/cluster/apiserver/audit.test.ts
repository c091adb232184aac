// The audit log (--audit-log-path): one audit.k8s.io/v1 Event per request, with the user, the impersonated user,
// kube-apiserver's verb and object reference, the response code and the authorization decision; watches included.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditEvent, type AuditEvent } from '../../../src/cluster/apiserver/audit.js';
import { requestInfo } from '../../../src/cluster/apiserver/auth/request-info.js';
import { kubectl, kubectlOk, startDevServer, tokenKubeconfig, type DevServerHandle } from '../../helpers/devserver.js';

let srv: DevServerHandle;
let dir: string;
let auditPath: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'devserver-audit-'));
  auditPath = join(dir, 'audit', 'audit.log');
  srv = await startDevServer({ dir, tls: true, tokens: 'tok-eve,eve,eve-uid,"qa"\n', extraArgs: ['--audit-log-path', auditPath] });
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const events = (): AuditEvent[] =>
  existsSync(auditPath)
    ? readFileSync(auditPath, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as AuditEvent)
    : [];

/** The log is written after the response is sent (as kube-apiserver's ResponseComplete stage): wait until it holds what a test expects. */
async function eventsOnceThere(done: (all: AuditEvent[]) => boolean, timeoutMs = 15_000): Promise<AuditEvent[]> {
  const deadline = Date.now() + timeoutMs;
  let all = events();
  while (!done(all) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    all = events();
  }
  return all;
}

test('every request is one Metadata-level event: user, verb, objectRef, response code, decision', async () => {
  const k = (args: string[]): Promise<string> => kubectlOk(args, srv.kubeconfig);
  await k(['create', 'namespace', 'aud']);
  await k(['create', 'configmap', 'c1', '-n', 'aud', '--from-literal=a=b']);
  await k(['get', 'configmaps', '-n', 'aud']);
  const eve = tokenKubeconfig(srv, 'eve', 'tok-eve');
  const refused = await kubectl(['get', 'secrets', '-n', 'aud'], eve);
  assert.notEqual(refused.code, 0);
  await k(['get', 'configmap', 'c1', '-n', 'aud', '--as', 'system:serviceaccount:aud:default']).catch(() => undefined);

  const isImpersonated = (e: AuditEvent): boolean => e.impersonatedUser?.username === 'system:serviceaccount:aud:default' && e.objectRef?.resource === 'configmaps';
  const all = await eventsOnceThere((a) => a.some(isImpersonated));
  for (const e of all) {
    assert.equal(e.kind, 'Event');
    assert.equal(e.apiVersion, 'audit.k8s.io/v1');
    assert.equal(e.level, 'Metadata');
    assert.equal(e.stage, 'ResponseComplete');
    assert.match(e.auditID, /^[0-9a-f-]{36}$/);
    assert.match(e.requestReceivedTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  }
  const create = all.find((e) => e.verb === 'create' && e.objectRef?.resource === 'configmaps');
  assert.ok(create, 'the ConfigMap create');
  assert.deepEqual(create.objectRef, { resource: 'configmaps', namespace: 'aud', apiGroup: '', apiVersion: 'v1' });
  assert.equal(create.user.username, 'kubernetes-admin');
  assert.equal(create.responseStatus.code, 201);
  assert.equal(create.annotations?.['authorization.k8s.io/decision'], 'allow');
  assert.match(create.userAgent ?? '', /^kubectl/);
  assert.ok(all.some((e) => e.verb === 'list' && e.objectRef?.resource === 'configmaps' && e.objectRef.namespace === 'aud' && e.responseStatus.code === 200));
  const denied = all.find((e) => e.user.username === 'eve' && e.objectRef?.resource === 'secrets');
  assert.ok(denied, "eve's refused list");
  assert.equal(denied.verb, 'list');
  assert.equal(denied.responseStatus.code, 403);
  assert.equal(denied.annotations?.['authorization.k8s.io/decision'], 'forbid');
  assert.deepEqual(denied.user.groups, ['qa', 'system:authenticated']);
  const imp = all.find(isImpersonated);
  assert.ok(imp, 'the impersonated request');
  assert.equal(imp.user.username, 'kubernetes-admin');
  assert.equal(imp.objectRef?.name, 'c1');
  assert.ok(all.some((e) => e.verb === 'get' && e.requestURI.startsWith('/api') && e.objectRef === undefined), 'discovery is a non-resource request');
});

test('a watch is logged when it ends, with verb watch; subresources are in the objectRef', async () => {
  const before = events().length;
  const w = await kubectl(['get', 'configmaps', '-n', 'aud', '--watch', '--request-timeout=2s'], srv.kubeconfig, { timeoutMs: 15_000 });
  assert.ok(w.stdout.includes('c1'));
  await kubectlOk(['create', 'serviceaccount', 'sa1', '-n', 'aud'], srv.kubeconfig);
  await kubectlOk(['create', 'token', 'sa1', '-n', 'aud'], srv.kubeconfig);
  const fresh = (await eventsOnceThere((a) => a.slice(before).some((e) => e.objectRef?.subresource === 'token') && a.slice(before).some((e) => e.verb === 'watch'))).slice(before);
  assert.ok(fresh.some((e) => e.verb === 'watch' && e.objectRef?.resource === 'configmaps'), JSON.stringify(fresh.map((e) => e.verb)));
  const token = fresh.find((e) => e.objectRef?.subresource === 'token');
  assert.deepEqual(token?.objectRef, { resource: 'serviceaccounts', namespace: 'aud', name: 'sa1', apiGroup: '', apiVersion: 'v1', subresource: 'token' });
  assert.equal(token?.verb, 'create');
});

test('auditEvent: a request that failed authentication has no user and no decision', () => {
  const ev = auditEvent({
    info: requestInfo('PUT', '/api/v1/namespaces/x/services/s/status', new URLSearchParams()),
    method: 'PUT',
    requestURI: '/api/v1/namespaces/x/services/s/status',
    code: 401,
    received: new Date(0),
  });
  assert.deepEqual(ev.user, {});
  assert.equal(ev.annotations, undefined);
  assert.equal(ev.verb, 'update');
  assert.equal(ev.objectRef?.subresource, 'status');
  assert.equal(ev.requestReceivedTimestamp, '1970-01-01T00:00:00.000000Z');
});
