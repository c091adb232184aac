// Runs a router daemon (from its RouterLayout) inside a network namespace and answers questions about it. Used by
// the BGP tests and the benchmark; the lab may start the same layouts under its supervisor instead.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BirdControl } from './bird-control.js';
import {
  BIRD_SOCKET, birdLayout, birdProtocolName, parseBirdBfdSessions, parseBirdBgpState, parseBirdGracefulRestart, parseBirdRouteCount, parseBirdRoutes,
} from './bird.js';
import { frrLayout, parseFrrBfdPeers, parseFrrGracefulRestart, parseFrrNeighborState, parseFrrPrefix, parseFrrRoutes } from './frr.js';
import { gobgpLayout, gobgpTarget, parseGobgpGracefulRestart, parseGobgpNeighborState, parseGobgpRib } from './gobgp.js';
import { mrtTableDump } from './mrt.js';
import type { BfdPeerState, NeighborGracefulRestart, NeighborState, RouteEntry, RouterDaemon, RouterLayout, RouterSpec } from './types.js';

const exec = promisify(execFile);

export interface RunOptions {
  netns: string;
  /** Working directory (created; config, sockets, pid files, logs). */
  dir: string;
  /** How long to wait for the daemon to accept commands (default 20 s). */
  readyTimeoutMs?: number;
}

