// The `sysnet4admin/echo-hname` image: nginx answering every request with its hostname (the pod name) and a newline
// as text/html, the way the tutorials' `curl EXTERNAL-IP` shows which pod answered.
import { hostname } from 'node:os';
import { run } from './common.js';

const VERSION = '1.26.0';

run({
  version: VERSION,
  handle(req, res) {
    const body = Buffer.from(`${hostname()}\n`);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/html');
    res.setHeader('Content-Length', body.length);
    res.end(req.method === 'HEAD' ? undefined : body);
    return { status: 200, bytes: req.method === 'HEAD' ? 0 : body.length };
  },
});
