// `metallb speaker` (root) against BIRD 2 over an IPv6 session with TCP-MD5, configured by MetalLB's objects only: a
// BGPPeer whose password comes from a Secret (`passwordSecret`, type kubernetes.io/basic-auth) and with
// `enableGracefulRestart`. Checked: the session establishes with the Secret's password (BIRD refuses unsigned or
// wrongly signed segments); the speaker is killed (SIGKILL) and BIRD keeps its routes; a Service deleted meanwhile is
// removed only at the new process's End-of-RIB, which waits until the new process has decided every Service, so the
// route of the Service that stays is never missing at the router.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NS, poolYaml, waitFor, type Env, startEnv } from '../../controller/helpers.js';
import { isRoot } from '../../helpers/netns.js';
import { startSpeaker, type SpeakerHandle } from '../process.js';
import { TestLan, type LanMachine } from '../lan.js';
import { startRouter, type Router } from '../../../src/lab/routers/runner.js';

const APPS = 'tbg-gr';
const PASSWORD = 'from-a-Secret 42';
const skip = isRoot() ? false : 'needs root (network namespaces)';
const lan = new TestLan(120, { prefix: 'tbg-', block: 91 });
let n1: LanMachine;
let routerMachine: LanMachine;
let router: Router | undefined;
let env: Env;
let speaker: SpeakerHandle | undefined;
const dir = mkdtempSync(join(tmpdir(), 'tbg-grsecret-'));

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function service(name: string, ip: string): Promise<void> {
  await env.apply(`apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${APPS}}
spec: {type: LoadBalancer, selector: {app: ${name}}, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-abc, namespace: ${APPS}, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv6
endpoints: [{addresses: ['fd00:10:244:1::9'], nodeName: node1, conditions: {ready: true}}]
`);
  await env.api.mergePatch(`/api/v1/namespaces/${APPS}/services/${name}/status`, { status: { loadBalancer: { ingress: [{ ip }] } } });
}

/** The prefixes BIRD holds from node1 (over the IPv6 session). */
async function held(): Promise<string[]> {
  const all = [...await router!.routes('ipv4'), ...await router!.routes('ipv6')];
  return all.filter((r) => r.from === n1.ip6).map((r) => r.prefix).sort();
}

before(async () => {
  if (skip) return;
  lan.up();
  n1 = lan.node(1);
  routerMachine = lan.other('r', 254);
  router = await startRouter('bird', {
    asn: 64501, routerId: routerMachine.ip,
    neighbors: [{ name: 'n1v6', address: n1.ip6, asn: 64500, password: PASSWORD }],
  }, { netns: routerMachine.ns, dir: join(dir, 'bird') });
  env = await startEnv({ extraArgs: ['--host', lan.hostIP] });
  await env.apply(`apiVersion: v1
kind: Node
metadata:
  name: node1
  labels: {kubernetes.io/hostname: node1}
`);
  await env.kc(['create', 'namespace', APPS]);
  await env.apply([
    poolYaml('gr', ['fd00:96:120::/124']),
    `apiVersion: v1
kind: Secret
metadata: {name: bgp-password, namespace: ${NS}}
type: kubernetes.io/basic-auth
data: {password: ${b64(PASSWORD)}}
`,
    `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router-md5-v6, namespace: ${NS}}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: "${routerMachine.ip6}"
  passwordSecret: {name: bgp-password, namespace: ${NS}}
  enableGracefulRestart: true
`,
    `apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: gr, namespace: ${NS}}
spec: {ipAddressPools: [gr]}
`,
  ].join('---\n'));
  speaker = await startSpeaker(env.kubeconfig, 'node1', { netns: n1 });
});

after(async () => {
  await speaker?.stop();
  await router?.stop();
  await env?.close();
  await lan.down();
  rmSync(dir, { recursive: true, force: true });
});

test('passwordSecret: the IPv6 session establishes with TCP-MD5 keyed by the Secret; routes arrive', { skip }, async () => {
  await waitFor('BIRD session with node1 over IPv6', async () => (await router!.neighborState(n1.ip6)) === 'Established', 60_000, 200);
  await service('web', 'fd00:96:120::5');
  await service('old', 'fd00:96:120::6');
  assert.deepEqual(await waitFor('routes at BIRD', async () => {
    const h = await held();
    return h.length === 2 ? h : undefined;
  }, 60_000, 200), ['fd00:96:120::5/128', 'fd00:96:120::6/128']);
  // BIRD has the key for this neighbor, so the kernel drops every segment without the right MD5 option: an
  // established session is one keyed with the Secret's password.
});

test('enableGracefulRestart: routes stay while the speaker is killed and restarted; a Service gone meanwhile goes at End-of-RIB', { skip }, async () => {
  await speaker!.kill('SIGKILL');
  await waitFor('BIRD in graceful restart for node1', async () => (await router!.gracefulRestart(n1.ip6)).active, 30_000, 200);
  await env.kc(['delete', 'service', '-n', APPS, 'old']);
  // Watch the route that stays: it must never be missing, through the restart and the new End-of-RIB.
  let missing = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      if (!(await held().catch(() => ['fd00:96:120::5/128'])).includes('fd00:96:120::5/128')) missing++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    assert.deepEqual(await held(), ['fd00:96:120::5/128', 'fd00:96:120::6/128'], 'both kept while the speaker is away');
    speaker = await startSpeaker(env.kubeconfig, 'node1', { netns: n1 });
    const gr = await waitFor('the new session with the R bit', async () => {
      const g = await router!.gracefulRestart(n1.ip6);
      return (await router!.neighborState(n1.ip6)) === 'Established' && g.peerRestarted ? g : undefined;
    }, 60_000, 200);
    assert.deepEqual(gr.peerForwarding, ['ipv6'], 'F bit for the family of the session (an IPv6 BGPPeer carries IPv6 only, as in MetalLB)');
    await waitFor('End-of-RIB: the deleted Service withdrawn, graceful restart over', async () => {
      const h = await held();
      return h.length === 1 && h[0] === 'fd00:96:120::5/128' && !(await router!.gracefulRestart(n1.ip6)).active;
    }, 60_000, 200);
  } finally {
    watching = false;
    await watcher;
  }
  assert.equal(missing, 0, 'the route of the Service that stayed was never missing at the router');
  const lines = speaker!.lines();
  const complete = lines.findIndex((l) => l.event === 'ribComplete');
  const eor = lines.findIndex((l) => l.event === 'endOfRibSent');
  assert.ok(complete >= 0 && eor > complete, 'End-of-RIB went after every Service was decided');
  assert.equal(lines[eor]!.announced, 1, "with the remaining Service's route already sent");
});
