// Test helper: run `metallb dev-apiserver` as a child process and drive it with the real kubectl.
//
//   const srv = await startDevServer();            // waits for the kubeconfig file
//   t.after(() => srv.stop());                      // kills the process, removes the temp dir
//   const out = await kubectl(['get', 'svc', '-A'], srv.kubeconfig);
//
// Notes for users: the default node port range (30000-32767) holds 2768 ports, like a real cluster; for many
// LoadBalancer Services pass `nodePortRange: '1024-65535'` or create them with allocateLoadBalancerNodePorts: false.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'metallb.js');

export interface DevServerOptions {
  /** Persist to this file (`--data-file`). */
  dataFile?: string;
  serviceCIDR?: string;
  serviceCIDRv6?: string;
  nodePortRange?: string;
  logLevel?: string;
  /** Fixed port (default 0: any free port). */
  port?: number;
  /** Use this directory for the kubeconfig (default: a new temp dir, removed by stop()). */
  dir?: string;
  /** How long to wait for the kubeconfig (default 60 s). */
  timeoutMs?: number;
  extraArgs?: string[];
  /** Serve HTTPS with a CA of its own in `<dir>/pki` on a free port (RBAC on, admin kubeconfig with a client cert). */
  tls?: boolean;
  /** `--token-auth-file` contents (`token,user,uid,"group1,group2"` lines), written to `<dir>/tokens.csv`. */
  tokens?: string;
}

export interface DevServerHandle {
  /** Path of the kubeconfig file. */
  kubeconfig: string;
  /** PEM of the cluster CA (tls only) */
  caCert?: string;
  /** http://127.0.0.1:PORT */
  url: string;
  dir: string;
  pid: number;
  child: ChildProcess;
  /** stderr (the JSON logs) so far */
  logs(): string;
  /** SIGTERM (then SIGKILL after 5 s), wait for exit; removes the temp dir unless it was given. Idempotent. */
  stop(): Promise<void>;
  /** Stop the process but keep the directory (e.g. to restart with the same data file). */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function waitExit(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((res) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(t);
      res(code);
    });
  });
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServerHandle> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'metallb-devserver-'));
  const kubeconfig = join(dir, 'kubeconfig');
  rmSync(kubeconfig, { force: true });
  // --exit-with-stdin: if this process dies without stop() (crash, kill), the server sees EOF and exits too
  const args = [BIN, 'dev-apiserver', '--port', String(opts.port ?? 0), '--kubeconfig-out', kubeconfig, '--log-level', opts.logLevel ?? 'info', '--exit-with-stdin'];
  if (opts.dataFile) args.push('--data-file', opts.dataFile);
  if (opts.serviceCIDR) args.push('--service-cidr', opts.serviceCIDR);
  if (opts.serviceCIDRv6) args.push('--service-cidr-v6', opts.serviceCIDRv6);
  if (opts.nodePortRange) args.push('--node-port-range', opts.nodePortRange);
  if (opts.tls) args.push('--cert-dir', join(dir, 'pki'), '--secure-port', '0');
  if (opts.tokens !== undefined) {
    writeFileSync(join(dir, 'tokens.csv'), opts.tokens);
    args.push('--token-auth-file', join(dir, 'tokens.csv'));
  }
  if (opts.extraArgs) args.push(...opts.extraArgs);
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'ignore', 'pipe'] });
  child.stdin!.on('error', () => {});
  live.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    stderr += s;
    if (stderr.length > 4_000_000) stderr = stderr.slice(-2_000_000);
  });
  child.once('exit', () => live.delete(child));
  let stopped = false;
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return waitExit(child, 5000);
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await kill('SIGTERM');
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  try {
    while (!existsSync(kubeconfig)) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dev-apiserver exited (${child.exitCode ?? child.signalCode}) before writing its kubeconfig:\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`dev-apiserver did not write ${kubeconfig} in time:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const m = /server:\s*(\S+)/.exec(readFileSync(kubeconfig, 'utf8'));
  const caFile = join(dir, 'pki', 'ca.crt');
  const caCert = opts.tls && existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined;
  return { kubeconfig, url: m ? m[1]! : '', ...(caCert ? { caCert } : {}), dir, pid: child.pid!, child, logs: () => stderr, stop, kill };
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** stdin (e.g. a manifest for `apply -f -`) */
  input?: string;
  /** kill after this long (default 60 s); `get -w` needs it */
  timeoutMs?: number;
  /** kubectl binary (default: $KUBECTL or `kubectl`); see kubectlBinary('1.27') */
  bin?: string;
}

/** Run kubectl against a kubeconfig; never throws for a non-zero exit (see kubectlOk). */
export function kubectl(args: string[], kubeconfig: string, opts: KubectlOptions = {}): Promise<KubectlResult> {
  const bin = opts.bin ?? process.env.KUBECTL ?? 'kubectl';
  const cacheDir = join(dirname(kubeconfig), '.kube-cache');
  return new Promise((res, rej) => {
    const child = spawn(bin, ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: kubeconfig } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** kubectl that throws (with stderr) on a non-zero exit; returns stdout. */
export async function kubectlOk(args: string[], kubeconfig: string, opts: KubectlOptions = {}): Promise<string> {
  const r = await kubectl(args, kubeconfig, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Path of an exact kubectl version installed next to the default one (e.g. '1.27'), if present. */
export function kubectlBinary(version: string): string | undefined {
  const pathDirs = (process.env.PATH ?? '').split(':');
  for (const d of pathDirs) {
    const k = join(d, 'kubectl');
    if (!existsSync(k)) continue;
    try {
      // resolve symlinks to the SDK directory that holds kubectl.1.27 … kubectl.1.33
      const real = realpathSync(k);
      const cand = join(dirname(real), `kubectl.${version}`);
      if (existsSync(cand)) return cand;
      const found = readdirSync(dirname(real)).find((f) => f === `kubectl.${version}`);
      if (found) return join(dirname(real), found);
    } catch {
      // ignore
    }
  }
  return undefined;
}


/** Write a kubeconfig next to the server's that authenticates with `token` (or with nothing: anonymous). */
export function tokenKubeconfig(srv: DevServerHandle, name: string, token?: string): string {
  const path = join(srv.dir, `${name}.kubeconfig`);
  const cluster = srv.caCert ? `{server: "${srv.url}", certificate-authority-data: ${Buffer.from(srv.caCert).toString('base64')}}` : `{server: "${srv.url}", insecure-skip-tls-verify: true}`;
  const user = token === undefined ? '{}' : `{token: "${token}"}`;
  writeFileSync(
    path,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: ${cluster}}]\nusers: [{name: u, user: ${user}}]\ncontexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: c\n`,
    { mode: 0o600 },
  );
  return path;
}
