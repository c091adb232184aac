// The resource types the server serves: the built-ins, plus those that CustomResourceDefinitions add.
import { coreToEventsV1, eventsV1FieldLabel, eventsV1ToCore } from './events.js';
import type { FieldError } from './errors.js';
import { extendAPIService } from './aggregator/apiservice.js';
import { extendHPA } from './autoscaling/hpa.js';
import type { Obj } from './util.js';

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

export interface VersionInfo {
  name: string;
  schema?: Obj;
  printerColumns?: PrinterColumn[];
  statusSubresource: boolean;
  /** `scale` subresource (autoscaling/v1 Scale): JSON paths like `.spec.replicas`; `labelSelectorPath`
   *  `spec.selector` means "format the LabelSelector object at .spec.selector" (built-in workloads). */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  /** CRD versions marked deprecated: the Warning every request to this version gets. */
  deprecationWarning?: string;
  /** Other subresources (pods/log, serviceaccounts/token, …), for discovery and routing. */
  subresources?: SubresourceInfo[];
  /** A built-in version that is not the storage version: how its objects convert (autoscaling/v1 HPAs). */
  convert?: { toStorage(o: Obj): Obj; fromStorage(o: Obj): Obj };
}

/** Type-specific rules of a built-in type (kube-apiserver's registry strategies), applied to the stored form. */
export interface TypeStrategy {
  /** Defaults and validation on create and update of the main resource; mutates `o`. */
  prepare?(o: Obj, old: Obj | undefined): FieldError[];
  /** The same for `/status` updates. */
  prepareStatus?(o: Obj, old: Obj): FieldError[];
}

export interface SubresourceInfo {
  name: string;
  /** kind of the subresource's request/response object, and its group/version when not the parent's */
  kind: string;
  group?: string;
  version?: string;
  verbs: string[];
}

export interface ResourceType {
  group: string;
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Served versions, preferred first. */
  versions: VersionInfo[];
  storageVersion: string;
  verbs: string[];
  /** Built-in types accept strategic merge patches; custom resources do not. */
  builtin: boolean;
  /** Set for resources served from a CRD (its name). */
  crd?: string;
  /** A view of another resource's storage (events.k8s.io/v1 Events are core/v1 Events). */
  storage?: StorageView;
  /** Never stored: a request/response resource served by a handler (access reviews, token reviews). */
  virtual?: boolean;
  strategy?: TypeStrategy;
}

export interface StorageView {
  /** storage key of the resource whose objects these are */
  key: string;
  /** apiVersion of stored objects */
  apiVersion: string;
  toStorage(o: Obj): Obj;
  fromStorage(o: Obj): Obj;
  fieldLabel(label: string): string;
}

export const resourceKey = (group: string, resource: string): string => `${group}/${resource}`;
/** The storage key of a resource (its own `group/resource`, or the one it is a view of). */
export const keyOf = (rt: ResourceType): string => rt.storage?.key ?? resourceKey(rt.group, rt.resource);
export const apiVersionOf = (group: string, version: string): string => (group ? `${group}/${version}` : version);

interface BuiltinSpec {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  status?: boolean;
  scale?: boolean;
  /** default: ALL_VERBS */
  verbs?: string[];
  subresources?: SubresourceInfo[];
  virtual?: boolean;
}

const CREATE_ONLY = ['create'];

