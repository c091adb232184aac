// Controller benchmark: dev API server and `metallb controller` as child processes; 1,000 then 10,000 LoadBalancer
// Services created through the API (concurrent requests); time until every one has an address (seen through a
// watch); the controller's peak RSS (VmHWM). Then a controller restart with everything assigned (time to restore,
// number of Service writes: expected 0), and the deletion of the 10,000 (time until every address is released).
// Run: `npm run bench -- controller` or `node --import tsx bench/controller.ts`. Targets: 10,000 in < 30 s, < 250 MB.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KubeClient, loadKubeConfig } from '../src/k8s/client.js';
import type { Service } from '../src/k8s/types.js';
import { kubectlOk, startDevServer } from '../test/helpers/devserver.js';
import { procMemMB } from './lib.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NS = 'metallb-system';

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

interface Ctl {
  child: ChildProcess;
  metricsPort(): Promise<number>;
  stop(): Promise<void>;
}

function startController(kubeconfig: string): Ctl {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'metallb.js'), 'controller', '--kubeconfig', kubeconfig, '--metrics-port', '0', '--health-probe-port', '0', '--webhook-mode', 'disabled', '--log-level', 'info'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let buf = '';
  let port: number | undefined;
  const logFile = process.env.BENCH_CONTROLLER_LOG;
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    if (logFile) appendFileSync(logFile, s);
    if (port !== undefined) return;
    buf += s;
    const m = /"port":(\d+),"endpoint":"metrics"/.exec(buf);
    if (m) port = Number(m[1]);
    if (buf.length > 100_000) buf = buf.slice(-10_000);
  });
  return {
    child,
    metricsPort: async () => {
      while (port === undefined) {
        if (child.exitCode !== null) throw new Error(`controller exited ${child.exitCode}: ${buf}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return port;
    },
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

/** Counts Services (in namespaces starting with `bench-`) that have an ingress IP, through a watch (resumed if it ends). */
function watchAssigned(api: KubeClient): { count(): number; stop(): void } {
  const assigned = new Set<string>();
  let rv: string | undefined;
  let stopped = false;
  let handle: { abort(): void } | undefined;
  const run = (): void => {
    const h = api.watch('/api/v1/services', { allowWatchBookmarks: true, resourceVersion: rv }, (raw) => {
      const ev = raw as { type: string; object: Service };
      const s = ev.object;
      if (s.metadata?.resourceVersion) rv = s.metadata.resourceVersion;
      if (ev.type === 'ERROR') rv = undefined;
      const ns = s.metadata?.namespace ?? '';
      if (!ns.startsWith('bench-')) return;
      const key = `${ns}/${s.metadata?.name}`;
      if (ev.type === 'DELETED') assigned.delete(key);
      else if ((s.status?.loadBalancer?.ingress ?? []).some((i) => i.ip)) assigned.add(key);
    });
    handle = h;
    h.done.catch(() => undefined).finally(() => {
      if (!stopped) setTimeout(run, 200);
    });
  };
  run();
  return {
    count: () => assigned.size,
    stop: () => {
      stopped = true;
      handle?.abort();
    },
  };
}

async function createServices(api: KubeClient, ns: string, n: number, concurrency = 32): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await api.post(`/api/v1/namespaces/${ns}/services`, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `svc-${i}`, namespace: ns },
        spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, selector: { app: `a${i}` }, ports: [{ port: 80, protocol: 'TCP' }] },
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function runControllerBench(): Promise<void> {
  const out = (s: string): void => void process.stdout.write(`${s}\n`);
  const srv = await startDevServer({ logLevel: 'warn', nodePortRange: '1024-65535' });
  let ctl: Ctl | undefined;
  const api = new KubeClient(loadKubeConfig(srv.kubeconfig), { maxSockets: 64 });
  try {
    const crdDir = join(ROOT, 'deploy', 'crds');
    const crds = readdirSync(crdDir).filter((f) => f.endsWith('.yaml')).sort().map((f) => readFileSync(join(crdDir, f), 'utf8')).join('\n---\n');
    await kubectlOk(['create', 'namespace', NS], srv.kubeconfig);
    await kubectlOk(['apply', '-f', '-'], srv.kubeconfig, { input: crds });
    await kubectlOk(['apply', '-f', '-'], srv.kubeconfig, {
      input: `apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bench, namespace: ${NS}}\nspec:\n  addresses: [10.0.0.0/16]\n`,
    });
    ctl = startController(srv.kubeconfig);
    const port = await ctl.metricsPort();
    await until('config loaded', async () => (await metric(port, 'metallb_k8s_client_config_loaded_bool').catch(() => 0)) === 1, 60_000, 100);
    const pid = ctl.child.pid!;
    const watch = watchAssigned(api);
    out(`controller pid ${pid}, RSS after start ${procMemMB(pid, 'VmRSS').toFixed(0)} MB`);
    let total = 0;
    for (const n of [1_000, 10_000]) {
      const ns = `bench-${n}`;
      await api.post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      const t0 = Date.now();
      const created = createServices(api, ns, n).then(() => Date.now() - t0);
      total += n;
      await until(`${n} services assigned`, () => watch.count() >= total, 180_000);
      const settled = Date.now() - t0;
      const createMs = await created;
      out(
        `${n.toLocaleString('en-US')} services: created in ${(createMs / 1000).toFixed(1)} s, all assigned ${(settled / 1000).toFixed(1)} s after the first create ` +
          `(${Math.round((n * 1000) / settled)}/s); controller RSS ${procMemMB(pid, 'VmRSS').toFixed(0)} MB, peak ${procMemMB(pid, 'VmHWM').toFixed(0)} MB`,
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
    const evs = await api.get<{ items: { reason: string }[] }>('/api/v1/namespaces/bench-10000/events');
    out(`IPAllocated events recorded for the 10,000: ${evs.items.filter((e) => e.reason === 'IPAllocated').length}`);
    const updates = await metric(port, 'metallb_k8s_client_updates_total');
    const errors = await metric(port, 'metallb_k8s_client_update_errors_total');
    out(`writes: ${updates} updates, ${errors} update errors (conflicts included)`);
    out(`CPU used so far: controller ${cpuSeconds(pid).toFixed(1)} s, dev API server ${cpuSeconds(srv.pid).toFixed(1)} s`);
    const peak = procMemMB(pid, 'VmHWM');
    await ctl.stop();

    // Restart with everything assigned: the first pass must claim every address again and write nothing.
    const t1 = Date.now();
    ctl = startController(srv.kubeconfig);
    const pid2 = ctl.child.pid!;
    const port2 = await ctl.metricsPort();
    await until('restarted controller loaded its config', async () => (await metric(port2, 'metallb_k8s_client_config_loaded_bool').catch(() => 0)) === 1, 60_000, 100);
    const loadedAfter = Date.now() - t1;
    await until('restarted controller restored every address', async () => (await metric(port2, 'metallb_allocator_addresses_in_use_total{pool="bench"}')) === total, 60_000, 100);
    const restoredAfter = Date.now() - t1;
    await new Promise((r) => setTimeout(r, 2000)); // time to (not) write anything
    const writes = await metric(port2, 'metallb_k8s_client_updates_total');
    out(
      `restart with ${total.toLocaleString('en-US')} assigned services: config loaded ${(loadedAfter / 1000).toFixed(1)} s and every address restored ` +
        `${(restoredAfter / 1000).toFixed(1)} s after the process started; ${writes} service writes (0 = no churn)`,
    );

    // Delete the 10,000: every deletion frees an address and asks for a reprocess of all Services (coalesced).
    {
      const cpu0 = cpuSeconds(pid2);
      const t0 = Date.now();
      let next = 0;
      const n = 10_000;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < n) {
            const i = next++;
            await api.delete(`/api/v1/namespaces/bench-10000/services/svc-${i}`);
          }
        }),
      );
      const deleted = Date.now() - t0;
      await until('addresses released', async () => (await metric(port2, 'metallb_allocator_addresses_in_use_total{pool="bench"}')) === 1000, 180_000, 100);
      out(
        `deleted 10,000 services in ${(deleted / 1000).toFixed(1)} s; all addresses released ${((Date.now() - t0) / 1000).toFixed(1)} s after the first delete; ` +
          `controller CPU ${(cpuSeconds(pid2) - cpu0).toFixed(1)} s, peak RSS of the restarted controller ${procMemMB(pid2, 'VmHWM').toFixed(0)} MB`,
      );
    }
    watch.stop();
    out(`controller peak RSS (VmHWM) creating 11,000 services: ${peak.toFixed(0)} MB (target < 250 MB)`);
  } finally {
    await ctl?.stop();
    api.close();
    await srv.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runControllerBench();
}
