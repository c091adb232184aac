// Building the lab's network: the bridge in the host namespace (the control-plane machine), one namespace per node and
// for the client, veths onto the bridge, addresses, pod-network routes and sysctls. The command lists are pure
// functions of the plan (tested without root); `build*` run them.
import { writeFileSync } from 'node:fs';
import { ipBatch, run } from './run.js';
import type { LabPlan, Machine, NodePlan } from './plan.js';

export type Role = 'node' | 'client' | 'router';

/** Host-namespace commands that create the bridge and its addresses. */
export function bridgeCommands(plan: LabPlan): string[] {
  const v4len = plan.lan.ipv4.split('/')[1];
  const v6len = plan.lan.ipv6.split('/')[1];
  return [
    // No IGMP/MLD snooping: the speakers' gratuitous ARP and unsolicited NA, and NDP to solicited-node groups, must
    // reach every port as on a plain switch.
    `link add ${plan.bridge} type bridge mcast_snooping 0`,
    `addr add ${plan.host.ipv4}/${v4len} dev ${plan.bridge}`,
    `addr add ${plan.host.ipv6}/${v6len} dev ${plan.bridge} nodad`,
    `link set ${plan.bridge} up`,
  ];
}

/** Host-namespace commands for one machine: its namespace, and its veth with the inside end moved in. */
export function machineHostCommands(plan: LabPlan, m: Machine): string[] {
  return [
    `link add ${m.hostInterface} type veth peer name ${m.interface} netns ${m.netns} address ${m.mac}`,
    `link set ${m.hostInterface} master ${plan.bridge} up`,
  ];
}

/** Commands run inside a machine's namespace (`ip -n NETNS -batch -`). */
export function machineNetnsCommands(plan: LabPlan, m: Machine): string[] {
  const v4len = plan.lan.ipv4.split('/')[1];
  const v6len = plan.lan.ipv6.split('/')[1];
  return [
    'link set lo up',
    `addr add ${m.ipv4}/${v4len} dev ${m.interface}`,
    `addr add ${m.ipv6}/${v6len} dev ${m.interface} nodad`,
    `link set ${m.interface} up`,
  ];
}

/**
 * Routes to the pod networks of `targets`, for the host (the API server must reach pods for webhooks) and every other
 * node: a node's podCIDRs are reached through that node's LAN address.
 */
export function podRouteCommands(targets: readonly NodePlan[], except?: NodePlan): string[] {
  const out: string[] = [];
  for (const t of targets) {
    if (except && t.index === except.index) continue;
    out.push(`route replace ${t.podCIDRs[0]} via ${t.ipv4}`, `route replace ${t.podCIDRs[1]} via ${t.ipv6}`);
  }
  return out;
}

/**
 * Nodes have a default route through the control-plane machine, as machines on a LAN have a gateway: a process on a
 * node connecting to a ClusterIP needs a route before kube-proxy's output DNAT rewrites the destination.
 */
export function nodeDefaultRoutes(plan: LabPlan): string[] {
  return [`route replace default via ${plan.host.ipv4}`, `route replace default via ${plan.host.ipv6}`];
}

