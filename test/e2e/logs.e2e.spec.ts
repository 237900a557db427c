// Structured logs across failure paths, captured from a real app (real receiver on 127.0.0.1, real SQLite/PostgreSQL,
// real Redis stand-ins): every warning and error names the event, the delivery id and the subscription id where they
// exist (`event=… delivery=… subscription=…`), and never a secret, URL credentials or a query string.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { DataSource } from 'typeorm';
import {
  EventService,
  Subscriber,
  THORN_LEDGER_ENTITIES,
  ThornModule,
  type ThornModuleExtras,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { ThornLedger } from '../../lib/ledger/ledger.js';
import { testDatabases } from '../fixtures/databases.js';
import { CapturingLogger } from '../fixtures/log.js';
import { createSchema, loopback, modelDbOptions } from '../fixtures/model-app.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SCHEMA = 'thorn_logs';
const SECRET = `whsec-never-logged-${randomUUID()}`;
const TOKEN = `tok-${randomUUID()}`;
const PASSWORD = `pw-${randomUUID()}`;

/** A port with nothing listening (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('structured logs', () => {
  const receiver = new TestReceiver();
  const apps: INestApplication[] = [];
  let logs: CapturingLogger;
  /** The receiver's URL with credentials and a query string, which no log line may show. */
  let secretUrl: (path: string) => string;
  /** The same URL as logs may show it. */
  let cleanUrl: (path: string) => string;

  async function boot(options: ThornModuleOptions & ThornModuleExtras, database?: object) {
    logs = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [
        ...(database ? [TypeOrmModule.forRoot(database as any)] : []),
        ThornModule.forRoot({
          controller: false,
          recipientValidators: loopback(),
          ...(database ? { subscriptionCacheTtl: 0 } : { subscriberEntity: false }),
          ...options,
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: logs });
    await app.init();
    apps.push(app);
    return app;
  }

  /** Every line logged so far: none holds a secret, credentials or a query string. */
  function expectNothingSecret(): void {
    const text = logs.lines.join('\n');
    for (const leak of [SECRET, TOKEN, PASSWORD, 'pa55word', 'alice:', 'token=', 'frag']) {
      expect(text).not.toContain(leak);
    }
  }

  beforeAll(async () => {
    await receiver.start();
    const port = new URL(receiver.url).port;
    secretUrl = (path) => `http://alice:pa55word@127.0.0.1:${port}${path}?token=${TOKEN}#frag`;
    cleanUrl = (path) => `http://127.0.0.1:${port}${path}`;
  });
  afterAll(() => receiver.stop());
  afterEach(async () => {
    receiver.reset();
    for (const app of apps.splice(0)) await app.close();
  });

  it('a delivery failed after its retries: event, delivery, subscription and the clean URL', async () => {
    receiver.reply = () => ({ status: 503 });
    const app = await boot({
      retryMax: 1,
      retryDelay: 10,
      subscribers: { 'order.*': { url: secretUrl('/fail'), hmacSecret: SECRET } },
    });
    const [d] = (await app.get(EventService).send('order.paid', { id: 1 })).deliveries;
    const line = await logs.waitFor(/Delivery failed/);
    expect(line).toBe(
      `warn: Delivery failed after 2 attempt(s): ${cleanUrl('/fail')} answered 503 ` +
        `event=order.paid delivery=${d.deliveryId} subscription=${d.subscription} url=${cleanUrl('/fail')}`,
    );
    expect(receiver.requests[0].path).toBe(`/fail?token=${TOKEN}`); // the receiver did get its query string
    expectNothingSecret();
  });

  it('a signer that throws (quoting the secret and a URL): the ids, not the secret', async () => {
    const app = await boot({
      hmacSigner: (_digest, secret) => {
        throw new Error(`cannot sign with ${secret} for http://bob:${PASSWORD}@h/x?token=${TOKEN}`);
      },
      subscribers: { 'order.*': { url: secretUrl('/signed'), hmacSecret: SECRET } },
    });
    const [d] = (await app.get(EventService).send('order.signed', {})).deliveries;
    expect(d.ok).toBe(false);
    const line = await logs.waitFor(/Delivery failed/);
    expect(line).toContain('Signing failed for subscription');
    expect(line).toContain('cannot sign with [secret] for http://h/x');
    expect(line).toMatch(
      new RegExp(
        ` event=order\\.signed delivery=${d.deliveryId} subscription=\\S+ url=http://127\\.0\\.0\\.1:\\d+/signed$`,
      ),
    );
    expect(receiver.requests).toHaveLength(0);
    expectNothingSecret();
  });

  describe.each(testDatabases)('with a database ($name)', (db) => {
    const database = (entities: object[]) => modelDbOptions(db, SCHEMA, entities as any);
    const table = (name: string) => (db.name === 'postgres' ? `"${SCHEMA}".${name}` : name);

    beforeAll(() => createSchema(db, SCHEMA));

    it('410 Gone: the failed delivery and the disabled subscription name event, delivery and subscription', async () => {
      receiver.reply = () => ({ status: 410 });
      const app = await boot({}, database([]));
      const repo = app.get<DataSource>(getDataSourceToken()).getRepository(Subscriber);
      const sub = await repo.save(
        repo.create({ event: 'user.*', url: secretUrl('/gone'), hmacSecret: SECRET }),
      );
      const [d] = (await app.get(EventService).send('user.left', {})).deliveries;
      expect(d).toMatchObject({ ok: false, status: 410, subscription: sub.id });
      const disabled = await logs.waitFor(/disabled \(gone\)/);
      expect(disabled).toContain(`Subscription ${sub.id} disabled (gone)`);
      expect(disabled).toMatch(
        new RegExp(
          ` event=user\\.left delivery=${d.deliveryId} subscription=${sub.id} url=${cleanUrl('/gone')}$`,
        ),
      );
      const failed = await logs.waitFor(/Delivery failed/);
      expect(failed).toContain(`event=user.left delivery=${d.deliveryId} subscription=${sub.id}`);
      expectNothingSecret();
    });

    it('the ledger cannot write its attempts: the error names the deliveries', async () => {
      const app = await boot(
        {
          ledger: { pollInterval: 100 },
          subscriberEntity: false,
          subscribers: { 'memo.*': { url: secretUrl('/memo'), hmacSecret: SECRET } },
        },
        database([...THORN_LEDGER_ENTITIES]),
      );
      const ds = app.get<DataSource>(getDataSourceToken());
      await app.get(ThornLedger).idle(); // the relay's first round (and its pruning) is over
      await ds.query(`DROP TABLE ${table('thorn_attempt')}`);
      await app.get(EventService).send('memo.saved', {});
      await receiver.waitFor(1);
      const line = await logs.waitFor(/Writing delivery attempts failed/);
      const [delivery, ...more] = await ds.query(`SELECT id FROM ${table('thorn_delivery')}`);
      expect(more).toEqual([]);
      expect(line).toMatch(/^error: Writing delivery attempts failed \(retried once their claim expires\): /);
      expect(line).toMatch(new RegExp(` delivery=${delivery.id}$`));
      // shut down without waiting for the writes that can never succeed
      await app.get(ThornLedger).relay.stop();
      expectNothingSecret();
    });

    it('Redis down (ledger + bull): the deliveries waiting in the ledger are named; the Redis password is not', async () => {
      const dead = await closedPort();
      const app = await boot(
        {
          ledger: { pollInterval: 100 },
          dispatcher: 'bull',
          bull: { url: `redis://:${PASSWORD}@127.0.0.1:${dead}`, prefix: `logs-${randomUUID()}` },
          worker: false,
          enqueueTimeout: 200,
          subscriberEntity: false,
          subscribers: { 'memo.*': { url: secretUrl('/memo'), hmacSecret: SECRET } },
        },
        database([...THORN_LEDGER_ENTITIES]),
      );
      const ds = app.get<DataSource>(getDataSourceToken());
      const sent = await app.get(EventService).send('memo.queued', {});
      expect(sent.recorded).toBe(true); // Redis being down does not fail send()
      const line = await logs.waitFor(/deliveries wait in the ledger/);
      const [delivery] = await ds.query(`SELECT id FROM ${table('thorn_delivery')}`);
      expect(line).toMatch(/^warn: 1 deliveries wait in the ledger: .* \(claimed again in \d+ ms\) /);
      expect(line).toMatch(new RegExp(` event=memo\\.queued delivery=${delivery.id}$`));
      await logs.waitFor(/Bull queue/); // the connection errors are logged too, without the password
      expectNothingSecret();
    });
  });
});
