// The pod network, routed like Calico: each pod gets a named network namespace with `eth0` holding a /32 and a /128,
// default routes via 169.254.1.1 (onlink) and fe80::1; the node end `veth<id>` answers ARP for the gateway by
// proxy ARP, holds fe80::1/64, and carries a host route to each pod address. No bridge: the node routes.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { CommandError, run } from './run.js';

export const GATEWAY_V4 = '169.254.1.1';
export const GATEWAY_V6 = 'fe80::1';

export interface SandboxNet {
  netns: string;
  /** Node end of the veth pair. */
  veth: string;
  ips: string[];
}

const isV6 = (ip: string): boolean => ip.includes(':');

/** 8 hex digits from a pod uid; a later window of the uid when the first is taken by another pod on this node. */
export function sandboxId(uid: string, taken: (id: string) => boolean): string {
  const hex = uid.replace(/[^0-9a-fA-F]/g, '').toLowerCase();
  for (let i = 0; i + 8 <= hex.length; i += 8) {
    const id = hex.slice(i, i + 8);
    if (!taken(id)) return id;
  }
  // A uid that is not hex at all (hand-made objects): a stable hash.
  let h = 0x811c9dc5;
  for (const ch of uid) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

function writeSysctl(path: string, value: string): void {
  if (!existsSync(path)) return;
  if (readFileSync(path, 'utf8').trim() === value) return;
  writeFileSync(path, value);
}

/**
 * Node-side settings every pod needs, in the kubelet's own network namespace: forwarding, and a route for the
 * pods' IPv4 gateway so that proxy ARP answers for it even on a node without a default route.
 */
export async function ensureNodeNetwork(): Promise<void> {
  writeSysctl('/proc/sys/net/ipv4/ip_forward', '1');
  writeSysctl('/proc/sys/net/ipv6/conf/all/forwarding', '1');
  await run(['ip', 'route', 'replace', `${GATEWAY_V4}/32`, 'dev', 'lo']);
}

export async function removeNodeNetwork(): Promise<void> {
  await run(['ip', 'route', 'del', `${GATEWAY_V4}/32`, 'dev', 'lo']).catch(() => undefined);
}

/** Does /run/netns/<name> hold a namespace (a mount), not just a leftover file? */
export function netnsMounted(name: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8').includes(` /run/netns/${name} `);
  } catch {
    return false;
  }
}

/** Creates the pod's namespace and veth from scratch (whatever a previous attempt left is removed first). */
export async function createSandboxNet(s: SandboxNet): Promise<void> {
  await deleteSandboxNet(s);
  await run(['ip', 'netns', 'add', s.netns]);
  const nodeCmds = [
    `link add ${s.veth} type veth peer name eth0 netns ${s.netns}`,
    // IPv6 duplicate address detection would hold fe80::1 "tentative" for a second; nothing else uses it here.
    `link set ${s.veth} up`,
    `addr add ${GATEWAY_V6}/64 dev ${s.veth} nodad`,
  ];
  await run(['ip', '-batch', '-'], { input: `${nodeCmds.join('\n')}\n` });
  writeSysctl(`/proc/sys/net/ipv4/conf/${s.veth}/proxy_arp`, '1');
  writeSysctl(`/proc/sys/net/ipv4/neigh/${s.veth}/proxy_delay`, '0');
  writeSysctl(`/proc/sys/net/ipv6/conf/${s.veth}/accept_dad`, '0');
  const podCmds = ['link set lo up', 'link set eth0 up'];
  for (const ip of s.ips) podCmds.push(isV6(ip) ? `addr add ${ip}/128 dev eth0 nodad` : `addr add ${ip}/32 dev eth0`);
  if (s.ips.some((ip) => !isV6(ip))) {
    podCmds.push(`route add ${GATEWAY_V4} dev eth0 scope link`, `route add default via ${GATEWAY_V4} dev eth0 onlink`);
  }
  if (s.ips.some(isV6)) podCmds.push(`route add default via ${GATEWAY_V6} dev eth0`);
  await run(['ip', '-n', s.netns, '-batch', '-'], { input: `${podCmds.join('\n')}\n` });
  const routes = s.ips.map((ip) => (isV6(ip) ? `route replace ${ip}/128 dev ${s.veth}` : `route replace ${ip}/32 dev ${s.veth}`));
  if (routes.length > 0) await run(['ip', '-batch', '-'], { input: `${routes.join('\n')}\n` });
}

/** Removes the veth (its routes go with it) and the namespace; missing pieces are fine. */
export async function deleteSandboxNet(s: Pick<SandboxNet, 'netns' | 'veth'>): Promise<void> {
  await run(['ip', 'link', 'del', s.veth]).catch((e: unknown) => ignoreMissing(e));
  if (existsSync(`/run/netns/${s.netns}`)) await run(['ip', 'netns', 'del', s.netns]).catch((e: unknown) => ignoreMissing(e));
}

function ignoreMissing(e: unknown): void {
  if (e instanceof CommandError && /Cannot find device|No such file|does not exist/i.test(e.stderr)) return;
  throw e;
}

/** Whether the node end of a pod's veth exists (a sandbox that survived a kubelet restart). */
export function vethExists(veth: string): boolean {
  return existsSync(`/proc/sys/net/ipv4/conf/${veth}`);
}

/** Pids whose network namespace is the one bound at /run/netns/<name> (processes a previous kubelet left). */
export function processesInNetns(name: string): number[] {
  let ino: number;
  let dev: number;
  try {
    ({ ino, dev } = statSync(`/run/netns/${name}`));
  } catch {
    return [];
  }
  const out: number[] = [];
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  for (const pid of pids) {
    try {
      const st = statSync(`/proc/${pid}/ns/net`);
      if (st.ino === ino && st.dev === dev) out.push(Number(pid));
    } catch {
      /* gone or not ours to see */
    }
  }
  return out;
}
