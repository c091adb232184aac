// The lab kubelet for real, as root: a node network namespace, the dev API server, `metallb cluster kubelet` inside
// the node namespace, pods created through the API and observed through the API, the kubelet endpoint, the pod
// network and the host.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubectlOk } from '../../helpers/devserver.js';
import { createPod, events, getPod, kubeletGet, sh, startTestNode, waitFor, type PodLike, type TestNode } from './harness.js';

let t: TestNode;
const NS = 'tkl';

before(async () => {
  t = await startTestNode();
  await t.client.post('/api/v1/namespaces', { metadata: { name: NS } });
  // What the controller-manager publishes in every namespace.
  await t.client.post(`/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': t.api.caCert! } });
});
after(async () => {
  await t?.cleanup();
});

const running = (name: string, timeoutMs = 60_000): Promise<PodLike> =>
  waitFor(`pod ${name} running`, async () => {
    const p = await getPod(t, NS, name);
    return p?.status?.phase === 'Running' && p.status.containerStatuses?.every((c) => c.state.running) ? p : undefined;
  }, timeoutMs, 200);

const cond = (p: PodLike | undefined, type: string): string | undefined => p?.status?.conditions?.find((c) => c.type === type)?.status;

test('the Node is registered with labels, addresses, podCIDRs, capacity, conditions and a Lease', async () => {
  const node = await t.client.get<{
    metadata: { labels: Record<string, string> };
    spec: { podCIDR: string; podCIDRs: string[] };
    status: { addresses: { type: string; address: string }[]; conditions: { type: string; status: string; reason: string }[]; capacity: Record<string, string>; allocatable: Record<string, string>; daemonEndpoints: { kubeletEndpoint: { Port: number } }; nodeInfo: Record<string, string> };
  }>(`/api/v1/nodes/${t.nodeName}`);
  assert.equal(node.metadata.labels['kubernetes.io/hostname'], t.nodeName);
  assert.equal(node.metadata.labels['kubernetes.io/os'], 'linux');
  assert.ok(node.metadata.labels['kubernetes.io/arch']);
  assert.deepEqual(node.spec.podCIDRs, t.podCIDRs);
  assert.equal(node.spec.podCIDR, t.podCIDRs[0]);
  assert.deepEqual(node.status.addresses, [
    { type: 'InternalIP', address: t.nodeIPs[0] },
    { type: 'InternalIP', address: t.nodeIPs[1] },
    { type: 'Hostname', address: t.nodeName },
  ]);
  const c = Object.fromEntries(node.status.conditions.map((x) => [x.type, x]));
  assert.equal(c.Ready?.status, 'True');
  assert.equal(c.Ready?.reason, 'KubeletReady');
  assert.equal(c.MemoryPressure?.status, 'False');
  assert.equal(c.DiskPressure?.status, 'False');
  assert.equal(c.PIDPressure?.status, 'False');
  assert.equal(c.NetworkUnavailable?.status, 'False');
  assert.equal(node.status.capacity.pods, '110');
  assert.ok(Number(node.status.capacity.cpu) >= 1);
  assert.match(node.status.allocatable.memory ?? '', /^\d+Ki$/);
  assert.equal(node.status.daemonEndpoints.kubeletEndpoint.Port, 10250);
  assert.equal(node.status.nodeInfo.operatingSystem, 'linux');
  const lease = await t.client.get<{ spec: { holderIdentity: string; renewTime: string; leaseDurationSeconds: number } }>(`/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${t.nodeName}`);
  assert.equal(lease.spec.holderIdentity, t.nodeName);
  assert.equal(lease.spec.leaseDurationSeconds, 40);
  const out = await kubectlOk(['get', 'nodes'], t.api.kubeconfig);
  assert.match(out, new RegExp(`${t.nodeName}\\s+Ready`));
});

test('a pod runs with its hostname, environment, volumes and a routed address reachable from the node', async () => {
  await t.client.post(`/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'creds' }, data: { password: Buffer.from('s3cret').toString('base64') } });
  await t.client.post(`/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'settings' }, data: { 'mode.conf': 'mode=fast\n', color: 'blue' } });
  await t.client.post(`/api/v1/namespaces/${NS}/services`, { metadata: { name: 'my-svc' }, spec: { ports: [{ name: 'http', port: 8080 }] } });
  const script = [
    'echo "HOST=$(cat /proc/sys/kernel/hostname)"',
    'echo "POD_NAME=$POD_NAME POD_NS=$POD_NS NODE=$NODE_NAME POD_IP=$POD_IP HOST_IP=$HOST_IP SA=$SA"',
    'echo "GREETING=$GREETING COLOR=$color PASSWORD=$PASSWORD CPU_LIMIT=$CPU_LIMIT MEM_MI=$MEM_MI"',
    'echo "KSH=$KUBERNETES_SERVICE_HOST KSP=$KUBERNETES_SERVICE_PORT MYSVC=$MY_SVC_SERVICE_PORT_HTTP"',
    'echo "NS_FILE=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"',
    'echo "CA=$(head -1 /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)"',
    'echo "TOKEN_HEAD=$(head -c 3 /var/run/secrets/kubernetes.io/serviceaccount/token)"',
    'echo "SECRET=$(cat /etc/creds/password)"',
    'echo "CONF=$(cat /config/mode.conf)"',
    'echo "LABEL=$(cat /podinfo/labels)"',
    'echo "CWD=$(pwd)"',
    'echo "NET=$(ls /sys/class/net | tr "\\n" " ")"',
    'echo "CGROUPS=$(test -e /sys/fs/cgroup/cpuacct/cpuacct.usage -o -e /sys/fs/cgroup/cgroup.controllers && echo yes)"',
    'exec sleep 3600',
  ].join('; ');
  await createPod(t, {
    metadata: { name: 'web', namespace: NS, labels: { app: 'web' } },
    spec: {
      containers: [
        { name: 'web', image: 'sysnet4admin/echo-hname' },
        {
          name: 'show',
          image: 'nginx:1.27',
          command: ['sh', '-c', script],
          workingDir: '/tkl-scratch/dir',
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
            { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
            { name: 'NAME', value: 'world' },
            { name: 'GREETING', value: 'hello $(NAME) $$(NAME) $(MISSING)' },
            { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
            { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
            { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
          ],
          envFrom: [{ configMapRef: { name: 'settings' }, prefix: '' }],
          resources: { limits: { cpu: '500m', memory: '64Mi' } },
          volumeMounts: [
            { name: 'creds', mountPath: '/etc/creds', readOnly: true },
            { name: 'cfg', mountPath: '/config' },
            { name: 'podinfo', mountPath: '/podinfo' },
            { name: 'scratch', mountPath: '/tkl-scratch' },
          ],
        },
      ],
      volumes: [
        { name: 'creds', secret: { secretName: 'creds' } },
        { name: 'cfg', configMap: { name: 'settings', items: [{ key: 'mode.conf', path: 'mode.conf' }] } },
        { name: 'podinfo', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
        { name: 'scratch', emptyDir: {} },
      ],
    },
  });
  const pod = await running('web');
  const ip4 = pod.status!.podIPs?.[0]?.ip ?? '';
  const ip6 = pod.status!.podIPs?.[1]?.ip ?? '';
  assert.ok(ip4.startsWith(`10.91.${100 + t.k}.`), `pod IPv4 ${ip4} from the node's podCIDR`);
  assert.ok(ip6.startsWith(`fd00:91:${100 + t.k}::`), `pod IPv6 ${ip6} from the node's podCIDR`);
  assert.equal(pod.status!.hostIP, t.nodeIPs[0]);
  for (const c of ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready', 'PodReadyToStartContainers']) assert.equal(cond(pod, c), 'True', c);
  // The built-in echo-hname answers with the pod name, over IPv4 and IPv6, from the node namespace.
  // (Running means started, not listening: the server needs a moment.)
  await waitFor('echo-hname answers', () => t.inNode(`curl -s -m 2 http://${ip4}/`).out === 'web\n', 30_000, 200);
  const r6 = t.inNode(`curl -s -m 5 http://[${ip6}]/`);
  assert.equal(r6.out, 'web\n');
  // And from the host (the control plane's route to the podCIDR via the node).
  assert.equal(sh(`curl -s -m 5 http://${ip4}/`).out, 'web\n');
  const logs = await waitFor('show logs', async () => {
    const r = await kubeletGet(t, `/containerLogs/${NS}/web/show`);
    return r.status === 200 && r.body.includes('CWD=') ? r.body : undefined;
  }, 30_000, 200);
  assert.match(logs, /^HOST=web$/m);
  assert.match(logs, new RegExp(`^POD_NAME=web POD_NS=${NS} NODE=${t.nodeName} POD_IP=${ip4.replace(/\./g, '\\.')} HOST_IP=${t.nodeIPs[0].replace(/\./g, '\\.')} SA=default$`, 'm'));
  assert.match(logs, /^GREETING=hello world \$\(NAME\) \$\(MISSING\) COLOR=blue PASSWORD=s3cret CPU_LIMIT=500 MEM_MI=64$/m);
  assert.match(logs, /^KSH=10\.96\.0\.1 KSP=443 MYSVC=8080$/m);
  assert.match(logs, new RegExp(`^NS_FILE=${NS}$`, 'm'));
  assert.match(logs, /^CA=-----BEGIN CERTIFICATE-----$/m);
  assert.match(logs, /^TOKEN_HEAD=eyJ$/m, 'a JWT from the TokenRequest API');
  assert.match(logs, /^SECRET=s3cret$/m);
  assert.match(logs, /^CONF=mode=fast$/m);
  assert.match(logs, /^LABEL=app="web"$/m);
  assert.match(logs, /^CWD=\/tkl-scratch\/dir$/m);
  assert.match(logs, /^NET=eth0 lo $/m, "the pod's /sys shows its own interfaces");
  assert.match(logs, /^CGROUPS=yes$/m, 'and keeps the cgroup hierarchy');
  // Mount points under existing host directories are made only inside the pod's mount namespace; a new top-level
  // directory (/podinfo) has to exist on the host while the pod runs and goes with it (see the deletion test).
  assert.equal(existsSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace'), false);
  assert.equal(existsSync('/etc/creds'), false);
  assert.equal(existsSync('/podinfo'), true);
  assert.equal(existsSync('/tkl-scratch'), true);
});

test('a process in a pod reaches the API server with the in-cluster configuration (token, ca.crt, namespace)', async () => {
  const url = new URL(t.api.url);
  await createPod(t, {
    metadata: { name: 'incluster', namespace: NS },
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'kubectl',
          image: 'metallb-ts',
          // The lab's kube-proxy would carry 10.96.0.1:443 to the API server; this test node has none, so the pod is
          // pointed at the API server's own address (the manifest's env wins over the Service variables).
          command: ['kubectl', 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
          env: [
            { name: 'KUBERNETES_SERVICE_HOST', value: url.hostname },
            { name: 'KUBERNETES_SERVICE_PORT', value: url.port },
          ],
        },
      ],
    },
  });
  const done = await waitFor('incluster Succeeded', async () => {
    const p = await getPod(t, NS, 'incluster');
    return p?.status?.phase === 'Succeeded' || p?.status?.phase === 'Failed' ? p : undefined;
  }, 60_000, 200);
  const logs = await kubeletGet(t, `/containerLogs/${NS}/incluster/kubectl`);
  assert.equal(done.status?.phase, 'Succeeded', logs.body);
  assert.equal(logs.body, `system:serviceaccount:${NS}:default\n`);
  const cs = done.status!.containerStatuses![0]!;
  assert.equal(cs.state.terminated?.reason, 'Completed');
  assert.equal(cs.state.terminated?.exitCode, 0);
  assert.equal(cond(done, 'Ready'), 'False');
  assert.equal(done.status!.conditions!.find((c) => c.type === 'Ready')?.reason, 'PodCompleted');
  // A finished pod no longer holds its address; its logs stay until it is deleted.
  await waitFor('address released', () => !readFileSync(join(t.rootDir, 'ipam.json'), 'utf8').includes(done.metadata.uid!), 30_000, 200);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/incluster`);
});

test('a changed Secret reaches the running container through its volume', async () => {
  await t.client.mergePatch(`/api/v1/namespaces/${NS}/secrets/creds`, { data: { password: Buffer.from('rotated').toString('base64') } });
  const pod = await getPod(t, NS, 'web');
  const uid = pod!.metadata.uid!;
  const file = join(t.rootDir, 'pods', uid, 'volumes', 'kubernetes.io~secret', 'creds', 'password');
  await waitFor('secret volume updated', () => existsSync(file) && readFileSync(file, 'utf8') === 'rotated', 30_000, 200);
});

test('a container that exits is restarted with back-off and its restart count grows', async () => {
  await createPod(t, {
    metadata: { name: 'crasher', namespace: NS },
    spec: { containers: [{ name: 'c', image: 'nginx', command: ['sh', '-c', 'echo "run $(date +%s%N)"; exit 3'] }] },
  });
  const p = await waitFor('restartCount >= 2', async () => {
    const x = await getPod(t, NS, 'crasher');
    const cs = x?.status?.containerStatuses?.[0];
    return cs && cs.restartCount >= 2 ? x : undefined;
  }, 60_000, 200);
  const cs = p.status!.containerStatuses![0]!;
  assert.equal(cs.lastState.terminated?.exitCode, 3);
  assert.equal(cs.lastState.terminated?.reason, 'Error');
  const crashLoop = await waitFor('CrashLoopBackOff', async () => {
    const x = await getPod(t, NS, 'crasher');
    const s = x?.status?.containerStatuses?.[0];
    return s?.state.waiting?.reason === 'CrashLoopBackOff' ? s : undefined;
  }, 30_000, 100);
  assert.match(crashLoop.state.waiting?.message ?? '', /^back-off \d+s restarting failed container=c pod=crasher_tkl\(/);
  const ev = await events(t, NS, 'crasher');
  assert.ok(ev.some((e) => e.reason === 'BackOff' && /Back-off restarting failed container c in pod crasher_tkl/.test(e.message)), JSON.stringify(ev));
  assert.ok(ev.some((e) => e.reason === 'Pulled' && e.message === 'Container image "nginx" already present on machine'));
  assert.ok(ev.some((e) => e.reason === 'Started'));
  // Logs of the current and the previous instance are kept. It keeps restarting meanwhile: a new instance's log is
  // empty until its shell has written (long enough on a loaded machine), so the three reads are retried together.
  const [cur, prev, ts] = await waitFor('current and previous logs', async () => {
    const got = await Promise.all(['', '?previous=true', '?timestamps=true'].map((q) => kubeletGet(t, `/containerLogs/${NS}/crasher/c${q}`)));
    const [c, p, s] = got as [{ status: number; body: string }, { status: number; body: string }, { status: number; body: string }];
    return c.status === 200 && p.status === 200 && /^run \d+\n$/.test(c.body) && /^run \d+\n$/.test(p.body) && c.body !== p.body && s.body.endsWith(` ${c.body}`) ? got : undefined;
  }, 30_000, 200);
  assert.match(cur!.body, /^run \d+\n$/);
  assert.match(prev!.body, /^run \d+\n$/);
  assert.notEqual(cur!.body, prev!.body);
  assert.match(ts!.body, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z run \d+\n$/);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/crasher`);
});

