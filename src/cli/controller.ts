// `metallb controller`: the cluster-wide controller that assigns LoadBalancer addresses (see docs/controller.md).
// Accepts the flags and environment of MetalLB's controller from v0.9 to v0.16, so MetalLB's manifests run it
// unchanged; a flag only a newer MetalLB knows is warned about, never fatal (a crash loop would stop allocation).
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, isLogLevel, type LogLevel } from '../log.js';
import { KubeClient, KubeConfigError, loadKubeConfig, errorText } from '../k8s/client.js';
import { Controller, type ControllerOptions, type WebhookMode } from '../controller/manager.js';
import { parseDuration } from './duration.js';

export { parseDuration } from './duration.js';

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < -1 || n > 65535) throw new InvalidArgumentError(`"${text}" is not a port number (0 = any free port, -1 = off)`);
  return n;
}

function parsePositiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${text}" is not a positive integer`);
  return n;
}

interface Flags {
  kubeconfig?: string;
  namespace?: string;
  configNs?: string;
  config?: string;
  lbClass?: string;
  metricsPort: number;
  port?: number;
  healthProbePort: number;
  webhookPort: number;
  certDir: string;
  certServiceName: string;
  webhookSecret: string;
  webhookMode?: WebhookMode;
  mlSecretName: string;
  deployment?: string;
  podName?: string;
  leaderElect: boolean;
  leaderElectLeaseName: string;
  leaderElectLeaseDuration: number;
  leaderElectRenewDeadline: number;
  leaderElectRetryPeriod: number;
  workers: number;
  crdAbsentGrace: number;
  logLevel: LogLevel;
  tlsMinVersion: keyof typeof TLS_VERSIONS;
}

