// Every install path of MetalLB's tutorials, with MetalLB's published manifests used unchanged (../shared/fixtures),
// in one lab started with --no-loadbalancer, one after the other (install, use, uninstall): their images run our
// controller and speaker with MetalLB's arguments, ServiceAccounts and roles.
//   v0.9.3   namespace.yaml + metallb.yaml (PodSecurityPolicies refused as on a modern cluster), the memberlist
//            Secret, ConfigMap `config`; an invalid edit keeps the address and raises an Event.
//   v0.12.1  the same without the Secret (its controller makes it), with the release's example ConfigMap unchanged,
//            then edited to the lab's range; then the migration to CRDs (`metallb config convert`, metallb-native
//            v0.14.9 applied over it, the ConfigMap deleted) without any address change.
// metallb-native v0.14.9 on a cluster without MetalLB is test/speaker/lab-metallb-native.test.ts.
// Each path: a 3-replica echo-hname Deployment exposed as type LoadBalancer, its EXTERNAL-IP curled from the client
// machine until different pods answer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, isReady, labSkip, ROOT, runCmd, startLab, type Lab } from '../helpers/lab.js';

const NS = 'metallb-system';
const APP = 'lb-hname-pods';

function fixture(file: string): string {
  for (const base of [join(ROOT, '..', 'shared'), '/work/shared']) {
    const p = join(base, 'fixtures', 'metallb-manifests', file);
    if (existsSync(p)) return p;
  }
  throw new Error(`MetalLB manifest fixture ${file} not found in ../shared`);
}

const legacyConfig = (range: string): string => `apiVersion: v1
kind: ConfigMap
metadata:
  namespace: metallb-system
  name: config
data:
  config: |
    address-pools:
    - name: default
      protocol: layer2
      addresses:
      - ${range}
`;

interface Svc {
  metadata: { annotations?: Record<string, string> };
  status?: { loadBalancer?: { ingress?: Array<{ ip: string }> } };
}

