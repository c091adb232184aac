// Waiting for the cluster to reach a state, with progress lines on stderr (only when what is awaited changes).
import { errorText, type KubeClient } from '../k8s/client.js';

export type Progress = (line: string) => void;

export class WaitTimeout extends Error {
  override name = 'WaitTimeout';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns `{ done: true }`; `check` reports a short state text that is printed when it changes.
 * Errors thrown by `check` count as "not yet" (the API server may be starting) and are shown as the state.
 */
export async function waitFor(
  what: string,
  check: () => Promise<{ done: boolean; state: string }>,
  opts: { timeoutMs: number; intervalMs?: number; progress?: Progress; isFatal?: (err: unknown) => boolean },
): Promise<void> {
  const start = Date.now();
  let last = '';
  for (;;) {
    let state: string;
    try {
      const r = await check();
      if (r.done) {
        opts.progress?.(`${what}: ${r.state} (${((Date.now() - start) / 1000).toFixed(1)} s)`);
        return;
      }
      state = r.state;
    } catch (err) {
      if (opts.isFatal?.(err)) throw err;
      state = errorText(err);
    }
    if (state !== last) {
      opts.progress?.(`${what}: ${state}`);
      last = state;
    }
    if (Date.now() - start > opts.timeoutMs) throw new WaitTimeout(`${what}: not done after ${Math.round(opts.timeoutMs / 1000)} s (${state})`);
    await sleep(opts.intervalMs ?? 250);
  }
}

interface Condition {
  type: string;
  status: string;
}
interface NodeObj {
  metadata: { name: string };
  status?: { conditions?: Condition[] };
}
interface DeploymentObj {
  spec?: { replicas?: number };
  status?: { availableReplicas?: number; updatedReplicas?: number; observedGeneration?: number };
  metadata: { generation?: number };
}
export interface PodObj {
  metadata: { name: string; namespace?: string; deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: Condition[];
    containerStatuses?: Array<{ name: string; ready: boolean; restartCount: number; state?: Record<string, { reason?: string }> }>;
  };
}

export const isReady = (o: { status?: { conditions?: Condition[] } }): boolean => (o.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

export async function readyNodes(client: KubeClient): Promise<{ ready: string[]; all: string[] }> {
  const list = await client.get<{ items: NodeObj[] }>('/api/v1/nodes', { timeoutMs: 5000 });
  return { ready: list.items.filter(isReady).map((n) => n.metadata.name), all: list.items.map((n) => n.metadata.name) };
}

export function waitNodesReady(client: KubeClient, names: readonly string[], opts: { timeoutMs: number; progress?: Progress }): Promise<void> {
  return waitFor(
    'nodes Ready',
    async () => {
      const { ready } = await readyNodes(client);
      const have = names.filter((n) => ready.includes(n));
      return { done: have.length === names.length, state: `${have.length}/${names.length}` };
    },
    opts,
  );
}

export function waitDeploymentAvailable(client: KubeClient, ns: string, name: string, opts: { timeoutMs: number; progress?: Progress }): Promise<void> {
  return waitFor(
    `deployment ${ns}/${name}`,
    async () => {
      const d = await client.get<DeploymentObj>(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`, { timeoutMs: 5000 });
      const want = d.spec?.replicas ?? 1;
      const avail = d.status?.availableReplicas ?? 0;
      const observed = (d.status?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0);
      return { done: observed && avail >= want && (d.status?.updatedReplicas ?? 0) >= want, state: `${avail}/${want} available` };
    },
    opts,
  );
}

/** A short text for a pod that is not ready: the waiting reason of its first container, or its phase. */
export function podState(p: PodObj): string {
  for (const c of p.status?.containerStatuses ?? []) {
    for (const [k, v] of Object.entries(c.state ?? {})) if (k !== 'running') return v.reason ?? k;
  }
  return p.status?.phase ?? 'Pending';
}

export async function listPods(client: KubeClient, ns: string, selector?: string): Promise<PodObj[]> {
  const list = await client.get<{ items: PodObj[] }>(`/api/v1/namespaces/${ns}/pods`, { query: { labelSelector: selector }, timeoutMs: 5000 });
  return list.items;
}
