import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import request from 'supertest';
import {
  DeliveryService,
  Dispatcher,
  EventService,
  PayloadError,
  RecipientResolver,
  ThornModule,
  blockInternalIps,
  ensureProtocol,
  verify,
  sign,
  type EventEnvelope,
  type SendResult,
  type ThornModuleOptions,
} from '../../lib/index.js';
import type { Transport } from '../../lib/delivery/transport.js';
import { SubscriptionStore } from '../../lib/subscriptions/subscription.store.js';
import { THORN_TRANSPORT } from '../../lib/thorn.constants.js';
import { TestReceiver } from '../fixtures/receiver.js';

const loopback = () => [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http', 'https')];
let receiver: TestReceiver;
let ctx: INestApplicationContext | undefined;

beforeAll(async () => {
  receiver = await new TestReceiver().start();
});
afterAll(async () => {
  await receiver.stop();
});
afterEach(async () => {
  await ctx?.close();
  ctx = undefined;
  receiver.reset();
});

async function start(imports: any[]): Promise<EventService> {
  const moduleRef = await Test.createTestingModule({ imports }).compile();
  ctx = moduleRef.createNestApplication({ logger: false });
  await (ctx as any).init();
  return ctx.get(EventService);
}

const sqlite = () =>
  TypeOrmModule.forRoot({
    type: 'better-sqlite3',
    database: ':memory:',
    synchronize: true,
    autoLoadEntities: true,
  });

@Injectable()
class ThornConfig {
  createThornOptions(): ThornModuleOptions {
    return { recipientValidators: loopback(), subscribers: { 'cfg.*': `${receiver.url}/use-class` } };
  }
}
@Module({ providers: [ThornConfig], exports: [ThornConfig] })
class ConfigModule {}

describe('ThornModule registration styles', () => {
  it('forRoot with autoLoadEntities registers the Subscriber entity itself', async () => {
    const events = await start([sqlite(), ThornModule.forRoot({ recipientValidators: loopback() })]);
    const store = ctx!.get(SubscriptionStore);
    await store.repository.save(store.repository.create({ event: 'a.b', url: `${receiver.url}/stored` }));
    await events.send('a.b', { x: 1 });
    expect(receiver.requests.map((r) => r.path)).toEqual(['/stored']);
  });

  it('forRootAsync useFactory with inject', async () => {
    const events = await start([
      sqlite(),
      ConfigModule,
      ThornModule.forRootAsync({
        imports: [ConfigModule],
        inject: [ThornConfig],
        useFactory: (c: ThornConfig) => ({
          ...c.createThornOptions(),
          subscribers: { 'cfg.*': `${receiver.url}/factory` },
        }),
      }),
    ]);
    await events.send('cfg.x', {});
    expect(receiver.requests.map((r) => r.path)).toEqual(['/factory']);
  });

  it('forRootAsync useClass', async () => {
    const events = await start([sqlite(), ThornModule.forRootAsync({ useClass: ThornConfig })]);
    await events.send('cfg.x', {});
    expect(receiver.requests.map((r) => r.path)).toEqual(['/use-class']);
  });

  it('forRootAsync useExisting', async () => {
    const events = await start([
      sqlite(),
      ThornModule.forRootAsync({ imports: [ConfigModule], useExisting: ThornConfig }),
    ]);
    await events.send('cfg.y', {});
    expect(receiver.requests.map((r) => r.path)).toEqual(['/use-class']);
  });

  it('runs without TypeORM when subscriberEntity is false (static subscribers only)', async () => {
    const events = await start([
      ThornModule.forRoot({
        subscriberEntity: false,
        recipientValidators: loopback(),
        subscribers: { '#': `${receiver.url}/s` },
      }),
    ]);
    await events.send('any.thing', {});
    expect(receiver.requests).toHaveLength(1);
  });

  it('fails at start-up naming a bad option, also from forRootAsync', async () => {
    await expect(start([ThornModule.forRoot({ subscriberEntity: false, timeout: -5 })])).rejects.toThrow(
      /"timeout" is invalid/,
    );
    await expect(
      start([
        ThornModule.forRootAsync({
          subscriberEntity: false,
          useFactory: () => ({ dispatcher: 'bul' as any }),
        }),
      ]),
    ).rejects.toThrow(/"dispatcher" is invalid \(got "bul"\)/);
  });

  it('forRootAsync takes the extras next to useFactory: controller: false mounts no /hooks route', async () => {
    await start([sqlite(), ThornModule.forRootAsync({ useFactory: () => ({}) })]);
    await request((ctx as any).getHttpServer())
      .get('/hooks')
      .expect(401);
    await ctx!.close();
    await start([sqlite(), ThornModule.forRootAsync({ controller: false, useFactory: () => ({}) })]);
    await request((ctx as any).getHttpServer())
      .get('/hooks')
      .expect(404);
  });

  it.each(['controller', 'path', 'isGlobal', 'subscriberEntity', 'dataSource'])(
    'an extra returned by the async factory (%s) fails start-up, naming it and saying to pass it next to useFactory',
    async (extra) => {
      const value = {
        controller: false,
        path: 'webhooks',
        isGlobal: false,
        subscriberEntity: false,
        dataSource: 'x',
      }[extra];
      await expect(
        start([
          sqlite(),
          ThornModule.forRootAsync({ useFactory: () => ({ [extra]: value }) as ThornModuleOptions }),
        ]),
      ).rejects.toThrow(
        new RegExp(`extra "${extra}" was returned by the options factory.*next to useFactory`),
      );
    },
  );

  it('an option passed next to useFactory (where it would be ignored) fails start-up naming it', async () => {
    await expect(
      start([
        ThornModule.forRootAsync({ subscriberEntity: false, useFactory: () => ({}), timeout: 5 } as any),
      ]),
    ).rejects.toThrow(
      /option "timeout" was passed to forRootAsync\(\) next to the factory.*return it from useFactory/,
    );
    await expect(
      start([
        ThornModule.forRootAsync({ subscriberEntity: false, useFactory: () => ({}), timout: 5 } as any),
      ]),
    ).rejects.toThrow(/"timout" is invalid \(got 5\): unknown option/);
  });

  it('forRoot takes options and extras in one object (dataSource included)', async () => {
    const events = await start([
      sqlite(),
      ThornModule.forRoot({
        dataSource: 'default',
        controller: false,
        recipientValidators: loopback(),
        subscribers: { 'a.*': `${receiver.url}/together` },
      }),
    ]);
    await events.send('a.b', {});
    expect(receiver.requests.map((r) => r.path)).toEqual(['/together']);
  });

  it('fails at start-up naming the missing DataSource when TypeORM is not set up', async () => {
    await expect(start([ThornModule.forRoot({})])).rejects.toThrow(/DataSource/);
  });
});

@Injectable()
class RecordingDispatcher extends Dispatcher {
  readonly seen: EventEnvelope[] = [];
  constructor(
    readonly delivery: DeliveryService,
    readonly recipients: RecipientResolver,
  ) {
    super();
  }
  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    this.seen.push(envelope);
    const recipients = await this.recipients.resolve(envelope);
    return {
      event: envelope.name,
      deliveries: recipients.map((r) => ({
        subscription: r.id,
        url: r.url,
        deliveryId: 'x',
        ok: true,
        retrying: false,
      })),
    };
  }
}

