// Scenario "ledger": the delivery ledger on PostgreSQL (SPEC §9), next to baselines measured in the same run.
//   - throughput, K=10 static subscribers per event: ledger-on direct vs ledger-off direct, and ledger-on bull (one
//     worker, in this process) vs ledger-off bull; events recorded 100 at a time (bufferEvents → one INSERT)
//   - first attempt after commit: time from send() resolving (the event committed) to the request's arrival, p50/p99
//   - backlog drain: `backlog` pending deliveries inserted by SQL, drained by one direct process; heap sampled
//     (THORN_BENCH_BACKLOG=1000000 for the full size)
//   - pruning: finished deliveries deleted per second by the retention job's statement
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import http from 'node:http';
import { DataSource } from 'typeorm';
import {
  EventService,
  Subscriber,
  THORN_LEDGER_ENTITIES,
  ThornLedger,
  ThornModule,
  blockInternalIps,
  ensureProtocol,
} from 'nestjs-thorn';
import { quantile, round } from './lib.mjs';

const K = 10;

async function database(pgUrl, name) {
  const admin = new DataSource({ type: 'postgres', url: pgUrl });
  await admin.initialize();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.destroy();
  const url = new URL(pgUrl);
  url.pathname = `/${name}`;
  return String(url);
}

async function boot(pgUrl, thornOptions) {
  class App {}
  Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: pgUrl,
        entities: [Subscriber, ...THORN_LEDGER_ENTITIES],
        synchronize: true,
        extra: { max: 10 },
      }),
      ThornModule.forRoot({
        controller: false,
        retry: false,
        concurrency: 64,
        recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http')],
        ...thornOptions,
      }),
    ],
  })(App);
  const app = await NestFactory.createApplicationContext(App, { logger: ['error'] });
  return {
    app,
    ds: app.get(getDataSourceToken()),
    events: app.get(EventService),
    ledger: app.get(ThornLedger),
  };
}

const subscribersOf = (url, k) => ({
  'bench.*': Array.from({ length: k }, (_, i) => ({ url: `${url}/l${i}`, hmacSecret: `secret-${i}` })),
});

/** Sends `events` events 100 per buffer (a window of 4 buffers), waits until the receiver has every delivery. */
async function pump(ctx, receiver, events, k) {
  await receiver.reset();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < events) {
        const from = next;
        next = Math.min(events, next + 100);
        await ctx.events.bufferEvents(async () => {
          for (let i = from; i < next; i++)
            await ctx.events.send('bench.created', { n: i, title: 'x'.repeat(200) });
        });
      }
    }),
  );
  await receiver.waitFor(events * k, 120_000);
  return (events * k) / ((performance.now() - t0) / 1000);
}

async function throughput(pgUrl, redisUrl, receiver, events) {
  const rows = [];
  const run = async (options) => {
    const ctx = await boot(pgUrl, { subscribers: subscribersOf(receiver.url, K), ...options });
    try {
      await pump(ctx, receiver, Math.ceil(events / 10), K); // warm-up
      return await pump(ctx, receiver, events, K);
    } finally {
      await ctx.app.close();
    }
  };
  const off = await run({ dispatcher: 'direct' });
  const on = await run({ dispatcher: 'direct', ledger: { pollInterval: 1000 } });
  rows.push({
    scenario: 'ledger',
    case: `direct, PostgreSQL, K=${K}`,
    value: round(on, 0),
    unit: 'deliveries/s',
    baseline: round(off, 0),
    baselineName: 'ledger-off direct dispatcher, same subscribers and events',
    ratio: round(on / off, 2),
    target: '≥ 10,000/s and ≥ 0.5',
    met: on >= 10_000 && on / off >= 0.5,
    note: `${events} events × ${K}; every event, delivery and attempt written to PostgreSQL`,
  });
  if (redisUrl) {
    const bull = (ledger, prefix) => ({
      dispatcher: 'bull',
      bull: { url: redisUrl, prefix },
      worker: true,
      chunkSize: 50,
      ...(ledger ? { ledger: { pollInterval: 1000 } } : {}),
    });
    const bullOff = await run(bull(false, `bench-ledger-off-${process.pid}`));
    const bullOn = await run(bull(true, `bench-ledger-on-${process.pid}`));
    rows.push({
      scenario: 'ledger',
      case: `bull, one worker, PostgreSQL, K=${K}`,
      value: round(bullOn, 0),
      unit: 'deliveries/s',
      baseline: round(bullOff, 0),
      baselineName: 'ledger-off bull, one worker in the same process',
      ratio: round(bullOn / bullOff, 2),
      target: '≥ 10,000/s',
      met: bullOn >= 10_000,
      note: 'jobs carry delivery ids only; the worker reads events and subscriptions from PostgreSQL',
    });
  }
  return rows;
}

