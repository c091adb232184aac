// `metallb cluster …`: the lab's own Kubernetes components (see docs/cluster.md): controller-manager, scheduler, proxy.
// Each talks to the API server only through its HTTP API, like the upstream binaries.
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, isLogLevel, type Logger, type LogLevel } from '../log.js';
import { KubeClient, KubeConfigError, loadKubeConfig, errorText } from '../k8s/client.js';
import { ControllerManager, selectControllers } from '../cluster/controllers/manager.js';
import { DEFAULT_SCHEDULER, Scheduler } from '../cluster/scheduler/scheduler.js';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { KubeLeaseStore, LeaderElector } from '../k8s/leader-election.js';
import { parseIP, parsePrefix } from '../net/ip.js';
import { parseDuration } from './duration.js';

function parsePositiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${text}" is not a positive integer`);
  return n;
}

const logLevelOption = (): Option =>
  new Option('--log-level <level>', 'all, debug, info, warn, error or none').default('info').argParser((v: string) => {
    if (!isLogLevel(v)) throw new InvalidArgumentError(`"${v}" is not one of all, debug, info, warn, error, none`);
    return v;
  });

/** A client for the kubeconfig (in-cluster config without one); a broken kubeconfig is a usage error. */
export function clientFor(kubeconfig: string | undefined, userAgent: string, maxSockets = 64): KubeClient {
  let access;
  try {
    access = loadKubeConfig(kubeconfig);
  } catch (err) {
    if (err instanceof KubeConfigError) throw err;
    throw new KubeConfigError(`kubeconfig ${kubeconfig ?? '(in-cluster)'}: ${errorText(err)}`);
  }
  return new KubeClient(access, { userAgent, maxSockets });
}

/** Runs until SIGTERM/SIGINT (or, with `withStdin`, the end of stdin), then `stop` (bounded by 8 s) and exit 0. */
export async function runUntilSignal(log: Logger, stop: () => Promise<void>, withStdin = false): Promise<never> {
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(0), 8000);
    force.unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: errorText(err) }, 'error while stopping');
        process.exit(0);
      },
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  if (withStdin) {
    process.stdin.on('end', () => onSignal('stdin closed'));
    process.stdin.on('error', () => onSignal('stdin closed'));
    process.stdin.resume();
  }
  return await new Promise<never>(() => undefined);
}

interface LeaderFlags {
  leaderElect: boolean;
  leaderElectLeaseDuration: number;
  leaderElectRenewDeadline: number;
  leaderElectRetryPeriod: number;
}

/** kube-controller-manager's / kube-scheduler's leader-election flags (off by default here: the lab runs one of each). */
function leaderOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--leader-elect', 'run only while holding the kube-system Lease of this component (several replicas: one active)').default(false))
    .addOption(new Option('--leader-elect-lease-duration <d>', 'how long a lease is valid without renewal').argParser(parseDuration).default(15_000, '15s'))
    .addOption(new Option('--leader-elect-renew-deadline <d>', 'the leader gives up when it cannot renew for this long').argParser(parseDuration).default(10_000, '10s'))
    .addOption(new Option('--leader-elect-retry-period <d>', 'interval between acquire/renew attempts').argParser(parseDuration).default(2_000, '2s'));
}

/**
 * Runs `start` at once, or once this process holds the Lease `kube-system/<lease>`. Losing the lease exits the
 * process (as upstream: a component that may have been replaced must not keep writing). Returns the stop function.
 */
function runElected(client: KubeClient, log: Logger, lease: string, f: LeaderFlags, start: () => Promise<void>, stop: () => Promise<void>): () => Promise<void> {
  if (!f.leaderElect) {
    void start();
    return stop;
  }
  if (f.leaderElectRenewDeadline >= f.leaderElectLeaseDuration) throw new Error('--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration');
  const identity = `${hostname()}_${randomUUID()}`;
  const elector = new LeaderElector(new KubeLeaseStore(client, 'kube-system', lease), {
    identity,
    leaseDurationMs: f.leaderElectLeaseDuration,
    renewDeadlineMs: f.leaderElectRenewDeadline,
    retryPeriodMs: f.leaderElectRetryPeriod,
    log,
    onStartedLeading: () => void start(),
    onStoppedLeading: () => {
      log.error({ lease: `kube-system/${lease}`, identity }, 'leaderelection lost');
      void stop().finally(() => process.exit(1));
    },
  });
  log.info({ lease: `kube-system/${lease}`, identity }, 'waiting to become leader');
  elector.start();
  return async () => {
    await stop();
    await elector.stop();
  };
}

