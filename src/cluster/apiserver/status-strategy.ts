// What an update of the `status` subresource keeps, type by type, as kube-apiserver's status strategies decide
// (PrepareForUpdate of each registry): the built-in types take metadata changes from the request (a Service status
// update carries MetalLB's `metallb.io/ip-allocated-from-pool` annotation) and only ignore the spec; Deployments also
// keep their labels and Pods their ownerReferences; CustomResourceDefinitions keep their metadata; custom resources
// take nothing but the status. System metadata (name, uid, creation and deletion timestamps, generation, managed
// fields) always stays the stored object's.
import { obj, type Obj } from './util.js';

const CRD = 'apiextensions.k8s.io/customresourcedefinitions';

const SYSTEM_FIELDS = ['name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'managedFields'] as const;

/** The object a status update of `existing` with the request body `incoming` stores. */
export function statusUpdate(key: string, custom: boolean, existing: Obj, incoming: Obj): Obj {
  const em = obj(existing.metadata);
  if (custom) {
    const next: Obj = { ...existing, metadata: { ...em } };
    if (incoming.status === undefined) delete next.status;
    else next.status = incoming.status;
    return next;
  }
  const meta: Obj = { ...obj(incoming.metadata) };
  for (const f of SYSTEM_FIELDS) {
    if (em[f] === undefined) delete meta[f];
    else meta[f] = em[f];
  }
  delete meta.selfLink;
  const keep = (f: string): void => {
    if (em[f] === undefined) delete meta[f];
    else meta[f] = em[f];
  };
  if (key === 'apps/deployments') keep('labels');
  if (key === '/pods') keep('ownerReferences');
  if (key === CRD) for (const f of ['labels', 'annotations', 'ownerReferences', 'finalizers']) keep(f);
  const next: Obj = { ...incoming, metadata: meta };
  // everything but metadata and status is the stored object's (the spec, and Secrets' / ConfigMaps' data if ever)
  for (const k of Object.keys(next)) if (!['apiVersion', 'kind', 'metadata', 'status'].includes(k)) delete next[k];
  for (const [k, v] of Object.entries(existing)) if (!['apiVersion', 'kind', 'metadata', 'status'].includes(k)) next[k] = v;
  if (incoming.status === undefined) delete next.status;
  return next;
}
