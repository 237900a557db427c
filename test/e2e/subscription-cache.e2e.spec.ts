import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { Column, DataSource, type DataSourceOptions, Entity, PrimaryGeneratedColumn } from 'typeorm';
import {
  EventService,
  ModelEvent,
  Subscriber,
  ThornModule,
  WebhookModel,
  type ThornModuleExtras,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { MAX_CACHED_PATTERNS } from '../../lib/subscriptions/pattern-cache.js';
import { SubscriptionStore } from '../../lib/subscriptions/subscription.store.js';
import { ModelEventEmitter } from '../../lib/typeorm/model-event.emitter.js';
import { testDatabases } from '../fixtures/databases.js';
import { CapturingLogger } from '../fixtures/log.js';
import { createSchema, loopback, QueryLog } from '../fixtures/model-app.js';
import { TestReceiver } from '../fixtures/receiver.js';

/** A custom subscription entity: the same columns, its own table. */
@Entity('app_hook')
class AppHook extends Subscriber {}

/** A decorated entity whose saves raise `probe.created`. */
@WebhookModel()
@ModelEvent('probe.created', { on: 'create' })
@Entity('cache_probe')
class Probe {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  title!: string;
}

/** The module's default `subscriptionCacheTtl`: the staleness bound under test. */
const TTL = 1000;
const SCHEMA = 'thorn_cache';

describe.each(testDatabases)('stored-subscription pattern cache ($name)', (db) => {
  const pg = db.name === 'postgres';
  let dir: string;
  let file: string;
  let app: INestApplication | undefined;
  /** A second connection to the same database: "another process" (raw SQL, no Thorn, no TypeORM entities). */
  let other: DataSource;
  let receiver: TestReceiver;

  const table = (name: string) => (pg ? `"${SCHEMA}"."${name}"` : `"${name}"`);
  /** Raw SQL on the other connection, `?` placeholders on both databases. */
  const sql = (text: string, params: unknown[] = []) => {
    let i = 0;
    return other.query(pg ? text.replace(/\?/g, () => `$${++i}`) : text, params);
  };
  const insertRow = (tableName: string, event: string, path: string) =>
    sql(
      `INSERT INTO ${table(tableName)} ("id", "event", "url", "user", "hmacSecret") VALUES (?, ?, ?, NULL, ?)`,
      [randomUUID(), event, `${receiver.url}${path}`, 'a-secret'],
    );
  const versionOf = async (tableName: string): Promise<number | null> => {
    const rows = await sql(
      `SELECT "version" FROM ${table('thorn_subscriber_version')} WHERE "table_name" = ?`,
      [tableName],
    );
    return rows.length ? Number(rows[0].version) : null;
  };

  const dbOptions = (entities: (new () => object)[], dropSchema = true): DataSourceOptions =>
    pg
      ? ({ ...db.options(entities), schema: SCHEMA, dropSchema } as DataSourceOptions)
      : { type: 'better-sqlite3', database: file, entities, synchronize: true, dropSchema };

  async function boot(
    options: ThornModuleOptions & ThornModuleExtras = {},
    {
      queries,
      logger,
      dropSchema = true,
    }: { queries?: QueryLog; logger?: CapturingLogger; dropSchema?: boolean } = {},
  ) {
    const entity = options.subscriberEntity ?? Subscriber;
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot({
          ...dbOptions(entity ? [entity, Probe] : [Probe], dropSchema),
          ...(queries ? { logging: ['query'], logger: queries } : {}),
        } as DataSourceOptions),
        ThornModule.forRoot({
          recipientValidators: loopback(),
          retry: false,
          getUser: (req: any) => req.headers['x-user'],
          ...options,
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: logger ?? false });
    await app.listen(0, '127.0.0.1');
    return {
      events: app.get(EventService),
      store: app.get(SubscriptionStore, { strict: false }),
      dataSource: app.get<DataSource>(getDataSourceToken()),
      settle: () => app!.get(ModelEventEmitter, { strict: false }).idle(),
    };
  }

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    dir = mkdtempSync(join(tmpdir(), 'thorn-cache-'));
    file = join(dir, 'shared.sqlite');
    await createSchema(db, SCHEMA);
  });
  afterAll(async () => {
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    if (other?.isInitialized) await other.destroy();
    receiver.reset();
  });

  async function connectOther() {
    other = new DataSource(
      pg
        ? ({ type: 'postgres', url: process.env.THORN_TEST_PG_URL, schema: SCHEMA } as DataSourceOptions)
        : { type: 'better-sqlite3', database: file },
    );
    await other.initialize();
  }

  /**
   * The staleness bound: after `write` (on the other connection) has returned, sends `event` every ~25 ms for
   * TTL + 600 ms (bounded); every send that starts more than TTL after the write returned must reach the receiver.
   * Returns the sends made within the bound, whose outcome the cache may decide either way.
   */
  async function expectMatchedAfterBound(events: EventService, event: string, write: () => Promise<unknown>) {
    await write();
    const bound = performance.now() + TTL;
    const sends: { at: number; ok: number; paths: string[] }[] = [];
    while (performance.now() < bound + 600) {
      const at = performance.now();
      const before = receiver.requests.length;
      const result = await events.send(event, { at });
      sends.push({
        at,
        ok: result.deliveries.filter((d) => d.ok).length,
        paths: receiver.requests.slice(before).map((r) => r.path),
      });
      await sleep(25);
    }
    const after = sends.filter((s) => s.at > bound);
    expect(after.length).toBeGreaterThan(3);
    for (const s of after) expect(s).toEqual({ at: s.at, ok: 1, paths: [`/${event}`] });
    return sends.filter((s) => s.at <= bound);
  }

  describe.each([
    ['Subscriber', Subscriber, 'thorn_subscriber'],
    ['a custom subscriberEntity', AppHook, 'app_hook'],
  ] as const)('with %s', (_label, entity, tableName) => {
    it('creates the version row and triggers at start-up; every change of the stored patterns bumps it, nothing else does', async () => {
      await boot({ subscriberEntity: entity });
      await connectOther();
      let v = await versionOf(tableName);
      expect(v).not.toBeNull();
      const bumped = async (write: () => Promise<unknown>, by: number) => {
        await write();
        const now = await versionOf(tableName);
        expect(now! - v!).toBe(by);
        v = now;
      };
      await bumped(() => insertRow(tableName, 'a.created', '/a'), 1);
      await bumped(() => sql(`UPDATE ${table(tableName)} SET "url" = ?`, ['https://hooks.example.com/b']), 0);
      await bumped(() => sql(`UPDATE ${table(tableName)} SET "event" = ?`, ['a.changed']), 1);
      await bumped(() => sql(`DELETE FROM ${table(tableName)} WHERE "event" = ?`, ['nothing']), pg ? 1 : 0);
      await bumped(() => sql(`DELETE FROM ${table(tableName)}`), 1);
      if (pg) {
        await insertRow(tableName, 'a.created', '/a');
        v = await versionOf(tableName);
        await bumped(() => sql(`TRUNCATE ${table(tableName)}`), 1);
      }
    });

    it('a subscription written by another connection (raw SQL) is matched by every send after the bound', async () => {
      const { events, store } = await boot({ subscriberEntity: entity });
      expect(store.patternCache?.ttl).toBe(TTL);
      await connectOther();
      // a warm cache that holds the stored patterns, none of which matches yet
      await insertRow(tableName, 'unrelated.created', '/unrelated');
      expect((await events.send('cache.probe', {})).deliveries).toEqual([]);
      expect((await events.send('cache.probe', {})).deliveries).toEqual([]);
      expect(store.patternCache?.size).toBe(1);

      // an INSERT
      await expectMatchedAfterBound(events, 'cache.probe', () =>
        insertRow(tableName, 'cache.*', '/cache.probe'),
      );
      // an UPDATE of the pattern
      await insertRow(tableName, 'not.yet', '/renamed.probe');
      await expectMatchedAfterBound(events, 'renamed.probe', () =>
        sql(`UPDATE ${table(tableName)} SET "event" = ? WHERE "event" = ?`, ['renamed.probe', 'not.yet']),
      );
      // the version row itself removed: nothing bumps it any more, so the cache stops answering
      await expectMatchedAfterBound(events, 'orphan.probe', async () => {
        await sql(`DELETE FROM ${table('thorn_subscriber_version')} WHERE "table_name" = ?`, [tableName]);
        await insertRow(tableName, 'orphan.probe', '/orphan.probe');
      });
      expect(store.patternCache?.size).toBeNull();
    });
  });

  it('with a warm cache and no matching stored pattern, save() runs no subscription query; own writes count at once', async () => {
    const queries = new QueryLog();
    const { dataSource, settle } = await boot(
      // a bound far longer than the test: only invalidation can make a new subscription visible
      { subscriptionCacheTtl: 60_000, subscribers: { 'probe.created': `${receiver.url}/static` } },
      { queries },
    );
    const probes = dataSource.getRepository(Probe);
    const subs = dataSource.getRepository(Subscriber);
    await subs.save(subs.create({ event: 'other.created', url: `${receiver.url}/other` }));
    await probes.save(probes.create({ title: 'warm-up' }));
    await settle();
    await receiver.waitFor(1);

    const mark = queries.queries.length;
    for (let i = 0; i < 20; i++) await probes.save(probes.create({ title: `p${i}` }));
    await settle();
    // every save raised its event and resolved its recipients (the static one got it) …
    await receiver.waitFor(21);
    expect(receiver.requests.map((r) => r.path)).toEqual(Array(21).fill('/static'));
    // … without a stored-subscription lookup, nor a version read
    const window = queries.queries.slice(mark);
    expect(window.filter((q) => /INSERT INTO "?(thorn_cache"?\.)?"?cache_probe/.test(q))).toHaveLength(20);
    expect(window.filter((q) => q.includes('thorn_subscriber'))).toEqual([]);

    // a subscription created through this process's /hooks API is matched by the very next save
    receiver.reset();
    await request(app!.getHttpServer())
      .post('/hooks')
      .set('x-user', 'alice')
      .send({ event: 'probe.created', url: `${receiver.url}/api` })
      .expect(201);
    await probes.save(probes.create({ title: 'after the API' }));
    await settle();
    await receiver.waitFor(2);
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/api', '/static']);

    // and one saved through a repository (in a transaction of its own) too
    receiver.reset();
    await dataSource.transaction(async (m) => {
      await m.save(m.create(Subscriber, { event: 'probe.*', url: `${receiver.url}/repo` }));
    });
    await probes.save(probes.create({ title: 'after the repository' }));
    await settle();
    await receiver.waitFor(3);
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/api', '/repo', '/static']);
  });

  it('subscriptionCacheTtl: 0 keeps no cache and creates nothing: every event queries', async () => {
    const { events, store } = await boot({ subscriptionCacheTtl: 0 });
    expect(store.patternCache).toBeNull();
    await connectOther();
    // no version table at all (by its message: on TypeORM 0.3 + better-sqlite3 the rejection is a raw SqliteError,
    // which is not `instanceof Error` in later jest files, so `toThrow()` would say "did not throw")
    await expect(versionOf('thorn_subscriber')).rejects.toMatchObject({
      message: expect.stringMatching(
        /no such table: \S*thorn_subscriber_version|"\S*thorn_subscriber_version" does not exist/,
      ),
    });
    expect((await events.send('zero.probe', {})).deliveries).toEqual([]);
    await insertRow('thorn_subscriber', 'zero.probe', '/zero.probe');
    expect((await events.send('zero.probe', {})).deliveries.map((d) => d.ok)).toEqual([true]);
  });

  it('when the version table cannot be created, says so at start-up and queries on every event', async () => {
    // an empty database holding a view where the version table would go
    const reset = new DataSource({
      ...dbOptions([Subscriber, Probe]),
      synchronize: true,
    } as DataSourceOptions);
    await reset.initialize();
    await reset.query(
      `CREATE VIEW ${table('thorn_subscriber_version')} AS SELECT 'x' AS "table_name", 1 AS "version" WHERE 1 = 0`,
    );
    await reset.destroy();
    const logger = new CapturingLogger();
    await connectOther();
    try {
      const { events, store } = await boot({}, { logger, dropSchema: false });
      await logger.waitFor(
        /warn: Subscription cache off: could not create the version triggers of "thorn_subscriber"/,
      );
      expect(store.patternCache).toBeNull();
      expect((await events.send('noddl.probe', {})).deliveries).toEqual([]);
      await insertRow('thorn_subscriber', 'noddl.probe', '/noddl.probe');
      expect((await events.send('noddl.probe', {})).deliveries.map((d) => d.ok)).toEqual([true]);
    } finally {
      await sql(`DROP VIEW ${table('thorn_subscriber_version')}`);
    }
  });

  it(`holds nothing past ${MAX_CACHED_PATTERNS} distinct stored patterns, and still matches`, async () => {
    const { events, store } = await boot();
    await connectOther();
    const n = MAX_CACHED_PATTERNS + 1;
    await sql(
      pg
        ? `INSERT INTO ${table('thorn_subscriber')} ("id", "event", "url", "hmacSecret")
           SELECT gen_random_uuid(), 'many' || g || '.created', 'https://hooks.example.com/' || g, 's'
           FROM generate_series(1, ${n}) AS g`
        : `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ${n})
           INSERT INTO "thorn_subscriber" ("id", "event", "url", "hmacSecret")
           SELECT lower(hex(randomblob(16))), 'many' || i || '.created', 'https://hooks.example.com/' || i, 's' FROM g`,
    );
    await insertRow('thorn_subscriber', 'big.probe', '/big.probe');
    expect((await events.send('big.probe', {})).deliveries.map((d) => d.ok)).toEqual([true]);
    expect(store.patternCache?.size).toBeNull();
    expect((await events.send('none.probe', {})).deliveries).toEqual([]);
  });
});
