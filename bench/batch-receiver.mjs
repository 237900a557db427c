// Loopback receiver for the bull pipeline scenario: like ../shared/bench/receiver.mjs (counts POSTs, answers 200), and
// also keeps, per `Hook-Event` header value, how many requests arrived and when the last one did, so the latency of
// one batch of events (all sent under one event name) can be read exactly: GET /events?prefix=bench.b
//   node bench/batch-receiver.mjs --port P [--max-seconds 900]
// Binds 127.0.0.1 only; exits by itself after --max-seconds.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    'max-seconds': { type: 'string', default: '900' },
  },
});
const now = () => performance.timeOrigin + performance.now();
let s;
let perEvent;
let cpu0;
function reset() {
  s = { requests: 0, bytes: 0, firstAt: null, lastAt: null, signed: 0 };
  perEvent = new Map();
  cpu0 = process.cpuUsage();
}
reset();

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    const c = process.cpuUsage(cpu0);
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ ...s, cpuUserMs: c.user / 1e3, cpuSystemMs: c.system / 1e3 }));
  }
  if (req.method === 'GET' && req.url.startsWith('/events')) {
    const prefix = new URL(req.url, 'http://x').searchParams.get('prefix') ?? '';
    const out = {};
    for (const [k, v] of perEvent) if (k.startsWith(prefix)) out[k] = v;
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(out));
  }
  if (req.method === 'POST' && req.url === '/reset') {
    req.resume();
    reset();
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('reset');
  }
  let n = 0;
  req.on('data', (c) => (n += c.length));
  req.on('end', () => {
    const t = now();
    s.requests++;
    s.bytes += n;
    s.firstAt ??= t;
    s.lastAt = t;
    if (req.headers['hook-hmac']) s.signed++;
    const ev = req.headers['hook-event'];
    if (ev) {
      const e = perEvent.get(ev);
      if (e) {
        e.n++;
        e.lastAt = t;
      } else perEvent.set(ev, { n: 1, lastAt: t });
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
    res.end('ok');
  });
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(o.port), '127.0.0.1', () => console.log(`receiver listening on 127.0.0.1:${o.port}`));
setTimeout(() => process.exit(0), Number(o['max-seconds']) * 1000).unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
