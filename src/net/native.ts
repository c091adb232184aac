// Loads the N-API addon built from native/ (AF_PACKET sockets, TCP-MD5). Everything that needs it goes through
// here, so a machine without it gets one clear error naming what is missing instead of a stack trace from dlopen.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inBundle } from '../bundle.js';

/** The addon's functions, as native/metallb_native.c exports them. Prefer the wrappers in packet-socket.ts and tcp-md5.ts. */
export interface NativeBinding {
  readonly abiVersion: number;
  /** Called once per received frame: captured length (<= rx.length), packet type (PACKET_HOST...), length on the wire. A negative length is -errno. */
  packetOpen(
    ifname: string,
    protocol: number,
    filter: Buffer | null,
    rx: Buffer,
    onFrame: (length: number, pktType: number, wireLength: number) => void,
    receiveBufferBytes: number,
  ): { id: number; ifindex: number };
  packetSend(id: number, buf: Buffer, offset: number, length: number): void;
  packetSendBatch(id: number, buf: Buffer, stride: number, count: number): number;
  packetMembership(id: number, add: boolean, mac: Buffer): void;
  packetStats(id: number): { packets: number; drops: number };
  packetRef(id: number, ref: boolean): void;
  /** Latency tracing: per frame, ns from the kernel's receive to [0] read, [1] send() called, [2] returned (-1: none). */
  packetTimestamps?(id: number, timing: Float64Array | null): void;
  /** Replaces the socket's BPF filter (absent from addons built before it: see PacketSocket.setFilter). */
  packetSetFilter?(id: number, filter: Buffer): void;
  packetClose(id: number): void;
  tcpMd5Connect(
    family: 4 | 6,
    peer: Buffer,
    port: number,
    key: Buffer,
    local: Buffer | null,
    localPort: number,
    scopeId: number,
    callback: (errCode: string | null, fd: number, message: string | null) => void,
    device?: string | null,
    /** TTL / hop limit of every segment, the SYN included; only when `setHopLimit` exists (older addons ignore it). */
    ttl?: number | null,
  ): number;
  tcpMd5Cancel(id: number): void;
  tcpMd5SetKey(fd: number, family: 4 | 6, peer: Buffer, prefixLength: number, key: Buffer): void;
  /** SO_BINDTODEVICE; absent from addons built before VRF support (tcp-md5.ts says so clearly). */
  bindToDevice?(fd: number, ifname: string): void;
  /**
   * The bpf(2) syscall on `attr` (union bpf_attr); each [offset, buffer] stores the buffer's address (null: 0) at
   * that offset first. Returns the result (a new fd, or 0); throws with `code` = the errno name. Absent from addons
   * built before it (bpf-syscall.ts says so).
   */
  bpf?(cmd: number, attr: Buffer, pointers?: readonly (readonly [number, Buffer | null])[]): number;
  /** IP_TTL (and IPV6_UNICAST_HOPS on IPv6 sockets); absent from addons built before BGP TTLs (then no `ttl` either). */
  setHopLimit?(fd: number, hops: number): void;
  /** SO_ATTACH_FILTER on any socket (a UDP listener); absent from addons built before BFD's TTL checks. */
  /** Returns how many queued datagrams `drain` discarded (undefined: an addon built before `drain`). */
  attachFilter?(fd: number, filter: Buffer, drain?: boolean): number | undefined;
  /**
   * Calls `callback` on THIS thread's event loop when the process gets signal `signum` (libuv hands a signal to every
   * loop watching it; Node's process.on delivers signals on the main thread only). Does not keep the loop alive.
   * Returns an id for signalUnwatch. Absent from addons built before the gossip thread's own leave on SIGTERM.
   */
  signalWatch?(signum: number, callback: (signum: number) => void): number;
  signalUnwatch?(id: number): void;
  /**
   * Ends the whole process at once with `status` (0..255), from any thread: _exit(2), so no exit handlers and no
   * asynchronous writes; write what must be said synchronously first. Absent from addons built before it.
   */
  exitProcess?(status: number): never;
}

/** The addon cannot be used here; `reason` says why in words an operator can act on. */
export class NativeUnavailableError extends Error {
  constructor(
    readonly reason: 'platform' | 'not-built' | 'load-failed' | 'abi',
    message: string,
  ) {
    super(message);
    this.name = 'NativeUnavailableError';
  }
}

export const ADDON_FILE = 'metallb_native.node';
const EXPECTED_ABI = 1;

/** Where the addon is looked for: METALLB_NATIVE_ADDON, else native/build/Release/ of the checkout or image. */
export function addonCandidates(): string[] {
  const override = process.env['METALLB_NATIVE_ADDON'];
  if (override) return [resolve(override)];
  // src/net/ in a checkout, dist/src/net/ in the image: the package root is two or three levels up; the bundle
  // (node_modules/.cache/metallb-ts/cli-<hash>/, bin/bundle.mjs) is four levels below it.
  const here = dirname(fileURLToPath(import.meta.url));
  const roots = inBundle ? [join(here, '..', '..', '..', '..')] : [join(here, '..', '..'), join(here, '..', '..', '..')];
  return roots.map((root) => join(root, 'native', 'build', 'Release', ADDON_FILE));
}

let cached: NativeBinding | NativeUnavailableError | undefined;

/** The addon, loaded once; throws NativeUnavailableError when it cannot be used on this machine. */
export function loadNative(): NativeBinding {
  cached ??= tryLoad();
  if (cached instanceof NativeUnavailableError) throw cached;
  return cached;
}

/** True when the addon loads (does not say whether this process may open raw sockets). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

function tryLoad(): NativeBinding | NativeUnavailableError {
  if (process.platform !== 'linux') {
    return new NativeUnavailableError(
      'platform',
      `the native addon (AF_PACKET sockets, TCP-MD5) needs Linux; this is ${process.platform}: layer 2 announcements and BGP passwords are unavailable`,
    );
  }
  const candidates = addonCandidates();
  const file = candidates.find((f) => existsSync(f));
  if (!file) {
    return new NativeUnavailableError(
      'not-built',
      `the native addon is not built (looked for ${candidates.join(', ')}): run \`npm run build:native\` ` +
        '(npm install/ci does it; it needs python3, make and a C compiler)',
    );
  }
  let binding: NativeBinding;
  try {
    binding = createRequire(import.meta.url)(file) as NativeBinding;
  } catch (err) {
    return new NativeUnavailableError(
      'load-failed',
      `the native addon ${file} does not load (${(err as Error).message}); rebuild it with \`npm run build:native\``,
    );
  }
  if (binding.abiVersion !== EXPECTED_ABI) {
    return new NativeUnavailableError(
      'abi',
      `the native addon ${file} is version ${String(binding.abiVersion)}, this code needs ${EXPECTED_ABI}; rebuild it with \`npm run build:native\``,
    );
  }
  return binding;
}

/** An error thrown by the addon carries the errno name as `code` (EPERM, ENODEV, ...). */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
