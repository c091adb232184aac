// `lab node add|remove`: a node joins (namespace, veth, routes, kubelet and proxy) or leaves like a machine unplugged
// (its processes and pods' processes killed, its namespaces removed) and is deleted from the API (`kubectl delete node`).
import { KubeClient, loadKubeConfig, isNotFound } from '../k8s/client.js';
import { readIdentities, writeComponentKubeconfigs } from './credentials.js';
import { componentServerURL } from './components.js';
import { MAX_NODES, nodePlan, type LabPlan, type NodePlan } from './plan.js';
import { tryRun } from './run.js';
import { isAlive, paths, readJson, readState, readSupervisorPid, writeJson, type LabState, type ProcessRecord } from './state.js';
import { buildMachines, buildPodRoutes, removeNodeNetwork } from './topology.js';
import { sleep, waitFor, waitNodesReady, type Progress } from './wait.js';

export class LabNodeError extends Error {
  override name = 'LabNodeError';
}

function runningLab(stateDir: string): { state: LabState; supervisor: number } {
  const state = readState(stateDir);
  const supervisor = readSupervisorPid(stateDir);
  if (!state || !supervisor || !isAlive(supervisor)) throw new LabNodeError(`no lab is running (state dir ${stateDir})`);
  return { state, supervisor };
}

export async function addNode(stateDir: string, opts: { timeoutMs: number; progress?: Progress }): Promise<NodePlan> {
  const { state, supervisor } = runningLab(stateDir);
  const plan = state.plan;
  const used = new Set(plan.nodes.map((n) => n.index));
  let index = 1;
  while (used.has(index)) index++;
  if (index > MAX_NODES) throw new LabNodeError(`the lab has the most nodes it can have (${MAX_NODES})`);
  const node = nodePlan(plan, index);
  const next: LabPlan = { ...plan, nodes: [...plan.nodes, node].sort((a, b) => a.index - b.index) };
  await buildMachines(next, [{ machine: node, role: 'node' }]);
  await buildPodRoutes(next, next.nodes);
  writeComponentKubeconfigs(next, componentServerURL(next), readIdentities(paths(stateDir).pki));
  writeJson(paths(stateDir).state, { ...state, plan: next });
  process.kill(supervisor, 'SIGHUP');
  opts.progress?.(`${node.name}: ${node.ipv4} ${node.ipv6}, podCIDRs ${node.podCIDRs.join(' ')}`);
  const client = new KubeClient(loadKubeConfig(paths(stateDir).kubeconfig), { userAgent: 'metallb-lab' });
  try {
    await waitNodesReady(client, [node.name], opts);
  } finally {
    client.close();
  }
  return node;
}

interface NetnsId {
  nsid: number;
  name?: string;
}
interface LinkJson {
  ifname: string;
  link_netnsid?: number;
}

/** The pod namespaces whose veth ends are in `node`'s namespace. */
export async function podNetnsOf(node: NodePlan): Promise<string[]> {
  const ids = JSON.parse((await tryRun('ip', ['-n', node.netns, '-j', 'netns', 'list-id'])) ?? '[]') as NetnsId[];
  const links = JSON.parse((await tryRun('ip', ['-n', node.netns, '-j', 'link', 'show'])) ?? '[]') as LinkJson[];
  const names = new Map(ids.filter((i) => i.name).map((i) => [i.nsid, i.name as string]));
  return links.filter((l) => l.ifname.startsWith('veth') && l.link_netnsid !== undefined).map((l) => names.get(l.link_netnsid as number)).filter((n): n is string => n !== undefined);
}

export async function removeNode(stateDir: string, name: string, opts: { timeoutMs: number; progress?: Progress }): Promise<void> {
  const { state, supervisor } = runningLab(stateDir);
  const plan = state.plan;
  const node = plan.nodes.find((n) => n.name === name || n.netns === name);
  if (!node) throw new LabNodeError(`no node "${name}" in the lab (nodes: ${plan.nodes.map((n) => n.name).join(', ')})`);
  if (plan.nodes.length === 1) throw new LabNodeError(`${node.name} is the lab's last node`);
  const next: LabPlan = { ...plan, nodes: plan.nodes.filter((n) => n.index !== node.index) };
  writeJson(paths(stateDir).state, { ...state, plan: next });
  process.kill(supervisor, 'SIGHUP');
  const podNetns = await podNetnsOf(node);
  // The supervisor stops the kubelet and proxy; wait for that, then the machine is "unplugged".
  await waitFor(
    `${node.name} components stopped`,
    async () => {
      const left = (await tryRun('ip', ['netns', 'pids', node.netns]))?.trim() ?? '';
      const procs = readJson<ProcessRecord[]>(paths(stateDir).processes) ?? [];
      const listed = procs.some((p) => p.name.endsWith(`-${node.name}`));
      return { done: !listed, state: listed ? `stopping (${left.split('\n').filter(Boolean).length} processes in ${node.netns})` : 'stopped' };
    },
    { timeoutMs: 15_000, ...(opts.progress ? { progress: opts.progress } : {}) },
  );
  for (const ns of [node.netns, ...podNetns]) {
    for (let i = 0; i < 20; i++) {
      const pids = ((await tryRun('ip', ['netns', 'pids', ns])) ?? '').split('\n').map(Number).filter((n) => n > 0);
      if (pids.length === 0) break;
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(50);
    }
  }
  for (const ns of podNetns) await tryRun('ip', ['netns', 'del', ns]);
  await removeNodeNetwork(next, node, next.nodes);
  opts.progress?.(`${node.name}: unplugged (${podNetns.length} pod namespaces removed)`);
  const client = new KubeClient(loadKubeConfig(paths(stateDir).kubeconfig), { userAgent: 'metallb-lab' });
  try {
    await client.delete(`/api/v1/nodes/${node.name}`).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  } finally {
    client.close();
  }
}
