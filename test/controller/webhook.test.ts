import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { parseConfig } from '../../src/config/index.js';
import type { KubeObject } from '../../src/k8s/types.js';
import { createLogger } from '../../src/log.js';
import { blankOrderDependent, handleAdmission, type AdmissionReview, type WebhookContext } from '../../src/controller/webhook.js';
import { startWebhookServer } from '../../src/controller/servers.js';
import { generateServingCert } from '../../src/controller/webhook-cert.js';

const NS = 'metallb-system';
const pool = (name: string, addresses: string[]): KubeObject =>
  ({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name, namespace: NS }, spec: { addresses } }) as KubeObject;

function ctx(objects: KubeObject[]): WebhookContext {
  return { namespace: NS, parse: parseConfig, configObjects: () => objects, cluster: () => ({ namespaces: [], nodes: [], secrets: [] }) };
}

const review = (operation: string, object: KubeObject | null, oldObject: KubeObject | null = null, namespace = NS) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'u-1', kind: { group: 'metallb.io', version: 'v1beta1', kind: object?.kind ?? oldObject?.kind }, namespace, name: (object ?? oldObject)?.metadata?.name, operation, object, oldObject },
});

const POOL_PATH = '/validate-metallb-io-v1beta1-ipaddresspool';

test('webhook: an overlapping pool is denied with the parser error, a disjoint one allowed', () => {
  const c = ctx([pool('a', ['192.0.2.0/24'])]);
  const denied = handleAdmission(POOL_PATH, review('CREATE', pool('b', ['192.0.2.128/25'])), c);
  assert.equal(denied.apiVersion, 'admission.k8s.io/v1');
  assert.equal(denied.kind, 'AdmissionReview');
  assert.equal(denied.response?.uid, 'u-1');
  assert.equal(denied.response?.allowed, false);
  assert.equal(denied.response?.status?.code, 403);
  assert.match(denied.response?.status?.message ?? '', /overlap/);
  const ok = handleAdmission(POOL_PATH, review('CREATE', pool('b', ['198.51.100.0/24'])), c);
  assert.equal(ok.response?.allowed, true);
});

test('webhook: the denial names the new pool even when it sorts first by name', () => {
  const existing = pool('zz-existing', ['192.0.2.0/24']);
  existing.metadata!.creationTimestamp = '2026-01-01T00:00:00Z';
  const c = ctx([existing]);
  const denied = handleAdmission(POOL_PATH, review('CREATE', pool('aa-new', ['192.0.2.128/25'])), c);
  assert.equal(denied.response?.allowed, false);
  assert.match(denied.response?.status?.message ?? '', /IPAddressPool \S*aa-new: .*overlaps .* of pool "zz-existing"/);
});

test('webhook: UPDATE replaces the old version (a pool may change its own range)', () => {
  const c = ctx([pool('a', ['192.0.2.0/24']), pool('b', ['198.51.100.0/24'])]);
  assert.equal(handleAdmission(POOL_PATH, review('UPDATE', pool('a', ['192.0.2.0/25']), pool('a', ['192.0.2.0/24'])), c).response?.allowed, true);
  assert.equal(handleAdmission(POOL_PATH, review('UPDATE', pool('a', ['198.51.100.0/25']), pool('a', ['192.0.2.0/24'])), c).response?.allowed, false);
});

test('webhook: objects outside the MetalLB namespace are rejected', () => {
  const r = handleAdmission(POOL_PATH, review('CREATE', { ...pool('x', ['203.0.113.0/24']), metadata: { name: 'x', namespace: 'default' } }, null, 'default'), ctx([]));
  assert.equal(r.response?.allowed, false);
  assert.equal(r.response?.status?.message, `resource must be created in ${NS} namespace`);
});

test('webhook: invalid fields are denied; an already broken config does not block unrelated changes', () => {
  const broken = pool('broken', ['not-a-cidr']);
  const c = ctx([broken]);
  const bad = handleAdmission(POOL_PATH, review('CREATE', pool('new', ['also-bad'])), c);
  assert.equal(bad.response?.allowed, false);
  assert.match(bad.response?.status?.message ?? '', /new/);
  assert.doesNotMatch(bad.response?.status?.message ?? '', /broken/, 'only the errors this change introduces');
  assert.equal(handleAdmission(POOL_PATH, review('CREATE', pool('fine', ['203.0.113.0/24'])), c).response?.allowed, true);
});

