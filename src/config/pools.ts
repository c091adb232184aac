// IPAddressPool: address parsing (CIDRs and ranges), serviceAllocation, and the cross-pool overlap rule.
import { formatPrefix, parseIP, parsePrefix, prefixesOverlap, summarizeRange, type Prefix } from '../net/ip.js';
import type { Namespace } from '../k8s/types.js';
import type { Pool, Selector, ServiceAllocation } from './types.js';
import {
  checkKnownFields, checkNoDuplicates, fieldPath, hasEntries, optBool, optInt, optList, optObject, optStringList,
  show, wrongType, INT32, type JsonObject, type Report,
} from './fields.js';
import { parseSelectorList } from './selector.js';
import { checkUniqueNames, readSpec, type Envelope } from './object.js';

export interface AddressEntry {
  /** Index in spec.addresses. */
  index: number;
  text: string;
  /** One prefix for a CIDR; the summarized prefixes of a range. */
  prefixes: Prefix[];
}

export interface ParsedPool {
  env: Envelope;
  pool: Pool;
  /** Only the entries that parsed; a pool with bad entries is also reported, but its good ones still take part in overlap checks. */
  entries: AddressEntry[];
}

export type AddressParse = { ok: true; prefixes: Prefix[] } | { ok: false; message: string };

/**
 * One `addresses` entry, like MetalLB's ParseCIDR: without `-` it is a CIDR parsed strictly (surrounding
 * whitespace is an error); with `-` it is a range split at the first `-`, each side trimmed.
 */
export function parseAddress(text: string): AddressParse {
  const quoted = JSON.stringify(text);
  const dash = text.indexOf('-');
  if (dash < 0) {
    const prefix = parsePrefix(text);
    if (!prefix) {
      const hint = text.trim() !== text ? ' (surrounding spaces are not allowed in a CIDR)' : text.includes('/') ? '' : ' (expected address/length or a range start-end)';
      return { ok: false, message: `invalid CIDR ${quoted}${hint}` };
    }
    return { ok: true, prefixes: [prefix] };
  }
  const startText = text.slice(0, dash);
  const endText = text.slice(dash + 1);
  const start = parseIP(startText.trim());
  if (!start) return { ok: false, message: `invalid IP range ${quoted}: invalid start IP ${JSON.stringify(startText)}` };
  const end = parseIP(endText.trim());
  if (!end) return { ok: false, message: `invalid IP range ${quoted}: invalid end IP ${JSON.stringify(endText)}` };
  if (start.family !== end.family) {
    return { ok: false, message: `invalid IP range ${quoted}: start and end must be of the same IP family` };
  }
  if (start.value > end.value) {
    return { ok: false, message: `invalid IP range ${quoted}: start IP ${JSON.stringify(startText.trim())} is after the end IP ${JSON.stringify(endText.trim())}` };
  }
  return { ok: true, prefixes: summarizeRange(start, end) };
}

const POOL_SPEC_FIELDS = ['addresses', 'autoAssign', 'avoidBuggyIPs', 'serviceAllocation'] as const;
const ALLOCATION_FIELDS = ['priority', 'namespaces', 'namespaceSelectors', 'serviceSelectors'] as const;

export function parsePool(env: Envelope, namespaces: readonly Namespace[]): ParsedPool {
  const { report } = env;
  const spec = readSpec(env, true);
  const entries: AddressEntry[] = [];
  let autoAssign = true;
  let avoidBuggyIPs = false;
  let serviceAllocation: ServiceAllocation | undefined;
  if (spec) {
    checkKnownFields(spec, POOL_SPEC_FIELDS, 'spec', report);
    entries.push(...readAddresses(spec, report));
    autoAssign = optBool(spec, 'autoAssign', 'spec', report) ?? true;
    avoidBuggyIPs = optBool(spec, 'avoidBuggyIPs', 'spec', report) ?? false;
    const alloc = optObject(spec, 'serviceAllocation', 'spec', report);
    if (alloc) serviceAllocation = readServiceAllocation(alloc, 'spec.serviceAllocation', namespaces, report);
  }
  const pool: Pool = {
    name: env.name,
    prefixes: entries.flatMap((e) => e.prefixes),
    addresses: entries.map((e) => e.text),
    autoAssign,
    avoidBuggyIPs,
    labels: env.labels,
    ...(serviceAllocation ? { serviceAllocation } : {}),
  };
  return { env, pool, entries };
}

