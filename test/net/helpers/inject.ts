// Sends raw Ethernet frames on an interface (run inside a network namespace): argv[2] = interface, argv[3] = JSON
// list of hex frames. Prints {"sent": n}.
import { PacketSocket } from '../../../src/net/packet-socket.js';

const [ifname, list] = process.argv.slice(2);
const frames = (JSON.parse(list ?? '[]') as string[]).map((h) => Buffer.from(h, 'hex'));
const sock = PacketSocket.open({ ifname: ifname!, protocol: 0x0003, ref: false, onFrame: () => undefined });
let sent = 0;
for (const f of frames) {
  sock.send(f);
  sent++;
}
sock.close();
process.stdout.write(JSON.stringify({ sent }) + '\n');