test('webhook: DELETE of a BFDProfile in use is denied, unused allowed; other DELETEs allowed', () => {
  const bfd = (name: string): KubeObject => ({ apiVersion: 'metallb.io/v1beta1', kind: 'BFDProfile', metadata: { name, namespace: NS }, spec: {} }) as KubeObject;
  const peer = { apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'p1', namespace: NS }, spec: { myASN: 64500, peerASN: 64501, peerAddress: '10.0.0.1', bfdProfile: 'used' } } as KubeObject;
  const c = ctx([bfd('unused'), bfd('used'), peer]);
  const path = '/validate-metallb-io-v1beta1-bfdprofile';
  const denied = handleAdmission(path, review('DELETE', null, bfd('used')), c);
  assert.equal(denied.response?.allowed, false);
  assert.match(denied.response?.status?.message ?? '', /used/);
  assert.equal(handleAdmission(path, review('DELETE', null, bfd('unused')), c).response?.allowed, true);
  assert.equal(handleAdmission(POOL_PATH, review('DELETE', null, pool('a', ['192.0.2.0/24'])), c).response?.allowed, true);
});

test('webhook: order-dependent references (peer bfdProfile, community aliases) are not checked at admission', () => {
  const peer = { apiVersion: 'metallb.io/v1beta2', kind: 'BGPPeer', metadata: { name: 'p1', namespace: NS }, spec: { myASN: 64500, peerASN: 64501, peerAddress: '10.0.0.1', bfdProfile: 'later' } } as KubeObject;
  const r = handleAdmission('/validate-metallb-io-v1beta2-bgppeer', review('CREATE', peer), ctx([]));
  assert.equal(r.response?.allowed, true, JSON.stringify(r.response));
  const blanked = blankOrderDependent([
    { kind: 'BGPAdvertisement', metadata: { name: 'x' }, spec: { communities: ['no-export', '65535:65281'] } } as KubeObject,
  ]) as { spec: { communities: string[] } }[];
  assert.deepEqual(blanked[0]!.spec.communities, ['65535:65281']);
});

test('webhook: malformed reviews and unknown paths', () => {
  assert.equal(handleAdmission(POOL_PATH, {}, ctx([])).response?.status?.code, 400);
  assert.equal(handleAdmission('/nope', review('CREATE', pool('a', ['192.0.2.0/24'])), ctx([])).response?.status?.code, 404);
});

test('webhook server: AdmissionReview over HTTPS with a generated certificate', async () => {
  const cert = await generateServingCert('metallb-webhook-service', NS);
  const srv = await startWebhookServer(0, '127.0.0.1', cert, ctx([pool('a', ['192.0.2.0/24'])]), createLogger('test', 'none'));
  try {
    const post = (path: string, body: unknown): Promise<{ status: number; body: AdmissionReview }> =>
      new Promise((resolve, reject) => {
        const req = https.request(
          { host: '127.0.0.1', port: srv.port, path, method: 'POST', ca: cert.ca, servername: `metallb-webhook-service.${NS}.svc`, headers: { 'Content-Type': 'application/json' } },
          (res) => {
            let t = '';
            res.setEncoding('utf8').on('data', (c: string) => (t += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(t) as AdmissionReview }));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    // Any JSON body, even `null` or a bare string, gets an answer (and the server stays up for the next request).
    for (const garbage of [null, 'x', 7, { request: 'x' }, { request: { operation: 'CREATE', object: { metadata: 'zz' } } }]) {
      const g = await post(POOL_PATH, garbage);
      assert.equal(g.status, 200, JSON.stringify(garbage));
      assert.equal(g.body.response?.allowed, false, JSON.stringify(garbage));
    }
    const r = await post(POOL_PATH, review('CREATE', pool('b', ['192.0.2.0/25'])));
    assert.equal(r.status, 200);
    assert.equal(r.body.response?.allowed, false);
    assert.match(r.body.response?.status?.message ?? '', /overlap/);
  } finally {
    await srv.close();
  }
});

test('webhook server: --tls-min-version VersionTLS13 refuses a TLS 1.2 client', async () => {
  const cert = await generateServingCert('metallb-webhook-service', NS);
  const srv = await startWebhookServer(0, '127.0.0.1', cert, ctx([]), createLogger('test', 'none'), 'TLSv1.3');
  try {
    const hello = (maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = https.request(
          { host: '127.0.0.1', port: srv.port, path: '/healthz', ca: cert.ca, servername: `metallb-webhook-service.${NS}.svc`, maxVersion },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    assert.equal(await hello('TLSv1.3'), 200);
    await assert.rejects(hello('TLSv1.2'), /protocol version|alert/i);
  } finally {
    await srv.close();
  }
});
