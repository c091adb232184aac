// `metallb dev-apiserver`: an in-memory Kubernetes API server for tests, the lab and local development.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { isIP } from 'node:net';
import { createLogger, isLogLevel, type LogLevel } from '../log.js';
import { startDevApiServer, type ExtraKubeconfig } from '../cluster/apiserver/server.js';
import { AUTHORIZATION_MODES, type AuthorizationMode } from '../cluster/apiserver/auth/authz.js';

export { startDevApiServer } from '../cluster/apiserver/server.js';
export type { DevApiServer, DevApiServerOptions } from '../cluster/apiserver/server.js';

interface CliOptions {
  port?: number;
  host: string;
  certDir?: string;
  securePort: number;
  bindAddress?: string[];
  tlsSan?: string[];
  advertiseAddress?: string;
  tokenAuthFile?: string;
  adminToken?: string;
  authorizationMode?: AuthorizationMode;
  anonymousAuth: boolean;
  kubeProxyConfigmap?: string | true;
  clusterCidr: string;
  serviceAccountIssuer?: string;
  apiAudiences?: string[];
  serviceAccountMaxTokenExpiration?: number;
  kubeconfigFor?: ExtraKubeconfig[];
  kubeconfigOut?: string;
  dataFile?: string;
  auditLogPath?: string;
  serviceCidr: string;
  serviceCidrV6?: string;
  nodePortRange: string;
  logLevel: LogLevel;
  watchHistory: number;
  exitWithStdin?: boolean;
  namespaceController: boolean;
}

const parsePort = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (0 = any free port)');
  return n;
};

const parseLevel = (v: string): LogLevel => {
  if (!isLogLevel(v)) throw new InvalidArgumentError('must be one of all, debug, info, warn, error, none');
  return v;
};

const parseIPArg = (v: string): string => {
  if (!isIP(v)) throw new InvalidArgumentError('must be an IP address');
  return v;
};

/** Repeatable and comma-separated list options. */
const collectList =
  (check?: (x: string) => string) =>
  (v: string, prev: string[] | undefined): string[] => [
    ...(prev ?? []),
    ...v
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((x) => (check ? check(x) : x)),
  ];

/** kube-apiserver's `--authorization-mode` is a list; `Node,RBAC` means RBAC here (there is no Node authorizer). */
const parseMode = (v: string): AuthorizationMode => {
  const modes = v.split(',').map((m) => m.trim());
  for (const m of modes) if (!['Node', ...AUTHORIZATION_MODES].includes(m)) throw new InvalidArgumentError(`unknown authorization mode "${m}" (supported: RBAC, AlwaysAllow; Node is accepted and means RBAC)`);
  if (modes.includes('AlwaysAllow') && modes.length === 1) return 'AlwaysAllow';
  if (modes.includes('RBAC')) return 'RBAC';
  throw new InvalidArgumentError('must include RBAC or be AlwaysAllow');
};

const parseBoolArg = (v: string): boolean => {
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw new InvalidArgumentError('must be true or false');
};

/** A Go duration (`48h`, `1h30m`, `600s`) or plain seconds. */
export const parseDurationSeconds = (v: string): number => {
  if (/^\d+$/.test(v)) return Number(v);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (!m || v === '') throw new InvalidArgumentError('must be a duration such as 48h, 90m or 3600s');
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
};

/** `USER[,GROUP...]=PATH` */
const parseKubeconfigFor = (v: string, prev: ExtraKubeconfig[] | undefined): ExtraKubeconfig[] => {
  const eq = v.indexOf('=');
  if (eq <= 0 || eq === v.length - 1) throw new InvalidArgumentError('must be USER[,GROUP...]=PATH, e.g. system:node:node1,system:nodes=/var/run/lab/node1.kubeconfig');
  const [user, ...groups] = v
    .slice(0, eq)
    .split(',')
    .map((x) => x.trim());
  if (!user) throw new InvalidArgumentError('the user name is empty');
  return [...(prev ?? []), { user, groups: groups.filter(Boolean), path: v.slice(eq + 1) }];
};

