// Loading an nftables script with `nft -f -` in the current network namespace (the proxy runs inside the node's).
import { spawn } from 'node:child_process';

export class NftError extends Error {
  override name = 'NftError';
}

export interface NftRunner {
  apply(script: string): Promise<void>;
  /** Whether a table exists (`nft list tables`, which does not list rules: cheap at any size). */
  hasTable(family: string, name: string): Promise<boolean>;
}

/** `nft -f -` with the script on stdin; rejects with nft's own message when the kernel or parser refuses it. */
export function applyNft(script: string, bin = 'nft', extraArgs: readonly string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...extraArgs, '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new NftError(`cannot run ${bin}: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new NftError(`nft -f failed (exit ${code}): ${stderr.trim().split('\n').slice(0, 6).join(' | ')}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(script);
  });
}

/** The tables `nft list tables` shows, as `family name`. */
export function listTables(bin = 'nft', extraArgs: readonly string[] = []): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...extraArgs, 'list', 'tables'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new NftError(`cannot run ${bin}: ${e.message}`)));
    child.on('close', (code) => {
      if (code !== 0) reject(new NftError(`nft list tables failed (exit ${code}): ${err.trim()}`));
      else resolve(out.split('\n').map((l) => l.replace(/^table\s+/, '').trim()).filter(Boolean));
    });
  });
}

export const systemNft: NftRunner = {
  apply: (s) => applyNft(s),
  hasTable: async (family, name) => (await listTables()).includes(`${family} ${name}`),
};