const closed: string[] = [];
class ClosingDispatcher extends Dispatcher {
  constructor(private readonly label: string) {
    super();
  }
  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    return { event: envelope.name, deliveries: [] };
  }
  async close(): Promise<void> {
    closed.push(this.label);
  }
}
@Injectable()
class ModuleDispatcher extends ClosingDispatcher {
  constructor() {
    super('module dispatcher');
  }
}
@Injectable()
class EventDispatcher extends ClosingDispatcher {
  constructor() {
    super('event dispatcher');
  }
}

describe('dispatchers and sending', () => {
  const base = (o: ThornModuleOptions = {}) =>
    ThornModule.forRoot({ subscriberEntity: false, recipientValidators: loopback(), ...o });

  it('a custom Dispatcher class is created with DI and receives the envelope', async () => {
    const events = await start([
      base({ dispatcher: RecordingDispatcher, subscribers: { 'a.*': `${receiver.url}/a` } }),
    ]);
    const result = await events.send('a.b', { v: 1 }, { sender: 7, headers: { 'X-A': '1' }, timeout: 1234 });
    const d = ctx!.get(Dispatcher) as RecordingDispatcher;
    expect(d).toBeInstanceOf(RecordingDispatcher);
    expect(d.delivery).toBeInstanceOf(DeliveryService);
    expect(d.seen[0]).toMatchObject({ name: 'a.b', body: { v: 1 }, sender: '7', headers: { 'X-A': '1' } });
    expect(d.seen[0].settings.timeout).toBe(1234);
    expect(result.deliveries.map((x) => x.url)).toEqual([`${receiver.url}/a`]);
    expect(receiver.requests).toHaveLength(0);
  });

  it("app.close() closes each dispatcher once (the module's and an Event's own), then the transport", async () => {
    closed.length = 0;
    const events = await start([base({ dispatcher: ModuleDispatcher })]);
    await events.event('a.b', { dispatcher: EventDispatcher }).send({});
    await events.event('a.c', { dispatcher: EventDispatcher }).send({});
    const transport = ctx!.get<Transport>(THORN_TRANSPORT);
    const closeTransport = transport.close.bind(transport);
    transport.close = async () => {
      closed.push('transport');
      await closeTransport();
    };
    await ctx!.close();
    ctx = undefined;
    expect(closed).toEqual(['module dispatcher', 'event dispatcher', 'transport']);
  });

  it("the 'disabled' dispatcher sends nothing and does not call callback subscribers", async () => {
    let called = 0;
    const events = await start([
      base({ dispatcher: 'disabled', subscribers: { '#': () => (called++, `${receiver.url}/x`) } }),
    ]);
    const result = await events.send('a.b', {});
    expect(result.deliveries).toEqual([]);
    expect(called).toBe(0);
    expect(receiver.requests).toHaveLength(0);
  });

  it('an Event may choose its own dispatcher', async () => {
    const events = await start([base({ subscribers: { '#': `${receiver.url}/x` } })]);
    await events.event('quiet.one', { dispatcher: 'disabled' }).send({});
    await events.event('loud.one').send({});
    expect(receiver.requests.map((r) => r.headers['hook-event'])).toEqual(['loud.one']);
  });

  it("static, then stored-less, then the event's own subscribers, with callback context and form bodies", async () => {
    const contexts: unknown[] = [];
    const events = await start([
      base({
        defaultHmacSecret: 'module-secret',
        subscribers: {
          'order.*': [
            {
              url: `${receiver.url}/form`,
              contentType: 'application/x-www-form-urlencoded',
              hmacSecret: 'form-secret',
            },
            (_e: string, c: unknown) => (contexts.push(c), `${receiver.url}/callback`),
          ],
        },
      }),
    ]);
    const ev = events.event('order.paid', {
      subscribers: [`${receiver.url}/own`],
      requestData: { tenant: 't' },
    });
    await ev.send({ id: 9, items: [{ sku: 'a' }] }, { sender: 'u1', context: { instance: 9 } });
    expect(receiver.requests.map((r) => r.path)).toEqual(['/form', '/callback', '/own']);
    const form = receiver.requests[0];
    expect(form.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const fields = new URLSearchParams(form.text);
    expect(fields.get('id')).toBe('9');
    expect(JSON.parse(fields.get('items')!)).toEqual([{ sku: 'a' }]);
    expect(fields.get('tenant')).toBe('t');
    expect(verify(form.headers['hook-hmac'] as string, 'sha256', 'form-secret', form.body)).toBe(true);
    expect(
      verify(
        receiver.requests[1].headers['hook-hmac'] as string,
        'sha256',
        'module-secret',
        receiver.requests[1].body,
      ),
    ).toBe(true);
    expect(receiver.requests[2].json()).toEqual({ id: 9, items: [{ sku: 'a' }], tenant: 't' });
    expect(contexts).toEqual([{ instance: 9, sender: 'u1' }]);
    // JSON subscribers share one encoding: the exact same bytes
    expect(receiver.requests[1].text).toBe(receiver.requests[2].text);
  });

  it('subscribersFor lists who would receive an event', async () => {
    const events = await start([
      base({ subscribers: { 'a.*': `${receiver.url}/1`, 'b.*': `${receiver.url}/2` } }),
    ]);
    expect((await events.subscribersFor('a.x')).map((r) => r.url)).toEqual([`${receiver.url}/1`]);
  });

  it('an unencodable payload or an oversized body fails send() before any request', async () => {
    const events = await start([base({ maxPayloadSize: 1000, subscribers: { '#': `${receiver.url}/x` } })]);
    await expect(events.send('a.b', { f: () => 1 })).rejects.toThrow(PayloadError);
    await expect(events.send('a.b', { big: 'x'.repeat(2000) })).rejects.toThrow(
      /over maxPayloadSize \(1000\)/,
    );
    await events.send('a.b', { ok: true });
    expect(receiver.requests.map((r) => r.json())).toEqual([{ ok: true }]);
  });

  it('a blocked subscriber does not stop delivery to the others', async () => {
    const events = await start([
      base({
        subscribers: {
          'a.b': [`${receiver.url}/first`, `http://10.0.0.1/blocked`, `${receiver.url}/last`],
        },
      }),
    ]);
    const result = await events.send('a.b', {});
    expect(result.deliveries.map((d) => d.ok)).toEqual([true, false, true]);
    expect(receiver.requests.map((r) => r.path)).toEqual(['/first', '/last']);
  });

  it('a callback subscriber that throws, an async one that rejects, an unknown shape, an unknown content type and a signer that throws lose only themselves', async () => {
    const events = await start([
      base({
        hmacSigner: (digest, secret, body) => {
          if (secret === 'explode') throw new Error('signer down');
          if (secret === 'async') return Promise.resolve('x') as any;
          return sign(digest, secret, body);
        },
        codecs: {
          'text/broken': () => {
            throw new Error('codec down');
          },
        },
        subscribers: {
          'a.b': [
            `${receiver.url}/first`,
            () => {
              throw new Error('callback broke');
            },
            async () => Promise.reject(new Error('async callback broke')),
            42 as any,
            { url: `${receiver.url}/no-codec`, contentType: 'application/xml' },
            { url: `${receiver.url}/bad-signer`, hmacSecret: 'explode' },
            { url: `${receiver.url}/async-signer`, hmacSecret: 'async' },
            { url: `${receiver.url}/bad-codec`, contentType: 'text/broken' },
            `${receiver.url}/last`,
          ],
        },
      }),
    ]);
    const errors: string[] = [];
    const result = await events.send('a.b', { v: 1 }, { onError: (_r, e) => void errors.push(e.message) });
    expect(receiver.requests.map((r) => r.path)).toEqual(['/first', '/last']);
    expect(result.deliveries.map((d) => [d.url.replace(receiver.url, ''), d.ok])).toEqual([
      ['/first', true],
      ['/no-codec', false],
      ['/bad-signer', false],
      ['/async-signer', false],
      ['/bad-codec', false],
      ['/last', true],
    ]);
    expect(result.deliveries[1].error).toMatch(/No codec for content type "application\/xml"/);
    expect(result.deliveries[2].error).toMatch(/Signing failed.*signer down/);
    expect(result.deliveries[3].error).toMatch(/signer returned object, not a signature string/);
    expect(result.deliveries[4].error).toMatch(/The codec for "text\/broken" failed: codec down/);
    expect(result.deliveries.every((d) => !d.retrying)).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(4);
  });

  it('a module-scope Event sent before any ThornModule runs throws a clear error', async () => {
    const { Event } = await import('../../lib/index.js');
    await expect(new Event('too.early').send({})).rejects.toThrow(/no ThornModule is running/);
  });
});
