// The interfaces the layer 2 speaker never announces on, from MetalLB's `metallb-excludel2` ConfigMap, mounted at
// /etc/metallb/excludel2.yaml (key `announcedInterfacesToExclude`, a list of regular expressions joined as
// "(r1)|(r2)|..."). Without the file, MetalLB excludes nothing; we apply the list MetalLB's manifests ship, so a
// speaker started outside those manifests still leaves CNI and container interfaces alone.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export const EXCLUDE_L2_PATH = '/etc/metallb/excludel2.yaml';

/** The list in MetalLB's manifests (config/native, v0.14+). */
export const DEFAULT_EXCLUDED_INTERFACES: readonly string[] = [
  '^docker.*',
  '^cbr.*',
  '^dummy.*',
  '^virbr.*',
  '^lxcbr.*',
  '^veth.*',
  '^lo$',
  '^cali.*',
  '^tunl.*',
  '^flannel.*',
  '^kube-ipvs.*',
  '^cni.*',
  '^nodelocaldns.*',
  '^lxc.*',
];

export interface ExcludeRule {
  readonly regexp: RegExp | undefined;
  readonly patterns: readonly string[];
  /** Where the patterns came from: the file, or the built-in default. */
  readonly source: string;
}

/** Joins patterns as MetalLB does; an invalid one is an error naming it. */
export function compileExclude(patterns: readonly string[], source: string): ExcludeRule {
  for (const p of patterns) {
    try {
      new RegExp(p);
    } catch (err) {
      throw new Error(`${source}: announcedInterfacesToExclude entry ${JSON.stringify(p)} is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return { regexp: patterns.length ? new RegExp(`(${patterns.join(')|(')})`) : undefined, patterns, source };
}

/**
 * Reads the exclude file. Absent: the default list. Present but without the key (or an empty list): nothing is
 * excluded, as in MetalLB. Unreadable, not YAML, or not a list of strings: an error naming the problem.
 */
export function loadExcludeRule(path = EXCLUDE_L2_PATH): ExcludeRule {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return compileExclude(DEFAULT_EXCLUDED_INTERFACES, 'built-in default');
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new Error(`${path}: not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return compileExclude([], path);
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${path}: expected a mapping with announcedInterfacesToExclude`);
  const list = (doc as Record<string, unknown>)['announcedInterfacesToExclude'];
  if (list === undefined || list === null) return compileExclude([], path);
  if (!Array.isArray(list) || !list.every((x): x is string => typeof x === 'string')) {
    throw new Error(`${path}: announcedInterfacesToExclude must be a list of strings`);
  }
  return compileExclude(list, path);
}
