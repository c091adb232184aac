// The whole `metallb speaker` advertising the routes of the BGP benchmark: the dev API server holds N LoadBalancer
// Services (each with its address in status, as the controller writes it, and a ready endpoint on the node), a pool,
// a BGPAdvertisement and a BGPPeer to a BIRD 2 receiver; one `metallb speaker` (bin/metallb.js, the esbuild bundle)
// runs in the node's namespace. Measured once BIRD holds all N routes: the speaker's peak and current RSS (the whole
// process: informers and their caches, the policy, status objects, metrics, the BGP engine, the BFD worker), beside
// the engine alone of the routes part. Also printed: time from the speaker's start until BIRD holds them all.
// Names start with `tgg-`, addresses 10.81.181.0/24 (LAN); Service addresses 10.100.0.0/15.
// Run: `BENCH_BGP_PARTS=speaker npm run bench -- bgp` (root). BENCH_SPEAKER_HEAPSNAPSHOT=<dir>: the speaker also
// writes a V8 heap snapshot there once measured (for finding what holds its memory; writing it takes a while);
// BENCH_SPEAKER_SETTLE_S=<s>: wait that long after BIRD holds every route before measuring (default 5).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, loadKubeConfig } from '../src/k8s/client.js';
import { startRouter, type Router } from '../src/lab/routers/runner.js';
import { startEnv, type Env } from '../test/controller/helpers.js';
import { TestLan } from '../test/speaker/lan.js';
import { startSpeaker, type SpeakerHandle } from '../test/speaker/process.js';
import { procMemMB } from './lib.js';

const NS = 'metallb-system';
const APPS = 'bench';
const SENDER_ASN = 64512;
const RECEIVER_ASN = 64500;
const POOL = '10.100.0.0/15';

const SNAPSHOT_DIR = process.env['BENCH_SPEAKER_HEAPSNAPSHOT'];
/** Seconds between BIRD holding every route and the measurement (default 5; more lets the status objects be written). */
const SETTLE_S = Number(process.env['BENCH_SPEAKER_SETTLE_S'] ?? 5);

/** Asks the speaker (started with --heapsnapshot-signal) for a heap snapshot and waits until it is written. */
async function heapSnapshot(pid: number, dir: string, out: (s: string) => void): Promise<void> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 1000));
    const made = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!made) continue;
    // Written in one go; done once its size stops changing.
    const size = statSync(join(dir, made)).size;
    await new Promise((res) => setTimeout(res, 2000));
    if (statSync(join(dir, made)).size === size && size > 0) {
      out(`  (heap snapshot: ${join(dir, made)}, ${(size / 1e6).toFixed(0)} MB)`);
      return;
    }
  }
  out('  (no heap snapshot within 600 s)');
}

/** The speaker's V8 heap (used of total) and external memory, from its own metrics (prom-client's defaults). */
async function heapFigures(speaker: SpeakerHandle): Promise<string> {
  try {
    const text = await speaker.metrics();
    const mb = (name: string): string => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
      return m ? `${(Number(m[1]) / 1048576).toFixed(0)} MB` : '?';
    };
    return `V8 heap ${mb('nodejs_heap_size_used_bytes')} used of ${mb('nodejs_heap_size_total_bytes')}, external ${mb('nodejs_external_memory_bytes')}`;
  } catch (err) {
    return `no metrics: ${(err as Error).message}`;
  }
}

const serviceIP = (i: number): string => {
  const v = ((10 << 24) | (100 << 16)) + i;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
};

interface DataFile {
  resourceVersion: number;
  objects: Record<string, { metadata: Record<string, unknown> }[]>;
  events?: unknown[];
}

