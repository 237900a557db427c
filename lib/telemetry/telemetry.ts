// OpenTelemetry behind one small facade. `@opentelemetry/api` is an optional peer: it is loaded once with a dynamic
// import (never imported statically, so an app without it needs nothing) by `loadTelemetry()`, which ThornModule awaits
// before anything is sent; without it every function here just runs its callback. With the API but no SDK the API itself is a no-op. This file sits below delivery/: it
// imports nothing from the rest of the package but the version constant, and no OpenTelemetry type leaves it.
import { THORN_VERSION } from '../thorn.constants.js';
import { LEDGER_BACKLOG_COUNT_CAP, THORN_TELEMETRY } from './telemetry.names.js';

type Api = typeof import('@opentelemetry/api');
type Span = import('@opentelemetry/api').Span;
type Tracer = import('@opentelemetry/api').Tracer;
type Counter = import('@opentelemetry/api').Counter;
type Histogram = import('@opentelemetry/api').Histogram;
type Attributes = import('@opentelemetry/api').Attributes;

const SCOPE = 'nestjs-thorn';
// Seconds, as the HTTP semantic conventions recommend for durations (the SDK's default buckets are for ms).
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30];

const QUEUE_READ_TIMEOUT = 2000;

let loaded: Api | null = null;
let loading: Promise<void> | undefined;

/**
 * Loads the OpenTelemetry API if the app has it (once; a missing package is not an error). A dynamic import works in
 * both builds (ESM and CommonJS), where resolving with `import.meta.url` would not compile for CommonJS.
 */
export function loadTelemetry(): Promise<void> {
  loading ??= import('@opentelemetry/api').then(
    (api) => {
      loaded = api;
    },
    () => {
      loaded = null;
    },
  );
  return loading;
}

/** The OpenTelemetry API, or null when it is not installed (or not loaded yet: see `loadTelemetry`). */
function otelApi(): Api | null {
  return loaded;
}

// The API proxies tracers but not meters, and `trace.disable()` / `metrics.disable()` install new global providers:
// cache per provider object, so instruments follow whichever SDK is registered now.
const tracers = new WeakMap<object, Tracer>();
interface Instruments {
  events: Counter;
  deliveries: Counter;
  attemptDuration: Histogram;
}
const instruments = new WeakMap<object, Instruments | null>();

function tracerOf(api: Api): Tracer {
  const provider = api.trace.getTracerProvider();
  let tracer = tracers.get(provider);
  if (!tracer) {
    tracer = provider.getTracer(SCOPE, THORN_VERSION);
    tracers.set(provider, tracer);
  }
  return tracer;
}

/** The instruments of the registered meter provider; null when it is the API's no-op (no SDK): nothing to record. */
function instrumentsOf(api: Api): Instruments | null {
  const provider = api.metrics.getMeterProvider();
  let i = instruments.get(provider);
  if (i === undefined) {
    const meter = provider.getMeter(SCOPE, THORN_VERSION);
    i =
      meter === api.createNoopMeter()
        ? null
        : {
            events: meter.createCounter(THORN_TELEMETRY.metrics.events, {
              description: 'Events sent (send() calls that reached a dispatcher)',
              unit: '{event}',
            }),
            deliveries: meter.createCounter(THORN_TELEMETRY.metrics.deliveries, {
              description:
                'Deliveries that reached their final outcome (succeeded, failed after its retries, or gone)',
              unit: '{delivery}',
            }),
            attemptDuration: meter.createHistogram(THORN_TELEMETRY.metrics.attemptDuration, {
              description: 'Duration of one delivery attempt (redirect hops included)',
              unit: 's',
              advice: { explicitBucketBoundaries: DURATION_BUCKETS },
            }),
          };
    instruments.set(provider, i);
  }
  return i;
}

/** A span nobody records and no context carries (the API without an SDK): skip the work around it. */
function isInert(api: Api, span: Span): boolean {
  return !span.isRecording() && !api.trace.isSpanContextValid(span.spanContext());
}

/** What a send reports back (the dispatcher's `SendResult`, structurally). */
export interface SendSummary {
  deliveries: { ok: boolean }[];
  queued?: boolean;
  buffered?: boolean;
}

/**
 * Runs one event send inside a PRODUCER span `send <event>` (so the HTTP spans of its first attempts are its
 * children) and counts it. A rejected send is recorded on the span and rethrown.
 */
