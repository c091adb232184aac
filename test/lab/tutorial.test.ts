// MetalLB's tutorial as a test, in a lab started with --no-loadbalancer: the Service stays <pending> while its NodePort
// is answered by the pods in turn from the client machine; installing metallb-ts with kubectl gives it an address from
// the pool; deleting the Service and the Deployment leaves only the `kubernetes` Service.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isReady, labSkip, ROOT, startLab, type Lab } from '../helpers/lab.js';

interface Svc {
  spec: { type: string; ports: Array<{ nodePort?: number }>; clusterIP: string };
  status?: { loadBalancer?: { ingress?: Array<{ ip: string }> } };
}

const POOL = (lab: Lab): string => `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec:
  addresses: [${lab.status.serviceRange.ipv4}, ${lab.status.serviceRange.ipv6}]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: example, namespace: metallb-system}
`;

/** Whether an IPv4 address lies in an `A-B` range of the same /24. */
function inRange(ip: string, range: string): boolean {
  const [a, b] = range.split('-') as [string, string];
  const last = (s: string): number => Number(s.split('.')[3]);
  return ip.split('.').slice(0, 3).join('.') === a.split('.').slice(0, 3).join('.') && last(ip) >= last(a) && last(ip) <= last(b);
}

describe('the MetalLB tutorial in the lab', { skip: labSkip }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab(undefined, { nodes: 3, loadBalancer: false });
  });
  after(async () => {
    await lab?.down();
  });

  test('create, scale and expose: pending, while the NodePort is answered by several pods', async () => {
    await lab.kubectlOk(['create', 'deployment', 'lb-hname-pods', '--image=sysnet4admin/echo-hname']);
    await lab.kubectlOk(['scale', 'deployment', 'lb-hname-pods', '--replicas=3']);
    await lab.kubectlOk(['expose', 'deployment', 'lb-hname-pods', '--type=LoadBalancer', '--name=lb-hname-svc', '--port=80']);
    await lab.waitFor('3 pods Ready', async () => {
      const pods = await lab.pods('default', 'app=lb-hname-pods');
      return pods.filter(isReady).length === 3 || `${pods.filter(isReady).length}/3 ready`;
    });
    const pods = await lab.pods('default', 'app=lb-hname-pods');
    const names = new Set(pods.map((p) => p.metadata.name));
    // Spread over nodes by the scheduler.
    assert.ok(new Set(pods.map((p) => p.spec?.nodeName)).size >= 2, 'pods on at least two nodes');

    const svc = await lab.getJson<Svc>(['get', 'svc', 'lb-hname-svc']);
    assert.equal(svc.spec.type, 'LoadBalancer');
    const nodePort = svc.spec.ports[0]?.nodePort;
    assert.ok(nodePort && nodePort >= 30000 && nodePort <= 32767, `nodePort ${nodePort}`);
    const table = await lab.kubectlOk(['get', 'svc', 'lb-hname-svc']);
    assert.match(table, /lb-hname-svc\s+LoadBalancer\s+\S+\s+<pending>\s+80:\d+\/TCP/);

    const node = lab.status.nodes[0]!;
    const seen = new Set<string>();
    await lab.waitFor('the NodePort answers', async () => {
      await lab.curl('client', `http://${node.ipv4}:${nodePort}/`);
      return true;
    });
    for (let i = 0; i < 20; i++) {
      const body = await lab.curl('client', `http://${node.ipv4}:${nodePort}/`);
      const m = /^(?:.*Hello,\s*)?([\w.-]+)\s*$/s.exec(body.trim());
      assert.ok(m, `echo-hname page: ${body.slice(0, 200)}`);
      assert.ok(names.has(m[1]!), `answered by ${m[1]}, not one of ${[...names].join(', ')}`);
      seen.add(m[1]!);
    }
    assert.ok(seen.size >= 2, `20 requests answered by ${seen.size} pod(s)`);
    // Still pending: nothing in the cluster assigns load-balancer addresses.
    const again = await lab.getJson<Svc>(['get', 'svc', 'lb-hname-svc']);
    assert.deepEqual(again.status?.loadBalancer?.ingress ?? [], []);
  });

  test("MetalLB's install step: strictARP in the kube-proxy ConfigMap (kubectl get | sed | kubectl apply)", async () => {
    const cm = await lab.kubectlOk(['get', 'configmap', 'kube-proxy', '-n', 'kube-system', '-o', 'yaml']);
    assert.match(cm, /mode: nftables/);
    assert.match(cm, /strictARP: false/);
    const applied = await lab.kubectlOk(['apply', '-f', '-', '-n', 'kube-system'], { input: cm.replace('strictARP: false', 'strictARP: true') });
    assert.match(applied, /configmap\/kube-proxy configured/);
    assert.match(await lab.kubectlOk(['get', 'configmap', 'kube-proxy', '-n', 'kube-system', '-o', 'yaml']), /strictARP: true/);
  });

  test('installing metallb-ts with kubectl gives the Service an address from the pool', async () => {
    await lab.kubectlOk(['apply', '-f', join(ROOT, 'deploy', 'metallb-ts.yaml')], { timeoutMs: 120_000 });
    await lab.kubectlOk(['rollout', 'status', '-n', 'metallb-system', 'deployment/controller', '--timeout=180s'], { timeoutMs: 200_000 });
    const wide = await lab.kubectlOk(['get', 'pods', '-n', 'metallb-system', '-o', 'wide']);
    assert.match(wide, /controller-\S+\s+1\/1\s+Running\s+\d+(?: \(\S+ ago\))?\s+\S+\s+10\.\S+\s+node\d/);
    // The webhook answers once the controller serves it; kubectl apply of the pool is retried until then.
    await lab.waitFor('the pool is accepted', async () => {
      const r = await lab.kubectl(['apply', '-f', '-'], { input: POOL(lab) });
      return r.code === 0 || r.stderr.trim();
    });
    let ip = '';
    await lab.waitFor('an EXTERNAL-IP', async () => {
      const svc = await lab.getJson<Svc>(['get', 'svc', 'lb-hname-svc']);
      ip = svc.status?.loadBalancer?.ingress?.[0]?.ip ?? '';
      return ip !== '' || 'pending';
    });
    assert.ok(inRange(ip, lab.status.serviceRange.ipv4), `${ip} in ${lab.status.serviceRange.ipv4}`);
    const table = await lab.kubectlOk(['get', 'svc', 'lb-hname-svc']);
    assert.match(table, new RegExp(`lb-hname-svc\\s+LoadBalancer\\s+\\S+\\s+${ip.replace(/\./g, '\\.')}\\s+80:\\d+/TCP`));
    // The speakers announce it on the LAN: the client reaches the EXTERNAL-IP, answered by the pods in turn.
    await lab.waitFor('the EXTERNAL-IP answers', async () => {
      await lab.curl('client', `http://${ip}/`);
      return true;
    });
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add((await lab.curl('client', `http://${ip}/`).catch(() => lab.curl('client', `http://${ip}/`))).trim());
    assert.ok(seen.size >= 2, `20 requests to ${ip} answered by ${[...seen].join(', ')}`);
  });

  test('deleting the Service and the Deployment leaves only the kubernetes Service', async () => {
    await lab.kubectlOk(['delete', 'svc', 'lb-hname-svc']);
    await lab.kubectlOk(['delete', 'deployment', 'lb-hname-pods']);
    await lab.waitFor('kubectl get all shows only service/kubernetes', async () => {
      const out = (await lab.kubectlOk(['get', 'all', '-o', 'name'])).trim();
      return out === 'service/kubernetes' || out.replace(/\n/g, ' ');
    });
  });
});
