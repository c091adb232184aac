// A node for kubelet tests: a network namespace `tkl-n<k>` wired to the host by a veth (host `tkl-h<k>`
// 10.91.<k>.1/24 + fd00:91:<k>::1/64, node `eth0` .2 / ::2), the dev API server listening on the host end, and
// `metallb cluster kubelet` running inside the node namespace with pod CIDRs 10.91.<100+k>.0/24 and
// fd00:91:<100+k>::/64. Everything is removed by `cleanup()`, also after a failure: the kubelet (by pid), pod
// processes and namespaces (prefix tkl-p<k>-), links, cgroup directories, temp dirs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient, loadKubeConfig } from '../../../src/k8s/client.js';
import { startDevServer, type DevServerHandle } from '../../helpers/devserver.js';
import { ROOT, sleep, waitFor as waitForBase } from '../../controller/helpers.js';

export { sleep };

const BIN = join(ROOT, 'bin', 'metallb.js');

export const sh = (cmd: string): { code: number; out: string } => {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  return { code: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
};
const must = (cmd: string): string => {
  const r = sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd}: ${r.out}`);
  return r.out;
};

export interface KubeletProc {
  child: ChildProcess;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface TestNode {
  k: number;
  netns: string;
  hostIf: string;
  nodeName: string;
  nodeIPs: [string, string];
  hostIPs: [string, string];
  podCIDRs: [string, string];
  podPrefix: string;
  cgroupRoot: string;
  rootDir: string;
  dir: string;
  api: DevServerHandle;
  client: KubeClient;
  kubelet: KubeletProc;
  /** Starts (another) kubelet with the same flags; the test must have stopped the previous one. */
  startKubelet(extra?: string[]): Promise<KubeletProc>;
  /** Runs a command inside the node namespace. */
  inNode(cmd: string): { code: number; out: string };
  cleanup(): Promise<void>;
}

function pickIndex(): number {
  for (let tries = 0; tries < 200; tries++) {
    const k = 1 + Math.floor(Math.random() * 98);
    if (!existsSync(`/run/netns/tkl-n${k}`) && !existsSync(`/sys/class/net/tkl-h${k}`)) return k;
  }
  throw new Error('no free tkl- index');
}

/** Test nodes not cleaned up yet: a timed-out wait describes their pods. */
const liveNodes = new Set<TestNode>();

/**
 * `waitFor` of the controller tests; when it times out, the error also shows every pod of the live test nodes (phase,
 * container statuses, events) and the kubelet's last warnings, so a failure on a CI machine explains itself.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs?: number, everyMs?: number): Promise<T> {
  try {
    return await waitForBase(what, fn, timeoutMs, everyMs);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('timed out') || liveNodes.size === 0) throw err;
    const dumps = await Promise.all([...liveNodes].map((t) => describeNode(t)));
    throw new Error(`${err.message}\n${dumps.join('\n')}`, { cause: err });
  }
}

interface PodDump {
  metadata: { name: string; namespace: string; deletionTimestamp?: string };
  status?: { phase?: string; reason?: string; message?: string; conditions?: { type: string; status: string; reason?: string }[]; initContainerStatuses?: unknown[]; containerStatuses?: unknown[] };
}
interface EventDump {
  involvedObject: { kind?: string; name: string; namespace?: string };
  type: string;
  reason: string;
  message: string;
  count?: number;
  lastTimestamp?: string;
}

/** Pods of the node with their statuses and events, and the kubelet's last warnings and errors (for a failure). */
export async function describeNode(t: TestNode): Promise<string> {
  const within = <T>(p: Promise<T>): Promise<T> => Promise.race([p, sleep(10_000).then(() => Promise.reject(new Error('no answer in 10 s')))]);
  const lines: string[] = [`--- test node ${t.nodeName}: pods and events at ${new Date().toISOString()}`];
  try {
    const [pods, events] = await within(Promise.all([t.client.get<{ items: PodDump[] }>('/api/v1/pods'), t.client.get<{ items: EventDump[] }>('/api/v1/events')]));
    for (const p of pods.items) {
      const { phase, reason, message, initContainerStatuses, containerStatuses } = p.status ?? {};
      const conditions = (p.status?.conditions ?? []).map((c) => `${c.type}=${c.status}${c.reason ? `(${c.reason})` : ''}`).join(' ');
      lines.push(`pod ${p.metadata.namespace}/${p.metadata.name}${p.metadata.deletionTimestamp ? ' (terminating)' : ''}: ${JSON.stringify({ phase, reason, message, conditions, initContainerStatuses, containerStatuses })}`);
    }
    for (const e of events.items.filter((x) => x.involvedObject.kind === 'Pod').slice(-60)) {
      lines.push(`event ${e.involvedObject.namespace ?? ''}/${e.involvedObject.name} ${e.type} ${e.reason}${(e.count ?? 1) > 1 ? ` x${e.count}` : ''}: ${e.message}`);
    }
  } catch (err) {
    lines.push(`(cannot read pods and events: ${String(err)})`);
  }
  const warnings = t.kubelet?.logs().split('\n').filter((l) => /"level":"(warn|error|fatal)"/.test(l)) ?? [];
  lines.push(`kubelet warnings and errors (last 30 of ${warnings.length}):`, ...warnings.slice(-30));
  return lines.join('\n');
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface NodeOptions {
  kubeletArgs?: string[];
}

export async function startTestNode(opts: NodeOptions = {}): Promise<TestNode> {
  const k = pickIndex();
  const netns = `tkl-n${k}`;
  const hostIf = `tkl-h${k}`;
  const dir = mkdtempSync(join(tmpdir(), 'tkl-kubelet-'));
  const node: Partial<TestNode> & { cleanupSteps: (() => Promise<void> | void)[] } = { cleanupSteps: [] };
  const t: TestNode = {
    k,
    netns,
    hostIf,
    nodeName: `tkl-node${k}`,
    nodeIPs: [`10.91.${k}.2`, `fd00:91:${k}::2`],
    hostIPs: [`10.91.${k}.1`, `fd00:91:${k}::1`],
    podCIDRs: [`10.91.${100 + k}.0/24`, `fd00:91:${100 + k}::/64`],
    podPrefix: `tkl-p${k}-`,
    cgroupRoot: `tkl-cg-${process.pid}-${k}`,
    rootDir: join(dir, 'root'),
    dir,
    api: undefined as unknown as DevServerHandle,
    client: undefined as unknown as KubeClient,
    kubelet: undefined as unknown as KubeletProc,
    startKubelet: async () => {
      throw new Error('not ready');
    },
    inNode: (cmd) => sh(`ip netns exec ${netns} sh -c '${cmd.replace(/'/g, `'\\''`)}'`),
    cleanup: async () => {
      liveNodes.delete(t);
      for (const step of node.cleanupSteps.reverse()) {
        try {
          await step();
        } catch {
          /* keep cleaning */
        }
      }
    },
  };
  // Cleanup steps run in reverse order of registration.
  node.cleanupSteps.push(() => rmSync(dir, { recursive: true, force: true }));
  node.cleanupSteps.push(() => removeCgroups(t.cgroupRoot));
  node.cleanupSteps.push(() => {
    sh(`ip link del ${hostIf} 2>/dev/null`);
    killNetns(netns);
    sh(`ip netns del ${netns} 2>/dev/null`);
  });
  node.cleanupSteps.push(() => {
    for (const n of existsSync('/run/netns') ? readdirSync('/run/netns') : []) {
      if (!n.startsWith(t.podPrefix)) continue;
      killNetns(n);
      sh(`ip netns del ${n} 2>/dev/null`);
    }
  });
  try {
    must(`ip netns add ${netns}`);
    must(`ip link add ${hostIf} type veth peer name eth0 netns ${netns}`);
    must(`ip addr add ${t.hostIPs[0]}/24 dev ${hostIf} && ip addr add ${t.hostIPs[1]}/64 dev ${hostIf} nodad && ip link set ${hostIf} up`);
    must(
      `ip -n ${netns} link set lo up && ip -n ${netns} link set eth0 up && ip -n ${netns} addr add ${t.nodeIPs[0]}/24 dev eth0 && ip -n ${netns} addr add ${t.nodeIPs[1]}/64 dev eth0 nodad && ip -n ${netns} route add default via ${t.hostIPs[0]} && ip -n ${netns} route add default via ${t.hostIPs[1]}`,
    );
    // The host reaches the pods through the node, as the lab's control plane does.
    must(`ip route add ${t.podCIDRs[0]} via ${t.nodeIPs[0]} && ip route add ${t.podCIDRs[1]} via ${t.nodeIPs[1]}`);
    node.cleanupSteps.push(() => {
      sh(`ip route del ${t.podCIDRs[0]} 2>/dev/null; ip route del ${t.podCIDRs[1]} 2>/dev/null`);
    });
    // As in the lab: HTTPS with a CA of its own, RBAC, and the kubelet authenticating as system:node:<name>.
    const kubeletKubeconfig = join(dir, 'kubelet.kubeconfig');
    t.api = await startDevServer({
      tls: true,
      extraArgs: ['--bind-address', t.hostIPs[0], '--kubeconfig-for', `system:node:${t.nodeName},system:nodes=${kubeletKubeconfig}`],
    });
    node.cleanupSteps.push(() => t.api.stop());
    t.client = new KubeClient(loadKubeConfig(t.api.kubeconfig));
    node.cleanupSteps.push(() => t.client.close());
    await waitFor('kubelet kubeconfig', () => existsSync(kubeletKubeconfig), 30_000, 50);
    const baseArgs = [
      '--kubeconfig',
      kubeletKubeconfig,
      '--node-name',
      t.nodeName,
      '--node-ip',
      t.nodeIPs.join(','),
      '--pod-cidr',
      t.podCIDRs.join(','),
      '--root-dir',
      t.rootDir,
      '--netns-prefix',
      t.podPrefix,
      '--cgroup-root',
      t.cgroupRoot,
      '--restart-backoff',
      '1s',
      '--restart-backoff-max',
      '4s',
      '--node-status-report-frequency',
      '5s',
      '--stats-interval',
      '1s',
      '--shutdown-grace-period',
      '2s',
      '--exit-with-stdin',
      '--log-level',
      'debug',
    ];
    t.startKubelet = async (extra: string[] = ['--teardown-on-exit']) => {
      const kp = spawnKubelet(netns, [...baseArgs, ...(opts.kubeletArgs ?? []), ...extra]);
      t.kubelet = kp;
      node.cleanupSteps.push(() => kp.stop('SIGTERM'));
      await waitFor(
        'kubelet running',
        () => {
          if (kp.child.exitCode !== null) throw new Error(`kubelet exited ${kp.child.exitCode}:\n${kp.logs().slice(-4000)}`);
          return kp.logs().includes('"kubelet running"');
        },
        60_000,
        100,
      );
      return kp;
    };
    await t.startKubelet();
    liveNodes.add(t);
    return t;
  } catch (err) {
    await t.cleanup();
    throw err;
  }
}

