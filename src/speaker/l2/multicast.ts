// IPv6 multicast memberships for the solicited-node groups of announced addresses (RFC 4861 §7.2.1). Joining
// through the kernel's IPv6 stack (IPV6_JOIN_GROUP via a dgram socket, scoped with `::%ifname`) both opens the
// NIC's multicast filter and makes the node answer MLD queries, so switches with MLD snooping forward the
// solicitations to it (what MetalLB does through its ICMPv6 socket). Ref-counted: two addresses can share a group.
import dgram from 'node:dgram';

export interface MembershipSocket {
  addMembership(group: string, iface: string): void;
  dropMembership(group: string, iface: string): void;
  close(): void;
}

/** The kernel bounds the memberships of one socket (optmem_max: ~2300 by default); more sockets lift that. */
const FULL = new Set(['ENOMEM', 'ENOBUFS']);

function openDgram(): MembershipSocket {
  const s = dgram.createSocket({ type: 'udp6' });
  s.on('error', () => undefined);
  s.unref();
  // Not bound yet: libuv binds it to [::]:0 at the first membership.
  return s;
}

export class MulticastMemberships {
  private readonly refs = new Map<string, { socket: MembershipSocket; count: number }>();
  private readonly sockets: MembershipSocket[] = [];

  constructor(private readonly open: () => MembershipSocket = openDgram) {}

  /** Joins `group` on `ifname` unless already joined there; throws with the kernel's reason if it cannot. */
  join(group: string, ifname: string): void {
    const key = `${group}%${ifname}`;
    const held = this.refs.get(key);
    if (held) {
      held.count++;
      return;
    }
    const scope = `::%${ifname}`;
    for (let i = 0; ; i++) {
      if (i === this.sockets.length) this.sockets.push(this.open());
      const socket = this.sockets[i]!;
      try {
        socket.addMembership(group, scope);
        this.refs.set(key, { socket, count: 1 });
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!FULL.has(code)) throw new Error(`joining ${group} on ${ifname}: ${(err as Error).message}`);
      }
    }
  }

  /** Drops one reference; leaves the group at the last. An interface already gone has left it by itself. */
  leave(group: string, ifname: string): void {
    const key = `${group}%${ifname}`;
    const held = this.refs.get(key);
    if (!held) return;
    if (--held.count > 0) return;
    this.refs.delete(key);
    try {
      held.socket.dropMembership(group, `::%${ifname}`);
    } catch {
      // The interface went away (the kernel dropped the membership with it) or was renamed.
    }
  }

  /** Forgets every membership on an interface, leaving them where the interface still exists. */
  leaveAll(ifname: string): void {
    for (const [key, held] of [...this.refs]) {
      if (!key.endsWith(`%${ifname}`)) continue;
      held.count = 1;
      this.leave(key.slice(0, key.length - ifname.length - 1), ifname);
    }
  }

  joined(ifname: string): string[] {
    return [...this.refs.keys()].filter((k) => k.endsWith(`%${ifname}`)).map((k) => k.slice(0, k.length - ifname.length - 1));
  }

  close(): void {
    for (const s of this.sockets) s.close();
    this.sockets.length = 0;
    this.refs.clear();
  }
}
