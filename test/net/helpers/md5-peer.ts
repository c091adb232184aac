// A TCP-MD5 peer for tests, run inside a network namespace. Commands arrive as JSON lines on stdin, results leave as
// JSON lines on stdout:
//   {"listen": {"host", "port"}}                      -> {"event":"listening"}; connections are echoed ("echo:" + data)
//   {"key": {"peer", "password", "prefixLength"?}}    -> {"event":"keyed"} (on the listening socket)
//   {"connect": {"host", "port", "password", "timeoutMs", "localAddress"?}}
//                                                      -> {"event":"connected", ...} after an echo round trip, or {"event":"error", code, message}
import { createServer, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import { connectWithMd5, setMd5Key } from '../../../src/net/tcp-md5.js';

let server: Server | undefined;
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (err: unknown) => out({ event: 'error', code: (err as { code?: string }).code, message: (err as Error).message });

type Command = {
  listen?: { host: string; port: number };
  key?: { peer: string; password: string; prefixLength?: number };
  connect?: { host: string; port: number; password: string; timeoutMs: number; localAddress?: string };
};

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as Command;
  try {
    if (cmd.listen) {
      const { host, port } = cmd.listen;
      server = createServer((s) => {
        out({ event: 'accepted', remote: s.remoteAddress });
        s.on('data', (d) => s.write('echo:' + d.toString()));
        s.on('error', () => undefined);
      });
      await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(port, host, resolve));
      out({ event: 'listening' });
    } else if (cmd.key) {
      setMd5Key(server!, cmd.key.peer, cmd.key.password, cmd.key.prefixLength);
      out({ event: 'keyed' });
    } else if (cmd.connect) {
      const started = Date.now();
      const s = await connectWithMd5(cmd.connect);
      s.write('ping');
      const reply = await new Promise<string>((resolve, reject) => {
        s.once('data', (d) => resolve(d.toString()));
        s.once('error', reject);
      });
      out({ event: 'connected', ms: Date.now() - started, remote: s.remoteAddress, remotePort: s.remotePort, local: s.localAddress, reply });
      s.destroy();
    }
  } catch (err) {
    fail(err);
  }
}
server?.close();
