// End to end in the lab (root): MetalLB's layer 2 tutorial with our speaker DaemonSet. A Deployment of 3 replicas
// exposed as LoadBalancer answers `curl EXTERNAL-IP` from the client over IPv4, IPv6 and dual-stack, through the
// node the election picks (the only one answering ARP/NDP, with its MAC); the owner's link cut, another node takes
// over and the client's requests succeed again; the link restored, exactly one node answers; an
// externalTrafficPolicy: Local Service is announced only from a node with a ready endpoint.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkip, runCmd, startLab, type Lab } from '../helpers/lab.js';
import { l2Probes } from '../helpers/lab-l2.js';
import { electionOrder } from '../../src/speaker/l2/election.js';

const skip = labSkip ?? false;
let lab: Lab;

const { node, ingress, owner, arpAnswers, ndpAnswers } = l2Probes(() => lab);

/** curl until `n` successes; returns the distinct bodies (pod names). */
async function curlUntil(url: string, n: number, timeoutMs = 60_000): Promise<Set<string>> {
  const seen = new Set<string>();
  let ok = 0;
  await lab.waitFor(`${n} answers from ${url}`, async () => {
    try {
      seen.add((await lab.curl('client', url, 2)).trim());
      ok++;
    } catch {
      /* not yet */
    }
    return ok >= n;
  }, timeoutMs, 100);
  return seen;
}

before(async () => {
  if (skip) return;
  lab = await startLab(undefined, { nodes: 3 });
  await lab.kubectlOk(['create', 'deployment', 'tsp-web', '--image=sysnet4admin/echo-hname', '--replicas=3']);
  await lab.kubectlOk(['expose', 'deployment', 'tsp-web', '--type=LoadBalancer', '--port=80']);
  await lab.kubectlOk(['apply', '-f', '-'], {
    input: `apiVersion: v1
kind: Service
metadata: {name: tsp-web6}
spec: {type: LoadBalancer, ipFamilies: [IPv6], ipFamilyPolicy: SingleStack, selector: {app: tsp-web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: tsp-dual}
spec: {type: LoadBalancer, ipFamilyPolicy: RequireDualStack, selector: {app: tsp-web}, ports: [{port: 80}]}
`,
  });
  await lab.waitFor('3 web pods ready', async () => (await lab.pods('default', 'app=tsp-web')).filter((p) =>
    ((p.status?.conditions as { type: string; status: string }[] | undefined) ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).length === 3);
});

after(async () => {
  await lab?.down();
});

test('lab: curl EXTERNAL-IP over IPv4, IPv6 and dual-stack, through the elected node', { skip }, async () => {
  const [v4] = await ingress('tsp-web');
  const [v6] = await ingress('tsp-web6');
  const dual = await ingress('tsp-dual', 2);
  const pods = await curlUntil(`http://${v4}/`, 12);
  assert.ok(pods.size >= 2, `answers from several pods: ${[...pods].join(', ')}`);
  await curlUntil(`http://[${v6}]/`, 3);
  await curlUntil(`http://${dual[0]}/`, 3);
  await curlUntil(`http://[${dual[1]}]/`, 3);
  // The node that answers is the one MetalLB's election picks among the three (all ready, Cluster policy).
  const names = lab.status.nodes.map((n) => n.name);
  const expected = electionOrder(names, v4!)[0]!;
  assert.equal(await owner('tsp-web'), expected);
  assert.deepEqual(await arpAnswers(v4!), [node(expected).mac]);
  const o6 = await owner('tsp-web6');
  assert.equal(o6, electionOrder(names, v6!)[0]);
  assert.deepEqual(await ndpAnswers(v6!), [node(o6).mac]);
});

test('lab: the owner\'s link cut, the next node takes over; restored, exactly one node answers', { skip }, async () => {
  const [v4] = await ingress('tsp-web');
  const first = await owner('tsp-web');
  const names = lab.status.nodes.map((n) => n.name);
  const next = electionOrder(names.filter((n) => n !== first), v4!)[0]!;
  // The cable: the host end of the node's veth (named like its namespace) loses its carrier; the node keeps its
  // addresses and routes, as a machine whose switch port died.
  const cable = node(first).netns;
  const setLink = async (state: 'up' | 'down'): Promise<void> => {
    const r = await runCmd('ip', ['link', 'set', cable, state]);
    assert.equal(r.code, 0, r.stderr);
  };
  await setLink('down');
  try {
    await lab.waitFor(`ARP answered by ${next}`, async () => JSON.stringify(await arpAnswers(v4!)) === JSON.stringify([node(next).mac]), 60_000, 200);
    // Requests reach the Service again (those kube-proxy sends to the pod on the cut node fail until its endpoint goes).
    await curlUntil(`http://${v4}/`, 3);
    assert.equal(await owner('tsp-web'), next);
  } finally {
    await setLink('up');
  }
  // Back: the restored node sorts first again and is the only one answering.
  await lab.waitFor(`ARP answered by ${first} only`, async () => JSON.stringify(await arpAnswers(v4!)) === JSON.stringify([node(first).mac]), 60_000, 500);
  assert.equal(await owner('tsp-web'), first);
});

test('lab: externalTrafficPolicy Local is announced from a node with a ready endpoint', { skip }, async () => {
  await lab.kubectlOk(['create', 'deployment', 'tsp-one', '--image=sysnet4admin/echo-hname', '--replicas=1']);
  await lab.kubectlOk(['expose', 'deployment', 'tsp-one', '--type=LoadBalancer', '--port=80']);
  await lab.kubectlOk(['patch', 'service', 'tsp-one', '-p', '{"spec":{"externalTrafficPolicy":"Local"}}']);
  const [ip] = await ingress('tsp-one');
  let podNode = '';
  await lab.waitFor('tsp-one pod scheduled and ready', async () => {
    const p = (await lab.pods('default', 'app=tsp-one'))[0];
    podNode = String(p?.spec?.nodeName ?? '');
    return podNode !== '' && ((p?.status?.conditions as { type: string; status: string }[] | undefined) ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  });
  assert.equal(await owner('tsp-one'), podNode);
  await lab.waitFor('ARP from the pod\'s node', async () => JSON.stringify(await arpAnswers(ip!)) === JSON.stringify([node(podNode).mac]), 30_000, 300);
  const body = [...(await curlUntil(`http://${ip}/`, 2))];
  assert.ok(body.every((b) => b.startsWith('tsp-one-')), body.join(','));
});
