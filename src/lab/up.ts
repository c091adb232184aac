// `lab up`: preflight, state dir, credentials, topology, the supervisor, then wait for the cluster and install
// metallb-ts. A failure before the supervisor runs removes what was made; a later one leaves the lab up for its logs.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeClient, loadKubeConfig } from '../k8s/client.js';
import { cleanupLab, labIdentity, LAB_ENV } from './cleanup.js';
import { metallbBin } from './components.js';
import { createIdentities } from './credentials.js';
import { installMetallb } from './install.js';
import { registerMetricsServer } from './metrics.js';
import { apiserverURL, makePlan, type LabMode, type LabPlan, type LabRouterDaemon } from './plan.js';
import { preflight } from './preflight.js';
import { paths, writeJson, type LabState } from './state.js';
import { buildTopology } from './topology.js';
import { waitFor, waitNodesReady, type Progress } from './wait.js';

/** The repository (or installed package) root: where bin/metallb.js and deploy/ are. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && existsSync(join(dir, 'bin', 'metallb.js'))) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'metallb-ts') return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the metallb-ts package root (bin/metallb.js)');
    dir = up;
  }
}

export interface UpOptions {
  name?: string;
  nodes?: number;
  stateDir?: string;
  loadBalancer?: boolean;
  /** Shortens the HPA downscale stabilization window (Kubernetes' default: 5m), e.g. `30s`. */
  hpaDownscaleStabilization?: string;
  mode?: LabMode;
  router?: LabRouterDaemon;
  /** Grant the speaker what the chart's `speaker.xdp: true` does (ARP and NDP answered in the kernel). */
  speakerXdp?: boolean;
  /** For each wait (API server, nodes, metallb-ts). Default 120 s. */
  timeoutMs?: number;
  progress?: Progress;
}

export interface UpResult {
  state: LabState;
  elapsedMs: number;
}

export class LabStartError extends Error {
  override name = 'LabStartError';
}

function spawnSupervisor(state: LabState): number {
  const p = paths(state.plan.stateDir);
  mkdirSync(p.logs, { recursive: true });
  const out = openSync(p.log('supervisor'), 'a');
  try {
    const child = spawn(process.execPath, [metallbBin(state.root), 'lab', 'supervise', '--name', state.plan.name, '--state-dir', state.plan.stateDir], {
      detached: true,
      stdio: ['ignore', out, out],
      cwd: state.root,
      env: { ...process.env, [LAB_ENV]: state.plan.name },
    });
    child.unref();
    if (child.pid === undefined) throw new LabStartError('cannot start the lab supervisor');
    return child.pid;
  } finally {
    closeSync(out);
  }
}

/** The admin client, once the API server has written its kubeconfig and answers /readyz. */
export async function waitApiserver(plan: LabPlan, opts: { timeoutMs: number; progress?: Progress }): Promise<KubeClient> {
  const kc = paths(plan.stateDir).kubeconfig;
  let client: KubeClient | undefined;
  await waitFor(
    'API server',
    async () => {
      if (!existsSync(kc)) return { done: false, state: 'starting' };
      client ??= new KubeClient(loadKubeConfig(kc), { userAgent: 'metallb-lab' });
      await client.get('/readyz', { timeoutMs: 3000 });
      return { done: true, state: `answers at ${client.server.origin}` };
    },
    { ...opts, intervalMs: 100 },
  );
  if (!client) throw new LabStartError('API server client missing');
  return client;
}

