import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import axios from 'axios';
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { AxiosTransport } from '../../lib/delivery/axios.transport.js';
import {
  DeliveryService,
  Dispatcher,
  EventService,
  SecurityError,
  ThornModule,
  blockInternalIps,
  ensureProtocol,
  type DeliveryRequest,
  type LookupLike,
  type RecipientValidator,
  type SendResult,
  type ThornModuleOptions,
  type Transport,
  type TransportOptions,
} from '../../lib/index.js';
import { DirectDispatcher } from '../../lib/dispatchers/direct.dispatcher.js';
import { UndiciTransport } from '../../lib/delivery/undici.transport.js';
import { resolveThornOptions } from '../../lib/thorn-options.js';
import { TLS_CERT, TLS_KEY } from '../fixtures/tls.js';

/** A loopback server that counts connections and records requests; it closes every connection after answering. */
interface Counting {
  server: http.Server;
  host: string;
  connections: number;
  requests: { path: string; method: string; headers: http.IncomingHttpHeaders; body: string }[];
  handle: (path: string, res: http.ServerResponse) => void;
}

async function listen(host: string, port: number, tls?: { key: string; cert: string }): Promise<Counting> {
  const rec: Counting = {
    host,
    connections: 0,
    requests: [],
    handle: (_p, res) => res.end('ok'),
    server: undefined as unknown as http.Server,
  };
  const listener: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      rec.requests.push({
        path: req.url ?? '',
        method: req.method ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      // A fresh connection (and so a fresh lookup + validation) for every request.
      res.setHeader('connection', 'close');
      rec.handle(req.url ?? '', res);
    });
  };
  rec.server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  rec.server.on('connection', () => rec.connections++);
  await new Promise<void>((resolve, reject) => {
    rec.server.once('error', reject);
    rec.server.listen(port, host, () => resolve());
  });
  return rec;
}

async function stop(rec: Counting | undefined): Promise<void> {
  if (!rec) return;
  rec.server.closeAllConnections();
  await new Promise<void>((resolve) => rec.server.close(() => resolve()));
}

/** Test names resolved by a custom `lookup` (the module option); `localhost` goes to the system resolver. */
const NAMES: Record<string, string[]> = {
  'localtest.example': ['127.0.0.1'],
  'internal.example': ['127.0.0.2'],
  'v6.example': ['::1'],
  'mapped.example': ['::ffff:127.0.0.3'],
  'nat64.example': ['64:ff9b::7f00:1'],
  'metadata.google.internal': ['169.254.169.254'],
  'mixed.example': ['8.8.8.8', '127.0.0.1'],
  'private.example': ['10.1.2.3'],
};

