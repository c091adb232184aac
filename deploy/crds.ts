// Source of the CustomResourceDefinitions in deploy/crds/ (and the Helm chart's crds/).
// The YAML files are generated from this module by `node --import tsx deploy/build-all-in-one.ts` and committed;
// test/deploy checks that they are up to date. Field names, types, ranges and defaults follow MetalLB's API
// (metallb.io, v1beta1 + v1beta2 BGPPeer) so that existing MetalLB objects apply unchanged.

export type Schema = Record<string, unknown>;

export const GROUP = 'metallb.io';

// ---------------------------------------------------------------------------------------------------------------
// Building blocks

const str = (description: string, extra: Schema = {}): Schema => ({ description, type: 'string', ...extra });
const bool = (description: string, extra: Schema = {}): Schema => ({ description, type: 'boolean', ...extra });
const int32 = (description: string, extra: Schema = {}): Schema => ({
  description,
  type: 'integer',
  format: 'int32',
  ...extra,
});
const int64 = (description: string, extra: Schema = {}): Schema => ({
  description,
  type: 'integer',
  format: 'int64',
  ...extra,
});
/** uint32 as MetalLB declares it (ASNs, LOCAL_PREF): 0..2^32-1. */
const uint32 = (description: string, extra: Schema = {}): Schema => ({
  description,
  type: 'integer',
  format: 'int64',
  minimum: 0,
  maximum: 4294967295,
  ...extra,
});
const strList = (description: string, extra: Schema = {}): Schema => ({
  description,
  type: 'array',
  items: { type: 'string' },
  ...extra,
});
const obj = (description: string, properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  description,
  type: 'object',
  properties,
  ...extra,
});
/** A Go metav1.Duration: a string such as "90s", "1m30s". Parsed (and range-checked) by the config parser. */
const duration = (description: string, extra: Schema = {}): Schema => str(description, extra);

/** The standard metav1.LabelSelector schema. */
export function labelSelector(description: string): Schema {
  return {
    description,
    type: 'object',
    properties: {
      matchExpressions: {
        description: 'A list of label selector requirements; the requirements are ANDed.',
        type: 'array',
        items: {
          description: 'A selector requirement: a key, an operator and (for In/NotIn) values.',
          type: 'object',
          properties: {
            key: { description: 'The label key that the selector applies to.', type: 'string' },
            operator: {
              description: 'In, NotIn, Exists or DoesNotExist.',
              type: 'string',
            },
            values: {
              description: 'Values for In/NotIn (non-empty); empty for Exists/DoesNotExist.',
              type: 'array',
              items: { type: 'string' },
              'x-kubernetes-list-type': 'atomic',
            },
          },
          required: ['key', 'operator'],
        },
        'x-kubernetes-list-type': 'atomic',
      },
      matchLabels: {
        description: 'A map of {key,value} pairs; each is equivalent to an In requirement with one value.',
        type: 'object',
        additionalProperties: { type: 'string' },
      },
    },
    'x-kubernetes-map-type': 'atomic',
  };
}

const selectorList = (description: string): Schema => ({
  description,
  type: 'array',
  items: labelSelector('A label selector.'),
});

/** BGPPeer v1beta1's own node selector type (MetalLB's legacy NodeSelector). */
function legacyNodeSelector(): Schema {
  return {
    description: 'A node selector (legacy v1beta1 form).',
    type: 'object',
    properties: {
      matchExpressions: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            key: { type: 'string' },
            operator: { type: 'string' },
            values: { type: 'array', items: { type: 'string' }, minItems: 1 },
          },
          required: ['key', 'operator', 'values'],
        },
      },
      matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
    },
  };
}

