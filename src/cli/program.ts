// The `metallb` program. Each subcommand lives in its own module and registers itself here.
// Exit codes: 0 success, 1 a negative answer (invalid config, pending services), 2 usage or unreadable input.
import { Command, CommanderError } from 'commander';

export const EXIT_USAGE = 2;

type Register = (program: Command) => void;

/**
 * Every top-level command and the modules that register it, in the order `--help` lists them. A process loads only
 * the modules of the command it runs (the lab starts a dozen `metallb` processes: a kubelet need not load the API
 * server, the speaker and the controller); help, and a command that is not here, load them all.
 */
export const COMMANDS: ReadonlyArray<readonly [name: string, load: () => Promise<Register[]>]> = [
  ['config', async () => [(await import('./config-commands.js')).registerConfigCommands]],
  ['dry-run', async () => [(await import('./dry-run.js')).registerDryRun]],
  ['dev-apiserver', async () => [(await import('./dev-apiserver.js')).registerDevApiserver]],
  ['controller', async () => [(await import('./controller.js')).registerController]],
  ['lab', async () => [(await import('./lab.js')).registerLab]],
  ['memberlist', async () => [(await import('./memberlist.js')).registerMemberlist]],
  [
    'cluster',
    async () => {
      const [cluster, kubelet, metricsServer] = await Promise.all([import('./cluster.js'), import('./cluster-kubelet.js'), import('./cluster-metrics-server.js')]);
      return [cluster.registerCluster, kubelet.registerKubelet, metricsServer.registerMetricsServer];
    },
  ],
  ['speaker', async () => [(await import('./speaker.js')).registerSpeaker]],
];

/** The program with the commands named (all when `only` is undefined or names none of them). */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('metallb')
    .description('metallb-ts: a network load-balancer for bare-metal Kubernetes clusters (MetalLB-compatible)')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError()
    .exitOverride();
  const wanted = COMMANDS.filter(([name]) => name === only);
  for (const registers of await Promise.all((wanted.length > 0 ? wanted : COMMANDS).map(([, load]) => load()))) {
    for (const register of registers) register(program);
  }
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    // argv: node, script, then the command name first (the root command has no options taking a value).
    const program = await buildProgram(argv[2]);
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other commander error is a usage error.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    process.stderr.write(`metallb: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT_USAGE;
  }
}
