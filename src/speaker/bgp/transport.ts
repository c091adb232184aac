// Opening the TCP connection to a peer: through the native addon, which can tell the kernel what it must know
// before the SYN leaves (the TTL, a TCP-MD5 key, RFC 2385; the VRF device to route in); plain `net` sockets when
// none of that is asked for, or the addon cannot set a TTL and nothing else needs it.
import { connect, type Socket } from 'node:net';
import { loadNative } from '../../net/native.js';
import { connectNative, hopLimitSupported } from '../../net/tcp-md5.js';

export interface ConnectRequest {
  peerAddress: string;
  peerPort: number;
  /** Local address to bind (BGPPeer sourceAddress); must exist on the node. */
  sourceAddress?: string;
  /** TCP-MD5 key (BGPPeer password / passwordSecret). */
  password?: string;
  /** The peer's VRF (for messages); `device` is what the socket is bound to. */
  vrf?: string;
  /** Device to bind the socket to before connecting (SO_BINDTODEVICE): the VRF's master device. */
  device?: string;
  /** TTL / hop limit of every segment (1: single-hop eBGP; 255: eBGP multihop, iBGP); default the system's. */
  ttl?: number;
}

/** Opens a connected socket, or rejects with an Error saying why; aborting destroys a pending attempt. */
export type Connector = (req: ConnectRequest, signal: AbortSignal) => Promise<Socket>;

export class TransportError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = 'TransportError';
  }
}

/**
 * A plain `net` connection, or one opened by the native addon when the kernel must know something before the SYN
 * leaves: a TCP-MD5 key, or the VRF device the socket is bound to.
 */
export const defaultConnector: Connector = async (req, signal) => {
  const ttl = req.ttl !== undefined && ttlUnsupportedReason() === undefined ? req.ttl : undefined;
  if (!req.password && !req.device && ttl === undefined) {
    const { ttl: _unsettable, ...plain } = req;
    return plainConnector(plain, signal);
  }
  const what = [req.password ? 'with TCP-MD5' : '', req.device ? `in VRF ${req.vrf ?? req.device}` : ''].filter(Boolean).join(' ');
  try {
    const socket = await connectNative({
      host: req.peerAddress,
      port: req.peerPort,
      ...(req.password ? { password: req.password } : {}),
      ...(req.device ? { device: req.device } : {}),
      ...(req.sourceAddress ? { localAddress: req.sourceAddress } : {}),
      ...(ttl !== undefined ? { ttl } : {}),
      // The session's own connect timer bounds the attempt.
      timeoutMs: 60_000,
      signal,
    });
    socket.setNoDelay(true);
    return socket;
  } catch (err) {
    const e = err as Error & { code?: string };
    // connectNative's errors already begin with where they were connecting to.
    let why = e.message.replace(/^connecting to \S+?( with TCP-MD5)?: /, '');
    // As Node's own connect errors do, so that a log search for ECONNREFUSED finds both paths.
    if (e.code && /^E[A-Z]+$/.test(e.code) && !why.includes(e.code)) why += ` (${e.code})`;
    throw new TransportError(`connect to ${req.peerAddress}:${req.peerPort}${what ? ` ${what}` : ''}: ${why}`, e.code);
  }
};

let ttlSupport: { reason: string | undefined } | undefined;

/**
 * Why defaultConnector cannot set a connection's TTL here (the addon is missing, or built before TTLs), or undefined
 * when it can. Without it, sessions fall back to the system's TTL (64) unless a password or VRF needs the addon anyway.
 */
export function ttlUnsupportedReason(): string | undefined {
  ttlSupport ??= (() => {
    try {
      return { reason: hopLimitSupported(loadNative()) ? undefined : 'the native addon predates BGP TTLs (no setHopLimit): rebuild it with `npm run build:native`' };
    } catch (err) {
      return { reason: (err as Error).message };
    }
  })();
  return ttlSupport.reason;
}

export const plainConnector: Connector = (req, signal) =>
  new Promise<Socket>((resolve, reject) => {
    if (req.password) {
      reject(new TransportError('a TCP-MD5 password needs the native addon, which this connector does not use', 'ENOTSUP'));
      return;
    }
    if (req.device) {
      reject(new TransportError(`VRF ${JSON.stringify(req.vrf ?? req.device)} needs the native addon (SO_BINDTODEVICE), which this connector does not use`, 'ENOTSUP'));
      return;
    }
    if (req.ttl !== undefined) {
      reject(new TransportError(`a TTL of ${req.ttl} needs the native addon, which this connector does not use`, 'ENOTSUP'));
      return;
    }
    const socket = connect({
      host: req.peerAddress,
      port: req.peerPort,
      ...(req.sourceAddress ? { localAddress: req.sourceAddress } : {}),
      noDelay: true,
    });
    const onAbort = (): void => {
      socket.destroy();
      reject(new TransportError('connection attempt cancelled', 'ECANCELED'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new TransportError(`connect to ${req.peerAddress}:${req.peerPort}${req.sourceAddress ? ` from ${req.sourceAddress}` : ''}: ${err.message}`, err.code));
    });
  });