export function traceSend<T extends SendSummary>(event: string, run: () => Promise<T>): Promise<T> {
  const api = otelApi();
  // no API, or no SDK: nothing to record, and no extra promise on the send's path
  if (!api) return run();
  const span = tracerOf(api).startSpan(`send ${event}`, { kind: api.SpanKind.PRODUCER });
  const counted = () => instrumentsOf(api)?.events.add(1, { [THORN_TELEMETRY.attributes.event]: event });
  if (isInert(api, span)) {
    return run().then((result) => {
      counted();
      return result;
    });
  }
  return traceSendSpan(api, span, event, run, counted);
}

async function traceSendSpan<T extends SendSummary>(
  api: Api,
  span: Span,
  event: string,
  run: () => Promise<T>,
  counted: () => void,
): Promise<T> {
  span.setAttributes({
    [THORN_TELEMETRY.attributes.event]: event,
    'messaging.system': SCOPE,
    'messaging.operation.type': 'send',
    'messaging.destination.name': event,
  });
  try {
    const result = await api.context.with(api.trace.setSpan(api.context.active(), span), run);
    span.setAttributes({
      [THORN_TELEMETRY.attributes.deliveryCount]: result.deliveries.length,
      [THORN_TELEMETRY.attributes.failedCount]: result.deliveries.filter((d) => !d.ok).length,
    });
    if (result.queued) span.setAttribute(THORN_TELEMETRY.attributes.queued, true);
    if (result.buffered) span.setAttribute(THORN_TELEMETRY.attributes.buffered, true);
    counted();
    return result;
  } catch (err) {
    failSpan(api, span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** The delivery an HTTP request belongs to. */
export interface HttpRequestInfo {
  /** Where this request goes (a redirect hop has its own). */
  url: string;
  /** How often this delivery was sent before this request: earlier attempts plus redirect hops. */
  resendCount: number;
  event: string;
  delivery: string;
  subscription: string;
  /** Add the trace context headers (`traceparent`, …) to the request (option `propagateTraceContext`). */
  propagate: boolean;
}

/**
 * Runs one HTTP request inside a CLIENT span named `POST`, with the HTTP client semantic-convention attributes
 * (`url.full` without credentials, query or fragment). `send` gets the headers to use: `headers` itself, or a copy
 * with the trace context when `propagate` is on.
 */
export function traceHttp<R extends { status: number }>(
  info: HttpRequestInfo,
  headers: Record<string, string>,
  send: (headers: Record<string, string>) => Promise<R>,
): Promise<R> {
  const api = otelApi();
  if (!api) return send(headers);
  const span = tracerOf(api).startSpan('POST', { kind: api.SpanKind.CLIENT });
  if (isInert(api, span)) return send(headers);
  return traceHttpSpan(api, span, info, headers, send);
}

async function traceHttpSpan<R extends { status: number }>(
  api: Api,
  span: Span,
  info: HttpRequestInfo,
  headers: Record<string, string>,
  send: (headers: Record<string, string>) => Promise<R>,
): Promise<R> {
  if (span.isRecording()) {
    const target = urlParts(info.url);
    span.setAttributes({
      'http.request.method': 'POST',
      'url.full': target.full,
      'url.scheme': target.scheme,
      'server.address': target.host,
      'server.port': target.port,
      [THORN_TELEMETRY.attributes.event]: info.event,
      [THORN_TELEMETRY.attributes.delivery]: info.delivery,
      [THORN_TELEMETRY.attributes.subscription]: info.subscription,
    });
    if (info.resendCount > 0) span.setAttribute('http.request.resend_count', info.resendCount);
  }
  const ctx = api.trace.setSpan(api.context.active(), span);
  try {
    const response = await api.context.with(ctx, () =>
      send(info.propagate ? withTraceContext(api, ctx, span, headers) : headers),
    );
    span.setAttribute('http.response.status_code', response.status);
    if (response.status >= 400) {
      span.setAttribute('error.type', String(response.status));
      span.setStatus({ code: api.SpanStatusCode.ERROR });
    }
    return response;
  } catch (err) {
    failSpan(api, span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** The settled outcome of one attempt (the delivery service's `AttemptOutcome`, structurally). */
export interface AttemptSummary {
  verdict: { ok: boolean; retryable: boolean; gone: boolean };
  response?: { status: number };
  error?: Error;
}

/** The delivery an attempt belongs to, read after the attempt ran (`attempts` counts it). */
export interface AttemptInfo {
  event: string;
  attempts: number;
  settings: { retry: boolean; retryMax: number };
}

/**
 * Times one attempt (histogram `thorn.delivery.attempt.duration`) and, when it is the delivery's last (success,
 * 410, not retryable, or out of retries), counts the delivery's outcome (`thorn.deliveries`).
 */
export function observeAttempt<O extends AttemptSummary>(
  req: AttemptInfo,
  run: () => Promise<O>,
): Promise<O> {
  const api = otelApi();
  const i = api && instrumentsOf(api);
  if (!i) return run();
  const started = performance.now();
  return run().then((outcome) => recordAttempt(i, req, outcome, started));
}

function recordAttempt<O extends AttemptSummary>(
  i: Instruments,
  req: AttemptInfo,
  outcome: O,
  started: number,
): O {
  const seconds = (performance.now() - started) / 1000;
  const { verdict } = outcome;
  const retrying =
    !verdict.ok && verdict.retryable && req.settings.retry && req.attempts - 1 < req.settings.retryMax;
  const result = verdict.ok ? 'succeeded' : verdict.gone ? 'gone' : retrying ? 'retrying' : 'failed';
  const attributes: Attributes = {
    [THORN_TELEMETRY.attributes.event]: req.event,
    [THORN_TELEMETRY.attributes.outcome]: result,
  };
  if (outcome.response) attributes['http.response.status_code'] = outcome.response.status;
  if (!verdict.ok) attributes['error.type'] = errorType(outcome);
  i.attemptDuration.record(seconds, attributes);
  if (result !== 'retrying') {
    i.deliveries.add(1, {
      [THORN_TELEMETRY.attributes.event]: req.event,
      [THORN_TELEMETRY.attributes.outcome]: result,
    });
  }
  return outcome;
}

/**
 * Registers an observable gauge `thorn.queue.jobs` (one point per queue state) read from `read` at each collection;
 * returns a function that unregisters it. A failing read reports nothing for that collection.
 */
export function observeQueue(read: () => Promise<Record<string, number> | null>): () => void {
  const api = otelApi();
  if (!api) return () => undefined;
  const meter = api.metrics.getMeterProvider().getMeter(SCOPE, THORN_VERSION);
  const gauge = meter.createObservableGauge(THORN_TELEMETRY.metrics.queueJobs, {
    description: 'Jobs in the thorn queue by state (bull and bullmq dispatchers)',
    unit: '{job}',
  });
  const callback = async (result: import('@opentelemetry/api').ObservableResult) => {
    let stats: Record<string, number> | null;
    let timer: NodeJS.Timeout | undefined;
    try {
      // a queue whose Redis is down does not answer: report nothing rather than hold up the whole collection
      const reading = read();
      reading.catch(() => undefined); // it may still fail after the timeout
      stats = await Promise.race([
        reading,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), QUEUE_READ_TIMEOUT);
        }),
      ]);
    } catch {
      return;
    } finally {
      clearTimeout(timer);
    }
    for (const [state, value] of Object.entries(stats ?? {})) {
      result.observe(value, { [THORN_TELEMETRY.attributes.queueState]: state });
    }
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}

/** What the ledger backlog gauges report: when the most overdue pending delivery was due, and how many are due (capped). */
export interface LedgerBacklogReading {
  /** Epoch ms the most overdue pending delivery was due at; null when none is due. */
  oldestDue: number | null;
  /** Due deliveries, counted up to `LEDGER_BACKLOG_COUNT_CAP`. */
  due: number;
}

// a reading serves the collections within this long of it (a scrape every few seconds reads the database once)
const BACKLOG_CACHE_MS = 1000;

/**
 * Registers the observable gauges `thorn.ledger.backlog.age` (ms since the most overdue pending delivery was due, 0
 * when none is) and `thorn.ledger.backlog.due` (due deliveries, capped), read lazily from `read` at collection: one read
 * serves every collection within a second; a read that fails or takes longer than 2 s reports nothing for that
 * collection (never a stale value, never an error). Returns a function that unregisters them.
 */
export function observeLedgerBacklog(read: () => Promise<LedgerBacklogReading>): () => void {
  const api = otelApi();
  if (!api) return () => undefined;
  const meter = api.metrics.getMeterProvider().getMeter(SCOPE, THORN_VERSION);
  const age = meter.createObservableGauge(THORN_TELEMETRY.metrics.ledgerBacklogAge, {
    description: 'Age of the most overdue pending delivery in the delivery ledger (0 when none is overdue)',
    unit: 'ms',
  });
  const due = meter.createObservableGauge(THORN_TELEMETRY.metrics.ledgerBacklogDue, {
    description: `Deliveries due in the delivery ledger, counted up to ${LEDGER_BACKLOG_COUNT_CAP}`,
    unit: '{delivery}',
  });
  let last: (LedgerBacklogReading & { at: number }) | undefined;
  let reading: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    if (!reading) {
      const started = Date.now();
      reading = Promise.resolve()
        .then(read)
        .then(
          (r) => void (last = { oldestDue: r.oldestDue, due: r.due, at: started }),
          () => void (last = undefined),
        )
        .finally(() => (reading = undefined));
    }
    return reading;
  };
  const callback = async (result: import('@opentelemetry/api').BatchObservableResult) => {
    try {
      if (!last || Date.now() - last.at > BACKLOG_CACHE_MS) await within(refresh(), QUEUE_READ_TIMEOUT);
      const now = Date.now();
      if (!last || now - last.at > BACKLOG_CACHE_MS + QUEUE_READ_TIMEOUT) return;
      result.observe(age, last.oldestDue === null ? 0 : Math.max(0, now - last.oldestDue));
      result.observe(due, last.due);
    } catch {
      // never fail a collection
    }
  };
  meter.addBatchObservableCallback(callback, [age, due]);
  return () => meter.removeBatchObservableCallback(callback, [age, due]);
}

/** Waits for `p` at most `ms` (its outcome is ignored). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The active span as a W3C `traceparent` string (`00-<trace-id>-<span-id>-<flags>`), or undefined when there is none
 * (or no OpenTelemetry API). Only the trace and span ids and the sampled flag: never `tracestate` or baggage, which
 * may carry application data. This is what crosses a queue or is stored with a ledger event.
 */
export function activeTraceparent(): string | undefined {
  const api = otelApi();
  if (!api) return undefined;
  const sc = api.trace.getSpanContext(api.context.active());
  if (!sc || !api.trace.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`;
}

/**
 * Runs `run` with the span of `traceparent` (from `activeTraceparent()`, maybe in another process) as its remote
 * parent, so the spans it starts (the attempts' CLIENT spans) join the send's trace as its children. Without a valid
 * `traceparent` it runs in the root context: its spans start their own trace rather than inherit whatever context
 * the worker or relay happened to run in.
 */
export function underTraceparent<T>(traceparent: string | undefined, run: () => T): T {
  const api = otelApi();
  if (!api) return run();
  let ctx = api.ROOT_CONTEXT;
  const m = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (m) {
    const sc = { traceId: m[1], spanId: m[2], traceFlags: parseInt(m[3], 16) & 1, isRemote: true };
    if (api.trace.isSpanContextValid(sc)) ctx = api.trace.setSpanContext(ctx, sc);
  }
  return api.context.with(ctx, run);
}

/** `url` as the semantic conventions want it: no credentials, no query, no fragment. */
export function urlParts(url: string): { full: string; scheme: string; host: string; port: number } {
  try {
    const u = new URL(url);
    const scheme = u.protocol.replace(/:$/, '');
    return {
      full: `${u.protocol}//${u.host}${u.pathname}`,
      scheme,
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port ? Number(u.port) : scheme === 'https' ? 443 : 80,
    };
  } catch {
    return { full: '(invalid URL)', scheme: '', host: '', port: 0 };
  }
}

// Error texts can quote URLs (a client library's message): keep scheme, host and path only.
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+/gi;
/** `text` with every URL in it cut to scheme, host and path (no credentials, query or fragment). */
export function scrub(text: string): string {
  return text.replace(URL_IN_TEXT, (u) => urlParts(u).full);
}

function failSpan(api: Api, span: Span, err: unknown): void {
  // duck-typed: errors from another realm (vm contexts, test runners) fail `instanceof Error`
  const e = err && typeof (err as Error).message === 'string' ? (err as Error) : new Error(String(err));
  const message = scrub(e.message);
  span.recordException({ name: e.name, message, stack: e.stack ? scrub(e.stack) : undefined });
  span.setStatus({ code: api.SpanStatusCode.ERROR, message });
  span.setAttribute('error.type', errorCode(e));
}

function errorCode(e: Error): string {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code ? code : e.name || 'Error';
}

function errorType(o: AttemptSummary): string {
  if (o.response) return String(o.response.status);
  return o.error ? errorCode(o.error) : 'unknown';
}

/** A copy of `headers` with the trace context of `span` injected by the registered propagator (W3C when none is). */
function withTraceContext(
  api: Api,
  ctx: import('@opentelemetry/api').Context,
  span: Span,
  headers: Record<string, string>,
): Record<string, string> {
  const carrier: Record<string, string> = {};
  api.propagation.inject(ctx, carrier);
  if (Object.keys(carrier).length === 0) {
    // no propagator registered (a bare tracer provider): write W3C `traceparent` ourselves
    const sc = span.spanContext();
    if (api.trace.isSpanContextValid(sc)) {
      carrier.traceparent = `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`;
    }
  }
  return Object.keys(carrier).length ? { ...headers, ...carrier } : headers;
}
