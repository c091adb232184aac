// Integration (root): three `metallb speaker` processes in node namespaces on a LAN (tsp-, memberlist off: every
// Node is a candidate) against the dev API server, and a client namespace with arping and ndisc6. Exactly the
// elected node answers ARP/NDP with its MAC, writes the ServiceL2Status, records nodeAssigned and exports
// metallb_speaker_announced; ownership follows endpoints, the exclusion label and Service changes; a config that
// would orphan an announced address is refused; SIGTERM exits within the pod's grace period.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NS, poolYaml, sleep, startEnv, waitFor, type Env } from '../controller/helpers.js';
import { isRoot } from '../helpers/netns.js';
import { metric, startSpeaker, type SpeakerHandle } from './process.js';
import { TestLan, type LanMachine } from './lan.js';

const APPS = 'tsp-apps';
const skip = isRoot() ? false : 'needs root (network namespaces, raw sockets)';
const lan = new TestLan(101);
const machines = new Map<string, LanMachine>();
let client: LanMachine;
let env: Env;
const speakers = new Map<string, SpeakerHandle>();

interface L2StatusObj {
  metadata: { name: string; generateName?: string; labels?: Record<string, string>; ownerReferences?: { kind: string; name: string; uid: string }[] };
  status?: { node?: string; serviceName?: string; serviceNamespace?: string; interfaces?: { name: string }[] };
}

const nodeYaml = (name: string, labels: Record<string, string> = {}): string => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: ${JSON.stringify({ 'kubernetes.io/hostname': name, ...labels })}
`;

async function setIngress(name: string, ips: string[]): Promise<void> {
  await env.api.mergePatch(`/api/v1/namespaces/${APPS}/services/${name}/status`, { status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } } });
}

async function setEndpoints(svc: string, eps: { node: string; ready?: boolean; serving?: boolean }[]): Promise<void> {
  const body = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-abc`, namespace: APPS, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: eps.map((e, i) => ({ addresses: [`10.244.${i + 1}.9`], nodeName: e.node, conditions: { ready: e.ready ?? true, ...(e.serving !== undefined ? { serving: e.serving } : {}) } })),
  };
  const path = `/apis/discovery.k8s.io/v1/namespaces/${APPS}/endpointslices`;
  await env.api.delete(`${path}/${svc}-abc`).catch(() => undefined);
  await env.api.post(path, body);
}

async function statuses(svc?: string): Promise<L2StatusObj[]> {
  const list = await env.api.get<{ items: L2StatusObj[] }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/servicel2statuses`);
  return list.items.filter((o) => !svc || o.metadata.labels?.['metallb.io/service-name'] === svc);
}

/** Waits until exactly one status object names `node` (or none when node is undefined) for `svc`. */
async function waitOwner(svc: string, node: string | undefined): Promise<L2StatusObj | undefined> {
  return waitFor(`${svc} announced by ${node ?? 'nobody'}`, async () => {
    const s = await statuses(svc);
    if (node === undefined) return s.length === 0 ? ({} as L2StatusObj) : undefined;
    return s.length === 1 && s[0]!.status?.node === node ? s[0] : undefined;
  }, 30_000, 100).then((x) => (node === undefined ? undefined : x));
}

async function announcers(svc: string): Promise<string[]> {
  const out: string[] = [];
  for (const [node, h] of speakers) {
    if (metric(await h.metrics(), 'metallb_speaker_announced', { service: `${APPS}/${svc}`, protocol: 'layer2' }) === 1) out.push(node);
  }
  return out.sort();
}

async function events(name: string): Promise<{ reason: string; message: string; type: string; source?: { component?: string; host?: string }; count?: number }[]> {
  const list = await env.api.get<{ items: { reason: string; message: string; type: string; involvedObject: { name: string }; source?: { component?: string; host?: string } }[] }>(`/api/v1/namespaces/${APPS}/events`);
  return list.items.filter((e) => e.involvedObject.name === name);
}

/** The MACs answering ARP for `ip` from the client, once the answer is what we expect (the owner may move). */
async function arpOwner(ip: string, node: string | undefined): Promise<string[]> {
  const want = node ? [machines.get(node)!.mac] : [];
  return waitFor(`ARP for ${ip} answered by ${node ?? 'nobody'}`, () => {
    const got = lan.arpingAll(client, ip, 2);
    return JSON.stringify(got) === JSON.stringify(want) ? got : undefined;
  }, 30_000, 200);
}

before(async () => {
  if (skip) return;
  lan.up();
  for (let i = 1; i <= 3; i++) machines.set(`node${i}`, lan.node(i));
  client = lan.client();
  env = await startEnv({ extraArgs: ['--host', lan.hostIP] });
  await env.apply([nodeYaml('node1'), nodeYaml('node2'), nodeYaml('node3')].join('---\n'));
  await env.kc(['create', 'namespace', APPS]);
  await env.apply([
    poolYaml('lan', ['10.97.0.0/24', 'fd00:97::/120']),
    poolYaml('extra', ['10.97.9.0/24']),
    `apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lan, namespace: ${NS}}
