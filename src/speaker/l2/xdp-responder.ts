// The in-kernel fast path of the ARP and NDP responders: on one interface, an XDP program (xdp-program.ts)
// generated from the addresses announced there answers their requests and solicitations before any socket sees
// them, so an answer costs no process wake-up. Attached through a BPF link: a new address set is a new program swapped in atomically
// (BPF_LINK_UPDATE), and closing the link's fd, which the kernel also does when the process dies, detaches it, so
// a dead speaker stops answering as its sockets do. The program counts its answers per address in an array map,
// folded into the announcer's counters when they are read and when the program is replaced.
//
// Frames XDP answers never reach a packet socket (XDP runs before the taps), so the userspace responders cannot
// answer them twice; they are also told which addresses XDP answers and leave them out of their filters.
import { existsSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { encode } from '../../net/ebpf.js';
import {
  attachXdpLink, BpfAttachType, BpfError, BpfProgType, closeBpfFd, createArrayMap, loadProgram, lookupArrayElem, updateLink, XdpFlags,
} from '../../net/bpf-syscall.js';
import type { AnnouncedIp } from './announced.js';
import { MAX_XDP_ADDRESSES, xdpResponderProgram } from './xdp-program.js';

/** `--l2-xdp`: answer ARP and NDP from XDP where the kernel and our capabilities allow (auto), or never (off). */
export type XdpSetting = 'auto' | 'off';

export function parseXdpSetting(text: string | undefined, source: string): XdpSetting {
  const v = (text ?? 'auto').trim().toLowerCase();
  if (v === 'auto' || v === 'off') return v;
  throw new Error(`${source}: "${text}" is not auto or off`);
}

/** Why XDP cannot be used at all on this node (every interface falls back to the userspace responder). */
export class XdpUnavailableError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
    this.name = 'XdpUnavailableError';
  }
}

interface Generation {
  readonly prog: number;
  readonly map: number;
  /** The address answered at each counter index. */
  readonly slots: readonly AnnouncedIp[];
  /** The count at each index when last folded into the address's counters. */
  readonly folded: bigint[];
}

const LE = endianness() === 'LE';

/** How an XDP program is attached to an interface: driver mode for a device with a driver, else generic (skb). */
export function xdpModesFor(ifname: string, sysClassNet = '/sys/class/net'): number[] {
  // A virtual device (veth, VLAN, bond, macvlan) has no `device` link. veth has a driver-mode XDP whose XDP_TX
  // needs NAPI on the peer (an XDP program or GRO there), which a speaker cannot arrange: those get generic mode,
  // which works on any device. A NIC driver without XDP support refuses driver mode: generic then.
  return existsSync(join(sysClassNet, ifname, 'device')) ? [XdpFlags.drvMode, XdpFlags.skbMode] : [XdpFlags.skbMode];
}

export class XdpResponder {
  private link: number | undefined;
  private current: Generation | undefined;
  /** The attach mode that worked (XdpFlags), for logs. */
  mode: 'driver' | 'generic' | undefined;
  private readonly value = Buffer.alloc(8);

  constructor(
    readonly name: string,
    readonly index: number,
    readonly mac: Buffer,
    private readonly modes: readonly number[],
  ) {}

  /** The addresses XDP answers now, both families (the userspace responders leave them to it). */
  answered(): readonly AnnouncedIp[] {
    return this.link === undefined ? [] : (this.current?.slots ?? []);
  }

