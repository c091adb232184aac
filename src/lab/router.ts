// BGP mode's router: the real daemon (BIRD 2, FRR or GoBGP, Debian's packages) in the router namespace, peering with
// every node (IPv4 and IPv6 sessions, BFD where the daemon has it) and installing each Service route in its kernel
// table with every advertising node as a next hop (ECMP). `metallb lab router` runs it under the lab's supervisor:
// it starts the daemon, keeps GoBGP's routes in the kernel (GoBGP has no kernel table of its own here), and stops the
// daemon on SIGTERM.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import type { LabPlan } from './plan.js';
import { startRouter, type Router } from './routers/runner.js';
import type { RouteEntry, RouterSpec } from './routers/types.js';
import { readState } from './state.js';

const exec = promisify(execFile);

/** The daemon's view of the lab: one neighbor per node and family, passive (the speakers dial). */
export function labRouterSpec(plan: LabPlan): RouterSpec {
  const g = plan.bgp;
  if (!g) throw new Error(`lab "${plan.name}" is not in BGP mode`);
  const bfd = g.daemon !== 'gobgp';
  return {
    asn: g.routerAsn,
    routerId: plan.router.ipv4,
    kernel: g.daemon !== 'gobgp',
    neighbors: plan.nodes.flatMap((n) => [
      { name: n.name, address: n.ipv4, asn: g.nodeAsn, bfd, families: ['ipv4'] as const },
      { name: `${n.name}_v6`, address: n.ipv6, asn: g.nodeAsn, bfd, families: ['ipv6'] as const },
    ]),
  };
}

export const routerDir = (plan: LabPlan): string => join(plan.stateDir, 'router');

/** prefix -> sorted next hops (global addresses), from the daemon's paths. */
export function ecmpRoutes(paths: readonly RouteEntry[]): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const p of paths) {
    const hop = p.nextHops.find((h) => !h.toLowerCase().startsWith('fe80:'));
    if (!hop) continue;
    let set = out.get(p.prefix);
    if (!set) out.set(p.prefix, (set = new Set()));
    set.add(hop);
  }
  return new Map([...out].map(([k, v]) => [k, [...v].sort()]));
}

/** `ip route` arguments installing `prefix` through every next hop. */
export function ecmpRouteArgs(prefix: string, hops: readonly string[]): string[] {
  if (hops.length === 1) return ['route', 'replace', prefix, 'via', hops[0]!, 'proto', 'bgp'];
  return ['route', 'replace', prefix, 'proto', 'bgp', ...hops.flatMap((h) => ['nexthop', 'via', h])];
}

interface IpRouteJson {
  dst?: string;
  gateway?: string;
  nexthops?: { gateway?: string }[];
}

/**
 * `ip -j route show proto bgp` (one family) as prefix -> next hops joined as `ecmpRoutes` sorts them; `ip` prints a
 * host route's destination without its length.
 */
export function kernelBgpRoutes(json: unknown, family: 'ipv4' | 'ipv6'): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of Array.isArray(json) ? (json as IpRouteJson[]) : []) {
    if (!r.dst || r.dst === 'default') continue;
    const prefix = r.dst.includes('/') ? r.dst : `${r.dst}/${family === 'ipv4' ? 32 : 128}`;
    const hops = [...(r.gateway ? [r.gateway] : []), ...(r.nexthops ?? []).map((h) => h.gateway ?? '')].filter(Boolean).sort();
    out.set(prefix, hops.join(','));
  }
  return out;
}

/** GoBGP's RIB into the router's kernel table (what BIRD's and FRR's kernel protocols do themselves). */
class KernelSync {
  /** What the kernel holds; undefined until read from it (a restarted `lab router` inherits its predecessor's routes). */
  private installed: Map<string, string> | undefined;

  constructor(private readonly router: () => Router, private readonly netns: string, private readonly log: Logger) {}

