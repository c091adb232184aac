// The API resources the controller reads and writes, and how their REST paths are built.

export interface Resource {
  /** "" for the core group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export const apiVersionOf = (r: Resource): string => (r.group ? `${r.group}/${r.version}` : r.version);

/** Collection path; `namespace` undefined = all namespaces (or a cluster-scoped resource). */
export function collectionPath(r: Resource, namespace?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  if (r.namespaced && namespace) return `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}`;
  return `${base}/${r.plural}`;
}

export function objectPath(r: Resource, namespace: string | undefined, name: string, subresource?: string): string {
  const p = `${collectionPath(r, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${p}/${subresource}` : p;
}

const core = (plural: string, kind: string, namespaced = true): Resource => ({ group: '', version: 'v1', plural, kind, namespaced });
const metallb = (version: string, plural: string, kind: string): Resource => ({ group: 'metallb.io', version, plural, kind, namespaced: true });

export const R = {
  services: core('services', 'Service'),
  namespaces: core('namespaces', 'Namespace', false),
  nodes: core('nodes', 'Node', false),
  secrets: core('secrets', 'Secret'),
  configMaps: core('configmaps', 'ConfigMap'),
  events: core('events', 'Event'),
  endpoints: core('endpoints', 'Endpoints'),
  pods: core('pods', 'Pod'),
  endpointSlices: { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true } as Resource,
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true } as Resource,
  deployments: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true } as Resource,
  validatingWebhookConfigurations: {
    group: 'admissionregistration.k8s.io',
    version: 'v1',
    plural: 'validatingwebhookconfigurations',
    kind: 'ValidatingWebhookConfiguration',
    namespaced: false,
  } as Resource,
  ipAddressPools: metallb('v1beta1', 'ipaddresspools', 'IPAddressPool'),
  l2Advertisements: metallb('v1beta1', 'l2advertisements', 'L2Advertisement'),
  bgpAdvertisements: metallb('v1beta1', 'bgpadvertisements', 'BGPAdvertisement'),
  bfdProfiles: metallb('v1beta1', 'bfdprofiles', 'BFDProfile'),
  communities: metallb('v1beta1', 'communities', 'Community'),
  bgpPeers: metallb('v1beta2', 'bgppeers', 'BGPPeer'),
  serviceL2Statuses: metallb('v1beta1', 'servicel2statuses', 'ServiceL2Status'),
  serviceBGPStatuses: metallb('v1beta1', 'servicebgpstatuses', 'ServiceBGPStatus'),
} as const;

/** The MetalLB config CR kinds, in the order their objects are handed to the parser. */
export const CONFIG_RESOURCES: readonly Resource[] = [
  R.ipAddressPools,
  R.l2Advertisements,
  R.bgpAdvertisements,
  R.bfdProfiles,
  R.communities,
  R.bgpPeers,
];
