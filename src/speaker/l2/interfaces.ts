// Which interfaces the layer 2 announcer answers on, by MetalLB's rules (internal/layer2/announcer.go
// updateInterfaces): names matching the exclude regexp are ignored altogether; of the others, those not UP, with a
// master (bond or bridge ports) or with NOARP get no responder; an ARP responder needs BROADCAST, an NDP responder
// an IPv6 link-local address. Read from sysfs and /proc/self/net/if_inet6 (the latter always shows this process's
// network namespace); the decisions are a pure function of what was read.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMac } from '../../net/addresses.js';

// linux/if.h
export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_NOARP = 0x80;
/** linux/if_arp.h ARPHRD_ETHER: the only link type the Ethernet codecs speak. */
export const ARPHRD_ETHER = 1;

/** What the kernel says about one interface. */
export interface LinkInfo {
  readonly name: string;
  readonly index: number;
  readonly flags: number;
  /** ARPHRD_* */
  readonly type: number;
  readonly mac: Buffer | undefined;
  readonly hasMaster: boolean;
  /** First IPv6 link-local address (fe80::/10), if any. */
  readonly linkLocal: Buffer | undefined;
}

/** An interface that gets a responder, and which kinds. */
export interface UsableInterface {
  readonly name: string;
  readonly index: number;
  readonly mac: Buffer;
  readonly arp: boolean;
  readonly ndp: boolean;
  readonly linkLocal: Buffer | undefined;
}

export interface InterfaceScan {
  /** Every interface not excluded by name, whatever its state (MetalLB's GetInterfaces, used for announceFailed). */
  readonly names: readonly string[];
  readonly usable: readonly UsableInterface[];
  /** Interfaces left out, with the rule that left them out (for debug logs). */
  readonly skipped: readonly { readonly name: string; readonly why: string }[];
}

export function classifyInterfaces(links: readonly LinkInfo[], exclude: RegExp | undefined): InterfaceScan {
  const names: string[] = [];
  const usable: UsableInterface[] = [];
  const skipped: { name: string; why: string }[] = [];
  for (const link of links) {
    if (exclude?.test(link.name)) {
      skipped.push({ name: link.name, why: 'excluded by name' });
      continue;
    }
    names.push(link.name);
    if ((link.flags & IFF_UP) === 0) skipped.push({ name: link.name, why: 'not up' });
    else if (link.hasMaster) skipped.push({ name: link.name, why: 'has a master (bond or bridge port)' });
    else if ((link.flags & IFF_NOARP) !== 0) skipped.push({ name: link.name, why: 'NOARP' });
    else if (link.type !== ARPHRD_ETHER || !link.mac) skipped.push({ name: link.name, why: `not Ethernet (link type ${link.type})` });
    else {
      const arp = (link.flags & IFF_BROADCAST) !== 0;
      const ndp = link.linkLocal !== undefined;
      if (arp || ndp) usable.push({ name: link.name, index: link.index, mac: link.mac, arp, ndp, linkLocal: link.linkLocal });
      else skipped.push({ name: link.name, why: 'neither BROADCAST nor an IPv6 link-local address' });
    }
  }
  return { names, usable, skipped };
}

/**
 * /proc/net/if_inet6 lines: address (32 hex digits), ifindex, prefix length, scope, flags, name (all hex but the
 * name). Returns the first link-local address of each interface name.
 */
export function parseIfInet6(text: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !/^[0-9a-f]{32}$/i.test(f[0]!)) continue;
    const addr = Buffer.from(f[0]!, 'hex');
    const isLinkLocal = addr[0] === 0xfe && (addr[1]! & 0xc0) === 0x80;
    if (isLinkLocal && !out.has(f[5]!)) out.set(f[5]!, addr);
  }
  return out;
}

export interface LinkSource {
  /** Directory of interfaces (default /sys/class/net). */
  readonly sysClassNet?: string;
  /** Default /proc/self/net/if_inet6. */
  readonly ifInet6?: string;
}

function readTrim(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Lists interfaces; one that vanishes while being read is left out (the next scan settles it). */
export function readLinks(source: LinkSource = {}): LinkInfo[] {
  const dir = source.sysClassNet ?? '/sys/class/net';
  let linkLocals: Map<string, Buffer>;
  try {
    linkLocals = parseIfInet6(readFileSync(source.ifInet6 ?? '/proc/self/net/if_inet6', 'utf8'));
  } catch {
    linkLocals = new Map(); // IPv6 disabled
  }
  const links: LinkInfo[] = [];
  for (const name of readdirSync(dir).sort()) {
    const base = join(dir, name);
    const index = Number(readTrim(join(base, 'ifindex')));
    const flags = Number(readTrim(join(base, 'flags'))); // "0x1003"
    const type = Number(readTrim(join(base, 'type')));
    if (!Number.isInteger(index) || !Number.isInteger(flags) || !Number.isInteger(type)) continue;
    const macText = readTrim(join(base, 'address'));
    links.push({
      name,
      index,
      flags,
      type,
      mac: macText ? parseMac(macText) : undefined,
      hasMaster: existsSync(join(base, 'master')),
      linkLocal: linkLocals.get(name),
    });
  }
  return links;
}