  private async kernelRoutes(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const family of ['ipv4', 'ipv6'] as const) {
      const { stdout } = await exec('ip', ['-j', '-n', this.netns, ...(family === 'ipv6' ? ['-6'] : []), 'route', 'show', 'proto', 'bgp']);
      for (const [k, v] of kernelBgpRoutes(JSON.parse(stdout || '[]'), family)) out.set(k, v);
    }
    return out;
  }

  async once(): Promise<void> {
    // Routes a killed predecessor installed would otherwise stay for good once their paths are gone.
    this.installed ??= await this.kernelRoutes();
    const r = this.router();
    const want = new Map<string, string[]>([...ecmpRoutes(await r.routes('ipv4')), ...ecmpRoutes(await r.routes('ipv6'))]);
    for (const [prefix, hops] of want) {
      const key = hops.join(',');
      if (this.installed.get(prefix) === key) continue;
      await exec('ip', ['-n', this.netns, ...ecmpRouteArgs(prefix, hops)]);
      this.installed.set(prefix, key);
      this.log.info({ prefix, nextHops: hops }, 'route installed');
    }
    for (const prefix of [...this.installed.keys()]) {
      if (want.has(prefix)) continue;
      await exec('ip', ['-n', this.netns, 'route', 'del', prefix, 'proto', 'bgp']).catch(() => undefined);
      this.installed.delete(prefix);
      this.log.info({ prefix }, 'route withdrawn');
    }
  }
}

/** Daemons of an earlier run of this command (killed with SIGKILL) still hold the namespace's ports and sockets. */
async function killLeftovers(netns: string, log: Logger): Promise<void> {
  const { stdout } = await exec('ip', ['netns', 'pids', netns]).catch(() => ({ stdout: '' }));
  for (const pid of stdout.split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
      log.info({ pid }, 'killed a daemon left by an earlier run');
    } catch {
      /* gone */
    }
  }
}

const nodeSet = (plan: LabPlan): string => plan.nodes.map((n) => `${n.name}=${n.ipv4},${n.ipv6}`).join(' ');

/**
 * Runs until SIGTERM/SIGINT; the daemon's own logs go to STATE/router/. `lab node add|remove` changes the node list in
 * the state file: the daemon is then started again with the new neighbors (sessions drop for a moment).
 */
export async function runLabRouter(stateDir: string, log: Logger): Promise<void> {
  const state = readState(stateDir);
  if (!state) throw new Error(`no lab state in ${stateDir}`);
  let plan = state.plan;
  const daemon = plan.bgp!.daemon;
  await killLeftovers(plan.router.netns, log);
  const start = async (): Promise<Router> => {
    const spec = labRouterSpec(plan);
    const r = await startRouter(daemon, spec, { netns: plan.router.netns, dir: routerDir(plan), readyTimeoutMs: 60_000 });
    log.info({ daemon, pids: r.pids(), asn: spec.asn, neighbors: spec.neighbors.map((n) => n.address) }, 'router daemon running');
    return r;
  };
  let router = await start();
  let busy = false;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  const sync = daemon === 'gobgp' ? new KernelSync(() => router, plan.router.netns, log) : undefined;
  if (sync) {
    const tick = (): void => {
      const s = busy ? Promise.resolve() : sync.once();
      void s.catch((err: Error) => log.warn({ err: err.message }, 'kernel route sync failed')).finally(() => {
        if (!stopping) timer = setTimeout(tick, 200);
      });
    };
    tick();
  }
  const watch = setInterval(() => {
    if (busy || stopping) return;
    // A daemon that dies takes this process with it, so the supervisor restarts both.
    for (const pid of router.pids()) {
      try {
        process.kill(pid, 0);
      } catch {
        log.error({ pid, log: router.log().slice(-2000) }, 'router daemon exited');
        process.exit(1);
      }
    }
    const next = readState(stateDir)?.plan;
    if (!next || nodeSet(next) === nodeSet(plan)) return;
    busy = true;
    log.info({ nodes: next.nodes.map((n) => n.name) }, 'the lab\'s nodes changed: restarting the router daemon with new neighbors');
    plan = next;
    void router.stop().then(start).then((r) => {
      router = r;
    }, (err: Error) => {
      log.error({ err: err.message }, 'router daemon could not be restarted');
      process.exit(1);
    }).finally(() => {
      busy = false;
    });
  }, 1000);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  stopping = true;
  clearInterval(watch);
  clearTimeout(timer);
  await router.stop();
  log.info({ daemon }, 'router daemon stopped');
}
