// What the speaker's informer caches keep of each object (Informer's `transform`, controller-runtime's cache
// TransformFunc). One speaker caches every Service and EndpointSlice of the cluster; as the API server sends them they
// carry much the speaker never reads (managedFields, kubectl's last-applied-configuration, ports, selectors, cluster
// IPs, endpoints' targetRefs and zones), which at 100,000 Services is hundreds of MB. Each transform keeps exactly
// what the speaker's readers use, and test/speaker/cache-transforms.test.ts holds them to it: the readers answer the
// same for the full and the trimmed object.
//
// Readers, by kind:
//   Service        pipeline (spec.type, spec.loadBalancerClass, status.loadBalancer.ingress[].ip), service-facts
//                  (labels, the allow-shared-ip annotations, spec.externalTrafficPolicy), the event recorder
//                  (apiVersion, kind, name, namespace, uid, resourceVersion), the manager's change filter
//                  (spec, status.loadBalancer, labels, annotations, whether deletionTimestamp is set).
//                  The uid only for Services (events are about Services).
//   EndpointSlice  endpoints.ts (endpoints[].addresses, nodeName, conditions.ready/serving), the manager's index
//                  (the kubernetes.io/service-name label).
//   Endpoints      endpoints.ts (subsets[].addresses/notReadyAddresses[].ip, nodeName).
//   Node           labels (selectors, exclude-from-external-load-balancers), status.conditions (NetworkUnavailable).
//   Service*Status status-objects.ts and the writers (name, labels, creationTimestamp, ownerReferences, status).
//   anything else  everything but metadata.managedFields.
import type { EndpointAddress, Endpoint, EndpointSlice, Endpoints, KubeObject, LoadBalancerIngress, Node, ObjectMeta, Service } from '../k8s/types.js';
import { SERVICE_NAME_LABEL } from './l2/placement.js';

/** Annotations under these prefixes are MetalLB's; the speaker reads some of them, and keeps them all. */
const METALLB_ANNOTATION = /^metallb\.(universe\.tf|io)\//;

type Meta = ObjectMeta & { managedFields?: unknown };

/**
 * Values that repeat across thousands of objects (namespaces, node names, kinds, `LoadBalancer`) are kept once:
 * JSON.parse gives each object its own copy of each string. Bounded, so that a cluster with more distinct values
 * than expected only stops sharing the extra ones.
 */
const interned = new Map<string, string>();
const INTERN_MAX = 10_000;
function intern<V>(v: V): V {
  if (typeof v !== 'string') return v;
  const known = interned.get(v);
  if (known !== undefined) return known as V;
  if (interned.size < INTERN_MAX) interned.set(v, v);
  return v;
}

/** metadata without managedFields (server bookkeeping for server-side apply, often the biggest part of an object). */
function withoutManagedFields(m: Meta | undefined): ObjectMeta | undefined {
  if (!m || m.managedFields === undefined) return m;
  const { managedFields: _drop, ...rest } = m;
  return rest;
}

/** Every object: drops metadata.managedFields only. */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  const m = obj.metadata as Meta | undefined;
  if (!m || m.managedFields === undefined) return obj;
  return { ...obj, metadata: withoutManagedFields(m) };
}

/** The identity the cache and the relist diff need, and the uid for the event recorder when `uid`. */
function identity(m: ObjectMeta | undefined, uid: boolean): ObjectMeta {
  const out: ObjectMeta = {};
  if (!m) return out;
  if (m.name !== undefined) out.name = m.name;
  if (m.namespace !== undefined) out.namespace = intern(m.namespace);
  if (uid && m.uid !== undefined) out.uid = m.uid;
  if (m.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  if (m.deletionTimestamp !== undefined) out.deletionTimestamp = m.deletionTimestamp;
  return out;
}

function metallbAnnotations(a: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!a || typeof a !== 'object') return undefined;
  let out: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(a)) {
    if (!METALLB_ANNOTATION.test(k)) continue;
    (out ??= {})[k] = v;
  }
  return out;
}

/** A Service as the speaker reads it. */
export function serviceForSpeaker(svc: Service): Service {
  const m = svc.metadata;
  const meta = identity(m, true);
  if (m?.labels !== undefined) meta.labels = m.labels;
  const annotations = metallbAnnotations(m?.annotations);
  if (annotations) meta.annotations = annotations;
  let spec: Service['spec'];
  const s = svc.spec;
  if (s && typeof s === 'object') {
    spec = {};
    if (s.type !== undefined) spec.type = intern(s.type);
    if (s.loadBalancerClass !== undefined) spec.loadBalancerClass = intern(s.loadBalancerClass);
    if (s.externalTrafficPolicy !== undefined) spec.externalTrafficPolicy = intern(s.externalTrafficPolicy);
  }
  let status: Service['status'];
  const lb = svc.status?.loadBalancer;
  if (lb && typeof lb === 'object') {
    const ing: unknown = lb.ingress;
    // Entries without an address are ignored by every reader (hostname-only ingress, as in MetalLB).
    status = {
      loadBalancer: Array.isArray(ing)
        ? { ingress: ing.filter((e): e is LoadBalancerIngress => !!e && typeof e === 'object' && typeof (e as { ip?: unknown }).ip === 'string').map((e) => ({ ip: e.ip })) }
        : {},
    };
  }
  const apiVersion = intern(svc.apiVersion);
  const kind = intern(svc.kind);
  // One literal when every field is there (the usual case): V8 then keeps them all inside the object, where
  // properties added one by one past the fourth go to a separate property array.
  if (apiVersion !== undefined && kind !== undefined && spec !== undefined && status !== undefined) return { apiVersion, kind, metadata: meta, spec, status };
  const out: Service = { metadata: meta };
  if (apiVersion !== undefined) out.apiVersion = apiVersion;
  if (kind !== undefined) out.kind = kind;
  if (spec !== undefined) out.spec = spec;
  if (status !== undefined) out.status = status;
  return out;
}

