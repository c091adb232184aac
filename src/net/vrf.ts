// Linux VRFs as a BGPPeer's `vrf` names them: a VRF master device (`ip link add vrf-red type vrf table 10`) whose
// enslaved interfaces carry the VRF's addresses. Sockets bound to the master device (SO_BINDTODEVICE) route with
// the VRF's table and take their source address from its interfaces. Read from sysfs, so it needs no iproute2 in
// the image; the check that a device is a VRF master uses the flags the vrf driver gives it (IFF_MASTER | IFF_NOARP;
// a bond is a master too, but does ARP).
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { basename, join } from 'node:path';

type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

export interface Vrf {
  /** The BGPPeer's `vrf`. */
  readonly name: string;
  /** The device sockets are bound to (the VRF master device; its name is the VRF's name). */
  readonly device: string;
  /** Interfaces enslaved to the VRF: its addresses are the session's source addresses and next hops. */
  readonly interfaces: readonly string[];
}

/** Finds a VRF on this node, or throws VrfError saying why it cannot be used. */
export type VrfResolver = (name: string) => Vrf;

export class VrfError extends Error {
  constructor(message: string, readonly code: 'ENODEV' | 'ENOTVRF' | 'EINVAL') {
    super(message);
    this.name = 'VrfError';
  }
}

const IFF_NOARP = 0x80;
const IFF_MASTER = 0x400;
const IFNAME = /^[^\s/:]{1,15}$/;

/** The kernel's VRFs, from /sys/class/net (another root for tests). */
export function kernelVrfs(sysfs = '/sys/class/net'): VrfResolver {
  return (name) => {
    if (!IFNAME.test(name) || name === '.' || name === '..') {
      throw new VrfError(`VRF ${JSON.stringify(name)} is not a network device name (1 to 15 characters, no spaces, '/' or ':')`, 'EINVAL');
    }
    let flags: number;
    try {
      flags = Number(readFileSync(join(sysfs, name, 'flags'), 'utf8').trim());
    } catch {
      throw new VrfError(`VRF ${JSON.stringify(name)} does not exist on this node (no network device ${name}; ` +
        `create it with \`ip link add ${name} type vrf table N\` and enslave the peer's interface)`, 'ENODEV');
    }
    if ((flags & (IFF_MASTER | IFF_NOARP)) !== (IFF_MASTER | IFF_NOARP)) {
      throw new VrfError(`VRF ${JSON.stringify(name)}: the network device ${name} is not a VRF master device`, 'ENOTVRF');
    }
    const interfaces: string[] = [];
    for (const dev of readdirSync(sysfs)) {
      try {
        if (basename(readlinkSync(join(sysfs, dev, 'master'))) === name) interfaces.push(dev);
      } catch {
        // no master
      }
    }
    return { name, device: name, interfaces: interfaces.sort() };
  };
}

/** The addresses of the VRF's interfaces (and of the master device itself), in the shape os.networkInterfaces() has. */
export function vrfInterfaceTable(vrf: Vrf, all: InterfaceTable = networkInterfaces()): InterfaceTable {
  const out: InterfaceTable = {};
  for (const dev of [vrf.device, ...vrf.interfaces]) if (all[dev]) out[dev] = all[dev];
  return out;
}

/** The kernel's VRF devices, looked up in sysfs at each call. */
export const defaultVrfs: VrfResolver = kernelVrfs();
