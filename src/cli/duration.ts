// Command-line durations, shared by the commands (a module of its own, so that importing it loads nothing else).
import { InvalidArgumentError } from 'commander';

/** `15`, `15s`, `1500ms`, `1m`, `1m30s` → milliseconds. A bare number is seconds. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let ms = 0;
  let matched = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    const n = Number(m[1]);
    ms += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    matched = re.lastIndex;
  }
  if (matched !== t.length || t.length === 0) throw new InvalidArgumentError(`"${text}" is not a duration (e.g. 15s, 500ms, 1m)`);
  return Math.round(ms);
}
