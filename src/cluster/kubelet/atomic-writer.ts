// The kubelet's atomic writer for Secret, ConfigMap, projected and downward-API volumes: the files live in a
// timestamped directory `..<timestamp>`, `..data` is a symlink to it, and each visible top-level name is a symlink
// through `..data`. An update writes a new timestamped directory and renames a new `..data` over the old one, so a
// reader (a speaker reading its memberlist key through a bind mount) sees either the old or the new set, never half.
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';

export interface PayloadFile {
  content: Buffer;
  mode: number;
}

export class PayloadError extends Error {
  override name = 'PayloadError';
}

const DATA = '..data';
const DATA_TMP = '..data_tmp';

/** Checks a payload path like the API's validation: relative, no `..` element, no leading `..`. */
export function validPayloadPath(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.length > 4096) return false;
  return p.split('/').every((e) => e !== '..' && e !== '') && !p.startsWith('..');
}

function stamp(): string {
  const d = new Date();
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `..${d.getUTCFullYear()}_${pad(d.getUTCMonth() + 1)}_${pad(d.getUTCDate())}_${pad(d.getUTCHours())}_${pad(d.getUTCMinutes())}_${pad(d.getUTCSeconds())}.${String(process.hrtime.bigint() % 1_000_000_000n).padStart(9, '0')}`;
}

function currentMatches(dir: string, payload: Map<string, PayloadFile>): boolean {
  const data = join(dir, DATA);
  if (!existsSync(data)) return false;
  const have: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(d, e.name), r);
      else have.push(r);
    }
  };
  try {
    walk(data, '');
  } catch {
    return false;
  }
  if (have.length !== payload.size) return false;
  for (const r of have) {
    const want = payload.get(r);
    if (!want) return false;
    const p = join(data, r);
    if ((statSync(p).mode & 0o7777) !== want.mode) return false;
    if (!readFileSync(p).equals(want.content)) return false;
  }
  return true;
}

/** Makes `dir` show exactly `payload`; returns false when it already did (nothing written). */
export function writeAtomic(dir: string, payload: Map<string, PayloadFile>): boolean {
  for (const p of payload.keys()) if (!validPayloadPath(p)) throw new PayloadError(`invalid path "${p}" in volume payload`);
  mkdirSync(dir, { recursive: true });
  if (currentMatches(dir, payload)) return false;
  const old = existsSync(join(dir, DATA)) ? readlinkSync(join(dir, DATA)) : undefined;
  const ts = stamp();
  const tsDir = join(dir, ts);
  mkdirSync(tsDir, { mode: 0o755 });
  for (const [rel, f] of payload) {
    const full = join(tsDir, rel);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, f.content);
    chmodSync(full, f.mode);
  }
  const tmp = join(dir, DATA_TMP);
  rmSync(tmp, { force: true });
  symlinkSync(ts, tmp);
  renameSync(tmp, join(dir, DATA));
  // Visible names: one symlink per top-level element of the payload.
  const tops = new Set([...payload.keys()].map((p) => p.split('/')[0]!));
  for (const t of tops) {
    const link = join(dir, t);
    let isLink = false;
    try {
      isLink = lstatSync(link).isSymbolicLink();
    } catch {
      /* absent */
    }
    if (!isLink) {
      rmSync(link, { recursive: true, force: true });
      symlinkSync(posix.join(DATA, t), link);
    }
  }
  for (const e of readdirSync(dir)) {
    if (e.startsWith('..') || tops.has(e)) continue;
    try {
      if (lstatSync(join(dir, e)).isSymbolicLink()) unlinkSync(join(dir, e));
    } catch {
      /* gone */
    }
  }
  if (old && old !== ts) rmSync(join(dir, old), { recursive: true, force: true });
  return true;
}
