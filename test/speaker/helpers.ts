// Builders shared by the speaker's unit tests: parsed configs, nodes, endpoints and election inputs.
import assert from 'node:assert/strict';
import type { Config, L2Advertisement } from '../../src/config/index.js';
import type { KubeObject, Node, Service } from '../../src/k8s/types.js';
import type { ServiceEndpoint } from '../../src/speaker/endpoints.js';
import type { L2ElectionInput } from '../../src/speaker/l2/election.js';
import { valid } from '../config/helpers.js';

export { crd, l2, pool, bgpAd, NS } from '../config/helpers.js';

export function mkNode(name: string, labels: Record<string, string> = {}, opts: { networkUnavailable?: boolean } = {}): Node {
  const n: Node = { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } } };
  if (opts.networkUnavailable !== undefined) {
    n.status = { conditions: [{ type: 'NetworkUnavailable', status: opts.networkUnavailable ? 'True' : 'False' }, { type: 'Ready', status: 'True' }] };
  }
  return n;
}

export const nodeMap = (nodes: readonly Node[]): Map<string, Node> => new Map(nodes.map((n) => [n.metadata?.name ?? '', n]));

export const ready = (nodeName?: string): ServiceEndpoint => ({ canServe: true, hasAddresses: true, ...(nodeName ? { nodeName } : {}) });
export const notReady = (nodeName?: string): ServiceEndpoint => ({ canServe: false, hasAddresses: true, ...(nodeName ? { nodeName } : {}) });

/** Parses config objects (must be valid) with these nodes as the cluster context. */
export const config = (objects: readonly KubeObject[], nodes: readonly Node[]): Config => valid(objects, { nodes: [...nodes] });

/** The L2 advertisements of `poolName` in a parsed config. */
export function adsOf(cfg: Config, poolName: string): L2Advertisement[] {
  return cfg.l2Advertisements.filter((a) => a.pools.has(poolName));
}

export function input(over: Partial<L2ElectionInput> & Pick<L2ElectionInput, 'ads' | 'nodes' | 'ips'>): L2ElectionInput {
  return {
    serviceLabels: {},
    allowSharedIP: false,
    localTrafficPolicy: false,
    endpoints: [ready('node1')],
    ignoreExcludeLB: false,
    ...over,
  };
}

export function lbService(name: string, ips: string[], over: { labels?: Record<string, string>; annotations?: Record<string, string>; local?: boolean; type?: string; lbClass?: string; namespace?: string } = {}): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: over.namespace ?? 'default', uid: `uid-${name}`, labels: over.labels ?? {}, annotations: over.annotations ?? {} },
    spec: {
      type: over.type ?? 'LoadBalancer',
      ports: [{ port: 80, protocol: 'TCP' }],
      ...(over.local ? { externalTrafficPolicy: 'Local' } : {}),
      ...(over.lbClass ? { loadBalancerClass: over.lbClass } : {}),
    },
    status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
  };
}

export function sameMembers<T>(actual: Iterable<T>, expected: Iterable<T>): void {
  assert.deepEqual([...actual].sort(), [...expected].sort());
}