function recordingLookup(names: Record<string, string[] | string[][]> = NAMES) {
  const calls: string[] = [];
  const lookup: LookupLike = (hostname, opts, cb) => {
    const n = calls.filter((h) => h === hostname).length;
    calls.push(hostname);
    const entry = names[hostname];
    if (!entry) return dns.lookup(hostname, opts, cb);
    const list = (Array.isArray(entry[0]) ? entry[Math.min(n, entry.length - 1)] : entry) as string[];
    cb(
      null,
      list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
  return { lookup, calls };
}

type Kind = 'undici' | 'axios';
const KINDS: Kind[] = ['undici', 'axios'];

function transportOf(kind: Kind, o: TransportOptions): Promise<Transport> {
  return kind === 'undici' ? Promise.resolve(new UndiciTransport(o)) : AxiosTransport.create(o);
}

let s1: Counting; // 127.0.0.1:P
let s2: Counting; // 127.0.0.2:P
let s3: Counting; // 127.0.0.3:P
let s6: Counting | undefined; // [::1]:P, when the host has IPv6 loopback
let other: Counting; // 127.0.0.1:Q, another origin for redirects
let P: number;
const all = () => [s1, s2, s3, other, ...(s6 ? [s6] : [])];
const totalConnections = () => all().reduce((n, s) => n + s.connections, 0);

beforeAll(async () => {
  s1 = await listen('127.0.0.1', 0);
  P = (s1.server.address() as AddressInfo).port;
  s2 = await listen('127.0.0.2', P);
  s3 = await listen('127.0.0.3', P);
  s6 = await listen('::1', P).catch(() => undefined);
  other = await listen('127.0.0.1', 0);
});
afterAll(async () => {
  for (const s of all()) await stop(s);
});
beforeEach(() => {
  for (const s of all()) {
    s.connections = 0;
    s.requests = [];
    s.handle = (_p, res) => res.end('ok');
  }
});

/**
 * Recipients that resolve to (or are) internal addresses, written every way we know. Ports are P, where loopback
 * servers listen on 127.0.0.1, 127.0.0.2, 127.0.0.3 and ::1, so a connection would be counted.
 */
/** Sends every URL of the table straight through `transport`: each must fail with SecurityError. */
async function expectEveryUrlBlocked(transport: Transport): Promise<void> {
  for (const url of blockedUrls()) {
    const err = await transport
      .send({
        url,
        headers: { 'content-type': 'application/json' },
        body: '{}',
        timeout: 2000,
        validators: addressRulesOnly(),
        keepAlive: true,
      })
      .then(
        () => new Error(`${url} was delivered`),
        (e: Error) => e,
      );
    expect({ url, name: err.name }).toEqual({ url, name: 'SecurityError' });
  }
}

const blockedUrls = (): string[] => [
  // IPv4 loopback, plain and odd literal forms
  `http://127.0.0.1:${P}/hook`,
  `http://127.0.0.2:${P}/hook`,
  `http://127.0.0.3:${P}/hook`,
  `http://127.1:${P}/`,
  `http://127.0.1:${P}/`,
  `http://0x7f000001:${P}/`,
  `http://2130706433:${P}/`,
  `http://0177.0.0.1:${P}/`,
  `http://0x7f.0.0.1:${P}/`,
  `http://0x7f.1:${P}/`,
  `http://017700000001:${P}/`,
  `http://127.000.000.001:${P}/`,
  `http://127.0.0.1.:${P}/`,
  `http://127.0.0.1%2E:${P}/`,
  `http://１２７.０.０.１:${P}/`,
  `http://127。0。0。1:${P}/`,
  `HTTP://127.0.0.1:${P}/`,
  `http://user:secret@127.0.0.1:${P}/`,
  `https://127.0.0.1:${P}/`,
  // unspecified
  `http://0.0.0.0:${P}/`,
  `http://0:${P}/`,
  // IPv6 forms
  `http://[::1]:${P}/`,
  `http://[0:0:0:0:0:0:0:1]:${P}/`,
  `http://[::]:${P}/`,
  `http://[::ffff:127.0.0.1]:${P}/`,
  `http://[::ffff:7f00:1]:${P}/`,
  `http://[0:0:0:0:0:ffff:127.0.0.2]:${P}/`,
  `http://[::127.0.0.1]:${P}/`,
  `http://[64:ff9b::127.0.0.1]:${P}/`,
  `http://[2002:7f00:1::]:${P}/`,
  `http://[fe80::1]:${P}/`,
  `http://[fc00::1]:${P}/`,
  `http://[fd12:3456::1]:${P}/`,
  `http://[ff02::1]:${P}/`,
  // cloud metadata endpoints
  'http://169.254.169.254/latest/meta-data/',
  'http://0251.0376.0251.0376/latest/meta-data/',
  'http://2852039166/latest/meta-data/',
  'http://[::ffff:a9fe:a9fe]/latest/meta-data/',
  'http://[fd00:ec2::254]/latest/meta-data/',
  'http://169.254.170.2/v2/credentials',
  'http://100.100.100.200/latest/meta-data/',
  'http://metadata.google.internal/computeMetadata/v1/',
  // private, CGNAT, multicast, reserved, broadcast, documentation, benchmarking
  'http://10.0.0.1/',
  'http://172.16.0.1/',
  'http://192.168.1.1/',
  'http://100.64.0.1/',
  'http://224.0.0.1/',
  'http://240.0.0.1/',
  'http://255.255.255.255/',
  'http://192.0.2.1/',
  'http://198.18.0.1/',
  // host names that resolve to internal addresses
  `http://localhost:${P}/`,
  `http://LOCALHOST:${P}/`,
  `http://localtest.example:${P}/`,
  `http://internal.example:${P}/`,
  `http://v6.example:${P}/`,
  `http://mapped.example:${P}/`,
  `http://nat64.example:${P}/`,
  `http://mixed.example:${P}/`,
  'http://private.example/',
];

// Only address rules: no port or scheme rule could be what blocks these.
const addressRulesOnly = (): RecipientValidator[] => [blockInternalIps(), ensureProtocol('http', 'https')];

async function boot(options: ThornModuleOptions): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ThornModule.forRoot({ subscriberEntity: false, controller: false, retryDelay: 20, ...options }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

const tick = () => new Promise((r) => setImmediate(r));

describe.each(KINDS)('SSRF, %s transport', (kind) => {
  let app: INestApplication | undefined;
  let transport: Transport | undefined;
  afterEach(async () => {
    await app?.close();
    await transport?.close();
    app = undefined;
    transport = undefined;
  });

  it('has at least 40 URLs in the table', () => {
    expect(blockedUrls().length).toBeGreaterThanOrEqual(40);
    expect(new Set(blockedUrls()).size).toBe(blockedUrls().length);
  });

  it('blocks every URL of the table at delivery time through the module, with no connection made', async () => {
    const urls = blockedUrls();
    const { lookup } = recordingLookup();
    app = await boot({
      transport: kind,
      lookup,
      recipientValidators: addressRulesOnly(),
      subscribers: { 'ssrf.probe': urls },
    });
    const errors: Error[] = [];
    const result: SendResult = await app
      .get(EventService)
      .send('ssrf.probe', { x: 1 }, { onError: (_r, e) => void errors.push(e) });
    expect(result.deliveries.map((d) => d.url)).toEqual(urls);
    for (const d of result.deliveries) {
      expect({ url: d.url, ok: d.ok, retrying: d.retrying }).toEqual({
        url: d.url,
        ok: false,
        retrying: false,
      });
      expect({ url: d.url, error: d.error }).toEqual({
        url: d.url,
        error: expect.stringMatching(/^Recipient blocked/),
      });
    }
    await tick();
    expect(errors).toHaveLength(urls.length);
    for (const e of errors) {
      expect(e).toBeInstanceOf(SecurityError);
      expect((e as SecurityError).address).toBeTruthy(); // an address rule blocked it
    }
    expect((app.get(Dispatcher) as DirectDispatcher).pendingRetries).toBe(0);
    expect(totalConnections()).toBe(0);
  });

  it('blocks every URL of the table in the transport itself, with no connection made', async () => {
    const { lookup } = recordingLookup();
    transport = await transportOf(kind, { lookup, maxResponseBody: 1024 });
    await expectEveryUrlBlocked(transport);
    expect(totalConnections()).toBe(0);
  });

  it('control: with loopback allowed, the odd forms do reach the servers they name', async () => {
    const { lookup } = recordingLookup();
    transport = await transportOf(kind, { lookup, maxResponseBody: 1024 });
    const validators = [blockInternalIps({ allow: ['127.0.0.0/8', '::1/128'] })];
    const reach: [string, Counting | undefined][] = [
      [`http://127.1:${P}/`, s1],
      [`http://0x7f000001:${P}/`, s1],
      [`http://2130706433:${P}/`, s1],
      [`http://0177.0.0.1:${P}/`, s1],
      [`http://127.0.0.1%2E:${P}/`, s1],
      [`http://[::ffff:127.0.0.1]:${P}/`, s1],
      [`http://localtest.example:${P}/`, s1],
      [`http://0x7f000002:${P}/`, s2],
      [`http://internal.example:${P}/`, s2],
      [`http://mapped.example:${P}/`, s3],
      [`http://[::1]:${P}/`, s6],
      [`http://v6.example:${P}/`, s6],
    ];
    for (const [url, server] of reach) {
      if (!server) continue; // no IPv6 loopback here
      const before = server.requests.length;
      const res = await transport.send({
        url,
        headers: {},
        body: '{}',
        timeout: 2000,
        validators,
        keepAlive: true,
      });
      expect({ url, status: res.status, reached: server.requests.length - before }).toEqual({
        url,
        status: 200,
        reached: 1,
      });
    }
  });

  describe('DNS rebinding through the module', () => {
    // 127.0.0.2 stands in for a public address (allowed); 127.0.0.1 is the internal victim (blocked).
    const validators = () => [blockInternalIps({ allow: ['127.0.0.2/32'] }), ensureProtocol('http')];

    it('resolves once per connection and never connects to the blocked second answer', async () => {
      const { lookup, calls } = recordingLookup({ 'rebind.example': [['127.0.0.2'], ['127.0.0.1']] });
      app = await boot({
        transport: kind,
        lookup,
        recipientValidators: validators(),
        retry: false,
        subscribers: { 'a.b': `http://rebind.example:${P}/hook` },
      });
      const events = app.get(EventService);
      const first = await events.send('a.b', { n: 1 });
      expect(first.deliveries[0]).toMatchObject({ ok: true, status: 200 });
      expect(s2.requests.map((r) => r.headers.host)).toEqual([`rebind.example:${P}`]);
      // The receiver closed the connection, so the next delivery connects (and resolves) again.
      const second = await events.send('a.b', { n: 2 });
      expect(second.deliveries[0]).toMatchObject({ ok: false, retrying: false });
      expect(second.deliveries[0].error).toMatch(/127\.0\.0\.1/);
      expect(calls).toEqual(['rebind.example', 'rebind.example']);
      expect(s1.connections).toBe(0);
      expect(s2.connections).toBe(1);
    });

    it('refuses a host when any one of its answers is blocked', async () => {
      const { lookup, calls } = recordingLookup({ 'both.example': ['127.0.0.2', '127.0.0.1'] });
      app = await boot({
        transport: kind,
        lookup,
        recipientValidators: validators(),
        subscribers: { 'a.b': `http://both.example:${P}/hook` },
      });
      const result = await app.get(EventService).send('a.b', {});
      expect(result.deliveries[0]).toMatchObject({ ok: false, retrying: false });
      expect(calls).toEqual(['both.example']);
      expect(s1.connections + s2.connections).toBe(0);
    });
  });

  describe('redirects', () => {
    // Only 127.0.0.1 is allowed; every other loopback address stands in for an internal service.
    const only1 = () => [blockInternalIps({ allow: ['127.0.0.1/32'] }), ensureProtocol('http', 'https')];
    const redirectTo = (status: number, location: string) => (_p: string, res: http.ServerResponse) => {
      res.writeHead(status, { location });
      res.end();
    };

    it.each([
      ['127.0.0.2', () => `http://127.0.0.2:${P}/internal`],
      ['127.0.0.3 (hex)', () => `http://0x7f000003:${P}/internal`],
      ['::1', () => `http://[::1]:${P}/internal`],
      ['IPv4-mapped 127.0.0.2', () => `http://[::ffff:127.0.0.2]:${P}/internal`],
      ['a name resolving to 127.0.0.2', () => `http://internal.example:${P}/internal`],
      ['the metadata address', () => 'http://169.254.169.254/latest/meta-data/'],
    ])(
      'blocks a redirect from an allowed server to %s, with no connection made to it',
      async (_label, target) => {
        const { lookup } = recordingLookup();
        app = await boot({
          transport: kind,
          lookup,
          recipientValidators: only1(),
          allowRedirects: true,
          subscribers: { 'a.b': `http://127.0.0.1:${P}/start` },
        });
        s1.handle = redirectTo(307, target());
        const errors: Error[] = [];
        const result = await app
          .get(EventService)
          .send('a.b', {}, { onError: (_r, e) => void errors.push(e) });
        expect(result.deliveries[0]).toMatchObject({ ok: false, retrying: false });
        expect(result.deliveries[0].error).toMatch(/^Recipient blocked/);
        await tick();
        expect(errors.map((e) => e.name)).toEqual(['SecurityError']);
        expect(s1.requests.map((r) => r.path)).toEqual(['/start']);
        expect(s1.connections).toBe(1);
        expect(s2.connections + s3.connections + (s6?.connections ?? 0)).toBe(0);
      },
    );

    it('refuses a redirect to a non-http(s) URL even when the validators would allow it', async () => {
      app = await boot({
        transport: kind,
        recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] })],
        allowRedirects: true,
        subscribers: { 'a.b': `http://127.0.0.1:${P}/start` },
      });
      s1.handle = redirectTo(302, `ftp://127.0.0.2:${P}/file`);
      const result = await app.get(EventService).send('a.b', {});
      expect(result.deliveries[0]).toMatchObject({ ok: false, retrying: false });
      expect(result.deliveries[0].error).toMatch(/a ftp: URL \(only http and https\)/);
      expect(s2.connections).toBe(0);
    });

    it('validates every hop: allowed → allowed → blocked stops at the blocked one', async () => {
      app = await boot({
        transport: kind,
        recipientValidators: only1(),
        allowRedirects: true,
        subscribers: { 'a.b': `http://127.0.0.1:${P}/a` },
      });
      s1.handle = (path, res) => {
        res.writeHead(302, { location: path === '/a' ? '/b' : `http://127.0.0.2:${P}/c` });
        res.end();
      };
      const result = await app.get(EventService).send('a.b', {});
      expect(result.deliveries[0]).toMatchObject({ ok: false, retrying: false });
      expect(s1.requests.map((r) => r.path)).toEqual(['/a', '/b']);
      expect(s2.connections).toBe(0);
    });

    it.each([301, 302, 303, 307, 308])(
      'follows an allowed %i by re-sending the same POST, body and headers',
      async (status) => {
        app = await boot({
          transport: kind,
          recipientValidators: only1(),
          allowRedirects: true,
          subscribers: { 'a.b': { url: `http://127.0.0.1:${P}/start`, hmacSecret: 's' } },
        });
        s1.handle = (path, res) =>
          path === '/start' ? redirectTo(status, '/final')(path, res) : res.end('ok');
        const result = await app.get(EventService).send('a.b', { v: 1 }, { headers: { 'X-Custom': 'c' } });
        expect(result.deliveries[0]).toMatchObject({ ok: true, status: 200 });
        const [start, final] = s1.requests;
        expect(s1.requests.map((r) => [r.method, r.path, r.body])).toEqual([
          ['POST', '/start', '{"v":1}'],
          ['POST', '/final', '{"v":1}'],
        ]);
        for (const h of [
          'hook-delivery',
          'hook-hmac',
          'hook-event',
          'hook-subscription',
          'content-type',
          'x-custom',
        ]) {
          expect(final.headers[h]).toBe(start.headers[h]);
        }
      },
    );

    it('sends only the generated headers after a redirect to another origin; all of them on the same origin', async () => {
      app = await boot({
        transport: kind,
        recipientValidators: only1(),
        allowRedirects: true,
        standardWebhooks: true,
        subscribers: { 'a.b': { url: `http://127.0.0.1:${P}/start`, hmacSecret: 's' } },
      });
      const otherPort = (other.server.address() as AddressInfo).port;
      s1.handle = (path, res) => {
        res.writeHead(302, { location: path === '/start' ? '/same' : `http://127.0.0.1:${otherPort}/other` });
        res.end();
      };
      const custom = { Authorization: 'Bearer t', Cookie: 'c=1', 'X-Api-Key': 'k3y', 'X-Tenant': 't1' };
      const result = await app.get(EventService).send('a.b', { v: 1 }, { headers: custom });
      expect(result.deliveries[0]).toMatchObject({ ok: true });
      expect(s1.requests.map((r) => r.path)).toEqual(['/start', '/same']);
      for (const r of s1.requests) {
        expect(r.headers).toMatchObject({
          authorization: 'Bearer t',
          cookie: 'c=1',
          'x-api-key': 'k3y',
          'x-tenant': 't1',
        });
      }
      expect(other.requests).toHaveLength(1);
      const [start] = s1.requests;
      const moved = other.requests[0].headers;
      const generated = [
        'content-type',
        'user-agent',
        'hook-event',
        'hook-delivery',
        'hook-subscription',
        'hook-hmac',
        'webhook-id',
        'webhook-timestamp',
        'webhook-signature',
      ];
      for (const h of generated) expect([h, moved[h]]).toEqual([h, start.headers[h]]);
      for (const h of ['authorization', 'cookie', 'x-api-key', 'x-tenant'])
        expect([h, moved[h]]).toEqual([h, undefined]);
      expect(other.requests[0].body).toBe('{"v":1}');
    });

    it('stops after maxRedirects hops: a failed, retryable attempt', async () => {
      app = await boot({
        transport: kind,
        recipientValidators: only1(),
        allowRedirects: true,
        maxRedirects: 2,
        retryDelay: 60_000,
        subscribers: { 'a.b': `http://127.0.0.1:${P}/loop` },
      });
      s1.handle = redirectTo(302, '/loop');
      const result = await app.get(EventService).send('a.b', {});
      expect(result.deliveries[0]).toMatchObject({ ok: false, status: 302, retrying: true });
      expect(result.deliveries[0].error).toMatch(/more than maxRedirects \(2\)/);
      expect(s1.requests).toHaveLength(3);
    });

    it('does not follow redirects by default: a 3xx is a failed, retryable attempt', async () => {
      app = await boot({
        transport: kind,
        recipientValidators: only1(),
        retryDelay: 60_000,
        subscribers: { 'a.b': `http://127.0.0.1:${P}/start` },
      });
      s1.handle = redirectTo(302, `http://127.0.0.1:${P}/final`);
      const result = await app.get(EventService).send('a.b', {});
      expect(result.deliveries[0]).toMatchObject({ ok: false, status: 302, retrying: true });
      expect(result.deliveries[0].error).toMatch(/allowRedirects is off/);
      expect(s1.requests.map((r) => r.path)).toEqual(['/start']);
    });
  });
});

