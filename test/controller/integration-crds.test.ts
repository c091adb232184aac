// Integration: the controller starts before the CRDs exist (keeps running, retries), reads the legacy ConfigMap,
// combines it with CRs once they appear; --lb-class selects the Services a controller handles.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NS, poolYaml, serviceYaml, sleep, startController, startEnv, crdYaml, waitFor, type ControllerHandle, type Env } from './helpers.js';

let env: Env;
const ctls: ControllerHandle[] = [];

before(async () => {
  env = await startEnv({ crds: false, nodePortRange: '1024-65535' });
});

after(async () => {
  for (const c of ctls) await c.stop();
  await env?.close();
});

const legacyConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: ${NS}}
data:
  config: |
    address-pools:
    - name: legacy
      protocol: layer2
      addresses: [192.0.2.0/28]
`;

test('no CRDs yet: logged, retried, the legacy ConfigMap still works; CRs are combined with it once installed', async () => {
  await env.apply(legacyConfigMap);
  const ctl = await startController(env.kubeconfig, { args: ['--crd-absent-grace', '2s'] });
  ctls.push(ctl);
  assert.ok(ctl.lines().some((l) => l.level === 'warn' && String(l.msg).includes('CRD not installed')), 'a clear log line');
  assert.ok(ctl.lines().some((l) => l.level === 'warn' && String(l.msg).includes('still not served: treating it as empty')));
  await env.apply(serviceYaml('default', 'from-legacy'));
  const [ip] = await env.waitIPs('default', 'from-legacy');
  assert.match(ip!, /^192\.0\.2\./);
  assert.equal((await fetch(`http://127.0.0.1:${ctl.ports.health}/readyz`)).status, 200);

  await env.apply(await crdYaml());
  await env.apply(poolYaml('crpool', ['198.51.100.0/28']));
  await waitFor('pool CRs watched', () => ctl.lines().some((l) => String(l.msg).includes('resource is now served')), 30_000);
  await env.apply(serviceYaml('default', 'from-cr', { annotations: { 'metallb.io/address-pool': 'crpool' } }));
  const [ip2] = await env.waitIPs('default', 'from-cr', 1, 30_000);
  assert.match(ip2!, /^198\.51\.100\./);
  assert.deepEqual(await env.ips('default', 'from-legacy'), [ip], 'the legacy pool is still in force (combined config)');
  assert.equal(ctl.child.exitCode, null);
});

test('--lb-class: each controller handles only its class (own namespace and pools); another class is left alone', async () => {
  await env.kc(['create', 'namespace', 'metallb-other']);
  await env.apply(poolYaml('other', ['203.0.113.0/28']).replace(`namespace: ${NS}`, 'namespace: metallb-other'));
  const other = await startController(env.kubeconfig, { args: ['--lb-class', 'example.com/other', '--namespace', 'metallb-other', '--webhook-mode', 'disabled'] });
  ctls.push(other);
  await env.apply([serviceYaml('default', 'classy', { lbClass: 'example.com/other' }), serviceYaml('default', 'foreign', { lbClass: 'example.com/nobody' })].join('---\n'));
  const [ip] = await env.waitIPs('default', 'classy');
  assert.match(ip!, /^203\.0\.113\./);
  await sleep(1500);
  assert.deepEqual(await env.ips('default', 'foreign'), [], 'no controller handles this class');
  assert.match((await env.ips('default', 'from-legacy'))[0]!, /^192\.0\.2\./, 'the default controller kept its own');
});
