// The API resources the cluster components (controllers, scheduler, proxy) read and write.
import type { Resource } from '../../k8s/resources.js';

const core = (plural: string, kind: string, namespaced = true): Resource => ({ group: '', version: 'v1', plural, kind, namespaced });
const apps = (plural: string, kind: string): Resource => ({ group: 'apps', version: 'v1', plural, kind, namespaced: true });

export const CR = {
  pods: core('pods', 'Pod'),
  services: core('services', 'Service'),
  endpoints: core('endpoints', 'Endpoints'),
  nodes: core('nodes', 'Node', false),
  namespaces: core('namespaces', 'Namespace', false),
  serviceAccounts: core('serviceaccounts', 'ServiceAccount'),
  configMaps: core('configmaps', 'ConfigMap'),
  events: core('events', 'Event'),
  deployments: apps('deployments', 'Deployment'),
  replicaSets: apps('replicasets', 'ReplicaSet'),
  daemonSets: apps('daemonsets', 'DaemonSet'),
  endpointSlices: { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true } as Resource,
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true } as Resource,
} as const;
