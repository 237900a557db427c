import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import axios from 'axios';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { AxiosTransport, loadAxios } from '../../lib/delivery/axios.transport.js';
import { createTransport } from '../../lib/delivery/transport.factory.js';
import {
  DeliveryTimeoutError,
  EventService,
  SecurityError,
  ThornModule,
  blockInternalIps,
  ensureProtocol,
  type LookupLike,
  type Transport,
  type TransportOptions,
  type TransportRequest,
} from '../../lib/index.js';
import { UndiciTransport } from '../../lib/delivery/undici.transport.js';
import { judgeError } from '../../lib/delivery/retry.js';
import { resolveThornOptions } from '../../lib/thorn-options.js';
import { THORN_TRANSPORT } from '../../lib/thorn.constants.js';
import { TLS_CERT, TLS_KEY } from '../fixtures/tls.js';

interface Seen {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  remotePort?: number;
  servername?: string | false | null;
}

/** A loopback server that counts connections and records requests; `handle` answers them. */
class Server {
  connections = 0;
  requests: Seen[] = [];
  handle: (req: Seen, res: http.ServerResponse) => void = (_req, res) => res.end('ok');
  server!: http.Server;
  port = 0;

  constructor(
    private readonly host = '127.0.0.1',
    private readonly tls = false,
  ) {}

