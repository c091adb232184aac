// TCP-MD5 signatures (RFC 2385) for BGP sessions with a password. Node cannot set TCP_MD5SIG before connect(), so
// the addon creates the socket, sets the key, connects without blocking and hands the connected fd to net.Socket;
// for the passive side the key is set on a listening socket before peers connect.
import { closeSync, readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP, Socket, type Server } from 'node:net';
import ipaddr from 'ipaddr.js';
import { errnoCode, loadNative } from './native.js';

/** RFC 2385 keys are at most 80 bytes (TCP_MD5SIG_MAXKEYLEN). */
export const MAX_MD5_KEY_BYTES = 80;

export interface Md5ConnectOptions {
  /** Peer address (IPv4, IPv6, IPv6 with %zone) or a name resolved with the system resolver. */
  readonly host: string;
  readonly port: number;
  /** The shared secret; a string is taken as UTF-8. */
  readonly password: string | Buffer;
  /** Bind the socket to this device before connecting (SO_BINDTODEVICE; a VRF master device). */
  readonly device?: string;
  readonly localAddress?: string;
  readonly localPort?: number;
  /** TTL / hop limit (1..255) of every segment, the SYN included; default the system's (64). */
  readonly ttl?: number;
  /** Default 10 s (MetalLB's native BGP connect timeout). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export class TcpMd5Error extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'TcpMd5Error';
  }
}

interface ResolvedAddress {
  readonly family: 4 | 6;
  readonly bytes: Buffer;
  readonly scopeId: number;
  readonly text: string;
}

/** Connects to host:port with the TCP MD5 option on every segment; resolves to a connected net.Socket. */
export async function connectWithMd5(options: Md5ConnectOptions): Promise<Socket> {
  md5Key(options.password);
  return connectNative(options);
}

/** connectWithMd5's options with the password optional: what the kernel must know before the SYN leaves. */
export type NativeConnectOptions = Omit<Md5ConnectOptions, 'password'> & { readonly password?: string | Buffer };

/**
 * Connects through the addon: with a TCP-MD5 key when `password` is given, bound to `device` when given (a VRF);
 * resolves to a connected net.Socket.
 */
export async function connectNative(options: NativeConnectOptions): Promise<Socket> {
  const key = options.password === undefined || options.password.length === 0 ? Buffer.alloc(0) : md5Key(options.password);
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new TcpMd5Error(`port must be 1..65535, got ${String(options.port)}`, 'ERR_INVALID_ARG_VALUE');
  }
  const peer = await resolve(options.host);
  const local = options.localAddress === undefined ? undefined : parseAddress(options.localAddress, 'localAddress');
  if (local && local.family !== peer.family) {
    throw new TcpMd5Error(`localAddress ${options.localAddress} is not of the family of ${peer.text}`, 'ERR_INVALID_ARG_VALUE');
  }
  if (options.ttl !== undefined && (!Number.isInteger(options.ttl) || options.ttl < 1 || options.ttl > 255)) {
    throw new TcpMd5Error(`ttl must be 1..255, got ${String(options.ttl)}`, 'ERR_INVALID_ARG_VALUE');
  }
  const native = loadNative();
  if (options.device !== undefined) requireBindToDevice(native);
  if (options.ttl !== undefined && !hopLimitSupported(native)) {
    throw new TcpMd5Error('the native addon predates BGP TTLs (no setHopLimit): rebuild it with `npm run build:native`', 'ENOTSUP');
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  options.signal?.throwIfAborted();
  return new Promise<Socket>((resolvePromise, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let cancelReason: 'timeout' | 'abort' | undefined;
    const onAbort = (): void => {
      cancelReason = 'abort';
      native.tcpMd5Cancel(id);
    };
    const id = (() => {
      try {
        return native.tcpMd5Connect(
          peer.family,
          peer.bytes,
          options.port,
          key,
          local?.bytes ?? null,
          options.localPort ?? 0,
          peer.scopeId,
          (errCode, fd, message) => {
            done = true;
            clearTimeout(timer);
            options.signal?.removeEventListener('abort', onAbort);
            const where = `${peer.family === 6 ? `[${peer.text}]` : peer.text}:${options.port}`;
            if (errCode !== null) {
              if (cancelReason === 'timeout') reject(new TcpMd5Error(`connecting to ${where}: timed out after ${timeoutMs} ms`, 'ETIMEDOUT'));
              else if (cancelReason === 'abort') reject(new TcpMd5Error(`connecting to ${where}: aborted`, 'ABORT_ERR'));
              else reject(new TcpMd5Error(`connecting to ${where}${key.length > 0 ? ' with TCP-MD5' : ''}: ${message ?? errCode}`, errCode));
              return;
            }
            try {
              resolvePromise(new Socket({ fd, readable: true, writable: true }));
            } catch (err) {
              closeSync(fd);
              reject(err);
            }
          },
          options.device ?? null,
          options.ttl ?? null,
        );
      } catch (err) {
        const how = key.length > 0 ? ' with TCP-MD5' : '';
        const dev = options.device !== undefined ? ` bound to ${options.device}` : '';
        throw new TcpMd5Error(`connecting to ${peer.text}:${options.port}${how}${dev}: ${(err as Error).message}`, errnoCode(err));
      }
    })();
    if (done) return;
    timer = setTimeout(() => {
      cancelReason = 'timeout';
      native.tcpMd5Cancel(id);
    }, timeoutMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Sets (or with an empty password removes) the MD5 key for a peer on a socket: on a listening net.Server, inbound
 * connections from that peer (or, with prefixLength, that prefix) must then be signed. A v4 peer on an IPv6
 * (dual-stack) listener is keyed by its v4-mapped address, which is how such connections arrive.
 */
export function setMd5Key(target: Server | Socket | number, peerAddress: string, password: string | Buffer, prefixLength?: number): void {
  const fd = typeof target === 'number' ? target : socketFd(target);
  if (fd === undefined || fd < 0) {
    throw new TcpMd5Error('setMd5Key needs a listening server or an open socket (no file descriptor yet)', 'ERR_INVALID_ARG_VALUE');
  }
  const key = password.length === 0 ? Buffer.alloc(0) : md5Key(password);
  let peer = parseAddress(peerAddress, 'peer');
  let prefix = prefixLength ?? -1;
  const localFamily = typeof target === 'number' ? undefined : socketFamily(target);
  if (localFamily === 'IPv6' && peer.family === 4) {
    const mapped = ipaddr.IPv4.parse(peer.text).toIPv4MappedAddress();
    peer = { family: 6, bytes: Buffer.from(mapped.toByteArray()), scopeId: 0, text: mapped.toString() };
    if (prefix >= 0) prefix += 96;
  }
  if (prefix > (peer.family === 4 ? 32 : 128)) {
    throw new TcpMd5Error(`prefixLength ${prefixLength} is longer than an IPv${peer.family} address`, 'ERR_INVALID_ARG_VALUE');
  }
  try {
    loadNative().tcpMd5SetKey(fd, peer.family, peer.bytes, prefix, key);
  } catch (err) {
    throw new TcpMd5Error(`setting the TCP-MD5 key for ${peerAddress}: ${(err as Error).message}`, errnoCode(err));
  }
}

/** The file descriptor under a net.Server, net.Socket or dgram.Socket (undefined before it is bound or listening). */
export function socketFd(target: object): number | undefined {
  const fd = (target as { _handle?: { fd?: number } })._handle?.fd;
  return fd === undefined || fd < 0 ? undefined : fd;
}

function requireBindToDevice(native: ReturnType<typeof loadNative>): asserts native is ReturnType<typeof loadNative> & { bindToDevice(fd: number, ifname: string): void } {
  if (typeof native.bindToDevice !== 'function') {
    throw new TcpMd5Error('the native addon predates VRF support (no bindToDevice): rebuild it with `npm run build:native`', 'ENOTSUP');
  }
}

/**
 * SO_BINDTODEVICE on a socket Node opened (a bound dgram socket, a listening server, or a raw fd): it then sends
 * and receives through `device` only; for a VRF master device, inside that VRF.
 */
export function bindToDevice(target: object | number, device: string): void {
  const fd = typeof target === 'number' ? target : socketFd(target);
  if (fd === undefined) throw new TcpMd5Error('bindToDevice needs a bound socket (no file descriptor yet)', 'ERR_INVALID_ARG_VALUE');
  const native = loadNative();
  requireBindToDevice(native);
  try {
    native.bindToDevice(fd, device);
  } catch (err) {
    throw new TcpMd5Error(`binding a socket to ${device}: ${(err as Error).message}`, errnoCode(err));
  }
}

/** True when the addon can set a socket's TTL / hop limit (and tcpMd5Connect takes `ttl`). */
export function hopLimitSupported(native: ReturnType<typeof loadNative> = loadNative()): boolean {
  return typeof native.setHopLimit === 'function';
}

function socketFamily(target: Server | Socket): string | undefined {
  const addr = target.address();
  return typeof addr === 'object' && addr !== null && 'family' in addr ? String(addr.family) : undefined;
}

function md5Key(password: string | Buffer): Buffer {
  const key = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  if (key.length === 0 || key.length > MAX_MD5_KEY_BYTES) {
    throw new TcpMd5Error(`a TCP-MD5 password is 1 to ${MAX_MD5_KEY_BYTES} bytes, this one is ${key.length}`, 'ERR_INVALID_ARG_VALUE');
  }
  return key;
}

async function resolve(host: string): Promise<ResolvedAddress> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(bare.split('%')[0] ?? '') !== 0) return parseAddress(bare, 'host');
  try {
    const found = await lookup(bare, { verbatim: true });
    return parseAddress(found.address, 'host');
  } catch (err) {
    throw new TcpMd5Error(`cannot resolve ${host}: ${(err as Error).message}`, errnoCode(err));
  }
}

function parseAddress(text: string, what: string): ResolvedAddress {
  const [addr = '', zone] = text.split('%', 2);
  const family = isIP(addr);
  if (family === 0) throw new TcpMd5Error(`${what} ${text} is not an IP address`, 'ERR_INVALID_ARG_VALUE');
  if (family === 4) return { family: 4, bytes: Buffer.from(ipaddr.IPv4.parse(addr).toByteArray()), scopeId: 0, text: addr };
  return { family: 6, bytes: Buffer.from(ipaddr.IPv6.parse(addr).toByteArray()), scopeId: zone ? scopeIdOf(zone) : 0, text: addr };
}

function scopeIdOf(zone: string): number {
  if (/^\d+$/.test(zone)) return Number(zone);
  if (!/^[\w.:-]{1,15}$/.test(zone)) throw new TcpMd5Error(`bad IPv6 zone ${zone}`, 'ERR_INVALID_ARG_VALUE');
  try {
    return Number(readFileSync(`/sys/class/net/${zone}/ifindex`, 'utf8').trim());
  } catch {
    throw new TcpMd5Error(`no interface ${zone} for the IPv6 zone`, 'ENODEV');
  }
}