spec:
  ipAddressPools: [lan, extra]
`,
    // The pod owning node3's status objects.
    `apiVersion: v1
kind: Pod
metadata: {name: speaker-n3, namespace: ${NS}, labels: {app: metallb, component: speaker}}
spec: {nodeName: node3, containers: [{name: speaker, image: quay.io/metallb/speaker:v0.14.9}]}
`,
  ].join('---\n'));
  const started = await Promise.all(['node1', 'node2', 'node3'].map((n) =>
    startSpeaker(env.kubeconfig, n, { netns: machines.get(n)!, ...(n === 'node3' ? { args: ['--pod-name', 'speaker-n3'] } : {}) })));
  for (const h of started) speakers.set(h.node, h);
});

after(async () => {
  await Promise.all([...speakers.values()].map((h) => h.stop()));
  await env?.close();
  await lan.down();
});

test('the elected node announces: status object, metric, nodeAssigned event; the others do not', { skip }, async () => {
  await env.apply(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${APPS}, labels: {app: web}}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
`);
  await setEndpoints('web', [{ node: 'node1' }]);
  await setIngress('web', ['10.97.0.1']);
  // sha256(node#10.97.0.1): node3 < node1 < node2.
  const st = await waitOwner('web', 'node3');
  assert.ok(st);
  assert.equal(st.metadata.generateName, 'l2-');
  assert.match(st.metadata.name, /^l2-/);
  assert.deepEqual(st.metadata.labels, { 'metallb.io/node': 'node3', 'metallb.io/service-name': 'web', 'metallb.io/service-namespace': APPS });
  assert.deepEqual(st.status, { node: 'node3', serviceName: 'web', serviceNamespace: APPS });
  const pod = await env.api.get<{ metadata: { uid: string } }>(`/api/v1/namespaces/${NS}/pods/speaker-n3`);
  assert.deepEqual(st.metadata.ownerReferences?.map((o) => ({ kind: o.kind, name: o.name, uid: o.uid })), [{ kind: 'Pod', name: 'speaker-n3', uid: pod.metadata.uid }]);
  assert.deepEqual(await waitFor('metric on node3 only', async () => {
    const a = await announcers('web');
    return a.length === 1 ? a : undefined;
  }), ['node3']);
  const m3 = await speakers.get('node3')!.metrics();
  assert.equal(metric(m3, 'metallb_speaker_announced', { service: `${APPS}/web`, protocol: 'layer2', node: 'node3', ip: '10.97.0.1' }), 1);
  assert.equal(metric(m3, 'metallb_k8s_client_config_loaded_bool'), 1);
  const ev = await waitFor('nodeAssigned', async () => (await events('web')).find((e) => e.reason === 'nodeAssigned'));
  assert.equal(ev.type, 'Normal');
  assert.equal(ev.message, 'announcing from node "node3" with protocol "layer2"');
  assert.equal(ev.source?.component, 'metallb-speaker');
  const log = speakers.get('node3')!.lines().find((l) => l.msg === 'service has IP, announcing');
  assert.deepEqual({ service: log?.service, ips: log?.ips, protocol: log?.protocol }, { service: `${APPS}/web`, ips: ['10.97.0.1'], protocol: 'layer2' });
  // Only node3 answers ARP, with its MAC; the counters count it.
  assert.deepEqual(await arpOwner('10.97.0.1', 'node3'), [machines.get('node3')!.mac]);
  const m3b = await speakers.get('node3')!.metrics();
  assert.ok((metric(m3b, 'metallb_layer2_requests_received', { ip: '10.97.0.1' }) ?? 0) >= 1);
  assert.ok((metric(m3b, 'metallb_layer2_responses_sent', { ip: '10.97.0.1' }) ?? 0) >= 1);
  assert.ok((metric(m3b, 'metallb_layer2_gratuitous_sent', { ip: '10.97.0.1' }) ?? 0) >= 2);
  // `kubectl get servicel2statuses` shows the columns of MetalLB's CRD.
  const table = await env.kc(['get', 'servicel2statuses', '-n', NS]);
  assert.match(table, /node3\s+web\s+tsp-apps/);
});

