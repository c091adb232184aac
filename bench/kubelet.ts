// Kubelet figures (root): how fast a built-in image starts and how much memory it holds, and for one node with the
// dev API server: 30 echo-hname pods created at once until all are Ready, memory per pod, the kubelet's own memory.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { ImageStore } from '../src/cluster/kubelet/image-store.js';
import { createPod, startTestNode, waitFor } from '../test/cluster/kubelet/harness.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

function get(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

async function imageStartup(path: string, port: number): Promise<{ ms: number; rssMiB: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [path], { env: { ...process.env, METALLB_LAB_HTTP_PORT: String(port) }, stdio: 'ignore' });
  let ms = NaN;
  for (;;) {
    if ((await get(port)) === 200) {
      ms = performance.now() - started;
      break;
    }
    if (performance.now() - started > 10_000) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  const rss = rssKiB(child.pid!) / 1024;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  return { ms, rssMiB: rss };
}

export async function runKubeletBench(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('kubelet: skipped (needs root)\n');
    return;
  }
  const cache = mkdtempSync(join(tmpdir(), 'metallb-bench-images-'));
  try {
    const store = new ImageStore(cache);
    for (const program of ['nginx', 'echo-hname'] as const) {
      const img = await store.get(program);
      const runs: { ms: number; rssMiB: number }[] = [];
      for (let i = 0; i < 7; i++) runs.push(await imageStartup(img.path, 18600 + i));
      process.stdout.write(`image ${program}: start to first answer median ${median(runs.map((r) => r.ms)).toFixed(0)} ms, RSS ${median(runs.map((r) => r.rssMiB)).toFixed(1)} MiB (node ${process.version})\n`);
    }
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }

  const t = await startTestNode();
  try {
    const n = 30;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: n }, (_, i) => createPod(t, { metadata: { name: `bench-${i}`, namespace: 'default' }, spec: { containers: [{ name: 'web', image: 'sysnet4admin/echo-hname' }] } })),
    );
    const firstReady: number[] = [];
    await waitFor(
      'all pods Ready',
      async () => {
        const list = await t.client.get<{ items: { status?: { conditions?: { type: string; status: string }[] } }[] }>('/api/v1/namespaces/default/pods');
        const ready = list.items.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
        if (ready > 0 && firstReady.length === 0) firstReady.push(performance.now() - started);
        return ready === n;
      },
      300_000,
      100,
    );
    const allMs = performance.now() - started;
    // Every pod answers over its routed address.
    const ips = (await t.client.get<{ items: { status?: { podIP?: string } }[] }>('/api/v1/namespaces/default/pods')).items.map((p) => p.status?.podIP ?? '');
    const answered = ips.filter((ip) => t.inNode(`curl -s -m 2 http://${ip}/`).out.startsWith('bench-')).length;
    await new Promise((r) => setTimeout(r, 2000));
    const res = await fetch(`http://${t.nodeIPs[0]}:10250/stats/summary`);
    const summary = JSON.parse(await res.text()) as { pods: { memory?: { workingSetBytes: number; rssBytes: number } }[] };
    const ws = summary.pods.map((p) => p.memory?.workingSetBytes ?? 0);
    const rss = summary.pods.map((p) => p.memory?.rssBytes ?? 0);
    const kubeletRss = rssKiB(t.kubelet.child.pid!) / 1024;
    process.stdout.write(
      `kubelet: ${n} echo-hname pods created at once on one node: first Ready after ${(firstReady[0]! / 1000).toFixed(2)} s, all Ready after ${(allMs / 1000).toFixed(2)} s; ${answered}/${n} answered on their pod IPs\n` +
        `kubelet: memory per pod (cgroup working set) median ${(median(ws) / 2 ** 20).toFixed(1)} MiB, RSS median ${(median(rss) / 2 ** 20).toFixed(1)} MiB; the kubelet process itself ${kubeletRss.toFixed(0)} MiB RSS\n`,
    );
  } finally {
    await t.cleanup();
  }
}
