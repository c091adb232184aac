// Opening the TCP connection to a peer: plain `net` sockets, or through the native addon when the kernel must know
// something before the SYN leaves (a TCP-MD5 key, RFC 2385; the VRF device to route in).
import { connect, type Socket } from 'node:net';
import { connectNative } from '../../net/tcp-md5.js';

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
  if (!req.password && !req.device) return plainConnector(req, signal);
  const what = [req.password ? 'with TCP-MD5' : '', req.device ? `in VRF ${req.vrf ?? req.device}` : ''].filter(Boolean).join(' ');
  try {
    const socket = await connectNative({
      host: req.peerAddress,
      port: req.peerPort,
      ...(req.password ? { password: req.password } : {}),
      ...(req.device ? { device: req.device } : {}),
      ...(req.sourceAddress ? { localAddress: req.sourceAddress } : {}),
      // The session's own connect timer bounds the attempt.
      timeoutMs: 60_000,
      signal,
    });
    socket.setNoDelay(true);
    return socket;
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new TransportError(`connect to ${req.peerAddress}:${req.peerPort} ${what}: ${e.message}`, e.code);
  }
};

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
