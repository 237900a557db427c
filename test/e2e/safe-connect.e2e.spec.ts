import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { createSafeConnector } from '../../lib/delivery/safe-connect.js';
import { SecurityError } from '../../lib/delivery/security-error.js';
import {
  blockCidrNetwork,
  blockInternalIps,
  defaultRecipientValidators,
  ensureProtocol,
  type LookupLike,
  type RecipientValidator,
} from '../../lib/delivery/validators.js';
import { TLS_CERT, TLS_KEY } from '../fixtures/tls.js';

/** A loopback receiver that records connections and requests. */
interface Receiver {
  server: http.Server;
  port: number;
  connections: number;
  requests: { host?: string; localAddress?: string; servername?: string | false | null }[];
}

async function listen(host: string, port = 0, tls = false): Promise<Receiver> {
  const rec = { connections: 0, requests: [] } as unknown as Receiver;
  const handler: http.RequestListener = (req, res) => {
    rec.requests.push({
      host: req.headers.host,
      localAddress: req.socket.localAddress,
      servername: (req.socket as TLSSocket).servername,
    });
    // A fresh connection (and so a fresh lookup) for every request, as after a keep-alive timeout.
    res.setHeader('connection', 'close');
    res.end('ok');
  };
  rec.server = tls
    ? https.createServer({ key: TLS_KEY, cert: TLS_CERT }, handler)
    : http.createServer(handler);
  rec.server.on('connection', () => rec.connections++);
  await new Promise<void>((resolve, reject) => {
    rec.server.once('error', reject);
    rec.server.listen(port, host, () => resolve());
  });
  rec.port = (rec.server.address() as AddressInfo).port;
  return rec;
}

async function close(rec: Receiver | undefined): Promise<void> {
  if (!rec) return;
  rec.server.closeAllConnections();
  await new Promise<void>((resolve) => rec.server.close(() => resolve()));
}

