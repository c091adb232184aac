// Checks before `lab up` touches the host: root, the tools it needs, no lab of that name already up or left over, and
// the lab's address ranges not used by anything on the host.
import { parsePrefix, prefixesOverlap, type Prefix } from '../net/ip.js';
import { leftovers, type LabIdentity } from './cleanup.js';
import { run, tryRun } from './run.js';
import type { LabPlan } from './plan.js';
import { isAlive, readState, readSupervisorPid, resolveStateDir } from './state.js';

export class PreflightError extends Error {
  override name = 'PreflightError';
}

function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new PreflightError(`${what} needs root (it creates network namespaces, links and cgroups); run it with sudo`);
  }
}

const TOOLS = ['ip', 'nsenter', 'nft'];

async function checkTools(): Promise<void> {
  const missing: string[] = [];
  for (const t of TOOLS) if ((await tryRun('sh', ['-c', `command -v ${t}`])) === undefined) missing.push(t);
  if (missing.length) throw new PreflightError(`missing tools: ${missing.join(', ')} (Debian packages iproute2, util-linux, nftables)`);
}

interface IpAddr {
  ifname: string;
  addr_info?: Array<{ local: string; prefixlen: number }>;
}
interface IpRoute {
  dst: string;
  dev?: string;
}

/** Addresses and routes on the host that overlap `ranges` (described for the error message). */
export function conflicts(ranges: readonly string[], addrs: readonly IpAddr[], routes: readonly IpRoute[]): string[] {
  const wanted = ranges.map((r) => ({ text: r, p: parsePrefix(r) })).filter((x): x is { text: string; p: Prefix } => x.p !== undefined);
  const found: string[] = [];
  // A broader route (a VPN's 10.0.0.0/8) is not in the way: the lab's more specific routes win. An address inside a
  // lab range, or a route as specific as the lab's or more, is.
  const hit = (cidr: string): string | undefined => {
    const p = parsePrefix(cidr);
    return p ? wanted.find((w) => w.p.family === p.family && p.length >= w.p.length && prefixesOverlap(w.p, p))?.text : undefined;
  };
  for (const a of addrs) {
    for (const ai of a.addr_info ?? []) {
      const r = hit(`${ai.local}/${ai.local.includes(':') ? 128 : 32}`);
      if (r) found.push(`${r}: address ${ai.local}/${ai.prefixlen} on ${a.ifname}`);
    }
  }
  for (const rt of routes) {
    if (rt.dst === 'default' || rt.dst.startsWith('fe80:') || rt.dst.startsWith('ff00:')) continue;
    const dst = rt.dst.includes('/') ? rt.dst : `${rt.dst}/${rt.dst.includes(':') ? 128 : 32}`;
    const r = hit(dst);
    if (r) found.push(`${r}: route ${rt.dst}${rt.dev ? ` dev ${rt.dev}` : ''}`);
  }
  return [...new Set(found)];
}

export async function checkAddresses(plan: LabPlan): Promise<void> {
  const addrs = JSON.parse(await run('ip', ['-j', 'addr', 'show'])) as IpAddr[];
  const routes4 = JSON.parse(await run('ip', ['-j', 'route', 'show', 'table', 'all'])) as IpRoute[];
  const routes6 = JSON.parse((await tryRun('ip', ['-j', '-6', 'route', 'show', 'table', 'all'])) ?? '[]') as IpRoute[];
  // Local-table routes mirror addresses (already reported); broadcast/multicast entries are not destinations.
  const found = conflicts([plan.lan.ipv4, plan.lan.ipv6, ...plan.clusterCIDRs], addrs, [...routes4, ...routes6]);
  if (found.length) {
    throw new PreflightError(`the lab's address ranges are in use on this host:\n  ${found.join('\n  ')}\n(another lab? \`metallb lab up --name X\` uses other ranges)`);
  }
}

/** Refuses when the lab is up or its remains are on the host; the message says why and what to do. */
export async function checkNotUp(plan: LabPlan, id: LabIdentity): Promise<void> {
  const dir = resolveStateDir(plan.defaultStateDir);
  const st = readState(dir);
  const pid = readSupervisorPid(dir);
  if (st && pid && isAlive(pid)) {
    throw new PreflightError(`lab "${plan.name}" is already up (state ${dir}, supervisor pid ${pid}); \`metallb lab down${plan.name === 'lab' ? '' : ` --name ${plan.name}`}\` first`);
  }
  const left = await leftovers(id);
  if (left.length) {
    throw new PreflightError(
      `remains of lab "${plan.name}" are on this host:\n  ${left.join('\n  ')}\n\`metallb lab down${plan.name === 'lab' ? '' : ` --name ${plan.name}`}\` removes them`,
    );
  }
}

export async function preflight(plan: LabPlan, id: LabIdentity): Promise<void> {
  requireRoot('metallb lab up');
  await checkTools();
  await checkNotUp(plan, id);
  await checkAddresses(plan);
}
