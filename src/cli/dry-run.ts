// `metallb dry-run`: which addresses would MetalLB give these Services with this configuration? Offline, no cluster.
// Exit codes: 0 every LoadBalancer Service got its addresses, 1 some stay pending, 2 unreadable or invalid input.
import { Option, type Command } from 'commander';
import type { EndpointSlice, Endpoints, KubeObject, Service } from '../k8s/types.js';
import {
  formatConfigError, parseConfig, DEFAULT_NAMESPACE, type Pool,
} from '../config/index.js';
import {
  EXIT_NEGATIVE as EXIT_PENDING, EXIT_OK, EXIT_USAGE as EXIT_INPUT, collectRepeated, describeObject as describe, plural, processIO,
  readInputs, sortInputs, type CommandIO,
} from './input.js';
import { ServiceAllocator, restoreOrder, serviceProblems, type ConvergeResult } from '../allocator/index.js';
import { placeLayer2, type Layer2Placement } from '../speaker/l2/placement.js';
import { placeBgp, type BgpPlacement } from '../speaker/bgp/placement.js';

export interface DryRunOptions {
  filename: string[];
  output: 'table' | 'json';
  namespace: string;
  lbClass: string;
  /** Nodes whose speaker is up (`--speakers a,b`); default every Node given. */
  speakers?: string[];
  /** The speaker's --ignore-exclude-lb. */
  ignoreExcludeLb?: boolean;
}

export type DryRunEntry =
  | { namespace: string; name: string; ips: string[]; pool: string; layer2?: Layer2Placement; bgp?: BgpPlacement[] }
  | { namespace: string; name: string; ips: []; error: string };

/** Per-Service outcome of a simulation, in input order (only LoadBalancer Services of the handled class). */
export interface DryRunOutcome {
  services: DryRunEntry[];
}

const MAX_PASSES = 10;

/** `namespace/name`, as the allocator keys Services. */
const keyOf = (s: Service): string => `${s.metadata?.namespace || 'default'}/${s.metadata?.name ?? ''}`;

/**
 * Simulates the controller: restore Services that already carry addresses (restoreOrder), allocate the others in
 * input order, and run further passes while a converge asks for a reprocess (an address was freed or a restored
 * Service deferred its new allocation). Each Service's result is written back to its status between passes.
 */
