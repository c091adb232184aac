// Adoption and release of dependents (ControllerRefManager): a controller owns the objects its selector matches
// that have no controller yet, and lets go of those it owns that its selector no longer matches.
import type { Resource } from '../../k8s/resources.js';
import { controllerRef, isTerminating } from '../common/pods.js';
import type { Obj, OwnerReference } from '../common/types.js';
import type { ObjectWriter } from '../common/writer.js';

export interface ClaimOptions<T extends Obj> {
  owner: Obj;
  ownerRef: OwnerReference;
  matches(o: T): boolean;
  writer: ObjectWriter;
  resource: Resource;
}

/** The candidates that belong to the owner after adopting orphans and releasing mismatches. */
export async function claim<T extends Obj>(candidates: readonly T[], o: ClaimOptions<T>): Promise<T[]> {
  const ownerUid = o.owner.metadata?.uid;
  const ownerDeleting = isTerminating(o.owner);
  const owned: T[] = [];
  for (const c of candidates) {
    const ref = controllerRef(c);
    const md = c.metadata ?? {};
    if (ref) {
      if (ref.uid !== ownerUid) continue;
      if (o.matches(c) || ownerDeleting) {
        owned.push(c);
        continue;
      }
      // release: drop our reference (kept if the object is already going away)
      if (isTerminating(c)) continue;
      const refs = (md.ownerReferences ?? []).filter((r) => r.uid !== ownerUid);
      await patchRefs(o, c, refs);
      continue;
    }
    if (ownerDeleting || isTerminating(c) || !o.matches(c)) continue;
    const refs = [...(md.ownerReferences ?? []), o.ownerRef];
    const adopted = await patchRefs(o, c, refs);
    if (adopted) owned.push(adopted);
  }
  return owned;
}

async function patchRefs<T extends Obj>(o: ClaimOptions<T>, c: T, refs: OwnerReference[]): Promise<T | undefined> {
  const md = c.metadata ?? {};
  // uid and resourceVersion make the patch apply only to the object we looked at
  return await o.writer.mergePatch<T>(o.resource, md.namespace, md.name ?? '', {
    metadata: { ownerReferences: refs.length ? refs : null, uid: md.uid, resourceVersion: md.resourceVersion },
  });
}
