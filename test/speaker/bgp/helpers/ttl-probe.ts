// Run inside a namespace of its own by ttl.test.ts: listens on PORT (IPv4 and IPv6 loopback), then connects once per
// argument `ADDRESS/TTL` (TTL `-`: none asked for) through the BGP session's defaultConnector and sends a byte.
// Prints one JSON line per connection: the address and what happened.
import { createServer } from 'node:net';
import { defaultConnector } from '../../../../src/speaker/bgp/transport.js';

const port = Number(process.env['PROBE_PORT'] ?? 17900);
const servers = await Promise.all(['127.0.0.1', '::1'].map((host) => new Promise<ReturnType<typeof createServer>>((resolve) => {
  const s = createServer((c) => c.on('data', () => c.end()));
  s.listen(port, host, () => resolve(s));
})));
for (const arg of process.argv.slice(2)) {
  const [address = '', ttl = '-'] = arg.split('/');
  try {
    const socket = await defaultConnector({ peerAddress: address, peerPort: port, ...(ttl === '-' ? {} : { ttl: Number(ttl) }) }, new AbortController().signal);
    await new Promise<void>((resolve) => {
      socket.on('close', () => resolve());
      socket.end(Buffer.from([1]));
    });
    console.log(JSON.stringify({ address, ttl, ok: true }));
  } catch (err) {
    console.log(JSON.stringify({ address, ttl, ok: false, err: (err as Error).message }));
  }
}
for (const s of servers) s.close();
