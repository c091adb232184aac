// The order config objects of one kind are parsed in. Oldest first, so that when two objects conflict (an
// overlapping pool, a duplicate alias) the error lands on the newcomer rather than on the object that was
// already valid and serving; the name breaks ties and orders objects not yet created (webhook admission).
import type { KubeObject } from '../k8s/types.js';

const createdAt = (o: KubeObject): number => {
  const t = o.metadata?.creationTimestamp;
  const ms = t === undefined ? NaN : new Date(t).getTime();
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
};

export function oldestFirst(a: KubeObject, b: KubeObject): number {
  const age = createdAt(a) - createdAt(b);
  if (age !== 0 && !Number.isNaN(age)) return age;
  const x = a.metadata?.name ?? '';
  const y = b.metadata?.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}
