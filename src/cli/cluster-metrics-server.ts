// `metallb cluster metrics-server`: the lab's metrics-server (see docs/metrics-server.md). Flags follow
// metrics-server's own names (v0.7); `--kubelet-scheme` is ours (the lab's kubelets serve plain HTTP).
import { type Command, InvalidArgumentError, Option } from 'commander';
import { createLogger, isLogLevel, type LogLevel } from '../log.js';
import { errorText } from '../k8s/client.js';
import { parseDuration } from './duration.js';
import { clientFor, clusterGroup, runUntilSignal } from './cluster.js';

interface Flags {
  kubeconfig?: string;
  bindAddress: string;
  securePort: number;
  certDir?: string;
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  metricResolution: number;
  kubeletPreferredAddressTypes: string;
  kubeletPort: number;
  kubeletUseNodeStatusPort: boolean;
  kubeletInsecureTls: boolean;
  kubeletRequestTimeout: number;
  kubeletScheme: 'http' | 'https';
  authorizationAlwaysAllowPaths: string;
  exitWithStdin?: boolean;
  logLevel: LogLevel;
}

const ADDRESS_TYPES = ['Hostname', 'InternalDNS', 'InternalIP', 'ExternalDNS', 'ExternalIP'];

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`"${v}" is not a port (0-65535)`);
  return n;
}

function parseAddressTypes(v: string): string {
  for (const t of v.split(',')) if (!ADDRESS_TYPES.includes(t.trim())) throw new InvalidArgumentError(`"${t}" is not a node address type (${ADDRESS_TYPES.join(', ')})`);
  return v;
}

export function registerMetricsServer(program: Command): void {
  clusterGroup(program)
    .command('metrics-server')
    .description("metrics-server: scrapes every kubelet's /stats/summary and serves metrics.k8s.io/v1beta1 (kubectl top, the HPA) behind an APIService")
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account)')
    .option('--bind-address <ip>', 'address to serve HTTPS on', '0.0.0.0')
    .option('--secure-port <port>', 'HTTPS port', parsePort, 10250)
    .option('--cert-dir <dir>', 'keep the self-signed serving certificate here (apiserver.crt/.key)')
    .option('--tls-cert-file <path>', 'serving certificate (PEM)')
    .option('--tls-private-key-file <path>', 'serving key (PEM)')
    .addOption(new Option('--metric-resolution <d>', 'how often kubelets are scraped').argParser(parseDuration).default(60_000, '60s'))
    .option('--kubelet-preferred-address-types <list>', 'node address types to reach kubelets by, in order', parseAddressTypes, ADDRESS_TYPES.join(','))
    .option('--kubelet-port <port>', 'kubelet port', parsePort, 10250)
    .option('--kubelet-use-node-status-port', "use the port in the Node's status.daemonEndpoints", false)
    .option('--kubelet-insecure-tls', "do not verify kubelets' serving certificates", false)
    .addOption(new Option('--kubelet-request-timeout <d>', 'timeout of one kubelet scrape').argParser(parseDuration).default(10_000, '10s'))
    .addOption(new Option('--kubelet-scheme <scheme>', 'http or https (the lab kubelets serve plain HTTP)').choices(['http', 'https']).default('https'))
    .option('--authorization-always-allow-paths <list>', 'paths served without authorization', '/healthz,/readyz,/livez')
    .addOption(new Option('--exit-with-stdin', 'shut down when stdin closes (test harnesses)').hideHelp())
    .addOption(
      new Option('--log-level <level>', 'all, debug, info, warn, error or none').default('info').argParser((v: string) => {
        if (!isLogLevel(v)) throw new InvalidArgumentError(`"${v}" is not one of all, debug, info, warn, error, none`);
        return v;
      }),
    )
    .action(async (f: Flags) => {
      if ((f.tlsCertFile === undefined) !== (f.tlsPrivateKeyFile === undefined)) throw new Error('--tls-cert-file and --tls-private-key-file go together');
      const log = createLogger('metrics-server', f.logLevel);
      const client = clientFor(f.kubeconfig, 'metrics-server/v0.7.2 (metallb-lab)');
      // Loaded here, not at the top: other `metallb cluster` commands need not load its TLS code.
      const { MetricsServer } = await import('../cluster/metrics-server/server.js');
      const ms = new MetricsServer(client, log, {
        bindAddress: f.bindAddress,
        securePort: f.securePort,
        ...(f.certDir ? { certDir: f.certDir } : {}),
        ...(f.tlsCertFile && f.tlsPrivateKeyFile ? { tlsCertFile: f.tlsCertFile, tlsPrivateKeyFile: f.tlsPrivateKeyFile } : {}),
        metricResolutionMs: f.metricResolution,
        scraper: {
          addressTypes: f.kubeletPreferredAddressTypes.split(',').map((s) => s.trim()),
          port: f.kubeletPort,
          useNodeStatusPort: f.kubeletUseNodeStatusPort,
          scheme: f.kubeletScheme,
          insecureTLS: f.kubeletInsecureTls,
          timeoutMs: f.kubeletRequestTimeout,
        },
        alwaysAllowPaths: f.authorizationAlwaysAllowPaths.split(',').map((s) => s.trim()).filter(Boolean),
      });
      let port: number;
      try {
        port = await ms.start();
      } catch (err) {
        throw new Error(`metrics-server: cannot start: ${errorText(err)}`);
      }
      log.info({ server: client.server.origin, address: `${f.bindAddress}:${port}`, resolution: `${f.metricResolution / 1000}s` }, 'metrics-server serving');
      await runUntilSignal(log, () => ms.stop(), f.exitWithStdin === true);
    });
}
