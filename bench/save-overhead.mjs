// Scenario 2: what model events add to TypeORM save(). A @WebhookModel entity with @ModelEvent on create and change,
// saved one at a time, against an identical undecorated entity saved through the same DataSource (baseline), runs
// interleaved A/B/B/A so drift hits both. Three setups per database:
//   - "0 matching": direct dispatcher, no static subscribers, 1,000 stored subscriptions to other events; once with
//     the pattern cache on (the default `subscriptionCacheTtl`: an event none of whose candidate patterns is stored
//     skips the lookup) and once with it off (`subscriptionCacheTtl: 0`: one SELECT on thorn_subscriber per event, as
//     before the cache), so the two are compared in the same run;
//   - "bull, 10 subscribers": 10 static subscribers, bull dispatcher on a real Redis, producer only (worker: false),
//     so the save pays for building the message and enqueueing it. The bull dispatcher coalesces the events sent in
//     one event-loop turn into one add: with SQLite in memory the sequential saves of a batch never wait for I/O, so
//     they all share a turn; with PostgreSQL each save waits for the server, so a sequential save's event goes alone.
//   - "bull, 10 subscribers, 8 concurrent saves" (PostgreSQL): the same, with 8 lanes of sequential saves side by
//     side (8 requests at once, say), baseline saved the same way: what coalescing gives with a real server.
// Model events are dispatched after commit in the background: every timed batch ends with ModelEventEmitter.idle(), so
// that work is inside the measurement.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import {
  EventService,
  ModelEvent,
  ModelEventEmitter,
  Subscriber,
  ThornModule,
  WebhookModel,
  blockInternalIps,
  ensureProtocol,
  THORN_LEDGER_ENTITIES,
  ThornLedger,
} from 'nestjs-thorn';
import { median, round } from './lib.mjs';

// Identical columns on both entities; only the decorators differ.
class BenchArticle {
  webhookPayload() {
    return { title: this.title, state: this.state, views: this.views };
  }
}
class PlainArticle {}
for (const [cls, table] of [
  [BenchArticle, 'bench_article'],
  [PlainArticle, 'plain_article'],
]) {
  Entity(table)(cls);
  PrimaryGeneratedColumn()(cls.prototype, 'id');
  Column({ type: 'varchar', length: 200 })(cls.prototype, 'title');
  Column({ type: 'text' })(cls.prototype, 'body');
  Column({ type: 'varchar', length: 20, default: 'DRAFT' })(cls.prototype, 'state');
  Column({ type: 'int' })(cls.prototype, 'authorId');
  Column({ type: 'int', default: 0 })(cls.prototype, 'views');
}
// class decorators apply bottom-up, as they would be written top-down
ModelEvent('article.changed', { on: 'change' })(BenchArticle);
ModelEvent('article.created', { on: 'create' })(BenchArticle);
WebhookModel({ senderField: 'authorId' })(BenchArticle);

const BODY = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(4);

async function boot(dbOptions, thornOptions) {
  class App {}
  Module({
    imports: [
      TypeOrmModule.forRoot({
        ...dbOptions,
        entities: [Subscriber, BenchArticle, PlainArticle, ...THORN_LEDGER_ENTITIES],
        synchronize: true,
        dropSchema: true,
      }),
      ThornModule.forRoot({
        controller: false,
        recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http')],
        ...thornOptions,
      }),
    ],
  })(App);
  const app = await NestFactory.createApplicationContext(App, { logger: ['error'] });
  const ds = app.get(getDataSourceToken());
  const ledger = app.get(ThornLedger);
  // "background dispatch finished": model-event dispatches, and with the ledger its fan-out of the recorded events
  const idle = async () => {
    await app.get(ModelEventEmitter).idle();
    await ledger?.idle();
  };
  return { app, ds, emitter: { idle }, events: app.get(EventService) };
}

