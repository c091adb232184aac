// The `metallb` command. Each subcommand lives in its own module and registers itself here.
// Exit codes: 0 success, 1 a negative answer (invalid config, pending services), 2 usage or unreadable input.
import { Command, CommanderError } from 'commander';
import { registerConfigCommands } from './config-commands.js';
import { registerDryRun } from './dry-run.js';
import { registerDevApiserver } from './dev-apiserver.js';
import { registerController } from './controller.js';
import { registerLab } from './lab.js';
import { registerMemberlist } from './memberlist.js';
import { registerCluster } from './cluster.js';
import { registerKubelet } from './cluster-kubelet.js';
import { registerMetricsServer } from './cluster-metrics-server.js';
import { registerSpeaker } from './speaker.js';

export const EXIT_USAGE = 2;

export function buildProgram(): Command {
  const program = new Command('metallb')
    .description('metallb-ts: a network load-balancer for bare-metal Kubernetes clusters (MetalLB-compatible)')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerConfigCommands(program);
  registerDryRun(program);
  registerDevApiserver(program);
  registerController(program);
  registerLab(program);
  registerMemberlist(program);
  registerCluster(program);
  registerKubelet(program);
  registerMetricsServer(program);
  registerSpeaker(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
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

await main(process.argv);
