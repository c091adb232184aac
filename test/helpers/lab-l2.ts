// What the layer 2 lab tests read off a lab: a node's machine, a Service's addresses, the node its ServiceL2Status
// names, and the MACs that answer ARP and NDP for an address at the client. The lab is made in each file's before(),
// after these are built, hence the getter.
import assert from 'node:assert/strict';
import type { Lab } from './lab.js';

export type Machine = Lab['status']['nodes'][number];
type Svc = { status?: { loadBalancer?: { ingress?: { ip: string }[] } } };
type L2 = { status?: { node?: string; serviceName?: string } };

export interface L2Probes {
  /** The lab's node of that name (an assertion failure if there is none). */
  node(name: string): Machine;
  /** The Service's ingress addresses, once there are n of them. */
  ingress(name: string, n?: number): Promise<string[]>;
  /** The node of the Service's one ServiceL2Status object, once there is exactly one. */
  owner(svc: string): Promise<string>;
  /** The node of the Service's ServiceL2Status objects (one per address family), once they agree. */
  agreedOwner(svc: string): Promise<string>;
  /** Every MAC answering ARP for ip from the client within a few requests. */
  arpAnswers(ip: string): Promise<string[]>;
  /** Every MAC answering a neighbor solicitation for ip from the client (`-m`: all advertisements, not the first). */
  ndpAnswers(ip: string): Promise<string[]>;
}

export function l2Probes(labOf: () => Lab): L2Probes {
  const statuses = async (svc: string): Promise<L2[]> =>
    (await labOf().getJson<{ items: L2[] }>(['get', 'servicel2statuses', '-n', 'metallb-system'])).items.filter((o) => o.status?.serviceName === svc);
  const macs = (text: string, re: RegExp): string[] => [...new Set([...text.matchAll(re)].map((m) => m[1]!.toLowerCase()))].sort();
  return {
    node(name) {
      const n = labOf().status.nodes.find((x) => x.name === name);
      assert.ok(n, name);
      return n;
    },
    async ingress(name, n = 1) {
      const lab = labOf();
      let ips: string[] = [];
      await lab.waitFor(`${name} gets ${n} address(es)`, async () => {
        ips = ((await lab.getJson<Svc>(['get', 'service', name])).status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
        return ips.length === n;
      });
      return ips;
    },
    async owner(svc) {
      let found = '';
      await labOf().waitFor(`one ServiceL2Status for ${svc}`, async () => {
        const items = await statuses(svc);
        found = items.length === 1 ? (items[0]!.status?.node ?? '') : '';
        return found !== '' || `${items.length} objects`;
      });
      return found;
    },
    async agreedOwner(svc) {
      let found = '';
      await labOf().waitFor(`ServiceL2Status for ${svc}`, async () => {
        const nodes = new Set((await statuses(svc)).map((o) => o.status?.node ?? ''));
        found = nodes.size === 1 ? [...nodes][0]! : '';
        return found !== '' || `nodes ${[...nodes].join(',')}`;
      });
      return found;
    },
    async arpAnswers(ip) {
      const lab = labOf();
      const r = await lab.exec('client', ['arping', '-c', '3', '-w', '2', '-I', lab.status.client.interface, ip]);
      return macs(r.stdout, /bytes from ([0-9a-f:]{17}) \(/gi);
    },
    async ndpAnswers(ip) {
      const lab = labOf();
      const r = await lab.exec('client', ['ndisc6', '-m', '-r', '3', '-w', '700', ip, lab.status.client.interface]);
      return macs(r.stdout, /Target link-layer address: ([0-9A-F:]{17})/gi);
    },
  };
}