/** A resolver that gives the next answer of `answers[hostname]` on each call and counts calls. */
function sequenceLookup(answers: Record<string, string[][]>) {
  const calls: string[] = [];
  const lookup: LookupLike = (hostname, _opts, cb) => {
    const n = calls.filter((h) => h === hostname).length;
    calls.push(hostname);
    const seq = answers[hostname];
    if (!seq) {
      cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
      return;
    }
    const list = seq[Math.min(n, seq.length - 1)];
    cb(
      null,
      list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
  return { lookup, calls };
}

async function get(agent: Agent, url: string): Promise<{ status: number; body: string }> {
  const res = await request(url, { dispatcher: agent });
  return { status: res.statusCode, body: await res.body.text() };
}

async function failure(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the request to fail');
}

const loopbackOk = (): RecipientValidator[] => [
  blockInternalIps({ allow: ['127.0.0.0/8'] }),
  ensureProtocol('http'),
];

describe('createSafeConnector', () => {
  let main: Receiver; // 127.0.0.1:P, the validated target
  let internal: Receiver; // 127.0.0.2:P, stands in for an internal service a rebinding answer points at
  let agent: Agent | undefined;

  beforeAll(async () => {
    main = await listen('127.0.0.1');
    internal = await listen('127.0.0.2', main.port);
  });
  afterAll(async () => {
    await close(main);
    await close(internal);
  });
  beforeEach(() => {
    for (const r of [main, internal]) {
      r.connections = 0;
      r.requests = [];
    }
  });
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });

  const makeAgent = (opts: Parameters<typeof createSafeConnector>[0]) =>
    (agent = new Agent({ connect: createSafeConnector(opts) }));

  it('connects to an allowed loopback receiver', async () => {
    const a = makeAgent({ validators: loopbackOk() });
    const res = await get(a, `http://127.0.0.1:${main.port}/hook`);
    expect(res).toEqual({ status: 200, body: 'ok' });
    expect(main.connections).toBe(1);
    expect(main.requests).toEqual([
      { host: `127.0.0.1:${main.port}`, localAddress: '127.0.0.1', servername: undefined },
    ]);
  });

  it('fails a blocked target with the SecurityError itself and opens no connection', async () => {
    const a = makeAgent({ validators: defaultRecipientValidators() });
    for (const url of [
      `http://127.0.0.1:${main.port}/`,
      `http://127.0.0.1/`,
      `http://[::ffff:127.0.0.1]:${main.port}/`,
    ]) {
      const err = await failure(get(a, url));
      expect(err).toBeInstanceOf(SecurityError);
      expect(err.name).toBe('SecurityError');
    }
    expect(main.connections).toBe(0);
  });

  it('resolves once per connection and connects to the address it validated (DNS rebinding)', async () => {
    // First answer: the allowed receiver. Second answer: the "internal" one, which the validators block.
    const { lookup, calls } = sequenceLookup({ 'rebind.test': [['127.0.0.1'], ['127.0.0.2']] });
    const a = makeAgent({ validators: [...loopbackOk(), blockCidrNetwork('127.0.0.2/32')], lookup });
    const url = `http://rebind.test:${main.port}/`;

    expect(await get(a, url)).toEqual({ status: 200, body: 'ok' });
    expect(calls).toEqual(['rebind.test']);
    expect(main.connections).toBe(1);
    expect(internal.connections).toBe(0);

    // The receiver closed the connection, so the next request connects (and resolves) again: now to a blocked answer.
    const err = await failure(get(a, url));
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).toContain('127.0.0.2');
    expect(calls).toEqual(['rebind.test', 'rebind.test']);
    expect(main.connections).toBe(1);
    expect(internal.connections).toBe(0);
  });

  it('refuses the host when any one answer is blocked, even if another is allowed', async () => {
    const { lookup, calls } = sequenceLookup({ 'multi.test': [['127.0.0.1', '127.0.0.2']] });
    const a = makeAgent({ validators: [...loopbackOk(), blockCidrNetwork('127.0.0.2/32')], lookup });
    const err = await failure(get(a, `http://multi.test:${main.port}/`));
    expect(err).toBeInstanceOf(SecurityError);
    expect(calls).toHaveLength(1);
    expect(main.connections + internal.connections).toBe(0);
  });

  it('blocks a public-then-loopback multi-answer with the default validators before connecting', async () => {
    const { lookup } = sequenceLookup({ 'evil.test': [['93.184.216.34', '127.0.0.1']] });
    const a = makeAgent({ validators: defaultRecipientValidators(), lookup });
    const err = await failure(get(a, 'http://evil.test/'));
    expect(err).toBeInstanceOf(SecurityError);
    expect(main.connections).toBe(0);
  });

  it('connects to the resolved address and keeps the hostname in the Host header', async () => {
    const { lookup, calls } = sequenceLookup({ 'my.test': [['127.0.0.1']] });
    const a = makeAgent({ validators: loopbackOk(), lookup });
    expect(await get(a, `http://my.test:${main.port}/`)).toEqual({ status: 200, body: 'ok' });
    expect(calls).toEqual(['my.test']);
    expect(main.requests).toEqual([
      { host: `my.test:${main.port}`, localAddress: '127.0.0.1', servername: undefined },
    ]);
  });

  it('tries the next validated address when one is unreachable', async () => {
    // Nothing listens on 127.0.0.3:P, so the first address is refused.
    const { lookup } = sequenceLookup({ 'two.test': [['127.0.0.3', '127.0.0.1']] });
    const a = makeAgent({ validators: loopbackOk(), lookup });
    expect(await get(a, `http://two.test:${main.port}/`)).toEqual({ status: 200, body: 'ok' });
    expect(main.connections).toBe(1);
  });

  it('passes DNS errors through (not as SecurityError)', async () => {
    const { lookup } = sequenceLookup({});
    const a = makeAgent({ validators: loopbackOk(), lookup });
    const err = await failure(get(a, `http://nx.test:${main.port}/`));
    expect(err).not.toBeInstanceOf(SecurityError);
    expect(err.code).toBe('ENOTFOUND');
  });

  it('bounds a lookup that never answers by connectTimeout', async () => {
    const hang: LookupLike = () => {};
    const a = makeAgent({ validators: loopbackOk(), lookup: hang, connectTimeout: 100 });
    const err = await failure(get(a, `http://hang.test:${main.port}/`));
    expect(err.code).toBe('UND_ERR_CONNECT_TIMEOUT');
    expect(main.connections).toBe(0);
  });
});