test('readiness probes flip Ready; a failing liveness probe restarts the container', async () => {
  await createPod(t, {
    metadata: { name: 'probed', namespace: NS },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'nginx',
          readinessProbe: { exec: { command: ['cat', '/state/ready'] }, periodSeconds: 1, failureThreshold: 1 },
          // (a named port; it must not fail: the built-in nginx can take seconds to listen on a loaded machine)
          livenessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1, failureThreshold: 30 },
          ports: [{ name: 'http', containerPort: 80 }],
          volumeMounts: [{ name: 'state', mountPath: '/state' }],
        },
      ],
      volumes: [{ name: 'state', emptyDir: {} }],
    },
  });
  const p = await running('probed');
  assert.equal(cond(p, 'Ready'), 'False');
  const stateDir = join(t.rootDir, 'pods', p.metadata.uid!, 'volumes', 'kubernetes.io~empty-dir', 'state');
  writeFileSync(join(stateDir, 'ready'), 'yes');
  await waitFor('Ready=True', async () => cond(await getPod(t, NS, 'probed'), 'Ready') === 'True', 30_000, 200);
  unlinkSync(join(stateDir, 'ready'));
  await waitFor('Ready=False', async () => cond(await getPod(t, NS, 'probed'), 'Ready') === 'False', 30_000, 200);
  const ev = await events(t, NS, 'probed');
  assert.ok(ev.some((e) => e.reason === 'Unhealthy' && e.message.startsWith('Readiness probe failed:')), JSON.stringify(ev));
  // Liveness: kill the web server's port by stopping the process group? Simpler: the probe targets a path that
  // starts failing when the liveness port is wrong. Patch is not allowed on containers, so use a second pod.
  await createPod(t, {
    metadata: { name: 'unlive', namespace: NS },
    spec: {
      containers: [{ name: 'app', image: 'nginx', livenessProbe: { tcpSocket: { port: 81 }, periodSeconds: 1, failureThreshold: 2 } }],
    },
  });
  const restarted = await waitFor('liveness restart', async () => {
    const x = await getPod(t, NS, 'unlive');
    return (x?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? x : undefined;
  }, 60_000, 200);
  assert.ok(restarted);
  const ev2 = await events(t, NS, 'unlive');
  assert.ok(ev2.some((e) => e.reason === 'Unhealthy' && /^Liveness probe failed: dial tcp .*:81: connect: connection refused$/.test(e.message)), JSON.stringify(ev2));
  assert.ok(ev2.some((e) => e.reason === 'Killing' && e.message === 'Container app failed liveness probe, will be restarted'), JSON.stringify(ev2));
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/probed`);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/unlive`);
});

