// Integration: the speaker inside MetalLB's own permissions. The dev API server enforces RBAC (HTTPS); the speaker
// authenticates with a token of the `speaker` ServiceAccount bound exactly as MetalLB's release manifests bind it
// (v0.9.3: no EndpointSlices, Namespaces, Secrets or CRDs; v0.13.11: CRDs but no ServiceL2Status; v0.14.9 and v0.15.3:
// ServiceL2Status too; and our own manifests).
// It must announce, record its event and, where allowed, write ServiceL2Status, without a retry loop on a 403.
// Under our roles, every request the speakers made (the API server's audit log) is compared with what the roles
// grant, both ways (least privilege; the controller's side is test/deploy/least-privilege.test.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { KubeClient, loadKubeConfig } from '../../src/k8s/client.js';
import { crdYaml, NS, ROOT, waitFor } from '../controller/helpers.js';
import { kubectlOk, startDevServer, type DevServerHandle } from '../helpers/devserver.js';
import { isRoot } from '../helpers/netns.js';
import { metallbRbac, rbacObjectsOfManifest, toYamlStream } from '../helpers/metallb-rbac.js';
import { compareUsage, grantsOf, readAudit, requestsOf } from '../helpers/rbac-usage.js';
import { metric, startSpeaker, type SpeakerHandle } from './process.js';
import { TestLan, type LanMachine } from './lan.js';

/** Grants this layer 2 scenario does not use, and where they are used. */
const RARELY_SPEAKER: Record<string, string> = Object.fromEntries([
  'create servicebgpstatuses.metallb.io', 'delete servicebgpstatuses.metallb.io', 'list servicebgpstatuses.metallb.io',
  'watch servicebgpstatuses.metallb.io', 'patch servicebgpstatuses/status.metallb.io',
].map((g) => [`${g} in ${NS}`, 'BGP mode\'s ServiceBGPStatus objects: the lab installs these roles (test/speaker/lab-bgp.test.ts)']));

const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);
const APPS = 'tsp-rbac';
const skip = isRoot() ? false : 'needs root (network namespaces, raw sockets)';
const lan = new TestLan(103);
const machines = new Map<string, LanMachine>();
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** MetalLB's manifests in ../shared (beside the checkout; worktrees find it under /work). */
function fixturePath(file: string): string {
  for (const base of [join(ROOT, '..', 'shared'), '/work/shared']) {
    const p = join(base, 'fixtures', 'metallb-manifests', file);
    if (existsSync(p)) return p;
  }
  throw new Error(`MetalLB manifest fixture ${file} not found in ../shared`);
}

/** The ServiceAccounts, roles and bindings of a manifest (PodSecurityPolicies and the rest left out). */
function rbacOf(path: string): string {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJSON() as { kind?: string } | null)
    .filter((o): o is { kind: string } => !!o && RBAC_KINDS.has(o.kind ?? ''))
    .map((o) => stringify(o))
    .join('---\n');
}

interface Case {
  name: string;
  rbac: string;
  crds: boolean;
  /** Config as MetalLB of that release expects it. */
  config: string;
  slices: boolean;
  l2status: boolean;
  /** What the speaker reports it may not read (default: nothing). */
  notReadable?: string[];
  /** Compare the speakers' requests with these roles, both ways. */
  leastPrivilege?: boolean;
}