describe('SSRF through an axios instance whose interceptor replaces the adapter', () => {
  let app: INestApplication | undefined;
  let transport: Transport | undefined;
  afterEach(async () => {
    await app?.close();
    await transport?.close();
    app = undefined;
    transport = undefined;
  });

  // A request interceptor that hands the request to another adapter: axios would send it without the safe agents.
  const swapping = (adapter: 'fetch' | ((config: any) => Promise<unknown>)) => {
    const instance = axios.create();
    instance.interceptors.request.use((config) => {
      config.adapter = adapter as any;
      return config;
    });
    return instance;
  };
  const selfSending = (config: any) =>
    new Promise((resolve, reject) => {
      const r = http.request(config.url, { method: 'POST' }, (res) => {
        res.resume();
        res.on('end', () => resolve({ data: '', status: res.statusCode, headers: {}, config }));
      });
      r.on('error', reject);
      r.end(config.data);
    });

  it.each([['fetch' as const], ['a function adapter' as const]])(
    'blocks a loopback recipient with the default validators (adapter: %s), and nothing reaches it',
    async (which) => {
      app = await boot({
        transport: swapping(which === 'fetch' ? 'fetch' : selfSending),
        subscribers: { 'a.b': `http://127.0.0.1:${P}/admin` },
      });
      const errors: Error[] = [];
      const result = await app
        .get(EventService)
        .send('a.b', { x: 1 }, { onError: (_r, e) => void errors.push(e) });
      expect(result.deliveries).toEqual([
        expect.objectContaining({
          ok: false,
          retrying: false,
          error: expect.stringMatching(/^Recipient blocked/),
        }),
      ]);
      await tick();
      expect(errors.map((e) => e instanceof SecurityError)).toEqual([true]);
      expect(s1.requests).toEqual([]);
      expect(totalConnections()).toBe(0);
    },
  );

  it('blocks every URL of the table in the transport itself, with no connection made', async () => {
    const { lookup } = recordingLookup();
    transport = await AxiosTransport.create({ lookup, maxResponseBody: 1024 }, swapping(selfSending));
    await expectEveryUrlBlocked(transport);
    expect(totalConnections()).toBe(0);
  });
});

