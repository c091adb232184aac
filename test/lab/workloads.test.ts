// The lab behaves like a cluster: metallb-ts installed by `lab up` runs in-cluster and assigns addresses, its webhook's
// refusal reaches kubectl, a pod whose process dies is restarted, a pod failing readiness leaves the EndpointSlice and
// the data path, a DaemonSet follows nodes added and removed, and a crashed component is restarted by the supervisor.
// Last, the lab crashes: `lab down` after `kill -9` of every lab process (supervisor, control plane, kubelets,
// proxies, pods) leaves nothing: no namespace, link, nft table, process, cgroup dir, mount or file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isReady, labSkip, metallb, runCmd, startLab, type Lab } from '../helpers/lab.js';
import { labIdentity, labPids, leftovers } from '../../src/lab/cleanup.js';
import { makePlan } from '../../src/lab/plan.js';

interface Pod {
  metadata: { name: string };
  spec?: { nodeName?: string; containers?: Array<{ args?: string[]; command?: string[] }> };
  status?: { podIP?: string; phase?: string; containerStatuses?: Array<{ restartCount: number; ready: boolean }> };
}
interface Slice {
  endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean; serving?: boolean }; targetRef?: { name: string } }>;
}

/** The network namespace holding a pod's address (the lab's pod namespaces are `<prefix>pod-…`). */
async function podNetns(lab: Lab, podIP: string): Promise<string> {
  const prefix = lab.status.nodes[0]!.netns.replace(/node1$/, 'pod-');
  const list = (await runCmd('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(prefix));
  for (const ns of list) {
    const addrs = await runCmd('ip', ['-n', ns, '-br', 'addr', 'show', 'eth0']);
    if (addrs.stdout.includes(`${podIP}/`)) return ns;
  }
  throw new Error(`no pod namespace holds ${podIP}`);
}

describe('workloads in the lab', { skip: labSkip }, () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab(undefined, { nodes: 2 });
  });
  after(async () => {
    await lab?.down();
  });

  test('lab up installed metallb-ts: the controller runs in-cluster and assigns addresses (IPv4 and IPv6)', async () => {
    const [ctl] = (await lab.pods('metallb-system', 'component=controller')) as Pod[];
    assert.ok(ctl, 'a controller pod');
    assert.ok(isReady(ctl as never), 'controller Ready');
    assert.match(ctl.status?.podIP ?? '', /^10\./, 'on the pod network');
    // In-cluster: no --kubeconfig in its arguments; it found the API server through the service-account mount.
    assert.ok(!(ctl.spec?.containers?.[0]?.args ?? []).some((a) => a.includes('kubeconfig')));
    await lab.kubectlOk(['create', 'service', 'loadbalancer', 'ds-web', '--tcp=80:80']);
    await lab.kubectlOk(['apply', '-f', '-'], {
      input: `apiVersion: v1
kind: Service
metadata: {name: dual}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  selector: {app: none}
  ports: [{port: 80}]
`,
    });
    await lab.waitFor('both Services have addresses', async () => {
      const a = await lab.getJson<{ status?: { loadBalancer?: { ingress?: Array<{ ip: string }> } } }>(['get', 'svc', 'ds-web']);
      const b = await lab.getJson<{ status?: { loadBalancer?: { ingress?: Array<{ ip: string }> } } }>(['get', 'svc', 'dual']);
      const ips = (b.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
      return ((a.status?.loadBalancer?.ingress?.length ?? 0) === 1 && ips.length === 2) || `ds-web ${JSON.stringify(a.status)}, dual ${ips.join(',')}`;
    });
    const dual = await lab.getJson<{ status: { loadBalancer: { ingress: Array<{ ip: string }> } } }>(['get', 'svc', 'dual']);
    const v6 = dual.status.loadBalancer.ingress.map((i) => i.ip).find((ip) => ip.includes(':')) ?? '';
    assert.match(v6, new RegExp(`^${lab.status.serviceRange.ipv6.split('::')[0]}::2[0-5]\\d$`));
    await lab.kubectlOk(['delete', 'svc', 'ds-web', 'dual']);
  });

  test('a second lab up of the same lab is refused, with the reason, and leaves the running lab alone', async () => {
    const r = await lab.lab(['up', '--nodes', '1'], { timeoutMs: 60_000 });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, new RegExp(`lab "${lab.name}" is already up \\(state .*, supervisor pid \\d+\\); \`metallb lab down`));
    assert.ok((await lab.list('nodes')).every((n) => isReady(n)), 'nodes still Ready');
  });

  test('lab status shows machines, Ready nodes and processes; lab exec runs in a machine and passes its exit code on', async () => {
    const st = await lab.lab(['status']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`lab "${lab.name}": up \\(supervisor pid \\d+\\)`));
    for (const n of lab.status.nodes) assert.match(st.stdout, new RegExp(`${n.name}\\s+${n.netns}\\s+${n.ipv4.replace(/\./g, '\\.')}\\s.*\\sReady`));
    assert.match(st.stdout, /kubelet-node1\s+\d+\s+running/);
    // --name goes before the machine: after `--` everything is the command.
    const exec = (args: string[]): ReturnType<typeof metallb> => metallb(['lab', 'exec', '--name', lab.name, ...args]);
    const addr = await exec(['node2', '--', 'ip', '-br', '-4', 'addr', 'show', 'eth0']);
    assert.equal(addr.code, 0, addr.stderr);
    assert.match(addr.stdout, new RegExp(`${lab.status.nodes[1]!.ipv4.replace(/\./g, '\\.')}/24`));
    const code = await exec(['client', '--', 'sh', '-c', 'exit 3']);
    assert.equal(code.code, 3);
    const bad = await exec(['node9', '--', 'true']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no machine "node9" in lab .*\(have: node1, node2, client\)/);
  });

  test("a hostNetwork pod (the speaker) sees its node's interfaces and MAC in /sys; pod namespaces are usable from the host", async () => {
    for (const node of lab.status.nodes) {
      const pids = (await runCmd('ip', ['netns', 'pids', node.netns])).stdout.trim().split('\n').filter(Boolean);
      const speaker = pids.find((pid) => {
        try {
          return /\bspeaker\b/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '));
        } catch {
          return false;
        }
      });
      assert.ok(speaker, `a speaker process in ${node.netns}`);
      const mac = await runCmd('nsenter', ['-t', speaker, '-m', 'cat', '/sys/class/net/eth0/address']);
      assert.equal(mac.stdout.trim(), node.mac, `${node.name}'s speaker reads eth0's MAC: ${mac.stderr}`);
      const ifaces = await runCmd('nsenter', ['-t', speaker, '-m', 'ls', '/sys/class/net']);
      assert.doesNotMatch(ifaces.stdout, /-br0/, 'not the host\'s interfaces');
    }
    const [ctl] = (await lab.pods('metallb-system', 'component=controller')) as Pod[];
    const ns = await podNetns(lab, ctl!.status!.podIP!);
    const r = await runCmd('ip', ['netns', 'exec', ns, 'ip', '-br', 'addr', 'show', 'eth0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(ctl!.status!.podIP!.replace(/\./g, '\\.')));
  });

  test("the controller's webhook refuses an invalid IPAddressPool, and kubectl says so", async () => {
    const r = await lab.kubectl(['apply', '-f', '-'], {
      input: `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: overlapping, namespace: metallb-system}
spec:
  addresses: ["${lab.status.serviceRange.ipv4.split('-')[0]}/32"]
`,
    });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /admission webhook "[^"]+" denied the request: .*overlap/i);
    const pools = await lab.kubectlOk(['get', 'ipaddresspools', '-n', 'metallb-system', '-o', 'name']);
    assert.doesNotMatch(pools, /overlapping/);
  });

  test('a pod whose process exits is restarted', async () => {
    await lab.kubectlOk(['create', 'deployment', 'crashy', '--image=nginx']);
    let pod: Pod | undefined;
    await lab.waitFor('crashy Ready', async () => {
      pod = ((await lab.pods('default', 'app=crashy')) as Pod[]).find((p) => isReady(p as never));
      return pod !== undefined;
    });
    const ns = await podNetns(lab, pod!.status!.podIP!);
    const pids = (await runCmd('ip', ['netns', 'pids', ns])).stdout.trim().split('\n').filter(Boolean);
    assert.ok(pids.length > 0);
    await runCmd('kill', ['-9', ...pids]);
    await lab.waitFor('restartCount 1 and Ready again', async () => {
      const p = (await lab.getJson<Pod>(['get', 'pod', pod!.metadata.name]));
      const cs = p.status?.containerStatuses?.[0];
      return (cs?.restartCount === 1 && cs.ready) || JSON.stringify(cs);
    });
    // Same pod, same address: the container restarted, the pod was not replaced.
    const p = await lab.getJson<Pod>(['get', 'pod', pod!.metadata.name]);
    assert.equal(p.status?.podIP, pod!.status!.podIP);
    await lab.kubectlOk(['delete', 'deployment', 'crashy']);
  });

  test('deleting a Namespace deletes what is in it: its pods stop and their network namespaces leave the host', async () => {
    await lab.kubectlOk(['create', 'namespace', 'doomed']);
    await lab.kubectlOk(['create', 'deployment', 'web', '--image=nginx', '--replicas=2', '-n', 'doomed']);
    await lab.kubectlOk(['create', 'service', 'clusterip', 'web', '--tcp=80:80', '-n', 'doomed']);
    let pods: Pod[] = [];
    await lab.waitFor('2 pods Ready in doomed', async () => {
      pods = ((await lab.pods('doomed', 'app=web')) as Pod[]).filter((p) => isReady(p as never));
      return pods.length === 2 || `${pods.length}/2`;
    });
    const netns = await Promise.all(pods.map((p) => podNetns(lab, p.status!.podIP!)));
    await lab.kubectlOk(['delete', 'namespace', 'doomed', '--timeout=120s'], { timeoutMs: 150_000 });
    await lab.waitFor('the namespace and everything in it gone', async () => {
      const ns = await lab.kubectl(['get', 'namespace', 'doomed']);
      const left = (await lab.kubectlOk(['get', 'all,endpointslices,configmaps,serviceaccounts', '-n', 'doomed', '-o', 'name'])).trim();
      return (ns.code !== 0 && /NotFound/.test(ns.stderr) && left === '') || `namespace: ${ns.stdout.trim() || ns.stderr.trim()}; left: ${left}`;
    });
    await lab.waitFor('the pods\' network namespaces removed', async () => {
      const list = (await runCmd('ip', ['netns', 'list'])).stdout;
      const still = netns.filter((n) => list.includes(n));
      return still.length === 0 || still.join(',');
    });
  });

  test('a pod failing readiness leaves the EndpointSlice and the data path', async () => {
    await lab.kubectlOk(['apply', '-f', '-'], {
      input: `apiVersion: apps/v1
kind: Deployment
metadata: {name: ready}
spec:
  replicas: 2
  selector: {matchLabels: {app: ready}}
  template:
    metadata: {labels: {app: ready}}
    spec:
      containers:
      - name: web
        image: sysnet4admin/echo-hname
        readinessProbe:
          httpGet: {path: /, port: 80}
          periodSeconds: 1
          timeoutSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: ready}
spec:
  type: NodePort
  selector: {app: ready}
  ports: [{port: 80}]
`,
    });
    const readyEndpoints = async (): Promise<string[]> => {
      const slices = (await lab.getJson<{ items: Slice[] }>(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=ready'])).items;
      return slices.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready === true).map((e) => e.targetRef?.name ?? '');
    };
    await lab.waitFor('2 ready endpoints', async () => (await readyEndpoints()).length === 2 || `${(await readyEndpoints()).length}`);
    const pods = (await lab.pods('default', 'app=ready')) as Pod[];
    const victim = pods[0]!;
    const ns = await podNetns(lab, victim.status!.podIP!);
    // The kubelet's probes come from the node: drop them in the pod's namespace, and the pod is alive but not ready.
    const rule = await runCmd('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input: 'table inet lab-test {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport 80 drop\n  }\n}\n',
    });
    assert.equal(rule.code, 0, rule.stderr);
    await lab.waitFor('the victim is not ready in the EndpointSlice', async () => {
      const eps = await readyEndpoints();
      return (eps.length === 1 && !eps.includes(victim.metadata.name)) || eps.join(',');
    });
    const svc = await lab.getJson<{ spec: { ports: Array<{ nodePort: number }> } }>(['get', 'svc', 'ready']);
    const url = `http://${lab.status.nodes[1]!.ipv4}:${svc.spec.ports[0]!.nodePort}/`;
    await lab.waitFor('the data path skips the victim', async () => {
      for (let i = 0; i < 10; i++) {
        const body = await lab.curl('client', url);
        if (body.includes(victim.metadata.name)) return `answered by ${victim.metadata.name}`;
      }
      return true;
    });
    await runCmd('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'lab-test']);
    await lab.waitFor('the victim is ready again', async () => (await readyEndpoints()).length === 2);
    await lab.kubectlOk(['delete', 'deployment,service', 'ready']);
  });

  test('a DaemonSet follows nodes added and removed (lab node add|remove)', async () => {
    await lab.kubectlOk(['apply', '-f', '-'], {
      input: `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      containers: [{name: web, image: nginx}]
`,
    });
    const nodesOf = async (): Promise<string[]> =>
      ((await lab.pods('default', 'app=everywhere')) as Pod[]).filter((p) => isReady(p as never)).map((p) => p.spec?.nodeName ?? '').sort();
    await lab.waitFor('one ready pod on each of 2 nodes', async () => (await nodesOf()).join(',') === 'node1,node2' || (await nodesOf()).join(','));
    const add = await lab.lab(['node', 'add'], { timeoutMs: 240_000 });
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout.trim(), 'node3');
    await lab.waitFor('a pod on node3 too', async () => (await nodesOf()).join(',') === 'node1,node2,node3' || (await nodesOf()).join(','));
    const status = JSON.parse((await lab.lab(['status', '-o', 'json'])).stdout) as { nodes: Array<{ name: string; netns: string }> };
    assert.deepEqual(status.nodes.map((n) => n.name), ['node1', 'node2', 'node3']);
    const node3ns = status.nodes[2]!.netns;
    const rm = await lab.lab(['node', 'remove', 'node3'], { timeoutMs: 120_000 });
    assert.equal(rm.code, 0, rm.stderr);
    await lab.waitFor('node3 and its pod gone', async () => {
      const nodes = (await lab.list('nodes')).map((n) => n.metadata.name);
      const on = await nodesOf();
      return (nodes.join(',') === 'node1,node2' && on.join(',') === 'node1,node2') || `nodes ${nodes.join(',')}; pods on ${on.join(',')}`;
    });
    // Only this lab's namespace: another lab (`--name`) on the host may have a node3 of its own.
    const ns = (await runCmd('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]);
    assert.ok(!ns.includes(node3ns), `${node3ns} still in ip netns list`);
    await lab.kubectlOk(['delete', 'daemonset', 'everywhere']);
  });

  test('a crashed component is restarted by the supervisor, and the cluster keeps its objects', async () => {
    const procs = JSON.parse(readFileSync(join(lab.stateDir, 'processes.json'), 'utf8')) as Array<{ name: string; pid: number }>;
    const api = procs.find((p) => p.name === 'apiserver')!;
    await lab.kubectlOk(['create', 'configmap', 'survivor', '--from-literal=a=b']);
    await new Promise((r) => setTimeout(r, 1500)); // the data file is written within 0.5 s of a change
    process.kill(api.pid, 'SIGKILL');
    await lab.waitFor('the API server is back', async () => {
      const r = await lab.kubectl(['get', 'configmap', 'survivor', '-o', 'jsonpath={.data.a}']);
      return r.stdout === 'b' || r.stderr.trim();
    });
    const now = JSON.parse(readFileSync(join(lab.stateDir, 'processes.json'), 'utf8')) as Array<{ name: string; pid: number; restarts: number }>;
    const again = now.find((p) => p.name === 'apiserver')!;
    assert.equal(again.restarts, 1);
    assert.notEqual(again.pid, api.pid);
    await lab.waitFor('nodes Ready again', async () => (await lab.list('nodes')).every((n) => isReady(n)));
  });

  // Last: it ends the lab.
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
    // The supervisor, API server, controller-manager, scheduler, 2 kubelets, 2 proxies, metallb-ts's controller and two
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
