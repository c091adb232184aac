// Go's time.Duration text form (metav1.Duration in the CRDs, hold-time in the legacy ConfigMap).

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};
/** Go durations are int64 nanoseconds. */
const MAX_NS = 9223372036854775807;

export type DurationResult = { ok: true; nanoseconds: number } | { ok: false; message: string };

/** Parses like Go's time.ParseDuration: `90s`, `1m30s`, `1.5h`, `-2s`, `0`; a unit is required except for `0`. */
export function parseGoDuration(text: string): DurationResult {
  const bad = (why: string): DurationResult => ({ ok: false, message: `invalid duration ${JSON.stringify(text)}: ${why}` });
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return { ok: true, nanoseconds: 0 };
  if (rest === '') return bad('empty');
  let total = 0;
  while (rest !== '') {
    const m = /^([0-9]*)(\.([0-9]*))?/.exec(rest);
    const whole = m?.[1] ?? '';
    const frac = m?.[3] ?? '';
    if (whole === '' && frac === '') return bad('expected a number');
    rest = rest.slice(m?.[0].length ?? 0);
    const unitMatch = /^[^0-9.]+/.exec(rest);
    if (!unitMatch) return bad(`missing unit (one of ns, us, ms, s, m, h)`);
    const unit = unitMatch[0];
    const scale = UNIT_NS[unit];
    if (scale === undefined) return bad(`unknown unit ${JSON.stringify(unit)} (one of ns, us, ms, s, m, h)`);
    rest = rest.slice(unit.length);
    total += Number(`${whole || '0'}.${frac || '0'}`) * scale;
    if (total > MAX_NS) return bad('out of range');
  }
  return { ok: true, nanoseconds: Math.round(sign * total) };
}

/** Whole seconds, rounded toward zero (MetalLB: `time.Duration(int(d.Seconds())) * time.Second`). */
export const wholeSeconds = (nanoseconds: number): number => Math.trunc(nanoseconds / 1e9);

/** Go's Duration.String() for a number of seconds: `0s`, `30s`, `1m30s`, `2m0s`, `1h0m0s`, `1.5s`. */
export function formatGoDuration(seconds: number): string {
  if (seconds === 0) return '0s';
  const sign = seconds < 0 ? '-' : '';
  let rest = Math.abs(seconds);
  if (rest < 1) {
    const ms = rest * 1000;
    if (ms >= 1) return `${sign}${trimNumber(ms)}ms`;
    const us = ms * 1000;
    if (us >= 1) return `${sign}${trimNumber(us)}µs`;
    return `${sign}${trimNumber(us * 1000)}ns`;
  }
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  const s = `${trimNumber(rest)}s`;
  if (h > 0) return `${sign}${h}h${m}m${s}`;
  if (m > 0) return `${sign}${m}m${s}`;
  return `${sign}${s}`;
}

const trimNumber = (n: number): string => String(Number(n.toFixed(9)));
