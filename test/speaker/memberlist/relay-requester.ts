// The requester's side of an indirect probe, on loopback, for tests that drive one of our members as the relay with
// raw packets: UDP sockets, and one that records the acks and nacks it receives (decoded with the test's keys).
import { createSocket, type Socket } from 'node:dgram';
import { decodeAck, decodeNack, MessageType } from '../../../src/speaker/memberlist/messages.js';
import { type SecurityOptions, unwrapPacket } from '../../../src/speaker/memberlist/packet.js';

export const LO = '127.0.0.1';

export interface Reply {
  type: number;
  seq: number;
}

export interface Requester {
  sock: Socket;
  port: number;
  replies: Reply[];
}

/** A UDP socket bound to a free port on loopback; on its own it hears nothing (a deaf member's gossip port). */
export async function udp(): Promise<Socket> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, LO, () => r()));
  return sock;
}

/** A UDP socket that records the acks and nacks it receives, in order. */
export async function requester(sec: SecurityOptions): Promise<Requester> {
  const sock = await udp();
  const replies: Reply[] = [];
  sock.on('message', (buf) => {
    for (const m of unwrapPacket(buf, sec).messages) {
      if (m.type === MessageType.ackResp) replies.push({ type: m.type, seq: decodeAck(m.body).SeqNo });
      if (m.type === MessageType.nackResp) replies.push({ type: m.type, seq: decodeNack(m.body).SeqNo });
    }
  });
  return { sock, port: sock.address().port, replies };
}
