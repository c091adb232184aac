// `metallb speaker`: announces the addresses the controller assigned (see docs/speaker.md). Accepts every flag and
// environment variable of MetalLB's speaker from v0.9 to v0.16, so MetalLB's manifests run it unchanged; flags only
// a newer MetalLB knows are warned about, never fatal (a crash loop would take the node's announcements down).
import { existsSync, readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, isLogLevel, type LogLevel, type Logger } from '../log.js';
import { KubeClient, KubeConfigError, loadKubeConfig, errorText } from '../k8s/client.js';
import { Speaker, type SpeakerOptions } from '../speaker/manager.js';
import { DisabledMembership, SpeakerList, type Membership } from '../speaker/membership.js';
import { Memberlist } from '../speaker/memberlist/memberlist.js';
import { memberlistOptionsFromMetallb, ML_CONFIG_PATH } from '../speaker/memberlist/metallb.js';
import type { Pod } from '../k8s/types.js';
import { collectionPath, R } from '../k8s/resources.js';
import type { Announcer } from '../speaker/l2/layer2.js';
import { Announcer as L2Announcer } from '../speaker/l2/announcer.js';
import { parseXdpSetting, type XdpSetting } from '../speaker/l2/xdp-responder.js';
import { loadNative } from '../net/native.js';
import { BgpPart } from '../speaker/bgp/part.js';
import { tuneSpeakerHeap } from '../speaker/heap.js';
import { parseDuration } from './duration.js';
import { onStopSignals, REPEATED_SIGNAL_EXIT_STATUS } from './stop-signals.js';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const env = (name: string): string | undefined => {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
};

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < -1 || n > 65535) throw new InvalidArgumentError(`"${text}" is not a port number (0 = any free port, -1 = off)`);
  return n;
}

/** Go's flag package accepts `--flag`, `--flag=true|false|1|0|t|f` for booleans. */
export function parseGoBool(text: string | boolean | undefined): boolean {
  if (text === undefined || text === true) return true;
  if (text === false) return false;
  const t = text.toLowerCase();
  if (['1', 't', 'true'].includes(t)) return true;
  if (['0', 'f', 'false'].includes(t)) return false;
  throw new InvalidArgumentError(`"${text}" is not a boolean (true or false)`);
}

export interface SpeakerFlags {
  kubeconfig?: string;
  nodeName?: string;
  namespace?: string;
  configNs?: string;
  config: string;
  podName?: string;
  port?: number;
  metricsPort: number;
  metricsHost?: string;
  host?: string;
  healthProbePort: number;
  healthProbeHost: string;
  logLevel: LogLevel;
  lbClass: string;
  ignoreExcludeLb: boolean;
  mlBindaddr?: string;
  mlBindport?: string;
  mlLabels?: string;
  mlSecretKeyPath?: string;
  mlNamespace?: string;
  mlWanConfig: boolean;
  disableEpslices: boolean;
  bgpDebounceTimeout?: string;
  enablePprof: boolean;
  pprofBindAddress?: string;
  crdAbsentGrace: number;
  workers: number;
  l2Status: boolean;
  l2Xdp: XdpSetting;
}

const goBool = (flag: string, help: string): Option => new Option(`${flag} [bool]`, help).argParser(parseGoBool).default(false);

