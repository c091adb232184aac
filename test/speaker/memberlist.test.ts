// Integration (root): three speakers in node network namespaces (tsp-), memberlist on (peers found from the speaker
// pods' IPs, MetalLB's key from a secret file), against a dev API server on the LAN. Killing the owner (SIGKILL, no
// goodbye) moves the address to the next node in hash order; a graceful stop (SIGTERM: memberlist leave) too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NS, poolYaml, startEnv, waitFor, type Env } from '../controller/helpers.js';
import { isRoot, Netns, run } from '../helpers/netns.js';
import { metric, startSpeaker, type SpeakerHandle } from './process.js';

const APPS = 'tsp-ml';
const skip = isRoot() ? false : 'needs root (network namespaces)';
const net = new Netns('tsp-');
let env: Env | undefined;
let keyDir = '';
let bridge = '';
const speakers = new Map<string, SpeakerHandle>();
const HOST = '10.97.100.1';
const nodeIP = (i: number): string => `10.97.100.${10 + i}`;

interface L2StatusObj {
  metadata: { labels?: Record<string, string> };
  status?: { node?: string };
}

async function owners(svc: string): Promise<string[]> {
  const list = await env!.api.get<{ items: L2StatusObj[] }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/servicel2statuses`);
  return list.items.filter((o) => o.metadata.labels?.['metallb.io/service-name'] === svc).map((o) => o.status?.node ?? '').sort();
}

async function announcing(svc: string): Promise<string[]> {
  const out: string[] = [];
  for (const [node, h] of speakers) {
    if (h.child.exitCode !== null || h.child.signalCode !== null) continue;
    const text = await fetch(`http://${h.ports.metrics === undefined ? '' : nodeIP(Number(node.slice(4)))}:${h.ports.metrics}/metrics`).then((r) => r.text());
    if (metric(text, 'metallb_speaker_announced', { service: `${APPS}/${svc}`, protocol: 'layer2' }) === 1) out.push(node);
  }
  return out.sort();
}

before(async () => {
  if (skip) return;
  // A bridge in the root namespace (the LAN, the API server on it), one namespace per node.
  const br = net.name('br');
  run('ip', ['link', 'del', br], { allowFail: true });
  bridge = br;
  net.ip(undefined, 'link', 'add', br, 'type', 'bridge');
  net.ip(undefined, 'addr', 'add', `${HOST}/24`, 'dev', br);
  net.ip(undefined, 'link', 'set', br, 'up');
  for (let i = 1; i <= 3; i++) {
    const ns = net.addNamespace(`n${i}`);
    const hostEnd = net.name(`v${i}`);
    net.veth({ name: hostEnd }, { ns, name: 'eth0' });
    net.ip(undefined, 'link', 'set', hostEnd, 'master', br, 'up');
    net.ip(ns, 'addr', 'add', `${nodeIP(i)}/24`, 'dev', 'eth0');
    net.ip(ns, 'link', 'set', 'eth0', 'up');
  }
  env = await startEnv({ extraArgs: ['--host', HOST] });
  keyDir = mkdtempSync(join(tmpdir(), 'tsp-mlkey-'));
  writeFileSync(join(keyDir, 'secretkey'), 'c2VjcmV0a2V5Zm9ydHNwdGVzdHM');
  await env.kc(['create', 'namespace', APPS]);
  const nodes = [1, 2, 3].map((i) => `apiVersion: v1\nkind: Node\nmetadata: {name: node${i}}\n`);
  const pods = [1, 2, 3].map((i) => `apiVersion: v1
kind: Pod
metadata: {name: speaker-${i}, namespace: ${NS}, labels: {app: tsp-speaker}}
spec: {nodeName: node${i}, hostNetwork: true, containers: [{name: speaker, image: quay.io/metallb/speaker:v0.14.9}]}
`);
  await env.apply([...nodes, ...pods, poolYaml('lan', ['10.97.0.0/24']), `apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: lan, namespace: ${NS}}\n`].join('---\n'));
  for (let i = 1; i <= 3; i++) {
    await env.api.mergePatch(`/api/v1/namespaces/${NS}/pods/speaker-${i}/status`, { status: { phase: 'Running', podIP: nodeIP(i), podIPs: [{ ip: nodeIP(i) }] } });
  }
  await env.apply(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${APPS}}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: ${APPS}, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.244.1.2], nodeName: node1, conditions: {ready: true}}]
`);
  await env.api.mergePatch(`/api/v1/namespaces/${APPS}/services/web/status`, { status: { loadBalancer: { ingress: [{ ip: '10.97.0.1' }] } } });
  const started = await Promise.all([1, 2, 3].map((i) =>
    startSpeaker(env!.kubeconfig, `node${i}`, {
      prefix: ['ip', 'netns', 'exec', net.name(`n${i}`)],
      args: ['--metrics-host', nodeIP(i), '--pod-name', `speaker-${i}`],
      env: {
        METALLB_ML_BIND_ADDR: nodeIP(i),
        METALLB_ML_LABELS: 'app=tsp-speaker',
        METALLB_ML_SECRET_KEY_PATH: keyDir,
      },
    })));
  for (const h of started) speakers.set(h.node, h);
});

after(async () => {
  await Promise.all([...speakers.values()].map((h) => h.kill('SIGKILL')));
  await env?.close();
  await net.cleanup();
  if (bridge) run('ip', ['link', 'del', bridge], { allowFail: true });
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

test('memberlist: all speakers see each other; the first in hash order announces', { skip }, async () => {
  for (const h of speakers.values()) {
    await waitFor(`${h.node} sees 3 members`, async () => {
      const text = await fetch(`http://${nodeIP(Number(h.node.slice(4)))}:${h.ports.metrics}/metrics`).then((r) => r.text());
      return metric(text, 'metallb_speaker_memberlist_members') === 3;
    }, 30_000);
  }
  // sha256(node#10.97.0.1): node3, node1, node2.
  await waitFor('node3 announces', async () => JSON.stringify(await owners('web')) === '["node3"]' && JSON.stringify(await announcing('web')) === '["node3"]', 30_000);
});

test('memberlist: the owner dies without a goodbye: the next node in hash order takes over', { skip }, async () => {
  const t0 = Date.now();
  await speakers.get('node3')!.kill('SIGKILL');
  await waitFor('node1 announces', async () => JSON.stringify(await announcing('web')) === '["node1"]', 30_000, 20);
  const took = Date.now() - t0;
  await waitFor('status moved to node1', async () => JSON.stringify(await owners('web')) === '["node1"]', 30_000);
  assert.ok(took < 30_000);
  const h1 = speakers.get('node1')!;
  assert.ok(h1.lines().some((l) => typeof l.msg === 'string' && l.msg.startsWith('memberlist: node3 left')), 'node1 logged the failure');
  speakers.delete('node3');
});

test('memberlist: a graceful stop (SIGTERM, leave) hands over to the next node', { skip }, async () => {
  const t0 = Date.now();
  const code = await speakers.get('node1')!.stop();
  assert.equal(code, 0);
  // The speaker exits by itself within its 1.8 s deadline; the margin is for a loaded test machine.
  const took = Date.now() - t0;
  assert.ok(took < 4000, `exit took ${took} ms`);
  speakers.delete('node1');
  await waitFor('node2 announces', async () => JSON.stringify(await announcing('web')) === '["node2"]', 20_000, 20);
  await waitFor('status on node2 only', async () => JSON.stringify(await owners('web')) === '["node2"]', 20_000);
});