function readAddresses(spec: JsonObject, report: Report): AddressEntry[] {
  if (spec.addresses === undefined || spec.addresses === null) {
    report('spec.addresses', 'is required: pool has no prefixes defined');
    return [];
  }
  const list = optList(spec, 'addresses', 'spec', report);
  if (!list) return [];
  if (list.length === 0) report('spec.addresses', 'pool has no prefixes defined (the list is empty)');
  const entries: AddressEntry[] = [];
  list.forEach((item, index) => {
    const at = fieldPath('spec.addresses', index);
    if (typeof item !== 'string') {
      report(at, wrongType('a string (CIDR or range)', item));
      return;
    }
    const parsed = parseAddress(item);
    if (parsed.ok) entries.push({ index, text: item, prefixes: parsed.prefixes });
    else report(at, parsed.message);
  });
  return entries;
}

function readServiceAllocation(alloc: JsonObject, path: string, namespaces: readonly Namespace[], report: Report): ServiceAllocation {
  checkKnownFields(alloc, ALLOCATION_FIELDS, path, report);
  const priority = optInt(alloc, 'priority', path, report, INT32) ?? 0;
  const names = optStringList(alloc, 'namespaces', path, report) ?? [];
  checkNoDuplicates(names, fieldPath(path, 'namespaces'), 'namespaces', report);
  const nsSelectors = parseSelectorList(alloc, 'namespaceSelectors', path, report) ?? [];
  const serviceSelectors: Selector[] = parseSelectorList(alloc, 'serviceSelectors', path, report) ?? [];
  const allowed = new Set(names);
  for (const ns of namespaces) {
    const name = ns.metadata?.name;
    if (name && nsSelectors.some((s) => s.matches(ns.metadata?.labels))) allowed.add(name);
  }
  // Deliberate improvement over MetalLB: listing namespaces or namespace selectors always restricts the pool to
  // exactly the resolved set. MetalLB drops the restriction when the selectors match no namespace, which lets
  // services of any namespace take the pool on explicit request.
  const restrictsNamespaces = names.length > 0 || hasEntries(alloc.namespaceSelectors);
  return { priority, restrictsNamespaces, namespaces: allowed, serviceSelectors };
}

/** Duplicate names and overlapping CIDRs across all pools, in input order (later objects get the error). */
export function checkPoolSet(pools: readonly ParsedPool[]): void {
  checkUniqueNames(pools.map((p) => p.env), (name) => `duplicate definition of pool ${show(name)}`);
  const defined: { prefix: Prefix; pool: ParsedPool }[] = [];
  for (const p of pools) {
    for (const entry of p.entries) {
      let reported = false;
      for (const prefix of entry.prefixes) {
        const clash = defined.find((d) => prefixesOverlap(d.prefix, prefix));
        if (clash && !reported) {
          reported = true;
          const where = clash.pool === p ? 'in the same pool' : `of pool ${show(clash.pool.env.name)}`;
          const cidr = formatPrefix(prefix);
          const from = cidr === entry.text ? '' : ` (from ${show(entry.text)})`;
          p.env.report(fieldPath('spec.addresses', entry.index),
            `CIDR ${show(cidr)}${from} overlaps with already defined CIDR ${show(formatPrefix(clash.prefix))} ${where}`);
        }
      }
      for (const prefix of entry.prefixes) defined.push({ prefix, pool: p });
    }
  }
}
