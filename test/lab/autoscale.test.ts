// Issue 9 end to end, in a lab: MetalLB's autoscaling tutorial. A Deployment of echo-hname with a CPU request behind a
// LoadBalancer Service, `metallb lab load` from the client on the Service's external address (through the layer 2
// speaker), `kubectl top`, and an HPA made by `kubectl autoscale --cpu-percent=50` that grows the Deployment to at
// least 3 pods within two minutes of the load, whose new pods join the EndpointSlice and answer through the external
// address, and shrinks it back once the load stops (the lab's downscale window shortened to 30 s). Beside it, an HPA
// on a Deployment without requests reports what Kubernetes reports.
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIN, labSkip, startLab, type Lab } from '../helpers/lab.js';

interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface HPA {
  status: { currentReplicas?: number; desiredReplicas: number; conditions?: Cond[] };
}

/** `metallb lab load` in the background; its output is collected; stop() is Ctrl-C. */
function startLoad(lab: Lab, url: string, args: string[]): { child: ChildProcess; output: () => string; stop: () => Promise<string> } {
  const child = spawn(process.execPath, [BIN, 'lab', 'load', url, ...args, '--name', lab.name], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      return out;
    },
  };
}

test('autoscaling behind the load-balancer: kubectl top, HPA up to 3+ pods answering on the external IP, back down', { skip: labSkip, timeout: 20 * 60_000 }, async (t) => {
  const lab = await startLab(t, { nodes: 2, upArgs: ['--hpa-downscale-stabilization', '30s'] });
  const k = (args: string[]): Promise<string> => lab.kubectlOk(args, { timeoutMs: 60_000 });
  const hpa = async (name: string): Promise<HPA> => lab.getJson<HPA>(['get', 'hpa', name]);
  const cond = (h: HPA, type: string): Cond | undefined => h.status.conditions?.find((c) => c.type === type);
  const replicas = async (): Promise<number> => Number((await k(['get', 'deployment', 'lb-hname-pods', '-o', 'jsonpath={.spec.replicas}'])).trim());

  await k(['create', 'deployment', 'lb-hname-pods', '--image=sysnet4admin/echo-hname']);
  await k(['set', 'resources', 'deployment', 'lb-hname-pods', '--requests=cpu=50m', '--limits=cpu=200m']);
  await k(['expose', 'deployment', 'lb-hname-pods', '--type=LoadBalancer', '--name=lb-hname-svc', '--port=80']);
  await k(['create', 'deployment', 'noreq', '--image=sysnet4admin/echo-hname']);
  await k(['autoscale', 'deployment', 'noreq', '--min=1', '--max=3', '--cpu-percent=50']);

  let ip = '';
  await lab.waitFor('the Service address and one pod (with its request) answering on it from the client', async () => {
    ip = (await k(['get', 'svc', 'lb-hname-svc', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim();
    if (!ip) return 'no address yet';
    const pods = (await lab.pods('default', 'app=lb-hname-pods')).filter((p) => (p.spec?.containers as { resources?: { requests?: { cpu?: string } } }[])[0]?.resources?.requests?.cpu === '50m');
    if (pods.length !== 1) return `${pods.length} pods with the request`;
    const body = (await lab.curl('client', `http://${ip}/`)).trim();
    return pods.some((p) => p.metadata.name === body) ? true : `answered by ${body}`;
  }, 180_000);

  await k(['autoscale', 'deployment', 'lb-hname-pods', '--min=1', '--max=4', '--cpu-percent=50']);
  // 40 requests/s at 2 ms of CPU each is ~80m: 160 % of the 50m request against a 50 % target
  const load = startLoad(lab, `http://${ip}/`, ['--rate', '40', '--concurrency', '8', '--duration', '300s']);
  t.after(() => load.stop());
  const loadStarted = Date.now();

  await lab.waitFor('kubectl top pods: the loaded pod with CPU', async () => {
    const r = await lab.kubectl(['top', 'pods']);
    if (r.code !== 0) return r.stderr.trim();
    const m = /^lb-hname-pods-\S+\s+(\d+)m\s+\d+Mi/m.exec(r.stdout);
    return m && Number(m[1]) > 0 ? true : r.stdout;
  }, 120_000);

  await lab.waitFor('at least 3 replicas', async () => {
    const n = await replicas();
    return n >= 3 ? true : `${n} replicas; hpa: ${(await k(['get', 'hpa', 'lb-hname-pods'])).trim()}`;
  }, 120_000 - (Date.now() - loadStarted), 2000);
  const scaledIn = (Date.now() - loadStarted) / 1000;
  t.diagnostic(`scaled to >= 3 replicas ${scaledIn.toFixed(0)} s after the load started`);
  // the HPA writes its status just after the scale
  await lab.waitFor('ScalingActive True ValidMetricFound', async () => {
    const c = cond(await hpa('lb-hname-pods'), 'ScalingActive');
    return c?.reason === 'ValidMetricFound' ? true : JSON.stringify(c);
  }, 60_000, 1000);
  const rescales = (): Promise<string> =>
    k(['get', 'events', '--field-selector', 'involvedObject.name=lb-hname-pods,reason=SuccessfulRescale', '-o', 'jsonpath={range .items[*]}{.message}{"\\n"}{end}']);
  await lab.waitFor('the SuccessfulRescale event of the scale up', async () => {
    const events = await rescales();
    return /^New size: [34]; reason: cpu resource utilization \(percentage of request\) above target$/m.test(events) ? true : events;
  }, 60_000, 2000);

  const n = await replicas();
  await lab.waitFor(`${n} ready endpoints in the EndpointSlice`, async () => {
    const slices = await lab.list('endpointslices', 'default', 'kubernetes.io/service-name=lb-hname-svc');
    const ready = slices.flatMap((s) => (s.endpoints as { conditions?: { ready?: boolean } }[] | undefined) ?? []).filter((e) => e.conditions?.ready === true).length;
    return ready >= n ? true : `${ready} ready`;
  }, 180_000);
  await lab.waitFor('the load answered by 3 or more pods through the external address', async () => {
    const lines = load.output().trim().split('\n').slice(-5);
    return lines.some((l) => Number(/pods (\d+):/.exec(l)?.[1] ?? 0) >= 3) ? true : lines.join(' | ');
  }, 120_000);

  await lab.waitFor('kubectl top pods: every pod of the Deployment with CPU', async () => {
    const r = await lab.kubectl(['top', 'pods', '-l', 'app=lb-hname-pods']);
    if (r.code !== 0) return r.stderr.trim();
    const rows = [...r.stdout.matchAll(/^(lb-hname-pods-\S+)\s+(\d+)m\s/gm)];
    return rows.length >= 3 && rows.every((m) => Number(m[2]) > 0) ? true : r.stdout;
  }, 120_000);
  // REPLICAS is the HPA's status.currentReplicas, written by its next sync (up to 15 s after the scale)
  let table = '';
  await lab.waitFor('kubectl get hpa: REPLICAS 3 or 4', async () => {
    table = await k(['get', 'hpa']);
    return /^lb-hname-pods\s+Deployment\/lb-hname-pods\s+cpu: \d+%\/50%\s+1\s+4\s+[34]\s+/m.test(table) ? true : table;
  }, 90_000, 2000);
  assert.match(table, /^NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE$/m);

  // an HPA on a Deployment without CPU requests (until metrics-server has its pod, the failure is that no metrics came)
  await lab.waitFor('the noreq HPA reporting the missing request', async () => {
    const c = cond(await hpa('noreq'), 'ScalingActive');
    return c?.status === 'False' && /missing request/.test(c.message) ? true : JSON.stringify(c);
  }, 120_000, 2000);
  const nr = await hpa('noreq');
  table = await k(['get', 'hpa']);
  assert.equal(cond(nr, 'ScalingActive')?.status, 'False');
  assert.equal(cond(nr, 'ScalingActive')?.reason, 'FailedGetResourceMetric');
  assert.match(cond(nr, 'ScalingActive')?.message ?? '', /^the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container echo-hname of Pod noreq-\S+$/);
  assert.match(table, /^noreq\s+Deployment\/noreq\s+cpu: <unknown>\/50%\s+1\s+3\s+1\s+/m);

  const out = await load.stop();
  assert.match(out, /^summary: \d+ requests in [\d.]+ s .*stopped by signal$/m, out.slice(-800));
  const answered = Number(/answered by (\d+) pod\(s\)/.exec(out)?.[1] ?? 0);
  assert.ok(answered >= 3, `the load was answered by ${answered} pods`);

  await lab.waitFor('back to 1 replica once the load is gone (30 s window)', async () => {
    const n1 = await replicas();
    return n1 === 1 ? true : `${n1} replicas; hpa: ${(await k(['get', 'hpa', 'lb-hname-pods'])).trim()}`;
  }, 300_000, 2000);
  await lab.waitFor('the SuccessfulRescale event of the scale down', async () => {
    const events = await rescales();
    return /^New size: 1; reason: All metrics below target$/m.test(events) ? true : events;
  }, 60_000, 2000);
});
