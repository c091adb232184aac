// Static bearer tokens, kube-apiserver's `--token-auth-file` format: one `token,user,uid[,"group1,group2"]` a line
// (CSV: a field with commas is quoted). Used for the lab's components (controller-manager, scheduler, kubelets,
// kube-proxy) and test identities.
import { readFileSync } from 'node:fs';
import type { UserInfo } from './user.js';

export class TokenFileError extends Error {}

/** One CSV record (RFC 4180 quoting, as Go's encoding/csv reads it). */
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new TokenFileError('unterminated quoted field');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ',') throw new TokenFileError(`extraneous text after a quoted field: ${JSON.stringify(line.slice(i))}`);
    } else {
      const end = line.indexOf(',', i);
      field = end < 0 ? line.slice(i) : line.slice(i, end);
      i = end < 0 ? line.length : end;
    }
    out.push(field);
    if (i >= line.length) return out;
    i++; // the comma
  }
}

/** token → user. Errors name the file and line. */
export function parseTokenFile(text: string, source = 'token file'): Map<string, UserInfo> {
  const tokens = new Map<string, UserInfo>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, idx) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    let rec: string[];
    try {
      rec = parseCsvLine(line);
    } catch (e) {
      throw new TokenFileError(`${source}:${idx + 1}: ${(e as Error).message}`);
    }
    if (rec.length < 3) throw new TokenFileError(`${source}:${idx + 1}: want token,user,uid[,"group1,group2"], got ${rec.length} field(s)`);
    const [token, username, uid] = rec.map((f) => f.trim()) as [string, string, string];
    if (!token) throw new TokenFileError(`${source}:${idx + 1}: empty token`);
    if (!username) throw new TokenFileError(`${source}:${idx + 1}: empty user name`);
    if (tokens.has(token)) throw new TokenFileError(`${source}:${idx + 1}: duplicate token (also given for ${tokens.get(token)!.username})`);
    const groups = rec.length > 3 ? rec[3]!.split(',').map((g) => g.trim()).filter(Boolean) : [];
    tokens.set(token, { username, ...(uid ? { uid } : {}), groups });
  });
  return tokens;
}

export function readTokenFile(path: string): Map<string, UserInfo> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TokenFileError(`cannot read token file ${path}: ${(e as Error).message}`);
  }
  return parseTokenFile(text, path);
}
