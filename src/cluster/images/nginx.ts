// The `nginx` image: nginx's default site (the official image's /usr/share/nginx/html): the welcome page at / and
// /index.html, /50x.html, nginx's own 404 and 405 pages, HEAD, conditional GET on ETag and Last-Modified.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorPage, run } from './common.js';

const VERSION = '1.27.4';
// The files' modification time and nginx's ETag ("<mtime hex>-<size hex>"), fixed like those of an image layer.
const MTIME = Date.UTC(2025, 1, 5, 11, 6, 32);

const INDEX = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`;

const ERROR_50X = `<!DOCTYPE html>
<html>
<head>
<title>Error</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
<p>If you are the system administrator of this resource then you should check
the error log for details.</p>
<p><em>Faithfully yours, nginx.</em></p>
</body>
</html>
`;

interface StaticFile {
  body: Buffer;
  etag: string;
}

const file = (text: string): StaticFile => {
  const body = Buffer.from(text);
  return { body, etag: `"${Math.floor(MTIME / 1000).toString(16)}-${body.length.toString(16)}"` };
};

const FILES: Record<string, StaticFile> = { '/': file(INDEX), '/index.html': file(INDEX), '/50x.html': file(ERROR_50X) };
const LAST_MODIFIED = new Date(MTIME).toUTCString();

function handle(req: IncomingMessage, res: ServerResponse): { status: number; bytes: number } {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const f = FILES[path];
  const send = (status: number, body: Buffer, type: string): { status: number; bytes: number } => {
    res.statusCode = status;
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', body.length);
    res.end(req.method === 'HEAD' ? undefined : body);
    return { status, bytes: req.method === 'HEAD' ? 0 : body.length };
  };
  if (!f) return send(404, Buffer.from(errorPage(404, 'Not Found', VERSION)), 'text/html');
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, Buffer.from(errorPage(405, 'Not Allowed', VERSION)), 'text/html');
  res.setHeader('Last-Modified', LAST_MODIFIED);
  res.setHeader('ETag', f.etag);
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  if ((inm !== undefined && inm.split(',').some((t) => t.trim() === f.etag || t.trim() === '*')) || (inm === undefined && ims !== undefined && Date.parse(ims) >= Math.floor(MTIME / 1000) * 1000)) {
    res.statusCode = 304;
    res.end();
    return { status: 304, bytes: 0 };
  }
  res.setHeader('Accept-Ranges', 'bytes');
  return send(200, f.body, 'text/html');
}

run({ version: VERSION, handle });
