// The `sysnet4admin/echo-ip` image: nginx answering with the request method and the client address it saw
// (`request_method : GET | ip_dest: 10.89.0.100`), which shows whether a Service preserved the client's address.
import { remoteAddr, run } from './common.js';

const VERSION = '1.26.0';

run({
  version: VERSION,
  handle(req, res) {
    const body = Buffer.from(`request_method : ${req.method ?? 'GET'} | ip_dest: ${remoteAddr(req)}\n`);
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/html');
    res.setHeader('Content-Length', body.length);
    res.end(req.method === 'HEAD' ? undefined : body);
    return { status: 200, bytes: req.method === 'HEAD' ? 0 : body.length };
  },
});