export function registerSpeaker(program: Command): void {
  const cmd = program
    .command('speaker')
    .description('run the MetalLB speaker on this node: announces service addresses with ARP/NDP (layer 2) or BGP')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account)')
    .option('--node-name <name>', 'name of this Kubernetes node (spec.nodeName) [$METALLB_NODE_NAME]', env('METALLB_NODE_NAME'))
    .option('--namespace <ns>', 'namespace of the speakers and their configuration [$METALLB_NAMESPACE, else the service account\'s]', env('METALLB_NAMESPACE'))
    .option('--pod-name <name>', 'this pod, owner of the ServiceL2Status objects [$METALLB_POD_NAME]', env('METALLB_POD_NAME'))
    .option('--port <port>', 'plain-HTTP Prometheus /metrics port, MetalLB\'s flag (0 = any free port, -1 = off)', parsePort)
    .option('--metrics-port <port>', 'same as --port', parsePort, 7472)
    .option('--metrics-host <addr>', 'address the metrics server binds (default: all)')
    .addOption(new Option('--host <addr>', 'deprecated (MetalLB ≤ v0.12: metrics host); accepted and ignored [$METALLB_HOST]').default(env('METALLB_HOST')))
    .option('--health-probe-port <port>', '/healthz and /readyz port (0 = any free port, -1 = off)', parsePort, 17472)
    .option('--health-probe-host <addr>', 'address the health server binds', '127.0.0.1')
    .addOption(
      new Option('--log-level <level>', 'all, debug, info, warn, error or none').default('info').argParser((v: string) => {
        if (!isLogLevel(v)) throw new InvalidArgumentError(`"${v}" is not one of all, debug, info, warn, error, none`);
        return v;
      }),
    )
    .option('--lb-class <class>', 'handle only Services with this loadBalancerClass (default: only those without a class)', '')
    .addOption(goBool('--ignore-exclude-lb', 'nodes labelled node.kubernetes.io/exclude-from-external-load-balancers may announce too'))
    .option('--ml-bindaddr <addr>', 'memberlist bind address (the pod IP); memberlist is on when this and --ml-labels are set [$METALLB_ML_BIND_ADDR]', env('METALLB_ML_BIND_ADDR'))
    .option('--ml-bindport <port>', 'memberlist port (TCP and UDP) [$METALLB_ML_BIND_PORT]', env('METALLB_ML_BIND_PORT'))
    .option('--ml-labels <selector>', 'label selector of the speaker pods, to find memberlist peers [$METALLB_ML_LABELS]', env('METALLB_ML_LABELS'))
    .option('--ml-secret-key-path <dir>', 'directory holding the memberlist key file "secretkey" [$METALLB_ML_SECRET_KEY_PATH]', env('METALLB_ML_SECRET_KEY_PATH'))
    .option('--ml-namespace <ns>', 'namespace of the speaker pods (MetalLB ≤ v0.12) [$METALLB_ML_NAMESPACE]', env('METALLB_ML_NAMESPACE'))
    .addOption(goBool('--ml-wan-config', 'memberlist WAN timing instead of the fast LAN default'))
    .option('--config <name>', 'legacy ConfigMap holding the configuration (MetalLB ≤ v0.12)', 'config')
    .option('--config-ns <ns>', 'namespace of the configuration (MetalLB ≤ v0.12; default --namespace)')
    .addOption(goBool('--disable-epslices', 'read Endpoints instead of EndpointSlices'))
    .option('--bgp-debounce-timeout <value>', 'FRR mode reload debounce; accepted, no effect (native BGP) [$METALLB_BGP_DEBOUNCE_TIMEOUT]', env('METALLB_BGP_DEBOUNCE_TIMEOUT'))
    .addOption(goBool('--enable-pprof', 'accepted (Go profiling); no effect'))
    .option('--pprof-bind-address <addr>', 'accepted (Go profiling); no effect')
    .addOption(new Option('--crd-absent-grace <d>', 'a config CRD not served at start counts as empty after this long').argParser(parseDuration).default(10_000, '10s').hideHelp())
    .addOption(new Option('--workers <n>', 'services reconciled concurrently').argParser((v) => Number.parseInt(v, 10)).default(4).hideHelp())
    .addOption(new Option('--no-l2-status', 'do not write ServiceL2Status objects'))
    .addOption(
      new Option('--l2-xdp <mode>', 'auto: answer ARP and NDP for announced addresses in the kernel with XDP where allowed (CAP_BPF + CAP_NET_ADMIN), else in userspace; off: always in userspace [$METALLB_L2_XDP]')
        .default(env('METALLB_L2_XDP') ?? 'auto')
        .argParser((v: string) => {
          try {
            return parseXdpSetting(v, '--l2-xdp');
          } catch (err) {
            throw new InvalidArgumentError((err as Error).message);
          }
        }),
    )
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .addHelpText('after', `
MetalLB flags accepted without effect: --host, --enable-pprof, --pprof-bind-address, --bgp-debounce-timeout,
--tls-min-version, --tls-cipher-suites, --tls-curve-preferences, --metrics-cert-dir, --frrk8s-namespace,
--frrk8s-secret-passthrough, --webhook-mode. Any other unknown flag is reported and ignored.
Environment: METALLB_NODE_NAME, METALLB_NAMESPACE, METALLB_POD_NAME, METALLB_HOST, METALLB_ML_BIND_ADDR,
METALLB_ML_BIND_PORT, METALLB_ML_LABELS, METALLB_ML_SECRET_KEY_PATH, METALLB_ML_SECRET_KEY (the key itself,
MetalLB ≤ v0.12), METALLB_ML_NAMESPACE, METALLB_BGP_DEBOUNCE_TIMEOUT, METALLB_BGP_TYPE; and ours:
METALLB_L2_XDP (--l2-xdp), METALLB_ML_DELEGATE_VERSION=min,max,cur (memberlist delegate versions; "2,5,5" lets serf agents join the gossip,
and keeps MetalLB speakers out of it).`)
    .action(async (flags: SpeakerFlags, command: Command) => {
      await runSpeaker(flags, command.args);
    });
  // MetalLB's TLS/FRR flags take a value; declared so `--flag value` does not leave a stray argument.
  for (const f of ['--tls-min-version', '--tls-cipher-suites', '--tls-curve-preferences', '--metrics-cert-dir', '--frrk8s-namespace', '--webhook-mode']) {
    cmd.addOption(new Option(`${f} <value>`).hideHelp());
  }
  cmd.addOption(new Option('--frrk8s-secret-passthrough [bool]').argParser(parseGoBool).hideHelp());
}

