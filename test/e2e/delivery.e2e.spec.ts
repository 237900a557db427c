import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import type { INestApplication } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import {
  EventService,
  Subscriber,
  ThornModule,
  blockInternalIps,
  ensureProtocol,
  verify,
  Event,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { TestReceiver } from '../fixtures/receiver.js';
import { testDatabases } from '../fixtures/databases.js';

const loopback = () => [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http', 'https')];

describe.each(testDatabases)('delivery end to end ($name)', (db) => {
  let app: INestApplication;
  let receiver: TestReceiver;
  let events: EventService;
  let dataSource: DataSource;

  async function boot(options: ThornModuleOptions = {}) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot(db.options([Subscriber])),
        ThornModule.forRoot({ recipientValidators: loopback(), retryDelay: 50, ...options }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    events = app.get(EventService);
    dataSource = app.get(getDataSourceToken());
  }

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(async () => {
    await receiver.stop();
  });
  afterEach(async () => {
    await app?.close();
    receiver.reset();
  });

  it('delivers one signed POST to a stored subscription whose HMAC verifies with its secret and digest', async () => {
    await boot();
    const sub = await dataSource
      .getRepository(Subscriber)
      .save(
        dataSource
          .getRepository(Subscriber)
          .create({ event: 'article.*', url: `${receiver.url}/hook`, hmacDigest: 'SHA512' as any }),
      );
    expect(sub.hmacSecret).toHaveLength(64);
    expect(sub.hmacDigest).toBe('sha512');
    const result = await events.send('article.created', {
      id: 7,
      title: 'Hello',
      at: new Date('2026-01-02T03:04:05Z'),
    });
    expect(receiver.requests).toHaveLength(1);
    const req = receiver.requests[0];
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/hook');
    expect(req.json()).toEqual({ id: 7, title: 'Hello', at: '2026-01-02T03:04:05.000Z' });
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['hook-event']).toBe('article.created');
    expect(req.headers['hook-subscription']).toBe(sub.id);
    expect(req.headers['user-agent']).toMatch(/^nestjs-thorn\//);
    expect(verify(req.headers['hook-hmac'] as string, 'sha512', sub.hmacSecret, req.body)).toBe(true);
    expect(verify(req.headers['hook-hmac'] as string, 'sha512', 'wrong secret', req.body)).toBe(false);
    expect(result.deliveries).toEqual([
      expect.objectContaining({
        subscription: sub.id,
        ok: true,
        status: 200,
        deliveryId: req.headers['hook-delivery'],
        retrying: false,
      }),
    ]);
  });

  it("serves only the sender's and unowned subscriptions when a sender is given", async () => {
    await boot();
    const repo = dataSource.getRepository(Subscriber);
    await repo.save([
      repo.create({ event: 'article.created', url: `${receiver.url}/alice`, user: 'alice' }),
      repo.create({ event: 'article.#', url: `${receiver.url}/bob`, user: 'bob' }),
      repo.create({ event: '*', url: `${receiver.url}/nobody`, user: null }),
      repo.create({ event: 'user.*', url: `${receiver.url}/other-event`, user: null }),
    ]);
    await events.send('article.created', { n: 1 }, { sender: 'alice' });
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/alice', '/nobody']);
    receiver.reset();
    await events.send('article.created', { n: 2 });
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/alice', '/bob', '/nobody']);
    receiver.reset();
    await events.send('article.created', { n: 3 }, { sender: { id: 'bob' } });
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/bob', '/nobody']);
  });

  it('keeps serving other subscribers when one URL is blocked, and never connects to the blocked one', async () => {
    await boot({ recipientValidators: [blockInternalIps(), ensureProtocol('http', 'https')] });
    const repo = dataSource.getRepository(Subscriber);
    await repo.save(repo.create({ event: 'a.b', url: `${receiver.url}/blocked` }));
    const onError: Error[] = [];
    const result = await events.send('a.b', {}, { onError: (_r, e) => void onError.push(e) });
    expect(receiver.connections).toBe(0);
    expect(result.deliveries[0]).toMatchObject({ ok: false, retrying: false });
    expect(result.deliveries[0].error).toMatch(/blocked/i);
    await new Promise((r) => setImmediate(r));
    expect(onError.map((e) => e.name)).toEqual(['SecurityError']);
  });

  it('retries a failed delivery with the same Hook-Delivery and headers, then calls onSuccess once', async () => {
    await boot({ subscribers: { 'x.y': { url: `${receiver.url}/static`, hmacSecret: 's3cret' } } });
    receiver.reply = (_r, i) => ({ status: i < 2 ? 500 : 200 });
    const successes: string[] = [];
    const result = await events.send(
      'x.y',
      { v: 1 },
      { headers: { 'X-Tenant': 't1', 'Hook-Event': 'forged' }, onSuccess: (r) => void successes.push(r.id) },
    );
    expect(result.deliveries[0]).toMatchObject({ ok: false, status: 500, retrying: true });
    await receiver.waitFor(3);
    const ids = receiver.requests.map((r) => r.headers['hook-delivery']);
    expect(new Set(ids).size).toBe(1);
    expect(receiver.requests.map((r) => r.headers['x-tenant'])).toEqual(['t1', 't1', 't1']);
    expect(receiver.requests.map((r) => r.headers['hook-event'])).toEqual(['x.y', 'x.y', 'x.y']);
    expect(receiver.requests.map((r) => r.headers['hook-hmac'])).toEqual(
      Array(3).fill(receiver.requests[0].headers['hook-hmac']),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(successes).toEqual([ids[0]]);
  });

  it('keeps __proto__ and constructor keys of the data and requestData in the JSON body', async () => {
    await boot({ subscribers: { 'p.q': `${receiver.url}/proto` } });
    const raw = '{"__proto__":{"admin":true},"constructor":{"name":"c"},"nested":{"__proto__":[1]}}';
    const requestData = JSON.parse('{"__proto__":"rd"}');
    await events.send('p.q', JSON.parse(raw), { event: { requestData } });
    expect(receiver.requests.map((r) => r.text)).toEqual([
      '{"__proto__":"rd","constructor":{"name":"c"},"nested":{"__proto__":[1]}}',
    ]);
    receiver.reset();
    await events.send('p.q', JSON.parse(raw));
    expect(receiver.requests.map((r) => r.text)).toEqual([raw]);
  });

  it('binds a module-scope Event to the running module', async () => {
    const onPing = new Event('ping.sent', { requestData: { origin: 'test' } });
    await boot({ subscribers: { 'ping.*': `${receiver.url}/ping` } });
    await onPing.send({ n: 1 });
    expect(receiver.requests.map((r) => r.json())).toEqual([{ n: 1, origin: 'test' }]);
    expect(receiver.requests[0].headers['hook-hmac']).toBeUndefined();
  });
});

describe('connections and messages', () => {
  let app: INestApplication;
  let receiver: TestReceiver;
  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(async () => {
    await app?.close();
    await receiver.stop();
  });

  it('reuses one keep-alive connection per origin, and opens one per request with allowKeepalive: false', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ThornModule.forRoot({
          subscriberEntity: false,
          recipientValidators: loopback(),
          retry: false,
          timeout: 300,
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const events = app.get(EventService);
    // without keep-alive first: a request may still ride on an already-open pooled connection (then closes it)
    const single = events.event('pool.off', { subscribers: [`${receiver.url}/b`], allowKeepalive: false });
    // (a tick between sends: undici's pool still counts a connection busy in the tick its answer completes)
    const tick = () => new Promise((r) => setImmediate(r));
    for (let i = 0; i < 6; i++) await single.send({ i }).then(tick);
    expect(receiver.connections).toBe(6);
    const pooled = events.event('pool.on', { subscribers: [`${receiver.url}/a`] });
    for (let i = 0; i < 6; i++) await pooled.send({ i }).then(tick);
    expect(receiver.requests).toHaveLength(12);
    expect(receiver.connections).toBe(7);
  });

  it('never puts URL credentials or query strings in error messages', async () => {
    receiver.reply = () => ({ status: 200, delayMs: 1000 });
    const events = app.get(EventService);
    const url = `${receiver.url.replace('http://', 'http://user:hunter2@')}/slow?token=SECRET`;
    const result = await events.event('secret.url', { subscribers: [url] }).send({});
    expect(result.deliveries[0].error).toMatch(
      /^No answer from http:\/\/127\.0\.0\.1:\d+\/slow within 300 ms$/,
    );
    receiver.reply = () => ({ status: 200 });
  });
});