function spawnKubelet(netns: string, args: string[]): KubeletProc {
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, BIN, 'cluster', 'kubelet', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  child.stdin!.on('error', () => {});
  let out = '';
  const add = (s: string): void => {
    out += s;
    if (out.length > 8_000_000) out = out.slice(-4_000_000);
  };
  child.stdout!.setEncoding('utf8').on('data', add);
  child.stderr!.setEncoding('utf8').on('data', add);
  const exited = new Promise<void>((res) =>
    child.once('exit', () => {
      live.delete(child);
      res();
    }),
  );
  return {
    child,
    logs: () => out,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Kills every process whose network namespace is /run/netns/<name>. */
export function killNetns(name: string): void {
  let st;
  try {
    st = statSync(`/run/netns/${name}`);
  } catch {
    return;
  }
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const ns = statSync(`/proc/${pid}/ns/net`);
      if (ns.ino === st.ino && ns.dev === st.dev) process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Removes <controller>/<root> cgroup trees (killing what is left in them). */
export function removeCgroups(root: string): void {
  for (const c of ['cpu', 'cpuacct', 'memory', 'pids', 'unified', '']) {
    const base = join('/sys/fs/cgroup', c, root);
    if (!existsSync(base)) continue;
    const dirs: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      dirs.push(d);
    };
    try {
      walk(base);
    } catch {
      continue;
    }
    for (const d of dirs) {
      try {
        for (const pid of spawnSync('cat', [join(d, 'cgroup.procs')], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const d of dirs) {
      for (let i = 0; i < 20; i++) {
        try {
          rmdirSync(d);
          break;
        } catch {
          spawnSync('sleep', ['0.05']);
        }
      }
    }
  }
}

export interface PodLike {
  metadata: { name: string; namespace: string; uid?: string; deletionTimestamp?: string };
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
    conditions?: { type: string; status: string; reason?: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount: number; state: Record<string, { reason?: string; exitCode?: number; message?: string }>; lastState: Record<string, { exitCode?: number; reason?: string }> }[];
  };
}

export async function getPod(t: TestNode, ns: string, name: string): Promise<PodLike | undefined> {
  try {
    return await t.client.get<PodLike>(`/api/v1/namespaces/${ns}/pods/${name}`);
  } catch {
    return undefined;
  }
}

export async function createPod(t: TestNode, pod: Record<string, unknown>): Promise<PodLike> {
  const md = pod.metadata as { namespace?: string };
  const ns = md.namespace ?? 'default';
  const spec = pod.spec as Record<string, unknown>;
  return await t.client.post<PodLike>(`/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', ...pod, spec: { nodeName: t.nodeName, ...spec } });
}

export async function events(t: TestNode, ns: string, pod: string): Promise<{ reason: string; message: string; type: string }[]> {
  const list = await t.client.get<{ items: { involvedObject: { name: string }; reason: string; message: string; type: string }[] }>(`/api/v1/namespaces/${ns}/events`);
  return list.items.filter((e) => e.involvedObject.name === pod);
}

export async function kubeletGet(t: TestNode, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${t.nodeIPs[0]}:10250${path}`);
  return { status: res.status, body: await res.text() };
}

/** Processes on the machine whose command line (arguments joined by spaces) matches `re` (no procps needed). */
export function countProcesses(re: RegExp): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      if (re.test(argv)) n++;
    } catch {
      /* gone */
    }
  }
  return n;
}
