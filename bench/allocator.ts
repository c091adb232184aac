// Allocator benchmark: converge 10,000 and 100,000 LoadBalancer Services over a mix of IPv4 ranges, an IPv6 /64
// (dual-stack Services) and shared addresses (sharing keys). Each size runs in a fresh child process so that its
// peak RSS is its own. Targets: 100k in < 2 s, < 300 MB RSS, flat per-service cost.
//   node --import tsx bench/allocator.ts            (both sizes)
//   node --import tsx bench/allocator.ts --child N  (one size, prints a JSON line; used by the parent)
import { execFile } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Pool } from '../src/config/types.js';
import type { Service } from '../src/k8s/types.js';
import { parseIP, parsePrefix, summarizeRange, type Prefix } from '../src/net/ip.js';
import { ServiceAllocator, restoreOrder } from '../src/allocator/index.js';

export interface AllocatorBenchResult {
  services: number;
  allocated: number;
  pending: number;
  /** First allocation of every Service (wall clock). */
  allocateMs: number;
  /** The same, process CPU time (user + system): meaningful on a loaded machine. */
  allocateCpuMs: number;
  /** A second converge of every Service with its status written back (steady-state reprocess-all). */
  reconvergeMs: number;
  /** A fresh allocator restoring every Service from its status, in restoreOrder (separate process). */
  restoreMs: number;
  /** Peak RSS of the process once every Service is allocated. */
  maxRssMB: number;
}

const SIZES = [10_000, 100_000];

function prefixes(...specs: string[]): Prefix[] {
  return specs.flatMap((s) => {
    if (s.includes('/')) return [parsePrefix(s)!];
    const [a, b] = s.split('-');
    return summarizeRange(parseIP(a!)!, parseIP(b!)!);
  });
}

export function benchPools(): Pool[] {
  const base = { autoAssign: true, avoidBuggyIPs: false, labels: {} };
  return [
    // Pinned to one namespace, tried first for it.
    { ...base, name: 'team', addresses: ['10.3.0.0/20'], prefixes: prefixes('10.3.0.0/20'),
      serviceAllocation: { priority: 1, restrictsNamespaces: true, namespaces: new Set(['team-0']), serviceSelectors: [] } },
    // Plain IPv4 pools: a CIDR, a range (summarized into several prefixes) with avoidBuggyIPs.
    { ...base, name: 'a-v4', addresses: ['10.0.0.0/16'], prefixes: prefixes('10.0.0.0/16') },
    { ...base, name: 'b-range', addresses: ['10.1.0.10-10.1.255.200'], prefixes: prefixes('10.1.0.10-10.1.255.200'), avoidBuggyIPs: true },
    // Dual-stack pool with an IPv6 /64: only through the address-pool annotation.
    { ...base, name: 'dual', autoAssign: false, addresses: ['10.2.0.0/16', '2001:db8:1::/64'], prefixes: prefixes('10.2.0.0/16', '2001:db8:1::/64') },
  ];
}

/** Service number i of the mix: 60 % plain IPv4, 15 % dual-stack (RequireDualStack / PreferDualStack), 10 % IPv6, 15 % shared. */
export function benchService(i: number): Service {
  const r = i % 20;
  const svc: Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: `team-${i % 50}`, annotations: {}, labels: { app: `app-${i % 100}` } },
    spec: { type: 'LoadBalancer', ports: [{ port: 8000 + (i % 1000), protocol: 'TCP' }], clusterIPs: ['10.96.0.1'] },
  };
  const spec = svc.spec!;
  const ann = svc.metadata!.annotations!;
  if (r < 2) {
    spec.ipFamilyPolicy = 'RequireDualStack';
    spec.clusterIPs = ['10.96.0.1', 'fd00::1'];
    ann['metallb.io/address-pool'] = 'dual';
  } else if (r < 3) {
    spec.ipFamilyPolicy = 'PreferDualStack';
    spec.ipFamilies = ['IPv6', 'IPv4'];
    spec.clusterIPs = ['fd00::1', '10.96.0.1'];
    ann['metallb.io/address-pool'] = 'dual';
  } else if (r < 5) {
    spec.clusterIPs = ['fd00::1'];
    ann['metallb.io/address-pool'] = 'dual';
  } else if (r < 8) {
    // Groups of up to four Services sharing one address: TCP/80, TCP/443, TCP/53, UDP/53.
    const slot = Math.floor(i / 20) * 3 + (r - 5);
    ann['metallb.io/allow-shared-ip'] = `share-${slot % 5000}`;
    spec.ports = [SHARED_PORTS[Math.floor(slot / 5000) % 4]!];
  }
  return svc;
}
const SHARED_PORTS = [{ port: 80, protocol: 'TCP' }, { port: 443, protocol: 'TCP' }, { port: 53, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }];

const withStatus = (s: Service, ingress: readonly string[] | undefined): Service => {
  if (ingress && ingress.length > 0) s.status = { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } };
  return s;
};

