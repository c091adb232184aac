// The API server's PKI directory: created once, the CA kept across restarts, the serving certificate renewed when
// the wanted names change, a corrupt file replaced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { certCovers, loadOrCreatePki, signCert } from '../../../src/cluster/apiserver/pki.js';

test('PKI: the CA survives restarts; the serving certificate follows the SANs; client certificates carry user and groups', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const made: string[] = [] as string[];
  const p1 = await loadOrCreatePki(dir, ['127.0.0.1', 'kubernetes.default.svc', 'fd00:10:96::1'], (w) => made.push(w));
  assert.deepEqual(made, ['ca', 'serving certificate', 'admin client certificate', 'service-account signing key']);
  assert.ok(certCovers(p1.serverCert, p1.caCert, ['fd00:10:96::1', 'kubernetes.default.svc']));
  made.length = 0;
  const p2 = await loadOrCreatePki(dir, ['127.0.0.1', 'kubernetes.default.svc', 'fd00:10:96::1'], (w) => made.push(w));
  assert.equal(made.length, 0);
  assert.equal(p2.serverCert, p1.serverCert);
  const p3 = await loadOrCreatePki(dir, ['127.0.0.1', '10.89.0.1'], (w) => made.push(w));
  assert.deepEqual(made, ['serving certificate']);
  assert.equal(p3.caCert, p1.caCert);
  assert.equal(p3.saKey, p1.saKey);
  assert.ok(certCovers(p3.serverCert, p3.caCert, ['10.89.0.1']));
  // a damaged serving certificate is replaced, the CA is not
  writeFileSync(join(dir, 'apiserver.crt'), 'garbage');
  made.length = 0;
  const p4 = await loadOrCreatePki(dir, ['127.0.0.1'], (w) => made.push(w));
  assert.deepEqual(made, ['serving certificate']);
  assert.equal(readFileSync(join(dir, 'ca.crt'), 'utf8'), p1.caCert);
  const c = await signCert({ cert: p4.caCert, key: p4.caKey }, { commonName: 'system:node:node1', organizations: ['system:nodes', 'extra'], usage: 'client' });
  const x = new X509Certificate(c.cert);
  assert.equal(x.subject, 'CN=system:node:node1\nO=system:nodes\nO=extra');
  assert.ok(x.verify(new X509Certificate(p4.caCert).publicKey));
});