/** The namespace: flag, then $METALLB_NAMESPACE (the flag default), then the service account's. */
export function resolveNamespace(flag: string | undefined, saFile = SA_NAMESPACE_FILE): string | undefined {
  if (flag) return flag;
  if (existsSync(saFile)) {
    const ns = readFileSync(saFile, 'utf8').trim();
    if (ns) return ns;
  }
  return undefined;
}

/** Unknown flags (a newer MetalLB's) and stray arguments, for one warning. */
export function strayArguments(args: readonly string[]): string[] {
  return args.filter((a) => a !== '');
}

/** The ARP/NDP announcer; a machine where packet sockets cannot be opened is a clear error at start. */
function createAnnouncer(log: Logger, xdp: XdpSetting): Announcer & { close(): void } {
  try {
    loadNative();
  } catch (err) {
    throw new Error(`layer 2 needs raw packet sockets (the native addon, CAP_NET_RAW): ${errorText(err)}`);
  }
  return new L2Announcer({ log: log.child({ component: 'layer2' }), xdp }).start();
}

/** The speaker stops gracefully on the first of these; a second one exits at once (stop-signals.ts). */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT'];

/** MetalLB's rule: memberlist is on only when both the bind address and the pod labels are given. */
export function createMembership(f: SpeakerFlags, nodeName: string, namespace: string, client: KubeClient, log: Logger): Membership {
  if (!f.mlBindaddr || !f.mlLabels) {
    log.info({}, 'memberlist disabled (--ml-bindaddr and --ml-labels not both set): every Node is a layer 2 candidate; the speaker must run on every node');
    return new DisabledMembership();
  }
  const port = f.mlBindport ? Number(f.mlBindport) : 7946;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--ml-bindport / METALLB_ML_BIND_PORT: "${f.mlBindport}" is not a port number`);
  const resolved = memberlistOptionsFromMetallb({
    nodeName,
    bindAddr: f.mlBindaddr,
    bindPort: port,
    ...(f.mlSecretKeyPath ? { secretKeyPath: f.mlSecretKeyPath } : {}),
    // MetalLB ≤ v0.12 passes the key itself in the environment (from the memberlist Secret).
    ...(env('METALLB_ML_SECRET_KEY') ? { secret: env('METALLB_ML_SECRET_KEY') } : {}),
    wan: f.mlWanConfig,
    configJsonPath: ML_CONFIG_PATH,
    env: process.env,
    ...(env('METALLB_ML_DELEGATE_VERSION') ? { delegateVersion: env('METALLB_ML_DELEGATE_VERSION') } : {}),
  });
  for (const note of resolved.notes) log.info({ component: 'memberlist' }, note);
  const podNamespace = f.mlNamespace || namespace;
  const mlLog = log.child({ component: 'memberlist' });
  return new SpeakerList({
    nodeName,
    log: mlLog,
    peerPort: port,
    // The gossip thread leaves on the signals the speaker stops on, without waiting for the busy main thread, and
    // honours a second one itself: while it watches them, the main thread may be the last to hear.
    create: () =>
      Memberlist.create({ ...resolved.options, logger: mlLog, leaveOnSignals: STOP_SIGNALS, leaveTimeoutMs: 1000, exitOnRepeatedSignal: REPEATED_SIGNAL_EXIT_STATUS }),
    listPods: async () =>
      (await client.get<{ items?: Pod[] }>(collectionPath(R.pods, podNamespace), { query: { labelSelector: f.mlLabels } })).items ?? [],
  });
}

export async function runSpeaker(f: SpeakerFlags, stray: readonly string[] = []): Promise<void> {
  const log = createLogger('speaker', f.logLevel);
  const heapFlag = tuneSpeakerHeap();
  if (heapFlag) log.debug({ v8Flag: heapFlag }, 'V8 young generation kept small (see docs/bgp.md, Benchmark)');
  if (!f.nodeName) throw new Error('must specify --node-name or METALLB_NODE_NAME');
  const namespace = resolveNamespace(f.namespace);
  if (!namespace) throw new Error(`cannot determine the namespace: set --namespace or METALLB_NAMESPACE (${SA_NAMESPACE_FILE} is not readable)`);
  let access;
  try {
    access = loadKubeConfig(f.kubeconfig);
  } catch (err) {
    if (err instanceof KubeConfigError) throw err;
    throw new KubeConfigError(`kubeconfig ${f.kubeconfig ?? '(in-cluster)'}: ${errorText(err)}`);
  }
  const unknown = strayArguments(stray);
  if (unknown.length > 0) log.warn({ ignored: unknown }, `ignoring unknown arguments (flags of a newer MetalLB?): ${unknown.join(' ')}`);
  if (f.host) log.debug({ host: f.host }, '--host / METALLB_HOST is deprecated and unused');
  if (f.enablePprof || f.pprofBindAddress) log.info({}, 'pprof flags accepted; Go profiling does not apply to metallb-ts');
  const bgpType = env('METALLB_BGP_TYPE');
  if (bgpType && bgpType !== 'native') log.warn({ bgpType }, `METALLB_BGP_TYPE=${bgpType}: FRR modes are not implemented; using the native BGP speaker`);

  const client = new KubeClient(access, { userAgent: 'metallb-speaker' });
  const opts: SpeakerOptions = {
    nodeName: f.nodeName,
    namespace: f.configNs || namespace,
    ...(f.podName ? { podName: f.podName } : {}),
    lbClass: f.lbClass,
    ignoreExcludeLB: f.ignoreExcludeLb,
    metricsPort: f.port ?? f.metricsPort,
    ...(f.metricsHost ? { metricsHost: f.metricsHost } : {}),
    healthProbePort: f.healthProbePort,
    healthProbeHost: f.healthProbeHost,
    legacyConfigMap: f.config,
    crdAbsentGraceMs: f.crdAbsentGrace,
    workers: f.workers,
    l2Status: f.l2Status,
    disableEndpointSlices: f.disableEpslices,
  };
  log.info({ node: opts.nodeName, namespace: opts.namespace, server: client.server.origin, lbClass: opts.lbClass }, 'MetalLB speaker starting');
  const membership = createMembership(f, f.nodeName, namespace, client, log);
  const bgp = new BgpPart({ nodeName: f.nodeName, log, ignoreExcludeLB: f.ignoreExcludeLb });
  const speaker = new Speaker(opts, {
    client,
    log,
    announcer: createAnnouncer(log, parseXdpSetting(f.l2Xdp, env('METALLB_L2_XDP') === f.l2Xdp ? 'METALLB_L2_XDP' : '--l2-xdp')),
    membership,
    handlers: [bgp.handler],
    parts: [bgp],
    onFatal: (reason) => {
      log.error({ reason }, 'speaker stopping');
      void speaker.stop(0).finally(() => process.exit(1));
    },
  });

  const stop = (signal: string): void => {
    log.info({ signal }, 'shutting down: leaving memberlist');
    // The pod's grace period is 2 s (MetalLB's manifests): exit before the kubelet kills us.
    const force = setTimeout(() => {
      log.warn({}, 'shutdown took too long, exiting');
      process.exit(0);
    }, 1800);
    force.unref();
    void speaker.stop(1000).then(
      () => {
        log.info({}, 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: errorText(err) }, 'error while stopping');
        process.exit(0);
      },
    );
  };
  onStopSignals(STOP_SIGNALS, stop, log);

  try {
    await speaker.start();
  } catch (err) {
    log.error({ err: errorText(err) }, 'speaker failed to start');
    process.stderr.write(`metallb speaker: ${errorText(err)}\n`);
    await speaker.stop(0).catch(() => undefined);
    process.exit(1);
  }
  await new Promise<never>(() => undefined);
}
