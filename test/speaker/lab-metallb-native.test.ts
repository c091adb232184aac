// End to end in the lab (root): MetalLB's own install manifest (metallb-native.yaml of v0.14.9, unchanged, from
// ../shared) applied with kubectl to a lab started without a load-balancer. The lab runs `quay.io/metallb/*` images as
// our controller and speaker with the manifest's args, env, volumes and service accounts, so this is the path of a user
// who swaps MetalLB for metallb-ts: the controller assigns from the pool, the speakers gossip with the `memberlist`
// Secret the controller made, and the node MetalLB's election picks answers ARP for the address, alone, with its MAC.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isReady, labSkip, ROOT, startLab, type Lab } from '../helpers/lab.js';
import { electionOrder } from '../../src/speaker/l2/election.js';

const MANIFEST = [join(ROOT, '..', 'shared'), '/work/shared']
  .map((b) => join(b, 'fixtures', 'metallb-manifests', 'metallb-native-v0.14.9.yaml'))
  .find((p) => existsSync(p));
const skip = labSkip
  ?? (spawnSync('sh', ['-c', 'command -v arping']).status === 0 ? false : 'arping is not installed');

let lab: Lab;

type L2 = { status?: { node?: string; serviceName?: string } };

before(async () => {
  if (skip) return;
  assert.ok(MANIFEST, "MetalLB's manifests are in ../shared/fixtures/metallb-manifests");
  lab = await startLab(undefined, { nodes: 3, loadBalancer: false });
});

after(async () => {
  await lab?.down();
});

test("lab: MetalLB's metallb-native.yaml installed unchanged announces through our speaker", { skip }, async () => {
  await lab.kubectlOk(['apply', '-f', MANIFEST!], { timeoutMs: 120_000 });
  const nodes = lab.status.nodes.map((n) => n.name);
  await lab.waitFor('the controller and one speaker per node ready', async () => {
    const pods = await lab.pods('metallb-system');
    const ready = pods.filter(isReady).map((p) => `${String((p.metadata.labels as Record<string, string> | undefined)?.component)}`);
    return (ready.filter((c) => c === 'controller').length === 1 && ready.filter((c) => c === 'speaker').length === nodes.length) || ready.join(',');
  }, 240_000, 1000);
  const speakerPods = await lab.pods('metallb-system', 'component=speaker');
  for (const p of speakerPods) {
    const image = ((p.spec?.containers as { image: string }[] | undefined) ?? [])[0]?.image;
    assert.equal(image, 'quay.io/metallb/speaker:v0.14.9', 'the manifest runs unchanged');
  }
  // The controller made the memberlist Secret the speakers mount (MetalLB's controller does, since v0.13).
  await lab.waitFor('the memberlist Secret', async () => (await lab.kubectl(['get', 'secret', 'memberlist', '-n', 'metallb-system'])).code === 0, 60_000);

  // The pool and advertisement as MetalLB's layer 2 docs write them; retried until the controller's webhook answers.
  const range = lab.status.serviceRange.ipv4;
  await lab.waitFor('IPAddressPool and L2Advertisement accepted', async () => {
    const r = await lab.kubectl(['apply', '-f', '-'], {
      input: `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec:
  addresses: [${range}]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: example, namespace: metallb-system}
`,
    });
    return r.code === 0 || r.stderr.trim();
  }, 120_000, 2000);

  await lab.kubectlOk(['create', 'deployment', 'tsp-native', '--image=nginx', '--replicas=2']);
  await lab.kubectlOk(['expose', 'deployment', 'tsp-native', '--type=LoadBalancer', '--port=80']);
  let ip = '';
  await lab.waitFor('tsp-native gets an address', async () => {
    ip = ((await lab.getJson<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>(['get', 'service', 'tsp-native'])).status?.loadBalancer?.ingress ?? [])[0]?.ip ?? '';
    return ip !== '';
  });
  const expected = electionOrder(nodes, ip)[0]!;
  const mac = lab.status.nodes.find((n) => n.name === expected)!.mac;
  await lab.waitFor(`ServiceL2Status names ${expected}`, async () => {
    const items = (await lab.getJson<{ items: L2[] }>(['get', 'servicel2statuses', '-n', 'metallb-system'])).items.filter((o) => o.status?.serviceName === 'tsp-native');
    return (items.length === 1 && items[0]!.status?.node === expected) || JSON.stringify(items.map((o) => o.status));
  });
  await lab.waitFor(`ARP for ${ip} answered by ${expected} only`, async () => {
    const r = await lab.exec('client', ['arping', '-c', '3', '-w', '2', '-I', 'eth0', ip]);
    const macs = [...new Set([...r.stdout.matchAll(/bytes from ([0-9a-f:]{17}) \(/gi)].map((m) => m[1]!.toLowerCase()))];
    return (macs.length === 1 && macs[0] === mac) || macs.join(',');
  }, 60_000, 300);
  await lab.waitFor(`curl http://${ip}/ from the client`, async () => (await lab.curl('client', `http://${ip}/`, 2)).includes('nginx'), 60_000, 300);
  // The speakers found each other through the pods matching METALLB_ML_LABELS and gossip with the Secret's key.
  const logs = await lab.kubectlOk(['logs', '-n', 'metallb-system', String(speakerPods[0]!.metadata.name)]);
  const all = JSON.stringify([...nodes].sort());
  assert.ok(logs.includes(`"members":${all}`), `${speakerPods[0]!.metadata.name} saw all of ${all}:\n${logs.slice(-2000)}`);
  assert.ok(!logs.includes('will not be encrypted'), 'memberlist runs encrypted');
});