/** One Service with its address in status and a ready endpoint on node1, through the API: the model for seed(). */
async function createModel(api: KubeClient): Promise<void> {
  await api.post(`/api/v1/namespaces/${APPS}/services`, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc-0', namespace: APPS },
    spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, selector: { app: 'svc-0' }, ports: [{ port: 80, protocol: 'TCP' }] },
  });
  await api.mergePatch(`/api/v1/namespaces/${APPS}/services/svc-0/status`, { status: { loadBalancer: { ingress: [{ ip: serviceIP(0) }] } } });
  await api.post(`/apis/discovery.k8s.io/v1/namespaces/${APPS}/endpointslices`, {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: 'svc-0-a', namespace: APPS, labels: { 'kubernetes.io/service-name': 'svc-0' } },
    addressType: 'IPv4', ports: [{ port: 80, protocol: 'TCP' }],
    endpoints: [{ addresses: ['10.244.1.9'], nodeName: 'node1', conditions: { ready: true } }],
  });
}

/**
 * Makes the stopped API server's data file hold `n` copies of the model Service and its EndpointSlice (names, uids,
 * cluster IPs and addresses of their own). Through the API, 100,000 of each plus their status take ~20 minutes on
 * this machine; the speaker lists and watches them all the same either way.
 */
function seed(file: string, n: number): void {
  const data = JSON.parse(readFileSync(file, 'utf8')) as DataFile;
  const mine = (o: { metadata: Record<string, unknown> }): boolean => o.metadata['namespace'] === APPS;
  const services = data.objects['/services'] ?? [];
  const slices = data.objects['discovery.k8s.io/endpointslices'] ?? [];
  const svc = services.find((o) => mine(o) && o.metadata['name'] === 'svc-0');
  const slice = slices.find((o) => mine(o) && o.metadata['name'] === 'svc-0-a');
  if (!svc || !slice) throw new Error(`${file}: no model Service/EndpointSlice`);
  let rv = data.resourceVersion;
  const meta = (o: { metadata: Record<string, unknown> }, name: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
    ({ ...o.metadata, name, uid: randomUUID(), resourceVersion: String(++rv), ...extra });
  const newServices = [];
  const newSlices = [];
  for (let i = 0; i < n; i++) {
    const name = `svc-${i}`;
    // Cluster IPs from 10.97.0.0 on (the service CIDR is 10.96.0.0/12; the model has one from 10.96.0.0/24).
    const v = ((10 << 24) | (97 << 16)) + i;
    const clusterIP = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
    const s = structuredClone(svc) as unknown as { metadata: Record<string, unknown>; spec: Record<string, unknown>; status: unknown };
    s.metadata = meta(svc, name);
    s.spec = { ...s.spec, selector: { app: name }, clusterIP, clusterIPs: [clusterIP] };
    s.status = { loadBalancer: { ingress: [{ ip: serviceIP(i) }] } };
    newServices.push(s);
    const e = structuredClone(slice) as unknown as { metadata: Record<string, unknown> };
    e.metadata = meta(slice, `${name}-a`, { labels: { 'kubernetes.io/service-name': name } });
    newSlices.push(e);
  }
  data.objects['/services'] = [...services.filter((o) => !mine(o)), ...newServices];
  data.objects['discovery.k8s.io/endpointslices'] = [...slices.filter((o) => !mine(o)), ...newSlices];
  data.resourceVersion = rv;
  // No watch resumes across this: the events of the old contents go.
  data.events = [];
  writeFileSync(file, JSON.stringify(data));
}

export interface SpeakerBenchResult {
  routes: number;
  peakRssMB: number;
  rssMB: number;
  /** From the speaker's start until the receiver holds every route. */
  seconds: number;
}

export async function wholeSpeakerFigures(sizes: readonly number[], engineRssMB: ReadonlyMap<number, number>): Promise<SpeakerBenchResult[]> {
  const out = (s: string): void => void process.stdout.write(`${s}\n`);
  const lan = new TestLan(181, { prefix: 'tgg-', block: 81 });
  const dir = mkdtempSync(join(tmpdir(), 'tgg-bench-'));
  let receiver: Router | undefined;
  let env: Env | undefined;
  let api: KubeClient | undefined;
  let speaker: SpeakerHandle | undefined;
  const results: SpeakerBenchResult[] = [];
  try {
    lan.up();
    const node = lan.node(1);
    const r = lan.other('r', 254);
    receiver = await startRouter('bird', {
      asn: RECEIVER_ASN, routerId: r.ip, neighbors: [{ name: 'node1', address: node.ip, asn: SENDER_ASN, families: ['ipv4'] }],
    }, { netns: r.ns, dir: join(dir, 'bird') });
    const dataFile = join(dir, 'apiserver.json');
    const envOpts = { dataFile, extraArgs: ['--host', lan.hostIP] };
    env = await startEnv(envOpts);
    api = new KubeClient(loadKubeConfig(env.kubeconfig), { maxSockets: 64 });
    await env.kc(['create', 'namespace', APPS]);
    await env.apply(`apiVersion: v1
kind: Node
metadata: {name: node1, labels: {kubernetes.io/hostname: node1}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bench, namespace: ${NS}}
spec: {addresses: ["${POOL}"]}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bench, namespace: ${NS}}
spec: {ipAddressPools: [bench]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: receiver, namespace: ${NS}}
spec: {myASN: ${SENDER_ASN}, peerASN: ${RECEIVER_ASN}, peerAddress: ${r.ip}}
`);
    await createModel(api);
    api.close();
    api = undefined;
    await env.close();
    env = undefined;
    out(`\nthe whole \`metallb speaker\` (one node, dev API server) advertising N Services' /32s to a BIRD 2 receiver`);
    out(`  ${'routes'.padEnd(8)} ${'setup'.padStart(9)} ${'start -> all held'.padStart(18)} ${'peak RSS'.padStart(9)} ${'RSS'.padStart(7)} ${'engine alone'.padStart(13)}`);
    for (const n of [...sizes].sort((a, b) => a - b)) {
      const t0 = performance.now();
      seed(dataFile, n);
      env = await startEnv(envOpts);
      const objectsS = (performance.now() - t0) / 1000;
      const started = performance.now();
      speaker = await startSpeaker(env.kubeconfig, 'node1', {
        netns: { ns: node.ns, ip: node.ip }, args: ['--log-level', 'info'],
        ...(SNAPSHOT_DIR ? { env: { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${SNAPSHOT_DIR}` } } : {}),
      });
      const deadline = Date.now() + 900_000;
      while ((await receiver.routeCount()) < n) {
        if (Date.now() > deadline) throw new Error(`BIRD holds ${await receiver.routeCount()}/${n} routes after 900 s`);
        await new Promise((res) => setTimeout(res, 250));
      }
      const seconds = (performance.now() - started) / 1000;
      // A moment for what follows the last route (status objects, metrics) to settle into the figure too.
      await new Promise((res) => setTimeout(res, SETTLE_S * 1000));
      const res: SpeakerBenchResult = { routes: n, peakRssMB: procMemMB(speaker.pid, 'VmHWM'), rssMB: procMemMB(speaker.pid, 'VmRSS'), seconds };
      results.push(res);
      out(`    (${n.toLocaleString('en')}: ${await heapFigures(speaker)})`);
      if (SNAPSHOT_DIR) await heapSnapshot(speaker.pid, SNAPSHOT_DIR, out);
      const engine = engineRssMB.get(n);
      out(`  ${n.toLocaleString('en').padEnd(8)} ${`${objectsS.toFixed(0)} s`.padStart(9)} ${`${seconds.toFixed(1)} s`.padStart(18)} ` +
        `${`${res.peakRssMB.toFixed(0)} MB`.padStart(9)} ${`${res.rssMB.toFixed(0)} MB`.padStart(7)} ${(engine === undefined ? '-' : `${engine.toFixed(0)} MB`).padStart(13)}`);
      await speaker.stop();
      speaker = undefined;
      await env.close();
      env = undefined;
    }
    out('  (setup: time to write N Services with their status and EndpointSlices into the API server\'s data file and start it; engine alone: the routes part above)');
    return results;
  } finally {
    await speaker?.kill('SIGKILL');
    api?.close();
    await env?.close();
    await receiver?.stop();
    await lan.down();
    rmSync(dir, { recursive: true, force: true });
  }
}
