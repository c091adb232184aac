// The official Python client (Debian's python3-kubernetes) against the dev API server over HTTPS: typed and custom
// objects, a watch (`watch=True` on the wire) that sees another client's status write, patches, error Status bodies
// (ApiException with the reason), conflicts, the scale subresource, TokenRequest and RBAC refusals.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startDevServer, type DevServerHandle } from '../../helpers/devserver.js';

/** A python3 that has the kubernetes package (Debian's /usr/bin/python3 first: a pyenv on the PATH may lack it). */
function findPython(): string {
  for (const p of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(p, ['-c', 'import kubernetes'], { encoding: 'utf8' });
    if (r.status === 0) return p;
  }
  throw new Error('no python3 with the kubernetes package: install Debian\'s python3-kubernetes (.ci/run does)');
}

let srv: DevServerHandle;
before(async () => {
  srv = await startDevServer({ tls: true });
});
after(async () => {
  await srv?.stop();
});

type Check = Record<string, unknown> & { check: string };

test('python3-kubernetes: typed and custom objects, watch, patches, errors, conflicts, scale, tokens, RBAC', () => {
  const python = findPython();
  const r = spawnSync(python, [join(import.meta.dirname, 'python-client.py'), 'pyclient'], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: srv.kubeconfig }, timeout: 120_000 });
  assert.equal(r.status, 0, `python client failed:\n${r.stderr}\n${r.stdout}`);
  const checks = new Map<string, Check>();
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const c = JSON.parse(line) as Check;
    checks.set(c.check, c);
  }
  const c = (name: string): Check => {
    const x = checks.get(name);
    assert.ok(x, `check ${name} ran (stdout: ${r.stdout}, stderr: ${r.stderr})`);
    return x;
  };
  assert.equal(c('created').uid, true);
  assert.deepEqual(c('listed').names, ['cm1']);
  assert.deepEqual(c('patched').data, { a: '1', b: '2' });
  assert.deepEqual(
    { status: c('notfound').status, reason: c('notfound').reason, message: c('notfound').message, kind: c('notfound').kind },
    { status: 404, reason: 'NotFound', message: 'configmaps "nope" not found', kind: 'Status' },
  );
  assert.equal(c('conflict').status, 409);
  assert.equal(c('conflict').reason, 'Conflict');
  assert.equal(c('conflict').message, 'Operation cannot be fulfilled on configmaps "cm1": the object has been modified; please apply your changes to the latest version and try again');
  assert.equal(c('invalid').status, 422);
  assert.equal(c('invalid').reason, 'Invalid');
  assert.match(String(c('invalid').message), /^Service "bad" is invalid: \[spec\.ports\[0\]\.port: Invalid value: 0: must be between 1 and 65535, inclusive/);
  assert.ok(Array.isArray(c('invalid').causes));
  const w = c('watch');
  assert.deepEqual((w.events as unknown[])[0], ['ADDED', 'web', []]);
  assert.deepEqual((w.events as unknown[]).at(-1), ['MODIFIED', 'web', ['192.0.2.10']]);
  assert.equal(w.annotation, 'pool1');
  assert.deepEqual(c('custom-created'), { check: 'custom-created', name: 'p1', size: 2 });
  assert.deepEqual(c('custom-patched'), { check: 'custom-patched', size: 3, generation: 2 });
  assert.deepEqual(c('custom-status'), { check: 'custom-status', status: { ready: true }, generation: 2 });
  assert.equal(c('custom-invalid').status, 422);
  assert.match(String(c('custom-invalid').message), /^Pool\.example\.com "p1" is invalid: spec\.size: Invalid value: 0: spec\.size in body should be greater than or equal to 1/);
  assert.deepEqual(c('custom-list').names, ['p1']);
  assert.equal(c('custom-deleted').kind, 'Pool');
  assert.deepEqual(c('scaled'), { check: 'scaled', replicas: 4, deployment: 4 });
  assert.deepEqual(c('foreground'), { check: 'foreground', finalizers: ['foregroundDeletion'], deleting: true });
  assert.equal(c('forbidden').status, 403);
  assert.equal(c('forbidden').message, 'pods is forbidden: User "system:serviceaccount:pyclient:robot" cannot list resource "pods" in API group "" in the namespace "pyclient"');
  assert.equal(c('ssar').allowed, false);
  c('done');
});
