// Operations of the delivery ledger on SQLite and PostgreSQL: the backlog gauges (read back through the OpenTelemetry
// SDK's in-memory metric exporter), the health indicator's ledger component, and the send span's trace context stored
// with the event so every later attempt (read back from the database, direct or through a bull worker) is its child.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { randomUUID } from 'node:crypto';
import {
  THORN_LEDGER_ENTITIES,
  THORN_TELEMETRY,
  ThornHealthIndicator,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { ThornLedger } from '../../lib/ledger/ledger.js';
import { testDatabases } from '../fixtures/databases.js';
import { bootModelApp, createSchema, type ModelApp } from '../fixtures/model-app.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SCHEMA = 'thorn_ledger_ops';
const M = THORN_TELEMETRY.metrics;
const redisUrl = process.env.THORN_TEST_REDIS_URL;
if (!redisUrl && process.env.CI)
  throw new Error('THORN_TEST_REDIS_URL is not set: run the tests with `npm test`');

describe.each(testDatabases)('delivery ledger operations ($name)', (db) => {
  const receiver = new TestReceiver();
  let t: ModelApp | undefined;
  let spans: InMemorySpanExporter;
  let metricExporter: InMemoryMetricExporter;
  let reader: PeriodicExportingMetricReader;
  let tracerProvider: BasicTracerProvider;
  let meterProvider: MeterProvider;

  const table = (name: string) => (db.name === 'postgres' ? `"${SCHEMA}".${name}` : name);
  const boot = async (extra: ThornModuleOptions = {}) => {
    t = await bootModelApp(db, SCHEMA, [...THORN_LEDGER_ENTITIES], {
      ledger: { pollInterval: 100 },
      subscribers: { 'ping.#': `${receiver.url}/ping` },
      defaultHmacSecret: 'ops-secret',
      ...extra,
    });
    return t;
  };

  /**
   * A pending delivery due at `dueAt` that another (hung) process holds a claim on for an hour: it stays overdue, as
   * when no relay runs or every process is stuck.
   */
  const stuck = (app: ModelApp, dueAt: number) => {
    const now = Date.now();
    return app.dataSource.query(
      `INSERT INTO ${table('thorn_delivery')} (id, event_id, event, subscription_id, source, url, status, attempts,
         next_attempt_at, claim, claimed_until, created_at, updated_at)
       VALUES ('${randomUUID()}', '${randomUUID()}', 'stuck.event', 'static-1', 'static', 'http://127.0.0.1:9/x',
         'pending', 0, ${dueAt}, '${randomUUID()}', ${now + 3_600_000}, ${now}, ${now})`,
    );
  };

  /** The points of the ledger gauges at a collection now. */
  async function backlog(): Promise<{ age?: number; due?: number }> {
    metricExporter.reset();
    await reader.forceFlush();
    const value = (name: string) => {
      const points: DataPoint<number>[] = [];
      for (const rm of metricExporter.getMetrics())
        for (const sm of rm.scopeMetrics)
          for (const m of sm.metrics)
            if (m.descriptor.name === name) points.push(...(m.dataPoints as DataPoint<number>[]));
      expect(points.length).toBeLessThanOrEqual(1);
      return points[0]?.value;
    };
    return { age: value(M.ledgerBacklogAge), due: value(M.ledgerBacklogDue) };
  }

  beforeAll(async () => {
    await receiver.start();
    await createSchema(db, SCHEMA);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(async () => {
    context.disable();
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.reset();
    spans = new InMemorySpanExporter();
    tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    trace.setGlobalTracerProvider(tracerProvider);
    metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    meterProvider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(meterProvider);
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    trace.disable();
    metrics.disable();
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  });

  it('backlog gauges: the oldest overdue delivery age and the due count, read at most once a second', async () => {
    const app = await boot();
    expect(await backlog()).toEqual({ age: 0, due: 0 });
    // delivered deliveries leave no backlog
    await app.events.send('ping.a', { i: 1 });
    await receiver.waitFor(1);
    await app.app.get(ThornLedger).idle();
    await new Promise((r) => setTimeout(r, 1100));
    expect(await backlog()).toEqual({ age: 0, due: 0 });

    const now = Date.now();
    await stuck(app, now - 90_000);
    await stuck(app, now - 30_000);
    await stuck(app, now + 60_000); // not due yet
    // the reading of a moment ago still serves this collection: no query per scrape
    expect(await backlog()).toEqual({ age: 0, due: 0 });
    await new Promise((r) => setTimeout(r, 1100));
    const { age, due } = await backlog();
    expect(due).toBe(2);
    expect(age).toBeGreaterThanOrEqual(90_000);
    expect(age).toBeLessThan(90_000 + 10_000);

    // finished: no longer due
    await app.dataSource.query(
      `UPDATE ${table('thorn_delivery')} SET status = 'succeeded', next_attempt_at = NULL WHERE event = 'stuck.event'`,
    );
    await new Promise((r) => setTimeout(r, 1100));
    expect(await backlog()).toEqual({ age: 0, due: 0 });
  });

  it('the due count stops at 10000 (a bounded scan, never a count of the whole table)', async () => {
    const app = await boot();
    const now = Date.now();
    const cols = `(id, event_id, event, subscription_id, source, url, status, attempts, next_attempt_at, claim,
      claimed_until, created_at, updated_at)`;
    const values = (id: string) =>
      `${id}, ${id}, 'stuck.event', 'static-1', 'static', 'http://127.0.0.1:9/x', 'pending', 0, ${now - 5000},
       'hung', ${now + 3_600_000}, ${now}, ${now}`;
    await app.dataSource.query(
      db.name === 'postgres'
        ? `INSERT INTO ${table('thorn_delivery')} ${cols}
           SELECT ${values(`lpad(g::text, 36, '0')`)} FROM generate_series(1, 10005) g`
        : `INSERT INTO thorn_delivery ${cols}
           WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 10005)
           SELECT ${values(`printf('%036d', g)`)} FROM s`,
    );
    const { age, due } = await backlog();
    expect(due).toBe(10_000);
    expect(age).toBeGreaterThanOrEqual(5000);
  });

  it('health: the ledger component is up below maxLedgerAge and down above it, with the age', async () => {
    const app = await boot();
    const health = app.app.get(ThornHealthIndicator);
    const up = await health.isHealthy('thorn');
    expect(up.thorn).toMatchObject({
      status: 'up',
      store: { status: 'up' },
      ledger: { status: 'up', oldestDueMs: 0, maxLedgerAge: 60_000 },
    });

    await stuck(app, Date.now() - 90_000);
    const down = await health.isHealthy('thorn');
    expect(down.thorn.status).toBe('down');
    expect(down.thorn.store).toMatchObject({ status: 'up' });
    const ledger = down.thorn.ledger as { status: string; oldestDueMs: number; message: string };
    expect(ledger.status).toBe('down');
    expect(ledger.oldestDueMs).toBeGreaterThanOrEqual(90_000);
    expect(ledger.message).toMatch(
      /^the oldest pending delivery has been due for \d+ ms, more than maxLedgerAge \(60000 ms\)$/,
    );
    // a wider threshold: up again, the age still reported
    const lenient = await health.checkLedger('thorn_ledger', { maxLedgerAge: 600_000 });
    expect(lenient.thorn_ledger).toMatchObject({ status: 'up', maxLedgerAge: 600_000 });
    expect(lenient.thorn_ledger.oldestDueMs).toBeGreaterThanOrEqual(90_000);
    expect((await health.checkLedger('l', { maxLedgerAge: 1000 })).l.status).toBe('down');
  });

  it('without the ledger: no backlog gauges, and the health indicator has no ledger component', async () => {
    const app = await boot({ ledger: false });
    expect(await backlog()).toEqual({ age: undefined, due: undefined });
    const health = app.app.get(ThornHealthIndicator);
    const all = await health.isHealthy('thorn');
    expect(all.thorn.status).toBe('up');
    expect(all.thorn.ledger).toBeUndefined();
    const asked = await health.checkLedger();
    expect(asked.thorn_ledger).toMatchObject({
      status: 'down',
      message: expect.stringMatching(/ledger is off/),
    });
  });

  it('an event woken twice before the relay runs (a poll finding it while it waits) is fanned out once', async () => {
    const app = await boot();
    const ledger = app.app.get(ThornLedger);
    await ledger.idle();
    const recorded = await ledger.record([
      { name: 'ping.twice', body: {}, context: {}, headers: {}, settings: ledger.options, keepAlive: true },
    ]);
    ledger.relay.wake(recorded.filter((e) => e !== undefined)); // as leftovers() does when the pump is busy for longer than a poll
    await receiver.waitFor(1);
    await ledger.idle();
    expect(await app.dataSource.query(`SELECT id FROM ${table('thorn_delivery')}`)).toHaveLength(1);
    expect(receiver.requests).toHaveLength(1);
  });

  it('attempts made after an idle() with nothing to write are still written', async () => {
    const app = await boot();
    const ledger = app.app.get(ThornLedger);
    await ledger.idle(); // flushes an empty buffer
    await app.events.send('ping.after', {});
    await receiver.waitFor(1);
    await ledger.idle();
    const rows = await app.dataSource.query(`SELECT status FROM ${table('thorn_delivery')}`);
    expect(rows.map((r: { status: string }) => r.status)).toEqual(['succeeded']);
  });

  const byName = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name);
  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

  it('traces: the send span is stored with the event; the first attempt and the retry read back later are its children', async () => {
    receiver.reply = (_req, i) => ({ status: i === 0 ? 503 : 200 });
    const app = await boot({ retry: true, retryMax: 2, retryDelay: 200 });
    await app.events.send('ping.traced', { i: 1 });
    await receiver.waitFor(2);
    await app.app.get(ThornLedger).idle();

    const [send] = byName('send ping.traced');
    const { traceId, spanId } = send.spanContext();
    // the event's meta holds the W3C traceparent and nothing else about the trace
    const [event] = await app.dataSource.query(`SELECT meta FROM ${table('thorn_event')}`);
    const meta = JSON.parse(event.meta);
    expect(meta.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    expect(Object.keys(meta).filter((k) => /trace|baggage/.test(k))).toEqual(['traceparent']);

    const http = byName('POST');
    expect(http.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 200]);
    for (const s of http) {
      expect(s.spanContext().traceId).toBe(traceId);
      expect(parentOf(s)).toBe(spanId);
    }
    // the receiver was not sent the trace context (propagateTraceContext is off)
    expect(receiver.requests.every((r) => r.headers.traceparent === undefined)).toBe(true);
  });

  it('traces: events relayed together each keep their own send span as the parent', async () => {
    const app = await boot();
    await Promise.all(['ping.a', 'ping.b', 'ping.c'].map((name) => app.events.send(name, {})));
    await receiver.waitFor(3);
    await app.app.get(ThornLedger).idle();
    const http = byName('POST');
    expect(http).toHaveLength(3);
    for (const name of ['ping.a', 'ping.b', 'ping.c']) {
      const [send] = byName(`send ${name}`);
      const mine = http.filter((s) => s.attributes['thorn.event.name'] === name);
      expect(mine).toHaveLength(1);
      expect(parentOf(mine[0])).toBe(send.spanContext().spanId);
      expect(mine[0].spanContext().traceId).toBe(send.spanContext().traceId);
    }
  });

  (redisUrl ? it : it.skip)(
    'traces through bull: a deliveries job (ids only) attempts as a child of the send span',
    async () => {
      const app = await boot({
        dispatcher: 'bull',
        bull: { url: redisUrl, prefix: `ledger-ops-${randomUUID()}` },
        worker: true,
      });
      await app.events.send('ping.queued', { i: 2 });
      await receiver.waitFor(1);
      const [send] = byName('send ping.queued');
      const deadline = Date.now() + 5000;
      while (!byName('POST').length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const [http] = byName('POST');
      expect(http.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(parentOf(http)).toBe(send.spanContext().spanId);
    },
  );
});
