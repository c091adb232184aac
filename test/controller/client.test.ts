import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, KubeClient, KubeConfigError, loadKubeConfig, toJSON } from '../../src/k8s/client.js';
import { EventRecorder } from '../../src/k8s/events.js';
import { createLogger } from '../../src/log.js';

const kubeconfig = (user: string, cluster = 'server: http://127.0.0.1:1'): string => `apiVersion: v1
kind: Config
current-context: c
contexts:
- name: c
  context: {cluster: k, user: u, namespace: ns1}
clusters:
- name: k
  cluster: {${cluster}}
users:
- name: u
  user: {${user}}
`;

test('kubeconfig: tokens, token files (relative to the file), basic auth, cert files must exist', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = join(dir, 'config');
  writeFileSync(p, kubeconfig('token: abc'));
  const a = loadKubeConfig(p);
  assert.equal(a.server.href, 'http://127.0.0.1:1/');
  assert.equal(a.namespace, 'ns1');
  assert.deepEqual(await a.authHeaders(), { Authorization: 'Bearer abc' });
  writeFileSync(join(dir, 'tok'), 'from-file\n');
  writeFileSync(p, kubeconfig('tokenFile: tok'));
  assert.deepEqual(await loadKubeConfig(p).authHeaders(), { Authorization: 'Bearer from-file' });
  writeFileSync(p, kubeconfig('username: admin, password: pw'));
  assert.deepEqual(await loadKubeConfig(p).authHeaders(), { Authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}` });
  writeFileSync(p, kubeconfig('client-certificate: nope.crt, client-key: nope.key'));
  assert.throws(() => loadKubeConfig(p), (e: unknown) => e instanceof KubeConfigError && /client-certificate file .*nope\.crt does not exist/.test(e.message));
  writeFileSync(p, kubeconfig('token: x', 'server: "https://10.0.0.1:6443", certificate-authority-data: "' + Buffer.from('PEM').toString('base64') + '", insecure-skip-tls-verify: true'));
  const b = loadKubeConfig(p);
  assert.equal(b.ca?.toString(), 'PEM');
  assert.equal(b.insecureSkipTLSVerify, true);
  // TLS material that cannot work is a clear error at load time (naming the field), not a TLS failure per request.
  const b64 = (t: string): string => Buffer.from(t).toString('base64');
  writeFileSync(p, kubeconfig('token: x', `server: "https://10.0.0.1:6443", certificate-authority-data: "${b64('not a certificate')}"`));
  assert.throws(() => loadKubeConfig(p), (e: unknown) => e instanceof KubeConfigError && /cluster "k" certificate-authority is not a PEM or DER certificate/.test(e.message));
  writeFileSync(p, kubeconfig(`client-certificate-data: "${b64('garbage')}", client-key-data: "${b64('garbage')}"`, 'server: "https://10.0.0.1:6443"'));
  assert.throws(() => loadKubeConfig(p), (e: unknown) => e instanceof KubeConfigError && /user "u" client certificate and key are not usable/.test(e.message));
  writeFileSync(p, kubeconfig('token: x', `server: "https://10.0.0.1:6443", certificate-authority: "${dir}"`));
  assert.throws(() => loadKubeConfig(p), (e: unknown) => e instanceof KubeConfigError && /certificate-authority file .* cannot be read/.test(e.message));
  writeFileSync(p, kubeconfig('token: x', 'server: "ftp://x"'));
  assert.throws(() => loadKubeConfig(p), /is not http\(s\)/);
  writeFileSync(p, kubeconfig('token: x').replace('user: u, namespace', 'user: ghost, namespace'));
  assert.throws(() => loadKubeConfig(p), /undefined user "ghost"/);
});

test('kubeconfig: no path and not in a cluster is a clear error', () => {
  const saved = { h: process.env.KUBERNETES_SERVICE_HOST, p: process.env.KUBERNETES_SERVICE_PORT };
  delete process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_PORT;
  try {
    assert.throws(() => loadKubeConfig(undefined), /not running in a cluster/);
  } finally {
    if (saved.h !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved.h;
    if (saved.p !== undefined) process.env.KUBERNETES_SERVICE_PORT = saved.p;
  }
});

test('toJSON writes bigints as integer literals', () => {
  assert.equal(toJSON({ a: 9223372036854775807n, b: [1n, 'x'] }), '{"a":9223372036854775807,"b":[1,"x"]}');
});

/** A tiny fake API server recording requests. */
async function fakeServer(handler: (method: string, url: string, body: unknown) => { status: number; body: unknown }) {
  const reqs: { method: string; url: string; body: unknown; auth?: string; type?: string }[] = [];
  const server = http.createServer((req, res) => {
    let t = '';
    req.setEncoding('utf8').on('data', (c: string) => (t += c)).on('end', () => {
      const body = t ? (JSON.parse(t) as unknown) : undefined;
      reqs.push({ method: req.method ?? '', url: req.url ?? '', body, auth: req.headers.authorization, type: req.headers['content-type'] });
      const r = handler(req.method ?? '', req.url ?? '', body);
      res.writeHead(r.status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'kc-'));
  writeFileSync(join(dir, 'config'), kubeconfig('token: t0k', `server: http://127.0.0.1:${port}`));
  const client = new KubeClient(loadKubeConfig(join(dir, 'config')));
  return {
    reqs,
    client,
    close: async () => {
      client.close();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('client: JSON requests with the token; non-2xx become ApiError with status and reason', async (t) => {
  const f = await fakeServer((m, url) =>
    url.includes('missing') ? { status: 404, body: { kind: 'Status', reason: 'NotFound', message: 'services "missing" not found' } } : { status: 200, body: { ok: m } },
  );
  t.after(() => f.close());
  assert.deepEqual(await f.client.mergePatch('/api/v1/x', { a: 1 }), { ok: 'PATCH' });
  assert.equal(f.reqs[0]?.auth, 'Bearer t0k');
  assert.equal(f.reqs[0]?.type, 'application/merge-patch+json');
  await assert.rejects(f.client.get('/api/v1/missing'), (e: unknown) => e instanceof ApiError && e.status === 404 && e.reason === 'NotFound' && /not found/.test(e.message));
});

test('event recorder: a repeated event bumps count and lastTimestamp of the same Event', async (t) => {
  const f = await fakeServer((m, _url, body) => ({ status: m === 'POST' ? 201 : 200, body: body ?? {} }));
  t.after(() => f.close());
  const rec = new EventRecorder(f.client, createLogger('test', 'none'), { component: 'metallb-controller' });
  const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default', uid: 'u1' } };
  rec.record(svc, 'Warning', 'AllocationFailed', 'no available IPs');
  await rec.flush();
  rec.record(svc, 'Warning', 'AllocationFailed', 'no available IPs');
  await rec.flush();
  rec.record(svc, 'Normal', 'IPAllocated', 'Assigned IP ["192.0.2.1"]');
  await rec.flush();
  assert.deepEqual(f.reqs.map((r) => r.method), ['POST', 'PATCH', 'POST']);
  const ev = f.reqs[0]!.body as { metadata: { name: string; namespace: string }; involvedObject: { uid: string; kind: string }; source: { component: string }; count: number; type: string };
  assert.equal(ev.metadata.namespace, 'default');
  assert.match(ev.metadata.name, /^web\.[0-9a-f]+$/);
  assert.equal(ev.involvedObject.uid, 'u1');
  assert.equal(ev.involvedObject.kind, 'Service');
  assert.equal(ev.source.component, 'metallb-controller');
  assert.equal(ev.count, 1);
  assert.equal(f.reqs[1]!.url, `/api/v1/namespaces/default/events/${ev.metadata.name}`);
  assert.equal((f.reqs[1]!.body as { count: number }).count, 2);
});

test('client: HTTPS API server verified with certificate-authority-data; a wrong CA is a clear transport error', async (t) => {
  const { generateServingCert } = await import('../../src/controller/webhook-cert.js');
  const https = await import('node:https');
  const good = await generateServingCert('api', 'default');
  const other = await generateServingCert('other', 'default');
  const server = https.createServer({ cert: good.cert, key: good.key }, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ auth: req.headers.authorization ?? null }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'kc-'));
  t.after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  const write = (ca: string): string => {
    const p = join(dir, `kc-${Math.random()}`);
    writeFileSync(p, kubeconfig('token: sekret', `server: "https://127.0.0.1:${port}", certificate-authority-data: "${Buffer.from(ca).toString('base64')}"`));
    return p;
  };
  const ok = new KubeClient(loadKubeConfig(write(good.ca)));
  assert.deepEqual(await ok.get('/version'), { auth: 'Bearer sekret' });
  ok.close();
  const bad = new KubeClient(loadKubeConfig(write(other.ca)));
  await assert.rejects(bad.get('/version'), (e: unknown) => e instanceof ApiError && e.status === 0 && /certificate/i.test(e.message));
  bad.close();
});
