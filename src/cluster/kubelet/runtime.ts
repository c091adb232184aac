// A container instance as a process tree: `nsenter --net=/run/netns/<pod>` (not for hostNetwork pods) +
// `unshare --mount --uts --propagation private` + the generated setup script, which exec's the workload, so the
// process the kubelet spawned is the workload itself. It leads its own process group (signals go to the group) and
// its stdout/stderr go to the CRI log file. The setup script reports on fd 3 (SETUP_DONE_FD) that the container's
// namespaces are complete, just before it exec's the workload.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ContainerLogWriter } from './logs.js';
import { SETUP_DONE_FD } from './mounts.js';

export interface StartSpec {
  /** Pod network namespace name; undefined runs in the kubelet's own (hostNetwork). */
  netns?: string;
  script: string;
  argv: string[];
  env: Record<string, string>;
  logPath: string;
  logMaxBytes?: number;
}

export interface ExitInfo {
  /** The code a runtime reports: the exit status, or 128 + signal number. */
  exitCode: number;
  signal?: number;
  finishedAt: Date;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** The exec error a runtime reports for a program it cannot find or run, or undefined when it is runnable. */
export function executableProblem(argv0: string, env: Record<string, string>): string | undefined {
  if (argv0 === '') return 'exec: "": executable file not found in $PATH';
  const runnable = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (argv0.includes('/')) return runnable(argv0) ? undefined : `exec: "${argv0}": stat ${argv0}: no such file or directory`;
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) if (dir && runnable(join(dir, argv0))) return undefined;
  return `exec: "${argv0}": executable file not found in $PATH`;
}

/** Start time of a process in clock ticks since boot (to tell a pid from a recycled one). */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export class ContainerProcess {
  readonly id = randomBytes(32).toString('hex');
  readonly startedAt = new Date();
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private readonly log: ContainerLogWriter;
  private exitInfo: ExitInfo | undefined;
  private readonly setUp: Promise<boolean>;

  constructor(spec: StartSpec) {
    const inner = ['unshare', '--mount', '--uts', '--propagation', 'private', '--', '/bin/sh', spec.script, ...spec.argv];
    const argv = spec.netns ? ['nsenter', `--net=/run/netns/${spec.netns}`, ...inner] : inner;
    this.log = new ContainerLogWriter(spec.logPath, spec.logMaxBytes);
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'pipe', 'pipe'];
    while (stdio.length < SETUP_DONE_FD) stdio.push('ignore');
    stdio.push('pipe');
    this.child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio, env: spec.env, cwd: '/' });
    this.pid = this.child.pid ?? -1;
    this.log.attach(this.child.stdout!, 'stdout');
    this.log.attach(this.child.stderr!, 'stderr');
    this.setUp = new Promise((resolve) => {
      const done = this.child.stdio[SETUP_DONE_FD] as Readable | null | undefined;
      if (!done || this.pid <= 0) return resolve(false);
      done.once('data', () => {
        resolve(true);
        done.destroy();
      });
      // The script ended (or failed) before reporting: the exit is the news.
      done.once('close', () => resolve(false));
      done.once('error', () => resolve(false));
    });
    this.exited = new Promise((resolve) => {
      let spawnError: Error | undefined;
      this.child.once('error', (e) => {
        spawnError = e;
        this.log.note('stderr', `failed to start: ${e.message}`);
      });
      let streamsClosed = false;
      let exitSeen: ExitInfo | undefined;
      const finish = (): void => {
        if (!exitSeen) return;
        const info = exitSeen;
        exitSeen = undefined;
        void this.log.close().then(() => resolve(info));
      };
      this.child.once('exit', (code, signal) => {
        const sig = signal ? SIGNALS[signal] : undefined;
        const info: ExitInfo = {
          exitCode: spawnError ? 128 : code ?? (sig !== undefined ? 128 + sig : 255),
          ...(sig !== undefined ? { signal: sig } : {}),
          finishedAt: new Date(),
        };
        // A container ends with its first process: what it left behind in its group goes too (before the group id
        // can be reused, so only now).
        try {
          process.kill(-this.pid, 'SIGKILL');
        } catch {
          /* nothing left */
        }
        this.exitInfo = info;
        exitSeen = info;
        if (streamsClosed) finish();
        // Output still held open by an escaped descendant must not keep the exit from being reported.
        else setTimeout(finish, 2000).unref();
      });
      this.child.once('close', () => {
        streamsClosed = true;
        finish();
      });
      if (this.pid <= 0) {
        streamsClosed = true;
      }
    });
  }

  /**
   * Resolves true once the setup script has put the container's namespaces together (mounts, hostname), right before
   * it exec's the workload: hooks and exec probes must enter that final mount namespace, never the node's or a
   * half-built one. Resolves false only when the script ended without getting there. It waits as long as that takes:
   * a deadline here would skip the postStart hook of a slow start without a word. (An earlier version polled
   * /proc/PID/cmdline for the launcher's name; during each execve that file reads empty for up to several ms, which
   * passed for "exec'd", and the postStart hook then ran in the node's mount namespace and wrote to the node's disk.)
   */
  whenSetUp(): Promise<boolean> {
    return this.setUp;
  }

  get running(): boolean {
    return this.exitInfo === undefined && this.pid > 0;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Signals the container's process group (what the workload forked stays with it). */
  signal(sig: NodeJS.Signals): void {
    if (this.pid <= 0) return;
    if (this.exitInfo) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        process.kill(this.pid, sig);
      } catch {
        /* already gone */
      }
    }
  }
}