test('a Ready condition someone else set to False (the node lifecycle controller) is set right again', async () => {
  // The lab's node lifecycle controller marks a silent node's pods not ready; when the node's kubelet is heard from
  // again, it must report its pods as they are, or they stay out of every EndpointSlice for good.
  await createPod(t, { metadata: { name: 'steady', namespace: NS }, spec: { containers: [{ name: 'app', image: 'nginx' }] } });
  try {
    await running('steady');
    await waitFor('Ready=True', async () => cond(await getPod(t, NS, 'steady'), 'Ready') === 'True', 30_000, 200);
    const p = (await getPod(t, NS, 'steady'))!;
    const conditions = (p.status?.conditions ?? []).map((c) => (c.type === 'Ready' ? { ...c, status: 'False', reason: 'NodeNotReady' } : c));
    // What the patch stored, from its answer: a read after it may already see the kubelet's repair (CI did once).
    const patched = await t.client.mergePatch<PodLike>(`/api/v1/namespaces/${NS}/pods/steady/status`, { status: { conditions } });
    assert.equal(cond(patched, 'Ready'), 'False');
    await waitFor('the kubelet sets Ready=True again', async () => cond(await getPod(t, NS, 'steady'), 'Ready') === 'True', 15_000, 100);
  } finally {
    // Left behind, the pod would hold up the tests after this one.
    await t.client.delete(`/api/v1/namespaces/${NS}/pods/steady`);
  }
});

