// `metallb lab up|status|exec|down|node`: a whole cluster on this host in network namespaces (see docs/lab.md).
// The lab's modules are imported when a command runs: every lab process starts through this CLI, so what each
// command does not need is not loaded.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CleanupReport } from '../lab/cleanup.js';
import { checkLabName, DEFAULT_LAB, defaultStateDir, findMachine, MAX_NODES } from '../lab/plan.js';
import { readState, resolveStateDir, type LabState } from '../lab/state.js';
import { parseGoDuration } from '../config/duration.js';

function parseDuration(v: string): number {
  const d = parseGoDuration(v);
  if (!d.ok || d.nanoseconds <= 0) throw new InvalidArgumentError(`"${v}" is not a positive duration (e.g. 120s, 5m)`);
  return Math.round(d.nanoseconds / 1e6);
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
    .addOption(nameOption())
    .action(async (o: { nodes: number; loadbalancer: boolean; stateDir?: string; timeout: number; name: string }) =>
      guarded(async () => {
        const { labUp, usageText } = await import('../lab/up.js');
        const r = await labUp({
          name: o.name,
          nodes: o.nodes,
          loadBalancer: o.loadbalancer,
          timeoutMs: o.timeout,
          progress,
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
    .description('run a command in a lab machine\'s network namespace (node1…, client); the exit code is passed on')
    .argument('<machine>', 'node1, node2, …, client (or a namespace name)')
    .argument('<command...>', 'the command and its arguments (put -- before it)')
    .addOption(nameOption())
    .passThroughOptions()
    .action(async (machine: string, command: string[], o: { name: string }) =>
      guarded(async () => {
        requireRoot('metallb lab exec');
        const st = loadRunning(o.name);
        const m = findMachine(st.plan, machine);
        if (!m) {
          throw new Error(`no machine "${machine}" in lab "${st.plan.name}" (have: ${[...st.plan.nodes.map((n) => n.name), st.plan.client.name].join(', ')})`);
        }
        const { runInteractive } = await import('../lab/run.js');
        process.exitCode = await runInteractive('ip', ['netns', 'exec', m.netns, ...command]);
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