/** JIT warm-up on a throwaway allocator, so that both sizes measure steady code (not compilation). */
function warmUp(): void {
  const a = new ServiceAllocator();
  a.setPools(benchPools());
  for (let round = 0; round < 2; round++) for (let i = 0; i < 3000; i++) a.converge(withStatus(benchService(i), a.converge(benchService(i)).ingress));
}

/** One size, in this process: allocate every Service, then converge each again with its status written back. */
export function benchOnce(n: number): AllocatorBenchResult {
  warmUp();
  const alloc = new ServiceAllocator();
  alloc.setPools(benchPools());
  // Only what the controller would write back is kept; Service objects are built on the fly, as if read from a cache.
  const ingress = new Array<readonly string[]>(n);
  let allocated = 0;
  let t = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const r = alloc.converge(benchService(i));
    if (r.ingress.length > 0) allocated++;
    ingress[i] = r.ingress;
  }
  const allocateMs = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const allocateCpuMs = (cpu.user + cpu.system) / 1000;
  const afterAllocRss = process.resourceUsage().maxRSS / 1024;

  t = performance.now();
  for (let i = 0; i < n; i++) alloc.converge(withStatus(benchService(i), ingress[i]));
  const reconvergeMs = performance.now() - t;
  return { services: n, allocated, pending: n - allocated, allocateMs, allocateCpuMs, reconvergeMs, restoreMs: 0, maxRssMB: afterAllocRss };
}

/** Startup restore: a fresh allocator converging every Service (status written) in restoreOrder. */
export function benchRestore(n: number): number {
  warmUp();
  let alloc: ServiceAllocator | undefined = new ServiceAllocator();
  alloc.setPools(benchPools());
  const services: Service[] = [];
  for (let i = 0; i < n; i++) {
    const s = benchService(i);
    services.push(withStatus(s, alloc.converge(s).ingress));
  }
  alloc = undefined;
  const fresh = new ServiceAllocator();
  fresh.setPools(benchPools());
  const t = performance.now();
  for (const s of restoreOrder(services)) fresh.converge(s);
  return performance.now() - t;
}

function runChild<T>(mode: '--child' | '--child-restore', n: number): Promise<T> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', self, mode, String(n)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`allocator bench child (${n}) failed: ${stderr || err.message}`));
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as T);
      } catch {
        reject(new Error(`allocator bench child (${n}) printed no result: ${stdout}`));
      }
    });
  });
}

const fmt = (x: number, digits = 1): string => x.toFixed(digits);

export async function runAllocatorBench(): Promise<void> {
  const results: AllocatorBenchResult[] = [];
  for (const n of SIZES) {
    const r = await runChild<AllocatorBenchResult>('--child', n);
    r.restoreMs = await runChild<number>('--child-restore', n);
    results.push(r);
  }
  const lines = ['allocator: converge N LoadBalancer Services (60% IPv4, 15% dual-stack /64, 10% IPv6, 15% shared), fresh process per size'];
  lines.push('  services   allocated  pending   alloc ms   (CPU ms)   services/s   µs/service   reconverge µs/svc   restore µs/svc   peak RSS MB');
  for (const r of results) {
    lines.push(
      `  ${String(r.services).padStart(8)}   ${String(r.allocated).padStart(9)}  ${String(r.pending).padStart(7)}   ${fmt(r.allocateMs).padStart(8)}   ${fmt(r.allocateCpuMs).padStart(8)}   ` +
      `${fmt(r.services / (r.allocateMs / 1000), 0).padStart(10)}   ${fmt((r.allocateMs * 1000) / r.services, 2).padStart(10)}   ` +
      `${fmt((r.reconvergeMs * 1000) / r.services, 2).padStart(17)}   ${fmt((r.restoreMs * 1000) / r.services, 2).padStart(14)}   ${fmt(r.maxRssMB).padStart(11)}`,
    );
  }
  const small = results[0]!;
  const big = results[results.length - 1]!;
  const ratio = (big.allocateMs / big.services) / (small.allocateMs / small.services);
  const cpuRatio = (big.allocateCpuMs / big.services) / (small.allocateCpuMs / small.services);
  lines.push(`  per-service cost ratio ${big.services / 1000}k vs ${small.services / 1000}k: ${fmt(ratio, 2)} wall, ${fmt(cpuRatio, 2)} CPU (1.00 = flat)`);
  const ok = big.allocateMs < 2000 && big.maxRssMB < 300;
  lines.push(`  targets (${big.services / 1000}k < 2 s, < 300 MB): ${ok ? 'met' : 'NOT met'}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const i = process.argv.indexOf('--child');
  const j = process.argv.indexOf('--child-restore');
  if (i >= 0) {
    process.stdout.write(`${JSON.stringify(benchOnce(Number(process.argv[i + 1])))}\n`);
  } else if (j >= 0) {
    process.stdout.write(`${JSON.stringify(benchRestore(Number(process.argv[j + 1])))}\n`);
  } else {
    await runAllocatorBench();
  }
}