/** Commit → request latency: one event at a time to one subscriber, an in-process receiver timestamps arrivals. */
async function firstAttempt(pgUrl, n = 300) {
  let arrived = () => {};
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      arrived(performance.now());
      res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const ctx = await boot(pgUrl, { subscribers: subscribersOf(url, 1), ledger: { pollInterval: 1000 } });
  const latencies = [];
  try {
    for (let i = 0; i < n + 20; i++) {
      const got = new Promise((r) => (arrived = r));
      await ctx.events.send('bench.latency', { i });
      const committed = performance.now();
      const at = await got;
      if (i >= 20) latencies.push(at - committed);
    }
  } finally {
    await ctx.app.close();
    server.close();
  }
  const p50 = quantile(latencies, 0.5);
  return {
    scenario: 'ledger',
    case: 'first attempt after commit (PostgreSQL)',
    value: round(p50, 2),
    unit: 'ms p50',
    baseline: '-',
    ratio: '-',
    p50ms: round(p50, 2),
    p99ms: round(quantile(latencies, 0.99), 2),
    target: 'p50 ≤ 5 ms',
    met: p50 <= 5,
    note: `${n} events, one at a time: send() resolved (recorded, committed) → request arrived`,
  };
}

/** Drains `backlog` pending deliveries inserted by SQL; heap sampled every 200 ms; then prunes them. */
async function backlogDrain(pgUrl, receiver, backlog) {
  const ctx = await boot(pgUrl, {
    subscribers: subscribersOf(receiver.url, 1),
    ledger: { pollInterval: 200, batchSize: 1000 },
    dispatcher: 'disabled', // fill the tables first, without a relay
  });
  const [recipient] = await ctx.events.subscribersFor('bench.backlog');
  const now = Date.now();
  // one event per 100 deliveries, all due now
  await ctx.ds.query(
    `INSERT INTO thorn_event (id, name, payload, created_at, fanned_out_at)
     SELECT md5(g::text)::uuid::text, 'bench.backlog', '{"title":"${'x'.repeat(200)}"}', $1, $1
     FROM generate_series(0, $2) g`,
    [now, Math.ceil(backlog / 100) - 1],
  );
  await ctx.ds.query(
    `INSERT INTO thorn_delivery (id, event_id, event, subscription_id, source, url, status, attempts, next_attempt_at,
                                 created_at, updated_at)
     SELECT gen_random_uuid()::text, md5((g / 100)::text)::uuid::text, 'bench.backlog', $1, 'static', $2, 'pending', 0,
            $3, $3, $3
     FROM generate_series(0, $4) g`,
    [recipient.id, recipient.url, now, backlog - 1],
  );
  await ctx.ds.query('ANALYZE thorn_delivery');
  await ctx.app.close();
  await receiver.reset();

  globalThis.gc?.();
  const drain = await boot(pgUrl, {
    subscribers: subscribersOf(receiver.url, 1),
    ledger: { pollInterval: 200, batchSize: 1000 },
  });
  const heap = [];
  // live heap: collected before each sample when the bench runs with --expose-gc (npm run bench does)
  const sampler = setInterval(() => {
    globalThis.gc?.();
    heap.push(process.memoryUsage().heapUsed);
  }, 500);
  const t0 = performance.now();
  await receiver.waitFor(backlog, 600_000);
  await drain.ledger.idle();
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  // pruning: every delivery is finished; make them all older than the retention cut-off
  await drain.ds.query('UPDATE thorn_delivery SET updated_at = 0');
  await drain.ds.query('UPDATE thorn_event SET created_at = 0');
  const p0 = performance.now();
  let pruned = 0;
  for (let n; (n = await drain.ledger.store.prune(1, 5000)) > 0;) pruned += n;
  const pruneSeconds = (performance.now() - p0) / 1000;
  await drain.app.close();
  const first = heap.slice(0, 5);
  const mib = (b) => round(b / 2 ** 20, 0);
  return [
    {
      scenario: 'ledger',
      case: `backlog of ${backlog.toLocaleString('en-US')} pending, direct`,
      value: round(backlog / seconds, 0),
      unit: 'deliveries/s',
      baseline: `${mib(Math.max(...first))} MiB heap at start`,
      ratio: round(Math.max(...heap) / Math.max(...first), 2),
      target: 'heap flat (ratio max/start ≈ 1)',
      met: Math.max(...heap) / Math.max(...first) < 1.5,
      note: `heap max ${mib(Math.max(...heap))} MiB, ${heap.length} samples${globalThis.gc ? ' after GC' : ' (no --expose-gc: garbage included)'}; claims of 1000 at a time`,
    },
    {
      scenario: 'ledger',
      case: 'pruning finished rows (retention)',
      value: round(pruned / pruneSeconds, 0),
      unit: 'rows/s',
      baseline: '-',
      ratio: '-',
      note: `${pruned.toLocaleString('en-US')} rows (deliveries, attempts' parents and events) in batches of 5000`,
    },
  ];
}

export async function ledgerBench({ pgUrl, redisUrl, receiver }, { events = 4000, backlog } = {}) {
  const url = await database(pgUrl, 'bench_ledger');
  const rows = [];
  rows.push(...(await throughput(url, redisUrl, receiver, events)));
  rows.push(await firstAttempt(url));
  rows.push(
    ...(await backlogDrain(url, receiver, backlog ?? Number(process.env.THORN_BENCH_BACKLOG ?? 200_000))),
  );
  return rows;
}
