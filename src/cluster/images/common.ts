// Shared by the built-in images: an HTTP server on [::]:80 (dual stack) speaking like nginx (Server and Date headers,
// access log lines on stdout in nginx's combined format), a little CPU spent per request so that load shows in the
// pod's metrics, and nginx's reaction to signals (SIGTERM/SIGINT: fast shutdown, SIGQUIT: graceful). Node built-ins only:
// the kubelet bundles each image into one small file.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface ImageServer {
  /** nginx version the image reports (`Server: nginx/<version>`). */
  version: string;
  handle(req: IncomingMessage, res: ServerResponse): { status: number; bytes: number };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => String(n).padStart(2, '0');

/** nginx's $time_local, in UTC: `10/Oct/2024:13:55:36 +0000`. */
export function timeLocal(d = new Date()): string {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** nginx's error-log time: `2024/10/10 13:55:36`. */
export function timeError(d = new Date()): string {
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** The client address as nginx's $remote_addr writes it (IPv4-mapped IPv6 shown as IPv4). */
export function remoteAddr(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '-';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * Spends `ms` of CPU time (a busy loop), the knob that makes load visible. CPU time, not wall time: on a loaded
 * machine (or under a CPU limit) a wall-clock loop would get only a slice of the CPU it is meant to use, so the
 * usage per request would depend on the load. A wall-clock cap keeps a throttled process from spinning for long.
 */
export function burnCpu(ms: number): void {
  if (!(ms > 0)) return;
  const start = process.cpuUsage();
  const budgetUs = ms * 1000;
  const giveUp = performance.now() + ms * 100;
  let x = 0;
  for (;;) {
    for (let i = 0; i < 2000; i++) x = (x * 31 + i) | 0;
    const used = process.cpuUsage(start);
    if (used.user + used.system >= budgetUs || performance.now() > giveUp) break;
  }
  if (x === 42) process.stdout.write('');
}

/** nginx's built-in error page (CRLF line ends, as nginx sends them). */
export function errorPage(status: number, text: string, version: string): string {
  return `<html>\r\n<head><title>${status} ${text}</title></head>\r\n<body>\r\n<center><h1>${status} ${text}</h1></center>\r\n<hr><center>nginx/${version}</center>\r\n</body>\r\n</html>\r\n`;
}

export function run(server: ImageServer): void {
  const cpuMs = Number(process.env.METALLB_LAB_CPU_MS_PER_REQUEST ?? '2');
  const port = Number(process.env.METALLB_LAB_HTTP_PORT ?? '80');
  const pid = process.pid;
  process.stdout.write('/docker-entrypoint.sh: Configuration complete; ready for start up\n');
  const srv = createServer((req, res) => {
    burnCpu(cpuMs);
    res.setHeader('Server', `nginx/${server.version}`);
    res.sendDate = true;
    const { status, bytes } = server.handle(req, res);
    const ref = req.headers.referer ?? '-';
    const ua = req.headers['user-agent'] ?? '-';
    const xff = req.headers['x-forwarded-for'] ?? '-';
    process.stdout.write(`${remoteAddr(req)} - - [${timeLocal()}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${status} ${bytes} "${String(ref)}" "${String(ua)}" "${String(xff)}"\n`);
  });
  srv.keepAliveTimeout = 65_000;
  srv.on('error', (err) => {
    process.stderr.write(`${timeError()} [emerg] ${pid}#${pid}: bind() to [::]:${port} failed (${(err as NodeJS.ErrnoException).code ?? err.message})\n`);
    process.exit(1);
  });
  srv.listen({ port, host: '::', ipv6Only: false }, () => {
    process.stderr.write(`${timeError()} [notice] ${pid}#${pid}: nginx/${server.version}\n`);
    process.stderr.write(`${timeError()} [notice] ${pid}#${pid}: start worker processes\n`);
  });
  const stop = (graceful: boolean, signal: string): void => {
    process.stderr.write(`${timeError()} [notice] ${pid}#${pid}: signal ${signal} received, exiting\n`);
    srv.close(() => process.exit(0));
    if (!graceful) srv.closeAllConnections();
    else srv.closeIdleConnections();
    setTimeout(() => process.exit(0), graceful ? 30_000 : 1000).unref();
  };
  process.once('SIGTERM', () => stop(false, '15 (SIGTERM)'));
  process.once('SIGINT', () => stop(false, '2 (SIGINT)'));
  process.once('SIGQUIT', () => stop(true, '3 (SIGQUIT)'));
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
}