describe("MetalLB's install paths in the lab", { skip: labSkip }, () => {
  let lab: Lab;
  let range = '';
  let pods = new Set<string>();
  const tmp = mkdtempSync(join(tmpdir(), 'install-test-'));

  before(async () => {
    lab = await startLab(undefined, { nodes: 2, loadBalancer: false });
    range = lab.status.serviceRange.ipv4;
    await lab.kubectlOk(['create', 'deployment', APP, '--image=sysnet4admin/echo-hname', '--replicas=3']);
    await lab.waitFor('3 echo-hname pods Ready', async () => {
      const p = await lab.pods('default', `app=${APP}`);
      return p.filter(isReady).length === 3 || `${p.filter(isReady).length}/3 ready`;
    }, 180_000);
    pods = new Set((await lab.pods('default', `app=${APP}`)).map((p) => p.metadata.name));
  });
  after(async () => {
    rmSync(tmp, { recursive: true, force: true });
    await lab?.down();
  });

  const ipOf = async (svc: string): Promise<string> =>
    (await lab.getJson<Svc>(['get', 'svc', svc])).status?.loadBalancer?.ingress?.[0]?.ip ?? '';

  /** Exposes the Deployment as `svc` and waits for an address (in `prefix`). */
  async function expose(svc: string, prefix: string): Promise<string> {
    await lab.kubectlOk(['expose', 'deployment', APP, '--type=LoadBalancer', `--name=${svc}`, '--port=80']);
    let ip = '';
    await lab.waitFor(`${svc} gets an EXTERNAL-IP`, async () => {
      ip = await ipOf(svc);
      return ip.startsWith(prefix) || ip || 'pending';
    }, 180_000);
    return ip;
  }

  /** curl http://ip/ from the client until two different pods of the Deployment have answered. */
  async function answeredByPods(ip: string): Promise<void> {
    const seen = new Set<string>();
    await lab.waitFor(`http://${ip}/ answered by 2 pods`, async () => {
      const body = (await lab.curl('client', `http://${ip}/`)).trim();
      assert.ok(pods.has(body), `answer "${body.slice(0, 100)}" is not one of ${[...pods].join(', ')}`);
      seen.add(body);
      return seen.size >= 2 || `answered by ${[...seen].join(', ')}`;
    }, 180_000, 200);
  }

  async function rollout(): Promise<void> {
    for (const w of ['deployment/controller', 'daemonset/speaker']) {
      await lab.kubectlOk(['rollout', 'status', '-n', NS, w, '--timeout=240s'], { timeoutMs: 260_000 });
    }
  }

  /** Applies a legacy manifest: everything but the PodSecurityPolicies, refused as kube-apiserver >= 1.25 does. */
  async function applyLegacy(file: string): Promise<void> {
    const r = await lab.kubectl(['apply', '-f', fixture(file)], { timeoutMs: 120_000 });
    assert.equal(r.code, 1, `kubectl apply of ${file}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /no matches for kind "PodSecurityPolicy" in version "policy\/v1beta1"/);
    assert.doesNotMatch(r.stderr.replace(/.*PodSecurityPolicy.*\n(ensure CRDs are installed first\n)?/g, ''), /\S/, r.stderr);
    for (const made of ['daemonset.apps/speaker', 'deployment.apps/controller', 'clusterrole.rbac.authorization.k8s.io/metallb-system:controller']) {
      assert.ok(r.stdout.includes(made), `${made} in:\n${r.stdout}`);
    }
  }

  /** The v0.9 tutorial's memberlist Secret. */
  async function memberlistSecret(): Promise<void> {
    const key = (await runCmd('openssl', ['rand', '-base64', '128'])).stdout.trim();
    await lab.kubectlOk(['create', 'secret', 'generic', '-n', NS, 'memberlist', `--from-literal=secretkey=${key}`]);
  }

  async function uninstall(files: string[]): Promise<void> {
    for (const f of files) await lab.kubectl(['delete', '-f', fixture(f), '--ignore-not-found', '--wait=true'], { timeoutMs: 180_000 });
    await lab.waitFor(`namespace ${NS} gone`, async () => (await lab.kubectl(['get', 'namespace', NS])).code !== 0 || 'still there', 180_000);
  }

  test('v0.9.3: namespace.yaml, metallb.yaml, memberlist Secret, ConfigMap config; an invalid edit keeps the address', async () => {
    await lab.kubectlOk(['apply', '-f', fixture('namespace-v0.9.3.yaml')]);
    await applyLegacy('metallb-v0.9.3.yaml');
    await memberlistSecret();
    await lab.kubectlOk(['apply', '-f', '-'], { input: legacyConfig(range) });
    await rollout();
    const prefix = range.split('-')[0]!.split('.').slice(0, 3).join('.') + '.';
    const ip = await expose('lb-v093', prefix);
    await answeredByPods(ip);
    // What the user wrote is what the cluster shows.
    const shown = await lab.kubectlOk(['get', 'configmap', 'config', '-n', NS, '-o', 'jsonpath={.data.config}']);
    assert.equal(shown, legacyConfig(range).split('config: |\n')[1]!.replace(/^ {4}/gm, ''));
    // An invalid edit: the last good configuration stays, with an Event on the ConfigMap naming the mistake.
    await lab.kubectlOk(['apply', '-f', '-'], { input: legacyConfig(`${prefix}300-${prefix}310`) });
    await lab.waitFor('an InvalidConfiguration event on the ConfigMap', async () => {
      const msgs = await lab.kubectlOk(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.kind=ConfigMap,reason=InvalidConfiguration', '-o', 'jsonpath={.items[*].message}']);
      return msgs.includes(`invalid IP range "${prefix}300-${prefix}310"`) || msgs || 'no event yet';
    });
    assert.equal(await ipOf('lb-v093'), ip);
    await answeredByPods(ip);
    await lab.kubectlOk(['delete', 'svc', 'lb-v093']);
    await uninstall(['metallb-v0.9.3.yaml', 'namespace-v0.9.3.yaml']);
  });

  test('v0.12.1: the example ConfigMap, then edited; migration to CRDs with metallb config convert changes no address', async () => {
    await lab.kubectlOk(['apply', '-f', fixture('namespace-v0.12.1.yaml')]);
    await applyLegacy('metallb-v0.12.1.yaml');
    // No `kubectl create secret` here: v0.12.1's controller makes the memberlist Secret its speakers wait for.
    await lab.kubectlOk(['apply', '-f', fixture('example-layer2-config-v0.12.1.yaml')]);
    await rollout();
    // The release's example pool (192.168.1.240/28) unchanged: an address from it.
    const example = await expose('lb-v0121', '192.168.1.');
    assert.match(example, /^192\.168\.1\.(24\d|25[0-5])$/);
    // Edited to the lab's range: the Service moves there and the address is announced.
    await lab.kubectlOk(['apply', '-f', '-'], { input: legacyConfig(range) });
    const prefix = range.split('-')[0]!.split('.').slice(0, 3).join('.') + '.';
    let ip = '';
    await lab.waitFor('an address from the edited pool', async () => {
      ip = await ipOf('lb-v0121');
      return ip.startsWith(prefix) || ip;
    });
    await answeredByPods(ip);

    // Migration: the ConfigMap converted, MetalLB v0.14.9 applied over v0.12.1, the CRs applied, the ConfigMap deleted.
    // The address is sampled all along: it never changes and is never withdrawn.
    const seen = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        seen.add(await ipOf('lb-v0121').catch(() => ip));
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      const cm = await lab.kubectlOk(['get', 'configmap', 'config', '-n', NS, '-o', 'yaml']);
      const conv = await runCmd(process.execPath, [BIN, 'config', 'convert', '-f', '-'], { input: cm });
      assert.equal(conv.code, 0, conv.stderr);
      assert.match(conv.stdout, /kind: IPAddressPool[\s\S]*name: default[\s\S]*kind: L2Advertisement/);
      const crs = join(tmp, 'resources.yaml');
      writeFileSync(crs, conv.stdout);
      await lab.kubectlOk(['apply', '-f', fixture('metallb-native-v0.14.9.yaml')], { timeoutMs: 120_000 });
      await rollout();
      // The webhook answers once the new controller serves it.
      await lab.waitFor('the converted CRs are accepted', async () => {
        const r = await lab.kubectl(['apply', '-f', crs]);
        return r.code === 0 || r.stderr.trim();
      });
      await lab.kubectlOk(['delete', 'configmap', 'config', '-n', NS]);
      // Long enough for the controller and the speakers to have seen every step.
      await new Promise((r) => setTimeout(r, 5000));
      const pools = await lab.kubectlOk(['get', 'ipaddresspools', '-n', NS, '-o', 'jsonpath={.items[*].spec.addresses}']);
      assert.ok(pools.includes(range), pools);
    } finally {
      sampling = false;
      await sampler;
    }
    assert.deepEqual([...seen], [ip], 'the address never changed during the migration');
    assert.equal(await ipOf('lb-v0121'), ip);
    await answeredByPods(ip);
    await lab.kubectlOk(['delete', 'svc', 'lb-v0121']);
    await uninstall(['metallb-native-v0.14.9.yaml', 'metallb-v0.12.1.yaml', 'namespace-v0.12.1.yaml']);
  });
});