/** The standard metav1.Condition schema. */
function condition(): Schema {
  return {
    description: 'A metav1.Condition.',
    type: 'object',
    properties: {
      lastTransitionTime: {
        description: 'When the condition last changed status.',
        type: 'string',
        format: 'date-time',
      },
      message: { description: 'Human-readable details.', type: 'string', maxLength: 32768 },
      observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
      reason: {
        description: 'Programmatic identifier of the reason for the last transition (CamelCase).',
        type: 'string',
        maxLength: 1024,
        minLength: 1,
        pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      },
      status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
      type: {
        description: 'Condition type, e.g. poolReconcilerValid or configReconcilerValid.',
        type: 'string',
        maxLength: 316,
        pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
      },
    },
    required: ['lastTransitionTime', 'message', 'reason', 'status', 'type'],
  };
}

const immutable = (message: string): Schema => ({
  'x-kubernetes-validations': [{ rule: 'self == oldSelf', message }],
});

interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

interface VersionOpts {
  name: string;
  served?: boolean;
  storage?: boolean;
  deprecated?: boolean;
  deprecationWarning?: string;
  description: string;
  spec?: Schema;
  specRequired?: boolean;
  status?: Schema;
  columns?: PrinterColumn[];
}

function version(o: VersionOpts): Schema {
  const properties: Record<string, Schema> = {
    apiVersion: {
      description: 'APIVersion defines the versioned schema of this representation of an object.',
      type: 'string',
    },
    kind: { description: 'Kind is a string value representing the REST resource this object represents.', type: 'string' },
    metadata: { type: 'object' },
  };
  if (o.spec) properties.spec = o.spec;
  properties.status = o.status ?? { description: 'Not used.', type: 'object' };
  const schema: Schema = { description: o.description, type: 'object', properties };
  if (o.specRequired) schema.required = ['spec'];
  const v: Schema = { name: o.name, served: o.served ?? true, storage: o.storage ?? true };
  if (o.deprecated) {
    v.deprecated = true;
    if (o.deprecationWarning) v.deprecationWarning = o.deprecationWarning;
  }
  if (o.columns && o.columns.length) v.additionalPrinterColumns = o.columns;
  v.schema = { openAPIV3Schema: schema };
  v.subresources = { status: {} };
  return v;
}

interface CrdOpts {
  kind: string;
  plural: string;
  shortNames?: string[];
  versions: Schema[];
  conversionNote?: boolean;
}

export interface Crd {
  file: string;
  object: Schema;
}

