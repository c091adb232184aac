// `metallb dry-run`: which addresses would MetalLB give these Services with this configuration? Offline, no cluster.
// Exit codes: 0 every LoadBalancer Service got its addresses, 1 some stay pending, 2 unreadable or invalid input.
import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { KubeObject, Namespace, Node, Secret, Service } from '../k8s/types.js';
import {
  classifyObject, formatConfigError, parseConfig, readYamlDocuments, DEFAULT_NAMESPACE, type Pool,
} from '../config/index.js';
import { ServiceAllocator, restoreOrder, serviceProblems, type ConvergeResult } from '../allocator/index.js';

const EXIT_OK = 0;
const EXIT_PENDING = 1;
const EXIT_INPUT = 2;

export interface DryRunIO {
  readFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIO: DryRunIO = {
  readFile: (path) => readFile(path, 'utf8'),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  },
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

export interface DryRunOptions {
  filename: string[];
  output: 'table' | 'json';
  namespace: string;
  lbClass: string;
}

export type DryRunEntry =
  | { namespace: string; name: string; ips: string[]; pool: string }
  | { namespace: string; name: string; ips: []; error: string };

/** Per-Service outcome of a simulation, in input order (only LoadBalancer Services of the handled class). */
export interface DryRunOutcome {
  services: DryRunEntry[];
  /** Number of reprocess passes it took to settle. */
  passes: number;
}

const MAX_PASSES = 10;

/**
 * Simulates the controller: restore Services that already carry addresses (restoreOrder), allocate the others in
 * input order, and run further passes while a converge asks for a reprocess (an address was freed or a restored
 * Service deferred its new allocation). Each Service's result is written back to its status between passes.
 */
export function simulate(pools: readonly Pool[], services: readonly Service[], loadBalancerClass = ''): DryRunOutcome {
  const alloc = new ServiceAllocator({ loadBalancerClass });
  alloc.setPools(pools);
  const keyOf = (s: Service): string => `${s.metadata?.namespace || 'default'}/${s.metadata?.name ?? ''}`;
  const handled = services.filter((s) => s.spec?.type === 'LoadBalancer' && alloc.handles(s));
  const state = new Map<string, Service>(handled.map((s) => [keyOf(s), s]));
  const results = new Map<string, ConvergeResult>();
  let passes = 0;
  for (let again = true; again && passes < MAX_PASSES; passes++) {
    again = false;
    for (const s of restoreOrder([...state.values()])) {
      const r = alloc.converge(s);
      if (r.reprocessAll) again = true;
      const key = keyOf(s);
      results.set(key, r);
      state.set(key, {
        ...s,
        status: { ...(s.status ?? {}), loadBalancer: { ingress: r.ingress.map((ip) => ({ ip })) } },
      });
    }
  }
  const entries = handled.map((s): DryRunEntry => {
    const r = results.get(keyOf(s));
    const namespace = s.metadata?.namespace || 'default';
    const name = s.metadata?.name ?? '';
    if (r && r.ingress.length > 0 && r.pool !== undefined) return { namespace, name, ips: r.ingress, pool: r.pool };
    return { namespace, name, ips: [], error: r?.pendingReason ?? 'no address allocated' };
  });
  return { services: entries, passes };
}

const describe = (o: KubeObject): string => {
  const kind = typeof o.kind === 'string' && o.kind ? o.kind : '(no kind)';
  const ns = typeof o.metadata?.namespace === 'string' && o.metadata.namespace ? `${o.metadata.namespace}/` : '';
  const name = typeof o.metadata?.name === 'string' && o.metadata.name ? o.metadata.name : '(unnamed)';
  return `${kind} ${ns}${name}`;
};

const isV1Service = (o: KubeObject): boolean => o.kind === 'Service' && (o.apiVersion === undefined || o.apiVersion === 'v1');

function renderTable(entries: readonly DryRunEntry[]): string {
  const rows = [['NAMESPACE', 'NAME', 'IPS', 'POOL']];
  const pending: string[] = [];
  for (const e of entries) {
    if ('pool' in e) rows.push([e.namespace, e.name, e.ips.join(','), e.pool]);
    else {
      rows.push([e.namespace, e.name, '<pending>', '-']);
      pending.push(`  ${e.namespace}/${e.name}: ${e.error}`);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  let out = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('   ')).join('\n') + '\n';
  const ok = entries.length - pending.length;
  out += `\n${entries.length} LoadBalancer service${entries.length === 1 ? '' : 's'}: ${ok} allocated, ${pending.length} pending\n`;
  if (pending.length > 0) out += `\npending:\n${pending.join('\n')}\n`;
  return out;
}

export async function runDryRun(opts: DryRunOptions, io: DryRunIO = processIO): Promise<number> {
  const config: KubeObject[] = [];
  const namespaces: Namespace[] = [];
  const nodes: Node[] = [];
  const secrets: Secret[] = [];
  const services: Service[] = [];
  let bad = false;
  const seen = new Map<string, string>();
  for (const file of opts.filename) {
    const source = file === '-' ? '<stdin>' : file;
    let text: string;
    try {
      text = file === '-' ? await io.readStdin() : await io.readFile(file);
    } catch (err) {
      io.stderr(`metallb dry-run: cannot read ${source}: ${err instanceof Error ? err.message : String(err)}\n`);
      bad = true;
      continue;
    }
    const read = readYamlDocuments(text, source);
    for (const e of read.errors) io.stderr(`metallb dry-run: ${e}\n`);
    if (read.errors.length > 0) bad = true;
    for (const object of read.objects) {
      if (classifyObject(object).type !== 'other') config.push(object);
      else if (object.kind === 'Namespace') namespaces.push(object);
      else if (object.kind === 'Node') nodes.push(object);
      else if (object.kind === 'Secret') secrets.push(object);
      else if (isV1Service(object)) {
        const problems = serviceProblems(object);
        if (problems.length > 0) {
          for (const p of problems) io.stderr(`metallb dry-run: ${source}: ${describe(object)}: ${p}\n`);
          bad = true;
          continue;
        }
        const svc = object as Service;
        const key = `${svc.metadata?.namespace || 'default'}/${svc.metadata?.name ?? ''}`;
        const first = seen.get(key);
        if (first !== undefined) {
          io.stderr(`metallb dry-run: ${source}: Service ${key} is defined twice (first in ${first})\n`);
          bad = true;
          continue;
        }
        seen.set(key, source);
        services.push(svc);
      } else {
        io.stderr(`warning: ${source}: ignoring ${describe(object)}: neither MetalLB configuration nor a v1 Service\n`);
      }
    }
  }
  if (bad) return EXIT_INPUT;

  const parsed = parseConfig(config, { namespaces, nodes, secrets }, { namespace: opts.namespace });
  for (const w of parsed.warnings ?? []) io.stderr(`warning: ${formatConfigError(w)}\n`);
  if (!parsed.config) {
    for (const e of parsed.errors) io.stderr(`${formatConfigError(e)}\n`);
    io.stderr(`metallb dry-run: invalid configuration: ${parsed.errors.length} error${parsed.errors.length === 1 ? '' : 's'}\n`);
    return EXIT_INPUT;
  }
  if (parsed.config.pools.length === 0) io.stderr('warning: no IPAddressPool in the input: every LoadBalancer Service stays pending\n');

  const outcome = simulate(parsed.config.pools, services, opts.lbClass);
  if (opts.output === 'json') io.stdout(`${JSON.stringify({ services: outcome.services })}\n`);
  else io.stdout(renderTable(outcome.services));
  return outcome.services.some((e) => 'error' in e) ? EXIT_PENDING : EXIT_OK;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function registerDryRun(program: Command): void {
  program.command('dry-run')
    .description('show which addresses the controller would give LoadBalancer Services, offline (no cluster needed)')
    .requiredOption('-f, --filename <file>', 'YAML file with MetalLB configuration and/or v1 Services; repeatable; "-" reads stdin', collect)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('-n, --namespace <namespace>', 'MetalLB namespace (config objects without one are taken to be in it)', DEFAULT_NAMESPACE)
    .option('--lb-class <class>', 'the controller\'s --lb-class: only Services with this spec.loadBalancerClass ("" = none) are handled', '')
    .addHelpText('after', `
Input: MetalLB configuration (IPAddressPool and the other metallb.io kinds, or the legacy ConfigMap), Namespace
objects (to resolve namespaceSelectors) and v1 Services, in any files and any order. Services are processed in
input order; those whose status.loadBalancer.ingress already lists addresses are existing assignments and keep
them when still allowed (they are restored first, most addresses first, as the controller does at startup).
Services without clusterIPs are taken as IPv4, or IPv6 when ipFamilies[0] is IPv6, or dual-stack with
ipFamilyPolicy PreferDualStack / RequireDualStack. Only LoadBalancer Services of the handled class are listed.

Output: a table (pending Services with the reason), or with -o json exactly
  {"services":[{"namespace":"default","name":"web","ips":["192.168.10.0"],"pool":"prod"},
               {"namespace":"default","name":"db","ips":[],"error":"..."}]}

Exit status: 0 every LoadBalancer Service got its addresses, 1 some stay pending, 2 unreadable or invalid input.

Examples:
  $ metallb dry-run -f examples/config.yaml -f services.yaml
  $ metallb dry-run -f config.yaml -f services.yaml -o json
  $ kubectl get svc -A -o yaml | metallb dry-run -f config.yaml -f -`)
    .action(async (opts: DryRunOptions) => {
      process.exitCode = await runDryRun(opts);
    });
}