interface CMFlags extends LeaderFlags {
  kubeconfig?: string;
  controllers: string;
  rootCaFile?: string;
  nodeMonitorGracePeriod: number;
  workers: number;
  horizontalPodAutoscalerSyncPeriod: number;
  horizontalPodAutoscalerDownscaleStabilization: number;
  horizontalPodAutoscalerTolerance: number;
  horizontalPodAutoscalerCpuInitializationPeriod: number;
  horizontalPodAutoscalerInitialReadinessDelay: number;
  logLevel: LogLevel;
}

function parseTolerance(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${text}" is not a non-negative number (e.g. 0.1)`);
  return n;
}

interface ProxyFlags {
  kubeconfig?: string;
  nodeName: string;
  clusterCidr?: string[];
  nodeportAddresses?: string[];
  masqueradeAll: boolean;
  minSyncPeriod: number;
  syncPeriod: number;
  cleanup: boolean;
  exitWithStdin?: boolean;
  logLevel: LogLevel;
}

const cidrList = (v: string): string[] => {
  const out = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of out) if (!parsePrefix(c)) throw new InvalidArgumentError(`"${c}" is not a CIDR (e.g. 10.244.0.0/16)`);
  return out;
};

const ipList = (v: string): string[] => {
  const out = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const a of out) if (!parseIP(a)) throw new InvalidArgumentError(`"${a}" is not an IP address`);
  return out;
};

interface SchedFlags extends LeaderFlags {
  kubeconfig?: string;
  schedulerName: string;
  retryUnschedulable: number;
  logLevel: LogLevel;
}

/**
 * The `cluster` command group, created on first use: other modules (the kubelet) add their subcommands to it with
 * `clusterGroup(program).command('kubelet')` from their own register function.
 */
export function clusterGroup(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'cluster');
  if (existing) return existing;
  return program.command('cluster').description("the lab's Kubernetes components: controller-manager, scheduler, proxy, kubelet (see docs/cluster.md)");
}