  /**
   * Answers for `addresses` (at most MAX_XDP_ADDRESSES; the rest is returned, for userspace) from now on; none
   * detaches the program (generic XDP costs every received frame a little). Throws a BpfError as the kernel does:
   * XdpUnavailableError when it is no use trying on any interface.
   */
  update(addresses: readonly AnnouncedIp[]): readonly AnnouncedIp[] {
    const slots = addresses.slice(0, MAX_XDP_ADDRESSES);
    const rest = addresses.slice(MAX_XDP_ADDRESSES);
    if (this.current && sameSlots(this.current.slots, slots)) return rest;
    if (slots.length === 0) {
      this.detach();
      return rest;
    }
    const next = this.generate(slots);
    const previous = this.current;
    try {
      if (this.link === undefined) this.link = this.attach(next.prog);
      else updateLink(this.link, next.prog);
    } catch (err) {
      release(next);
      throw classify(err);
    }
    this.current = next;
    if (previous) {
      // The old program no longer runs: what it counted since the last read is final.
      this.fold(previous);
      release(previous);
    }
    return rest;
  }

  /** Adds what the program answered since the last call to each address's counters. */
  syncCounters(): void {
    if (this.current) this.fold(this.current);
  }

  /** Detaches the program (the kernel answers nothing more for us on this interface). */
  detach(): void {
    if (this.link !== undefined) {
      closeBpfFd(this.link);
      this.link = undefined;
      this.mode = undefined;
    }
    if (this.current) {
      this.fold(this.current);
      release(this.current);
      this.current = undefined;
    }
  }

  private generate(slots: readonly AnnouncedIp[]): Generation {
    // Nothing here depends on the interface: a kernel that refuses the map or the program refuses it everywhere.
    let map: number;
    try {
      map = createArrayMap('metallb_l2_arp', 8, slots.length);
    } catch (err) {
      throw unavailable(err);
    }
    try {
      const insns = encode(xdpResponderProgram({ mac: this.mac, addresses: slots.map((ip) => ip.bytes), counterMapFd: map }));
      const prog = loadProgram({ type: BpfProgType.xdp, name: 'metallb_l2_arp', expectedAttachType: BpfAttachType.xdp, insns });
      return { prog, map, slots, folded: slots.map(() => 0n) };
    } catch (err) {
      closeBpfFd(map);
      throw unavailable(err);
    }
  }

  private attach(prog: number): number {
    let last: unknown;
    for (const flags of this.modes) {
      try {
        const link = attachXdpLink(prog, this.index, flags);
        this.mode = flags === XdpFlags.drvMode ? 'driver' : 'generic';
        return link;
      } catch (err) {
        last = err;
        if ((err as BpfError).code === 'EPERM') break;
      }
    }
    throw last;
  }

  private fold(g: Generation): void {
    g.slots.forEach((ip, i) => {
      let count: bigint;
      try {
        lookupArrayElem(g.map, i, this.value);
        count = LE ? this.value.readBigUInt64LE(0) : this.value.readBigUInt64BE(0);
      } catch {
        return;
      }
      const delta = Number(count - g.folded[i]!);
      if (delta <= 0) return;
      g.folded[i] = count;
      ip.counters.requestsReceived += delta;
      ip.counters.responsesSent += delta;
    });
  }
}

function release(g: Generation): void {
  closeBpfFd(g.prog);
  closeBpfFd(g.map);
}

function sameSlots(a: readonly AnnouncedIp[], b: readonly AnnouncedIp[]): boolean {
  return a.length === b.length && a.every((ip, i) => ip === b[i]);
}

/** An attach error: only a missing permission is everyone's; EBUSY (another XDP program), ENODEV... are this interface's. */
function classify(err: unknown): Error {
  if ((err as BpfError).code === 'EPERM') return unavailable(err);
  return err instanceof Error ? err : new Error(String(err));
}

function unavailable(err: unknown): XdpUnavailableError {
  const code = (err as BpfError).code;
  const why =
    code === 'EPERM'
      ? 'no permission to load and attach XDP programs (needs CAP_BPF and CAP_NET_ADMIN, or CAP_SYS_ADMIN)'
      : code === 'ENOSYS'
        ? 'no bpf(2) in this kernel or in the native addon'
        : 'the kernel refused the XDP program or its counter map';
  return new XdpUnavailableError(`${why}: ${(err as Error).message}`, code);
}
