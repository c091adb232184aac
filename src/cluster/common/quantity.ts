// resource.Quantity with exact arithmetic: parsing (`250m`, `0.5`, `128Mi`, `1e3`), MilliValue / Value rounded up
// as apimachinery rounds them, and the canonical String() of DecimalSI and BinarySI quantities (`123456789n`,
// `1500m`, `12k`, `64Mi`). The metrics-server and the HPA print quantities the way Kubernetes prints them, so the
// digits of `kubectl get hpa` and of PodMetrics match a real cluster's.

/** value = mantissa × 10^exponent (binary suffixes are folded into the mantissa). */
export interface Quantity {
  mantissa: bigint;
  exponent: number;
  /** the suffix family the text used: BinarySI (Ki, Mi…), DecimalExponent (1e3) or DecimalSI */
  format: 'DecimalSI' | 'BinarySI' | 'DecimalExponent';
}

const DECIMAL_SUFFIX: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIX: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const QUANTITY_RE = /^([+-]?)(\d+)?(?:\.(\d*))?(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

export class QuantityError extends Error {
  override name = 'QuantityError';
}

/** Parses a quantity; throws QuantityError naming the text (apimachinery's ErrFormatWrong wording). */
export function parseQuantity(input: string | number): Quantity {
  const text = typeof input === 'number' ? String(input) : input.trim();
  const m = QUANTITY_RE.exec(text);
  if (!m || (m[2] === undefined && (m[3] === undefined || m[3] === ''))) throw new QuantityError(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got "${text}")`);
  const intPart = m[2] ?? '';
  const frac = m[3] ?? '';
  let mantissa = BigInt(`${intPart}${frac}` || '0');
  let exponent = -frac.length;
  let format: Quantity['format'] = 'DecimalSI';
  if (m[4] !== undefined) {
    exponent += Number(m[4].slice(1));
    format = 'DecimalExponent';
  } else if (m[5] !== undefined && m[5] in BINARY_SUFFIX) {
    mantissa *= 1n << BigInt(BINARY_SUFFIX[m[5]]!);
    format = 'BinarySI';
  } else if (m[5] !== undefined) {
    exponent += DECIMAL_SUFFIX[m[5]]!;
  }
  if (m[1] === '-') mantissa = -mantissa;
  return normalize({ mantissa, exponent, format });
}

function normalize(q: Quantity): Quantity {
  let { mantissa, exponent } = q;
  if (mantissa === 0n) return { ...q, mantissa: 0n, exponent: 0 };
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exponent++;
  }
  return { ...q, mantissa, exponent };
}

const pow10 = (n: number): bigint => 10n ** BigInt(n);

/** ⌈mantissa × 10^shift⌉ (shift may be negative). */
function scaledCeil(mantissa: bigint, shift: number): bigint {
  if (shift >= 0) return mantissa * pow10(shift);
  const d = pow10(-shift);
  const q = mantissa / d;
  return mantissa % d !== 0n && mantissa > 0n ? q + 1n : q;
}

/** Quantity.MilliValue(): the value × 1000, rounded up. */
export const milliValue = (q: Quantity): bigint => scaledCeil(q.mantissa, q.exponent + 3);
/** Quantity.Value(): rounded up to an integer. */
export const intValue = (q: Quantity): bigint => scaledCeil(q.mantissa, q.exponent);
/** Quantity.ScaledValue(-9): nano units, rounded up. */
export const nanoValue = (q: Quantity): bigint => scaledCeil(q.mantissa, q.exponent + 9);

const SI_BY_EXP: Record<number, string> = { [-9]: 'n', [-6]: 'u', [-3]: 'm', 0: '', 3: 'k', 6: 'M', 9: 'G', 12: 'T', 15: 'P', 18: 'E' };

/**
 * The canonical DecimalSI text of mantissa × 10^exponent: the largest SI exponent (a multiple of 3) that keeps the
 * mantissa an integer; below nano the value is rounded up to nano, as a Quantity cannot be finer.
 */
export function formatDecimalSI(mantissa: bigint, exponent: number): string {
  let { mantissa: m, exponent: e } = normalize({ mantissa, exponent, format: 'DecimalSI' });
  if (m === 0n) return '0';
  if (e < -9) {
    m = scaledCeil(m, e + 9);
    e = -9;
    ({ mantissa: m, exponent: e } = normalize({ mantissa: m, exponent: e, format: 'DecimalSI' }));
  }
  const si = Math.floor(e / 3) * 3;
  if (si > 18) return `${m * pow10(e - 18)}E`;
  return `${m * pow10(e - si)}${SI_BY_EXP[si]}`;
}

const BIN_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/** The canonical BinarySI text of an integer: Ki, Mi … when it is a whole multiple, else the plain number. */
export function formatBinarySI(value: bigint): string {
  if (value === 0n) return '0';
  let v = value;
  let i = 0;
  while (i < BIN_SUFFIXES.length - 1 && v % 1024n === 0n && (v >= 1024n || v <= -1024n)) {
    v /= 1024n;
    i++;
  }
  return `${v}${BIN_SUFFIXES[i]}`;
}

/** Quantity.String(): canonical text in the quantity's own format family. */
export function formatQuantity(q: Quantity): string {
  if (q.format === 'BinarySI' && q.exponent >= 0) return formatBinarySI(q.mantissa * pow10(q.exponent));
  if (q.format === 'DecimalExponent') {
    const n = normalize(q);
    if (n.mantissa === 0n) return '0';
    const e = Math.floor(n.exponent / 3) * 3;
    return e === 0 ? `${n.mantissa}` : `${n.mantissa * pow10(n.exponent - e)}e${e}`;
  }
  return formatDecimalSI(q.mantissa, q.exponent);
}

/** resource.NewMilliQuantity(v, DecimalSI).String() */
export const formatMilli = (milli: bigint | number): string => formatDecimalSI(BigInt(milli), -3);

/** The milli-value of a quantity given as text, or undefined when it is not a quantity. */
export function milliOf(text: unknown): bigint | undefined {
  if (typeof text !== 'string' && typeof text !== 'number') return undefined;
  try {
    return milliValue(parseQuantity(text));
  } catch {
    return undefined;
  }
}
