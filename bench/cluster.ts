// Cluster component figures: the controller-manager and scheduler driving a 100-replica Deployment over 10 nodes
// against the dev API server (pods marked Ready by the test stand-in for kubelets), and the proxy's ruleset for
// 100 / 1000 / 5000 Service ports: computed in-process, then loaded by nft into a throw-away tkp- namespace (root).
import { execFileSync } from 'node:child_process';
import { CR } from '../src/cluster/common/resources.js';
import type { Deployment, EndpointSlice, Pod, Service } from '../src/cluster/common/types.js';
import { buildEntries } from '../src/cluster/proxy/model.js';
import { applyNft } from '../src/cluster/proxy/nft.js';
import { buildRuleset, deleteScript } from '../src/cluster/proxy/ruleset.js';
import { collectionPath, objectPath } from '../src/k8s/resources.js';
import { startCluster, waitFor } from '../test/cluster/controllers/helpers.js';

const out = (s: string): void => void process.stdout.write(`${s}\n`);

async function deploymentFigures(): Promise<void> {
  const c = await startCluster({ nodes: 10 });
  try {
    const dep = (image: string): Deployment => ({
      metadata: { name: 'bench' },
      spec: { replicas: 100, selector: { matchLabels: { app: 'bench' } }, template: { metadata: { labels: { app: 'bench' } }, spec: { containers: [{ name: 'c', image }] } } },
    });
    const status = (): Promise<Deployment> => c.client.get<Deployment>(objectPath(CR.deployments, 'default', 'bench'));
    const pods = async (): Promise<Pod[]> => (await c.client.get<{ items: Pod[] }>(collectionPath(CR.pods, 'default'), { query: { labelSelector: 'app=bench' } })).items;
    let t = performance.now();
    await c.writer.create(CR.deployments, 'default', dep('nginx'));
    await waitFor('100 bound', async () => (await pods()).filter((p) => p.spec?.nodeName).length === 100, 120_000, 50);
    const bound = performance.now() - t;
    await waitFor('available', async () => (await status()).status?.availableReplicas === 100, 120_000, 50);
    const available = performance.now() - t;
    const perNode = new Map<string, number>();
    for (const p of await pods()) perNode.set(p.spec!.nodeName!, (perNode.get(p.spec!.nodeName!) ?? 0) + 1);
    out(`deployment 100 replicas / 10 nodes: all pods bound ${bound.toFixed(0)} ms, available ${available.toFixed(0)} ms; pods per node ${Math.min(...perNode.values())}-${Math.max(...perNode.values())}`);
    t = performance.now();
    const cur = await status();
    await c.writer.update(CR.deployments, { ...cur, spec: { ...cur.spec, template: dep('nginx:2').spec!.template } });
    await waitFor('rolled', async () => {
      const d = await status();
      return d.status?.updatedReplicas === 100 && d.status.replicas === 100 && d.status.availableReplicas === 100 && (d.status.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
    }, 180_000, 50);
    out(`rolling update of 100 replicas (25% surge / 25% unavailable): ${(performance.now() - t).toFixed(0)} ms`);
  } finally {
    await c.stop();
  }
}

function syntheticServices(n: number): { services: Service[]; slices: EndpointSlice[] } {
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  for (let i = 0; i < n; i++) {
    const name = `s${i}`;
    const a = (i >> 8) & 255;
    const b = i & 255;
    services.push({
      metadata: { namespace: 'default', name },
      spec: { type: 'LoadBalancer', clusterIP: `10.92.${100 + (a % 50)}.${b}`, ports: [{ name: 'http', port: 80, nodePort: 30000 + (i % 2700), protocol: 'TCP' }] },
      status: { loadBalancer: { ingress: [{ ip: `10.92.${150 + (a % 50)}.${b}` }] } },
    });
    slices.push({
      metadata: { namespace: 'default', name: `${name}-x`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [1, 2, 3].map((k) => ({ addresses: [`10.92.${k * 10 + (a % 10)}.${b}`], nodeName: `n${k}`, conditions: { ready: true } })),
    });
  }
  return { services, slices };
}

async function proxyFigures(): Promise<void> {
  const root = process.getuid?.() === 0;
  const ns = `tkp-bench${process.pid % 1000}`;
  if (root) execFileSync('ip', ['netns', 'add', ns]);
  try {
    for (const n of [100, 1000, 5000]) {
      // node ports must be unique per protocol: at most 2700 distinct ones here, the rest share (the first wins)
      const { services, slices } = syntheticServices(n);
      let t = performance.now();
      const script = buildRuleset({ entries: buildEntries(services, slices, 'n1'), nodeIPs: ['10.92.1.11'], podCIDRs: ['10.92.0.0/16'] });
      const build = performance.now() - t;
      let load = NaN;
      if (root) {
        t = performance.now();
        await applyNft(script, 'ip', ['netns', 'exec', ns, 'nft']);
        load = performance.now() - t;
      }
      out(`proxy ruleset, ${n} Service ports x 3 endpoints: built in ${build.toFixed(1)} ms (${(script.length / 1024).toFixed(0)} KiB), loaded by nft in ${root ? `${load.toFixed(0)} ms` : 'n/a (needs root)'}`);
    }
    if (root) await applyNft(deleteScript(), 'ip', ['netns', 'exec', ns, 'nft']);
  } finally {
    if (root) execFileSync('ip', ['netns', 'del', ns]);
  }
}

export async function runClusterBench(): Promise<void> {
  await deploymentFigures();
  await proxyFigures();
}
