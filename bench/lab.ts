// Lab benchmark: `metallb lab up --nodes 3 --no-loadbalancer` until every node is Ready, then a 3-replica Deployment
// until it is available (target: both under 10 s), then 30 pods on the 3 nodes: time until all are Ready, and memory
// (RSS of the processes in each pod's network namespace) per pod; the lab's own processes' RSS; `lab down` time.
// Run: `npm run bench -- lab` (as root; takes the same lock as the lab tests).
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { acquireLabLock, metallb, runCmd, TEST_LAB } from '../test/helpers/lab.js';
import type { LabStatusJson } from '../src/lab/status.js';
import { makePlan } from '../src/lab/plan.js';

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function rssMB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by everything in the lab's cgroup (its components and their pods; cgroup v1 or v2). */
function labCpuSeconds(cgroup: string): number {
  try {
    return Number(readFileSync(`/sys/fs/cgroup/cpuacct/${cgroup}/cpuacct.usage`, 'utf8')) / 1e9;
  } catch {
    try {
      const m = /usage_usec (\d+)/.exec(readFileSync(`/sys/fs/cgroup/${cgroup}/cpu.stat`, 'utf8'));
      return m ? Number(m[1]) / 1e6 : NaN;
    } catch {
      return NaN;
    }
  }
}

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function netnsPids(ns: string): Promise<number[]> {
  const r = await runCmd('ip', ['netns', 'pids', ns]);
  return r.stdout.split('\n').map(Number).filter((n) => n > 0);
}

async function kubectl(kubeconfig: string, args: string[]): Promise<string> {
  const r = await runCmd('kubectl', ['--kubeconfig', kubeconfig, ...args]);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 300_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`bench lab: ${what} not done after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function availableReplicas(kubeconfig: string, name: string): Promise<number> {
  const out = await kubectl(kubeconfig, ['get', 'deployment', name, '-o', 'jsonpath={.status.availableReplicas}']);
  return Number(out || 0);
}

export async function runLabBench(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('lab: skipped (needs root)\n');
    return;
  }
  const name = TEST_LAB;
  const release = await acquireLabLock();
  try {
    await metallb(['lab', 'down', '--name', name], { timeoutMs: 120_000 });
    const plan = makePlan({ name, nodes: 3 });
    const loadBefore = loadAverage();
    const t0 = Date.now();
    const up = await metallb(['lab', 'up', '--name', name, '--nodes', '3', '--no-loadbalancer', '--timeout', '300s'], { timeoutMs: 600_000 });
    const upMs = Date.now() - t0;
    if (up.code !== 0) throw new Error(`lab up failed: ${up.stderr}`);
    const upCpu = labCpuSeconds(plan.cgroup);
    const status = JSON.parse((await metallb(['lab', 'status', '-o', 'json', '--name', name])).stdout) as LabStatusJson;
    const kc = status.kubeconfig;
    await kubectl(kc, ['create', 'deployment', 'bench', '--image=sysnet4admin/echo-hname', '--replicas=3']);
    const deployMs = await until('3 replicas available', async () => (await availableReplicas(kc, 'bench')) >= 3);
    const total3 = Date.now() - t0;
    const cpu3 = labCpuSeconds(plan.cgroup);

    const t30 = Date.now();
    await kubectl(kc, ['scale', 'deployment', 'bench', '--replicas=30']);
    const ready30Ms = await until('30 replicas available', async () => (await availableReplicas(kc, 'bench')) >= 30);
    void t30;
    const cpu30 = labCpuSeconds(plan.cgroup) - cpu3;
    const podNs = readdirSync('/run/netns').filter((n) => n.startsWith(plan.podNetnsPrefix));
    const perPod: number[] = [];
    for (const ns of podNs) perPod.push((await netnsPids(ns)).reduce((s, p) => s + rssMB(p), 0));
    perPod.sort((a, b) => a - b);
    const mean = perPod.reduce((s, x) => s + x, 0) / Math.max(1, perPod.length);
    const procs = JSON.parse(readFileSync(`${status.kubeconfig.replace(/kubeconfig$/, '')}processes.json`, 'utf8')) as Array<{ name: string; pid: number | null }>;
    const comp = procs.map((p) => `${p.name} ${p.pid ? rssMB(p.pid).toFixed(0) : '-'} MB`).join(', ');

    const td = Date.now();
    const down = await metallb(['lab', 'down', '--name', name], { timeoutMs: 120_000 });
    const downMs = Date.now() - td;
    if (down.code !== 0) throw new Error(`lab down failed: ${down.stderr}`);

    process.stdout.write(
      [
        `machine load average before:                   ${loadBefore} (on ${cpus().length} CPUs)`,
        `lab up (3 nodes, every node Ready):            ${secs(upMs)}   (lab processes used ${upCpu.toFixed(1)} CPU s)`,
        `then a 3-replica Deployment available:         ${secs(deployMs)}   (up + Deployment: ${secs(total3)}, target < 10 s; ${cpu3.toFixed(1)} CPU s in all)`,
        `scaled to 30 pods on 3 nodes, all Ready:       ${secs(ready30Ms)}   (${cpu30.toFixed(1)} CPU s)`,
        `memory per pod (RSS of its processes):         mean ${mean.toFixed(1)} MB, min ${(perPod[0] ?? 0).toFixed(1)} MB, max ${(perPod.at(-1) ?? 0).toFixed(1)} MB over ${perPod.length} pods`,
        `lab processes (RSS):                           ${comp}`,
        `lab down:                                      ${secs(downMs)}`,
        '',
      ].join('\n'),
    );
  } finally {
    await metallb(['lab', 'down', '--name', name], { timeoutMs: 120_000 }).catch(() => undefined);
    release();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runLabBench();