function sliceEndpoint(ep: Endpoint): Endpoint {
  if (!ep || typeof ep !== 'object') return ep;
  const out: Endpoint = {};
  if (ep.addresses !== undefined) out.addresses = ep.addresses;
  if (ep.nodeName !== undefined) out.nodeName = intern(ep.nodeName);
  const c = ep.conditions;
  if (c && typeof c === 'object') {
    out.conditions = {};
    if (c.ready !== undefined) out.conditions.ready = c.ready;
    if (c.serving !== undefined) out.conditions.serving = c.serving;
  } else if (c !== undefined) {
    out.conditions = c;
  }
  return out;
}

/** An EndpointSlice as the speaker reads it. */
export function endpointSliceForSpeaker(slice: EndpointSlice): EndpointSlice {
  const meta = identity(slice.metadata, false);
  const svc = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  if (svc !== undefined) meta.labels = { [SERVICE_NAME_LABEL]: svc };
  const apiVersion = intern(slice.apiVersion);
  const kind = intern(slice.kind);
  const addressType = intern(slice.addressType);
  const endpoints = Array.isArray(slice.endpoints) ? slice.endpoints.map(sliceEndpoint) : slice.endpoints;
  // One literal in the usual case, as for Services.
  if (apiVersion !== undefined && kind !== undefined && addressType !== undefined && endpoints !== undefined) return { apiVersion, kind, metadata: meta, addressType, endpoints };
  const out: EndpointSlice = { metadata: meta };
  if (apiVersion !== undefined) out.apiVersion = apiVersion;
  if (kind !== undefined) out.kind = kind;
  if (addressType !== undefined) out.addressType = addressType;
  if (endpoints !== undefined) out.endpoints = endpoints;
  return out;
}

function endpointAddresses(list: EndpointAddress[] | null | undefined): EndpointAddress[] | null | undefined {
  if (!Array.isArray(list)) return list;
  return list.map((a) => {
    if (!a || typeof a !== 'object') return a;
    const out: EndpointAddress = {};
    if (a.ip !== undefined) out.ip = a.ip;
    if (a.nodeName !== undefined) out.nodeName = intern(a.nodeName);
    return out;
  });
}

/** A legacy Endpoints object as the speaker reads it. */
export function endpointsForSpeaker(ep: Endpoints): Endpoints {
  const out: Endpoints = { metadata: identity(ep.metadata, false) };
  if (ep.apiVersion !== undefined) out.apiVersion = intern(ep.apiVersion);
  if (ep.kind !== undefined) out.kind = intern(ep.kind);
  if (Array.isArray(ep.subsets)) {
    out.subsets = ep.subsets.map((s) => {
      if (!s || typeof s !== 'object') return s;
      const sub: NonNullable<Endpoints['subsets']>[number] = {};
      if (s.addresses !== undefined) sub.addresses = endpointAddresses(s.addresses);
      if (s.notReadyAddresses !== undefined) sub.notReadyAddresses = endpointAddresses(s.notReadyAddresses);
      return sub;
    });
  } else if (ep.subsets !== undefined) {
    out.subsets = ep.subsets;
  }
  return out;
}

/**
 * A Node as the speaker reads it: metadata without managedFields, spec, and of the status only the conditions and
 * addresses (not the image list, volumes, capacity: a real node's status is tens of KB).
 */
export function nodeForSpeaker(node: Node): Node {
  const out: Node & { spec?: unknown } = { ...(node as Node & { spec?: unknown }) };
  const meta = withoutManagedFields(node.metadata as Meta | undefined);
  if (meta !== undefined) out.metadata = meta;
  const st = node.status;
  if (st && typeof st === 'object') {
    out.status = {};
    if (st.conditions !== undefined) out.status.conditions = st.conditions;
    if (st.addresses !== undefined) out.status.addresses = st.addresses;
  }
  return out;
}

/**
 * A ServiceL2Status/ServiceBGPStatus object as the status writers read it: name, namespace, resourceVersion,
 * creationTimestamp (oldest first), labels (node and Service), ownerReferences (a BGP one without owner is made again)
 * and the status. Dropped: managedFields, uid, generateName and the always-empty spec.
 */
export function statusObjectForSpeaker<T extends KubeObject>(obj: T): T {
  const { spec: _spec, ...rest } = obj as T & { spec?: unknown };
  const m = obj.metadata as Meta | undefined;
  if (m) {
    const { managedFields: _mf, uid: _uid, generateName: _gn, ...meta } = m;
    if (meta.namespace !== undefined) meta.namespace = intern(meta.namespace);
    rest.metadata = meta;
  }
  if (rest.apiVersion !== undefined) rest.apiVersion = intern(rest.apiVersion);
  if (rest.kind !== undefined) rest.kind = intern(rest.kind);
  return rest as T;
}