const BUILTINS: BuiltinSpec[] = [
  // like kube-apiserver: no deletecollection of namespaces
  {
    group: '',
    version: 'v1',
    resource: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    status: true,
    verbs: ALL_VERBS.filter((v) => v !== 'deletecollection'),
    // the namespace controller's way to remove its `kubernetes` finalizer from spec.finalizers
    subresources: [{ name: 'finalize', kind: 'Namespace', verbs: ['update'] }],
  },
  { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no'], status: true },
  { group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true, shortNames: ['svc'], categories: ['all'], status: true },
  { group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints', namespaced: true, shortNames: ['ep'] },
  {
    group: '',
    version: 'v1',
    resource: 'pods',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    status: true,
    subresources: [
      { name: 'binding', kind: 'Binding', verbs: CREATE_ONLY },
      { name: 'log', kind: 'Pod', verbs: ['get'] },
    ],
  },
  { group: '', version: 'v1', resource: 'bindings', kind: 'Binding', namespaced: true, verbs: CREATE_ONLY, virtual: true },
  { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] },
  { group: '', version: 'v1', resource: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'] },
  {
    group: '',
    version: 'v1',
    resource: 'serviceaccounts',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
    subresources: [{ name: 'token', kind: 'TokenRequest', group: 'authentication.k8s.io', version: 'v1', verbs: CREATE_ONLY }],
  },
  { group: '', version: 'v1', resource: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim', namespaced: true, shortNames: ['pvc'], status: true },
  { group: '', version: 'v1', resource: 'resourcequotas', kind: 'ResourceQuota', namespaced: true, shortNames: ['quota'], status: true },
  { group: '', version: 'v1', resource: 'limitranges', kind: 'LimitRange', namespaced: true, shortNames: ['limits'] },
  { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice', namespaced: true },
  { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true },
  { group: 'events.k8s.io', version: 'v1', resource: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'] },
  { group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false, shortNames: ['crd', 'crds'], categories: ['api-extensions'], status: true },
  { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false, categories: ['api-extensions'] },
  { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false, categories: ['api-extensions'] },
  { group: 'apps', version: 'v1', resource: 'deployments', scale: true, kind: 'Deployment', namespaced: true, shortNames: ['deploy'], categories: ['all'], status: true },
  { group: 'apps', version: 'v1', resource: 'daemonsets', kind: 'DaemonSet', namespaced: true, shortNames: ['ds'], categories: ['all'], status: true },
  { group: 'apps', version: 'v1', resource: 'replicasets', scale: true, kind: 'ReplicaSet', namespaced: true, shortNames: ['rs'], categories: ['all'], status: true },
  { group: 'apps', version: 'v1', resource: 'statefulsets', scale: true, kind: 'StatefulSet', namespaced: true, shortNames: ['sts'], categories: ['all'], status: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'roles', kind: 'Role', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings', kind: 'RoleBinding', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', kind: 'ClusterRole', namespaced: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings', kind: 'ClusterRoleBinding', namespaced: false },
  { group: 'authentication.k8s.io', version: 'v1', resource: 'selfsubjectreviews', kind: 'SelfSubjectReview', namespaced: false, verbs: CREATE_ONLY, virtual: true },
  { group: 'authentication.k8s.io', version: 'v1', resource: 'tokenreviews', kind: 'TokenReview', namespaced: false, verbs: CREATE_ONLY, virtual: true },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'localsubjectaccessreviews', kind: 'LocalSubjectAccessReview', namespaced: true, verbs: CREATE_ONLY, virtual: true },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: CREATE_ONLY, virtual: true },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectrulesreviews', kind: 'SelfSubjectRulesReview', namespaced: false, verbs: CREATE_ONLY, virtual: true },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'subjectaccessreviews', kind: 'SubjectAccessReview', namespaced: false, verbs: CREATE_ONLY, virtual: true },
  { group: 'policy', version: 'v1', resource: 'poddisruptionbudgets', kind: 'PodDisruptionBudget', namespaced: true, shortNames: ['pdb'], status: true },
  { group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses', kind: 'PriorityClass', namespaced: false, shortNames: ['pc'] },
  { group: 'networking.k8s.io', version: 'v1', resource: 'networkpolicies', kind: 'NetworkPolicy', namespaced: true, shortNames: ['netpol'] },
  { group: 'autoscaling', version: 'v2', resource: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true, shortNames: ['hpa'], categories: ['all'], status: true },
  { group: 'apiregistration.k8s.io', version: 'v1', resource: 'apiservices', kind: 'APIService', namespaced: false, categories: ['api-extensions'], status: true },
];

/** Extra versions and strategies of built-in types, by `group/resource`, from the modules that own those types. */
const BUILTIN_EXTENSIONS: Record<string, (rt: ResourceType) => void> = {
  'autoscaling/horizontalpodautoscalers': extendHPA,
  'apiregistration.k8s.io/apiservices': extendAPIService,
};

/** Preferred group order in discovery (kubectl resolves short names in this order). */
const GROUP_ORDER = [
  '',
  'apps',
  'events.k8s.io',
  'authentication.k8s.io',
  'authorization.k8s.io',
  'autoscaling',
  'discovery.k8s.io',
  'coordination.k8s.io',
  'rbac.authorization.k8s.io',
  'policy',
  'networking.k8s.io',
  'scheduling.k8s.io',
  'apiextensions.k8s.io',
  'admissionregistration.k8s.io',
  'apiregistration.k8s.io',
];

export class Registry {
  private readonly types = new Map<string, ResourceType>();

  constructor() {
    for (const b of BUILTINS) {
      this.add({
        group: b.group,
        resource: b.resource,
        singular: b.kind.toLowerCase(),
        kind: b.kind,
        listKind: `${b.kind}List`,
        namespaced: b.namespaced,
        shortNames: b.shortNames ?? [],
        categories: b.categories ?? [],
        versions: [
          {
            name: b.version,
            statusSubresource: b.status === true,
            ...(b.scale ? { scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: 'spec.selector' } } : {}),
            ...(b.subresources ? { subresources: b.subresources } : {}),
          },
        ],
        storageVersion: b.version,
        verbs: b.verbs ?? ALL_VERBS,
        builtin: true,
        ...(b.virtual ? { virtual: true } : {}),
        ...(b.group === 'events.k8s.io'
          ? {
              storage: {
                key: resourceKey('', 'events'),
                apiVersion: 'v1',
                toStorage: eventsV1ToCore,
                fromStorage: coreToEventsV1,
                fieldLabel: eventsV1FieldLabel,
              },
            }
          : {}),
      });
    }
    for (const [key, extend] of Object.entries(BUILTIN_EXTENSIONS)) {
      const rt = this.types.get(key);
      if (rt) extend(rt);
    }
  }

  add(rt: ResourceType): void {
    this.types.set(resourceKey(rt.group, rt.resource), rt);
  }

  remove(group: string, resource: string): void {
    this.types.delete(resourceKey(group, resource));
  }

  /** By `group/resource` (not the storage key). */
  byKey(key: string): ResourceType | undefined {
    return this.types.get(key);
  }

  /** The resource served at /apis/<group>/<version>/<resource>, if that version is served. */
  lookup(group: string, version: string, resource: string): { rt: ResourceType; version: VersionInfo } | undefined {
    const rt = this.types.get(resourceKey(group, resource));
    if (!rt) return undefined;
    const v = rt.versions.find((x) => x.name === version);
    return v ? { rt, version: v } : undefined;
  }

  all(): ResourceType[] {
    return [...this.types.values()];
  }

  /** group → versions (preferred first) → resource types, for discovery. */
  groups(): { group: string; versions: { version: string; resources: { rt: ResourceType; v: VersionInfo }[] }[] }[] {
    const byGroup = new Map<string, Map<string, { rt: ResourceType; v: VersionInfo }[]>>();
    const versionOrder = new Map<string, string[]>();
    for (const rt of this.types.values()) {
      let g = byGroup.get(rt.group);
      if (!g) byGroup.set(rt.group, (g = new Map()));
      const order = versionOrder.get(rt.group) ?? [];
      for (const v of rt.versions) {
        let l = g.get(v.name);
        if (!l) g.set(v.name, (l = []));
        l.push({ rt, v });
        if (!order.includes(v.name)) order.push(v.name);
      }
      versionOrder.set(rt.group, order);
    }
    const names = [...byGroup.keys()].sort((a, b) => {
      const ia = GROUP_ORDER.indexOf(a);
      const ib = GROUP_ORDER.indexOf(b);
      if (ia >= 0 || ib >= 0) return (ia < 0 ? 999 : ia) - (ib < 0 ? 999 : ib);
      return a.localeCompare(b);
    });
    return names.map((group) => {
      const g = byGroup.get(group)!;
      const versions = sortVersions(versionOrder.get(group) ?? []);
      return { group, versions: versions.map((version) => ({ version, resources: g.get(version) ?? [] })) };
    });
  }
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first (k8s.io/apimachinery/pkg/version). */
export function sortVersions(vs: string[]): string[] {
  const parse = (v: string): [number, number, number, string] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [0, 0, 0, v];
    const stab = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
    return [stab, Number(m[1]), Number(m[3] ?? 0), v];
  };
  return [...vs].sort((a, b) => {
    const pa = parse(a);
    const pb = parse(b);
    if (pa[0] === 0 && pb[0] === 0) return a.localeCompare(b);
    return pb[0] - pa[0] || pb[1] - pa[1] || pb[2] - pa[2];
  });
}
