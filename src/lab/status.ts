// `lab status`: the lab's topology for scripts (-o json, the shape issue 6 fixes) and, for people, the processes and
// the nodes' readiness as well.
import { KubeClient, loadKubeConfig } from '../k8s/client.js';
import type { LabPlan, Machine } from './plan.js';
import { isAlive, paths, readJson, readSupervisorPid, type LabState, type ProcessRecord } from './state.js';
import { readyNodes } from './wait.js';

export interface MachineStatus {
  netns: string;
  interface: string;
  ipv4: string;
  ipv6: string;
  mac: string;
}

export interface LabStatusJson {
  kubeconfig: string;
  lan: { ipv4: string; ipv6: string };
  serviceRange: { ipv4: string; ipv6: string };
  client: MachineStatus;
  nodes: Array<MachineStatus & { name: string; podCIDRs: string[] }>;
  /** BGP mode only (the issue's shape; layer 2 mode keeps issue 6's exactly). */
  router?: { netns: string; daemon: string; asn: number; ipv4: string; ipv6: string; nodeASN: number };
}

const machineStatus = (m: Machine): MachineStatus => ({ netns: m.netns, interface: m.interface, ipv4: m.ipv4, ipv6: m.ipv6, mac: m.mac });

export function statusJson(plan: LabPlan): LabStatusJson {
  return {
    kubeconfig: paths(plan.stateDir).kubeconfig,
    lan: { ...plan.lan },
    serviceRange: { ...plan.serviceRange },
    client: machineStatus(plan.client),
    nodes: plan.nodes.map((n) => ({ name: n.name, ...machineStatus(n), podCIDRs: [...n.podCIDRs] })),
    ...(plan.bgp
      ? { router: { netns: plan.router.netns, daemon: plan.bgp.daemon, asn: plan.bgp.routerAsn, ipv4: plan.router.ipv4, ipv6: plan.router.ipv6, nodeASN: plan.bgp.nodeAsn } }
      : {}),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ')).join('\n');
}

/** Nodes' readiness from the API server (short timeout: status must answer even when the API server does not). */
async function readiness(plan: LabPlan): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let client: KubeClient | undefined;
  try {
    client = new KubeClient(loadKubeConfig(paths(plan.stateDir).kubeconfig), { userAgent: 'metallb-lab' });
    const { ready, all } = await readyNodes(client);
    for (const n of all) out.set(n, ready.includes(n) ? 'Ready' : 'NotReady');
  } catch (err) {
    for (const n of plan.nodes) out.set(n.name, `? (${(err as Error).message.split('\n')[0]})`);
  } finally {
    client?.close();
  }
  return out;
}

export async function statusText(state: LabState): Promise<string> {
  const { plan } = state;
  const p = paths(plan.stateDir);
  const sup = readSupervisorPid(plan.stateDir);
  const up = sup !== undefined && isAlive(sup);
  const ready = up ? await readiness(plan) : new Map<string, string>();
  const machines: string[][] = [['MACHINE', 'NETNS', 'IPV4', 'IPV6', 'MAC', 'POD CIDRS', 'NODE']];
  for (const n of plan.nodes) machines.push([n.name, n.netns, n.ipv4, n.ipv6, n.mac, n.podCIDRs.join(','), ready.get(n.name) ?? (up ? 'not registered' : '-')]);
  machines.push([plan.client.name, plan.client.netns, plan.client.ipv4, plan.client.ipv6, plan.client.mac, '-', '-']);
  if (plan.bgp) machines.push([plan.router.name, plan.router.netns, plan.router.ipv4, plan.router.ipv6, plan.router.mac, '-', `${plan.bgp.daemon}, AS ${plan.bgp.routerAsn}`]);
  const procs = readJson<ProcessRecord[]>(p.processes) ?? [];
  const processes: string[][] = [['PROCESS', 'PID', 'STATE', 'RESTARTS', 'LAST EXIT']];
  for (const r of procs) processes.push([r.name, r.pid !== null && up ? String(r.pid) : '-', up ? r.state : 'stopped', String(r.restarts), r.lastExit ?? '']);
  return [
    `lab "${plan.name}": ${up ? `up (supervisor pid ${sup})` : 'DOWN: the supervisor is not running (`metallb lab down` cleans up)'}, state ${plan.stateDir}`,
    `kubeconfig:    ${p.kubeconfig}`,
    `LAN:           ${plan.lan.ipv4} ${plan.lan.ipv6} on bridge ${plan.bridge} (host ${plan.host.ipv4}, ${plan.host.ipv6})`,
    `Service range: ${plan.serviceRange.ipv4}, ${plan.serviceRange.ipv6}`,
    `load-balancer: ${state.loadBalancer ? 'metallb-ts installed by lab up' : 'none installed by lab up (--no-loadbalancer)'}`,
    ...(state.hpaDownscaleStabilization ? [`HPA downscale stabilization: ${state.hpaDownscaleStabilization} (shortened; Kubernetes' default is 5m)`] : []),
    `mode:          ${plan.bgp ? `bgp: router ${plan.router.ipv4} ${plan.router.ipv6} (${plan.bgp.daemon}, AS ${plan.bgp.routerAsn}), nodes AS ${plan.bgp.nodeAsn}, client network ${plan.bgp.uplink.ipv4} ${plan.bgp.uplink.ipv6}` : 'layer2'}`,
    '',
    table(machines),
    '',
    table(processes),
    `logs: ${p.logs}`,
    '',
  ].join('\n');
}
