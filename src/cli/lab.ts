// `metallb lab up|status|exec|down|node`: a whole cluster on this host in network namespaces (see docs/lab.md).
// The lab's modules are imported when a command runs: every lab process starts through this CLI, so what each
// command does not need is not loaded.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CleanupReport } from '../lab/cleanup.js';
import { checkLabName, DEFAULT_LAB, defaultStateDir, findMachine, LAB_MODES, MAX_NODES, type LabMode, type LabRouterDaemon } from '../lab/plan.js';
import { readState, resolveStateDir, type LabState } from '../lab/state.js';
import { parseGoDuration } from '../config/duration.js';

function parseDuration(v: string): number {
  const d = parseGoDuration(v);
  if (!d.ok || d.nanoseconds <= 0) throw new InvalidArgumentError(`"${v}" is not a positive duration (e.g. 120s, 5m)`);
  return Math.round(d.nanoseconds / 1e6);
}

function parseRate(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`"${v}" is not a rate (requests per second, 0 for unpaced)`);
  return n;
}

function parseConcurrency(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${v}" is not a positive integer`);
  return n;
}

/** A duration given to the controller-manager as written (Go syntax), checked here. */
function parseWindow(v: string): string {
  const d = parseGoDuration(v);
  if (!d.ok || d.nanoseconds < 0) throw new InvalidArgumentError(`"${v}" is not a duration (e.g. 30s, 2m)`);
  return v;
}

function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`${what} needs root (it creates network namespaces, links and cgroups); run it with sudo`);
  }
}

const EXIT_FAIL = 1;

const progress = (line: string): void => {
  process.stderr.write(`lab: ${line}\n`);
};

function parseNodes(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_NODES) throw new InvalidArgumentError(`must be an integer from 1 to ${MAX_NODES}`);
  return n;
}

