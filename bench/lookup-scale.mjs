// Scenario 3: stored-subscription lookup at 1k / 100k / 1M rows on PostgreSQL, against the same query at 1k rows
// (how cost grows with row count) and a naive load-all-and-match scan (what "no index" would cost).
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { Subscriber, matchesPattern } from 'nestjs-thorn';
// an internal, by path (not part of the public API)
import { SubscriptionStore } from '../dist/subscriptions/subscription.store.js';
import { quantile, round } from './lib.mjs';

const RESOURCES = 10_000;
const ACTIONS = [
  'created',
  'changed',
  'removed',
  'published',
  'archived',
  'restored',
  'commented',
  'liked',
  'shared',
  'viewed',
];

// Realistic mix: 89 % exact names, 10 % `resource.*`, 1 % `resource.#`, 20 rows of global `*` / `#.created`.
async function fill(ds, rows) {
  await ds.query('TRUNCATE thorn_subscriber');
  await ds.query(
    `INSERT INTO thorn_subscriber (id, event, url, "user", "hmacSecret", "hmacDigest", "contentType")
     SELECT gen_random_uuid(),
            CASE WHEN g % 100 < 89 THEN 'res' || (g % $2) || '.' || ($3::text[])[1 + (g / $2) % 10]
                 WHEN g % 100 < 99 THEN 'res' || (g % $2) || '.*'
                 ELSE 'res' || (g % $2) || '.#' END,
            'https://hooks.example.com/' || g, 'user' || (g % 50000), md5(g::text), 'sha256', 'application/json'
     FROM generate_series(1, $1) AS g`,
    [rows - 20, RESOURCES, ACTIONS],
  );
  await ds.query(
    `INSERT INTO thorn_subscriber (id, event, url, "user", "hmacSecret", "hmacDigest", "contentType")
     SELECT gen_random_uuid(), CASE WHEN g % 2 = 0 THEN '*' ELSE '#.created' END, 'https://all.example.com/' || g, NULL,
            md5(g::text), 'sha256', 'application/json' FROM generate_series(1, 20) AS g`,
  );
  await ds.query('ANALYZE thorn_subscriber');
}

async function measure(fn, iterations) {
  for (let i = 0; i < Math.min(50, iterations); i++) await fn(i); // warm up
  const lat = [];
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const s = performance.now();
    await fn(i);
    lat.push(performance.now() - s);
  }
  return {
    perSecond: iterations / ((performance.now() - t0) / 1000),
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
  };
}

export async function lookupScale(pgUrl, { sizes = [1_000, 100_000, 1_000_000], iterations = 2000 } = {}) {
  const ds = new DataSource({
    type: 'postgres',
    url: pgUrl,
    entities: [Subscriber],
    synchronize: true,
    dropSchema: true,
  });
  await ds.initialize();
  const store = new SubscriptionStore(ds, Subscriber);
  // the module's default: the pattern cache on (`subscriptionCacheTtl` 1000 ms); past 10,000 distinct patterns it holds
  // nothing and every lookup queries, plus one version read per second
  const cached = new SubscriptionStore(ds, Subscriber, { cacheTtl: 1000 });
  await cached.start();
  const repo = ds.getRepository(Subscriber);
  const rows = [];
  let base;
  try {
    for (const size of sizes) {
      await fill(ds, size);
      const name = (i) => `res${(i * 7919) % RESOURCES}.created`;
      let matched = 0;
      const r = await measure(async (i) => {
        matched = (await store.find(name(i), `user${i % 50000}`)).length;
      }, iterations);
      base ??= r;
      rows.push({
        scenario: 'lookup at scale',
        case: `${size.toLocaleString('en')} rows (PostgreSQL), with sender`,
        value: round(r.perSecond, 0),
        unit: 'lookups/s',
        p50ms: round(r.p50, 3),
        p99ms: round(r.p99, 3),
        baseline: round(base.p99, 3),
        baselineName: 'p99 of the same lookup at 1,000 rows (ratio = p99 / that)',
        ratio: round(r.p99 / base.p99, 2),
        target: size === 1_000_000 ? 'p99 <= 2 ms' : undefined,
        note: `${matched} rows matched the last lookup`,
      });
      const c = await measure(async (i) => {
        await cached.find(name(i), `user${i % 50000}`);
      }, iterations);
      rows.push({
        scenario: 'lookup at scale',
        case: `${size.toLocaleString('en')} rows, pattern cache on (default)`,
        value: round(c.perSecond, 0),
        unit: 'lookups/s',
        p50ms: round(c.p50, 3),
        p99ms: round(c.p99, 3),
        baseline: round(r.p99, 3),
        baselineName: 'p99 of the same lookup without the cache, same size (ratio = p99 / that)',
        ratio: round(c.p99 / r.p99, 2),
        target: size === 1_000_000 ? 'p99 <= 2 ms' : undefined,
        note: `${cached.patternCache?.size ?? 'too many'} patterns cached`,
      });
      if (size <= 100_000) {
        const naive = await measure(
          async (i) => {
            const all = await repo.find();
            return all.filter((s) => matchesPattern(s.event, name(i)));
          },
          size <= 1000 ? 200 : 5,
        );
        rows.push({
          scenario: 'lookup at scale',
          case: `${size.toLocaleString('en')} rows, naive scan (reference)`,
          value: round(naive.perSecond, 1),
          unit: 'lookups/s',
          p50ms: round(naive.p50, 2),
          p99ms: round(naive.p99, 2),
          baseline: round(r.perSecond, 0),
          baselineName: 'indexed lookup at the same size (ratio = naive / indexed)',
          ratio: round(naive.perSecond / r.perSecond, 4),
        });
      }
    }
  } finally {
    cached.close();
    await ds.destroy();
  }
  return rows;
}
