// The controller's HTTP endpoints: Prometheus `/metrics` (plain HTTP), `/healthz` + `/readyz`, and the HTTPS
// admission webhook. Port 0 picks a free port; the bound port is returned (and logged by the caller).
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { errorText } from '../k8s/client.js';
import { handleAdmission, WEBHOOK_PATHS, type WebhookContext } from './webhook.js';

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

function listen(server: http.Server | https.Server, port: number, host: string | undefined): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      resolve({
        port: addr.port,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            server.closeAllConnections?.();
          }),
      });
    });
  });
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

export function startMetricsServer(port: number, host: string | undefined, metrics: () => Promise<string>, contentType: string, log: Logger): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') return send(res, 404, 'not found\n');
    metrics().then(
      (text) => send(res, 200, text, contentType),
      (err: unknown) => {
        log.warn({ err: errorText(err) }, 'metrics: could not render');
        send(res, 500, `${errorText(err)}\n`);
      },
    );
  });
  return listen(server, port, host);
}

export interface HealthState {
  /** Reasons the controller is not ready yet; empty = ready. */
  notReady(): string[];
}

export function startHealthServer(port: number, host: string | undefined, state: HealthState): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez') return send(res, 200, 'ok\n');
    if (path === '/readyz') {
      const reasons = state.notReady();
      return reasons.length === 0 ? send(res, 200, 'ok\n') : send(res, 503, `not ready: ${reasons.join('; ')}\n`);
    }
    send(res, 404, 'not found\n');
  });
  return listen(server, port, host);
}

const MAX_BODY = 3 * 1024 * 1024;

export function startWebhookServer(
  port: number,
  host: string | undefined,
  tls: { cert: string; key: string },
  ctx: WebhookContext,
  log: Logger,
  minVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.2',
): Promise<RunningServer> {
  const server = https.createServer({ cert: tls.cert, key: tls.key, minVersion }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/healthz' || path === '/readyz') return send(res, 200, 'ok\n');
    if (!WEBHOOK_PATHS[path]) return send(res, 404, 'not found\n');
    if (req.method !== 'POST') return send(res, 405, 'method not allowed\n');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(res, 413, 'request too large\n');
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        return send(res, 400, `invalid JSON: ${errorText(err)}\n`);
      }
      // Any JSON may arrive here (`null`, a string, fields of the wrong type): nothing below may throw out of this
      // handler, which would take the whole controller down.
      let answer;
      try {
        answer = handleAdmission(path, body, ctx);
      } catch (err) {
        log.error({ webhook: path, err: errorText(err) }, 'webhook: internal error');
        return send(res, 500, `internal error: ${errorText(err)}\n`);
      }
      const r = answer.response;
      const req0 = typeof body === 'object' && body !== null ? (body as { request?: { operation?: unknown; name?: unknown; namespace?: unknown } }).request : undefined;
      const who = { webhook: path, operation: req0?.operation, object: `${String(req0?.namespace ?? '')}/${String(req0?.name ?? '')}` };
      if (r && !r.allowed) log.info({ ...who, reason: r.status?.message }, 'webhook: denied');
      else log.debug(who, 'webhook: allowed');
      send(res, 200, JSON.stringify(answer), 'application/json');
    });
  });
  server.on('tlsClientError', (err) => log.debug({ err: errorText(err) }, 'webhook: TLS handshake failed'));
  return listen(server, port, host);
}