const legacyConfig = `apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: ${NS}}
data:
  config: |
    address-pools:
    - {name: default, protocol: layer2, addresses: [10.97.3.0/24]}
`;
const crdConfig = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: default, namespace: ${NS}}
spec: {addresses: [10.97.3.0/24]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: default, namespace: ${NS}}
`;

const CASES: Case[] = [
  { name: 'MetalLB v0.9.3', rbac: rbacOf(fixturePath('metallb-v0.9.3.yaml')), crds: false, config: legacyConfig, slices: false, l2status: false },
  { name: 'MetalLB v0.13.11', rbac: toYamlStream(metallbRbac('v0.13.11')), crds: true, config: crdConfig, slices: true, l2status: false, notReadable: ['servicel2statuses.metallb.io'] },
  { name: 'MetalLB v0.14.9', rbac: rbacOf(fixturePath('metallb-native-v0.14.9.yaml')), crds: true, config: crdConfig, slices: true, l2status: true },
  { name: 'MetalLB v0.15.3', rbac: toYamlStream(metallbRbac('v0.15.3')), crds: true, config: crdConfig, slices: true, l2status: true },
  { name: 'metallb-ts deploy/manifests', rbac: rbacOf(join(ROOT, 'deploy', 'manifests', 'rbac.yaml')), crds: true, config: crdConfig, slices: true, l2status: true, leastPrivilege: true },
];

async function setup(c: Case): Promise<{ srv: DevServerHandle; admin: KubeClient; speakerKubeconfig: string; auditPath: string }> {
  if (machines.size === 0) {
    lan.up();
    cleanups.unshift(() => lan.down());
    machines.set('node1', lan.node(1));
    machines.set('node2', lan.node(2));
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsp-rbac-'));
  const auditPath = join(dir, 'audit.log');
  const srv = await startDevServer({ logLevel: 'warn', extraArgs: ['--cert-dir', join(dir, 'pki'), '--secure-port', '0', '--bind-address', lan.hostIP, '--audit-log-path', auditPath] });
  cleanups.push(async () => {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const kc = (args: string[], input?: string): Promise<string> => kubectlOk(args, srv.kubeconfig, input === undefined ? {} : { input });
  await kc(['create', 'namespace', NS]);
  await kc(['create', 'namespace', APPS]);
  if (c.crds) await kc(['apply', '-f', '-'], await crdYaml());
  await kc(['apply', '-f', '-'], c.rbac);
  await kc(['apply', '-f', '-'], [
    c.config,
    'apiVersion: v1\nkind: Node\nmetadata: {name: node1}\n',
    'apiVersion: v1\nkind: Node\nmetadata: {name: node2}\n',
    `apiVersion: v1\nkind: Pod\nmetadata: {name: speaker-a, namespace: ${NS}, labels: {app: metallb, component: speaker}}\nspec: {nodeName: node1, serviceAccountName: speaker, containers: [{name: speaker, image: quay.io/metallb/speaker:v0.14.9}]}\n`,
    `apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ${APPS}}\nspec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}\n`,
    c.slices
      ? `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-x, namespace: ${APPS}, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.244.1.4], nodeName: node2}]\n`
      : `apiVersion: v1\nkind: Endpoints\nmetadata: {name: web, namespace: ${APPS}}\nsubsets: [{addresses: [{ip: 10.244.1.4, nodeName: node2}], ports: [{port: 80}]}]\n`,
  ].join('---\n'));
  const admin = new KubeClient(loadKubeConfig(srv.kubeconfig));
  cleanups.push(async () => admin.close());
  await admin.mergePatch(`/api/v1/namespaces/${APPS}/services/web/status`, { status: { loadBalancer: { ingress: [{ ip: '10.97.3.1' }] } } });
  // The speaker's credentials: a token of its ServiceAccount, nothing more.
  const token = (await kc(['create', 'token', 'speaker', '-n', NS, '--duration', '2h'])).trim();
  const adminCfg = parseYaml(readFileSync(srv.kubeconfig, 'utf8')) as { clusters: unknown[] };
  const speakerKubeconfig = join(dir, 'speaker.kubeconfig');
  writeFileSync(speakerKubeconfig, stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: adminCfg.clusters,
    users: [{ name: 'speaker', user: { token } }],
    contexts: [{ name: 'speaker', context: { cluster: (adminCfg.clusters[0] as { name: string }).name, user: 'speaker' } }],
    'current-context': 'speaker',
  }));
  return { srv, admin, speakerKubeconfig, auditPath };
}

for (const c of CASES) {
  test(`speaker under ${c.name} RBAC: announces, records events${c.l2status ? ', writes ServiceL2Status' : ''}`, { skip }, async () => {
    const { admin, speakerKubeconfig, auditPath } = await setup(c);
    const speakers: SpeakerHandle[] = [];
    cleanups.push(async () => void (await Promise.all(speakers.map((s) => s.stop()))));
    for (const node of ['node1', 'node2']) {
      speakers.push(await startSpeaker(speakerKubeconfig, node, {
        netns: machines.get(node)!,
        args: c.crds ? [] : ['--config=config'],
        env: { METALLB_POD_NAME: 'speaker-a', METALLB_ML_LABELS: 'app=metallb,component=speaker' },
      }));
    }
    // sha256(node#10.97.3.1): node1 first.
    await waitFor('node1 announces', async () => metric(await speakers[0]!.metrics(), 'metallb_speaker_announced', { service: `${APPS}/web`, ip: '10.97.3.1' }) === 1, 30_000);
    assert.equal(metric(await speakers[1]!.metrics(), 'metallb_speaker_announced', { service: `${APPS}/web` }), undefined);
    const ev = await waitFor('nodeAssigned event', async () => {
      const list = await admin.get<{ items: { reason: string; message: string; involvedObject: { name: string } }[] }>(`/api/v1/namespaces/${APPS}/events`);
      return list.items.find((e) => e.reason === 'nodeAssigned' && e.involvedObject.name === 'web');
    });
    assert.equal(ev.message, 'announcing from node "node1" with protocol "layer2"');
    if (c.l2status) {
      const st = await waitFor('ServiceL2Status', async () => {
        const list = await admin.get<{ items: { status?: { node?: string }; metadata: { ownerReferences?: { name: string }[] } }[] }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/servicel2statuses`);
        return list.items.length === 1 && list.items[0]!.metadata.ownerReferences?.length ? list.items[0] : undefined;
      });
      assert.equal(st.status?.node, 'node1');
      assert.deepEqual(st.metadata.ownerReferences?.map((o) => o.name), ['speaker-a']);
    }
    for (const s of speakers) {
      const lines = s.lines();
      // Forbidden resources are probed once and turned off; nothing keeps failing.
      const failing = lines.filter((l) => l.msg === 'list/watch failed, retrying' || /could not record event|ServiceL2Status update failed/.test(String(l.msg)));
      assert.deepEqual(failing, [], `${s.node}: ${JSON.stringify(failing.slice(0, 3))}`);
      const turnedOff = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('not allowed to read')).map((l) => l.resource).sort();
      if (c.name === 'MetalLB v0.9.3') {
        assert.deepEqual(turnedOff, [
          'bfdprofiles.metallb.io', 'bgpadvertisements.metallb.io', 'bgppeers.metallb.io', 'communities.metallb.io', 'endpointslices.discovery.k8s.io',
          'ipaddresspools.metallb.io', 'l2advertisements.metallb.io', 'namespaces', `secrets in ${NS}`, 'servicel2statuses.metallb.io',
        ].sort());
      } else {
        assert.deepEqual(turnedOff, c.notReadable ?? []);
      }
    }
    if (c.leastPrivilege) {
      // The rest of a Service's life: its address changes and comes back (node1 announces it again: the repeated
      // nodeAssigned is a patch of its Event), then it is deleted (the status object goes).
      const nodeAssigned = async (): Promise<number> => {
        const list = await admin.get<{ items: { reason: string; count?: number; involvedObject: { name: string } }[] }>(`/api/v1/namespaces/${APPS}/events`);
        return list.items.find((e) => e.reason === 'nodeAssigned' && e.involvedObject.name === 'web')?.count ?? 0;
      };
      const setIP = (ip: string): Promise<unknown> => admin.mergePatch(`/api/v1/namespaces/${APPS}/services/web/status`, { status: { loadBalancer: { ingress: [{ ip }] } } });
      await setIP('10.97.3.2');
      await waitFor('node1 withdraws 10.97.3.1', async () => metric(await speakers[0]!.metrics(), 'metallb_speaker_announced', { service: `${APPS}/web`, ip: '10.97.3.1' }) === undefined, 30_000);
      await setIP('10.97.3.1');
      await waitFor('nodeAssigned counted twice', async () => (await nodeAssigned()) >= 2, 30_000);
      await admin.delete(`/api/v1/namespaces/${APPS}/services/web`);
      await waitFor('ServiceL2Status deleted', async () => (await admin.get<{ items: unknown[] }>(`/apis/metallb.io/v1beta1/namespaces/${NS}/servicel2statuses`)).items.length === 0);
      await Promise.all(speakers.map((s) => s.stop()));
      const requests = requestsOf(readAudit(auditPath), `system:serviceaccount:${NS}:speaker`);
      const usage = compareUsage(requests, grantsOf(rbacObjectsOfManifest(join(ROOT, 'deploy', 'manifests', 'rbac.yaml')), NS, 'speaker'), RARELY_SPEAKER);
      assert.deepEqual(usage.missing, [], 'requests the roles do not grant');
      assert.deepEqual(usage.unused, [], 'grants never used');
    }
  });
}