export function registerDevApiserver(program: Command): void {
  program
    .command('dev-apiserver')
    .description('run an in-memory Kubernetes API server (kubectl, helm and client libraries work against it)')
    .option('--port <n>', 'plain HTTP port (0 = any free port); default 0 without --cert-dir, no plain HTTP with it', parsePort)
    .option('--host <addr>', 'plain HTTP address', '127.0.0.1')
    .option('--cert-dir <dir>', 'serve HTTPS with the CA and certificates kept here (generated on first start)')
    .option('--secure-port <n>', 'HTTPS port (0 = any free port)', parsePort, 6443)
    .option('--bind-address <addr>', 'HTTPS address (repeatable; default 127.0.0.1)', collectList(parseIPArg))
    .option('--tls-san <name>', 'extra DNS name or IP in the serving certificate (repeatable, comma-separated)', collectList())
    .option('--advertise-address <ip>', 'address clients and the kubernetes Service endpoints use (default: the first bind address)', parseIPArg)
    .option('--token-auth-file <path>', 'static bearer tokens, one `token,user,uid,"group1,group2"` a line')
    .option('--admin-token <token>', 'a bearer token for kubernetes-admin in system:masters (default metallb-dev-token without --cert-dir)')
    .option('--authorization-mode <mode>', 'RBAC or AlwaysAllow (default: RBAC with --cert-dir, AlwaysAllow without)', parseMode)
    .option('--anonymous-auth <bool>', 'requests without credentials are system:anonymous (else 401)', parseBoolArg, true)
    .option('--kube-proxy-configmap [mode]', "create kubeadm's kube-system/kube-proxy ConfigMap with this proxy mode (e.g. nftables)")
    .option('--cluster-cidr <cidrs>', 'pod network written into the kube-proxy ConfigMap', '10.244.0.0/16')
    .option('--service-account-issuer <url>', 'iss of service-account tokens', 'https://kubernetes.default.svc.cluster.local')
    .option('--api-audiences <list>', 'audiences the API server accepts in service-account tokens (default: the issuer)', collectList())
    .option('--service-account-max-token-expiration <duration>', 'cap on TokenRequest expirations (e.g. 48h)', parseDurationSeconds)
    .option('--kubeconfig-for <spec>', 'also write a kubeconfig with a client certificate: USER[,GROUP...]=PATH (repeatable; needs --cert-dir)', parseKubeconfigFor)
    .option('--kubeconfig-out <path>', 'write the admin kubeconfig here once the server listens')
    .option('--data-file <path>', 'persist objects in this JSON file and load it at start')
    .option('--audit-log-path <path>', 'append one audit.k8s.io/v1 Event (level Metadata) per request to this file (- = stdout)')
    .option('--service-cidr <cidr>', 'IPv4 service cluster IP range', '10.96.0.0/12')
    .option('--service-cidr-v6 <cidr>', 'IPv6 service cluster IP range (enables dual-stack)')
    .option('--node-port-range <lo-hi>', 'node port range', '30000-32767')
    .option('--watch-history <n>', 'change events kept for resuming watches (older resourceVersions get 410 Gone)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
      return n;
    }, 20000)
    .option('--no-namespace-controller', 'leave terminating namespaces to a namespace controller (metallb cluster controller-manager), as kube-apiserver does; by default this server empties and finalizes them itself')
    .option('--exit-with-stdin', 'shut down when stdin closes (test harnesses: the server dies with its parent)')
    .option('--log-level <level>', 'all, debug, info, warn, error, none', parseLevel, 'info' as LogLevel)
    .action(async (o: CliOptions) => {
      const log = createLogger('dev-apiserver', o.logLevel);
      if (o.kubeconfigFor?.length && !o.certDir) throw new InvalidArgumentError('--kubeconfig-for needs --cert-dir (the kubeconfigs carry client certificates signed by its CA)');
      const srv = await startDevApiServer({
        host: o.host,
        serviceCIDR: o.serviceCidr,
        nodePortRange: o.nodePortRange,
        historySize: o.watchHistory,
        logger: log,
        anonymousAuth: o.anonymousAuth,
        namespaceController: o.namespaceController,
        securePort: o.securePort,
        ...(o.port !== undefined ? { port: o.port } : {}),
        ...(o.certDir ? { certDir: o.certDir } : {}),
        ...(o.bindAddress?.length ? { bindAddresses: o.bindAddress } : {}),
        ...(o.tlsSan?.length ? { tlsSans: o.tlsSan } : {}),
        ...(o.advertiseAddress ? { advertiseAddress: o.advertiseAddress } : {}),
        ...(o.tokenAuthFile ? { tokenAuthFile: o.tokenAuthFile } : {}),
        ...(o.adminToken !== undefined ? { adminToken: o.adminToken } : {}),
        ...(o.authorizationMode ? { authorizationMode: o.authorizationMode } : {}),
        ...(o.kubeProxyConfigmap !== undefined ? { kubeProxyConfigMap: { mode: o.kubeProxyConfigmap === true ? '' : o.kubeProxyConfigmap, clusterCIDR: o.clusterCidr } } : {}),
        ...(o.serviceAccountIssuer ? { serviceAccountIssuer: o.serviceAccountIssuer } : {}),
        ...(o.apiAudiences?.length ? { apiAudiences: o.apiAudiences } : {}),
        ...(o.serviceAccountMaxTokenExpiration !== undefined ? { serviceAccountMaxTokenExpirationSeconds: o.serviceAccountMaxTokenExpiration } : {}),
        ...(o.kubeconfigFor?.length ? { extraKubeconfigs: o.kubeconfigFor } : {}),
        ...(o.kubeconfigOut ? { kubeconfigOut: o.kubeconfigOut } : {}),
        ...(o.dataFile ? { dataFile: o.dataFile } : {}),
        ...(o.auditLogPath ? { auditLogPath: o.auditLogPath } : {}),
        ...(o.serviceCidrV6 ? { serviceCIDRv6: o.serviceCidrV6 } : {}),
      });
      log.info(
        {
          url: srv.url,
          ...(srv.httpUrl && srv.httpsUrl ? { httpUrl: srv.httpUrl } : {}),
          kubeconfig: o.kubeconfigOut ?? null,
          dataFile: o.dataFile ?? null,
          certDir: o.certDir ?? null,
          authorizationMode: srv.auth.authorizer.mode,
        },
        'dev-apiserver listening',
      );
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          log.info({ signal }, 'shutting down');
          srv.close().then(
            () => resolve(),
            (e: unknown) => {
              log.error({ err: String(e) }, 'shutdown failed');
              resolve();
            },
          );
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        if (o.exitWithStdin) {
          process.stdin.on('end', () => stop('stdin closed'));
          process.stdin.on('error', () => stop('stdin closed'));
          process.stdin.resume();
        }
      });
      process.exit(0);
    });
}
