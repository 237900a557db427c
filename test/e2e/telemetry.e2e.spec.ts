// OpenTelemetry traces and metrics, read back through the official SDK's in-memory exporters, with a real receiver on
// 127.0.0.1 (and a real Redis for the queue gauge).
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { context, metrics, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import {
  blockInternalIps,
  ensureProtocol,
  EventService,
  THORN_TELEMETRY,
  ThornModule,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SECRET = 'hmac-secret-never-in-telemetry';
const redisUrl = process.env.THORN_TEST_REDIS_URL;
if (!redisUrl && process.env.CI)
  throw new Error('THORN_TEST_REDIS_URL is not set: run the tests with `npm test`');
const loopback = () => [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http', 'https')];
const M = THORN_TELEMETRY.metrics;

/** A port with nothing listening (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('OpenTelemetry (SDK in-memory exporters)', () => {
  let receiver: TestReceiver;
  let spans: InMemorySpanExporter;
  let metricExporter: InMemoryMetricExporter;
  let reader: PeriodicExportingMetricReader;
  let tracerProvider: BasicTracerProvider;
  let meterProvider: MeterProvider;
  const apps: INestApplicationContext[] = [];

  async function boot(options: ThornModuleOptions): Promise<EventService> {
    const app = await NestFactory.createApplicationContext(
      ThornModule.forRoot({
        subscriberEntity: false,
        controller: false,
        recipientValidators: loopback(),
        retryDelay: 0,
        ...options,
      }),
      { logger: false },
    );
    await app.init();
    apps.push(app);
    return app.get(EventService);
  }

  /** Every metric point exported so far, by metric name. */
  async function collect(): Promise<Map<string, DataPoint<unknown>[]>> {
    metricExporter.reset();
    await reader.forceFlush();
    const out = new Map<string, DataPoint<unknown>[]>();
    for (const rm of metricExporter.getMetrics())
      for (const sm of rm.scopeMetrics)
        for (const m of sm.metrics) {
          expect(sm.scope.name).toBe('nestjs-thorn');
          out.set(m.descriptor.name, [...(out.get(m.descriptor.name) ?? []), ...m.dataPoints]);
        }
    return out;
  }

  const byName = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name);
  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(async () => {
    context.disable();
    await receiver.stop();
  });

  beforeEach(() => {
    receiver.requests.length = 0;
    receiver.reply = () => ({ status: 200 });
    spans = new InMemorySpanExporter();
    tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    trace.setGlobalTracerProvider(tracerProvider);
    metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    meterProvider = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(meterProvider);
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    trace.disable();
    metrics.disable();
    propagation.disable();
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  });

  it('a send is a PRODUCER span with one CLIENT span per HTTP attempt (HTTP semantic conventions)', async () => {
    const events = await boot({
      subscribers: { 'order.*': { url: `${receiver.url}/hook`, hmacSecret: SECRET } },
    });
    const result = await events.send('order.paid', { id: 1 });
    expect(result.deliveries).toMatchObject([{ ok: true, status: 200 }]);

    const [send] = byName('send order.paid');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.attributes).toMatchObject({
      'thorn.event.name': 'order.paid',
      'thorn.deliveries': 1,
      'thorn.deliveries.failed': 0,
      'messaging.operation.type': 'send',
    });
    const [http] = byName('POST');
    expect(http.kind).toBe(SpanKind.CLIENT);
    expect(parentOf(http)).toBe(send.spanContext().spanId);
    expect(http.spanContext().traceId).toBe(send.spanContext().traceId);
    const port = Number(new URL(receiver.url).port);
    expect(http.attributes).toEqual({
      'http.request.method': 'POST',
      'url.full': `${receiver.url}/hook`,
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': port,
      'http.response.status_code': 200,
      'thorn.event.name': 'order.paid',
      'thorn.delivery.id': result.deliveries[0].deliveryId,
      'thorn.subscription.id': result.deliveries[0].subscription,
    });
    expect(http.status.code).toBe(SpanStatusCode.UNSET);
    // the request carried no trace context: propagation is off by default
    expect(receiver.requests[0].headers.traceparent).toBeUndefined();
  });

  it('failed attempts: status errors and retries on the spans, outcomes and durations in the metrics', async () => {
    receiver.reply = (_req, i) => ({ status: i === 0 ? 503 : 200 });
    const dead = await closedPort();
    const events = await boot({
      retryMax: 1,
      subscribers: {
        'order.*': [
          { url: `${receiver.url}/flaky`, hmacSecret: SECRET },
          { url: `http://127.0.0.1:${dead}/down`, hmacSecret: SECRET },
        ],
        farewell: { url: `${receiver.url}/gone`, hmacSecret: SECRET },
      },
      recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] })],
    });
    await events.send('order.shipped', { id: 2 });
    // first attempts done; the two retries (retryDelay 0) follow on timers
    await receiver.waitFor(2);
    const until = async (cond: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error('timed out waiting for spans');
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await until(() => byName('POST').length === 4);
    receiver.reply = () => ({ status: 410 });
    await events.send('farewell', {});

    const http = byName('POST');
    const flaky = http.filter((s) => String(s.attributes['url.full']).endsWith('/flaky'));
    expect(flaky.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 200]);
    expect(flaky[0].status.code).toBe(SpanStatusCode.ERROR);
    expect(flaky[0].attributes['error.type']).toBe('503');
    expect(flaky[0].attributes['http.request.resend_count']).toBeUndefined();
    expect(flaky[1].attributes['http.request.resend_count']).toBe(1);
    expect(flaky[1].status.code).toBe(SpanStatusCode.UNSET);

    const down = http.filter((s) => String(s.attributes['url.full']).endsWith('/down'));
    expect(down).toHaveLength(2);
    for (const s of down) {
      expect(s.status.code).toBe(SpanStatusCode.ERROR);
      expect(s.attributes['error.type']).toBe('ECONNREFUSED');
      expect(s.attributes['http.response.status_code']).toBeUndefined();
      expect(s.events.map((e) => e.name)).toEqual(['exception']);
    }

    const points = await collect();
    const deliveries = (points.get(M.deliveries) ?? []).map((p) => [
      p.attributes['thorn.event.name'],
      p.attributes['thorn.outcome'],
      p.value,
    ]);
    expect(deliveries.sort()).toEqual(
      [
        ['farewell', 'gone', 1],
        ['order.shipped', 'failed', 1],
        ['order.shipped', 'succeeded', 1],
      ].sort(),
    );
    const durations = (points.get(M.attemptDuration) ?? []) as DataPoint<Histogram>[];
    const count = (outcome: string, extra: Record<string, unknown> = {}) =>
      durations
        .filter(
          (p) =>
            p.attributes['thorn.outcome'] === outcome &&
            Object.entries(extra).every(([k, v]) => p.attributes[k] === v),
        )
        .reduce((n, p) => n + p.value.count, 0);
    expect(count('retrying', { 'http.response.status_code': 503, 'error.type': '503' })).toBe(1);
    expect(count('retrying', { 'error.type': 'ECONNREFUSED' })).toBe(1);
    expect(count('failed', { 'error.type': 'ECONNREFUSED' })).toBe(1);
    expect(count('succeeded', { 'http.response.status_code': 200 })).toBe(1);
    expect(count('gone', { 'http.response.status_code': 410 })).toBe(1);
    for (const p of durations) expect(p.value.sum).toBeGreaterThanOrEqual(0);
    expect(durations.every((p) => (p.value.sum ?? 0) < 10)).toBe(true); // seconds, not ms
    const sent = (points.get(M.events) ?? []).map((p) => [p.attributes['thorn.event.name'], p.value]);
    expect(sent.sort()).toEqual([
      ['farewell', 1],
      ['order.shipped', 1],
    ]);
  });

  it('never puts URL credentials, query strings or secrets in spans or metrics', async () => {
    const dead = await closedPort();
    const token = `tok-${randomUUID()}`;
    const events = await boot({
      retry: false,
      subscribers: {
        'user.*': [
          {
            url: `http://alice:pa55word@127.0.0.1:${new URL(receiver.url).port}/in?token=${token}#frag`,
            hmacSecret: SECRET,
          },
          { url: `http://bob:hunter2@127.0.0.1:${dead}/x?api_key=${token}`, hmacSecret: SECRET },
        ],
      },
      recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] })],
    });
    const result = await events.send(
      'user.created',
      { id: 3 },
      { headers: { Authorization: `Bearer ${token}` } },
    );
    expect(result.deliveries.map((d) => d.ok)).toEqual([true, false]);
    expect(receiver.requests[0].path).toBe(`/in?token=${token}`); // the receiver did get its query string

    const all = spans.getFinishedSpans();
    expect(
      all
        .map((s) => s.attributes['url.full'])
        .filter(Boolean)
        .sort(),
    ).toEqual([`http://127.0.0.1:${dead}/x`, `http://127.0.0.1:${new URL(receiver.url).port}/in`].sort());
    const text =
      JSON.stringify(all.map((s) => ({ n: s.name, a: s.attributes, e: s.events, st: s.status }))) +
      JSON.stringify(metricExporter.getMetrics()) +
      JSON.stringify([...(await collect()).values()]);
    for (const leak of [token, 'pa55word', 'hunter2', 'alice', 'bob', SECRET, 'frag']) {
      expect(text).not.toContain(leak);
    }
  });

  it('propagateTraceContext sends the CLIENT span as traceparent (registered propagator, or W3C by default)', async () => {
    const events = await boot({
      propagateTraceContext: true,
      subscribers: { 'a.b': { url: `${receiver.url}/p`, hmacSecret: SECRET } },
    });
    // no propagator registered: W3C traceparent written directly
    await events.send('a.b', {});
    // with the app's propagator (as the Node SDK registers it)
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    await events.send('a.b', {});
    const http = byName('POST');
    expect(http).toHaveLength(2);
    http.forEach((span, i) => {
      const { traceId, spanId } = span.spanContext();
      expect(receiver.requests[i].headers.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    });
  });

  (redisUrl ? it : it.skip)(
    'the bull queue depth is an observable gauge, read from Redis at each collection',
    async () => {
      const events = await boot({
        dispatcher: 'bull',
        bull: { url: redisUrl, prefix: `otel-${randomUUID()}` },
        worker: false, // producer only: jobs stay waiting
        subscribers: { 'a.b': { url: `${receiver.url}/q`, hmacSecret: SECRET } },
      });
      const depth = async () =>
        Object.fromEntries(
          ((await collect()).get(M.queueJobs) ?? []).map((p) => [p.attributes['thorn.queue.state'], p.value]),
        );
      expect(await depth()).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0 });
      for (let i = 0; i < 3; i++) await events.send('a.b', { i });
      expect(await depth()).toEqual({ waiting: 3, active: 0, delayed: 0, failed: 0 });
      expect(byName('send a.b').map((s) => s.attributes['thorn.queued'])).toEqual([true, true, true]);
      expect(receiver.requests).toHaveLength(0);
    },
  );

  (redisUrl ? it : it.skip)(
    'through bull, the send span travels with the job (traceparent only): chunk and retry attempts are its children',
    async () => {
      const seen = new Set<string>();
      receiver.reply = (req) => {
        const first = !seen.has(req.path);
        seen.add(req.path);
        return { status: req.path === '/one' && first ? 503 : 200 };
      };
      const prefix = `otel-trace-${randomUUID()}`;
      const events = await boot({
        dispatcher: 'bull',
        bull: { url: redisUrl, prefix },
        worker: true,
        chunkSize: 1, // two recipients: the event job fans out into chunk jobs
        retryMax: 1,
        subscribers: {
          'a.b': [
            { url: `${receiver.url}/one`, hmacSecret: SECRET },
            { url: `${receiver.url}/two`, hmacSecret: SECRET },
          ],
        },
      });
      await events.send('a.b', { traced: true });
      await receiver.waitFor(3);
      const deadline = Date.now() + 5000;
      while (byName('POST').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const [send] = byName('send a.b');
      const http = byName('POST');
      expect(http.map((s) => s.attributes['http.response.status_code']).sort()).toEqual([200, 200, 503]);
      for (const s of http) {
        expect(s.spanContext().traceId).toBe(send.spanContext().traceId);
        expect(parentOf(s)).toBe(send.spanContext().spanId);
      }
      // the receivers were not sent the trace context (propagateTraceContext is off)
      expect(receiver.requests.every((r) => r.headers.traceparent === undefined)).toBe(true);
    },
  );

  (redisUrl ? it : it.skip)(
    'through bull, sends coalesced into one event job keep their own traces: each attempt is a child of its own send span',
    async () => {
      const events = await boot({
        dispatcher: 'bull',
        bull: { url: redisUrl, prefix: `otel-coalesce-${randomUUID()}` },
        worker: true,
        subscribers: { 'c.*': { url: `${receiver.url}/hook`, hmacSecret: SECRET } },
      });
      // one turn: both events travel in one `event` job, each with its own send span's traceparent
      await Promise.all([events.send('c.one', {}), events.send('c.two', {})]);
      await receiver.waitFor(2);
      const deadline = Date.now() + 5000;
      while (byName('POST').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      while ((await events.queueStats())?.completed !== 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await events.queueStats()).toMatchObject({ completed: 1, failed: 0, waiting: 0 });
      const sends = ['c.one', 'c.two'].map((name) => byName(`send ${name}`)[0]);
      expect(sends[0].spanContext().traceId).not.toBe(sends[1].spanContext().traceId);
      for (const [i, name] of ['c.one', 'c.two'].entries()) {
        const http = byName('POST').filter((s) => s.attributes['thorn.event.name'] === name);
        expect(http).toHaveLength(1);
        expect(http[0].spanContext().traceId).toBe(sends[i].spanContext().traceId);
        expect(parentOf(http[0])).toBe(sends[i].spanContext().spanId);
      }
    },
  );

  it('without an SDK the API is a no-op: deliveries work and nothing is recorded', async () => {
    trace.disable();
    metrics.disable();
    const events = await boot({
      propagateTraceContext: true,
      subscribers: { 'a.b': { url: `${receiver.url}/n`, hmacSecret: SECRET } },
    });
    const result = await events.send('a.b', {});
    expect(result.deliveries[0].ok).toBe(true);
    expect(spans.getFinishedSpans()).toEqual([]);
    expect(receiver.requests[0].headers.traceparent).toBeUndefined();
    expect([...(await collect()).keys()]).toEqual([]);
  });
});
