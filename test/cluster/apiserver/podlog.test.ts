// pods/log proxied to the kubelet (here a stand-in serving /containerLogs on loopback; the lab's tests drive the real
// kubelet), through the real `kubectl logs`: container choice, tail/previous/timestamps/limit forwarded, follow
// streamed, kube-apiserver's errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { kubectl, kubectlOk, startDevServer, type DevServerHandle } from '../../helpers/devserver.js';

let srv: DevServerHandle;
let kubelet: Server;
const requests: string[] = [];

before(async () => {
  srv = await startDevServer({ tls: true });
  kubelet = createServer((req, res) => {
    requests.push(req.url ?? '');
    const u = new URL(req.url ?? '/', 'http://x');
    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(u.pathname);
    if (!m) {
      res.writeHead(404).end('404 page not found');
      return;
    }
    const [, , pod, container] = m;
    if (container === 'waiting') {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end(`container "waiting" in pod "${pod}" is waiting to start: ContainerCreating`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    const lines = [`${pod}/${container} line 1`, `${pod}/${container} line 2`, `${pod}/${container} line 3`];
    const tail = u.searchParams.get('tailLines');
    res.write(`${(tail ? lines.slice(-Number(tail)) : lines).join('\n')}\n`);
    if (u.searchParams.get('follow') === 'true') {
      let n = 4;
      const t = setInterval(() => res.write(`${pod}/${container} line ${n++}\n`), 100);
      res.on('close', () => clearInterval(t));
      return;
    }
    res.end();
  });
  await new Promise<void>((r) => kubelet.listen(0, '127.0.0.1', r));
  const port = (kubelet.address() as AddressInfo).port;
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node1' },
    status: { addresses: [{ type: 'Hostname', address: 'node1' }, { type: 'InternalIP', address: '127.0.0.1' }], daemonEndpoints: { kubeletEndpoint: { Port: port } } },
  };
  await kubectlOk(['apply', '-f', '-'], srv.kubeconfig, { input: JSON.stringify(node) });
  await kubectlOk(['apply', '-f', '-'], srv.kubeconfig, {
    input: `apiVersion: v1
kind: Pod
metadata: {name: one, namespace: default}
spec: {nodeName: node1, containers: [{name: app, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: two, namespace: default}
spec: {nodeName: node1, initContainers: [{name: init, image: busybox}], containers: [{name: web, image: nginx}, {name: waiting, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: pending, namespace: default}
spec: {containers: [{name: app, image: nginx}]}
`,
  });
});
after(async () => {
  kubelet?.closeAllConnections();
  await new Promise<void>((r) => (kubelet ? kubelet.close(() => r()) : r()));
  await srv?.stop();
});

const k = (args: string[]) => kubectl(args, srv.kubeconfig);

test('kubectl logs: the only container, -c, --tail, --previous, --timestamps, --limit-bytes, --since reach the kubelet', async () => {
  assert.equal((await k(['logs', 'one'])).stdout, 'one/app line 1\none/app line 2\none/app line 3\n');
  assert.equal(requests.at(-1), '/containerLogs/default/one/app');
  assert.equal((await k(['logs', 'two', '-c', 'web', '--tail', '1'])).stdout, 'two/web line 3\n');
  assert.equal(requests.at(-1), '/containerLogs/default/two/web?tailLines=1');
  await k(['logs', 'one', '--previous', '--timestamps', '--limit-bytes', '100', '--since', '5m']);
  const q = new URL(requests.at(-1)!, 'http://x').searchParams;
  assert.deepEqual(Object.fromEntries(q), { previous: 'true', timestamps: 'true', limitBytes: '100', sinceSeconds: '300' });
});

test('kube-apiserver errors: several containers, unknown container, the kubelet refusing, not scheduled', async () => {
  const raw = (path: string) => k(['get', '--raw', path]);
  const several = await raw('/api/v1/namespaces/default/pods/two/log');
  assert.match(several.stderr, /a container name must be specified for pod two, choose one of: \[init web waiting\]/);
  // (kubectl checks the name itself; the server's answer)
  const unknown = await raw('/api/v1/namespaces/default/pods/two/log?container=nope');
  assert.match(unknown.stderr, /Error from server \(BadRequest\): container nope is not valid for pod two/);
  const waiting = await k(['logs', 'two', '-c', 'waiting']);
  assert.equal(waiting.stderr.trim(), 'Error from server (BadRequest): container "waiting" in pod "two" is waiting to start: ContainerCreating');
  assert.equal((await raw('/api/v1/namespaces/default/pods/pending/log')).stdout, '');
  const missing = await k(['logs', 'ghost']);
  assert.match(missing.stderr, /pods "ghost" not found/);
  const badTail = await raw('/api/v1/namespaces/default/pods/one/log?tailLines=-1');
  assert.match(badTail.stderr, /PodLogOptions "one" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0/);
});

test('kubectl logs -f streams until interrupted', async () => {
  const cacheDir = join(dirname(srv.kubeconfig), '.kube-cache');
  const child = spawn('kubectl', ['--kubeconfig', srv.kubeconfig, '--cache-dir', cacheDir, 'logs', '-f', 'one'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const deadline = Date.now() + 30_000;
  while (!out.includes('line 6') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  await new Promise((r) => child.once('close', r));
  assert.match(out, /^one\/app line 1\none\/app line 2\none\/app line 3\none\/app line 4\none\/app line 5\none\/app line 6\n/);
  assert.match(requests.at(-1)!, /follow=true/);
});

test('a kubelet that is down is a 500 naming the address', async () => {
  await kubectlOk(['patch', 'node', 'node1', '--subresource=status', '--type=merge', '-p', '{"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":1}}}}'], srv.kubeconfig);
  const r = await k(['logs', 'one']);
  assert.match(r.stderr, /Error from server: Get "http:\/\/127\.0\.0\.1:1\/containerLogs\/default\/one\/app": dial tcp 127\.0\.0\.1:1: connect: connection refused/);
});
