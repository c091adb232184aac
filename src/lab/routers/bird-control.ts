// BIRD's control socket (what birdc speaks): a command line in, reply lines out, each `CODE-text` (more follows),
// ` text` (continues the previous code) or `CODE text` (last line). Talking to it directly costs well under a
// millisecond per query, where spawning birdc costs several: the benchmark polls through this.
import { createConnection, type Socket } from 'node:net';

export interface BirdReply {
  /** Code of the last line: 0xxx success, 8xxx/9xxx error. */
  code: number;
  /** The reply with codes stripped, lines as birdc prints them. */
  text: string;
}

export class BirdControl {
  private buffer = '';
  private waiters: { resolve: (r: BirdReply) => void; reject: (e: Error) => void }[] = [];
  private lines: string[] = [];
  private greeted = false;
  private greeting?: () => void;
  private failed?: Error;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.onData(d));
    const fail = (err: Error): void => {
      this.failed = err;
      for (const w of this.waiters.splice(0)) w.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('BIRD control socket closed')));
  }

  static connect(path: string, timeoutMs = 5000): Promise<BirdControl> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const c = new BirdControl(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`BIRD control socket ${path}: no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`BIRD control socket ${path}: ${err.message}`));
      });
      c.greeting = () => {
        clearTimeout(timer);
        resolve(c);
      };
    });
  }

  private onData(d: string): void {
    this.buffer += d;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (!this.greeted) {
        this.greeted = true;
        this.greeting?.();
        continue;
      }
      if (/^\d{4} /.test(line)) {
        this.lines.push(line.slice(5));
        const text = this.lines.join('\n');
        this.lines = [];
        this.waiters.shift()?.resolve({ code: Number(line.slice(0, 4)), text });
      } else if (/^\d{4}-/.test(line)) {
        this.lines.push(line.slice(5));
      } else {
        this.lines.push(line.startsWith(' ') ? line.slice(1) : line);
      }
    }
  }

  /** Sends one command; replies come back in order. */
  command(cmd: string): Promise<BirdReply> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.socket.write(`${cmd}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
