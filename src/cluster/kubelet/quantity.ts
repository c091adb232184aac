// resource.Quantity: `128Mi`, `0.5`, `250m`, `1e3`, `2G`. Parsed to a plain number (cores, bytes); the lab's
// values are far from the range where floating point loses integers.

const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

export class QuantityError extends Error {
  override name = 'QuantityError';
}

/** The value of a quantity; throws QuantityError naming the bad text. */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') {
    if (!Number.isFinite(q)) throw new QuantityError(`quantity ${q} is not a finite number`);
    return q;
  }
  const m = QUANTITY.exec(q.trim());
  if (!m) throw new QuantityError(`"${q}" is not a quantity (expected e.g. 100m, 0.5, 128Mi, 1G)`);
  const base = Number(m[1]);
  if (m[2]) return Number(`${m[1]}${m[2]}`);
  return base * (SUFFIX[m[3] ?? ''] ?? 1);
}

/** Like parseQuantity but undefined for a missing or malformed value. */
export function quantityOr(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  try {
    return parseQuantity(q);
  } catch {
    return undefined;
  }
}

/** CPU cores → millicores, rounded up like Quantity.MilliValue(). */
export const milliCPU = (cores: number): number => Math.ceil(Math.round(cores * 1e9) / 1e6);