/** `n` stored subscriptions to events no bench entity raises (`other<i>.created`, owned by nobody). */
async function storeOthers(ds, n) {
  const repo = ds.getRepository(Subscriber);
  await repo.save(
    Array.from({ length: n }, (_, i) =>
      repo.create({ event: `other${i}.created`, url: `https://hooks.example.com/${i}`, user: null }),
    ),
    { chunk: 200 },
  );
}

/** `n` steps, `lanes` of them at a time: lane l runs steps l, l + lanes, … one after another. */
async function inLanes(n, lanes, step) {
  await Promise.all(
    Array.from({ length: lanes }, async (_, l) => {
      for (let i = l; i < n; i += lanes) await step(i);
    }),
  );
}

/**
 * One timed batch: `n` inserts (one save() each), then `n` updates of those rows; background events included.
 * `lanes` > 1: that many sequences of saves side by side.
 */
async function batch(ctx, cls, n, seq, lanes = 1) {
  const repo = ctx.ds.getRepository(cls);
  const rows = new Array(n);
  let c0 = process.cpuUsage();
  let t0 = performance.now();
  await inLanes(n, lanes, async (i) => {
    const a = repo.create({ title: `Article ${seq}-${i}`, body: BODY, authorId: 1 + (i % 50), views: 0 });
    rows[i] = await repo.save(a);
  });
  await ctx.emitter.idle();
  const insertMs = performance.now() - t0;
  const insertCpu = cpuMs(c0);
  c0 = process.cpuUsage();
  t0 = performance.now();
  await inLanes(n, lanes, async (i) => {
    const a = rows[i];
    a.views++;
    a.state = 'PUBLISHED';
    await repo.save(a);
  });
  await ctx.emitter.idle();
  const updateMs = performance.now() - t0;
  const updateCpu = cpuMs(c0);
  return { insertMs, updateMs, insertCpu, updateCpu };
}