function parseName(v: string): string {
  try {
    checkLabName(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return v;
}

const nameOption = (): Option => new Option('--name <name>', 'lab name: another name gets its own namespaces, bridge, addresses and state dir').argParser(parseName).default(DEFAULT_LAB);

/** Prints the error and sets the exit code; lab errors are one clear line, not a stack trace. */
async function guarded(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    process.stderr.write(`metallb lab: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT_FAIL;
  }
}

function loadRunning(name: string): LabState {
  const dir = resolveStateDir(defaultStateDir(name));
  const st = readState(dir);
  if (!st) throw new Error(`no lab "${name}" is up (no state in ${dir}); start one with \`metallb lab up${name === DEFAULT_LAB ? '' : ` --name ${name}`}\``);
  return st;
}

function reportText(r: CleanupReport): string {
  const parts = [
    r.processes ? `${r.processes} processes killed` : '',
    r.netns.length ? `${r.netns.length} namespaces` : '',
    r.links.length ? `${r.links.length} links` : '',
    r.nftTables.length ? `${r.nftTables.length} nft tables` : '',
    r.cgroups.length ? `${r.cgroups.length} cgroup dirs` : '',
    r.mounts.length ? `${r.mounts.length} mounts` : '',
    r.files.length ? `state ${r.files.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length ? `removed: ${parts.join(', ')}` : 'nothing to remove';
}

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('a whole Kubernetes cluster on this host in network namespaces: nodes, pods, a client (root; see docs/lab.md)')
    .enablePositionalOptions();

  lab
    .command('up')
    .description('build the lab network, start the cluster, install metallb-ts, and wait until it is ready')
    .option('--nodes <n>', 'number of nodes', parseNodes, 3)
    .option('--no-loadbalancer', 'do not install metallb-ts: LoadBalancer Services stay <pending> until you install one')
    .option('--state-dir <dir>', 'state directory (kubeconfig, logs, node dirs)')
    .option('--timeout <duration>', 'how long each wait may take (API server, nodes, metallb-ts)', parseDuration, 120_000)
    .option('--hpa-downscale-stabilization <duration>', "HorizontalPodAutoscalers' downscale stabilization window (Kubernetes' default: 5m; e.g. 30s to watch a scale down in a demo)", parseWindow)
    .addOption(new Option('--mode <mode>', 'how Services are announced: layer2 (the client on the LAN), or bgp (a router between the client and the LAN peers with every node)').choices([...LAB_MODES]).default('layer2'))
    .addOption(new Option('--router <daemon>', 'the router daemon in BGP mode (Debian\'s bird2, frr or gobgpd)').choices(['bird', 'frr', 'gobgp']))
    .option('--l2-xdp', "grant the speakers BPF and NET_ADMIN as the Helm chart's speaker.xdp does, so ARP and NDP are answered in the kernel (XDP)")
    .addOption(nameOption())
    .action(async (o: { nodes: number; loadbalancer: boolean; stateDir?: string; timeout: number; name: string; hpaDownscaleStabilization?: string; mode: LabMode; router?: LabRouterDaemon; l2Xdp?: boolean }) =>
      guarded(async () => {
        const { labUp, usageText } = await import('../lab/up.js');
        const r = await labUp({
          name: o.name,
          nodes: o.nodes,
          loadBalancer: o.loadbalancer,
          timeoutMs: o.timeout,
          mode: o.mode,
          ...(o.router ? { router: o.router } : {}),
          speakerXdp: o.l2Xdp === true,
          progress,
          ...(o.hpaDownscaleStabilization ? { hpaDownscaleStabilization: o.hpaDownscaleStabilization } : {}),
          ...(o.stateDir ? { stateDir: o.stateDir } : {}),
        });
        process.stdout.write(usageText(r.state, r.elapsedMs));
      }),
    );

  lab
    .command('status')
    .description('show the lab: machines, addresses, processes (-o json: the topology for scripts)')
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'))
    .addOption(nameOption())
    .action(async (o: { output: string; name: string }) =>
      guarded(async () => {
        const st = loadRunning(o.name);
        const { statusJson, statusText } = await import('../lab/status.js');
        if (o.output === 'json') process.stdout.write(JSON.stringify(statusJson(st.plan), null, 2) + '\n');
        else process.stdout.write(await statusText(st));
      }),
    );

  lab
    .command('exec')
    .description('run a command in a lab machine\'s network namespace (node1…, client, router); the exit code is passed on')
    .argument('<machine>', 'node1, node2, …, client, router in BGP mode (or a namespace name)')
    .argument('<command...>', 'the command and its arguments (put -- before it)')
    .addOption(nameOption())
    .passThroughOptions()
    .action(async (machine: string, command: string[], o: { name: string }) =>
      guarded(async () => {
        requireRoot('metallb lab exec');
        const st = loadRunning(o.name);
        const m = findMachine(st.plan, machine);
        if (!m) {
          throw new Error(`no machine "${machine}" in lab "${st.plan.name}" (have: ${[...st.plan.nodes.map((n) => n.name), st.plan.client.name, ...(st.plan.mode === 'bgp' ? [st.plan.router.name] : [])].join(', ')})`);
        }
        // With options before the machine, commander passes the `--` that ends them through with the command.
        const argv = command[0] === '--' ? command.slice(1) : command;
        if (argv.length === 0) throw new Error('no command given (metallb lab exec MACHINE -- CMD…)');
        const { runInteractive } = await import('../lab/run.js');
        process.exitCode = await runInteractive('ip', ['netns', 'exec', m.netns, ...argv]);
      }),
    );

  lab
    .command('down')
    .description('stop the lab and remove everything it made (also after a crash or kill -9 of its processes)')
    .option('--state-dir <dir>', 'state directory, if it was moved with up --state-dir and its link is gone')
    .addOption(nameOption())
    .action(async (o: { name: string; stateDir?: string }) =>
      guarded(async () => {
        requireRoot('metallb lab down');
        const { cleanupLab, labIdentity } = await import('../lab/cleanup.js');
        const report = await cleanupLab(labIdentity(o.name, o.stateDir));
        process.stderr.write(`lab: ${reportText(report)}\n`);
        if (report.problems.length) throw new Error(`some of the lab could not be removed:\n  ${report.problems.join('\n  ')}`);
      }),
    );

  const node = lab.command('node').description('add or remove a node of a running lab');
  node
    .command('add')
    .description('add a node (next free index), start its kubelet and proxy, wait until it is Ready')
    .option('--timeout <duration>', 'how long to wait for the node to be Ready', parseDuration, 120_000)
    .addOption(nameOption())
    .action(async (o: { name: string; timeout: number }) =>
      guarded(async () => {
        requireRoot('metallb lab node add');
        const { addNode } = await import('../lab/node.js');
        const n = await addNode(resolveStateDir(defaultStateDir(o.name)), { timeoutMs: o.timeout, progress });
        process.stdout.write(`${n.name}\n`);
      }),
    );
  node
    .command('remove')
    .description('unplug a node: stop its kubelet, proxy and pods, remove its namespace, delete the Node object')
    .argument('<node>', 'node name (node2)')
    .option('--timeout <duration>', 'how long to wait', parseDuration, 60_000)
    .addOption(nameOption())
    .action(async (name: string, o: { name: string; timeout: number }) =>
      guarded(async () => {
        requireRoot('metallb lab node remove');
        const { removeNode } = await import('../lab/node.js');
        await removeNode(resolveStateDir(defaultStateDir(o.name)), name, { timeoutMs: o.timeout, progress });
      }),
    );

  lab
    .command('load')
    .description("a bounded HTTP load generator run in the client's namespace: every second requests/s, latency p50/p90/p99, errors and the pods that answered; then a summary (Ctrl-C stops it early). A new connection per request by default, like a curl loop, so pods added by a scale up get their share")
    .argument('<url>', 'http://EXTERNAL-IP/ (or any URL the client can reach, e.g. http://NODE-IP:NODEPORT/)')
    .option('--rate <r>', 'requests per second over all workers (0: as fast as the workers go)', parseRate, 0)
    .option('--concurrency <c>', 'requests in flight (workers)', parseConcurrency, 10)
    .addOption(new Option('--duration <duration>', 'how long the load runs (at most 10m)').argParser(parseDuration).default(30_000, '30s'))
    .option('--keep-alive', 'reuse connections (one per worker); they stay with the pod that took them, so pods added later get none of this load', false)
    .addOption(new Option('--timeout <duration>', 'per request').argParser(parseDuration).default(5000, '5s'))
    .addOption(new Option('--in-client', '(internal) already in the client namespace').hideHelp())
    .addOption(nameOption())
    .action(async (url: string, o: { rate: number; concurrency: number; duration: number; keepAlive: boolean; timeout: number; inClient?: boolean; name: string }) =>
      guarded(async () => {
        const { checkLoadOptions, runLoad } = await import('../lab/load.js');
        let target: URL;
        try {
          target = new URL(url);
        } catch {
          throw new Error(`"${url}" is not a URL (e.g. http://10.89.0.200/)`);
        }
        const opts = { url: target, rate: o.rate, concurrency: o.concurrency, durationMs: o.duration, newConnections: !o.keepAlive, timeoutMs: o.timeout };
        checkLoadOptions(opts);
        if (o.inClient) {
          // a Ctrl-C reaches this process twice (from the terminal and forwarded by the parent): both only abort
          const ac = new AbortController();
          process.on('SIGINT', () => ac.abort());
          process.on('SIGTERM', () => ac.abort());
          await runLoad(opts, (t) => process.stdout.write(t), ac.signal);
          return;
        }
        requireRoot('metallb lab load');
        const st = loadRunning(o.name);
        const { spawn } = await import('node:child_process');
        const args = [process.argv[1] ?? 'metallb', 'lab', 'load', url, '--rate', String(o.rate), '--concurrency', String(o.concurrency), '--duration', `${o.duration}ms`, '--timeout', `${o.timeout}ms`, ...(o.keepAlive ? ['--keep-alive'] : []), '--in-client', '--name', o.name];
        const child = spawn('nsenter', [`--net=/run/netns/${st.plan.client.netns}`, '--', process.execPath, ...args], { stdio: 'inherit' });
        // the generator prints its summary when stopped: signals to this process (a terminal's Ctrl-C also reaches it
        // directly, a `kill` does not) are passed on, and this process waits for it
        const forward = (sig: NodeJS.Signals) => (): void => {
          if (child.exitCode === null) child.kill(sig);
        };
        process.on('SIGINT', forward('SIGINT'));
        process.on('SIGTERM', forward('SIGTERM'));
        process.exitCode = await new Promise<number>((resolve, reject) => {
          child.once('error', reject);
          child.once('exit', (code, signal) => resolve(code ?? (signal ? 130 : 1)));
        });
      }),
    );

  lab
    .command('router', { hidden: true })
    .description('(internal) BGP mode\'s router daemon, run by the lab supervisor')
    .requiredOption('--state-dir <dir>', 'state directory')
    .addOption(nameOption())
    .action(async (o: { stateDir: string }) => {
      const { runLabRouter } = await import('../lab/router.js');
      const { createLogger } = await import('../log.js');
      const log = createLogger('lab-router');
      try {
        await runLabRouter(o.stateDir, log);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'router failed');
        process.exit(1);
      }
      process.exit(0);
    });

  lab
    .command('supervise', { hidden: true })
    .description('(internal) the lab supervisor that `lab up` starts')
    .requiredOption('--state-dir <dir>', 'state directory')
    .addOption(nameOption())
    .action(async (o: { stateDir: string }) => {
      const { runSupervisor } = await import('../lab/supervisor.js');
      const { createLogger } = await import('../log.js');
      await runSupervisor(o.stateDir, createLogger('lab-supervisor'));
      process.exit(0);
    });

}