/** sysctls set in a machine's namespace before its interfaces exist, so interfaces inherit the `default` values. */
export function netnsSysctls(role: Role): string[] {
  const common = [
    // Addresses usable at once, and link-local addresses not tentative (NDP sources) when the speaker starts.
    'net.ipv6.conf.all.accept_dad=0',
    'net.ipv6.conf.default.accept_dad=0',
    // The host's IPv4 rp_filter is inherited by new namespaces; make the lab the same on every machine.
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
  ];
  if (role === 'client') return common;
  const forwarding = [...common, 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'];
  if (role === 'node') return forwarding;
  // ECMP over the nodes by connection (5-tuple), as data-centre routers hash, not by source address only.
  return [...forwarding, 'net.ipv4.fib_multipath_hash_policy=1', 'net.ipv6.fib_multipath_hash_policy=1'];
}

export const nsenterArgs = (netns: string, cmd: readonly string[]): string[] => [`--net=/run/netns/${netns}`, '--', ...cmd];

/** `net.ipv4.ip_forward=1` → a shell line writing /proc/sys (procps' sysctl is not on every machine). */
export function sysctlScript(settings: readonly string[]): string {
  return settings
    .map((kv) => {
      const [key, value] = kv.split('=') as [string, string];
      return `echo ${value} > /proc/sys/${key.replace(/\./g, '/')}`;
    })
    .join(' && ');
}

/** /proc/sys/net is the namespace of the process that opens it: a shell entered into `netns` sets that namespace's. */
async function setSysctls(netns: string, settings: readonly string[]): Promise<void> {
  await run('nsenter', nsenterArgs(netns, ['sh', '-c', sysctlScript(settings)]));
}

/** Host sysctls for the lab's links (best effort on kernels without IPv6). */
function hostLinkSysctls(link: string, values: Record<string, string>): void {
  for (const [key, value] of Object.entries(values)) {
    try {
      writeFileSync(`/proc/sys/net/ipv6/conf/${link}/${key}`, value);
    } catch {
      /* no IPv6 on this link */
    }
  }
}

export async function buildBridge(plan: LabPlan): Promise<void> {
  await ipBatch(bridgeCommands(plan));
  hostLinkSysctls(plan.bridge, { accept_dad: '0' });
}

/** Creates machines (namespaces, veths, addresses); nodes also get forwarding and a default route. */
export async function buildMachines(plan: LabPlan, machines: ReadonlyArray<{ machine: Machine; role: Role }>): Promise<void> {
  await ipBatch(machines.map(({ machine }) => `netns add ${machine.netns}`));
  await Promise.all(machines.map(({ machine, role }) => setSysctls(machine.netns, netnsSysctls(role))));
  await ipBatch(machines.flatMap(({ machine }) => machineHostCommands(plan, machine)));
  // Bridge ports carry no addresses; without IPv6 on them they send no DAD/MLD noise into captures.
  for (const { machine } of machines) hostLinkSysctls(machine.hostInterface, { disable_ipv6: '1' });
  await Promise.all(
    machines.map(({ machine, role }) =>
      run('ip', ['-n', machine.netns, '-batch', '-'], {
        input: [...machineNetnsCommands(plan, machine), ...(role === 'node' ? [...nodeDefaultRoutes(plan), ...nodeUplinkRoutes(plan)] : [])].join('\n') + '\n',
      }),
    ),
  );
}

/** Pod-network routes: on the host and on every node, to every other node's podCIDRs. */
export async function buildPodRoutes(plan: LabPlan, nodes: readonly NodePlan[]): Promise<void> {
  await ipBatch(podRouteCommands(nodes));
  await Promise.all(
    nodes.map(async (n) => {
      const lines = podRouteCommands(nodes, n);
      if (lines.length > 0) await run('ip', ['-n', n.netns, '-batch', '-'], { input: lines.join('\n') + '\n' });
    }),
  );
}

/**
 * BGP mode, inside the router's namespace: its second interface `eth1` towards the client's network (the veth pair is
 * made here with the client's end in the client's namespace), and nothing else: routes to Services are what the
 * daemon learns from the speakers.
 */
export function routerUplinkCommands(plan: LabPlan): string[] {
  const g = plan.bgp!;
  const v4len = g.uplink.ipv4.split('/')[1];
  const v6len = g.uplink.ipv6.split('/')[1];
  return [
    `addr add ${g.uplink.routerIPv4}/${v4len} dev eth1`,
    `addr add ${g.uplink.routerIPv6}/${v6len} dev eth1 nodad`,
    'link set eth1 up',
  ];
}

/** BGP mode: the client lives on the uplink, its default routes through the router. */
export function clientUplinkCommands(plan: LabPlan): string[] {
  const g = plan.bgp!;
  const v4len = g.uplink.ipv4.split('/')[1];
  const v6len = g.uplink.ipv6.split('/')[1];
  return [
    'link set lo up',
    `addr add ${plan.client.ipv4}/${v4len} dev ${plan.client.interface}`,
    `addr add ${plan.client.ipv6}/${v6len} dev ${plan.client.interface} nodad`,
    `link set ${plan.client.interface} up`,
    `route replace default via ${g.uplink.routerIPv4}`,
    `route replace default via ${g.uplink.routerIPv6}`,
  ];
}

/** BGP mode: nodes answer the client through the router (their default route is the control-plane machine). */
export function nodeUplinkRoutes(plan: LabPlan): string[] {
  const g = plan.bgp;
  if (!g) return [];
  return [`route replace ${g.uplink.ipv4} via ${plan.router.ipv4}`, `route replace ${g.uplink.ipv6} via ${plan.router.ipv6}`];
}

async function buildRouterAndClient(plan: LabPlan): Promise<void> {
  await buildMachines(plan, [{ machine: plan.router, role: 'router' }]);
  await run('ip', ['netns', 'add', plan.client.netns]);
  await setSysctls(plan.client.netns, netnsSysctls('client'));
  await run('ip', ['link', 'add', 'eth1', 'netns', plan.router.netns, 'type', 'veth', 'peer', 'name', plan.client.interface, 'netns', plan.client.netns, 'address', plan.client.mac]);
  await run('ip', ['-n', plan.router.netns, '-batch', '-'], { input: routerUplinkCommands(plan).join('\n') + '\n' });
  await run('ip', ['-n', plan.client.netns, '-batch', '-'], { input: clientUplinkCommands(plan).join('\n') + '\n' });
}

/** The whole topology of a new lab. */
export async function buildTopology(plan: LabPlan): Promise<void> {
  await buildBridge(plan);
  if (plan.mode === 'bgp') {
    await buildMachines(plan, plan.nodes.map((machine) => ({ machine, role: 'node' as const })));
    await buildRouterAndClient(plan);
  } else {
    await buildMachines(plan, [...plan.nodes.map((machine) => ({ machine, role: 'node' as const })), { machine: plan.client, role: 'client' }]);
  }
  await buildPodRoutes(plan, plan.nodes);
}

/** Removes one node's namespace and its routes elsewhere (its pods' namespaces are removed by the caller). */
export async function removeNodeNetwork(plan: LabPlan, node: NodePlan, others: readonly NodePlan[]): Promise<void> {
  const del = [`route del ${node.podCIDRs[0]}`, `route del ${node.podCIDRs[1]}`];
  await run('ip', ['-batch', '-', '-force'], { input: [...del, `link del ${node.hostInterface}`].join('\n') + '\n' }).catch(() => undefined);
  await Promise.all(others.map((o) => run('ip', ['-n', o.netns, '-force', '-batch', '-'], { input: del.join('\n') + '\n' }).catch(() => undefined)));
  await run('ip', ['netns', 'del', node.netns]).catch(() => undefined);
}