export function registerCluster(program: Command): void {
  const cluster = clusterGroup(program);

  const cm = cluster
    .command('controller-manager')
    .description('run the controllers the lab needs (Deployment, ReplicaSet, EndpointSlice, Endpoints, ServiceAccount, root CA, node lifecycle, HorizontalPodAutoscaler, …)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account)')
    .option('--controllers <list>', `controllers to run: "*" for all, "-name" to leave one out (known: ${selectControllers(['*']).join(', ')})`, '*')
    .option('--root-ca-file <path>', 'CA certificate published in every namespace as the kube-root-ca.crt ConfigMap (default: the kubeconfig CA)')
    .addOption(new Option('--node-monitor-grace-period <d>', 'a node whose kubelet is silent this long becomes Ready=Unknown').argParser(parseDuration).default(40_000, '40s'))
    .option('--workers <n>', 'reconciles run at once per controller', parsePositiveInt, 2)
    .addOption(new Option('--horizontal-pod-autoscaler-sync-period <d>', 'how often each HPA is looked at').argParser(parseDuration).default(15_000, '15s'))
    .addOption(new Option('--horizontal-pod-autoscaler-downscale-stabilization <d>', 'scale down only to the highest recommendation of this window (HPAs without behavior.scaleDown.stabilizationWindowSeconds)').argParser(parseDuration).default(300_000, '5m0s'))
    .option('--horizontal-pod-autoscaler-tolerance <ratio>', 'no scaling while the metric ratio is this close to 1', parseTolerance, 0.1)
    .addOption(new Option('--horizontal-pod-autoscaler-cpu-initialization-period <d>', 'after a pod starts, CPU samples count only from one window after it became ready').argParser(parseDuration).default(300_000, '5m0s'))
    .addOption(new Option('--horizontal-pod-autoscaler-initial-readiness-delay <d>', 'a pod that turned not-ready this soon after starting counts as never ready').argParser(parseDuration).default(30_000, '30s'));
  leaderOptions(cm)
    .addOption(logLevelOption())
    .action(async (f: CMFlags) => {
      const client = clientFor(f.kubeconfig, 'metallb-cluster-controller-manager', 256);
      const controllers = f.controllers.split(',');
      selectControllers(controllers);
      let rootCA: string | undefined;
      if (f.rootCaFile) {
        try {
          rootCA = readFileSync(f.rootCaFile, 'utf8');
        } catch (err) {
          throw new Error(`--root-ca-file ${f.rootCaFile}: ${errorText(err)}`);
        }
        if (!rootCA.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--root-ca-file ${f.rootCaFile}: not a PEM certificate`);
      } else if (client.access.ca) rootCA = client.access.ca.toString('utf8');
      const log = createLogger('controller-manager', f.logLevel);
      const mgr = new ControllerManager(client, log, {
        controllers,
        workers: f.workers,
        nodeMonitorGracePeriodMs: f.nodeMonitorGracePeriod,
        ...(rootCA ? { rootCA } : {}),
        hpa: {
          syncPeriodMs: f.horizontalPodAutoscalerSyncPeriod,
          downscaleStabilizationMs: f.horizontalPodAutoscalerDownscaleStabilization,
          tolerance: f.horizontalPodAutoscalerTolerance,
          cpuInitializationPeriodMs: f.horizontalPodAutoscalerCpuInitializationPeriod,
          initialReadinessDelayMs: f.horizontalPodAutoscalerInitialReadinessDelay,
        },
      });
      log.info({ server: client.server.origin }, 'starting controller-manager');
      const stop = runElected(client, log, 'kube-controller-manager', f, () => mgr.start(), () => mgr.stop());
      await runUntilSignal(log, stop);
    });

  const sched = cluster
    .command('scheduler')
    .description('bind pending pods to nodes (nodeName, nodeSelector, node affinity, taints/tolerations, host ports; spreads pods of one owner)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account)')
    .option('--scheduler-name <name>', 'schedule pods whose spec.schedulerName is this', DEFAULT_SCHEDULER)
    .addOption(new Option('--retry-unschedulable <d>', 'try a pod that fits nowhere again after this long even without a change').argParser(parseDuration).default(60_000, '60s'));
  leaderOptions(sched)
    .addOption(logLevelOption())
    .action(async (f: SchedFlags) => {
      const client = clientFor(f.kubeconfig, 'metallb-cluster-scheduler');
      const log = createLogger('scheduler', f.logLevel);
      const s = new Scheduler(client, log, { schedulerName: f.schedulerName, retryUnschedulableMs: f.retryUnschedulable });
      log.info({ server: client.server.origin, schedulerName: f.schedulerName }, 'starting scheduler');
      const stop = runElected(client, log, 'kube-scheduler', f, () => s.start(), () => s.stop());
      await runUntilSignal(log, stop);
    });

  cluster
    .command('proxy')
    .description("kube-proxy in nftables mode for this node's network namespace: ClusterIP, NodePort and LoadBalancer IPs to ready endpoints (table inet kube-proxy)")
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account)')
    .option('--node-name <name>', 'the Node this proxy runs on (its endpoints are local, its addresses take NodePorts)', hostname())
    .option('--cluster-cidr <cidrs>', 'pod network CIDRs, comma-separated (default: the kube-proxy ConfigMap clusterCIDR and every node podCIDR)', cidrList)
    .option('--nodeport-addresses <ips>', "addresses NodePorts answer on (default: the Node's InternalIP/ExternalIP)", ipList)
    .option('--masquerade-all', 'SNAT all traffic to cluster IPs, not only traffic from outside the pod network', false)
    .addOption(new Option('--min-sync-period <d>', 'changes within this window are loaded together').argParser(parseDuration).default(200, '200ms'))
    .addOption(new Option('--sync-period <d>', 'check this often that the table is still there (reloaded if not)').argParser(parseDuration).default(30_000, '30s'))
    .option('--cleanup', 'remove the table inet kube-proxy and exit', false)
    .addOption(new Option('--exit-with-stdin', 'shut down (cleanly) when stdin closes (test harnesses)').hideHelp())
    .addOption(logLevelOption())
    .action(async (f: ProxyFlags) => {
      const log = createLogger('proxy', f.logLevel);
      // Loaded here, not at the top: the other `metallb cluster` commands need not load the proxy.
      const [{ Proxier }, { systemNft }, { readKubeProxyConfig }, { deleteScript }] = await Promise.all([
        import('../cluster/proxy/proxier.js'),
        import('../cluster/proxy/nft.js'),
        import('../cluster/proxy/config.js'),
        import('../cluster/proxy/ruleset.js'),
      ]);
      if (f.cleanup) {
        await systemNft.apply(deleteScript());
        log.info({}, 'removed table inet kube-proxy');
        return;
      }
      const client = clientFor(f.kubeconfig, 'metallb-cluster-proxy');
      const cfg = await readKubeProxyConfig(client, log);
      const clusterCIDRs = f.clusterCidr ?? cfg?.clusterCIDRs ?? [];
      const p = new Proxier(client, log, systemNft, {
        nodeName: f.nodeName,
        clusterCIDRs,
        ...(f.nodeportAddresses ? { nodePortAddresses: f.nodeportAddresses } : {}),
        masqueradeAll: f.masqueradeAll,
        minSyncPeriodMs: f.minSyncPeriod,
        syncPeriodMs: f.syncPeriod,
      });
      log.info({ server: client.server.origin, node: f.nodeName, clusterCIDRs }, 'starting proxy (nftables)');
      void p.start();
      await runUntilSignal(log, () => p.stop(true), f.exitWithStdin === true);
    });
}