test('externalTrafficPolicy Local: only a node with a serving endpoint announces; ownership moves with endpoints', { skip }, async () => {
  await env.kc(['patch', 'service', '-n', APPS, 'web', '-p', '{"spec":{"externalTrafficPolicy":"Local"}}']);
  await waitOwner('web', 'node1');
  await arpOwner('10.97.0.1', 'node1');
  // A terminating-but-serving endpoint on node2 and none ready elsewhere: node2.
  await setEndpoints('web', [{ node: 'node2', ready: false, serving: true }, { node: 'node1', ready: false }]);
  await waitOwner('web', 'node2');
  assert.deepEqual(await waitFor('metric follows', async () => {
    const a = await announcers('web');
    return a.length === 1 && a[0] === 'node2' ? a : undefined;
  }), ['node2']);
  // No endpoint can serve: nobody announces (also for Cluster policy).
  await setEndpoints('web', [{ node: 'node2', ready: false, serving: false }]);
  await waitOwner('web', undefined);
  await arpOwner('10.97.0.1', undefined);
  await env.kc(['patch', 'service', '-n', APPS, 'web', '-p', '{"spec":{"externalTrafficPolicy":"Cluster"}}']);
  await sleep(500);
  assert.equal((await statuses('web')).length, 0);
  await setEndpoints('web', [{ node: 'node1' }]);
  await waitOwner('web', 'node3');
});

