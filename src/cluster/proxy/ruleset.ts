// The nftables ruleset of the proxy: one table `inet kube-proxy`, written whole and loaded in one `nft -f`
// transaction (delete + recreate), so the data path never sees half a ruleset. Layout after upstream's nftables
// proxier: nat chains hooked at prerouting/output jump to `services`, which dispatches on
// (destination address, protocol, port) through verdict maps to a chain per Service port; that chain picks an
// endpoint with `numgen random`, and the endpoint chain DNATs. Packets marked for masquerading are SNATed at
// postrouting. Filter chains reject traffic to Services without endpoints. Pure: text in, text out.
import { fnv32a } from '../common/hash.js';
import type { Family, ProxyEndpoint, ServicePortEntry } from './model.js';

export const TABLE = 'kube-proxy';
const MASQ_MARK = '0x4000';

export interface RulesetInput {
  entries: readonly ServicePortEntry[];
  /** This node's addresses that NodePorts answer on. */
  nodeIPs: readonly string[];
  /** The pod network (traffic from there to a cluster IP is not masqueraded). */
  podCIDRs: readonly string[];
  /** Masquerade all traffic to cluster IPs too. */
  masqueradeAll?: boolean;
}

const ipk = (f: Family): string => (f === 4 ? 'ip' : 'ip6');
const addrType = (f: Family): string => (f === 4 ? 'ipv4_addr' : 'ipv6_addr');
const isV6 = (a: string): boolean => a.includes(':');
const hostPort = (ip: string, port: number): string => (isV6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`);

/** Chain names: a short hash for uniqueness, then a readable part (nft allows letters, digits, `/ _ . -`). */
function chainName(kind: string, f: Family, id: string): string {
  const h = fnv32a(Buffer.from(`${kind}|${f}|${id}`)).toString(36).padStart(7, '0');
  const readable = id.replace(/[^A-Za-z0-9/_.-]/g, '.');
  return `${kind}${f}-${h}-${readable}`.slice(0, 200);
}

const list = (items: readonly string[]): string => (items.length ? `elements = { ${items.join(', ')} }` : '');

function setDef(name: string, type: string, elements: readonly string[], flags = '', timeoutSeconds?: number): string[] {
  return [
    `  set ${name} {`,
    `    type ${type}`,
    ...(flags ? [`    flags ${flags}`] : []),
    ...(timeoutSeconds !== undefined ? [`    timeout ${timeoutSeconds}s`] : []),
    ...(elements.length ? [`    ${list(elements)}`] : []),
    '  }',
  ];
}

function mapDef(name: string, type: string, elements: readonly string[]): string[] {
  return [`  map ${name} {`, `    type ${type} : verdict`, ...(elements.length ? [`    ${list(elements)}`] : []), '  }'];
}

function chain(name: string, body: readonly string[], hook?: string): string[] {
  return [`  chain ${name} {`, ...(hook ? [`    ${hook}`] : []), ...body.map((r) => `    ${r}`), '  }'];
}

/** `numgen random` over endpoint chains (a plain goto for one). */
function spread(chains: readonly string[]): string {
  if (chains.length === 1) return `goto ${chains[0]}`;
  return `numgen random mod ${chains.length} vmap { ${chains.map((c, i) => `${i} : goto ${c}`).join(', ')} }`;
}

export function buildRuleset(input: RulesetInput): string {
  const chains: string[][] = [];
  const sets: string[][] = [];
  const svcIPs: Record<Family, string[]> = { 4: [], 6: [] };
  const nodePorts: Record<Family, string[]> = { 4: [], 6: [] };
  const noEndpoints: Record<Family, string[]> = { 4: [], 6: [] };
  const noEndpointNodePorts: Record<Family, string[]> = { 4: [], 6: [] };
  const epChains = new Map<string, string>();
  const pods: Record<Family, string[]> = { 4: input.podCIDRs.filter((c) => !isV6(c)), 6: input.podCIDRs.filter(isV6) };
  const nodeIPs: Record<Family, string[]> = { 4: input.nodeIPs.filter((a) => !isV6(a)), 6: input.nodeIPs.filter(isV6) };

  for (const e of input.entries) {
    const f = e.family;
    const ip = ipk(f);
    const proto = e.protocol;
    const svcChain = chainName('svc', f, e.id);
    const extChain = chainName('ext', f, e.id);
    const hasExternal = e.nodePort !== undefined || e.externalIPs.length > 0;
    if (e.clusterEndpoints.length === 0) {
      // no endpoint at all: connections are refused (filter chains), as upstream does
      for (const c of [...e.clusterIPs, ...e.externalIPs]) noEndpoints[f].push(`${c} . ${proto} . ${e.port} : goto reject-chain`);
      if (e.nodePort !== undefined) noEndpointNodePorts[f].push(`${proto} . ${e.nodePort} : goto reject-chain`);
      continue;
    }
    // session affinity: one set per endpoint of the clients it served lately
    const affinitySet = (ep: ProxyEndpoint): string | undefined =>
      e.affinitySeconds !== undefined ? `aff${f}-${fnv32a(Buffer.from(`${e.id}|${ep.ip}|${ep.port}`)).toString(36)}` : undefined;
    const endpointChain = (ep: ProxyEndpoint): string => {
      const key = `${e.id}|${f}|${ep.ip}|${ep.port}`;
      let name = epChains.get(key);
      if (name) return name;
      name = chainName('ep', f, `${e.id}__${ep.ip}/${ep.port}`);
      epChains.set(key, name);
      const set = affinitySet(ep);
      if (set) sets.push(setDef(set, addrType(f), [], 'dynamic,timeout', e.affinitySeconds));
      chains.push(
        chain(name, [
          // a pod reaching itself through the Service (hairpin) must see the reply come from the Service address
          `${ip} saddr ${ep.ip} jump mark-for-masquerade`,
          ...(set ? [`update @${set} { ${ip} saddr }`] : []),
          `meta l4proto ${proto} dnat ${ip} to ${hostPort(ep.ip, ep.port)}`,
        ]),
      );
      return name;
    };
    const pick = (eps: readonly ProxyEndpoint[]): string[] => {
      const names = eps.map(endpointChain);
      const sticky = eps.flatMap((ep, i) => {
        const set = affinitySet(ep);
        return set ? [`${ip} saddr @${set} goto ${names[i]}`] : [];
      });
      return [...sticky, spread(names)];
    };
    const masqCluster = input.masqueradeAll ? ['jump mark-for-masquerade'] : pods[f].length ? [`${ip} saddr != @pod-cidrs${f} jump mark-for-masquerade`] : [];
    chains.push(chain(svcChain, [...masqCluster, ...pick(e.clusterEndpoints)]));
    for (const c of e.clusterIPs) svcIPs[f].push(`${c} . ${proto} . ${e.port} : goto ${svcChain}`);
    if (!hasExternal) continue;
    let ext: string[];
    if (e.externalLocal) {
      ext = [
        // pods and the node itself are not "external": they reach any endpoint, as upstream short-circuits them
        ...(pods[f].length ? [`${ip} saddr @pod-cidrs${f} goto ${svcChain}`] : []),
        'fib saddr type local jump mark-for-masquerade',
        `fib saddr type local goto ${svcChain}`,
        // external clients keep their address and reach only this node's endpoints; none here: dropped
        ...(e.localEndpoints.length ? pick(e.localEndpoints) : ['drop']),
      ];
    } else {
      ext = ['jump mark-for-masquerade', `goto ${svcChain}`];
    }
    chains.push(chain(extChain, ext));
    for (const c of e.externalIPs) svcIPs[f].push(`${c} . ${proto} . ${e.port} : goto ${extChain}`);
    if (e.nodePort !== undefined) nodePorts[f].push(`${proto} . ${e.nodePort} : goto ${extChain}`);
  }

  const out: string[] = [
    `add table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    ...setDef('pod-cidrs4', 'ipv4_addr', pods[4], 'interval'),
    ...setDef('pod-cidrs6', 'ipv6_addr', pods[6], 'interval'),
    ...setDef('nodeport-ips4', 'ipv4_addr', nodeIPs[4]),
    ...setDef('nodeport-ips6', 'ipv6_addr', nodeIPs[6]),
    ...mapDef('service-ips4', 'ipv4_addr . inet_proto . inet_service', dedupe(svcIPs[4])),
    ...mapDef('service-ips6', 'ipv6_addr . inet_proto . inet_service', dedupe(svcIPs[6])),
    ...mapDef('service-nodeports4', 'inet_proto . inet_service', dedupe(nodePorts[4])),
    ...mapDef('service-nodeports6', 'inet_proto . inet_service', dedupe(nodePorts[6])),
    ...mapDef('no-endpoint-services4', 'ipv4_addr . inet_proto . inet_service', dedupe(noEndpoints[4])),
    ...mapDef('no-endpoint-services6', 'ipv6_addr . inet_proto . inet_service', dedupe(noEndpoints[6])),
    ...mapDef('no-endpoint-nodeports4', 'inet_proto . inet_service', dedupe(noEndpointNodePorts[4])),
    ...mapDef('no-endpoint-nodeports6', 'inet_proto . inet_service', dedupe(noEndpointNodePorts[6])),
    ...sets.flat(),
    ...chain('mark-for-masquerade', [`meta mark set meta mark | ${MASQ_MARK}`]),
    ...chain('masquerading', [`meta mark & ${MASQ_MARK} == 0 return`, `meta mark set meta mark ^ ${MASQ_MARK}`, 'masquerade fully-random']),
    ...chain('services', [
      'ip daddr . meta l4proto . th dport vmap @service-ips4',
      'ip6 daddr . meta l4proto . th dport vmap @service-ips6',
      'ip daddr @nodeport-ips4 meta l4proto . th dport vmap @service-nodeports4',
      'ip6 daddr @nodeport-ips6 meta l4proto . th dport vmap @service-nodeports6',
    ]),
    ...chain('nat-prerouting', ['jump services'], 'type nat hook prerouting priority dstnat; policy accept;'),
    ...chain('nat-output', ['jump services'], 'type nat hook output priority -100; policy accept;'),
    ...chain('nat-postrouting', ['jump masquerading'], 'type nat hook postrouting priority srcnat; policy accept;'),
    ...chain('reject-chain', ['reject']),
    ...chain('service-endpoints-check', [
      'ip daddr . meta l4proto . th dport vmap @no-endpoint-services4',
      'ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services6',
    ]),
    ...chain('nodeport-endpoints-check', [
      'ip daddr @nodeport-ips4 meta l4proto . th dport vmap @no-endpoint-nodeports4',
      'ip6 daddr @nodeport-ips6 meta l4proto . th dport vmap @no-endpoint-nodeports6',
    ]),
    ...chain('filter-input', ['ct state new jump nodeport-endpoints-check', 'ct state new jump service-endpoints-check'], 'type filter hook input priority -110; policy accept;'),
    ...chain('filter-forward', ['ct state new jump service-endpoints-check'], 'type filter hook forward priority -110; policy accept;'),
    ...chain('filter-output', ['ct state new jump service-endpoints-check', 'ct state new jump nodeport-endpoints-check'], 'type filter hook output priority -110; policy accept;'),
    ...chains.flat(),
    '}',
    '',
  ];
  return out.join('\n');
}

/** The script that removes the table (nothing to do when it is not there). */
export const deleteScript = (): string => `add table inet ${TABLE}\ndelete table inet ${TABLE}\n`;

/** Two entries for the same (address, protocol, port) would make the map load fail: the first wins. */
function dedupe(elements: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of elements) {
    const k = e.slice(0, e.indexOf(' : '));
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(e);
  }
  return out;
}