export async function labUp(opts: UpOptions = {}): Promise<UpResult> {
  const started = Date.now();
  const progress = opts.progress ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const plan = makePlan({
    ...(opts.name ? { name: opts.name } : {}), nodes: opts.nodes ?? 3, ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
    ...(opts.mode ? { mode: opts.mode } : {}), ...(opts.router ? { router: opts.router } : {}),
  });
  const id = labIdentity(plan.name, plan.stateDir);
  await preflight(plan, id);

  const root = packageRoot();
  const state: LabState = {
    version: 1,
    plan,
    loadBalancer: opts.loadBalancer ?? true,
    ...(opts.hpaDownscaleStabilization ? { hpaDownscaleStabilization: opts.hpaDownscaleStabilization } : {}),
    createdAt: new Date().toISOString(),
    root,
  };
  const p = paths(plan.stateDir);
  try {
    mkdirSync(plan.stateDir, { recursive: true, mode: 0o755 });
    if (plan.stateDir !== plan.defaultStateDir) symlinkSync(plan.stateDir, plan.defaultStateDir);
    mkdirSync(p.logs, { recursive: true });
    mkdirSync(p.nodes, { recursive: true });
    createIdentities(p.pki);
    writeJson(p.state, state);
    await buildTopology(plan);
    progress(`network: bridge ${plan.bridge} ${plan.lan.ipv4} ${plan.lan.ipv6}, ${plan.nodes.length} nodes, client ${plan.client.ipv4}` +
      (plan.bgp ? ` behind router ${plan.router.ipv4} (${plan.bgp.daemon}, AS ${plan.bgp.routerAsn})` : ''));
  } catch (err) {
    progress(`could not build the lab (${(err as Error).message}); removing what was made`);
    await cleanupLab(id);
    throw err;
  }
  const pid = spawnSupervisor(state);
  progress(`supervisor pid ${pid}, logs in ${p.logs}`);

  const client = await waitApiserver(plan, { timeoutMs, progress });
  try {
    // metrics-server's registration (its RBAC first thing: the process is already starting and retries until it may
    // list nodes and pods) and the cluster's own start up side by side: waiting for the APIService to turn Available
    // before the nodes and metallb-ts would only add its ~10 s to every lab up.
    await Promise.all([
      registerMetricsServer(client, plan, { timeoutMs, progress }),
      (async () => {
        await waitNodesReady(client, plan.nodes.map((n) => n.name), { timeoutMs, progress });
        if (state.loadBalancer) await installMetallb(client, plan, root, { timeoutMs, progress, speakerXdp: opts.speakerXdp ?? false });
      })(),
    ]);
  } finally {
    client.close();
  }
  return { state, elapsedMs: Date.now() - started };
}

/** What `lab up` prints when done: how to use the lab. */
export function usageText(state: LabState, elapsedMs: number): string {
  const { plan } = state;
  const p = paths(plan.stateDir);
  const nameFlag = plan.name === 'lab' ? '' : ` --name ${plan.name}`;
  return [
    `lab "${plan.name}" is up in ${(elapsedMs / 1000).toFixed(1)} s: ${plan.nodes.length} node(s) ${plan.nodes.map((n) => n.ipv4).join(', ')}, ` +
      `client ${plan.client.ipv4}, API server ${apiserverURL(plan)}`,
    state.loadBalancer
      ? `metallb-ts is installed; Services of type LoadBalancer get addresses from ${plan.serviceRange.ipv4} and ${plan.serviceRange.ipv6}` +
        (plan.bgp ? `, advertised by BGP (nodes AS ${plan.bgp.nodeAsn}) to the ${plan.bgp.daemon} router ${plan.router.ipv4} / ${plan.router.ipv6} (AS ${plan.bgp.routerAsn})` : '')
      : `no load-balancer installed (--no-loadbalancer): install one with kubectl apply -f ${join(state.root, 'deploy', 'metallb-ts.yaml')}`,
    '',
    'metrics-server is running (kubectl top pods, kubectl top nodes; HorizontalPodAutoscalers scale on its metrics)',
    ...(state.hpaDownscaleStabilization
      ? [`HorizontalPodAutoscalers scale down after a ${state.hpaDownscaleStabilization} stabilization window (shortened by --hpa-downscale-stabilization; Kubernetes' default is 5m)`]
      : []),
    '',
    `  export KUBECONFIG=${p.kubeconfig}`,
    '  kubectl get nodes -o wide',
    `  metallb lab exec${nameFlag} client -- curl -s http://<EXTERNAL-IP>/`,
    ...(plan.bgp ? [`  metallb lab exec${nameFlag} router -- ip route    # the Services' routes, one next hop per advertising node`] : []),
    `  metallb lab status${nameFlag}`,
    `  metallb lab down${nameFlag}`,
    '',
  ].join('\n');
}
