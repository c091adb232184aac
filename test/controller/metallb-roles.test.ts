// Integration: the controller inside the permissions MetalLB's own release manifests grant (v0.9.3, v0.12.1: legacy
// ConfigMap, no CRDs, `--config=config --port=…`; v0.14.9: CRDs, nodes and BGPPeers listed but not watched, no
// ConfigMaps). The dev API server enforces RBAC (HTTPS); the controller authenticates with a token of MetalLB's
// `controller` ServiceAccount. It must assign addresses (status and pool annotation through `update services/status`,
// the only write those roles allow), report config errors as Events, turn off what it may not read with one warning
// each (no list/watch retry loop on a 403), make the memberlist Secret where allowed, and warn about a flag it does not
// know instead of failing.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { crdYaml, NS, ROOT, startController, waitFor, type ControllerHandle } from './helpers.js';
import { kubectlOk, startDevServer, type DevServerHandle } from '../helpers/devserver.js';
import { controllerNamespace, webhookModeFor } from '../../src/cli/controller.js';

const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);
const APPS = 'tctl-roles';

function fixturePath(file: string): string {
  for (const base of [join(ROOT, '..', 'shared'), '/work/shared']) {
    const p = join(base, 'fixtures', 'metallb-manifests', file);
    if (existsSync(p)) return p;
  }
  throw new Error(`MetalLB manifest fixture ${file} not found in ../shared`);
}

/** The ServiceAccounts, roles and bindings of a manifest, and the args and env of its controller container. */
function fromManifest(path: string): { rbac: string; args: string[]; env: Record<string, string> } {
  const docs = parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJSON() as Record<string, unknown> | null).filter((o): o is Record<string, unknown> => !!o);
  const rbac = docs.filter((o) => RBAC_KINDS.has(String(o.kind))).map((o) => stringify(o)).join('---\n');
  const dep = docs.find((o) => o.kind === 'Deployment') as { spec: { template: { spec: { containers: Array<{ args?: string[]; env?: Array<{ name: string; value?: string }> }> } } } };
  const c = dep.spec.template.spec.containers[0]!;
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return { rbac, args: c.args ?? [], env };
}

const legacyConfig = (range: string): string => `apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: ${NS}}
data:
  config: |
    address-pools:
    - name: default
      protocol: layer2
      addresses:
      - ${range}
`;
const crdConfig = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: default, namespace: ${NS}}
spec: {addresses: [10.97.5.0/28]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: default, namespace: ${NS}}
`;

interface Case {
  name: string;
  manifest: string;
  legacy: boolean;
}
const CASES: Case[] = [
  { name: 'MetalLB v0.9.3', manifest: 'metallb-v0.9.3.yaml', legacy: true },
  { name: 'MetalLB v0.12.1', manifest: 'metallb-v0.12.1.yaml', legacy: true },
  { name: 'MetalLB v0.14.9', manifest: 'metallb-native-v0.14.9.yaml', legacy: false },
];

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface Svc {
  metadata: { annotations?: Record<string, string> };
  status?: { loadBalancer?: { ingress?: Array<{ ip: string }> } };
}

async function setup(c: Case): Promise<{ srv: DevServerHandle; kc: (args: string[], input?: string) => Promise<string>; kubeconfig: string; args: string[]; env: Record<string, string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tctl-roles-'));
  const srv = await startDevServer({ logLevel: 'warn', tls: true });
  cleanups.push(async () => {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const kc = (args: string[], input?: string): Promise<string> => kubectlOk(args, srv.kubeconfig, input === undefined ? {} : { input });
  const m = fromManifest(fixturePath(c.manifest));
  await kc(['create', 'namespace', NS]);
  await kc(['create', 'namespace', APPS]);
  if (!c.legacy) await kc(['apply', '-f', '-'], await crdYaml());
  await kc(['apply', '-f', '-'], m.rbac);
  const token = (await kc(['create', 'token', 'controller', '-n', NS, '--duration', '2h'])).trim();
  const adminCfg = parseYaml(readFileSync(srv.kubeconfig, 'utf8')) as { clusters: Array<{ name: string }> };
  const kubeconfig = join(dir, 'controller.kubeconfig');
  writeFileSync(kubeconfig, stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: adminCfg.clusters,
    users: [{ name: 'controller', user: { token } }],
    contexts: [{ name: 'controller', context: { cluster: adminCfg.clusters[0]!.name, user: 'controller' } }],
    'current-context': 'controller',
  }));
  return { srv, kc, kubeconfig, args: m.args, env: m.env };
}

describe('the controller within MetalLB release roles', () => {
  for (const c of CASES) {
    test(`${c.name}: assigns, annotates, reports config errors; no retry loop on what it may not read`, async () => {
      const { kc, kubeconfig, args, env } = await setup(c);
      if (c.legacy) await kc(['apply', '-f', '-'], legacyConfig('10.97.5.0/28'));
      else await kc(['apply', '-f', '-'], crdConfig);
      // The manifest's own args (--port is MetalLB's metrics port: moved off 7472, which other tests may hold), and
      // a flag of a future release.
      const manifestArgs = args.map((a) => (a.startsWith('--port=') ? '--port=0' : a));
      const ctl: ControllerHandle = await startController(kubeconfig, {
        // (The webhook is off with --config by default; said explicitly for the helper, which waits for its port.)
        args: [...manifestArgs, '--a-flag-from-v0.17=1', '--webhook-mode', 'disabled'],
        env,
      });
      cleanups.push(async () => void (await ctl.stop()));
      assert.ok(ctl.lines().some((l) => String(l.msg).startsWith('ignoring unknown arguments') && String(l.msg).includes('--a-flag-from-v0.17=1')), ctl.logs());

      await kc(['apply', '-f', '-'], `apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${APPS}}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