export function simulate(pools: readonly Pool[], services: readonly Service[], loadBalancerClass = ''): DryRunOutcome {
  const alloc = new ServiceAllocator({ loadBalancerClass });
  alloc.setPools(pools);
  const handled = services.filter((s) => s.spec?.type === 'LoadBalancer' && alloc.handles(s));
  const state = new Map<string, Service>(handled.map((s) => [keyOf(s), s]));
  const results = new Map<string, ConvergeResult>();
  for (let again = true, passes = 0; again && passes < MAX_PASSES; passes++) {
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
  return { services: entries };
}

const isV1Service = (o: KubeObject): boolean => o.kind === 'Service' && (o.apiVersion === undefined || o.apiVersion === 'v1');
const isEndpointSlice = (o: KubeObject): boolean =>
  o.kind === 'EndpointSlice' && (o.apiVersion === 'discovery.k8s.io/v1' || o.apiVersion === 'discovery.k8s.io/v1beta1');
const isEndpoints = (o: KubeObject): boolean => o.kind === 'Endpoints' && (o.apiVersion === undefined || o.apiVersion === 'v1');

/** `--speakers a,b,c` → names (blank entries dropped). */
export function parseSpeakers(text: string): string[] {
  return [...new Set(text.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
}

function renderTable(entries: readonly DryRunEntry[]): string {
  const withL2 = entries.some((e) => 'layer2' in e && e.layer2 !== undefined);
  const withBgp = entries.some((e) => 'bgp' in e && e.bgp !== undefined);
  const rows = [['NAMESPACE', 'NAME', 'IPS', 'POOL', ...(withL2 ? ['LAYER2'] : []), ...(withBgp ? ['BGP NODES'] : [])]];
  const pending: string[] = [];
  const unannounced: string[] = [];
  for (const e of entries) {
    if ('pool' in e) {
      const l2 = e.layer2 === undefined ? '-' : (e.layer2.node ?? '<none>');
      const bgp = e.bgp === undefined ? '-' : e.bgp.length === 0 ? '<none>' : [...new Set(e.bgp.map((r) => r.node))].join(',');
      rows.push([e.namespace, e.name, e.ips.join(','), e.pool, ...(withL2 ? [l2] : []), ...(withBgp ? [bgp] : [])]);
      if (e.layer2 && e.layer2.node === null) unannounced.push(`  ${e.namespace}/${e.name}: ${e.layer2.reason}`);
    } else {
      rows.push([e.namespace, e.name, '<pending>', '-', ...(withL2 ? ['-'] : []), ...(withBgp ? ['-'] : [])]);
      pending.push(`  ${e.namespace}/${e.name}: ${e.error}`);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  let out = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('   ')).join('\n') + '\n';
  const ok = entries.length - pending.length;
  out += `\n${entries.length} LoadBalancer service${entries.length === 1 ? '' : 's'}: ${ok} allocated, ${pending.length} pending\n`;
  if (pending.length > 0) out += `\npending:\n${pending.join('\n')}\n`;
  if (unannounced.length > 0) out += `\nnot announced in layer 2:\n${unannounced.join('\n')}\n`;
  return out;
}

export async function runDryRun(opts: DryRunOptions, io: CommandIO = processIO): Promise<number> {
  const inputs = await readInputs(opts.filename, io, 'dry-run');
  const { config, context, rest } = sortInputs(inputs.objects);
  const services: Service[] = [];
  const endpointSlices: EndpointSlice[] = [];
  const endpoints: Endpoints[] = [];
  const seen = new Map<string, string>();
  let bad = !inputs.ok;
  for (const { object, source } of rest) {
    if (isEndpointSlice(object)) {
      endpointSlices.push(object as EndpointSlice);
      continue;
    }
    if (isEndpoints(object)) {
      endpoints.push(object as Endpoints);
      continue;
    }
    if (!isV1Service(object)) {
      io.stderr(`warning: ${source}: ignoring ${describe(object)}: neither MetalLB configuration, a v1 Service, an EndpointSlice nor Endpoints\n`);
      continue;
    }
    const problems = serviceProblems(object);
    if (problems.length > 0) {
      for (const p of problems) io.stderr(`metallb dry-run: ${source}: ${describe(object)}: ${p}\n`);
      bad = true;
      continue;
    }
    const svc = object as Service;
    const key = keyOf(svc);
    const first = seen.get(key);
    if (first !== undefined) {
      io.stderr(`metallb dry-run: ${source}: Service ${key} is defined twice (first in ${first})\n`);
      bad = true;
      continue;
    }
    seen.set(key, source);
    services.push(svc);
  }
  if (bad) return EXIT_INPUT;

  const parsed = parseConfig(config, context, { namespace: opts.namespace });
  for (const w of parsed.warnings ?? []) io.stderr(`warning: ${formatConfigError(w)}\n`);
  if (!parsed.config) {
    for (const e of parsed.errors) io.stderr(`${formatConfigError(e)}\n`);
    io.stderr(`metallb dry-run: invalid configuration: ${plural(parsed.errors.length, 'error')}\n`);
    return EXIT_INPUT;
  }
  if (parsed.config.pools.length === 0) io.stderr('warning: no IPAddressPool in the input: every LoadBalancer Service stays pending\n');

  const outcome = simulate(parsed.config.pools, services, opts.lbClass);
  if (parsed.config.l2Advertisements.length > 0 || parsed.config.bgpAdvertisements.length > 0) {
    const nodeNames = new Set(context.nodes.map((n) => n.metadata?.name ?? ''));
    for (const s of opts.speakers ?? []) {
      if (!nodeNames.has(s)) io.stderr(`warning: --speakers: ${s} is not a Node in the input; it cannot announce\n`);
    }
    const byKey = new Map(services.map((s) => [keyOf(s), s]));
    const allocated: { service: Service; ips: string[] }[] = [];
    const entryOf = new Map<Service, DryRunEntry>();
    for (const e of outcome.services) {
      const svc = byKey.get(`${e.namespace}/${e.name}`);
      if (!svc || !('pool' in e)) continue;
      allocated.push({ service: svc, ips: e.ips });
      entryOf.set(svc, e);
    }
    const inputs = { config: parsed.config, nodes: context.nodes, endpointSlices, endpoints, speakers: opts.speakers, ignoreExcludeLB: opts.ignoreExcludeLb ?? false };
    if (parsed.config.l2Advertisements.length > 0) {
      for (const [svc, p] of placeLayer2(inputs, allocated)) {
        const e = entryOf.get(svc);
        if (e && 'pool' in e) e.layer2 = p;
      }
    }
    if (parsed.config.bgpAdvertisements.length > 0) {
      for (const [svc, routes] of placeBgp(inputs, allocated)) {
        const e = entryOf.get(svc);
        if (e && 'pool' in e) e.bgp = routes;
      }
    }
  }
  if (opts.output === 'json') io.stdout(`${JSON.stringify({ services: outcome.services })}\n`);
  else io.stdout(renderTable(outcome.services));
  return outcome.services.some((e) => 'error' in e) ? EXIT_PENDING : EXIT_OK;
}

export function registerDryRun(program: Command): void {
  program.command('dry-run')
    .description('show which addresses the controller would give LoadBalancer Services, offline (no cluster needed)')
    .requiredOption('-f, --filename <file>', 'YAML file with MetalLB configuration, Services, Nodes, EndpointSlices; repeatable; "-" reads stdin', collectRepeated)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('-n, --namespace <namespace>', 'MetalLB namespace (config objects without one are taken to be in it)', DEFAULT_NAMESPACE)
    .option('--lb-class <class>', 'the controller\'s --lb-class: only Services with this spec.loadBalancerClass ("" = none) are handled', '')
    .option('--speakers <nodes>', 'layer 2 and BGP: the nodes whose speakers are up, comma-separated (default: every Node given)', parseSpeakers)
    .option('--ignore-exclude-lb', 'layer 2 and BGP: the speakers\' --ignore-exclude-lb (nodes labelled node.kubernetes.io/exclude-from-external-load-balancers may announce)', false)
    .addHelpText('after', `
Input: MetalLB configuration (IPAddressPool and the other metallb.io kinds, or the legacy ConfigMap), Namespace
objects (to resolve namespaceSelectors) and v1 Services, in any files and any order. Services are processed in
input order; those whose status.loadBalancer.ingress already lists addresses are existing assignments and keep
them when still allowed (they are restored first, most addresses first, as the controller does at startup).
Services without clusterIPs are taken as IPv4, or IPv6 when ipFamilies[0] is IPv6, or dual-stack with
ipFamilyPolicy PreferDualStack / RequireDualStack. Only LoadBalancer Services of the handled class are listed.

Layer 2: when the configuration has L2Advertisements, each Service whose pool has one also shows the node whose
speaker would announce it, by the speakers' own election, from the Node objects given (labels, NetworkUnavailable,
the exclusion label), the Services' EndpointSlices (or Endpoints; a Service with neither is taken to have a
serving endpoint) and --speakers. To see who takes over when a node dies, run again without it in --speakers.

BGP: when the configuration has BGPAdvertisements, each Service whose pool has one also lists what every node would
advertise to each of its BGPPeers (peer nodeSelectors, advertisement nodeSelectors, peers, aggregation lengths,
localPref, communities with Community aliases resolved), decided by the speaker's own code from the same inputs.

Output: a table (pending Services with the reason), or with -o json exactly
  {"services":[{"namespace":"default","name":"web","ips":["192.168.10.0"],"pool":"prod","layer2":{"node":"node2"}},
               {"namespace":"default","name":"db","ips":[],"error":"..."}]}
  ("layer2" only for Services whose pool has an L2Advertisement; {"node":null,"reason":"..."} when no node may
  announce it.) With BGPAdvertisements, an entry also has
  "bgp":[{"node":"node1","peer":"tor","prefix":"192.168.10.0/32","localPref":0,"communities":["64512:100"]}, ...]
  (localPref 0 = not set; [] when no node would advertise it).

Exit status: 0 every LoadBalancer Service got its addresses, 1 some stay pending, 2 unreadable or invalid input.

Examples:
  $ metallb dry-run -f examples/config.yaml -f services.yaml
  $ metallb dry-run -f config.yaml -f services.yaml -o json
  $ kubectl get svc -A -o yaml | metallb dry-run -f config.yaml -f -
  $ kubectl get nodes,svc,endpointslices -A -o yaml | metallb dry-run -f config.yaml -f - --speakers node1,node3`)
    .action(async (opts: DryRunOptions) => {
      process.exitCode = await runDryRun(opts);
    });
}
