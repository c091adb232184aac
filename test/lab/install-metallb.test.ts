// The tutorials' other install path: MetalLB's released metallb-native.yaml, unchanged, on a lab started with
// --no-loadbalancer. Its images (quay.io/metallb/controller and speaker) run our controller and speaker with MetalLB's
// own arguments, service accounts and RBAC; its controller assigns addresses from a pool.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isReady, labSkip, startLab, type Lab } from '../helpers/lab.js';

const NATIVE = '/work/shared/fixtures/metallb-manifests/metallb-native-v0.14.9.yaml';

describe("MetalLB's metallb-native.yaml in the lab", { skip: labSkip }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab(undefined, { nodes: 2, loadBalancer: false });
  });
  after(async () => {
    await lab?.down();
  });

  test('kubectl apply of metallb-native v0.14.9: the controller runs and assigns addresses', async () => {
    await lab.kubectlOk(['apply', '-f', NATIVE], { timeoutMs: 120_000 });
    await lab.kubectlOk(['rollout', 'status', '-n', 'metallb-system', 'deployment/controller', '--timeout=180s'], { timeoutMs: 200_000 });
    await lab.waitFor('the controller pod Ready', async () => {
      const pods = await lab.pods('metallb-system', 'component=controller');
      return pods.some(isReady) || pods.map((p) => JSON.stringify(p.status?.containerStatuses ?? p.status?.phase)).join(' ');
    });
    // One speaker pod per node (whether it runs depends on `metallb speaker`, issue 7).
    await lab.waitFor('a speaker pod on each node', async () => {
      const sp = (await lab.pods('metallb-system', 'component=speaker')).map((p) => p.spec?.nodeName).sort();
      return sp.join(',') === 'node1,node2' || sp.join(',');
    });
    const wide = await lab.kubectlOk(['get', 'pods', '-n', 'metallb-system', '-o', 'wide']);
    assert.match(wide, /controller-\S+\s+1\/1\s+Running/);
    await lab.waitFor('the pool is accepted by the webhook', async () => {
      const r = await lab.kubectl(['apply', '-f', '-'], {
        input: `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec: {addresses: ["${lab.status.serviceRange.ipv4}"]}
`,
      });
      return r.code === 0 || r.stderr.trim();
    });
    await lab.kubectlOk(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    await lab.waitFor('web has an address', async () => {
      const ip = (await lab.kubectlOk(['get', 'svc', 'web', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim();
      return ip.startsWith(lab.status.serviceRange.ipv4.split('.').slice(0, 3).join('.')) || ip || 'pending';
    });
  });
});
