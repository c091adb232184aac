// The rules of kube-apiserver's namespace registry: `spec.finalizers` (the `kubernetes` finalizer the namespace
// controller owns) change only through the `/finalize` subresource, a terminating namespace goes when nothing holds
// it any more — neither `spec.finalizers` nor `metadata.finalizers` — and deleting it again before that changes nothing.
import type { FieldError } from './errors.js';
import { arr, isObj, obj, type Obj } from './util.js';
import { validateQualifiedKey } from './validation.js';

/** The namespace controller's finalizer, put on every namespace at creation. */
export const NAMESPACE_FINALIZER = 'kubernetes';

/** Finalizer names that need no domain prefix (kube's standard finalizers). */
const STANDARD_FINALIZERS = new Set([NAMESPACE_FINALIZER, 'orphan', 'foregroundDeletion']);

export const specFinalizers = (ns: Obj): string[] => arr(obj(ns.spec).finalizers).map(String);
const metaFinalizers = (ns: Obj): unknown[] => arr(obj(ns.metadata).finalizers);

/** `spec.finalizers` of a `/finalize` write, as ValidateNamespaceFinalizeUpdate checks them. */
export function validateSpecFinalizers(ns: Obj): FieldError[] {
  const f = obj(ns.spec).finalizers;
  if (f === undefined || f === null) return [];
  if (!Array.isArray(f)) return [{ type: 'Invalid', field: 'spec.finalizers', value: f, detail: 'must be a list' }];
  const errs: FieldError[] = [];
  f.forEach((v, i) => {
    const field = `spec.finalizers[${i}]`;
    if (typeof v !== 'string') {
      errs.push({ type: 'Invalid', field, value: v, detail: 'must be a string' });
      return;
    }
    const bad = validateQualifiedKey(v, field);
    if (bad.length) errs.push(...bad);
    else if (!v.includes('/') && !STANDARD_FINALIZERS.has(v)) errs.push({ type: 'Invalid', field, value: v, detail: 'name is neither a standard finalizer name nor is it fully qualified' });
  });
  return errs;
}

/**
 * A write of a namespace: the main resource keeps the stored `spec.finalizers` (namespaceStrategy), `/finalize`
 * takes those of the request and nothing of the status (namespaceFinalizeStrategy).
 */
export function keepSpecFinalizers(next: Obj, existing: Obj): void {
  const spec = isObj(next.spec) ? next.spec : {};
  const stored = obj(existing.spec).finalizers;
  if (stored === undefined) delete spec.finalizers;
  else spec.finalizers = stored;
  next.spec = spec;
}

/** Whether nothing holds a terminating namespace any more (ShouldDeleteNamespaceDuringUpdate and the final Delete). */
export function namespaceReleased(ns: Obj): boolean {
  const m = obj(ns.metadata);
  if (m.deletionTimestamp === undefined || m.deletionTimestamp === null) return false;
  return specFinalizers(ns).length === 0 && metaFinalizers(ns).length === 0;
}

/** The namespace with the namespace controller's finalizer removed (what that controller PUTs to `/finalize`). */
export function withoutNamespaceFinalizer(ns: Obj): Obj {
  const finalizers = specFinalizers(ns).filter((f) => f !== NAMESPACE_FINALIZER);
  return { ...ns, metadata: { ...obj(ns.metadata) }, spec: { ...obj(ns.spec), finalizers } };
}
