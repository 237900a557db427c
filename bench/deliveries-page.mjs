// Scenario: a page of 50 of the delivery log (GET /hooks/:id/deliveries) on PostgreSQL with 1,000,000 deliveries in
// thorn_delivery, against the same query with 1,000 rows (how cost grows with the table). The exact LedgerLog query,
// first page and a page after a cursor 10 pages deep; a busy subscription holds 1 % of the rows, the rest is spread over
// 10,000 subscriptions. Bounded: one fill per size (generate_series), `iterations` queries per case.
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { THORN_LEDGER_ENTITIES } from 'nestjs-thorn';
// an internal, by path (not part of the public API)
import { LedgerLog } from '../dist/ledger/ledger.log.js';
import { quantile, round } from './lib.mjs';

async function fill(ds, rows) {
  await ds.query('TRUNCATE thorn_delivery');
  // the secondary indexes are built once after the insert (faster than row by row), with their own definitions
  const indexes = await ds.query(
    `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'thorn_delivery'
       AND indexname LIKE 'IDX_%'`,
  );
  for (const { indexname } of indexes) await ds.query(`DROP INDEX "${indexname}"`);
  await ds.query(
    `INSERT INTO thorn_delivery (id, event_id, event, subscription_id, source, url, status, attempts, next_attempt_at,
                                 response_status, created_at, updated_at)
     SELECT gen_random_uuid()::text, md5(g::text)::uuid::text, 'order.created',
            CASE WHEN g % 100 = 0 THEN 'sub-busy' ELSE 'sub-' || (g % 10000) END, 'stored',
            'https://hooks.example.com/in', CASE WHEN g % 17 = 0 THEN 'failed' ELSE 'succeeded' END, 1, NULL, 200,
            1700000000000 + g * 10, 1700000000000 + g * 10
     FROM generate_series(1, $1) AS g`,
    [rows],
  );
  for (const { indexdef } of indexes) await ds.query(indexdef);
  await ds.query('VACUUM ANALYZE thorn_delivery');
}

async function measure(fn, iterations) {
  for (let i = 0; i < Math.min(50, iterations); i++) await fn(i); // warm up
  const lat = [];
  for (let i = 0; i < iterations; i++) {
    const s = performance.now();
    await fn(i);
    lat.push(performance.now() - s);
  }
  return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99) };
}

export async function deliveriesPage(pgUrl, { sizes = [1_000, 1_000_000], iterations = 2000 } = {}) {
  const ds = new DataSource({
    type: 'postgres',
    url: pgUrl,
    entities: THORN_LEDGER_ENTITIES,
    synchronize: true,
    dropSchema: true,
  });
  await ds.initialize();
  const log = new LedgerLog(ds);
  const rows = [];
  const base = {};
  try {
    for (const size of sizes) {
      const t0 = performance.now();
      await fill(ds, size);
      const fillSeconds = round((performance.now() - t0) / 1000, 1);
      // a cursor 10 pages deep (or as deep as the busy subscription goes)
      let after;
      for (let p = 0; p < 10; p++) {
        const page = await log.page('sub-busy', { limit: 51, after });
        if (page.length < 51) break;
        after = { createdAt: page[49].createdAt, id: page[49].id };
      }
      const cases = [
        ['first page', () => log.page('sub-busy', { limit: 51 })],
        ['page after a cursor', () => log.page('sub-busy', { limit: 51, after })],
        ['first page, status=failed', () => log.page('sub-busy', { limit: 51, status: 'failed' })],
      ];
      for (const [name, run] of cases) {
        const r = await measure(run, iterations);
        base[name] ??= r;
        rows.push({
          scenario: 'deliveries page',
          case: `${size.toLocaleString('en')} deliveries, ${name}`,
          value: round(r.p99, 3),
          unit: 'ms p99',
          p50ms: round(r.p50, 3),
          p99ms: round(r.p99, 3),
          baseline: round(base[name].p99, 3),
          baselineName: 'p99 of the same page with 1,000 rows in the table (ratio = p99 / that)',
          ratio: round(r.p99 / base[name].p99, 2),
          target: size >= 1_000_000 ? 'p99 <= 5 ms' : undefined,
          met: size >= 1_000_000 ? r.p99 <= 5 : undefined,
          note: `page of 50 (limit 51), table filled in ${fillSeconds} s`,
        });
      }
    }
  } finally {
    await ds.destroy();
  }
  return rows;
}