export function registerController(program: Command): void {
  const cmd = program
    .command('controller')
    .description('run the MetalLB controller: assigns LoadBalancer addresses, validates config (webhook), keeps pool status')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account)')
    .option('--namespace <ns>', "namespace MetalLB runs in and reads its configuration from [$METALLB_NAMESPACE, else the service account's, else metallb-system]", process.env.METALLB_NAMESPACE || undefined)
    .option('--config <name>', 'legacy ConfigMap holding the configuration (MetalLB <= v0.12); given explicitly, the webhook is off unless --webhook-mode says otherwise', undefined)
    .option('--config-ns <ns>', 'namespace of the configuration (MetalLB <= v0.12; same as --namespace)')
    .option('--lb-class <class>', 'handle only Services with this loadBalancerClass (default: only those without a class)')
    .option('--metrics-port <port>', 'plain-HTTP Prometheus /metrics port (0 = any free port, -1 = off)', parsePort, 7472)
    .addOption(new Option('--port <port>', 'alias of --metrics-port').argParser(parsePort).hideHelp())
    .option('--health-probe-port <port>', '/healthz and /readyz port (0 = any free port, -1 = off)', parsePort, 17472)
    .option('--webhook-port <port>', 'HTTPS admission webhook port (0 = any free port)', parsePort, 9443)
    .option('--cert-dir <dir>', 'directory with the webhook tls.crt/tls.key (generated and kept in a Secret when absent)', '/tmp/k8s-webhook-server/serving-certs')
    .option('--cert-service-name <name>', 'webhook Service name the generated certificate is for', 'metallb-webhook-service')
    .option('--webhook-secret <name>', 'Secret holding the generated webhook certificate', 'metallb-webhook-cert')
    .addOption(new Option('--webhook-mode <mode>', 'webhook: enabled, disabled, or onlywebhook (serve the webhook only) (default: enabled; disabled with --config)').choices(['enabled', 'disabled', 'onlywebhook']))
    .option('--ml-secret-name <name>', 'memberlist Secret to create when missing', process.env.METALLB_ML_SECRET_NAME || 'memberlist')
    .option('--deployment <name>', 'controller Deployment, owner of the memberlist Secret', process.env.METALLB_DEPLOYMENT || undefined)
    .option('--pod-name <name>', 'this pod, used as the leader-election identity (with a random suffix)', process.env.METALLB_POD_NAME || undefined)
    .option('--leader-elect', 'elect a leader among controller replicas (Lease); only the leader writes', false)
    .option('--leader-elect-lease-name <name>', 'Lease name', 'metallb-controller')
    .addOption(new Option('--leader-elect-lease-duration <d>', 'how long a lease is valid without renewal').argParser(parseDuration).default(15_000, '15s'))
    .addOption(new Option('--leader-elect-renew-deadline <d>', 'the leader gives up when it cannot renew for this long').argParser(parseDuration).default(10_000, '10s'))
    .addOption(new Option('--leader-elect-retry-period <d>', 'interval between acquire/renew attempts').argParser(parseDuration).default(2_000, '2s'))
    .addOption(new Option('--crd-absent-grace <d>', 'a config CRD not served at start counts as empty after this long').argParser(parseDuration).default(10_000, '10s').hideHelp())
    .option('--workers <n>', 'services reconciled concurrently', parsePositiveInt, 16)
    .addOption(
      new Option('--log-level <level>', 'all, debug, info, warn, error or none')
        .default('info')
        .argParser((v: string) => {
          if (!isLogLevel(v)) throw new InvalidArgumentError(`"${v}" is not one of all, debug, info, warn, error, none`);
          return v;
        }),
    )
    .addOption(
      new Option('--tls-min-version <version>', 'lowest TLS version of the webhook server (MetalLB\'s VersionTLS12 or VersionTLS13)')
        .default('VersionTLS12')
        .argParser((v: string) => {
          if (!(v in TLS_VERSIONS)) throw new InvalidArgumentError(`"${v}" is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
          return v;
        }),
    )
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .addHelpText(
      'after',
      `
MetalLB flags accepted without effect (its manifests pass them): --tls-cipher-suites, --tls-curve-preferences,
--metrics-cert-dir, --disable-cert-rotation, --webhook-http2, --enable-pprof, --pprof-bind-address.
Any other unknown flag is reported and ignored.
Environment: METALLB_NAMESPACE, METALLB_ML_SECRET_NAME, METALLB_DEPLOYMENT, METALLB_POD_NAME.`,
    )
    .action(async (flags: Flags, command: Command) => {
      await runController(flags, command.args);
    });
  for (const f of ['--tls-cipher-suites', '--tls-curve-preferences', '--metrics-cert-dir', '--pprof-bind-address']) cmd.addOption(new Option(`${f} <value>`).hideHelp());
  for (const f of ['--disable-cert-rotation', '--webhook-http2', '--enable-pprof']) cmd.addOption(new Option(`${f} [bool]`).hideHelp());
}

/** MetalLB's --tls-min-version values (Go's tls.VersionName). */
const TLS_VERSIONS = { VersionTLS12: 'TLSv1.2', VersionTLS13: 'TLSv1.3' } as const;

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * The namespace, as MetalLB's releases chose it: --namespace (v0.13+) or --config-ns (<= v0.12), then
 * $METALLB_NAMESPACE (the --namespace default), then the pod's service account namespace, then metallb-system.
 */
export function controllerNamespace(f: { namespace?: string; configNs?: string }, saFile = SA_NAMESPACE_FILE): string {
  if (f.namespace) return f.namespace;
  if (f.configNs) return f.configNs;
  if (existsSync(saFile)) {
    const ns = readFileSync(saFile, 'utf8').trim();
    if (ns) return ns;
  }
  return 'metallb-system';
}

/**
 * MetalLB <= v0.12 took its configuration from the ConfigMap named by --config and had no webhook; its manifests
 * (and only those) pass --config, and grant no webhook Service, configuration or certificate Secret. So an explicit
 * --config turns the webhook off unless --webhook-mode asks for it.
 */
export function webhookModeFor(f: { webhookMode?: WebhookMode; config?: string }): WebhookMode {
  return f.webhookMode ?? (f.config !== undefined ? 'disabled' : 'enabled');
}

async function runController(f: Flags, stray: readonly string[] = []): Promise<void> {
  // A broken kubeconfig is a usage error: one line on stderr, exit 2 (main prints `metallb: <message>`).
  let access;
  try {
    access = loadKubeConfig(f.kubeconfig);
  } catch (err) {
    if (err instanceof KubeConfigError) throw err;
    throw new KubeConfigError(`kubeconfig ${f.kubeconfig ?? '(in-cluster)'}: ${errorText(err)}`);
  }
  if (f.leaderElectRenewDeadline >= f.leaderElectLeaseDuration) {
    throw new Error('--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration');
  }
  const log = createLogger('controller', f.logLevel);
  const unknown = stray.filter((a) => a !== '');
  if (unknown.length > 0) log.warn({ ignored: unknown }, `ignoring unknown arguments (flags of a newer MetalLB?): ${unknown.join(' ')}`);
  const webhookMode = webhookModeFor(f);
  if (f.config !== undefined && f.webhookMode === undefined) {
    log.info({ configMap: f.config }, `--config=${f.config}: MetalLB <= v0.12 configuration (ConfigMap ${f.config}); the webhook is off as in those releases (--webhook-mode=enabled turns it on)`);
  }
  const client = new KubeClient(access, { userAgent: 'metallb-controller' });
  const opts: ControllerOptions = {
    namespace: controllerNamespace(f),
    legacyConfigMap: f.config ?? 'config',
    lbClass: f.lbClass,
    metricsPort: f.port ?? f.metricsPort,
    healthProbePort: f.healthProbePort,
    webhookPort: f.webhookPort,
    webhookMode,
    webhookMinTLSVersion: TLS_VERSIONS[f.tlsMinVersion],
    certDir: f.certDir,
    webhookSecretName: f.webhookSecret,
    certServiceName: f.certServiceName,
    webhookConfigurationName: 'metallb-webhook-configuration',
    mlSecretName: f.mlSecretName,
    deployment: f.deployment,
    leaderElect: f.leaderElect,
    leaseName: f.leaderElectLeaseName,
    leaseDurationMs: f.leaderElectLeaseDuration,
    renewDeadlineMs: f.leaderElectRenewDeadline,
    retryPeriodMs: f.leaderElectRetryPeriod,
    workers: f.workers,
    crdAbsentGraceMs: f.crdAbsentGrace,
    ...(f.podName ? { identity: `${f.podName}_${randomUUID().slice(0, 8)}` } : {}),
  };
  log.info({ namespace: opts.namespace, server: client.server.origin, lbClass: opts.lbClass ?? '', webhookMode: opts.webhookMode, leaderElect: opts.leaderElect }, 'starting controller');
  const ctl = new Controller(opts, {
    client,
    log,
    onFatal: (reason) => {
      log.error({ reason }, 'controller stopping');
      void ctl.stop().finally(() => process.exit(1));
    },
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.warn({}, 'shutdown took too long, exiting');
      process.exit(0);
    }, 8000);
    force.unref();
    void ctl.stop().then(
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
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));

  try {
    await ctl.start();
  } catch (err) {
    log.error({ err: errorText(err) }, 'controller failed to start');
    process.stderr.write(`metallb controller: ${errorText(err)}\n`);
    await ctl.stop().catch(() => undefined);
    process.exit(1);
  }
  // Runs until a signal (or a fatal error) exits the process.
  await new Promise<never>(() => undefined);
}