test('an unknown image leaves the container waiting in ImagePullBackOff with an Event naming the lab images', async () => {
  await createPod(t, { metadata: { name: 'nope', namespace: NS }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } });
  await waitFor('ImagePullBackOff', async () => (await getPod(t, NS, 'nope'))?.status?.containerStatuses?.[0]?.state.waiting?.reason === 'ImagePullBackOff', 30_000, 200);
  const p = await getPod(t, NS, 'nope');
  assert.equal(p?.status?.phase, 'Pending');
  const ev = await events(t, NS, 'nope');
  const failed = ev.find((e) => e.reason === 'Failed' && e.message.startsWith('Failed to pull image "busybox:1.36"'));
  assert.ok(failed, JSON.stringify(ev));
  assert.match(failed.message, /nginx, sysnet4admin\/echo-hname, sysnet4admin\/echo-ip, quay\.io\/metallb\/controller, quay\.io\/metallb\/speaker, metallb-ts/);
  assert.ok(ev.some((e) => e.reason === 'BackOff' && e.message === 'Back-off pulling image "busybox:1.36"'));
  const logs = await kubeletGet(t, `/containerLogs/${NS}/nope/c`);
  assert.equal(logs.status, 400);
  assert.match(logs.body, /is waiting to start: (ErrImagePull|ImagePullBackOff)/);
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/nope`);
});

test('a hostNetwork pod runs in the node namespace with the node addresses', async () => {
  await createPod(t, {
    metadata: { name: 'hostnet', namespace: NS },
    spec: { hostNetwork: true, containers: [{ name: 'web', image: 'nginx', env: [{ name: 'METALLB_LAB_HTTP_PORT', value: '18080' }] }] },
  });
  const p = await running('hostnet');
  assert.deepEqual(p.status!.podIPs, [{ ip: t.nodeIPs[0] }, { ip: t.nodeIPs[1] }]);
  const page = await waitFor('nginx answers on the node address', () => {
    const r = t.inNode(`curl -s -m 2 http://${t.nodeIPs[0]}:18080/`);
    return r.out.includes('<title>Welcome to nginx!</title>') ? r.out : undefined;
  }, 30_000, 200);
  assert.equal(Buffer.byteLength(page), 615);
  assert.equal(readdirSync('/run/netns').filter((n) => n.startsWith(t.podPrefix) && n.endsWith(p.metadata.uid!.slice(0, 8))).length, 0, 'no namespace for a hostNetwork pod');
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/hostnet`);
});

test('/stats/summary reports CPU and memory of pods and containers', async () => {
  const ip = (await getPod(t, NS, 'web'))!.status!.podIP!;
  for (let i = 0; i < 30; i++) t.inNode(`curl -s -m 2 -o /dev/null http://${ip}/`);
  const s = await waitFor('summary with usage', async () => {
    const r = await kubeletGet(t, '/stats/summary');
    const body = JSON.parse(r.body) as { node: { nodeName: string; cpu?: { usageCoreNanoSeconds: number } }; pods: { podRef: { name: string }; cpu?: { usageCoreNanoSeconds: number; usageNanoCores: number }; memory?: { workingSetBytes: number }; containers: { name: string; cpu?: { usageCoreNanoSeconds: number } }[]; network?: { rxBytes: number } }[] };
    const web = body.pods.find((p) => p.podRef.name === 'web');
    return web?.cpu && web.cpu.usageCoreNanoSeconds > 0 && web.memory && web.memory.workingSetBytes > 0 ? body : undefined;
  }, 30_000, 500);
  assert.equal(s.node.nodeName, t.nodeName);
  assert.ok((s.node.cpu?.usageCoreNanoSeconds ?? 0) > 0);
  const web = s.pods.find((p) => p.podRef.name === 'web')!;
  assert.deepEqual(web.containers.map((c) => c.name).sort(), ['show', 'web']);
  assert.ok((web.containers.find((c) => c.name === 'web')?.cpu?.usageCoreNanoSeconds ?? 0) > 0);
  assert.ok((web.network?.rxBytes ?? 0) > 0);
  // The same figures in /metrics/resource, what metrics-server scrapes.
  const m = await kubeletGet(t, '/metrics/resource');
  assert.equal(m.status, 200);
  const cpu = new RegExp(`^container_cpu_usage_seconds_total\\{container="web",namespace="${NS}",pod="web"\\} ([0-9.e-]+) \\d+$`, 'm').exec(m.body);
  assert.ok(cpu && Number(cpu[1]) > 0, m.body);
  assert.match(m.body, new RegExp(`^container_memory_working_set_bytes\\{container="show",namespace="${NS}",pod="web"\\} [1-9]\\d* \\d+$`, 'm'));
  assert.match(m.body, /^node_cpu_usage_seconds_total [0-9.e-]+ \d+$/m);
  assert.match(m.body, /^resource_scrape_error 0$/m);
});