test('exclusion label and NetworkUnavailable move the address to the next node in hash order', { skip }, async () => {
  await env.kc(['label', 'node', 'node3', 'node.kubernetes.io/exclude-from-external-load-balancers=true']);
  await waitOwner('web', 'node1');
  await env.kc(['label', 'node', 'node3', 'node.kubernetes.io/exclude-from-external-load-balancers-']);
  await waitOwner('web', 'node3');
  await env.api.mergePatch('/api/v1/nodes/node3/status', { status: { conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' }] } });
  await waitOwner('web', 'node1');
  await env.api.mergePatch('/api/v1/nodes/node3/status', { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated' }] } });
  await waitOwner('web', 'node3');
});

test('interfaces of the advertisement are listed in the status; dual-stack elects on the first address', { skip }, async () => {
  await env.apply(`apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lan, namespace: ${NS}}
spec:
  ipAddressPools: [lan, extra]
  interfaces: [eth0]
`);
  const st = await waitFor('interfaces in status', async () => {
    const s = await statuses('web');
    return s.length === 1 && s[0]!.status?.interfaces ? s[0] : undefined;
  });
  assert.deepEqual(st.status?.interfaces, [{ name: 'eth0' }]);
  await env.apply(`apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lan, namespace: ${NS}}
spec:
  ipAddressPools: [lan, extra]
`);
  await waitFor('interfaces gone', async () => {
    const s = await statuses('web');
    return s.length === 1 && s[0]!.status?.interfaces === undefined;
  });
  // [fd00:97::a, 10.97.0.10]: sha256(node#fd00:97::a) orders node2 first among node1..3.
  await setIngress('web', ['fd00:97::a', '10.97.0.10']);
  await waitOwner('web', 'node2');
  assert.equal(await waitFor('NDP answer from node2', () => lan.ndisc6(client, 'fd00:97::a') === machines.get('node2')!.mac || undefined, 30_000, 200), true);
  await arpOwner('10.97.0.10', 'node2');
  const m2 = await speakers.get('node2')!.metrics();
  assert.equal(metric(m2, 'metallb_speaker_announced', { service: `${APPS}/web`, ip: 'fd00:97::a' }), 1);
  assert.equal(metric(m2, 'metallb_speaker_announced', { service: `${APPS}/web`, ip: '10.97.0.10' }), 1);
  await setIngress('web', ['10.97.0.1']);
  await waitOwner('web', 'node3');
});

test('a config that would orphan an announced address is refused; the announcement stays', { skip }, async () => {
  await env.apply(`apiVersion: v1
kind: Service
metadata: {name: extra, namespace: ${APPS}}
spec: {type: LoadBalancer, selector: {app: extra}, ports: [{port: 80}]}
`);
  await setEndpoints('extra', [{ node: 'node1' }]);
  await setIngress('extra', ['10.97.9.1']);
  const owner = await waitFor('extra announced', async () => (await statuses('extra'))[0]?.status?.node);
  await env.kc(['delete', 'ipaddresspool', '-n', NS, 'extra']);
  const h = speakers.get(owner)!;
  await waitFor('config stale on the owner', async () => metric(await h.metrics(), 'metallb_k8s_client_config_stale_bool') === 1);
  assert.ok(h.lines().some((l) => typeof l.msg === 'string' && /new configuration rejected: service tsp-apps\/extra announces 10\.97\.9\.1/.test(l.msg)));
  assert.equal(metric(await h.metrics(), 'metallb_speaker_announced', { service: `${APPS}/extra` }), 1);
  type CS = { metadata: { labels?: Record<string, string> }; status?: { result?: string; errorSummary?: string; conditions?: { type: string; status: string; reason: string }[] } };
  const cs = await waitFor('ConfigurationState Invalid', async () => {
    const o = await env.api.get<CS>(`/apis/metallb.io/v1beta1/namespaces/${NS}/configurationstates/speaker-${owner}`).catch(() => undefined);
    return o?.status?.result === 'Invalid' ? o : undefined;
  });
  assert.deepEqual(cs.metadata.labels, { 'metallb.io/component-type': 'speaker', 'metallb.io/node-name': owner });
  assert.equal(cs.status?.conditions?.[0]?.type, 'configReconcilerValid');
  assert.equal(cs.status?.conditions?.[0]?.reason, 'ConfigurationError');
  assert.match(cs.status?.errorSummary ?? '', /tsp-apps\/extra announces 10\.97\.9\.1/);
  // The controller would move the Service; here we drop its address: the config is then accepted.
  await setIngress('extra', []);
  await waitFor('config accepted', async () => metric(await h.metrics(), 'metallb_k8s_client_config_stale_bool') === 0, 40_000);
  await waitFor('ConfigurationState Valid', async () =>
    (await env.api.get<CS>(`/apis/metallb.io/v1beta1/namespaces/${NS}/configurationstates/speaker-${owner}`)).status?.result === 'Valid');
  await waitOwner('extra', undefined);
  await env.kc(['delete', 'service', '-n', APPS, 'extra']);
});

test('deleting the Service withdraws it everywhere', { skip }, async () => {
  await env.kc(['delete', 'service', '-n', APPS, 'web']);
  await waitOwner('web', undefined);
  await waitFor('metrics gone', async () => (await announcers('web')).length === 0);
  await arpOwner('10.97.0.1', undefined);
  const withdrawn = speakers.get('node3')!.lines().find((l) => l.msg === 'withdrawing service announcement' && l.reason === 'serviceDeleted');
  assert.ok(withdrawn);
});

test('health and readiness; SIGTERM exits within the 2 s grace period', { skip }, async () => {
  const h = speakers.get('node2')!;
  assert.equal(await h.health('/healthz'), 200);
  assert.equal(await h.health('/readyz'), 200);
  const t0 = Date.now();
  const code = await h.stop();
  assert.equal(code, 0);
  // The speaker exits by itself within its 1.8 s deadline; the margin is for a loaded test machine.
  const took = Date.now() - t0;
  assert.ok(took < 4000, `exit took ${took} ms`);
  speakers.delete('node2');
});
