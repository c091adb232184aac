// The tutorials' other install path: MetalLB's released metallb-native.yaml, unchanged, on a lab started with
// --no-loadbalancer. Its images (quay.io/metallb/controller and speaker) run our controller and speaker with MetalLB's
// own arguments, service accounts and RBAC; its controller assigns addresses from a pool.
// Then the same lab (one lab up less for CI), with MetalLB's pods and a Deployment in it, crashes: `lab down` after
// `kill -9` of every lab process (supervisor, control plane, kubelets, proxies, pods) leaves nothing: no namespace,
// link, nft table, process, cgroup dir, mount or file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isReady, labSkip, runCmd, startLab, type Lab } from '../helpers/lab.js';
import { labIdentity, labPids, leftovers } from '../../src/lab/cleanup.js';
import { makePlan } from '../../src/lab/plan.js';

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

  test('lab down after kill -9 of every lab process leaves nothing behind', async () => {
    const plan = makePlan({ name: lab.name });
    await lab.kubectlOk(['create', 'deployment', 'victims', '--image=nginx', '--replicas=2']);
    await lab.waitFor('2 pods Ready', async () => (await lab.pods('default', 'app=victims')).filter(isReady).length === 2);
    // The pods' namespaces are real namespaces on the host (`ip netns` works on them), not files of another mount
    // namespace: that is how the host, `lab down` and tests reach pods.
    const podNs = readdirSync('/run/netns').filter((n) => n.startsWith(plan.podNetnsPrefix));
    assert.ok(podNs.length >= 2, `pod namespaces: ${podNs.join(', ')}`);
    for (const ns of podNs) {
      const r = await runCmd('ip', ['netns', 'exec', ns, 'true']);
      assert.equal(r.code, 0, `ip netns exec ${ns}: ${r.stderr}`);
    }
    const id = labIdentity(lab.name);
    const before = await labPids(id);
    // The supervisor, API server, controller-manager, scheduler, 2 kubelets, 2 proxies, MetalLB's controller and two
    // speakers (hostNetwork, each with a sysfs mount of its own) and the two nginx pods.
    assert.ok(before.length >= 10, `lab processes: ${before.length}`);
    const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(lab.stateDir)).length;

    for (let round = 0; round < 20; round++) {
      const pids = await labPids(id);
      if (pids.length === 0) break;
      await runCmd('kill', ['-9', ...pids.map(String)]);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(await labPids(id), [], 'every lab process is dead');
    // What a crash leaves: namespaces, links, cgroup dirs, the state dir.
    assert.ok(readdirSync('/run/netns').some((n) => n.startsWith(plan.prefix)));
    assert.ok(existsSync(lab.stateDir));

    const down = await lab.lab(['down'], { timeoutMs: 120_000 });
    assert.equal(down.code, 0, down.stderr);
    await lab.down(); // releases the test lock; a second down finds nothing

    assert.deepEqual(await leftovers(id), []);
    assert.deepEqual(readdirSync('/run/netns').filter((n) => n.startsWith(plan.prefix)), [], 'namespaces');
    const links = (await runCmd('ip', ['-o', 'link', 'show'])).stdout;
    assert.ok(!links.includes(` ${plan.prefix}`), `links: ${links}`);
    const tables = (await runCmd('nft', ['list', 'tables'])).stdout;
    assert.ok(!tables.includes(plan.prefix) && !tables.includes(plan.cgroup), `nft tables: ${tables}`);
    for (const h of readdirSync('/sys/fs/cgroup')) assert.ok(!existsSync(`/sys/fs/cgroup/${h}/${plan.cgroup}`), `cgroup ${h}/${plan.cgroup}`);
    assert.ok(!existsSync(`/sys/fs/cgroup/${plan.cgroup}`));
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(lab.stateDir), `mounts (there were ${mountsBefore})`);
    assert.ok(!existsSync(lab.stateDir), 'state dir');
    const routes = (await runCmd('ip', ['route', 'show'])).stdout + (await runCmd('ip', ['-6', 'route', 'show'])).stdout;
    assert.ok(!routes.includes(plan.nodes[0]!.podCIDRs[0]) && !routes.includes(plan.bridge), `routes: ${routes}`);
  });
});
