// Taints and tolerations (core/v1 semantics, as the scheduler and the DaemonSet controller apply them).
import type { Taint, Toleration } from './types.js';

export const TAINT_NOT_READY = 'node.kubernetes.io/not-ready';
export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable';
export const TAINT_UNSCHEDULABLE = 'node.kubernetes.io/unschedulable';

export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  switch (t.operator ?? 'Equal') {
    case 'Equal':
    case '':
      return (t.value ?? '') === (taint.value ?? '');
    case 'Exists':
      return true;
    default:
      return false;
  }
}

export const tolerated = (taint: Taint, tolerations: readonly Toleration[] | undefined): boolean =>
  (tolerations ?? []).some((t) => toleratesTaint(t, taint));

/** The first taint with one of `effects` that no toleration tolerates. */
export function firstUntoleratedTaint(taints: readonly Taint[] | undefined, tolerations: readonly Toleration[] | undefined, effects: readonly string[]): Taint | undefined {
  for (const taint of taints ?? []) {
    if (!effects.includes(taint.effect)) continue;
    if (!tolerated(taint, tolerations)) return taint;
  }
  return undefined;
}

export const sameTaint = (a: Taint, b: Taint): boolean => a.key === b.key && a.effect === b.effect;
