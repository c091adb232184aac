// Real helm (v4, as deploy/helm/get-helm.sh fetches it for CI) installs, upgrades, rolls back and uninstalls our chart
// against the dev API server over HTTPS with RBAC. helm's Go client sends protobuf for built-in types (its release
// Secrets, DeleteOptions on uninstall) and server-side apply patches for the chart's objects.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { kubectl, kubectlOk, startDevServer, type DevServerHandle } from '../../helpers/devserver.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const CHART = join(ROOT, 'deploy', 'helm', 'metallb-ts');

function findHelm(): string | undefined {
  for (const c of [process.env.HELM, join(ROOT, '.tmp', 'helm', 'helm')]) if (c && existsSync(c)) return c;
  try {
    execFileSync('helm', ['version', '--short'], { stdio: 'ignore' });
    return 'helm';
  } catch {
    return undefined;
  }
}
const helmBin = findHelm();
const noHelm = helmBin ? false : 'no helm binary (set HELM, put helm on the PATH, or run deploy/helm/get-helm.sh)';

let srv: DevServerHandle;
before(async () => {
  if (helmBin) srv = await startDevServer({ tls: true });
});
after(async () => {
  await srv?.stop();
});

function helm(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(helmBin!, [...args, '--kubeconfig', srv.kubeconfig], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, HELM_CACHE_HOME: join(srv.dir, 'helm-cache'), HELM_CONFIG_HOME: join(srv.dir, 'helm-config'), HELM_DATA_HOME: join(srv.dir, 'helm-data') },
  });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

const ok = (args: string[]): string => {
  const r = helm(args);
  assert.equal(r.code, 0, `helm ${args.join(' ')}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
};

const args = (o: { logLevel?: string } = {}) => ['mlb', CHART, '-n', 'metallb-system', ...(o.logLevel ? ['--set', `logLevel=${o.logLevel}`] : [])];

test('helm install, upgrade, history, rollback and uninstall of the chart', { skip: noHelm }, async () => {
  ok(['install', ...args(), '--create-namespace']);
  const releases = JSON.parse(ok(['list', '-A', '-o', 'json'])) as { name: string; status: string; revision: string }[];
  assert.deepEqual(releases.map((r) => [r.name, r.status, r.revision]), [['mlb', 'deployed', '1']]);
  const k = (a: string[]) => kubectlOk(a, srv.kubeconfig);
  await k(['get', 'deployment', 'controller', '-n', 'metallb-system']);
  await k(['get', 'daemonset', 'speaker', '-n', 'metallb-system']);
  await k(['get', 'crd', 'ipaddresspools.metallb.io']);
  // helm keeps its release in a Secret (written with protobuf)
  const secrets = await k(['get', 'secrets', '-n', 'metallb-system', '-l', 'owner=helm', '-o', 'name']);
  assert.match(secrets, /secret\/sh\.helm\.release\.v1\.mlb\.v1/);

  ok(['upgrade', ...args({ logLevel: 'debug' })]);
  const dep = JSON.parse(await k(['get', 'deployment', 'controller', '-n', 'metallb-system', '-o', 'json'])) as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
  assert.ok(dep.spec.template.spec.containers[0]!.args.includes('--log-level=debug'), JSON.stringify(dep.spec.template.spec.containers[0]!.args));
  const history = JSON.parse(ok(['history', 'mlb', '-n', 'metallb-system', '-o', 'json'])) as { revision: number; status: string }[];
  assert.deepEqual(history.map((h) => [h.revision, h.status]), [[1, 'superseded'], [2, 'deployed']]);

  ok(['rollback', 'mlb', '1', '-n', 'metallb-system']);
  const back = JSON.parse(await k(['get', 'deployment', 'controller', '-n', 'metallb-system', '-o', 'json'])) as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
  assert.ok(!back.spec.template.spec.containers[0]!.args.includes('--log-level=debug'));

  // uninstall deletes with protobuf DeleteOptions; the release and its objects are gone
  const un = helm(['uninstall', 'mlb', '-n', 'metallb-system']);
  assert.equal(un.code, 0, un.stderr);
  assert.match(un.stdout, /release "mlb" uninstalled/);
  assert.equal(ok(['list', '-A', '-q']).trim(), '');
  assert.equal((await kubectl(['get', 'deployment', 'controller', '-n', 'metallb-system'], srv.kubeconfig)).code, 1);
  assert.equal((await k(['get', 'secrets', '-n', 'metallb-system', '-l', 'owner=helm', '-o', 'name'])).trim(), '');
  // CRDs from the chart's crds/ folder stay, as helm documents
  await k(['get', 'crd', 'ipaddresspools.metallb.io']);
});
