// `metallb cluster controller-manager|scheduler` as processes against `metallb dev-apiserver`, like the lab runs them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { kubectlOk, startDevServer, type DevServerHandle } from '../../helpers/devserver.js';
import { ROOT } from '../../controller/helpers.js';
import { waitFor } from './helpers.js';

const BIN = join(ROOT, 'bin', 'metallb.js');
let srv: DevServerHandle;
const children: ChildProcess[] = [];

function run(args: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, exited };
}

before(async () => {
  srv = await startDevServer();
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await srv?.stop();
});

test('controller-manager and scheduler processes: a Deployment gets its ReplicaSet and bound pods; SIGTERM exits 0', async () => {
  await kubectlOk(['apply', '-f', '-'], srv.kubeconfig, {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } }),
  });
  const cm = run(['cluster', 'controller-manager', '--kubeconfig', srv.kubeconfig, '--log-level', 'info']);
  const sc = run(['cluster', 'scheduler', '--kubeconfig', srv.kubeconfig]);
  await kubectlOk(['create', 'deployment', 'cli', '--image=nginx', '--replicas=2'], srv.kubeconfig);
  await waitFor('2 bound pods', async () => {
    const out = await kubectlOk(['get', 'pods', '-l', 'app=cli', '-o', 'jsonpath={range .items[*]}{.spec.nodeName}{" "}{end}'], srv.kubeconfig);
    return out.trim() === 'node1 node1';
  }, 60_000);
  const logs = cm.out();
  assert.match(logs, /"msg":"starting controllers"/);
  assert.match(logs, /"component":"controller-manager"/);
  cm.child.kill('SIGTERM');
  sc.child.kill('SIGTERM');
  assert.equal(await cm.exited, 0);
  assert.equal(await sc.exited, 0);
});

test('usage errors: unknown controller, unreadable kubeconfig, bad duration', async () => {
  let r = run(['cluster', 'controller-manager', '--kubeconfig', srv.kubeconfig, '--controllers', '*,-nope']);
  assert.equal(await r.exited, 2);
  assert.match(r.out(), /unknown controller "nope"/);
  r = run(['cluster', 'scheduler', '--kubeconfig', '/nonexistent/kubeconfig']);
  assert.equal(await r.exited, 2);
  assert.match(r.out(), /kubeconfig \/nonexistent\/kubeconfig: file does not exist/);
  r = run(['cluster', 'controller-manager', '--node-monitor-grace-period', 'soon']);
  assert.equal(await r.exited, 2);
  assert.match(r.out(), /is not a duration/);
});

test('--leader-elect: two schedulers, one Lease holder binds; SIGTERM hands over to the other at once', async () => {
  const args = (): string[] => ['cluster', 'scheduler', '--kubeconfig', srv.kubeconfig, '--leader-elect', '--leader-elect-retry-period', '200ms', '--scheduler-name', 'le-sched', '--log-level', 'info'];
  const a = run(args());
  const b = run(args());
  const holder = await waitFor('a leader', async () => {
    const out = await kubectlOk(['-n', 'kube-system', 'get', 'lease', 'kube-scheduler', '-o', 'jsonpath={.spec.holderIdentity}'], srv.kubeconfig).catch(() => '');
    return out || undefined;
  });
  const leader = a.out().includes('"became leader"') ? a : b;
  const standby = leader === a ? b : a;
  assert.match(leader.out(), new RegExp(holder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const pod = (name: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { schedulerName: 'le-sched', containers: [{ name: 'c', image: 'nginx' }] } });
  await kubectlOk(['apply', '-f', '-'], srv.kubeconfig, { input: pod('le1') });
  await waitFor('le1 bound', async () => (await kubectlOk(['get', 'pod', 'le1', '-o', 'jsonpath={.spec.nodeName}'], srv.kubeconfig)) === 'node1', 30_000);
  assert.doesNotMatch(standby.out(), /pod scheduled/);
  leader.child.kill('SIGTERM');
  assert.equal(await leader.exited, 0);
  await waitFor('standby leads', () => standby.out().includes('"became leader"'), 20_000);
  await kubectlOk(['apply', '-f', '-'], srv.kubeconfig, { input: pod('le2') });
  await waitFor('le2 bound', async () => (await kubectlOk(['get', 'pod', 'le2', '-o', 'jsonpath={.spec.nodeName}'], srv.kubeconfig)) === 'node1', 30_000);
  standby.child.kill('SIGTERM');
  assert.equal(await standby.exited, 0);
});