function crd(o: CrdOpts): Crd {
  const names: Schema = {
    kind: o.kind,
    listKind: `${o.kind}List`,
    plural: o.plural,
    singular: o.kind.toLowerCase(),
    categories: ['metallb'],
  };
  if (o.shortNames) names.shortNames = o.shortNames;
  const spec: Schema = { group: GROUP, names, scope: 'Namespaced' };
  // No conversion webhook: the API server only rewrites apiVersion between versions (fields are a compatible subset).
  if (o.versions.length > 1) spec.conversion = { strategy: 'None' };
  spec.versions = o.versions;
  return {
    file: `${GROUP}_${o.plural}.yaml`,
    object: {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: {
        name: `${o.plural}.${GROUP}`,
        labels: { 'app.kubernetes.io/part-of': 'metallb-ts' },
      },
      spec,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The kinds

function ipAddressPool(): Crd {
  return crd({
    kind: 'IPAddressPool',
    plural: 'ipaddresspools',
    shortNames: ['ipp'],
    versions: [
      version({
        name: 'v1beta1',
        description:
          'IPAddressPool is a set of IP addresses (CIDRs and ranges) that metallb-ts may assign to LoadBalancer services.',
        specRequired: true,
        spec: obj(
          'The addresses of the pool and how they may be allocated.',
          {
            addresses: strList(
              'CIDRs (192.168.10.0/24, fc00:f853::/120) and ranges (192.168.9.1-192.168.9.5) the pool hands out. IPv4 and IPv6 may be mixed.',
            ),
            autoAssign: bool('If false, addresses are only allocated on explicit request (pool annotation or IP).', {
              default: true,
            }),
            avoidBuggyIPs: bool('If true, IPv4 addresses ending in .0 or .255 are never allocated.', { default: false }),
            serviceAllocation: obj('Restricts and prioritises automatic allocation from this pool.', {
              namespaceSelectors: selectorList('Namespaces (by label) whose services may use the pool.'),
              namespaces: strList('Namespaces whose services may use the pool.'),
              priority: {
                description: 'Priority of the pool for automatic allocation: lower positive numbers are tried first; 0 or unset comes last.',
                type: 'integer',
              },
              serviceSelectors: selectorList('Services (by label) that may use the pool; any selector may match.'),
            }),
          },
          { required: ['addresses'] },
        ),
        status: obj(
          'Allocation counters, written by the controller.',
          {
            assignedIPv4: int64('Number of IPv4 addresses in use.'),
            assignedIPv6: int64('Number of IPv6 addresses in use.'),
            availableIPv4: int64('Number of IPv4 addresses still available.'),
            availableIPv6: int64('Number of IPv6 addresses still available.'),
          },
          { required: ['assignedIPv4', 'assignedIPv6', 'availableIPv4', 'availableIPv6'] },
        ),
        columns: [
          { name: 'Auto Assign', type: 'boolean', jsonPath: '.spec.autoAssign' },
          { name: 'Avoid Buggy IPs', type: 'boolean', jsonPath: '.spec.avoidBuggyIPs' },
          { name: 'Addresses', type: 'string', jsonPath: '.spec.addresses' },
          age,
        ],
      }),
    ],
  });
}

function l2Advertisement(): Crd {
  return crd({
    kind: 'L2Advertisement',
    plural: 'l2advertisements',
    shortNames: ['l2adv'],
    versions: [
      version({
        name: 'v1beta1',
        description: 'L2Advertisement announces the IPs of the selected pools with ARP (IPv4) and NDP (IPv6).',
        spec: obj('Which pools are announced, from which nodes and interfaces, for which services.', {
          interfaces: strList('Host interfaces to announce from; empty means all interfaces.'),
          ipAddressPoolSelectors: selectorList(
            'Pools (by label) to announce. If both ipAddressPools and ipAddressPoolSelectors are empty, all pools are announced.',
          ),
          ipAddressPools: strList('Pools (by name) to announce.'),
          nodeSelectors: selectorList('Nodes that may announce; empty means all nodes.'),
          preferredNodeSelectors: {
            description: 'Soft preferences among the eligible nodes; the node with the largest summed weight wins the election.',
            type: 'array',
            items: obj(
              'A weighted node preference.',
              {
                preference: labelSelector('Nodes matching this selector get the weight.'),
                weight: int32('Weight of the preference, 1 to 100.', { minimum: 1, maximum: 100 }),
              },
              { required: ['preference', 'weight'] },
            ),
          },
          serviceSelectors: selectorList('Services (by label) to announce; empty means all services.'),
        }),
        columns: [
          { name: 'IPAddressPools', type: 'string', jsonPath: '.spec.ipAddressPools' },
          { name: 'IPAddressPool Selectors', type: 'string', jsonPath: '.spec.ipAddressPoolSelectors' },
          { name: 'Interfaces', type: 'string', jsonPath: '.spec.interfaces' },
          { name: 'Node Selectors', type: 'string', jsonPath: '.spec.nodeSelectors', priority: 10 },
          age,
        ],
      }),
    ],
  });
}

function bgpAdvertisement(): Crd {
  return crd({
    kind: 'BGPAdvertisement',
    plural: 'bgpadvertisements',
    shortNames: ['bgpadv'],
    versions: [
      version({
        name: 'v1beta1',
        description: 'BGPAdvertisement advertises the IPs of the selected pools to BGP peers.',
        spec: obj(
          'Which pools are advertised, how, from which nodes, to which peers.',
          {
            aggregationLength: int32('Prefix length of the IPv4 routes advertised (1-32).', {
              default: 32,
              minimum: 1,
              maximum: 32,
            }),
            aggregationLengthV6: int32('Prefix length of the IPv6 routes advertised (0-128).', {
              default: 128,
              minimum: 0,
              maximum: 128,
            }),
            communities: strList('BGP communities: "A:B", "large:A:B:C", or the name of a Community alias.'),
            ipAddressPoolSelectors: selectorList(
              'Pools (by label) to advertise. If both ipAddressPools and ipAddressPoolSelectors are empty, all pools are advertised.',
            ),
            ipAddressPools: strList('Pools (by name) to advertise.'),
            localPref: uint32('BGP LOCAL_PREF attribute (sent to iBGP peers only).'),
            nodeSelectors: selectorList('Nodes that advertise; empty means all nodes.'),
            peers: strList('BGPPeer names to advertise to; empty means all peers.'),
            serviceSelectors: selectorList('Services (by label) to advertise; empty means all services.'),
          },
          {
            'x-kubernetes-validations': [
              {
                rule:
                  '!has(self.serviceSelectors) || size(self.serviceSelectors) == 0 || ((!has(self.aggregationLength) || self.aggregationLength == 32) && (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))',
                message: 'serviceSelectors and aggregationLength/aggregationLengthV6 are mutually exclusive',
              },
            ],
          },
        ),
        columns: [
          { name: 'IPAddressPools', type: 'string', jsonPath: '.spec.ipAddressPools' },
          { name: 'IPAddressPool Selectors', type: 'string', jsonPath: '.spec.ipAddressPoolSelectors' },
          { name: 'Peers', type: 'string', jsonPath: '.spec.peers' },
          { name: 'Node Selectors', type: 'string', jsonPath: '.spec.nodeSelectors', priority: 10 },
          age,
        ],
      }),
    ],
  });
}

const bgpPeerColumns: PrinterColumn[] = [
  { name: 'Address', type: 'string', jsonPath: '.spec.peerAddress' },
  { name: 'ASN', type: 'string', jsonPath: '.spec.peerASN' },
  { name: 'BFD Profile', type: 'string', jsonPath: '.spec.bfdProfile' },
  { name: 'Multi Hops', type: 'string', jsonPath: '.spec.ebgpMultiHop' },
  age,
];

function bgpPeer(): Crd {
  const v1beta1 = version({
    name: 'v1beta1',
    storage: false,
    deprecated: true,
    deprecationWarning: 'v1beta1 is deprecated, please use v1beta2',
    description: 'BGPPeer (deprecated v1beta1 form): a BGP session the speakers open.',
    spec: obj(
      'The peer and the session parameters.',
      {
        bfdProfile: str('Name of the BFDProfile for this session.'),
        ebgpMultiHop: bool('The peer is multiple hops away.'),
        holdTime: duration('BGP hold time, e.g. "90s".'),
        keepaliveTime: duration('BGP keepalive interval.'),
        myASN: uint32('AS number of the local end.'),
        nodeSelectors: {
          description: 'Nodes that open this session; empty means all nodes.',
          type: 'array',
          items: legacyNodeSelector(),
        },
        password: str('TCP-MD5 password.'),
        peerAddress: str('IP address of the peer.'),
        peerASN: uint32('AS number of the peer.'),
        peerPort: { description: 'TCP port of the peer.', type: 'integer', minimum: 0, maximum: 16384 },
        routerID: str('BGP router ID.'),
        sourceAddress: str('Local source address of the session.'),
      },
      { required: ['myASN', 'peerASN', 'peerAddress'] },
    ),
    columns: bgpPeerColumns,
  });
  const v1beta2 = version({
    name: 'v1beta2',
    storage: true,
    description: 'BGPPeer is a BGP session the speakers on the selected nodes open.',
    spec: obj(
      'The peer and the session parameters.',
      {
        bfdProfile: str('Name of the BFDProfile for this session (FRR modes).'),
        connectTime: duration('Time between connection attempts (whole seconds, 1s-65535s; FRR modes).', {
          'x-kubernetes-validations': [
            {
              rule: 'duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535',
              message: 'connect time should be between 1 seconds to 65535',
            },
            {
              rule: 'duration(self).getMilliseconds() % 1000 == 0',
              message: 'connect time should contain a whole number of seconds',
            },
          ],
        }),
        disableMP: bool('Deprecated: disable multiprotocol BGP (FRR modes).', { default: false }),
        dualStackAddressFamily: bool('Enable both IPv4 and IPv6 address families on this session (FRR modes).', {
          default: false,
        }),
        dynamicASN: str('Accept any internal or external peer AS instead of peerASN (FRR modes).', {
          enum: ['internal', 'external'],
        }),
        ebgpMultiHop: bool('The peer is multiple hops away.'),
        enableGracefulRestart: bool('Enable BGP graceful restart (FRR modes). Immutable.', immutable(
          'EnableGracefulRestart cannot be changed after creation',
        )),
        holdTime: duration('BGP hold time, e.g. "90s": 0 or at least 3s.'),
        interface: str('Interface for unnumbered BGP, instead of peerAddress (FRR modes).'),
        keepaliveTime: duration('BGP keepalive interval, at most holdTime (FRR modes).'),
        localASN: uint32('AS number announced to the peer instead of myASN (FRR modes).', { minimum: 1 }),
        myASN: uint32('AS number of the local end.'),
        nodeSelectors: selectorList('Nodes that open this session; empty means all nodes.'),
        password: str('TCP-MD5 password; mutually exclusive with passwordSecret.'),
        passwordSecret: obj(
          'Secret (type kubernetes.io/basic-auth, key "password") holding the TCP-MD5 password.',
          {
            name: str('Name of the Secret.'),
            namespace: str('Namespace of the Secret.'),
          },
          { 'x-kubernetes-map-type': 'atomic' },
        ),
        peerASN: uint32('AS number of the peer; exactly one of peerASN and dynamicASN.'),
        peerAddress: str('IP address of the peer; exactly one of peerAddress and interface.'),
        peerPort: { description: 'TCP port of the peer.', type: 'integer', default: 179, minimum: 1, maximum: 16384 },
        routerID: str('BGP router ID.'),
        sourceAddress: str('Local source address of the session.'),
        vrf: str('VRF the session runs in (FRR modes).'),
      },
      { required: ['myASN'] },
    ),
    columns: bgpPeerColumns,
  });
  return crd({ kind: 'BGPPeer', plural: 'bgppeers', shortNames: ['bgpp'], versions: [v1beta1, v1beta2] });
}

function bfdProfile(): Crd {
  const ms = (d: string) => int32(`${d} in milliseconds (10-60000).`, { minimum: 10, maximum: 60000 });
  return crd({
    kind: 'BFDProfile',
    plural: 'bfdprofiles',
    shortNames: ['bfdp'],
    versions: [
      version({
        name: 'v1beta1',
        description: 'BFDProfile is a set of BFD session parameters that BGPPeers can refer to.',
        spec: obj('BFD session parameters.', {
          detectMultiplier: int32('Detection multiplier (2-255): packets missed before the session is down.', {
            minimum: 2,
            maximum: 255,
          }),
          echoInterval: ms('Minimum echo receive interval'),
          echoMode: bool('Enable echo mode.'),
          minimumTtl: int32('Minimum expected TTL of incoming packets (1-254, multihop sessions).', {
            minimum: 1,
            maximum: 254,
          }),
          passiveMode: bool('Wait for the peer to start the session.'),
          receiveInterval: ms('Minimum receive interval'),
          transmitInterval: ms('Minimum transmit interval'),
        }),
        columns: [
          { name: 'Passive Mode', type: 'boolean', jsonPath: '.spec.passiveMode' },
          { name: 'Transmit Interval', type: 'integer', jsonPath: '.spec.transmitInterval' },
          { name: 'Receive Interval', type: 'integer', jsonPath: '.spec.receiveInterval' },
          { name: 'Multiplier', type: 'integer', jsonPath: '.spec.detectMultiplier' },
          age,
        ],
      }),
    ],
  });
}

function community(): Crd {
  return crd({
    kind: 'Community',
    plural: 'communities',
    versions: [
      version({
        name: 'v1beta1',
        description: 'Community defines named aliases for BGP community values.',
        spec: obj('The aliases.', {
          communities: {
            type: 'array',
            items: obj('An alias.', {
              name: str('Alias name, usable in BGPAdvertisement.communities.'),
              value: str('Community value: "A:B" (16-bit each) or "large:A:B:C" (32-bit each).'),
            }),
          },
        }),
        columns: [age],
      }),
    ],
  });
}

function serviceStatusCommon(): Record<string, Schema> {
  return {
    node: str('Node announcing the service.', immutable('Value is immutable')),
    serviceName: str('Name of the service.', immutable('Value is immutable')),
    serviceNamespace: str('Namespace of the service.', immutable('Value is immutable')),
  };
}

function serviceL2Status(): Crd {
  return crd({
    kind: 'ServiceL2Status',
    plural: 'servicel2statuses',
    versions: [
      version({
        name: 'v1beta1',
        description: 'ServiceL2Status reports which node announces a service with layer 2, written by the speaker.',
        spec: { description: 'Empty.', type: 'object' },
        status: obj('Announcement state.', {
          ...serviceStatusCommon(),
          interfaces: {
            description: 'Interfaces the service is announced from; not listed when all interfaces are used.',
            type: 'array',
            items: obj('An interface.', { name: str('Interface name.') }),
          },
        }),
        columns: [
          { name: 'Allocated Node', type: 'string', jsonPath: '.status.node' },
          { name: 'Service Name', type: 'string', jsonPath: '.status.serviceName' },
          { name: 'Service Namespace', type: 'string', jsonPath: '.status.serviceNamespace' },
          age,
        ],
      }),
    ],
  });
}

function serviceBGPStatus(): Crd {
  return crd({
    kind: 'ServiceBGPStatus',
    plural: 'servicebgpstatuses',
    versions: [
      version({
        name: 'v1beta1',
        description: 'ServiceBGPStatus reports the BGP peers a node advertises a service to, written by the speaker.',
        spec: { description: 'Empty.', type: 'object' },
        status: obj('Advertisement state.', {
          ...serviceStatusCommon(),
          peers: strList('BGPPeer names the node advertises the service to.'),
        }),
        columns: [
          { name: 'Node', type: 'string', jsonPath: '.status.node' },
          { name: 'Service Name', type: 'string', jsonPath: '.status.serviceName' },
          { name: 'Service Namespace', type: 'string', jsonPath: '.status.serviceNamespace' },
          age,
        ],
      }),
    ],
  });
}

function configurationState(): Crd {
  return crd({
    kind: 'ConfigurationState',
    plural: 'configurationstates',
    shortNames: ['cfgstate'],
    versions: [
      version({
        name: 'v1beta1',
        description:
          'ConfigurationState reports whether the controller or a speaker accepted the current configuration.',
        spec: { description: 'Empty.', type: 'object' },
        status: obj('Result of the last configuration reconcile.', {
          conditions: {
            description: 'Reconciler conditions (poolReconcilerValid, configReconcilerValid).',
            type: 'array',
            items: condition(),
            'x-kubernetes-list-map-keys': ['type'],
            'x-kubernetes-list-type': 'map',
          },
          errorSummary: str('The configuration errors, one per line.'),
          result: str('Valid, Invalid or Unknown.', { enum: ['Valid', 'Invalid', 'Unknown'] }),
        }),
        columns: [
          { name: 'Result', type: 'string', jsonPath: '.status.result' },
          { name: 'Errors', type: 'string', jsonPath: '.status.errorSummary', priority: 10 },
          age,
        ],
      }),
    ],
  });
}

/** All CRDs, in the order they appear in the all-in-one manifest. */
export function buildCrds(): Crd[] {
  return [
    bfdProfile(),
    bgpAdvertisement(),
    bgpPeer(),
    community(),
    configurationState(),
    ipAddressPool(),
    l2Advertisement(),
    serviceBGPStatus(),
    serviceL2Status(),
  ];
}
