// Opening the TCP connection to a peer: plain `net` sockets, or through the native addon when the kernel must know
// something before the SYN leaves (a TCP-MD5 key, RFC 2385).
import { connect, type Socket } from 'node:net';

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
