// `metallb cluster kubelet`: the lab's kubelet for one node (see docs/kubelet.md). Flags follow the upstream kubelet's
// names where one exists.
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, isLogLevel, type LogLevel } from '../log.js';
import { errorText } from '../k8s/client.js';
import { parseIP } from '../net/ip.js';
import { parsePodCIDRs } from '../cluster/kubelet/ipam.js';
import { parseTaints } from '../cluster/kubelet/node.js';
import { parseQuantity } from '../cluster/kubelet/quantity.js';
import { labCgroupOfSelf } from '../cluster/kubelet/cgroups.js';
import { parseDuration } from './duration.js';
import { clusterGroup } from './cluster.js';

interface Flags {
  kubeconfig?: string;
  nodeName: string;
  nodeIp: string[];
  podCidr: string[];
  rootDir: string;
  netnsPrefix: string;
  port: number;
  address?: string[];
  cgroupRoot?: string;
  maxPods: number;
  nodeLabels: Record<string, string>;
  registerWithTaints: string[];
  cpuCapacity?: number;
  memoryCapacity?: number;
  restartBackoff: number;
  restartBackoffMax: number;
  imageCpuPerRequest: number;
  containerLogMaxSize: number;
  nodeStatusUpdateFrequency: number;
  nodeStatusReportFrequency: number;
  nodeLeaseDurationSeconds: number;
  statsInterval: number;
  shutdownGracePeriod: number;
  teardownOnExit?: boolean;
  exitWithStdin?: boolean;
  logLevel: LogLevel;
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function ipList(v: string): string[] {
  const ips = list(v);
  if (ips.length === 0) throw new InvalidArgumentError('needs at least one address');
  for (const ip of ips) if (!parseIP(ip)) throw new InvalidArgumentError(`"${ip}" is not an IP address`);
  return ips;
}

function cidrList(v: string): string[] {
  const l = list(v);
  try {
    parsePodCIDRs(l);
  } catch (err) {
    throw new InvalidArgumentError(errorText(err));
  }
  return l;
}

function labels(v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list(v)) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`"${kv}" is not key=value`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${v}" is not a positive integer`);
  return n;
}

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`"${v}" is not a port number (0 = any free port)`);
  return n;
}

function quantity(v: string): number {
  try {
    const q = parseQuantity(v);
    if (!(q > 0)) throw new Error('must be positive');
    return q;
  } catch (err) {
    throw new InvalidArgumentError(errorText(err));
  }
}

function nonNegDuration(v: string): number {
  const ms = parseDuration(v);
  if (ms < 0) throw new InvalidArgumentError('must not be negative');
  return ms;
}