test('deleting a pod stops its processes and frees its namespace and address', async () => {
  const pod = (await getPod(t, NS, 'web'))!;
  const uid = pod.metadata.uid!;
  const netns = readdirSync('/run/netns').filter((n) => n.startsWith(t.podPrefix));
  assert.ok(netns.length >= 1);
  const ipam = (): string => readFileSync(join(t.rootDir, 'ipam.json'), 'utf8');
  assert.ok(ipam().includes(uid));
  await t.client.delete(`/api/v1/namespaces/${NS}/pods/web`);
  await waitFor('pod gone and torn down', () => !existsSync(join(t.rootDir, 'pods', uid)) && !ipam().includes(uid), 60_000, 200);
  await waitFor('no pod namespaces left', () => readdirSync('/run/netns').filter((n) => n.startsWith(t.podPrefix)).length === 0, 60_000, 200);
  assert.equal(t.inNode(`curl -s -m 2 http://${pod.status!.podIP}/`).code !== 0, true);
  await waitFor('API object gone', async () => (await getPod(t, NS, 'web')) === undefined, 30_000, 200);
  assert.equal(existsSync('/podinfo'), false, 'the top-level mount points the pod needed are removed');
  assert.equal(existsSync('/tkl-scratch'), false, 'the top-level mount points the pod needed are removed');
});
