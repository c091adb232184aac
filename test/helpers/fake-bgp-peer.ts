// A scriptable BGP peer for tests: a TCP server on loopback that our Session dials. It parses what the session
// sends with our own parser and sends whatever bytes the test wants back (valid messages or garbage).
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Capability, Message, NotificationMessage, OpenMessage } from '../../src/speaker/bgp/messages.js';
import { Parser } from '../../src/speaker/bgp/parser.js';
import { serializeKeepalive, serializeOpen } from '../../src/speaker/bgp/serializer.js';

export class FakeConnection {
  readonly received: Message[] = [];
  private waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  readonly closed: Promise<void>;
  parseError: Error | undefined;
  private readonly parser = new Parser();

  constructor(readonly socket: Socket) {
    this.parser.options.fourOctetAs = true;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.parser.parse(chunk, (m) => this.deliver(m));
      } catch (err) {
        this.parseError = err as Error;
      }
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  private deliver(m: Message): void {
    this.received.push(m);
    const i = this.waiters.findIndex((w) => w.pred(m));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
  }

  /** The next message (already received or to come) matching `pred` that no earlier call took. */
  next<T extends Message = Message>(pred: (m: Message) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    const taken = this.taken;
    const have = this.received.find((m) => !taken.has(m) && pred(m));
    if (have) {
      taken.add(have);
      return Promise.resolve(have as T);
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${this.received.map((m) => m.type).join(', ')}`)), timeoutMs);
      this.waiters.push({
        pred: (m) => pred(m) && !taken.has(m),
        resolve: (m) => {
          clearTimeout(timer);
          taken.add(m);
          resolve(m as T);
        },
      });
    });
  }

  private readonly taken = new Set<Message>();

  nextOfType<K extends Message['type']>(type: K, timeoutMs?: number): Promise<Extract<Message, { type: K }>> {
    return this.next((m) => m.type === type, timeoutMs) as Promise<Extract<Message, { type: K }>>;
  }

  /** Waits for the session's NOTIFICATION and for the connection to close. */
  async notification(timeoutMs = 10_000): Promise<NotificationMessage> {
    const n = await this.nextOfType('notification', timeoutMs);
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, timeoutMs))]);
    return n;
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Receives the session's OPEN, answers with ours and a KEEPALIVE, waits for the session's KEEPALIVE. */
  async handshake(open: Partial<Omit<OpenMessage, 'type'>> = {}): Promise<OpenMessage> {
    const theirs = await this.nextOfType('open');
    this.send(serializeOpen({
      version: 4, myAutonomousSystem: 64500, holdTime: 90, bgpIdentifier: '192.0.2.254',
      capabilities: DEFAULT_CAPS, ...open,
    }));
    this.send(serializeKeepalive());
    await this.nextOfType('keepalive');
    return theirs;
  }

  close(): void {
    this.socket.destroy();
  }
}

export const DEFAULT_CAPS: Capability[] = [
  { kind: 'multiprotocol', afi: 1, safi: 1 },
  { kind: 'multiprotocol', afi: 2, safi: 1 },
  { kind: 'route-refresh' },
  { kind: 'four-octet-as', asn: 64500 },
];

export class FakePeer {
  private readonly pending: FakeConnection[] = [];
  private readonly waiting: ((c: FakeConnection) => void)[] = [];
  readonly connections: FakeConnection[] = [];

  private constructor(private readonly server: Server) {
    server.on('connection', (socket) => {
      socket.setNoDelay(true);
      const c = new FakeConnection(socket);
      this.connections.push(c);
      const w = this.waiting.shift();
      if (w) w(c);
      else this.pending.push(c);
    });
  }

  /** `port` 0 = any; a BGPPeer's peerPort must be ≤ 16384 (the CRD's bound), so `lowPort` picks a free one below it. */
  static async listen(host = '127.0.0.1', port: number | 'lowPort' = 0): Promise<FakePeer> {
    for (let attempt = 0; ; attempt++) {
      const server = createServer();
      const p = port === 'lowPort' ? 10_000 + Math.floor(Math.random() * 6000) : port;
      server.listen(p, host);
      try {
        await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => Promise.reject(e as Error))]);
        return new FakePeer(server);
      } catch (err) {
        server.close();
        if (port !== 'lowPort' || attempt > 50) throw err;
      }
    }
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The next connection the session opens. */
  accept(timeoutMs = 10_000): Promise<FakeConnection> {
    const have = this.pending.shift();
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