  async start(): Promise<this> {
    const listener: http.RequestListener = (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const seen: Seen = {
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          remotePort: req.socket.remotePort,
          servername: (req.socket as TLSSocket).servername,
        };
        this.requests.push(seen);
        this.handle(seen, res);
      });
    };
    this.server = this.tls
      ? https.createServer({ key: TLS_KEY, cert: TLS_CERT }, listener)
      : http.createServer(listener);
    this.server.on(this.tls ? 'secureConnection' : 'connection', () => this.connections++);
    if (this.tls) this.server.on('connection', () => undefined);
    await new Promise<void>((resolve) => this.server.listen(0, this.host, resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://${this.host}:${this.port}`;
  }

  reset(): void {
    this.connections = 0;
    this.requests = [];
    this.handle = (_req, res) => res.end('ok');
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const loopbackOnly = () => [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http', 'https')];

/** A resolver for test names; anything else is an error (no real DNS in these tests). */
const hostsLookup =
  (hosts: Record<string, string[]>): LookupLike =>
  (hostname, _opts, cb) => {
    const list = hosts[hostname];
    if (!list)
      return cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    cb(
      null,
      list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };

async function failure(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the request to fail');
}

type Kind = 'undici' | 'axios' | 'axios instance';
const kinds: Kind[] = ['undici', 'axios', 'axios instance'];

function makeTransport(kind: Kind, options: Partial<TransportOptions> = {}, instance = axios.create()) {
  const o: TransportOptions = {
    lookup: hostsLookup({ 'my.test': ['127.0.0.1'] }),
    maxResponseBody: 64 * 1024,
    ...options,
  };
  if (kind === 'undici') return Promise.resolve<Transport>(new UndiciTransport(o));
  return AxiosTransport.create(o, kind === 'axios' ? undefined : instance);
}

describe.each(kinds)('transport: %s', (kind) => {
  let server: Server;
  let tlsServer: Server;
  let transport: Transport | undefined;
  const validators = loopbackOnly();

  const request = (over: Partial<TransportRequest> = {}): TransportRequest => ({
    url: `${server.url}/hook?x=1`,
    headers: { 'Content-Type': 'application/json', 'Hook-Delivery': 'd-1', 'X-Extra': 'yes' },
    body: Buffer.from('{"a":1}'),
    timeout: 2000,
    validators,
    keepAlive: true,
    ...over,
  });

  beforeAll(async () => {
    server = await new Server().start();
    tlsServer = await new Server('127.0.0.1', true).start();
  });
  afterAll(async () => {
    await server.stop();
    await tlsServer.stop();
  });
  beforeEach(() => {
    server.reset();
    tlsServer.reset();
  });
  afterEach(async () => {
    await transport?.close();
    transport = undefined;
  });

  it('sends one POST with the exact body and headers, and returns status, headers and body', async () => {
    transport = await makeTransport(kind);
    server.handle = (_r, res) => {
      res.writeHead(201, { 'X-Answer': 'yes', 'Set-Cookie': ['a=1', 'b=2'] });
      res.end('created');
    };
    const res = await transport.send(request());
    expect(res.status).toBe(201);
    expect(res.body).toBe('created');
    expect(res.headers['x-answer']).toBe('yes');
    expect(server.requests).toHaveLength(1);
    const seen = server.requests[0];
    expect(seen).toMatchObject({ method: 'POST', path: '/hook?x=1', body: '{"a":1}' });
    expect(seen.headers).toMatchObject({
      'content-type': 'application/json',
      'hook-delivery': 'd-1',
      'x-extra': 'yes',
      'content-length': '7',
    });
  });

  it('reuses one connection per origin, and none with keepAlive: false', async () => {
    transport = await makeTransport(kind);
    for (let i = 0; i < 3; i++) {
      await transport.send(request());
      // undici hands the connection back to its pool just after the body ends
      await new Promise((r) => setImmediate(r));
    }
    expect(server.connections).toBe(1);
    expect(new Set(server.requests.map((r) => r.remotePort)).size).toBe(1);
    await transport.close();
    server.reset();
    transport = await makeTransport(kind);
    for (let i = 0; i < 3; i++) await transport.send(request({ keepAlive: false }));
    expect(server.requests).toHaveLength(3);
    expect(server.connections).toBe(3);
    expect(server.requests.map((r) => r.headers.connection)).toEqual(['close', 'close', 'close']);
  });

  it('returns a 3xx as it is, without following it', async () => {
    transport = await makeTransport(kind);
    server.handle = (r, res) => {
      res.writeHead(r.path === '/hook' ? 302 : 200, { Location: '/elsewhere' });
      res.end();
    };
    const res = await transport.send(request({ url: `${server.url}/hook` }));
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/elsewhere');
    expect(server.requests.map((r) => r.path)).toEqual(['/hook']);
  });

  it('reads at most maxResponseBody bytes of a large answer', async () => {
    transport = await makeTransport(kind, { maxResponseBody: 1000 });
    server.handle = (_r, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // 4 MiB in 64 KiB chunks; the client stops reading after the cap
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const write = () => {
        while (sent < 64) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      res.on('error', () => undefined);
      write();
    };
    const res = await transport.send(request());
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(1000);
    expect(res.body).toBe('x'.repeat(1000));
  });

  it('times out an answer that does not come, within the timeout', async () => {
    transport = await makeTransport(kind);
    server.handle = (_r, res) => void setTimeout(() => res.end('late'), 1500).unref();
    const started = performance.now();
    const err = await failure(transport.send(request({ timeout: 150 })));
    const took = performance.now() - started;
    expect(err).toBeInstanceOf(DeliveryTimeoutError);
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1200);
  });

  it('times out a body that stops half way (the timeout covers the whole response)', async () => {
    transport = await makeTransport(kind);
    server.handle = (_r, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial'); // and never the rest
    };
    const err = await failure(transport.send(request({ timeout: 200 })));
    expect(err).toBeInstanceOf(DeliveryTimeoutError);
  });

  it('times out a connection whose DNS lookup never answers (the timeout covers connect)', async () => {
    const hang: LookupLike = () => undefined;
    transport = await makeTransport(kind, { lookup: hang });
    const started = performance.now();
    const err = await failure(
      transport.send(request({ url: `http://hang.test:${server.port}/`, timeout: 150 })),
    );
    expect(err).toBeInstanceOf(DeliveryTimeoutError);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(server.connections).toBe(0);
  });

  it('reports a refused connection as a plain network error (retryable), not a SecurityError', async () => {
    transport = await makeTransport(kind);
    const closed = await new Server().start();
    const url = `${closed.url}/`;
    await closed.stop();
    const err = await failure(transport.send(request({ url })));
    expect(err).not.toBeInstanceOf(SecurityError);
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('fails a blocked target with the SecurityError itself and opens no connection', async () => {
    transport = await makeTransport(kind);
    const err = await failure(
      transport.send(request({ validators: [blockInternalIps(), ensureProtocol('http')] })),
    );
    expect(err).toBeInstanceOf(SecurityError);
    expect((err as SecurityError).address).toBe('127.0.0.1');
    expect(server.connections).toBe(0);
  });

  it('refuses non-http(s) URLs with a final (not retried) error', async () => {
    transport = await makeTransport(kind);
    for (const url of [`ftp://127.0.0.1:${server.port}/`, 'data:,hello', `ws://127.0.0.1:${server.port}/`]) {
      const err = await failure(transport.send(request({ url, validators: [] })));
      expect({ url, retryable: judgeError(err).retryable }).toEqual({ url, retryable: false });
    }
    expect(server.connections).toBe(0);
  });

  it('connects to the looked-up address, keeping the hostname in Host', async () => {
    transport = await makeTransport(kind);
    await transport.send(request({ url: `http://my.test:${server.port}/h` }));
    expect(server.requests.map((r) => r.headers.host)).toEqual([`my.test:${server.port}`]);
  });

  it('ignores HTTP_PROXY / HTTPS_PROXY from the environment (a proxy would bypass address validation)', async () => {
    transport = await makeTransport(kind);
    const proxy = await new Server().start();
    const saved = { ...process.env };
    Object.assign(process.env, {
      HTTP_PROXY: proxy.url,
      http_proxy: proxy.url,
      HTTPS_PROXY: proxy.url,
      https_proxy: proxy.url,
      NO_PROXY: '',
      no_proxy: '',
    });
    try {
      const res = await transport.send(request());
      expect(res.status).toBe(200);
    } finally {
      for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      await proxy.stop();
    }
    expect(proxy.connections).toBe(0);
    expect(server.requests).toHaveLength(1);
  });

  it('sends URL credentials as Basic auth (percent-decoded), unless the request has its own Authorization', async () => {
    transport = await makeTransport(kind);
    const withCreds = `http://user:p%40ss@127.0.0.1:${server.port}/creds`;
    await transport.send(request({ url: withCreds }));
    await transport.send(request({ url: `http://:only%20pw@127.0.0.1:${server.port}/creds` }));
    await transport.send(
      request({ url: withCreds, headers: { ...request().headers, authorization: 'Bearer own' } }),
    );
    await transport.send(request({ url: `${server.url}/creds` }));
    expect(server.requests.map((r) => [r.path, r.headers.authorization])).toEqual([
      ['/creds', `Basic ${Buffer.from('user:p@ss').toString('base64')}`],
      ['/creds', `Basic ${Buffer.from(':only pw').toString('base64')}`],
      ['/creds', 'Bearer own'],
      ['/creds', undefined],
    ]);
    expect(server.requests[0].headers.host).toBe(`127.0.0.1:${server.port}`);
  });

  describe('TLS', () => {
    it('sends SNI and verifies the certificate for the hostname, not the IP connected to', async () => {
      transport = await makeTransport(kind, { tls: { ca: TLS_CERT } });
      const res = await transport.send(request({ url: `https://my.test:${tlsServer.port}/tls` }));
      expect(res.status).toBe(200);
      expect(tlsServer.requests.map((r) => [r.headers.host, r.servername])).toEqual([
        [`my.test:${tlsServer.port}`, 'my.test'],
      ]);
    });

    it('rejects a certificate that does not name the host, and an untrusted one', async () => {
      transport = await makeTransport(kind, {
        tls: { ca: TLS_CERT },
        lookup: hostsLookup({ 'other.test': ['127.0.0.1'] }),
      });
      for (const url of [`https://other.test:${tlsServer.port}/`, `https://127.0.0.1:${tlsServer.port}/`]) {
        const err = await failure(transport.send(request({ url })));
        expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
      }
      await transport.close();
      transport = await makeTransport(kind);
      const err = await failure(transport.send(request({ url: `https://my.test:${tlsServer.port}/` })));
      expect(err.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(tlsServer.requests).toEqual([]);
    });
  });
});

describe('axios transport with your own instance', () => {
  let server: Server;
  let transport: Transport | undefined;
  const validators = loopbackOnly();
  const request = (url: string): TransportRequest => ({
    url,
    headers: { 'Content-Type': 'application/json', 'Hook-Event': 'a.b' },
    body: Buffer.from('{"signed":true}'),
    timeout: 2000,
    validators,
    keepAlive: true,
  });

  beforeAll(async () => {
    server = await new Server().start();
  });
  afterAll(() => server.stop());
  beforeEach(() => server.reset());
  afterEach(async () => {
    await transport?.close();
    transport = undefined;
  });

  it("runs the instance's interceptors, but they cannot change agents, proxy, redirects, body or Hook headers", async () => {
    const proxy = await new Server().start();
    const other = await new Server('127.0.0.2').start();
    const instance = axios.create({ headers: { 'X-Default': 'd' } });
    const seenConfigs: any[] = [];
    instance.interceptors.request.use((config) => {
      seenConfigs.push(config);
      config.headers.set('X-Interceptor', 'i');
      config.headers.set('Hook-Event', 'forged');
      Object.assign(config, {
        proxy: { protocol: 'http', host: '127.0.0.1', port: proxy.port },
        maxRedirects: 5,
        httpAgent: new http.Agent(),
        data: 'tampered',
        validateStatus: (s: number) => s < 300,
      });
      return config;
    });
    transport = await makeTransport('axios instance', {}, instance);
    server.handle = (r, res) => {
      res.writeHead(r.path === '/start' ? 302 : 200, { Location: `${other.url}/moved` });
      res.end();
    };
    try {
      const res = await transport.send(request(`${server.url}/start`));
      expect(res.status).toBe(302);
      expect(seenConfigs).toHaveLength(1);
      expect(server.requests).toHaveLength(1);
      expect(server.requests[0].body).toBe('{"signed":true}');
      expect(server.requests[0].headers).toMatchObject({
        'x-default': 'd',
        'x-interceptor': 'i',
        'hook-event': 'a.b',
      });
      expect(proxy.connections).toBe(0);
      expect(other.connections).toBe(0);
    } finally {
      await proxy.stop();
      await other.stop();
    }
  });

  it("never sends the instance's own auth or params to a subscriber", async () => {
    const instance = axios.create({
      auth: { username: 'internal-api', password: 'S3CRET' },
      params: { api_key: 'k' },
    });
    transport = await makeTransport('axios instance', {}, instance);
    const withOwn = request(`${server.url}/own`);
    withOwn.headers.Authorization = 'Bearer subscriber-token';
    await transport.send(withOwn);
    await transport.send(request(`${server.url.replace('http://', 'http://alice:pw@')}/userinfo`));
    await transport.send(request(`${server.url}/plain`));
    expect(server.requests.map((r) => [r.path, r.headers.authorization])).toEqual([
      ['/own', 'Bearer subscriber-token'],
      ['/userinfo', `Basic ${Buffer.from('alice:pw').toString('base64')}`],
      ['/plain', undefined],
    ]);
  });

  it('keeps the answer when a response interceptor rejects non-2xx', async () => {
    const instance = axios.create();
    instance.interceptors.response.use((r) => {
      if (r.status >= 400) throw new Error('interceptor says no');
      return r;
    });
    transport = await makeTransport('axios instance', {}, instance);
    server.handle = (_r, res) => {
      res.writeHead(503, { 'Retry-After': '7' });
      res.end('busy');
    };
    const res = await transport.send(request(`${server.url}/`));
    expect(res).toMatchObject({ status: 503, body: 'busy' });
    expect(res.headers['retry-after']).toBe('7');
  });

  it('still validates every connection when the instance has its own agents and adapter settings', async () => {
    const instance = axios.create({
      httpAgent: new http.Agent({ keepAlive: true }),
      proxy: { protocol: 'http', host: '127.0.0.1', port: 1 },
      maxRedirects: 10,
      adapter: 'fetch',
    });
    transport = await makeTransport('axios instance', {}, instance);
    const err = await failure(
      transport.send({
        ...request(`${server.url}/`),
        validators: [blockInternalIps(), ensureProtocol('http')],
      }),
    );
    expect(err).toBeInstanceOf(SecurityError);
    expect(server.connections).toBe(0);
  });

  // Each one would connect to the blocked loopback target without the safe agents if axios dispatched the request.
  const hostile: [string, (config: any) => any][] = [
    ["sets config.adapter = 'fetch'", (config) => ((config.adapter = 'fetch'), config)],
    [
      'sets a function adapter that sends the request itself',
      (config) => {
        config.adapter = (c: any) =>
          new Promise((resolve, reject) => {
            const r = http.request(c.url, { method: 'POST', headers: { 'x-bypass': '1' } }, (res) => {
              res.resume();
              res.on('end', () => resolve({ data: '', status: res.statusCode, headers: {}, config: c }));
            });
            r.on('error', reject);
            r.end('bypass');
          });
        return config;
      },
    ],
    [
      'returns a new config object with adapter http2',
      (config) => ({ ...config, adapter: 'http', httpVersion: 2 }),
    ],
    [
      'sets transport, lookup and its own agent',
      (config) =>
        Object.assign(config, {
          transport: { request: (o: any, cb: any) => http.request({ ...o, agent: false }, cb) },
          lookup: (_h: string, _o: unknown, cb: any) => cb(null, '127.0.0.1', 4),
          httpAgent: new http.Agent(),
        }),
    ],
  ];

  it.each(hostile)(
    'never connects outside the validating agents when a request interceptor %s',
    async (_name, interceptor) => {
      for (const synchronous of [false, true]) {
        const instance = axios.create();
        instance.interceptors.request.use(interceptor, undefined, { synchronous });
        if (!synchronous) instance.interceptors.request.use(async (c) => c);
        transport = await makeTransport('axios instance', {}, instance);
        const err = await failure(
          transport.send({
            ...request(`${server.url}/admin`),
            validators: [blockInternalIps(), ensureProtocol('http')],
          }),
        );
        expect(err).toBeInstanceOf(SecurityError);
        expect(server.connections).toBe(0);
        expect(server.requests).toEqual([]);
        await transport.close();
      }
    },
  );

  it('sends to the subscriber URL even when a request interceptor rewrites url, baseURL or method', async () => {
    const instance = axios.create();
    instance.interceptors.request.use((config) =>
      Object.assign(config, { url: 'data:,fake', baseURL: 'http://127.0.0.2/', method: 'get' }),
    );
    transport = await makeTransport('axios instance', {}, instance);
    server.handle = (_r, res) => {
      res.writeHead(500);
      res.end('real');
    };
    const res = await transport.send(request(`${server.url}/real`));
    expect(res).toMatchObject({ status: 500, body: 'real' });
    expect(server.requests.map((r) => [r.method, r.path, r.body])).toEqual([
      ['POST', '/real', '{"signed":true}'],
    ]);
  });

  it('runs request interceptors as axios does: order, runWhen, synchronous, rejected handlers', async () => {
    // What axios itself does with the same interceptors, measured with a stub adapter (no request is made).
    const order = async (transitional: Record<string, boolean> | undefined, viaTransport: boolean) => {
      const calls: string[] = [];
      const instance = axios.create(transitional && { transitional });
      const tag = (name: string) => (c: any) => (calls.push(name), c.headers.set(`X-${name}`, '1'), c);
      instance.interceptors.request.use(tag('a'));
      instance.interceptors.request.use(tag('skipped'), undefined, { runWhen: () => false });
      instance.interceptors.request.use(tag('b'));
      instance.interceptors.request.use(tag('c'));
      if (viaTransport) {
        transport = await makeTransport('axios instance', {}, instance);
        await transport.send(request(`${server.url}/`));
        await transport.close();
      } else {
        await instance.request({
          url: 'http://x.test/',
          adapter: async (config: any) => ({ config }) as any,
        });
      }
      return calls;
    };
    for (const transitional of [undefined, { legacyInterceptorReqResOrdering: false }]) {
      const expected = await order(transitional, false);
      expect(expected).toHaveLength(3);
      expect(expected).not.toContain('skipped');
      expect(await order(transitional, true)).toEqual(expected);
    }
    expect(server.requests.map((r) => [r.headers['x-a'], r.headers['x-skipped']])).toEqual([
      ['1', undefined],
      ['1', undefined],
    ]);

    // A fulfilled handler that throws: its own rejected handler runs (synchronous) and the request still goes.
    server.reset();
    const recovered: string[] = [];
    const sync = axios.create();
    sync.interceptors.request.use(
      () => {
        throw new Error('sync boom');
      },
      (e: Error) => void recovered.push(e.message),
      { synchronous: true },
    );
    transport = await makeTransport('axios instance', {}, sync);
    expect((await transport.send(request(`${server.url}/`))).status).toBe(200);
    expect(recovered).toEqual(['sync boom']);
    await transport.close();

    // An interceptor that rejects (async): nothing is sent, the error is the caller's.
    const failing = axios.create();
    failing.interceptors.request.use(async () => {
      throw Object.assign(new Error('no token'), { code: 'ENOTOKEN' });
    });
    transport = await makeTransport('axios instance', {}, failing);
    const err = await failure(transport.send(request(`${server.url}/`)));
    expect(err).toMatchObject({ message: 'no token', code: 'ENOTOKEN' });
    expect(server.requests).toHaveLength(1);
  });

  it('runs response interceptors, but they cannot turn the answer into a fake success', async () => {
    const instance = axios.create();
    const seen: number[] = [];
    instance.interceptors.response.use((r) => {
      seen.push(r.status);
      return { ...r, status: 200, data: 'fake' };
    });
    instance.interceptors.response.use(
      (r) => Object.assign(r, { status: 204 }),
      () => ({ status: 200, data: 'fake', headers: {} }),
    );
    transport = await makeTransport('axios instance', {}, instance);
    server.handle = (_r, res) => {
      res.writeHead(500);
      res.end('broken');
    };
    const res = await transport.send(request(`${server.url}/`));
    expect(res).toMatchObject({ status: 500, body: 'broken' });
    expect(seen).toEqual([500]);
    // ...nor a blocked or failed request into an answer
    const err = await failure(
      transport.send({
        ...request(`${server.url}/`),
        validators: [blockInternalIps(), ensureProtocol('http')],
      }),
    );
    expect(err).toBeInstanceOf(SecurityError);
    expect(server.requests).toHaveLength(1);
  });

  it("carries the instance's httpsAgent trust settings (ca) over to the safe agent", async () => {
    const tlsServer = await new Server('127.0.0.1', true).start();
    try {
      const instance = axios.create({ httpsAgent: new https.Agent({ ca: TLS_CERT }) });
      transport = await makeTransport('axios instance', {}, instance);
      const res = await transport.send(request(`https://my.test:${tlsServer.port}/`));
      expect(res.status).toBe(200);
      expect(tlsServer.requests.map((r) => r.servername)).toEqual(['my.test']);
      // ...but never rejectUnauthorized: false
      await transport.close();
      transport = await makeTransport(
        'axios instance',
        {},
        axios.create({ httpsAgent: new https.Agent({ rejectUnauthorized: false }) }),
      );
      const err = await failure(transport.send(request(`https://my.test:${tlsServer.port}/`)));
      expect(err.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    } finally {
      await tlsServer.stop();
    }
  });
});

describe('transport option', () => {
  it('loads axios lazily and names the package when it is missing', async () => {
    const missing = () =>
      Promise.reject(
        Object.assign(new Error("Cannot find package 'axios' imported from /app"), {
          code: 'ERR_MODULE_NOT_FOUND',
        }),
      );
    await expect(loadAxios(missing)).rejects.toThrow(
      /option "transport" needs the optional package "axios": npm install axios/,
    );
    const other = Object.assign(new Error('boom'), { code: 'EACCES' });
    await expect(loadAxios(() => Promise.reject(other))).rejects.toBe(other);
    await expect(loadAxios(() => Promise.resolve({ default: {} }))).rejects.toThrow(/axios >= 1\.7/);
    expect(typeof (await loadAxios()).getAdapter).toBe('function');
  });

  it('builds the transport the option names', async () => {
    const o = { lookup: hostsLookup({}), maxResponseBody: 10 };
    const made = [
      await createTransport('undici', o),
      await createTransport('axios', o),
      await createTransport(axios.create(), o),
    ];
    expect(made.map((t) => t.constructor.name)).toEqual([
      'UndiciTransport',
      'AxiosTransport',
      'AxiosTransport',
    ]);
    await Promise.all(made.map((t) => t.close()));
    await expect(createTransport('got' as any, o)).rejects.toThrow(/"transport" is invalid/);
  });

  it('rejects an invalid transport at start-up, naming the option', () => {
    expect(resolveThornOptions({}).transport).toBe('undici');
    expect(() => resolveThornOptions({ transport: 'fetch' as any })).toThrow(/option "transport" is invalid/);
    expect(() => resolveThornOptions({ transport: {} as any })).toThrow(/option "transport" is invalid/);
    const instance = axios.create();
    expect(resolveThornOptions({ transport: instance }).transport).toBe(instance);
  });

  it.each([['axios' as const], ['instance' as const]])(
    'ThornModule.forRoot({ transport: %s }) delivers through axios',
    async (which) => {
      const server = await new Server().start();
      const instance = axios.create();
      let intercepted = 0;
      instance.interceptors.request.use((c) => (intercepted++, c));
      const moduleRef = await Test.createTestingModule({
        imports: [
          ThornModule.forRoot({
            transport: which === 'axios' ? 'axios' : instance,
            recipientValidators: loopbackOnly(),
            subscriberEntity: false,
            controller: false,
            subscribers: { 'a.b': `${server.url}/hook` },
          }),
        ],
      }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      await app.init();
      try {
        expect(app.get(THORN_TRANSPORT)).toBeInstanceOf(AxiosTransport);
        const result = await app.get(EventService).send('a.b', { n: 1 });
        expect(result.deliveries).toEqual([expect.objectContaining({ ok: true, status: 200 })]);
        expect(server.requests.map((r) => r.body)).toEqual(['{"n":1}']);
        expect(intercepted).toBe(which === 'axios' ? 0 : 1);
      } finally {
        await app.close();
        await server.stop();
      }
    },
  );
});