describe('createSafeConnector over IPv6', () => {
  let v6: Receiver | undefined;
  let agent: Agent | undefined;

  beforeAll(async () => {
    v6 = await listen('::1').catch(() => undefined); // hosts without IPv6 loopback skip these checks
  });
  afterAll(() => close(v6));
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });

  it('connects to an allowed IPv6 literal and to an AAAA answer', async () => {
    if (!v6) return;
    const { lookup } = sequenceLookup({ 'v6.test': [['::1']] });
    agent = new Agent({
      connect: createSafeConnector({
        validators: [blockInternalIps({ allow: ['::1/128'] }), ensureProtocol('http')],
        lookup,
      }),
    });
    expect(await get(agent, `http://[::1]:${v6.port}/`)).toEqual({ status: 200, body: 'ok' });
    expect(await get(agent, `http://v6.test:${v6.port}/`)).toEqual({ status: 200, body: 'ok' });
    expect(v6.requests.map((r) => [r.host, r.localAddress])).toEqual([
      [`[::1]:${v6.port}`, '::1'],
      [`v6.test:${v6.port}`, '::1'],
    ]);
  });

  it('blocks ::1 with the default validators without connecting', async () => {
    if (!v6) return;
    const before = v6.connections;
    agent = new Agent({ connect: createSafeConnector({ validators: defaultRecipientValidators() }) });
    const err = await failure(get(agent, `http://[::1]:${v6.port}/`));
    expect(err).toBeInstanceOf(SecurityError);
    expect(v6.connections).toBe(before);
  });
});

describe('createSafeConnector over TLS', () => {
  let tls: Receiver;
  let agent: Agent | undefined;
  const validators = [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('https')];

  beforeAll(async () => {
    tls = await listen('127.0.0.1', 0, true);
  });
  afterAll(() => close(tls));
  beforeEach(() => {
    tls.requests = [];
  });
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });

  it('sends SNI and verifies the certificate for the hostname, not the IP connected to', async () => {
    const { lookup } = sequenceLookup({ 'my.test': [['127.0.0.1']] });
    agent = new Agent({ connect: createSafeConnector({ validators, lookup, tls: { ca: TLS_CERT } }) });
    expect(await get(agent, `https://my.test:${tls.port}/`)).toEqual({ status: 200, body: 'ok' });
    expect(tls.requests).toEqual([
      { host: `my.test:${tls.port}`, localAddress: '127.0.0.1', servername: 'my.test' },
    ]);
  });

  it('rejects a certificate that does not name the hostname', async () => {
    const { lookup } = sequenceLookup({ 'other.test': [['127.0.0.1']] });
    agent = new Agent({ connect: createSafeConnector({ validators, lookup, tls: { ca: TLS_CERT } }) });
    for (const url of [`https://other.test:${tls.port}/`, `https://127.0.0.1:${tls.port}/`]) {
      const err = await failure(get(agent, url));
      expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    }
    expect(tls.requests).toEqual([]);
  });

  it('calls back with an error the connect step throws (never an unhandled rejection or a hang)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      // tls.connect() throws synchronously for a `ca` of the wrong type instead of calling back
      const connect = createSafeConnector({ validators, tls: { ca: 42 as unknown as string } });
      const err = await new Promise<Error | null>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the connector never called back')), 3000);
        connect({ protocol: 'https:', hostname: '127.0.0.1', port: String(tls.port) } as never, (...args) => {
          clearTimeout(timer);
          resolve(args[0]);
        });
      });
      expect(err).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
      expect(tls.requests).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('rejects an untrusted certificate by default', async () => {
    const { lookup } = sequenceLookup({ 'my.test': [['127.0.0.1']] });
    agent = new Agent({ connect: createSafeConnector({ validators, lookup }) });
    const err = await failure(get(agent, `https://my.test:${tls.port}/`));
    expect(err.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(tls.requests).toEqual([]);
  });
});
