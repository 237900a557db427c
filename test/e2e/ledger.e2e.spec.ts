import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import {
  ModelEvent,
  PayloadError,
  THORN_LEDGER_ENTITIES,
  THORN_OPTIONS,
  ThornModule,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { ThornLedger } from '../../lib/ledger/ledger.js';
import { fromRecord } from '../../lib/ledger/ledger.event.js';
import { testDatabases } from '../fixtures/databases.js';
import {
  bootModelApp,
  createSchema,
  loopback,
  messages,
  modelDbOptions,
  type ModelApp,
} from '../fixtures/model-app.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SCHEMA = 'thorn_ledger';

@Entity()
@ModelEvent('memo.created', { on: 'create' })
@ModelEvent('memo.changed', { on: 'change' })
class Memo {
  @PrimaryGeneratedColumn() id!: number;
  @Column() text!: string;
  webhookPayload() {
    return { id: this.id, text: this.text };
  }
}

describe.each(testDatabases)('delivery ledger, direct dispatcher ($name)', (db) => {
  const receiver = new TestReceiver();
  let t: ModelApp;
  let ledger: ThornLedger;

  const boot = async (extra: ThornModuleOptions = {}) => {
    t = await bootModelApp(db, SCHEMA, [Memo, ...THORN_LEDGER_ENTITIES], {
      ledger: { pollInterval: 100 },
      subscribers: { 'memo.#': `${receiver.url}/memo`, 'plain.#': `${receiver.url}/plain` },
      defaultHmacSecret: 'ledger-secret',
      ...extra,
    });
    ledger = t.app.get(ThornLedger);
  };
  const rows = (table: string, where = '') =>
    t.dataSource.query(`SELECT * FROM ${db.name === 'postgres' ? `"${SCHEMA}".${table}` : table} ${where}`);

  beforeAll(async () => {
    await receiver.start();
    await createSchema(db, SCHEMA);
  });
  afterAll(() => receiver.stop());
  beforeEach(() => receiver.reset());
  afterEach(() => t?.close());

  it('records a committed save in thorn_event and delivers it under the delivery row id (Hook-Delivery)', async () => {
    await boot();
    await t.dataSource.getRepository(Memo).save({ text: 'hello' });
    await receiver.waitFor(1);
    await ledger.idle();
    const [event] = await rows('thorn_event');
    expect(event.name).toBe('memo.created');
    expect(JSON.parse(event.payload).data).toEqual({ id: 1, text: 'hello' });
    expect(Number(event.fanned_out_at)).toBeGreaterThan(0);
    const [delivery] = await rows('thorn_delivery');
    expect(receiver.requests[0].headers['hook-delivery']).toBe(delivery.id);
    expect(delivery).toMatchObject({
      event_id: event.id,
      status: 'succeeded',
      source: 'static',
      claim: null,
    });
    expect(Number(delivery.attempts)).toBe(1);
    expect(delivery.next_attempt_at).toBeNull();
    const [attempt] = await rows('thorn_attempt');
    expect(attempt).toMatchObject({
      delivery_id: delivery.id,
      response_status: 200,
      response_body: 'ok',
      error: null,
    });
    expect(Number(attempt.number)).toBe(1);
    // no secret anywhere in the ledger
    const everything = JSON.stringify([
      await rows('thorn_event'),
      await rows('thorn_delivery'),
      await rows('thorn_attempt'),
    ]);
    expect(everything).not.toContain('ledger-secret');
  });

  it('a rolled-back transaction records nothing and sends nothing; a rolled-back savepoint loses only its own events', async () => {
    await boot();
    await expect(
      t.dataSource.transaction(async (m) => {
        await m.save(Memo, { text: 'doomed' });
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    await t.dataSource.transaction(async (m) => {
      await m.save(Memo, { text: 'kept' });
      await m
        .transaction(async (inner) => {
          await inner.save(Memo, { text: 'savepoint' });
          throw new Error('inner rollback');
        })
        .catch(() => undefined);
    });
    await receiver.waitFor(1);
    await ledger.idle();
    const sent = await t.events.send('plain.sentinel', {});
    await receiver.waitFor(2);
    expect(sent.recorded).toBe(true);
    expect(messages(receiver, '/memo').map((m) => m.data.text)).toEqual(['kept']);
    expect((await rows('thorn_event')).map((e: any) => e.name).sort()).toEqual([
      'memo.created',
      'plain.sentinel',
    ]);
  });

  it('send() outside a transaction records the event before it resolves and returns its id', async () => {
    // a receiver that never answers: the row exists though no request has finished
    receiver.reply = () => ({ hold: new Promise(() => undefined) });
    await boot({ timeout: 1000 });
    const result = await t.events.send('plain.one', { n: 1 });
    expect(result).toMatchObject({ event: 'plain.one', recorded: true, deliveries: [] });
    const found = await rows('thorn_event', `WHERE id = '${result.eventId}'`);
    expect(found).toHaveLength(1);
  });

  it('an event nobody subscribes to is not recorded (no insert, no fan-out): send() says recorded: false', async () => {
    await boot({ subscribers: { 'plain.#': `${receiver.url}/plain` } });
    // a model event and a plain one, both without any static or stored subscriber
    await t.dataSource.getRepository(Memo).save({ text: 'unheard' });
    const result = await t.events.send('nobody.listens', { n: 1 });
    expect(result).toEqual({ event: 'nobody.listens', deliveries: [], recorded: false });
    expect(await rows('thorn_event')).toEqual([]);
  });

  it('send({ manager }) joins the caller transaction: nothing on rollback, delivered after commit', async () => {
    await boot();
    await t.dataSource
      .transaction(async (m) => {
        await t.events.send('plain.rolled', { n: 1 }, { manager: m });
        throw new Error('no');
      })
      .catch(() => undefined);
    let id = '';
    await t.dataSource.transaction(async (m) => {
      id = (await t.events.send('plain.committed', { n: 2 }, { manager: m })).eventId!;
      // recorded in the transaction: not delivered before the commit
      await new Promise((r) => setTimeout(r, 50));
      expect(receiver.requests).toHaveLength(0);
    });
    await receiver.waitFor(1);
    expect(receiver.requests.map((r) => r.headers['hook-event'])).toEqual(['plain.committed']);
    expect((await rows('thorn_event')).map((e: any) => e.id)).toEqual([id]);
  });

  it('retries are scheduled in thorn_delivery and keep the delivery id; every attempt is recorded', async () => {
    await boot({ retry: true, retryDelay: 50, retryMax: 3 });
    receiver.reply = (_req, i) => (i === 0 ? { status: 500, body: 'down' } : { status: 200 });
    await t.events.send('plain.retried', { n: 1 });
    await receiver.waitFor(2);
    await ledger.idle();
    const [a, b] = receiver.requests;
    expect(b.headers['hook-delivery']).toBe(a.headers['hook-delivery']);
    const [delivery] = await rows('thorn_delivery');
    expect(delivery.id).toBe(a.headers['hook-delivery']);
    expect(delivery.status).toBe('succeeded');
    expect(Number(delivery.attempts)).toBe(2);
    const attempts = await rows('thorn_attempt', 'ORDER BY number');
    expect(attempts.map((x: any) => [Number(x.number), x.response_status, x.response_body])).toEqual([
      [1, 500, 'down'],
      [2, 200, 'ok'],
    ]);
    expect(attempts[0].error).toContain('answered 500');
  });

  it('refuses what only this process knows, and oversized payloads, before recording anything', async () => {
    await boot({ maxPayloadSize: 1000 });
    await expect(t.events.send('plain.cb', {}, { onSuccess: () => undefined })).rejects.toThrow(
      'Cannot record "plain.cb" in the delivery ledger with onSuccess/onError/onTimeout callbacks',
    );
    await expect(t.events.send('plain.big', { text: 'x'.repeat(2000) })).rejects.toBeInstanceOf(PayloadError);
    expect(await rows('thorn_event')).toHaveLength(0);
  });
});

describe.each(testDatabases)(
  'delivery ledger tables: start-up checks, retention, query plans ($name)',
  (db) => {
    let t: ModelApp | undefined;
    afterEach(async () => {
      await t?.close();
      t = undefined;
    });
    const q = (table: string) => (db.name === 'postgres' ? `"${SCHEMA}".${table}` : table);

    if (db.name === 'sqlite') {
      // (SQLite in memory: a module that fails to start leaves its DataSource open, which here holds no socket)
      it('refuses to start without its tables, naming the migration', async () => {
        await expect(bootModelApp(db, SCHEMA, [Memo], { ledger: true })).rejects.toThrow(
          /ledger is on, but its tables are missing .*CreateThornLedger1764180000000/,
        );
      });
    }

    it('retention deletes finished deliveries, their attempts and events in bounded batches, never a pending one', async () => {
      t = await bootModelApp(db, SCHEMA, [Memo, ...THORN_LEDGER_ENTITIES], {
        ledger: { retention: 60_000, batchSize: 2, pollInterval: 100 },
      });
      const ledger = t.app.get(ThornLedger);
      // a pass now (nothing to delete yet): the relay's next one is a minute away, so only this test's calls prune
      expect(await ledger.relay.prune()).toBe(0);
      const old = Date.now() - 120_000;
      const recent = Date.now() - 1000;
      const ph = (n: number, from = 1) =>
        Array.from({ length: n }, (_, i) => (db.name === 'postgres' ? `$${from + i}` : '?')).join(', ');
      const event = (id: string, at: number) =>
        t!.dataSource.query(
          `INSERT INTO ${q('thorn_event')} (id, name, payload, created_at, fanned_out_at) VALUES (${ph(5)})`,
          [id, 'memo.old', '{}', at, at],
        );
      const delivery = (id: string, eventId: string, status: string, updated: number) =>
        t!.dataSource.query(
          `INSERT INTO ${q('thorn_delivery')} (id, event_id, event, subscription_id, source, url, status, attempts, next_attempt_at, created_at, updated_at) VALUES (${ph(11)})`,
          [
            id,
            eventId,
            'memo.old',
            's',
            'static',
            'http://x/',
            status,
            1,
            status === 'pending' ? old : null,
            old,
            updated,
          ],
        );
      await event('e-old', old); // all its deliveries finished long ago
      await event('e-pending', old); // one delivery still pending
      await event('e-recent', recent);
      for (let i = 0; i < 5; i++) await delivery(`old-${i}`, 'e-old', 'succeeded', old);
      await delivery('pending-1', 'e-pending', 'pending', old);
      await delivery('failed-1', 'e-pending', 'failed', old);
      await delivery('recent-1', 'e-recent', 'succeeded', recent);
      for (let i = 0; i < 5; i++)
        await t.dataSource.query(
          `INSERT INTO ${q('thorn_attempt')} (delivery_id, number, started_at, duration_ms) VALUES (${ph(4)})`,
          [`old-${i}`, 1, old, 5],
        );
      // one statement deletes at most batchSize deliveries
      expect(await ledger.store.prune(Date.now() - 60_000, 2)).toBe(2);
      await ledger.relay.prune();
      const ids = async (table: string) =>
        (await t!.dataSource.query(`SELECT id FROM ${q(table)} ORDER BY id`)).map((r: any) => r.id);
      expect(await ids('thorn_delivery')).toEqual(['pending-1', 'recent-1']);
      expect(await ids('thorn_event')).toEqual(['e-pending', 'e-recent']);
      expect(await t.dataSource.query(`SELECT * FROM ${q('thorn_attempt')}`)).toEqual([]);
    });

    if (db.name === 'postgres') {
      it('the relay, retention and log queries are index scans at 200,000 deliveries (EXPLAIN of the real statements)', async () => {
        t = await bootModelApp(db, SCHEMA, [Memo, ...THORN_LEDGER_ENTITIES], {
          ledger: { pollInterval: 60_000 },
        });
        const now = Date.now();
        await t.dataSource.query(
          `INSERT INTO ${q('thorn_event')} (id, name, payload, created_at, fanned_out_at)
         SELECT 'e' || g, 'memo.bulk', '{}', $1::bigint - g, CASE WHEN g % 1000 = 0 THEN NULL ELSE $1::bigint END
         FROM generate_series(1, 20000) g`,
          [now],
        );
        await t.dataSource.query(
          `INSERT INTO ${q('thorn_delivery')} (id, event_id, event, subscription_id, source, url, status, attempts,
                                             next_attempt_at, created_at, updated_at)
         SELECT 'd' || g, 'e' || (g / 10), 'memo.bulk', 'sub-' || (g % 500), 'stored', 'http://x/',
                CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'succeeded' END, 1,
                CASE WHEN g % 100 = 0 THEN $1::bigint + g ELSE NULL END, $1::bigint - g, $1::bigint - g
         FROM generate_series(1, 200000) g`,
          [now],
        );
        await t.dataSource.query(`ANALYZE ${q('thorn_delivery')}`);
        await t.dataSource.query(`ANALYZE ${q('thorn_event')}`);
        // the store's own statements, each prefixed with EXPLAIN (nothing runs)
        const plans: string[] = [];
        const explaining = Object.create(t.dataSource, {
          query: {
            value: async (sql: string, params: unknown[]) => {
              const rows = await t!.dataSource.query(`EXPLAIN ${sql}`, params);
              plans.push(rows.map((r: any) => r['QUERY PLAN']).join('\n'));
              return [];
            },
          },
        });
        const { PgLedgerStore } = await import('../../lib/ledger/pg.ledger-store.js');
        const store = new PgLedgerStore(explaining);
        await store.claimDue(now, 500, { token: 'x', until: now + 1000 });
        await store.unfanned(now, 500);
        await store.oldestDue(now);
        // EXPLAIN returns no count row (only the plan matters); a 7-day retention cuts off the oldest 5 % of the rows
        await store.prune(now - 190_000, 500).catch(() => undefined);
        for (const plan of plans) {
          expect(plan).not.toMatch(/Seq Scan on thorn_delivery|Seq Scan on thorn_event/);
        }
        expect(plans[0]).toMatch(/IDX_thorn_delivery_due/);
        expect(plans[1]).toMatch(/IDX_thorn_event_unfanned/);
        expect(plans[3]).toMatch(/IDX_thorn_delivery_finished/);
      });
    }
  },
);

describe.each(testDatabases)(
  'delivery ledger under stress: claims, duplicates, shutdown, buffers ($name)',
  (db) => {
    const receiver = new TestReceiver();
    let t: ModelApp | undefined;
    const q = (table: string) => (db.name === 'postgres' ? `"${SCHEMA}".${table}` : table);
    beforeAll(async () => {
      await receiver.start();
      await createSchema(db, SCHEMA);
    });
    afterAll(() => receiver.stop());
    beforeEach(() => receiver.reset());
    afterEach(async () => {
      await t?.close();
      t = undefined;
    });
    const boot = (extra: ThornModuleOptions = {}) =>
      bootModelApp(db, SCHEMA, [Memo, ...THORN_LEDGER_ENTITIES], {
        subscribers: { 'plain.#': `${receiver.url}/plain` },
        ...extra,
      });

    it('an event is fanned out once even when polls pile up behind a long transaction (one delivery row, its id on the wire)', async () => {
      t = await boot({ ledger: { pollInterval: 20 } });
      // events recorded while a transaction stays open for longer than many polls
      await t.dataSource.transaction(async (m) => {
        await m.save(Memo, { text: 'long' });
        for (let i = 0; i < 5; i++) await t!.events.send('plain.piled', { i });
        await new Promise((r) => setTimeout(r, 400));
      });
      await receiver.waitFor(5);
      await t.app.get(ThornLedger).idle();
      await new Promise((r) => setTimeout(r, 200));
      const rows = await t.dataSource.query(`SELECT id, status FROM ${q('thorn_delivery')}`);
      expect(rows).toHaveLength(5);
      expect(new Set(receiver.requests.map((r) => r.headers['hook-delivery']))).toEqual(
        new Set(rows.map((r: any) => r.id)),
      );
      expect(receiver.requests).toHaveLength(5);
    });

    it('the same event woken twice at once (a commit and a poll) is fanned out once, under the id on the wire', async () => {
      t = await boot({ ledger: { pollInterval: 60_000 } });
      const ledger = t.app.get(ThornLedger);
      const now = Date.now();
      const ph = (n: number) =>
        Array.from({ length: n }, (_, i) => (db.name === 'postgres' ? `$${i + 1}` : '?')).join(', ');
      await t.dataSource.query(
        `INSERT INTO ${q('thorn_event')} (id, name, payload, created_at) VALUES (${ph(4)})`,
        ['e-twice', 'plain.twice', '{"n":1}', now],
      );
      const [record] = await ledger.store.events(['e-twice']);
      const event = fromRecord(record, t.app.get(THORN_OPTIONS));
      ledger.relay.wake([event, event]);
      await receiver.waitFor(1);
      await ledger.idle();
      const rows = await t.dataSource.query(
        `SELECT id FROM ${q('thorn_delivery')} WHERE event_id = 'e-twice'`,
      );
      expect(rows).toHaveLength(1);
      expect(receiver.requests.map((r) => r.headers['hook-delivery'])).toEqual([rows[0].id]);
    });

    it('a late attempt record changes nothing once another claim holds the delivery; a release only drops its own claim', async () => {
      t = await boot({ ledger: { pollInterval: 60_000 }, dispatcher: 'direct' });
      const ledger = t.app.get(ThornLedger);
      const now = Date.now();
      const ph = (n: number) =>
        Array.from({ length: n }, (_, i) => (db.name === 'postgres' ? `$${i + 1}` : '?')).join(', ');
      await t.dataSource.query(
        `INSERT INTO ${q('thorn_delivery')} (id, event_id, event, subscription_id, source, url, status, attempts, next_attempt_at, created_at, updated_at) VALUES (${ph(11)})`,
        ['d1', 'e1', 'plain.x', 's', 'static', 'http://x/', 'pending', 0, now - 1000, now, now],
      );
      const [a] = await ledger.store.claimDue(now, 10, { token: 'A', until: now + 10 });
      expect(a.id).toBe('d1');
      // A's claim expired; B takes the delivery
      const [b] = await ledger.store.claimDue(now + 20, 10, { token: 'B', until: now + 60_000 });
      expect(b.id).toBe('d1');
      const attempt = (claim: string, status: 'failed' | 'succeeded', responseStatus: number) => ({
        deliveryId: 'd1',
        claim,
        attempted: true,
        number: 1,
        startedAt: now,
        durationMs: 5,
        responseStatus,
        error: null,
        responseBody: null,
        status,
        nextAttemptAt: null,
        url: 'http://x/',
      });
      await ledger.store.record([attempt('A', 'failed', 500)], now + 30);
      await ledger.store.release(['d1'], 'A');
      let [row] = await t.dataSource.query(
        `SELECT status, claim FROM ${q('thorn_delivery')} WHERE id = 'd1'`,
      );
      expect(row).toEqual({ status: 'pending', claim: 'B' });
      expect(await t.dataSource.query(`SELECT * FROM ${q('thorn_attempt')}`)).toEqual([]);
      await ledger.store.record([attempt('B', 'succeeded', 200)], now + 40);
      [row] = await t.dataSource.query(`SELECT status, claim FROM ${q('thorn_delivery')} WHERE id = 'd1'`);
      expect(row).toEqual({ status: 'succeeded', claim: null });
      const attempts = await t.dataSource.query(`SELECT response_status FROM ${q('thorn_attempt')}`);
      expect(attempts).toEqual([{ response_status: 200 }]);
    });

    it('one refused event in a buffer loses only itself: the others are recorded and delivered', async () => {
      t = await boot({ ledger: { pollInterval: 100 } });
      await expect(
        t.events.bufferEvents(async () => {
          for (let i = 0; i < 3; i++) await t!.events.send('plain.ok', { i });
          await t!.events.send('plain.refused', {}, { onSuccess: () => undefined });
          await t!.events.send('plain.ok', { i: 3 });
        }),
      ).rejects.toThrow('Cannot record "plain.refused" in the delivery ledger');
      await receiver.waitFor(4);
      expect(receiver.requests.map((r) => r.json().i).sort()).toEqual([0, 1, 2, 3]);
    });

    if (db.name === 'postgres') {
      it('after app.close() nothing more is sent; taken deliveries not yet started are released for the next process', async () => {
        t = await boot({ ledger: { pollInterval: 100 }, concurrency: 1, timeout: 2000 });
        receiver.reply = () => ({ status: 200, delayMs: 300 });
        for (let i = 0; i < 6; i++) await t.events.send('plain.slow', { i });
        await receiver.waitFor(1);
        await t.close();
        t = undefined;
        const atClose = receiver.requests.length;
        await new Promise((r) => setTimeout(r, 800));
        expect(receiver.requests.length).toBe(atClose);
        const check = new DataSource({ type: 'postgres', url: process.env.THORN_TEST_PG_URL });
        await check.initialize();
        try {
          const rows = await check.query(
            `SELECT status, claim FROM ${q('thorn_delivery')} ORDER BY created_at`,
          );
          const pending = rows.filter((r: any) => r.status === 'pending');
          expect(pending.length).toBeGreaterThan(0);
          // released: the next process takes them at once, not after the lease
          expect(pending.every((r: any) => r.claim === null)).toBe(true);
          expect(rows.length - pending.length).toBe(atClose);
        } finally {
          await check.destroy();
        }
      });

      it('signalHonorsTransaction: false events do not hold a second pool connection inside the hook (no deadlock on a full pool)', async () => {
        @Entity()
        @ModelEvent('loose.created', { on: 'create', signalHonorsTransaction: false })
        class Loose {
          @PrimaryGeneratedColumn() id!: number;
          @Column() text!: string;
        }
        const moduleRef = await Test.createTestingModule({
          imports: [
            TypeOrmModule.forRoot({
              ...modelDbOptions(db, SCHEMA, [Loose, ...THORN_LEDGER_ENTITIES]),
              extra: { max: 3 },
            } as any),
            ThornModule.forRoot({
              recipientValidators: loopback(),
              ledger: { pollInterval: 100 },
              subscribers: { 'loose.#': `${receiver.url}/loose` },
            }),
          ],
        }).compile();
        const app = moduleRef.createNestApplication({ logger: false });
        await app.init();
        try {
          const repo = app.get<DataSource>(getDataSourceToken()).getRepository(Loose);
          // as many concurrent saves as the pool has connections, each in its own transaction
          const saves = Promise.all(Array.from({ length: 3 }, (_, i) => repo.save({ text: `l${i}` })));
          let timer: NodeJS.Timeout | undefined;
          const stuck = new Promise(
            (_, reject) => (timer = setTimeout(() => reject(new Error('saves deadlocked')), 5000)),
          );
          await Promise.race([saves, stuck]).finally(() => clearTimeout(timer));
          await receiver.waitFor(3);
        } finally {
          await app.close();
        }
      });
    }
  },
);