/** This process's CPU time (user + system) since `since`, in ms. */
function cpuMs(since) {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

/**
 * `runs` A/B pairs (order alternating) of `n` saves each; the ratio is taken per pair (same moment, same noise), and
 * the median pair ratio is reported with the median rates.
 */
async function compare(ctx, n, runs, afterRun, lanes = 1) {
  // warm up both paths (JIT, statement caches, the queue connection)
  for (let w = 0; w < 2; w++) {
    await batch(ctx, PlainArticle, Math.ceil(n / 4), `w${w}`, lanes);
    await batch(ctx, BenchArticle, Math.ceil(n / 4), `w${w}`, lanes);
    await afterRun?.();
  }
  const pairs = [];
  for (let r = 0; r < runs; r++) {
    const order = r % 2 ? ['decorated', 'plain'] : ['plain', 'decorated'];
    const out = {};
    for (const which of order) {
      out[which] = await batch(ctx, which === 'plain' ? PlainArticle : BenchArticle, n, r, lanes);
      await afterRun?.();
    }
    pairs.push(out);
  }
  const summarize = (key) => {
    const ratios = pairs.map((p) => p.decorated[key] / p.plain[key]);
    return {
      rate: median(pairs.map((p) => (n / p.decorated[key]) * 1000)),
      baseRate: median(pairs.map((p) => (n / p.plain[key]) * 1000)),
      ratio: median(ratios),
      addedUs: median(pairs.map((p) => ((p.decorated[key] - p.plain[key]) / n) * 1000)),
      runs: ratios.map((x) => round(x, 3)),
      // this process's CPU time per save, decorated / plain: less sensitive than wall time to other load on the machine
      cpuRatio: median(
        pairs.map((p) => p.decorated[`${key.slice(0, 6)}Cpu`] / p.plain[`${key.slice(0, 6)}Cpu`]),
      ),
    };
  };
  return { insert: summarize('insertMs'), update: summarize('updateMs') };
}

export async function saveOverhead(
  { pgUrl, redisUrl, receiverUrl },
  { runs = 7, sqliteSaves = 2000, pgSaves = 1000, only } = {},
) {
  const rows = [];
  const databases = [['SQLite :memory:', { type: 'better-sqlite3', database: ':memory:' }, sqliteSaves]];
  if (pgUrl) {
    // its own database, so the lookup scenario's tables are never touched
    const admin = new DataSource({ type: 'postgres', url: pgUrl });
    await admin.initialize();
    await admin.query('DROP DATABASE IF EXISTS bench_save');
    await admin.query('CREATE DATABASE bench_save');
    await admin.destroy();
    const url = new URL(pgUrl);
    url.pathname = '/bench_save';
    databases.push(['PostgreSQL', { type: 'postgres', url: String(url) }, pgSaves]);
  }
  const subscribers = Array.from({ length: 10 }, (_, i) => ({
    url: `${receiverUrl}/save-${i}`,
    hmacSecret: `secret-${i}`,
  }));
  const setups = [
    ['0 matching of 1,000 stored, pattern cache', { dispatcher: 'direct' }, '≤ 1.10', true],
    [
      '0 matching of 1,000 stored, ledger on',
      { dispatcher: 'direct', ledger: { pollInterval: 1000 } },
      '≤ 1.35',
      true,
    ],
    [
      '0 matching of 1,000 stored, no cache (before)',
      { dispatcher: 'direct', subscriptionCacheTtl: 0 },
      undefined,
      true,
    ],
  ];
  if (redisUrl) {
    const bull = {
      dispatcher: 'bull',
      bull: { url: redisUrl, prefix: `bench-save-${process.pid}` },
      worker: false,
      subscribers: { 'article.*': subscribers },
    };
    setups.push(['10 subscribers, bull producer-only', bull, '≤ 1.5']);
    // PostgreSQL only: on SQLite (one connection) concurrent saves would join one another's transaction
    setups.push([
      '10 subscribers, bull producer-only, 8 concurrent saves',
      bull,
      '≤ 1.5',
      false,
      8,
      'PostgreSQL',
    ]);
  }
  for (const [dbName, dbOptions, n] of databases) {
    for (const [setupName, thornOptions, target, stored, lanes = 1, onlyDb] of setups) {
      if (only && !only.some((o) => setupName.includes(o))) continue;
      if (onlyDb && onlyDb !== dbName) continue;
      const ctx = await boot(dbOptions, thornOptions);
      const queue = ctx.events.dispatcher.queue;
      let result;
      try {
        if (stored) await storeOthers(ctx.ds, 1000);
        if (queue) await queue.obliterate({ force: true });
        // drop enqueued jobs between runs (outside the timing) so Redis does not grow
        result = await compare(ctx, n, runs, queue ? () => queue.empty() : undefined, lanes);
        if (queue) {
          // check that a save really enqueues a job (the timed runs' jobs were dropped between runs)
          await ctx.ds.getRepository(BenchArticle).save({ title: 't', body: 'b', authorId: 1 });
          await ctx.emitter.idle();
          const waiting = await queue.getWaitingCount();
          if (waiting < 1) throw new Error('bull: no job enqueued for a save');
          await queue.obliterate({ force: true });
        }
      } finally {
        await ctx.app.close();
      }
      for (const op of ['insert', 'update']) {
        const r = result[op];
        rows.push({
          scenario: 'save overhead',
          case: `${dbName} ${op}, ${setupName}`,
          value: round(r.rate, 0),
          unit: 'saves/s',
          baseline: round(r.baseRate, 0),
          baselineName: 'same save() of an identical undecorated entity, same DataSource, runs interleaved',
          ratio: round(r.ratio, 2),
          target,
          met: target ? r.ratio <= Number(target.replace('≤ ', '')) : undefined,
          runs: r.runs,
          cpuRatio: round(r.cpuRatio, 2),
          note: `ratio = decorated time / baseline time (this process's CPU time: ${round(r.cpuRatio, 2)}); +${round(r.addedUs, 0)} µs per save; ${n} ${lanes > 1 ? `save()s in ${lanes} concurrent lanes` : 'sequential save()s'} per run, background dispatch finished inside the timing`,
        });
      }
    }
  }
  return rows;
}