export interface Router {
  readonly daemon: RouterDaemon;
  readonly netns: string;
  readonly dir: string;
  readonly spec: RouterSpec;
  /** Pids of the running processes, in start order. */
  pids(): number[];
  /** Every path of every prefix; `detail` (FRR) asks per prefix so communities are included. */
  routes(family: 'ipv4' | 'ipv6', opts?: { detail?: boolean }): Promise<RouteEntry[]>;
  /** Number of paths held (both families). */
  routeCount(): Promise<number>;
  neighborState(address: string): Promise<NeighborState>;
  /** Graceful restart towards the neighbor at `address` (GoBGP only with the neighbor's `gracefulRestart`). */
  gracefulRestart(address: string): Promise<NeighborGracefulRestart>;
  /** Starts a neighbor configured `disabled` (BIRD). */
  enableNeighbor(name: string): Promise<void>;
  /** Routes in the daemon's BGP table, its own originated ones included (to know a sender is loaded). */
  localRouteCount(): Promise<number>;
  bfdPeers(): Promise<BfdPeerState[]>;
  /** Asks the neighbor at `address` for all its routes again (ROUTE-REFRESH: BIRD `reload in`, FRR `clear bgp soft in`). */
  refreshFrom(address: string): Promise<void>;
  /** The daemon's own log lines (stdout and stderr). */
  log(): string;
  /** Stops every process (SIGTERM, then SIGKILL after 5 s) and starts them again with the same config. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function routerLayout(daemon: RouterDaemon, spec: RouterSpec, dir: string): RouterLayout {
  switch (daemon) {
    case 'bird': return birdLayout(spec, dir);
    case 'frr': return frrLayout(spec, dir);
    case 'gobgp': return gobgpLayout(spec, dir);
  }
}

function userIds(name: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  if (!line) return undefined;
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class RunningRouter implements Router {
  private children: { name: string; child: ChildProcess; exited: Promise<void> }[] = [];
  private bird: BirdControl | undefined;
  private stopped = false;
  readonly daemon: RouterDaemon;

  constructor(
    private readonly layout: RouterLayout,
    readonly spec: RouterSpec,
    readonly netns: string,
    private readonly readyTimeoutMs: number,
  ) {
    this.daemon = layout.daemon;
  }

  get dir(): string {
    return this.layout.dir;
  }

  async start(): Promise<void> {
    const { dir } = this.layout;
    mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(this.layout.files)) writeFileSync(join(dir, name), content);
    const owners = new Set(this.layout.processes.map((p) => p.owner).filter((o): o is string => !!o));
    for (const owner of owners) {
      const ids = userIds(owner);
      if (!ids) throw new Error(`user ${owner} does not exist (is the ${this.daemon} package installed?)`);
      chownSync(dir, ids.uid, ids.gid);
      for (const name of Object.keys(this.layout.files)) chownSync(join(dir, name), ids.uid, ids.gid);
    }
    for (const p of this.layout.processes) {
      if (p.readyFile) rmSync(p.readyFile, { force: true });
      const logFd = openSync(join(dir, `${p.name}.log`), 'a');
      const child = spawn('ip', ['netns', 'exec', this.netns, ...p.argv], { stdio: ['ignore', logFd, logFd] });
      closeSync(logFd);
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.once('error', () => undefined);
      this.children.push({ name: p.name, child, exited });
      if (p.readyFile) await this.waitFor(p.name, child, p.readyFile);
    }
    await this.waitReady();
    if (this.spec.originate && this.spec.originate.length > 0 && this.daemon === 'gobgp') await this.injectGobgp();
  }

  private async waitFor(name: string, child: ChildProcess, file: string): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    while (!existsSync(file)) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${this.daemon} ${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${this.log().slice(-2000)}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.daemon} ${name}: ${file} did not appear within ${this.readyTimeoutMs} ms:\n${this.log().slice(-2000)}`);
      await sleep(25);
    }
  }

  /** The first query that succeeds proves the daemon is up. */
  private async waitReady(): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      try {
        await this.routeCount();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${this.daemon} does not answer: ${(err as Error).message}\n${this.log().slice(-2000)}`);
        await sleep(50);
      }
    }
  }

  private async injectGobgp(): Promise<void> {
    const file = join(this.dir, 'originate.mrt');
    const routes = this.spec.originate ?? [];
    // `gobgp mrt inject` (3.10) returns before the server has taken the last paths of the stream, which are then
    // lost; so the file carries every route twice (injecting a path again is harmless) and we check the count.
    writeFileSync(file, mrtTableDump([...routes, ...routes], {
      peerAddress: this.spec.routerId, peerAsn: this.spec.asn, routerId: this.spec.routerId,
      nextHopV4: this.spec.localAddress ?? this.spec.routerId,
    }));
    const want = new Set(routes).size;
    for (let attempt = 0; attempt < 10 && (await this.routeCount()) < want; attempt++) {
      await this.gobgp(['mrt', 'inject', 'global', file]);
    }
  }

  pids(): number[] {
    return this.children.map((c) => c.child.pid).filter((p): p is number => p !== undefined);
  }

  log(): string {
    return this.layout.processes.map((p) => {
      try {
        return readFileSync(join(this.dir, `${p.name}.log`), 'utf8');
      } catch {
        return '';
      }
    }).join('');
  }

  private async birdCommand(cmd: string): Promise<string> {
    if (!this.bird) this.bird = await BirdControl.connect(join(this.dir, BIRD_SOCKET));
    try {
      const r = await this.bird.command(cmd);
      if (r.code >= 8000) throw new Error(`birdc ${cmd}: ${r.text}`);
      return r.text;
    } catch (err) {
      this.bird?.close();
      this.bird = undefined;
      throw err;
    }
  }

  private async vtysh(cmd: string): Promise<unknown> {
    const { stdout } = await exec('vtysh', ['--vty_socket', this.dir, '-c', cmd], { maxBuffer: 512 * 1024 * 1024 });
    return stdout.trim() === '' ? null : JSON.parse(stdout);
  }

  private async gobgp(args: string[]): Promise<string> {
    const { stdout } = await exec('gobgp', [...gobgpTarget(this.dir), ...args], { maxBuffer: 512 * 1024 * 1024 });
    return stdout;
  }

  async routes(family: 'ipv4' | 'ipv6', opts: { detail?: boolean } = {}): Promise<RouteEntry[]> {
    switch (this.daemon) {
      case 'bird': {
        const protocols = new Map(this.spec.neighbors.map((n) => [birdProtocolName(n.name), n.address]));
        return parseBirdRoutes(await this.birdCommand(`show route all table master${family === 'ipv4' ? 4 : 6}`), protocols)
          .filter((r) => r.from !== undefined || r.asPath.length > 0 || r.nextHops.length > 0);
      }
      case 'frr': {
        const summary = parseFrrRoutes(await this.vtysh(`show bgp ${family} unicast json`));
        if (!opts.detail) return summary;
        const out: RouteEntry[] = [];
        for (const prefix of new Set(summary.map((r) => r.prefix))) out.push(...parseFrrPrefix(await this.vtysh(`show bgp ${family} unicast ${prefix} json`)));
        return out;
      }
      case 'gobgp':
        return parseGobgpRib(JSON.parse((await this.gobgp(['global', 'rib', '-a', family, '-j'])) || '{}'));
    }
  }

  async routeCount(): Promise<number> {
    switch (this.daemon) {
      case 'bird':
        return parseBirdRouteCount(await this.birdCommand('show route where source = RTS_BGP count'));
      case 'frr': {
        let n = 0;
        for (const f of ['ipv4', 'ipv6']) {
          const j = (await this.vtysh(`show bgp ${f} unicast summary json`)) as { totalPrefixCounter?: number; peers?: Record<string, { pfxRcd?: number }> } | null;
          for (const p of Object.values(j?.peers ?? {})) n += p.pfxRcd ?? 0;
        }
        return n;
      }
      case 'gobgp': {
        let n = 0;
        for (const f of ['ipv4', 'ipv6']) {
          const out = await this.gobgp(['global', 'rib', 'summary', '-a', f]);
          n += Number(/Path:\s*(\d+)/.exec(out)?.[1] ?? 0);
        }
        return n;
      }
    }
  }

  async neighborState(address: string): Promise<NeighborState> {
    switch (this.daemon) {
      case 'bird': {
        const protocol = this.birdProtocolAt(address);
        if (!protocol) return 'Unknown';
        return parseBirdBgpState(await this.birdCommand(`show protocols all ${protocol}`));
      }
      case 'frr':
        return parseFrrNeighborState(await this.vtysh(`show bgp neighbors ${address} json`), address);
      case 'gobgp':
        return parseGobgpNeighborState(JSON.parse(await this.gobgp(['neighbor', address, '-j'])));
    }
  }

  /** BIRD's protocol for the neighbor at `address`: undefined when the spec has none, or an error when required. */
  private birdProtocolAt(address: string): string | undefined;
  private birdProtocolAt(address: string, required: 'required'): string;
  private birdProtocolAt(address: string, required?: 'required'): string | undefined {
    const n = this.spec.neighbors.find((x) => x.address === address);
    if (!n && required) throw new Error(`no neighbor ${address}`);
    return n && birdProtocolName(n.name);
  }

  async gracefulRestart(address: string): Promise<NeighborGracefulRestart> {
    switch (this.daemon) {
      case 'bird':
        return parseBirdGracefulRestart(await this.birdCommand(`show protocols all ${this.birdProtocolAt(address, 'required')}`));
      case 'frr':
        return parseFrrGracefulRestart(await this.vtysh(`show bgp neighbors ${address} json`), address);
      case 'gobgp':
        return parseGobgpGracefulRestart(JSON.parse(await this.gobgp(['neighbor', address, '-j'])), await this.gobgp(['neighbor', address]));
    }
  }

  async enableNeighbor(name: string): Promise<void> {
    if (this.daemon !== 'bird') throw new Error(`enableNeighbor is implemented for BIRD only, not ${this.daemon}`);
    await this.birdCommand(`enable ${birdProtocolName(name)}`);
  }

  async localRouteCount(): Promise<number> {
    switch (this.daemon) {
      case 'bird':
        return parseBirdRouteCount(await this.birdCommand('show route count'));
      case 'frr': {
        let n = 0;
        for (const f of ['ipv4', 'ipv6']) {
          const j = (await this.vtysh(`show bgp ${f} unicast summary json`)) as { ribCount?: number } | null;
          n += j?.ribCount ?? 0;
        }
        return n;
      }
      case 'gobgp':
        return this.routeCount();
    }
  }

  async bfdPeers(): Promise<BfdPeerState[]> {
    switch (this.daemon) {
      case 'bird':
        return parseBirdBfdSessions(await this.birdCommand('show bfd sessions'));
      case 'frr':
        return parseFrrBfdPeers(await this.vtysh('show bfd peers json'));
      case 'gobgp':
        return [];
    }
  }

  async refreshFrom(address: string): Promise<void> {
    switch (this.daemon) {
      case 'bird':
        await this.birdCommand(`reload in ${this.birdProtocolAt(address, 'required')}`);
        return;
      case 'frr':
        await exec('vtysh', ['--vty_socket', this.dir, '-c', `clear bgp ${address} soft in`]);
        return;
      case 'gobgp':
        await this.gobgp(['neighbor', address, 'softresetin']);
        return;
    }
  }

  private async kill(): Promise<void> {
    this.bird?.close();
    this.bird = undefined;
    // Reverse order: bgpd before zebra, so routes are not pushed to a zebra that is gone.
    for (const c of this.children.slice().reverse()) {
      if (c.child.exitCode !== null || c.child.signalCode !== null) continue;
      c.child.kill('SIGTERM');
      const timer = setTimeout(() => c.child.kill('SIGKILL'), 5000);
      await c.exited;
      clearTimeout(timer);
    }
    this.children = [];
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.kill();
  }
}

/**
 * Queries a daemon that runs already (the lab's router, started by `metallb lab router`) from its directory; `stop`
 * closes only our control connection, `restart` refuses, `pids` is empty.
 */
export function attachRouter(daemon: RouterDaemon, spec: RouterSpec, opts: Pick<RunOptions, 'netns' | 'dir'>): Router {
  return new AttachedRouter(routerLayout(daemon, spec, opts.dir), spec, opts.netns, 0);
}

/** Never started by us, so there are no children: `stop` only closes the BIRD control connection. */
class AttachedRouter extends RunningRouter {
  override restart(): Promise<void> {
    return Promise.reject(new Error('an attached router is not ours to restart'));
  }
}

/** Writes the daemon's files and starts it in `opts.netns`; resolves once it answers queries. */
export async function startRouter(daemon: RouterDaemon, spec: RouterSpec, opts: RunOptions): Promise<Router> {
  const r = new RunningRouter(routerLayout(daemon, spec, opts.dir), spec, opts.netns, opts.readyTimeoutMs ?? 20_000);
  try {
    await r.start();
  } catch (err) {
    await r.stop();
    throw err;
  }
  return r;
}