/** Adds `kubelet` to the `metallb cluster` command group. */
export function registerKubelet(program: Command): void {
  clusterGroup(program)
    .command('kubelet')
    .description('run the lab kubelet for one node: Node registration and Lease, pods as processes in network namespaces, volumes, probes, restarts, logs and stats on :10250')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account)')
    .option('--node-name <name>', 'name of the Node object', os.hostname())
    .requiredOption('--node-ip <ips>', "the node's addresses, comma-separated (InternalIP; the first is the primary host IP)", ipList)
    .requiredOption('--pod-cidr <cidrs>', 'pod address ranges of this node, comma-separated (at most one IPv4 and one IPv6)', cidrList)
    .option('--root-dir <dir>', 'state: pod directories, volumes, container logs, IPAM, built-in images', '/var/lib/metallb-kubelet')
    .option('--netns-prefix <prefix>', 'prefix of pod network namespace names (the rest is 8 hex digits of the pod uid)', 'mlb-pod-')
    .option('--port <n>', 'port of the kubelet HTTP endpoint (0 = any free port)', port, 10250)
    .option('--address <ips>', 'addresses the endpoint listens on, comma-separated (default: the node IPs)', ipList)
    .option('--cgroup-root <name>', "cgroup directory shared by the lab's kubelets; this node's pods go to <cgroup-root>/<node-name> (default: the lab cgroup the kubelet runs in, else metallb-lab)")
    .option('--max-pods <n>', 'pods capacity reported on the Node', positiveInt, 110)
    .option('--node-labels <k=v,...>', 'extra labels of the Node', labels, {})
    .option('--register-with-taints <taints>', 'taints of a newly registered Node: key[=value]:Effect, comma-separated', list, [])
    .option('--cpu-capacity <cores>', 'CPU capacity to report (default: the machine\u2019s CPUs)', quantity)
    .option('--memory-capacity <bytes>', 'memory capacity to report, e.g. 4Gi (default: the machine\u2019s memory)', quantity)
    .addOption(new Option('--restart-backoff <d>', 'first container restart back-off; doubles up to --restart-backoff-max').argParser(nonNegDuration).default(10_000, '10s'))
    .addOption(new Option('--restart-backoff-max <d>', 'longest container restart back-off').argParser(nonNegDuration).default(300_000, '5m'))
    .addOption(new Option('--image-cpu-per-request <d>', 'CPU time the built-in web images spend per request (so load shows in metrics)').argParser(nonNegDuration).default(2, '2ms'))
    .option('--container-log-max-size <bytes>', 'container log file size before it is rotated once', quantity, 10 * 1024 * 1024)
    .addOption(new Option('--node-status-update-frequency <d>', 'how often node status is computed').argParser(nonNegDuration).default(10_000, '10s'))
    .addOption(new Option('--node-status-report-frequency <d>', 'node status is written at least this often (and at once on a change)').argParser(nonNegDuration).default(300_000, '5m'))
    .option('--node-lease-duration-seconds <n>', 'Lease duration; the kubelet renews it every quarter of it', positiveInt, 40)
    .addOption(new Option('--stats-interval <d>', 'CPU sampling interval for /stats/summary usageNanoCores').argParser(nonNegDuration).default(10_000, '10s'))
    .addOption(new Option('--shutdown-grace-period <d>', 'grace period of pods when the kubelet stops').argParser(nonNegDuration).default(5_000, '5s'))
    .option('--teardown-on-exit', 'on exit also remove pod sandboxes, addresses and cgroups (otherwise a restart adopts them)')
    .option('--exit-with-stdin', 'shut down when stdin closes (test harnesses)')
    .addOption(
      new Option('--log-level <level>', 'all, debug, info, warn, error or none').default('info').argParser((v: string) => {
        if (!isLogLevel(v)) throw new InvalidArgumentError(`"${v}" is not one of all, debug, info, warn, error, none`);
        return v;
      }),
    )
    .action(async (f: Flags) => {
      if (process.getuid?.() !== 0) throw new Error('metallb cluster kubelet must run as root (it creates network namespaces, veths, mounts and cgroups)');
      const log = createLogger('kubelet', f.logLevel);
      mkdirSync(f.rootDir, { recursive: true });
      // Loaded here, not at the top: the other `metallb cluster` commands need not load the kubelet.
      const { Kubelet } = await import('../cluster/kubelet/kubelet.js');
      const kubelet = new Kubelet({
        ...(f.kubeconfig ? { kubeconfig: f.kubeconfig } : {}),
        nodeName: f.nodeName,
        nodeIPs: f.nodeIp,
        podCIDRs: f.podCidr,
        rootDir: f.rootDir,
        netnsPrefix: f.netnsPrefix,
        port: f.port,
        ...(f.address ? { address: f.address } : {}),
        cgroupParent: f.cgroupRoot ?? labCgroupOfSelf() ?? 'metallb-lab',
        maxPods: f.maxPods,
        labels: f.nodeLabels,
        taints: parseTaints(f.registerWithTaints),
        ...(f.cpuCapacity !== undefined ? { cpuCapacity: f.cpuCapacity } : {}),
        ...(f.memoryCapacity !== undefined ? { memoryCapacity: f.memoryCapacity } : {}),
        restartBackoffBaseMs: f.restartBackoff,
        restartBackoffMaxMs: Math.max(f.restartBackoff, f.restartBackoffMax),
        probeTimeScale: 1,
        imageCpuMsPerRequest: f.imageCpuPerRequest,
        containerLogMaxBytes: f.containerLogMaxSize,
        nodeStatusUpdateMs: f.nodeStatusUpdateFrequency,
        nodeStatusReportMs: f.nodeStatusReportFrequency,
        leaseDurationSeconds: f.nodeLeaseDurationSeconds,
        statsIntervalMs: f.statsInterval,
        shutdownGraceSeconds: f.shutdownGracePeriod / 1000,
        teardownOnExit: f.teardownOnExit === true,
        log,
      });
      let stopping = false;
      const stop = (why: string): void => {
        if (stopping) return;
        stopping = true;
        log.info({ why }, 'shutting down');
        const force = setTimeout(() => process.exit(1), f.shutdownGracePeriod + 20_000);
        force.unref();
        kubelet.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            log.error({ err: errorText(err) }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      if (f.exitWithStdin) {
        process.stdin.on('end', () => stop('stdin closed'));
        process.stdin.on('error', () => stop('stdin closed'));
        process.stdin.resume();
      }
      try {
        await kubelet.start();
      } catch (err) {
        log.error({ err: errorText(err) }, 'kubelet failed to start');
        await kubelet.stop().catch(() => undefined);
        process.exit(1);
      }
      await new Promise<never>(() => undefined);
    });
}
