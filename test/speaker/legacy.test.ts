// Integration (root): the speaker as MetalLB v0.9–v0.12 manifests run it: no metallb.io CRDs, the legacy ConfigMap
// `config` (--config=config), Endpoints instead of EndpointSlices, METALLB_* environment, flags of other releases.
// Speakers in node namespaces on a LAN; the client's arping gets the elected node's MAC.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NS, startEnv, waitFor, type Env } from '../controller/helpers.js';
import { isRoot } from '../helpers/netns.js';
import { metric, startSpeaker, type SpeakerHandle } from './process.js';
import { TestLan, type LanMachine } from './lan.js';

const APPS = 'tsp-legacy';
const skip = isRoot() ? false : 'needs root (network namespaces, raw sockets)';
const lan = new TestLan(102);
const machines = new Map<string, LanMachine>();
let client: LanMachine;
let env: Env;
const speakers: SpeakerHandle[] = [];

before(async () => {
  if (skip) return;
  lan.up();
  machines.set('node1', lan.node(1));
  machines.set('node2', lan.node(2));
  client = lan.client();
  env = await startEnv({ crds: false, extraArgs: ['--host', lan.hostIP] });
  await env.apply(['node1', 'node2'].map((n) => `apiVersion: v1\nkind: Node\nmetadata: {name: ${n}}\n`).join('---\n'));
  await env.kc(['create', 'namespace', APPS]);
  await env.apply(`apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: ${NS}}
data:
  config: |
    address-pools:
    - name: default
      protocol: layer2
      addresses: [10.97.2.0/24]
`);
  for (const node of ['node1', 'node2']) {
    speakers.push(await startSpeaker(env.kubeconfig, node, {
      netns: machines.get(node)!,
      // v0.12.1's DaemonSet: --port, --config, --log-level; everything else from the environment.
      args: ['--config=config', '--disable-epslices', '--some-flag-from-v0.17=1', '--ignore-exclude-lb=false'],
      env: {
        METALLB_HOST: '10.97.255.1',
        METALLB_ML_LABELS: 'app=metallb,component=speaker',
        METALLB_ML_NAMESPACE: NS,
        METALLB_ML_SECRET_KEY: 'c2VjcmV0LWtleS1mb3ItdGVzdHM=',
      },
    }));
  }
});

after(async () => {
  await Promise.all(speakers.map((h) => h.stop()));
  await env?.close();
  await lan.down();
});

test('legacy ConfigMap + Endpoints: the elected node announces, without ServiceL2Status', { skip }, async () => {
  await env.apply(`apiVersion: v1
kind: Service
metadata: {name: old, namespace: ${APPS}}
spec: {type: LoadBalancer, selector: {app: old}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: old, namespace: ${APPS}}
subsets:
- addresses: [{ip: 10.244.1.5, nodeName: node2}]
  ports: [{port: 80}]
`);
  await env.api.mergePatch(`/api/v1/namespaces/${APPS}/services/old/status`, { status: { loadBalancer: { ingress: [{ ip: '10.97.2.7' }] } } });
  // sha256(node#10.97.2.7) orders node2 before node1.
  const owners = await waitFor('one announcer', async () => {
    const on: string[] = [];
    for (const h of speakers) if (metric(await h.metrics(), 'metallb_speaker_announced', { service: `${APPS}/old`, ip: '10.97.2.7' }) === 1) on.push(h.node);
    return on.length === 1 ? on : undefined;
  });
  assert.deepEqual(owners, ['node2']);
  assert.equal(await waitFor('ARP answered by node2', () => lan.arping(client, '10.97.2.7') === machines.get('node2')!.mac || undefined, 20_000, 200), true);
  for (const h of speakers) {
    const lines = h.lines();
    assert.ok(lines.some((l) => l.msg === 'ignoring unknown arguments (flags of a newer MetalLB?): --some-flag-from-v0.17=1'), h.logs());
    assert.ok(lines.some((l) => typeof l.msg === 'string' && l.msg.includes('servicel2statuses.metallb.io: layer 2 status objects are not written')));
  }
  // Endpoints say not ready: nobody.
  await env.apply(`apiVersion: v1
kind: Endpoints
metadata: {name: old, namespace: ${APPS}}
subsets:
- notReadyAddresses: [{ip: 10.244.1.5, nodeName: node2}]
  ports: [{port: 80}]
`);
  await waitFor('withdrawn', async () => {
    for (const h of speakers) if (metric(await h.metrics(), 'metallb_speaker_announced', { service: `${APPS}/old` }) !== undefined) return false;
    return true;
  });
});
