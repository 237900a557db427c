// A page of the delivery log is an index probe at realistic size: the exact query LedgerLog runs (captured from
// TypeORM's log) is EXPLAINed on PostgreSQL with 200,000 deliveries (a busy subscription with 20,000, the rest over
// 2,000 subscriptions) after ANALYZE, for the first page, a page after a cursor and a status-filtered page; SQLite's
// plan is checked on the same index.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource, type Logger as TypeOrmLogger } from 'typeorm';
import { THORN_LEDGER_ENTITIES } from '../../lib/index.js';
import { LedgerLog } from '../../lib/ledger/ledger.log.js';
import { testDatabases } from '../fixtures/databases.js';

const SCHEMA = 'thorn_log_plan';
const ROWS = 200_000;
const SUBSCRIPTIONS = 2_000;

/** Keeps the last statement TypeORM ran, with its parameters. */
class LastQuery implements TypeOrmLogger {
  sql = '';
  params: unknown[] = [];
  logQuery(query: string, parameters?: unknown[]): void {
    this.sql = query;
    this.params = parameters ?? [];
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
}

const postgres = testDatabases.find((d) => d.name === 'postgres');

(postgres ? describe : describe.skip)('delivery log page plan (PostgreSQL, 200,000 deliveries)', () => {
  let ds: DataSource;
  const last = new LastQuery();

  beforeAll(async () => {
    const admin = new DataSource({ type: 'postgres', url: process.env.THORN_TEST_PG_URL });
    await admin.initialize();
    await admin.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    await admin.query(`CREATE SCHEMA "${SCHEMA}"`);
    await admin.destroy();
    ds = new DataSource({
      type: 'postgres',
      url: process.env.THORN_TEST_PG_URL,
      schema: SCHEMA,
      entities: THORN_LEDGER_ENTITIES,
      synchronize: true,
      logging: ['query'],
      logger: last,
    });
    await ds.initialize();
    // finished deliveries, one per second, a few failed: every 10th to the busy subscription, the rest spread out
    await ds.query(
      `INSERT INTO "${SCHEMA}".thorn_delivery (id, event_id, event, subscription_id, source, url, status, attempts,
                                               next_attempt_at, response_status, created_at, updated_at)
       SELECT gen_random_uuid()::text, gen_random_uuid()::text, 'order.created',
              CASE WHEN g % 10 = 0 THEN 'sub-busy' ELSE 'sub-' || (g % $2) END, 'stored',
              'https://hooks.example.com/in', CASE WHEN g % 17 = 0 THEN 'failed' ELSE 'succeeded' END, 1, NULL, 200,
              1700000000000 + g * 1000, 1700000000000 + g * 1000
       FROM generate_series(1, $1) AS g`,
      [ROWS, SUBSCRIPTIONS],
    );
    await ds.query(`ANALYZE "${SCHEMA}".thorn_delivery`);
  }, 120_000);
  afterAll(async () => {
    await ds?.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    await ds?.destroy();
  });

  /** The plan of the statement `run` makes LedgerLog execute. */
  async function planOf(run: () => Promise<unknown>): Promise<{ text: string; json: any }> {
    await run();
    const { sql, params } = last;
    expect(sql).toContain('ORDER BY created_at DESC, id DESC');
    const json = (await ds.query(`EXPLAIN (FORMAT JSON) ${sql}`, params))[0]['QUERY PLAN'][0].Plan;
    const text = (await ds.query(`EXPLAIN ${sql}`, params)).map((r: any) => r['QUERY PLAN']).join('\n');
    return { text, json };
  }

  it('reads a page of 50 of one subscription backwards on IDX_thorn_delivery_subscription: no scan, no sort', async () => {
    const log = new LedgerLog(ds);
    const page = await log.page('sub-busy', { limit: 51 });
    expect(page).toHaveLength(51);
    const first = await planOf(() => log.page('sub-busy', { limit: 51 }));
    const after = page[49];
    const next = await planOf(() =>
      log.page('sub-busy', { limit: 51, after: { createdAt: after.createdAt, id: after.id } }),
    );
    const failed = await planOf(() => log.page('sub-busy', { limit: 51, status: 'failed' }));
    for (const { text, json } of [first, next, failed]) {
      expect(json['Node Type']).toBe('Limit');
      const scan = json.Plans[0];
      expect(scan['Node Type']).toMatch(/^Index (Only )?Scan$/);
      expect(scan['Index Name']).toBe('IDX_thorn_delivery_subscription');
      expect(scan['Scan Direction']).toBe('Backward');
      expect(text).not.toMatch(/Seq Scan|Sort|Bitmap/);
    }
    // the cursor is part of the index condition (a range on the index), not a filter over the subscription's rows
    expect(next.json.Plans[0]['Index Cond']).toMatch(/created_at.*id/);
    // and it reads the right rows: the page after the cursor continues the first
    const rest = await log.page('sub-busy', {
      limit: 50,
      after: { createdAt: after.createdAt, id: after.id },
    });
    expect(rest[0].id).toBe(page[50].id);
  });

  it('a small subscription (100 deliveries) is read through the same index, never a table scan', async () => {
    const log = new LedgerLog(ds);
    const page = await log.page('sub-7', { limit: 51 });
    const after = page[49];
    for (const run of [
      () => log.page('sub-7', { limit: 51 }),
      () => log.page('sub-7', { limit: 51, after: { createdAt: after.createdAt, id: after.id } }),
    ]) {
      const { text } = await planOf(run);
      // the planner may take the ≤ 100 rows with a bitmap probe and sort them: still one probe of the index
      expect(text).toMatch(/Index Scan.* (using|on) "IDX_thorn_delivery_subscription"/);
      expect(text).not.toMatch(/Seq Scan/);
    }
  });
});

const sqlite = testDatabases.find((d) => d.name === 'sqlite')!;

describe('delivery log page plan (SQLite)', () => {
  let ds: DataSource;
  const last = new LastQuery();

  beforeAll(async () => {
    ds = new DataSource({
      ...(sqlite.options(THORN_LEDGER_ENTITIES) as any),
      logging: ['query'],
      logger: last,
    });
    await ds.initialize();
  });
  afterAll(() => ds?.destroy());

  it('searches IDX_thorn_delivery_subscription for the subscription and the cursor range, without a sort', async () => {
    const log = new LedgerLog(ds);
    await log.page('sub-1', { limit: 51, after: { createdAt: 1700000000000, id: 'x' } });
    const plan = (await ds.query(`EXPLAIN QUERY PLAN ${last.sql}`, last.params))
      .map((r: any) => r.detail)
      .join('\n');
    expect(plan).toMatch(
      /SEARCH thorn_delivery USING (COVERING )?INDEX IDX_thorn_delivery_subscription \(subscription_id=\? AND \(created_at,id\)<\(\?,\?\)\)/,
    );
    expect(plan).not.toMatch(/TEMP B-TREE|SCAN thorn_delivery/);
  });
});
