// End to end in the lab (root): `lab up --l2-xdp` grants the speakers what the Helm chart's `speaker.xdp: true` does
// (BPF and NET_ADMIN on top of NET_RAW), through the lab kubelet's capability handling. The owner of a Service's
// addresses then answers ARP and NDP from an XDP program on its LAN interface: the program is attached there and
// nowhere else, the client's arping and ndisc6 get the owner's MAC only, and curl is answered. The owner's link cut,
// the next node attaches its own program and answers; restored, exactly one node answers again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { labSkip, runCmd, startLab, type Lab } from '../helpers/lab.js';
import { l2Probes, type Machine } from '../helpers/lab-l2.js';

const skip = labSkip ?? false;
let lab: Lab;

const { node, ingress, agreedOwner, arpAnswers, ndpAnswers } = l2Probes(() => lab);

/** Whether an XDP program is attached to the node's LAN interface (`ip link` shows `prog/xdp id N`). */
async function xdpAttached(m: Machine): Promise<boolean> {
  const r = await runCmd('ip', ['-netns', m.netns, '-d', 'link', 'show', 'dev', m.interface]);
  assert.equal(r.code, 0, r.stderr);
  return /prog\/xdp|xdp(generic|drv|offload)?\s/.test(r.stdout);
}

async function curlOk(url: string): Promise<void> {
  await lab.waitFor(`an answer from ${url}`, async () => {
    await lab.curl('client', url, 2);
    return true;
  }, 60_000, 200);
}

/** Every line of the speaker pods' logs (kubectl logs), parsed where JSON. */
async function speakerLogs(): Promise<Array<{ node: string; msg?: string; interface?: string; reason?: string }>> {
  const pods = await lab.pods('metallb-system', 'component=speaker');
  const out: Array<{ node: string; msg?: string; interface?: string; reason?: string }> = [];
  for (const p of pods) {
    const text = await lab.kubectlOk(['logs', '-n', 'metallb-system', p.metadata.name, '-c', 'speaker']);
    for (const line of text.split('\n')) {
      try {
        out.push({ node: String(p.spec?.nodeName ?? ''), ...(JSON.parse(line) as { msg?: string }) });
      } catch {
        /* not JSON */
      }
    }
  }
  return out;
}

before(async () => {
  if (skip) return;
  lab = await startLab(undefined, { nodes: 3, upArgs: ['--l2-xdp'] });
  await lab.kubectlOk(['create', 'deployment', 'txl-web', '--image=sysnet4admin/echo-hname', '--replicas=3']);
  await lab.kubectlOk(['apply', '-f', '-'], {
    input: `apiVersion: v1
kind: Service
metadata: {name: txl-web}
spec: {type: LoadBalancer, ipFamilyPolicy: RequireDualStack, selector: {app: txl-web}, ports: [{port: 80}]}
`,
  });
});

after(async () => {
  await lab?.down();
});

test('lab --l2-xdp: the owner answers ARP and NDP from an XDP program on its LAN interface, only it, and curl is answered', { skip }, async () => {
  const [v4, v6] = await ingress('txl-web', 2);
  const first = await agreedOwner('txl-web');
  await lab.waitFor(`an XDP program on ${first}`, async () => await xdpAttached(node(first)));
  for (const n of lab.status.nodes) if (n.name !== first) assert.equal(await xdpAttached(n), false, `${n.name} announces nothing, yet has an XDP program`);
  const logs = await speakerLogs();
  assert.ok(logs.some((l) => l.node === first && l.msg === 'answering ARP and NDP in the kernel (XDP) on this interface' && l.interface === node(first).interface),
    `no XDP attach logged by ${first}'s speaker`);
  const refused = logs.filter((l) => /XDP cannot be used|XDP could not be attached/.test(l.msg ?? ''));
  assert.deepEqual(refused, [], 'a speaker could not use XDP');
  assert.deepEqual(await arpAnswers(v4!), [node(first).mac]);
  assert.deepEqual(await ndpAnswers(v6!), [node(first).mac]);
  await curlOk(`http://${v4}/`);
  await curlOk(`http://[${v6}]/`);
});

test('lab --l2-xdp: the owner\'s link cut, the next owner attaches its program and answers; restored, one node answers', { skip }, async () => {
  const [v4, v6] = await ingress('txl-web', 2);
  const first = await agreedOwner('txl-web');
  const cable = node(first).netns;
  const setLink = async (state: 'up' | 'down'): Promise<void> => {
    const r = await runCmd('ip', ['link', 'set', cable, state]);
    assert.equal(r.code, 0, r.stderr);
  };
  await setLink('down');
  let next = '';
  try {
    await lab.waitFor('another node answers ARP', async () => {
      const macs = await arpAnswers(v4!);
      next = lab.status.nodes.find((n) => n.name !== first && macs.length === 1 && macs[0] === n.mac)?.name ?? '';
      return next !== '' || `answers ${macs.join(',')}`;
    }, 60_000, 200);
    assert.equal(await xdpAttached(node(next)), true, `${next} answers without an XDP program`);
    assert.deepEqual(await ndpAnswers(v6!), [node(next).mac]);
    await curlOk(`http://${v4}/`);
  } finally {
    await setLink('up');
  }
  await lab.waitFor(`ARP answered by ${first} only`, async () => JSON.stringify(await arpAnswers(v4!)) === JSON.stringify([node(first).mac]), 60_000, 500);
  // The node that gave the addresses back withdraws its program (nothing else is announced there).
  await lab.waitFor(`${next}'s program detached`, async () => !(await xdpAttached(node(next))), 60_000, 500);
});
