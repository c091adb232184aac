// The pod-template hash: controllers name ReplicaSets `<deployment>-<hash>` and label their pods
// `pod-template-hash=<hash>`. Like upstream: FNV-1a (32 bit) over the template and the collision count, its decimal
// form encoded with rand.SafeEncodeString's alphabet (no vowels, no 0/1/3, so names never spell words). Upstream
// hashes Go's in-memory printout of the struct; we hash the template's canonical JSON, which is stable across
// restarts and versions of this program, though not bit-identical to kube-controller-manager's values.
import { stableStringify } from './pods.js';

const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

export function fnv32a(data: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (const b of data) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function safeEncodeString(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += ALPHANUMS[s.charCodeAt(i) % ALPHANUMS.length];
  return out;
}

export function computeHash(template: unknown, collisionCount?: number): string {
  let h = fnv32a(Buffer.from(stableStringify(template), 'utf8'));
  if (collisionCount !== undefined && collisionCount !== null) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(collisionCount >>> 0);
    h = fnv32a(b, h);
  }
  return safeEncodeString(String(h));
}