`);
      const svc = async (): Promise<Svc> => JSON.parse(await kc(['get', 'svc', 'web', '-n', APPS, '-o', 'json'])) as Svc;
      const ipOf = (s: Svc): string => s.status?.loadBalancer?.ingress?.[0]?.ip ?? '';
      const first = await waitFor('an address', async () => ipOf(await svc()) || undefined, 30_000);
      assert.match(first, /^10\.97\.5\.(\d|1[0-5])$/);
      await waitFor('the pool annotation', async () => (await svc()).metadata.annotations?.['metallb.io/ip-allocated-from-pool'] === 'default', 30_000);
      await waitFor('the IPAllocated event', async () =>
        (await kc(['get', 'events', '-n', APPS, '-o', 'jsonpath={.items[*].reason}'])).includes('IPAllocated'), 30_000);

      if (c.legacy) {
        // An invalid edit keeps the last good configuration, with a Warning Event on the ConfigMap.
        await kc(['apply', '-f', '-'], legacyConfig('10.97.5.300-10.97.5.310'));
        await waitFor('the InvalidConfiguration event', async () => {
          const out = await kc(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.kind=ConfigMap,reason=InvalidConfiguration', '-o', 'jsonpath={.items[*].message}']);
          return out.includes('10.97.5.300') || undefined;
        }, 30_000);
        assert.equal(ipOf(await svc()), first, 'the address is kept');
        // A valid edit takes effect: the address moves into the new range.
        await kc(['apply', '-f', '-'], legacyConfig('10.97.6.0/28'));
        await waitFor('an address from the edited pool', async () => ipOf(await svc()).startsWith('10.97.6.') || undefined, 30_000);
      }

      // The memberlist Secret: v0.10+ controllers make it (v0.10-v0.12 may only list it by name and create it);
      // v0.9.3's may not, and the tutorial has the user create it.
      if (c.manifest === 'metallb-v0.9.3.yaml') {
        assert.ok(ctl.lines().some((l) => l.feature === 'memberlist-secret' && String(l.msg).includes('turned off')), 'memberlist-secret off');
      } else {
        await waitFor('the memberlist Secret', async () => (await kc(['get', 'secrets', '-n', NS, '-o', 'name'])).includes('secret/memberlist') || undefined, 30_000);
      }
      const loops = ctl.lines().filter((l) => l.msg === 'list/watch failed, retrying');
      assert.deepEqual(loops.map((l) => l.resource), [], 'no informer retries a forbidden list');
      const off = ctl.lines().filter((l) => String(l.msg).startsWith('not allowed to list')).map((l) => String(l.resource)).sort();
      if (c.manifest === 'metallb-v0.9.3.yaml') assert.ok(off.includes('namespaces') && off.includes('nodes') && off.includes(`secrets in ${NS}`), off.join(', '));
      if (!c.legacy) {
        assert.deepEqual(off, []);
        assert.ok(ctl.lines().some((l) => l.feature === 'legacy-configmap' && String(l.msg).includes('turned off')), 'no ConfigMap access: the legacy ConfigMap is off');
        const polled = ctl.lines().filter((l) => String(l.msg).startsWith('may list but not watch')).map((l) => String(l.resource)).sort();
        assert.deepEqual(polled, [`bgppeers.metallb.io in ${NS}`, 'nodes']);
      }
    });
  }
});

test('MetalLB <= v0.12 flags: --config turns the webhook off unless asked for; --config-ns names the namespace', () => {
  assert.equal(webhookModeFor({ config: 'config' }), 'disabled');
  assert.equal(webhookModeFor({ config: 'config', webhookMode: 'enabled' }), 'enabled');
  assert.equal(webhookModeFor({}), 'enabled');
  assert.equal(controllerNamespace({ configNs: 'lb' }, '/nonexistent'), 'lb');
  assert.equal(controllerNamespace({ namespace: 'a', configNs: 'lb' }, '/nonexistent'), 'a');
  assert.equal(controllerNamespace({}, '/nonexistent'), 'metallb-system');
});