describe.each(KINDS)('redirect from https to http, %s transport', (kind) => {
  const key = TLS_KEY;
  const cert = TLS_CERT;

  it('is refused as a downgrade, and the http target is never contacted', async () => {
    const tls = await listen('127.0.0.1', 0, { key, cert });
    const { lookup } = recordingLookup({ 'my.test': ['127.0.0.1'] });
    const transport = await transportOf(kind, { lookup, maxResponseBody: 1024, tls: { ca: cert } });
    try {
      const options = resolveThornOptions({
        allowRedirects: true,
        recipientValidators: [blockInternalIps({ allow: ['127.0.0.1/32'] })],
      });
      const delivery = new DeliveryService(options, transport);
      const port = (tls.server.address() as AddressInfo).port;
      tls.handle = (path, res) => {
        res.writeHead(302, { location: path === '/start' ? '/same-scheme' : `http://127.0.0.1:${P}/plain` });
        res.end();
      };
      const req: DeliveryRequest = {
        id: 'd',
        event: 'a.b',
        subscription: 's',
        url: `https://my.test:${port}/start`,
        contentType: 'application/json',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        settings: options,
        keepAlive: true,
        attempts: 0,
        source: 'static',
      };
      const outcome = await delivery.attempt(req);
      expect(outcome.verdict).toMatchObject({ ok: false, retryable: false });
      expect(outcome.error).toBeInstanceOf(SecurityError);
      expect(outcome.error?.message).toMatch(/downgrade from https/);
      expect(tls.requests.map((r) => r.path)).toEqual(['/start', '/same-scheme']);
      expect(s1.connections).toBe(0);
    } finally {
      await transport.close();
      await stop(tls);
    }
  });
});
