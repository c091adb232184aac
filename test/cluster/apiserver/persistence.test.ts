// --data-file: state survives a restart, SIGTERM flushes and exits 0, watches resume or get 410.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startDevServer, type DevServerHandle } from '../../helpers/devserver.js';
import { Persister } from '../../../src/cluster/apiserver/persistence.js';
import type { Store } from '../../../src/cluster/apiserver/store.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function client(kubeconfig: string): { kc: k8s.KubeConfig; core: k8s.CoreV1Api } {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { kc, core: kc.makeApiClient(k8s.CoreV1Api) };
}

/** First event of a watch from `rv` (resolves on the first event or on close). */
function firstEvent(kc: k8s.KubeConfig, path: string, rv: string): Promise<{ type: string; obj: Record<string, unknown> } | undefined> {
  return new Promise((resolve, reject) => {
    let ctl: AbortController | undefined;
    const w = new k8s.Watch(kc);
    w.watch(
      path,
      { resourceVersion: rv },
      (type, obj: Record<string, unknown>) => {
        resolve({ type, obj });
        ctl?.abort();
      },
      (err: unknown) => (err && !(err instanceof Error && err.name === 'AbortError') ? reject(err) : resolve(undefined)),
    ).then((c) => (ctl = c), reject);
  });
}

test('data file: restart keeps objects and resourceVersions; watches resume; too old gets 410; SIGTERM exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'devserver-persist-'));
  const dataFile = join(dir, 'data.json');
  const servers: DevServerHandle[] = [];
  const informers: { stop(): Promise<void> | void }[] = [];
  t.after(async () => {
    for (const i of informers) await i.stop();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  const start = async (): Promise<DevServerHandle> => {
    const s = await startDevServer({ dir, dataFile, port, extraArgs: ['--watch-history', '50'] });
    servers.push(s);
    return s;
  };

  let srv = await start();
  let { kc, core } = client(srv.kubeconfig);
  const informerEvents: string[] = [];
  const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/configmaps', () => core.listNamespacedConfigMap({ namespace: 'default' }));
  informer.on('add', (o) => informerEvents.push(`add:${o.metadata!.name}`));
  informer.on('delete', (o) => informerEvents.push(`delete:${o.metadata!.name}`));
  let stopped = false;
  informer.on('error', () => {
    if (!stopped) setTimeout(() => void informer.start().catch(() => {}), 300);
  });
  informers.push({ stop: () => ((stopped = true), informer.stop()) });
  await informer.start();

  const rv0 = (await core.listNamespacedConfigMap({ namespace: 'default' })).metadata!.resourceVersion!;
  const a = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'a' }, data: { k: 'v' } } });
  const svc = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'keep' }, spec: { type: 'NodePort', ports: [{ port: 80 }] } } });

  // SIGTERM: flush and exit 0
  const code = await srv.kill('SIGTERM');
  assert.equal(code, 0);
  assert.ok(existsSync(dataFile));
  const saved = JSON.parse(readFileSync(dataFile, 'utf8')) as { resourceVersion: number; objects: Record<string, { metadata: { name: string } }[]> };
  assert.ok(saved.objects['/configmaps']!.some((o) => o.metadata.name === 'a'));
  assert.equal(saved.resourceVersion, Number(svc.metadata!.resourceVersion));

  srv = await start();
  ({ kc, core } = client(srv.kubeconfig));
  const a2 = await core.readNamespacedConfigMap({ name: 'a', namespace: 'default' });
  assert.equal(a2.metadata!.uid, a.metadata!.uid);
  assert.equal(a2.metadata!.resourceVersion, a.metadata!.resourceVersion);
  // allocations survive: the same node port cannot be taken again
  const np = svc.spec!.ports![0]!.nodePort!;
  await assert.rejects(
    core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'clash' }, spec: { type: 'NodePort', ports: [{ port: 80, nodePort: np }] } } }),
    (e: unknown) => e instanceof k8s.ApiException && e.code === 422,
  );
  const b = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'b' } } });
  assert.ok(Number(b.metadata!.resourceVersion) > Number(svc.metadata!.resourceVersion), 'the counter continues');

  // a watch from before the restart resumes from the saved history
  const resumed = await firstEvent(kc, '/api/v1/namespaces/default/configmaps', rv0);
  assert.equal(resumed?.type, 'ADDED');
  assert.equal((resumed?.obj.metadata as { name: string }).name, 'a');

  // the informer reconnected and sees changes made after the restart
  const deadline = Date.now() + 10_000;
  while (!informerEvents.includes('add:b') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(informerEvents.filter((e) => e.startsWith('delete:')), []);
  assert.ok(informerEvents.includes('add:a'));
  assert.ok(informerEvents.includes('add:b'), informerEvents.join(','));

  // more changes than the history holds: the old resourceVersion is now 410 Gone
  for (let i = 0; i < 60; i++) await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `f${i}` } } });
  const expired = await firstEvent(kc, '/api/v1/namespaces/default/configmaps', rv0);
  assert.equal(expired?.type, 'ERROR');
  assert.equal(expired?.obj.code, 410);
});

test('the data file is written at most 1/20 of the time: a write that took 20 ms holds the next one for 400 ms', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mlb-persist-'));
  try {
    const file = join(dir, 'data.json');
    let rv = 0;
    // A store whose snapshot costs 20 ms of event loop, as a big store's JSON does.
    const store = {
      historySize: 10,
      snapshot: () => {
        const until = performance.now() + 20;
        while (performance.now() < until);
        return { resourceVersion: rv++, objects: {}, events: [] };
      },
    } as unknown as Store;
    const saved = (): number | undefined => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { resourceVersion: number }).resourceVersion : undefined);
    const p = new Persister(file, store, 10);
    p.changed();
    const first = Date.now();
    while (saved() !== 0 && Date.now() - first < 5000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(saved(), 0);
    p.changed();
    const asked = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(saved(), 0, 'no second write within 300 ms of the change');
    while (saved() !== 1 && Date.now() - asked < 5000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(saved(), 1, 'the change is written in the end');
    assert.ok(Date.now() - asked >= 400, `held for 20 times the write's cost (${Date.now() - asked} ms)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
