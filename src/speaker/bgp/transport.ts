// Opening the TCP connection to a peer: plain `net` sockets, or through the native addon when the kernel must know
// something before the SYN leaves (a TCP-MD5 key, RFC 2385).
import { connect, type Socket } from 'node:net';
import { connectWithMd5 } from '../../net/tcp-md5.js';

export interface ConnectRequest {
  peerAddress: string;
  peerPort: number;
  /** Local address to bind (BGPPeer sourceAddress); must exist on the node. */
  sourceAddress?: string;
  /** TCP-MD5 key (BGPPeer password / passwordSecret). */
  password?: string;
  /** VRF device to bind the socket to (SO_BINDTODEVICE). */
  vrf?: string;
}

/** Opens a connected socket, or rejects with an Error saying why; aborting destroys a pending attempt. */
export type Connector = (req: ConnectRequest, signal: AbortSignal) => Promise<Socket>;

export class TransportError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = 'TransportError';
  }
}

/** A plain `net` connection, or a TCP-MD5 one through the native addon when the peer has a password. */
export const defaultConnector: Connector = async (req, signal) => {
  if (!req.password) return plainConnector(req, signal);
  if (req.vrf) throw new TransportError(`binding to VRF ${JSON.stringify(req.vrf)} is not supported on this node`, 'ENOTSUP');
  try {
    const socket = await connectWithMd5({
      host: req.peerAddress,
      port: req.peerPort,
      password: req.password,
      ...(req.sourceAddress ? { localAddress: req.sourceAddress } : {}),
      // The session's own connect timer bounds the attempt.
      timeoutMs: 60_000,
      signal,
    });
    socket.setNoDelay(true);
    return socket;
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new TransportError(`connect to ${req.peerAddress}:${req.peerPort} with TCP-MD5: ${e.message}`, e.code);
  }
};

export const plainConnector: Connector = (req, signal) =>
  new Promise<Socket>((resolve, reject) => {
    if (req.password) {
      reject(new TransportError('a TCP-MD5 password needs the native addon, which this connector does not use', 'ENOTSUP'));
      return;
    }
    if (req.vrf) {
      reject(new TransportError(`binding to VRF ${JSON.stringify(req.vrf)} is not supported here`, 'ENOTSUP'));
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
