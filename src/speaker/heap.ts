// The speaker's V8 heap setting. Building an Adj-RIB-Out of 100,000 routes keeps almost everything it allocates,
// and V8 answers a high survival rate by doubling the young generation up to its maximum (3 × 16 MB semi-spaces on
// 64-bit), which stays mapped: ~25 MB of RSS for nothing. With a growth factor of 1 the young generation keeps its
// initial size; survivors are promoted sooner, which for a long-lived table is where they belong anyway (measured:
// no slower). `--max-semi-space-size` would do too, but V8 reads it only when the heap is created, so it cannot be
// set from inside the process; the growth factor is read at each resize, so `v8.setFlagsFromString` takes effect
// on Node 20 and 24 alike and needs no flag in the image's ENTRYPOINT or a re-exec.
import { setFlagsFromString } from 'node:v8';

export const SEMI_SPACE_FLAG = '--semi-space-growth-factor=1';

/**
 * Applies the speaker's young-generation default unless the operator chose a semi-space setting of their own
 * (`node --max-semi-space-size=…`, NODE_OPTIONS). Returns the flag applied, or undefined.
 */
export function tuneSpeakerHeap(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'] ?? ''): string | undefined {
  const own = [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--((max|min)[-_])?semi[-_]space/.test(a));
  if (own) return undefined;
  setFlagsFromString(SEMI_SPACE_FLAG);
  return SEMI_SPACE_FLAG;
}
