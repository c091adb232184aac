// A LAN for speaker process tests (root): a bridge in the host namespace (the API server listens on it), node
// namespaces with `eth0` on it, and optionally a client namespace. Everything carries the `tsp-` prefix and the
// test process's tag; addresses come from 10.97.<subnet>.0/24 and fd00:97:<subnet>::/64, one subnet per test file.
// Another helper's tests pass their own prefix and address block (`block: 91` = 10.91.<subnet>.0/24, fd00:91:...).
import { writeFileSync } from 'node:fs';
import { Netns, run } from '../helpers/netns.js';

export interface LanMachine {
  ns: string;
  /** The host end of its veth, on the bridge: set it down to cut the machine's cable. */
  cable: string;
  ip: string;
  ip6: string;
  mac: string;
}

export interface TestLanOptions {
  /** Namespace and interface prefix (default `tsp-`). */
  prefix?: string;
  /** Second octet of the IPv4 block and the IPv6 group after fd00 (default 97). */
  block?: number;
}

export class TestLan {
  readonly net: Netns;
  readonly bridge: string;
  readonly hostIP: string;
  readonly hostIP6: string;
  private readonly block: number;
  private bridgeMade = false;

  constructor(readonly subnet: number, o: TestLanOptions = {}) {
    if (!Number.isInteger(subnet) || subnet < 100 || subnet > 199) throw new Error('TestLan subnet must be 100..199');
    this.net = new Netns(o.prefix ?? 'tsp-');
    this.block = o.block ?? 97;
    this.bridge = this.net.name('br');
    this.hostIP = `10.${this.block}.${subnet}.1`;
    this.hostIP6 = `fd00:${this.block}:${subnet}::1`;
  }

  /** Creates the bridge with the host's addresses. */
  up(): this {
    run('ip', ['link', 'del', this.bridge], { allowFail: true });
    // A live LAN elsewhere with our addresses (another run of the same tests) would take our replies: refuse clearly
    // instead of timing out later.
    const holder = run('ip', ['-o', '-4', 'addr', 'show', 'to', `${this.hostIP}/32`]).trim().split(/\s+/)[1];
    if (holder) throw new Error(`${this.hostIP} is already on ${holder} (another run of these tests on this host?)`);
    this.net.trackLink(this.bridge);
    run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    this.bridgeMade = true;
    // Solicited-node multicast (NDP) must reach every port, as on the lab's bridge.
    writeFileSync(`/sys/class/net/${this.bridge}/bridge/multicast_snooping`, '0');
    run('ip', ['addr', 'add', `${this.hostIP}/24`, 'dev', this.bridge]);
    run('ip', ['addr', 'add', `${this.hostIP6}/64`, 'dev', this.bridge, 'nodad']);
    run('ip', ['link', 'set', this.bridge, 'up']);
    return this;
  }

  private machine(suffix: string, host: number): LanMachine {
    const ns = this.net.addNamespace(suffix);
    const hostEnd = this.net.name(`v${suffix}`);
    const mac = `02:${this.block}:${this.subnet.toString(16).padStart(2, '0')}:00:00:${host.toString(16).padStart(2, '0')}`;
    this.net.veth({ name: hostEnd }, { ns, name: 'eth0', mac });
    run('ip', ['link', 'set', hostEnd, 'master', this.bridge, 'up']);
    const ip = `10.${this.block}.${this.subnet}.${host}`;
    const ip6 = `fd00:${this.block}:${this.subnet}::${host.toString(16)}`;
    this.net.ip(ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
    this.net.ip(ns, 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad');
    this.net.ip(ns, 'link', 'set', 'eth0', 'up');
    return { ns, cable: hostEnd, ip, ip6, mac };
  }

  /** Node i: 10.97.<subnet>.(10+i), MAC 02:97:<subnet>:00:00:<10+i>. */
  node(i: number): LanMachine {
    return this.machine(`n${i}`, 10 + i);
  }

  client(): LanMachine {
    return this.machine('c', 100);
  }

  /** Another machine on the LAN (a router): `10.<block>.<subnet>.<host>`. */
  other(suffix: string, host: number): LanMachine {
    return this.machine(suffix, host);
  }

  /** The MAC answering an ARP request for `ip` from `from` (arping), or undefined. */
  arping(from: LanMachine, ip: string, tries = 2): string | undefined {
    const out = run('ip', ['netns', 'exec', from.ns, 'arping', '-c', String(tries), '-W', '0.3', '-C', '1', '-I', 'eth0', ip], { allowFail: true });
    return /bytes from ([0-9a-f:]{17}) \(/i.exec(out)?.[1]?.toLowerCase();
  }

  /** Every MAC answering ARP requests for `ip` from `from` within a few requests (to catch a second answerer). */
  arpingAll(from: LanMachine, ip: string, count = 3): string[] {
    const out = run('ip', ['netns', 'exec', from.ns, 'arping', '-c', String(count), '-w', '2', '-I', 'eth0', ip], { allowFail: true });
    return [...new Set([...out.matchAll(/bytes from ([0-9a-f:]{17}) \(/gi)].map((m) => m[1]!.toLowerCase()))].sort();
  }

  /** The target link-layer address in the answer to a neighbor solicitation for `ip` from `from` (ndisc6). */
  ndisc6(from: LanMachine, ip: string): string | undefined {
    const out = run('ip', ['netns', 'exec', from.ns, 'ndisc6', '-1', '-r', '2', '-w', '700', ip, 'eth0'], { allowFail: true });
    return /Target link-layer address: ([0-9A-F:]{17})/i.exec(out)?.[1]?.toLowerCase();
  }

  async down(): Promise<void> {
    await this.net.cleanup();
    if (this.bridgeMade) run('ip', ['link', 'del', this.bridge], { allowFail: true });
  }
}
