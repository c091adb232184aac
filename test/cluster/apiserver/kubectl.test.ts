// The real kubectl (default v1.32 and an older v1.27) against `metallb dev-apiserver` run as a child process.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubectl, kubectlBinary, kubectlOk, startDevServer, type DevServerHandle } from '../../helpers/devserver.js';

let srv: DevServerHandle;
let dir: string;
const k = (args: string[], input?: string) => kubectlOk(args, srv.kubeconfig, input === undefined ? {} : { input });

before(async () => {
  srv = await startDevServer();
  dir = mkdtempSync(join(tmpdir(), 'devserver-kubectl-'));
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const MANIFEST = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1
        env: [{name: A, value: "1"}]
`;

test('kubectl apply (create, then configure with a strategic merge patch), get, get -o yaml, describe', async () => {
  const f = join(dir, 'm.yaml');
  writeFileSync(f, MANIFEST);
  const out = await k(['apply', '-f', f]);
  assert.match(out, /namespace\/demo created/);
  assert.match(out, /service\/web created/);
  assert.match(out, /deployment.apps\/web created/);
  writeFileSync(f, MANIFEST.replace('replicas: 2', 'replicas: 3').replace('value: "1"', 'value: "2"').replace('nginx:1', 'nginx:2'));
  const again = await k(['apply', '-f', f]);
  assert.match(again, /service\/web unchanged/);
  assert.match(again, /deployment.apps\/web configured/);
  const dep = JSON.parse(await k(['get', 'deploy', 'web', '-n', 'demo', '-o', 'json'])) as { spec: { replicas: number; template: { spec: { containers: { image: string; env: unknown[] }[] } } }; metadata: { generation: number } };
  assert.equal(dep.spec.replicas, 3);
  assert.equal(dep.spec.template.spec.containers[0]!.image, 'nginx:2');
  assert.deepEqual(dep.spec.template.spec.containers[0]!.env, [{ name: 'A', value: '2' }]);
  assert.equal(dep.metadata.generation, 2);
  const table = await k(['get', 'svc', '-n', 'demo']);
  const lines = table.trim().split('\n');
  assert.match(lines[0]!, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE$/);
  assert.match(lines[1]!, /^web\s+LoadBalancer\s+10\.\d+\.\d+\.\d+\s+<pending>\s+80:3\d{4}\/TCP,443:3\d{4}\/TCP\s+\d+s$/);
  const yaml = await k(['get', 'svc', 'web', '-n', 'demo', '-o', 'yaml']);
  assert.match(yaml, /kubectl.kubernetes.io\/last-applied-configuration/);
  assert.match(yaml, /externalTrafficPolicy: Cluster/);
  assert.match(yaml, /ipFamilyPolicy: SingleStack/);
  const desc = await k(['describe', 'svc', 'web', '-n', 'demo']);
  assert.match(desc, /Type:\s+LoadBalancer/);
  assert.match(desc, /NodePort:\s+http\s+3\d{4}\/TCP/);
  const wide = await k(['get', 'svc', 'web', '-n', 'demo', '-o', 'wide']);
  assert.match(wide, /SELECTOR/);
  assert.match(wide, /app=web/);
});

test('kubectl patch --type merge|json|strategic, status subresource shows EXTERNAL-IP', async () => {
  await k(['patch', 'svc', 'web', '-n', 'demo', '--type=merge', '-p', '{"metadata":{"labels":{"m":"1"}}}']);
  await k(['patch', 'svc', 'web', '-n', 'demo', '--type=json', '-p', '[{"op":"add","path":"/metadata/labels/j","value":"2"}]']);
  await k(['patch', 'svc', 'web', '-n', 'demo', '--type=strategic', '-p', '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}']);
  const svc = JSON.parse(await k(['get', 'svc', 'web', '-n', 'demo', '-o', 'json'])) as { metadata: { labels: Record<string, string> }; spec: { ports: { port: number; targetPort: number }[] } };
  assert.deepEqual(svc.metadata.labels, { app: 'web', m: '1', j: '2' });
  assert.deepEqual(svc.spec.ports.map((p) => `${p.port}->${p.targetPort}`), ['80->9090', '443->443']);
  await k(['patch', 'svc', 'web', '-n', 'demo', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.168.10.240"}]}}}']);
  assert.match(await k(['get', 'svc', 'web', '-n', 'demo']), /web\s+LoadBalancer\s+\S+\s+192\.168\.10\.240\s/);
  const bad = await kubectl(['patch', 'svc', 'web', '-n', 'demo', '--type=merge', '-p', '{"spec":{"ports":[{"port":0}]}}'], srv.kubeconfig);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /The Service "web" is invalid/);
  assert.match(bad.stderr, /spec.ports\[0\].port: Invalid value: 0: must be between 1 and 65535, inclusive/);
});

test('kubectl create (from a file and generators), expose, get -w, delete', async () => {
  await k(['create', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromfile\n  namespace: demo\ndata:\n  a: b\n');
  await k(['create', 'configmap', 'gen', '-n', 'demo', '--from-literal=x=y']);
  await k(['create', 'secret', 'generic', 'memberlist', '-n', 'demo', '--from-literal=secretkey=abc']);
  const sec = JSON.parse(await k(['get', 'secret', 'memberlist', '-n', 'demo', '-o', 'json'])) as { data: Record<string, string>; type: string };
  assert.equal(Buffer.from(sec.data.secretkey!, 'base64').toString(), 'abc');
  assert.equal(sec.type, 'Opaque');
  const dupe = await kubectl(['create', 'configmap', 'gen', '-n', 'demo'], srv.kubeconfig);
  assert.match(dupe.stderr, /configmaps "gen" already exists/);
  assert.match(await k(['expose', 'service', 'web', '-n', 'demo', '--port', '8080', '--name', 'web2']), /service\/web2 exposed/);
  const web2 = JSON.parse(await k(['get', 'svc', 'web2', '-n', 'demo', '-o', 'json'])) as { spec: { selector: Record<string, string>; ports: { port: number }[]; type: string } };
  assert.deepEqual(web2.spec.selector, { app: 'web' });
  assert.equal(web2.spec.ports[0]!.port, 8080);
  // get -w: the initial list, then live changes
  const watching = kubectl(['get', 'svc', '-n', 'demo', '-w'], srv.kubeconfig, { timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 1500));
  await k(['create', 'service', 'clusterip', 'watched', '-n', 'demo', '--tcp=81:81']);
  await k(['delete', 'svc', 'web2', '-n', 'demo']);
  const w = await watching;
  assert.match(w.stdout, /^NAME\s+TYPE\s+CLUSTER-IP/);
  assert.match(w.stdout, /\nweb\s+LoadBalancer/);
  assert.match(w.stdout, /\nwatched\s+ClusterIP\s+\S+\s+<none>\s+81\/TCP/);
  assert.equal(w.stdout.split('\n').filter((l) => l.startsWith('web2 ')).length, 2, 'listed, then deleted');
  assert.match(await k(['get', 'svc', 'web2', '-n', 'demo', '--ignore-not-found']), /^$/);
  const nf = await kubectl(['get', 'svc', 'nope', '-n', 'demo'], srv.kubeconfig);
  assert.match(nf.stderr, /Error from server \(NotFound\): services "nope" not found/);
  assert.match(await k(['delete', 'ns', 'demo']), /namespace "demo" deleted/);
  assert.match((await kubectl(['get', 'ns', 'demo'], srv.kubeconfig)).stderr, /namespaces "demo" not found/);
});

test('kubectl scale uses the scale subresource', async () => {
  await k(['create', 'deployment', 'sc', '--image=nginx', '--replicas=1']);
  assert.match(await k(['scale', 'deployment', 'sc', '--replicas=4']), /deployment.apps\/sc scaled/);
  assert.equal(await k(['get', 'deploy', 'sc', '-o', 'jsonpath={.spec.replicas}']), '4');
  const scale = JSON.parse(await k(['get', '--raw', '/apis/apps/v1/namespaces/default/deployments/sc/scale'])) as { kind: string; spec: { replicas: number }; status: { selector: string } };
  assert.deepEqual([scale.kind, scale.spec.replicas, scale.status.selector], ['Scale', 4, 'app=sc']);
  await k(['delete', 'deploy', 'sc']);
});

test('kubectl apply --server-side', async () => {
  const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: default\ndata:\n  a: "1"\n';
  assert.match(await k(['apply', '--server-side', '-f', '-'], cm), /configmap\/ssa serverside-applied/);
  await k(['apply', '--server-side', '-f', '-'], cm.replace('"1"', '"2"'));
  assert.equal(await k(['get', 'cm', 'ssa', '-o', 'jsonpath={.data.a}']), '2');
});

const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ipaddresspools.metallb.io
spec:
  group: metallb.io
  names: {kind: IPAddressPool, listKind: IPAddressPoolList, plural: ipaddresspools, singular: ipaddresspool}
  scope: Namespaced
  versions:
  - name: v1beta1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Auto Assign, type: boolean, jsonPath: .spec.autoAssign}
    - {name: Addresses, type: string, jsonPath: .spec.addresses}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            required: [addresses]
            properties:
              addresses: {type: array, minItems: 1, items: {type: string}}
              autoAssign: {type: boolean, default: true}
              avoidBuggyIPs: {type: boolean, default: false}
              mode: {type: string, enum: [layer2, bgp]}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
`;

test('CRDs: served after creation, defaults applied, invalid objects rejected with 422, printer columns', async () => {
  assert.match(await k(['apply', '-f', '-'], CRD), /customresourcedefinition.apiextensions.k8s.io\/ipaddresspools.metallb.io created/);
  const crd = JSON.parse(await k(['get', 'crd', 'ipaddresspools.metallb.io', '-o', 'json'])) as { status: { conditions: { type: string; status: string }[] } };
  assert.deepEqual(crd.status.conditions.map((c) => `${c.type}=${c.status}`).sort(), ['Established=True', 'NamesAccepted=True']);
  await k(['create', 'ns', 'metallb-system']);
  const pool = 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: pool1\n  namespace: metallb-system\nspec:\n  addresses: [192.168.10.0/24]\n';
  assert.match(await k(['create', '-f', '-'], pool), /ipaddresspool.metallb.io\/pool1 created/);
  const got = JSON.parse(await k(['get', 'ipaddresspools', 'pool1', '-n', 'metallb-system', '-o', 'json'])) as { spec: Record<string, unknown> };
  assert.deepEqual(got.spec, { addresses: ['192.168.10.0/24'], autoAssign: true, avoidBuggyIPs: false });
  const table = await k(['get', 'ipaddresspools', '-n', 'metallb-system']);
  assert.match(table, /^NAME\s+AUTO ASSIGN\s+ADDRESSES\s+AGE\n/);
  assert.match(table, /pool1\s+true\s+\["192.168.10.0\/24"\]\s+\d+s/);
  const bad = await kubectl(['apply', '-f', '-'], srv.kubeconfig, { input: 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: bad\n  namespace: metallb-system\nspec:\n  addresses: []\n  mode: ospf\n' });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /The IPAddressPool "bad" is invalid/);
  assert.match(bad.stderr, /spec.addresses: Invalid value: 0: spec.addresses in body should have at least 1 items/);
  assert.match(bad.stderr, /spec.mode: Unsupported value: "ospf": supported values: "layer2", "bgp"/);
  const missing = await kubectl(['create', '-f', '-'], srv.kubeconfig, { input: 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: bad2\n  namespace: metallb-system\nspec: {}\n' });
  assert.match(missing.stderr, /spec.addresses: Required value/);
  const unknown = await kubectl(['apply', '-f', '-'], srv.kubeconfig, { input: pool.replace('pool1', 'pool3') + '  bogus: 1\n' });
  assert.match(unknown.stderr, /strict decoding error: unknown field "spec.bogus"/);
  await k(['patch', 'ipaddresspool', 'pool1', '-n', 'metallb-system', '--subresource=status', '--type=merge', '-p', '{"status":{"used":1}}']);
  assert.equal(await k(['get', 'ipaddresspool', 'pool1', '-n', 'metallb-system', '-o', 'jsonpath={.status.used}']), '1');
  const explain = await k(['explain', 'ipaddresspools.spec']);
  assert.match(explain, /KIND:\s+IPAddressPool/);
  assert.match(explain, /addresses\s+<\[\]string> -required-/);
  // deleting the CRD removes the resource and its objects
  await k(['delete', 'crd', 'ipaddresspools.metallb.io']);
  const gone = await kubectl(['get', 'ipaddresspools', '-A'], srv.kubeconfig);
  assert.notEqual(gone.code, 0);
});

test('kubectl get pods: STATUS shows the container state (ContainerCreating, CrashLoopBackOff, Init:0/1, Completed, Terminating), RESTARTS the last restart', async () => {
  const pods = `apiVersion: v1
kind: Namespace
metadata: {name: podstatus}
---
apiVersion: v1
kind: Pod
metadata: {name: creating, namespace: podstatus}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: crashing, namespace: podstatus}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: initing, namespace: podstatus}
spec: {initContainers: [{name: i, image: nginx}], containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: done, namespace: podstatus, finalizers: [example.com/hold]}
spec: {restartPolicy: Never, containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: running, namespace: podstatus, finalizers: [example.com/hold]}
spec: {containers: [{name: c, image: nginx}]}
`;
  await k(['apply', '-f', '-'], pods);
  const setStatus = (pod: string, status: object) => k(['patch', 'pod', pod, '-n', 'podstatus', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
  const finished = new Date(Date.now() - 30_000).toISOString().replace(/\.\d+Z$/, 'Z');
  await setStatus('creating', { phase: 'Pending', containerStatuses: [{ name: 'c', image: 'nginx', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }] });
  await setStatus('crashing', {
    phase: 'Running',
    containerStatuses: [{ name: 'c', image: 'nginx', imageID: '', ready: false, restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, reason: 'Error', finishedAt: finished } } }],
  });
  await setStatus('initing', {
    phase: 'Pending',
    initContainerStatuses: [{ name: 'i', image: 'nginx', imageID: '', ready: false, restartCount: 0, state: { running: {} } }],
    containerStatuses: [{ name: 'c', image: 'nginx', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } }],
  });
  await setStatus('done', { phase: 'Succeeded', containerStatuses: [{ name: 'c', image: 'nginx', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } }] });
  await setStatus('running', { phase: 'Running', containerStatuses: [{ name: 'c', image: 'nginx', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] });
  try {
    // held by a finalizer, so it stays Terminating for kubectl to see
    await k(['delete', 'pod', 'running', '-n', 'podstatus', '--wait=false']);
    const table = await k(['get', 'pods', '-n', 'podstatus']);
    const lines = table.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    const rowOf = (pod: string) => lines.find((l) => l.startsWith(`${pod} `))?.split(/\s{2,}/);
    assert.deepEqual(rowOf('creating')?.slice(0, 4), ['creating', '0/1', 'ContainerCreating', '0']);
    assert.deepEqual(rowOf('crashing')?.slice(1, 3), ['0/1', 'CrashLoopBackOff']);
    assert.match(rowOf('crashing')?.[3] ?? '', /^4 \(\d+s ago\)$/);
    assert.deepEqual(rowOf('initing')?.slice(0, 3), ['initing', '0/1', 'Init:0/1']);
    assert.deepEqual(rowOf('done')?.slice(0, 3), ['done', '0/1', 'Completed']);
    assert.deepEqual(rowOf('running')?.slice(0, 3), ['running', '1/1', 'Terminating']);
    const wide = await k(['get', 'pods', '-n', 'podstatus', '-o', 'wide']);
    assert.match(wide.split('\n')[0]!, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/);
  } finally {
    for (const pod of ['done', 'running']) await kubectl(['patch', 'pod', pod, '-n', 'podstatus', '--type=merge', '-p', '{"metadata":{"finalizers":null}}'], srv.kubeconfig);
    await kubectl(['delete', 'namespace', 'podstatus', '--wait=false'], srv.kubeconfig);
  }
});

test('kubectl get -o wide: workloads show containers, images and selector; nodes their OS image, kernel and runtime', async () => {
  const m = `apiVersion: v1
kind: Namespace
metadata: {name: wide}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: wide}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1.25}, {name: side, image: sysnet4admin/echo-hname}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: wide}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: nginx}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: wide}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: quay.io/metallb/speaker:v0.14.9}]}
---
apiVersion: v1
kind: Node
metadata: {name: wide-node, labels: {node-role.kubernetes.io/control-plane: ""}}
`;
  await k(['apply', '-f', '-'], m);
  try {
    await k(['patch', 'node', 'wide-node', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: '10.89.0.11' }], conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok', lastHeartbeatTime: null, lastTransitionTime: null }], nodeInfo: { kubeletVersion: 'v1.32.0', osImage: 'Debian GNU/Linux 12 (bookworm)', kernelVersion: '6.1.0-28-amd64', containerRuntimeVersion: 'metallb-lab://0.1', machineID: '', systemUUID: '', bootID: '', kubeProxyVersion: '', operatingSystem: 'linux', architecture: 'amd64' } } })]);
    const deploy = (await k(['get', 'deploy', 'web', '-n', 'wide', '-o', 'wide'])).trim().split('\n');
    assert.match(deploy[0]!, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR$/);
    assert.match(deploy[1]!, /^web\s+0\/3\s+0\s+0\s+\S+\s+web,side\s+nginx:1\.25,sysnet4admin\/echo-hname\s+app=web$/);
    const sts = (await k(['get', 'sts', 'db', '-n', 'wide', '-o', 'wide'])).trim().split('\n');
    assert.match(sts[0]!, /^NAME\s+READY\s+AGE\s+CONTAINERS\s+IMAGES$/);
    assert.match(sts[1]!, /^db\s+0\/2\s+\S+\s+db\s+nginx$/);
    const ds = (await k(['get', 'ds', 'agent', '-n', 'wide', '-o', 'wide'])).trim().split('\n');
    assert.match(ds[0]!, /^NAME\s+DESIRED\s+CURRENT\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+NODE SELECTOR\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR$/);
    assert.match(ds[1]!, /^agent\s+0\s+0\s+0\s+0\s+0\s+<none>\s+\S+\s+agent\s+quay\.io\/metallb\/speaker:v0\.14\.9\s+app=agent$/);
    const node = (await k(['get', 'node', 'wide-node', '-o', 'wide'])).trim().split('\n');
    assert.match(node[0]!, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\s+INTERNAL-IP\s+EXTERNAL-IP\s+OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME$/);
    assert.match(node[1]!, /^wide-node\s+Ready\s+control-plane\s+\S+\s+v1\.32\.0\s+10\.89\.0\.11\s+<none>\s+Debian GNU\/Linux 12 \(bookworm\)\s+6\.1\.0-28-amd64\s+metallb-lab:\/\/0\.1$/);
  } finally {
    await kubectl(['delete', 'node', 'wide-node', '--wait=false'], srv.kubeconfig);
    await kubectl(['delete', 'namespace', 'wide', '--wait=false'], srv.kubeconfig);
  }
});

test('kubectl apply of a broken Deployment and Pod: refused with kube-apiserver\'s field errors', async () => {
  const bad = `apiVersion: apps/v1
kind: Deployment
metadata: {name: mismatch, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: noimage, namespace: default}
spec: {containers: [{name: web, ports: [{containerPort: 70000}]}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: fine, namespace: default}
data: {a: b}
`;
  const r = await kubectl(['apply', '-f', '-'], srv.kubeconfig, { input: bad });
  try {
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /configmap\/fine created/);
    assert.match(r.stderr, /Error from server \(Invalid\): error when creating "STDIN": Deployment\.apps "mismatch" is invalid: spec\.template\.metadata\.labels: Invalid value: map\[string\]string\{"app":"api"\}: `selector` does not match template `labels`/);
    assert.match(r.stderr, /Error from server \(Invalid\): error when creating "STDIN": Pod "noimage" is invalid: \[spec\.containers\[0\]\.image: Required value, spec\.containers\[0\]\.ports\[0\]\.containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive\]/);
  } finally {
    await kubectl(['delete', 'configmap', 'fine', '--ignore-not-found'], srv.kubeconfig);
  }
});

test('kubectl get events (and -o wide) and kubectl events: counts, first and last seen, source, as kube-apiserver prints them', async () => {
  const iso = (ago: number) => new Date(Date.now() - ago * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const ev = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'web.ip', namespace: 'default' },
    involvedObject: { kind: 'Service', name: 'web', namespace: 'default', apiVersion: 'v1' },
    reason: 'IPAllocated',
    message: 'Assigned IP ["10.89.0.200"]',
    type: 'Normal',
    source: { component: 'metallb-controller' },
    count: 3,
    firstTimestamp: iso(600),
    lastTimestamp: iso(30),
  };
  await k(['apply', '-f', '-'], JSON.stringify(ev));
  try {
    const plain = (await k(['get', 'events', '--field-selector', 'reason=IPAllocated'])).trim().split('\n');
    assert.match(plain[0]!, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/);
    assert.match(plain[1]!, /^\d+s\s+Normal\s+IPAllocated\s+service\/web\s+Assigned IP \["10\.89\.0\.200"\]$/);
    const wide = (await k(['get', 'events', '--field-selector', 'reason=IPAllocated', '-o', 'wide'])).trim().split('\n');
    assert.match(wide[0]!, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+SUBOBJECT\s+SOURCE\s+MESSAGE\s+FIRST SEEN\s+COUNT\s+NAME$/);
    assert.match(wide[1]!, /^\d+s\s+Normal\s+IPAllocated\s+service\/web\s+metallb-controller\s+Assigned IP \["10\.89\.0\.200"\]\s+10m\s+3\s+web\.ip$/);
    // the same event through events.k8s.io/v1
    const v1 = (await k(['get', 'events.v1.events.k8s.io', '--field-selector', 'reason=IPAllocated', '-o', 'wide'])).trim().split('\n');
    assert.match(v1[1]!, /^\d+s\s+Normal\s+IPAllocated\s+service\/web\s+metallb-controller\s+Assigned IP \["10\.89\.0\.200"\]\s+10m\s+3\s+web\.ip$/);
    const events = await k(['events', '--for', 'service/web']);
    assert.match(events, /\d+s \(x3 over 10m\)\s+Normal\s+IPAllocated\s+Service\/web\s+Assigned IP/);
  } finally {
    await kubectl(['delete', 'event', 'web.ip'], srv.kubeconfig);
  }
});

test('kubectl explain of built-in kinds: fields, types, required, descriptions; apply patches still come from kubectl\'s own types', async () => {
  const ports = await k(['explain', 'pod.spec.containers.ports']);
  assert.match(ports, /^KIND:\s+Pod\nVERSION:\s+v1\n/);
  assert.match(ports, /FIELD: ports <\[\]ContainerPort>/);
  assert.match(ports, /containerPort\t<integer> -required-\n\s+Number of port to expose on the pod's IP address/);
  assert.match(ports, /protocol\t<string>/);
  const svc = await k(['explain', 'service.spec.ports.targetPort']);
  assert.match(svc, /FIELD: targetPort <IntOrString>\n\n\nDESCRIPTION:\n\s+IntOrString is a type that can hold an int32 or a string/);
  const deploy = await k(['explain', 'deployment.spec.template.spec.containers.resources.limits']);
  assert.match(deploy, /^GROUP:\s+apps\nKIND:\s+Deployment\nVERSION:\s+v1\n/);
  assert.match(deploy, /FIELD: limits <map\[string\]Quantity>/);
  const meta = await k(['explain', 'configmap']);
  assert.match(meta, /metadata\t<ObjectMeta>\n\s+Standard object's metadata/);
  assert.match(meta, /data\t<map\[string\]string>/);
  // kubectl computes client-side apply patches from the OpenAPI v3 schemas only for operations offering strategic
  // merge patch: none here, so its compiled-in types (with their patch strategies) stay in charge
  const doc = JSON.parse(await k(['get', '--raw', '/openapi/v3/api/v1'])) as { paths: Record<string, { patch?: { requestBody?: { content?: Record<string, unknown> } } }> };
  const patchTypes = new Set(Object.values(doc.paths).flatMap((p) => Object.keys(p.patch?.requestBody?.content ?? {})));
  assert.ok(patchTypes.size > 0 && !patchTypes.has('application/strategic-merge-patch+json'), [...patchTypes].join(','));
});

test('older kubectl (1.27): apply and get', async (t) => {
  const bin = kubectlBinary('1.27');
  if (!bin) {
    t.skip('kubectl.1.27 not installed');
    return;
  }
  const opts = { bin };
  const m = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: old\n  namespace: default\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n';
  const r1 = await kubectl(['apply', '-f', '-'], srv.kubeconfig, { ...opts, input: m });
  assert.equal(r1.code, 0, r1.stderr);
  assert.match(r1.stdout, /service\/old created/);
  const r2 = await kubectl(['apply', '-f', '-'], srv.kubeconfig, { ...opts, input: m.replace('port: 80', 'port: 81') });
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stdout, /service\/old configured/);
  const r3 = await kubectl(['get', 'svc', 'old'], srv.kubeconfig, opts);
  assert.equal(r3.code, 0, r3.stderr);
  assert.match(r3.stdout, /old\s+NodePort\s+10\.\S+\s+<none>\s+81:3\d{4}\/TCP/);
  const r4 = await kubectl(['get', 'svc', 'old', '-o', 'yaml'], srv.kubeconfig, opts);
  assert.match(r4.stdout, /nodePort: 3\d{4}/);
  const r5 = await kubectl(['delete', 'svc', 'old'], srv.kubeconfig, opts);
  assert.equal(r5.code, 0, r5.stderr);
});
