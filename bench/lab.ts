// Lab benchmark: `metallb lab up` (3 nodes, metallb-ts installed, as a user runs it): wall and CPU seconds until every
// node is Ready (target: under 10 s) and until lab up is done; then a 3-replica Deployment exposed as a LoadBalancer
// Service: until it is available and until its EXTERNAL-IP answers the client; then 30 pods on the 3 nodes: time until
// all are Ready, and memory (RSS of the processes in each pod's network namespace) per pod; the lab's own processes'
// RSS; `lab down` time. CPU seconds: the lab's cgroup (every component and pod) plus the `lab up` command itself.
// Run: `npm run bench -- lab` (as root; takes the same lock as the lab tests).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { acquireLabLock, BIN, metallb, runCmd, TEST_LAB } from '../test/helpers/lab.js';
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

/** CPU seconds of this process's waited-for children so far (cutime + cstime of /proc/self/stat, at 100 ticks/s). */
function childrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

interface LabUpTiming {
  code: number;
  stderr: string;
  /** From the start of `lab up` to its "nodes Ready: 3/3" line, and the lab's CPU seconds then. */
  readyMs?: number;
  readyCpu?: number;
  upMs: number;
  /** CPU seconds of the `lab up` command (and the tools it ran: ip, nft, ...). */
  commandCpu: number;
}

/** `metallb lab up`, noting when its progress says every node is Ready. */
function timedLabUp(args: string[], nodes: number, cgroup: string): Promise<LabUpTiming> {
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuSeconds();
    const t0 = Date.now();
    const child = spawn(process.execPath, [BIN, 'lab', 'up', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const r: Partial<LabUpTiming> = {};
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (r.readyMs === undefined && stderr.includes(`nodes Ready: ${nodes}/${nodes}`)) {
        r.readyMs = Date.now() - t0;
        r.readyCpu = labCpuSeconds(cgroup);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ ...r, code: code ?? 1, stderr, upMs: Date.now() - t0, commandCpu: childrenCpuSeconds() - cpu0 });
    });
  });
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
    // The first command after a change of the sources builds the CLI bundle (bin/bundle.mjs): not part of lab up.
    const tb = Date.now();
    await metallb(['--version']);
    const bundleMs = Date.now() - tb;
    const plan = makePlan({ name, nodes: 3 });
    const loadBefore = loadAverage();
    const up = await timedLabUp(['--name', name, '--nodes', '3', '--timeout', '300s'], 3, plan.cgroup);
    if (up.code !== 0) throw new Error(`lab up failed: ${up.stderr}`);
    const upCpu = labCpuSeconds(plan.cgroup);
    const status = JSON.parse((await metallb(['lab', 'status', '-o', 'json', '--name', name])).stdout) as LabStatusJson;
    const kc = status.kubeconfig;
    const t1 = Date.now();
    await kubectl(kc, ['create', 'deployment', 'bench', '--image=sysnet4admin/echo-hname', '--replicas=3']);
    await kubectl(kc, ['expose', 'deployment', 'bench', '--type=LoadBalancer', '--port=80']);
    let ip = '';
    await until('EXTERNAL-IP assigned', async () => {
      ip = await kubectl(kc, ['get', 'service', 'bench', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}']);
      return ip !== '';
    });
    const ipMs = Date.now() - t1;
    await until(`EXTERNAL-IP ${ip} answers the client`, async () => {
      const r = await runCmd('ip', ['netns', 'exec', status.client.netns, 'curl', '-sf', '--max-time', '1', `http://${ip}/`]);
      return r.code === 0 && r.stdout.length > 0;
    });
    const answerMs = Date.now() - t1;
    const answerCpu = labCpuSeconds(plan.cgroup);
    await until('3 replicas available', async () => (await availableReplicas(kc, 'bench')) >= 3);
    const deployMs = Date.now() - t1;
    const cpu3 = labCpuSeconds(plan.cgroup);

    await kubectl(kc, ['scale', 'deployment', 'bench', '--replicas=30']);
    const ready30Ms = await until('30 replicas available', async () => (await availableReplicas(kc, 'bench')) >= 30);
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
        `CLI bundle (bin/bundle.mjs) ready:             ${secs(bundleMs)}   (built when the sources changed, else only found)`,
        `lab up (3 nodes): every node Ready:            ${up.readyMs === undefined ? '?' : secs(up.readyMs)}   (target < 10 s; CPU: lab processes ${(up.readyCpu ?? NaN).toFixed(1)} s + lab up command ${up.commandCpu.toFixed(1)} s)`,
        `lab up done (metallb-ts installed, speakers Ready): ${secs(up.upMs)}   (CPU: lab processes ${upCpu.toFixed(1)} s)`,
        `then a 3-replica Deployment and a LoadBalancer Service (times from kubectl create):`,
        `  EXTERNAL-IP assigned:                        ${secs(ipMs)}   (${ip})`,
        `  EXTERNAL-IP answers the client:              ${secs(answerMs)}   (lab CPU ${answerCpu.toFixed(1)} s since lab up began)`,
        `  all 3 replicas available:                    ${secs(deployMs)}   (lab CPU ${cpu3.toFixed(1)} s since lab up began)`,
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
