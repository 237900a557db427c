import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import {
  DeliveryTimeoutError,
  Dispatcher,
  EventService,
  PayloadError,
  Subscriber,
  ThornModule,
  type DeliveryRequest,
  type SendOptions,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { type DirectDispatcher } from '../../lib/dispatchers/direct.dispatcher.js';
import { testDatabases } from '../fixtures/databases.js';
import { CapturingLogger } from '../fixtures/log.js';
import { TestReceiver } from '../fixtures/receiver.js';
import { bootThorn, loopback } from '../fixtures/thorn-app.js';

type Kind = 'undici' | 'axios';
const KINDS: Kind[] = ['undici', 'axios'];

/** Records each callback once it runs; `next` resolves when the next one arrives. */
function callbacks() {
  const calls: { kind: 'success' | 'error' | 'timeout'; req: DeliveryRequest; err?: Error }[] = [];
  let wake: () => void = () => undefined;
  const push = (c: (typeof calls)[number]) => {
    calls.push(c);
    wake();
  };
  return {
    calls,
    options: {
      onSuccess: (req) => push({ kind: 'success', req: { ...req } }),
      onError: (req, err) => push({ kind: 'error', req: { ...req }, err }),
      onTimeout: (req, err) => push({ kind: 'timeout', req: { ...req }, err }),
    } satisfies SendOptions,
    /** Resolves once `n` callbacks ran (bounded by `ms`). */
    waitFor(n: number, ms = 10_000): Promise<void> {
      if (calls.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${calls.length} of ${n} callbacks in ${ms} ms`)),
          ms,
        );
        wake = () => {
          if (calls.length >= n) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
    },
  };
}

const gapsOf = (times: number[]) => times.slice(1).map((t, i) => t - times[i]);

describe.each(KINDS)('retries, %s transport', (kind) => {
  let app: INestApplication | undefined;
  let receiver: TestReceiver;
  let events: EventService;
  let times: number[];
  let logs: CapturingLogger;

  async function boot(options: ThornModuleOptions) {
    ({ app, events } = await bootThorn(kind, options, logs));
  }
  const pending = () => (app!.get(Dispatcher) as DirectDispatcher).pendingRetries;
  /** Answers with `statuses[i]` for the i-th request (the last one repeats), recording arrival times. */
  const answer = (
    ...replies: (number | { status: number; headers?: Record<string, string>; delayMs?: number })[]
  ) => {
    receiver.reply = (_r, i) => {
      times.push(performance.now());
      const r = replies[Math.min(i, replies.length - 1)];
      return typeof r === 'number' ? { status: r } : r;
    };
  };

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(() => receiver.stop());
  afterEach(async () => {
    await app?.close();
    app = undefined;
    receiver.reset();
  });
  beforeEach(() => {
    times = [];
    logs = new CapturingLogger();
  });

  it('retries a 500 with the same Hook-Delivery and identical headers and body, then calls onSuccess once', async () => {
    await boot({ subscribers: { 'a.b': { url: `${receiver.url}/hook`, hmacSecret: 'k' } }, retryMax: 5 });
    answer(500, 500, 200);
    const cb = callbacks();
    const result = await events.send('a.b', { v: 1 }, { headers: { 'X-Tenant': 't' }, ...cb.options });
    expect(result.deliveries[0]).toMatchObject({ ok: false, status: 500, retrying: true });
    await cb.waitFor(1);
    expect(cb.calls.map((c) => [c.kind, c.req.attempts, c.req.status])).toEqual([['success', 3, 200]]);
    expect(receiver.requests).toHaveLength(3);
    const [first, ...rest] = receiver.requests;
    expect(first.headers['hook-delivery']).toBe(result.deliveries[0].deliveryId);
    expect(first.headers['x-tenant']).toBe('t');
    for (const r of rest) {
      expect(r.headers).toEqual(first.headers);
      expect(r.body.equals(first.body)).toBe(true);
    }
    expect(pending()).toBe(0);
  });

  it('succeeds on any 2xx and retries every other status (3xx with redirects off, 4xx, 5xx)', async () => {
    const ok = [200, 201, 202, 204, 299];
    const failing = [301, 302, 304, 400, 401, 404, 409, 429, 500, 502, 503];
    const url = (s: number) => `${receiver.url}/status/${s}`;
    await boot({ subscribers: { 'a.b': [...ok, ...failing].map(url) }, retryMax: 1, retryDelay: 10 });
    receiver.reply = (r) => {
      const status = Number(r.path.split('/').pop());
      const headers: Record<string, string> = status >= 300 && status < 400 ? { location: '/elsewhere' } : {};
      return { status, headers };
    };
    const cb = callbacks();
    const result = await events.send('a.b', {}, cb.options);
    expect(result.deliveries.map((d) => [d.status, d.ok, d.retrying])).toEqual([
      ...ok.map((s) => [s, true, false]),
      ...failing.map((s) => [s, false, true]),
    ]);
    await cb.waitFor(ok.length + failing.length);
    const byPath = (p: string) => receiver.requests.filter((r) => r.path === p).length;
    for (const s of ok) expect([s, byPath(`/status/${s}`)]).toEqual([s, 1]);
    for (const s of failing) expect([s, byPath(`/status/${s}`)]).toEqual([s, 2]);
    expect(byPath('/elsewhere')).toBe(0);
    expect(cb.calls.filter((c) => c.kind === 'success')).toHaveLength(ok.length);
    expect(cb.calls.filter((c) => c.kind === 'error')).toHaveLength(failing.length);
  });

  it('stops after retryMax retries and calls onError once', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/hook` }, retryMax: 2, retryDelay: 10 });
    answer(500);
    const cb = callbacks();
    await events.send('a.b', {}, cb.options);
    await cb.waitFor(1);
    expect(receiver.requests).toHaveLength(3);
    expect(cb.calls.map((c) => [c.kind, c.req.attempts, c.err?.message])).toEqual([
      ['error', 3, `${receiver.url}/hook answered 500`],
    ]);
    expect(pending()).toBe(0);
  });

  it('does not retry with retry: false', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/hook` }, retry: false });
    answer(500);
    const cb = callbacks();
    const result = await events.send('a.b', {}, cb.options);
    expect(result.deliveries[0]).toMatchObject({ ok: false, retrying: false });
    await cb.waitFor(1);
    expect(cb.calls.map((c) => c.kind)).toEqual(['error']);
    expect(receiver.requests).toHaveLength(1);
    expect(pending()).toBe(0);
  });

  it('honours Retry-After on 429 even when retryDelay is shorter', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/hook` }, retryDelay: 10, retryDelayMax: 60_000 });
    answer({ status: 429, headers: { 'Retry-After': '1' } }, 200);
    const cb = callbacks();
    await events.send('a.b', {}, cb.options);
    await cb.waitFor(1);
    expect(cb.calls.map((c) => c.kind)).toEqual(['success']);
    const [gap] = gapsOf(times);
    expect(gap).toBeGreaterThanOrEqual(990);
    expect(gap).toBeLessThan(5000);
  });

  it('bounds Retry-After on 503 by retryDelayMax', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/hook` }, retryDelay: 10, retryDelayMax: 150 });
    answer({ status: 503, headers: { 'Retry-After': '3600' } }, 200);
    const cb = callbacks();
    await events.send('a.b', {}, cb.options);
    await cb.waitFor(1);
    const [gap] = gapsOf(times);
    expect(gap).toBeGreaterThanOrEqual(145);
    expect(gap).toBeLessThan(3000);
  });

  it('retries a timeout (the receiver answers later than `timeout`) and calls onTimeout once', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/slow` }, timeout: 100, retryMax: 2, retryDelay: 10 });
    answer({ status: 200, delayMs: 1000 });
    const cb = callbacks();
    const started = performance.now();
    const result = await events.send('a.b', {}, cb.options);
    expect(performance.now() - started).toBeLessThan(900);
    expect(result.deliveries[0]).toMatchObject({ ok: false, retrying: true });
    expect(result.deliveries[0].error).toMatch(/within 100 ms/);
    await cb.waitFor(1);
    expect(cb.calls.map((c) => [c.kind, c.req.attempts])).toEqual([['timeout', 3]]);
    expect(cb.calls[0].err).toBeInstanceOf(DeliveryTimeoutError);
    expect(receiver.requests).toHaveLength(3);
  });

  it('sends a timeout to onError when there is no onTimeout', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/slow` }, timeout: 100, retry: false });
    answer({ status: 200, delayMs: 1000 });
    const errors: Error[] = [];
    let done!: () => void;
    const called = new Promise<void>((r) => (done = r));
    await events.send('a.b', {}, { onError: (_r, e) => (errors.push(e), done()) });
    await called;
    expect(errors.map((e) => e.name)).toEqual(['DeliveryTimeoutError']);
  });

  it('retries connection errors', async () => {
    const closed = await new TestReceiver().start();
    const url = `${closed.url}/gone-server`;
    await closed.stop();
    await boot({ subscribers: { 'a.b': url }, retryMax: 2, retryDelay: 10 });
    const cb = callbacks();
    const result = await events.send('a.b', {}, cb.options);
    expect(result.deliveries[0]).toMatchObject({ ok: false, retrying: true });
    await cb.waitFor(1);
    expect(cb.calls.map((c) => [c.kind, c.req.attempts, (c.err as NodeJS.ErrnoException).code])).toEqual([
      ['error', 3, 'ECONNREFUSED'],
    ]);
  });

  it('spaces exponential retries as retryDelay · 2^n with ±20 % jitter', async () => {
    await boot({
      subscribers: { 'a.b': `${receiver.url}/hook` },
      retryBackoff: 'exponential',
      retryDelay: 60,
      retryMax: 4,
    });
    answer(500);
    const cb = callbacks();
    await events.send('a.b', {}, cb.options);
    await cb.waitFor(1);
    expect(times).toHaveLength(5);
    const gaps = gapsOf(times);
    gaps.forEach((gap, i) => {
      const expected = 60 * 2 ** i;
      // timers never fire early; late only by scheduling noise
      expect({ i, ok: gap >= expected * 0.8 - 2 && gap <= expected * 1.2 + 250, gap }).toMatchObject({
        i,
        ok: true,
      });
    });
    expect(gaps[3]).toBeGreaterThan(gaps[1]);
    expect(gaps[2]).toBeGreaterThan(gaps[0]);
  });

  it('caps exponential retries at retryDelayMax', async () => {
    await boot({
      subscribers: { 'a.b': `${receiver.url}/hook` },
      retryBackoff: 'exponential',
      retryDelay: 100,
      retryDelayMax: 120,
      retryMax: 6,
    });
    answer(500);
    const cb = callbacks();
    await events.send('a.b', {}, cb.options);
    await cb.waitFor(1);
    const gaps = gapsOf(times);
    expect(gaps).toHaveLength(6);
    // uncapped, the sixth gap would be at least 2560 ms (3200 ms − 20 % jitter); capped, each is about 120 ms. The
    // upper bound sits far from both, so a loaded machine (hundreds of ms of scheduling delay) can't decide the test.
    for (const gap of gaps.slice(1)) {
      expect(gap).toBeGreaterThanOrEqual(94);
      expect(gap).toBeLessThan(1500);
    }
  });

  it('spaces fixed retries by retryDelay', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/hook` }, retryDelay: 50, retryMax: 2 });
    answer(500);
    const cb = callbacks();
    await events.send('a.b', {}, cb.options);
    await cb.waitFor(1);
    const gaps = gapsOf(times);
    expect(gaps).toHaveLength(2);
    // at least retryDelay; the upper bound only has to rule out the 60 s default, and stays far above scheduling noise
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(48);
      expect(gap).toBeLessThan(1500);
    }
  });

  it('rejects a payload over maxPayloadSize with PayloadError before any request', async () => {
    await boot({
      subscribers: {
        'a.b': [
          `${receiver.url}/one`,
          { url: `${receiver.url}/two`, contentType: 'application/x-www-form-urlencoded' },
        ],
      },
      maxPayloadSize: 1000,
    });
    const send = events.send('a.b', { text: 'x'.repeat(2000) });
    await expect(send).rejects.toBeInstanceOf(PayloadError);
    await expect(send).rejects.toThrow(/over maxPayloadSize \(1000\)/);
    expect(receiver.connections).toBe(0);
    expect(receiver.requests).toHaveLength(0);
  });

  it('fails only the recipients whose body is over maxPayloadSize (form-encoded); the others are served', async () => {
    await boot({
      subscribers: {
        'a.b': [
          `${receiver.url}/json`,
          { url: `${receiver.url}/form?token=SECRET`, contentType: 'application/x-www-form-urlencoded' },
          { url: `${receiver.url}/signed`, hmacSecret: 's' },
        ],
      },
      maxPayloadSize: 1000,
    });
    // JSON writes each quote as \" (2 bytes, ~630 in all); the form body percent-encodes that again (%5C%22, 6 bytes)
    const data = { nested: { quotes: '"'.repeat(300) } };
    const cb = callbacks();
    const result = await events.send('a.b', data, cb.options);
    expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/json', '/signed']);
    expect(receiver.requests.map((r) => r.json())).toEqual([data, data]);
    expect(result.deliveries.map((d) => [new URL(d.url).pathname, d.ok, d.retrying])).toEqual([
      ['/json', true, false],
      ['/form', false, false],
      ['/signed', true, false],
    ]);
    const form = result.deliveries[1];
    expect(form.status).toBeUndefined();
    expect(form.error).toMatch(
      /^Cannot send "a\.b" as application\/x-www-form-urlencoded: the encoded body is \d+ bytes, over maxPayloadSize \(1000\)/,
    );
    await cb.waitFor(3);
    expect(
      cb.calls.filter((c) => c.kind === 'error').map((c) => [c.req.url, c.err?.name, c.err?.message]),
    ).toEqual([[form.url, 'PayloadError', form.error]]);
    const line = await logs.waitFor(/failed after 1 attempt/);
    expect(line).toContain(`Delivery failed after 1 attempt(s): ${form.error}`);
    // the URL logged without its query string (the subscriber's URL has ?token=SECRET)
    const clean = form.url.split('?')[0];
    expect(line).toContain(`delivery=${form.deliveryId} subscription=${form.subscription} url=${clean}`);
    expect(line).not.toContain('SECRET');
    expect(pending()).toBe(0);
  });

  it('waits a Retry-After longer than setTimeout can (34 days) instead of retrying at once', async () => {
    const day = 86_400_000;
    await boot({
      retryDelay: 200,
      retryDelayMax: 40 * day,
      subscribers: { 'a.b': [`${receiver.url}/later`, `${receiver.url}/soon`] },
    });
    let soon = 0;
    receiver.reply = (r) =>
      r.path === '/later'
        ? { status: 429, headers: { 'retry-after': String((34 * day) / 1000) } }
        : { status: soon++ === 0 ? 500 : 200 };
    const result = await events.send('a.b', {});
    expect(result.deliveries.map((d) => [d.status, d.retrying])).toEqual([
      [429, true],
      [500, true],
    ]);
    // /soon's retry comes 200 ms later; setTimeout alone would have fired the 34-day one after 1 ms, before it
    await receiver.waitFor(3);
    expect(receiver.requests.map((r) => r.path).slice(2)).toEqual(['/soon']);
    expect(receiver.requests.filter((r) => r.path === '/later')).toHaveLength(1);
    expect(pending()).toBe(1);
    const dispatcher = app!.get(Dispatcher) as DirectDispatcher;
    await app!.close();
    app = undefined;
    expect(dispatcher.pendingRetries).toBe(0);
  });

  it('accepts up to 256 KiB by default and rejects more', async () => {
    await boot({ subscribers: { 'a.b': `${receiver.url}/big` } });
    const fits = 'x'.repeat(256 * 1024 - 20); // {"text":"…"} adds 11 bytes
    const result = await events.send('a.b', { text: fits });
    expect(result.deliveries[0]).toMatchObject({ ok: true });
    expect(receiver.requests[0].body.length).toBe(fits.length + 11);
    receiver.reset();
    await expect(events.send('a.b', { text: 'x'.repeat(256 * 1024) })).rejects.toBeInstanceOf(PayloadError);
    expect(receiver.connections).toBe(0);
  });
});

describe.each(testDatabases)('410 Gone ($name)', (db) => {
  let receiver: TestReceiver;
  let app: INestApplication | undefined;
  beforeAll(async () => {
    receiver = await new TestReceiver().start();
  });
  afterAll(() => receiver.stop());
  afterEach(async () => {
    await app?.close();
    app = undefined;
    receiver.reset();
  });

  it.each(KINDS)(
    'disables (keeps) the stored subscription and does not retry (%s transport)',
    async (kind) => {
      const disabled: [string, string, boolean][] = [];
      const moduleRef = await Test.createTestingModule({
        imports: [
          TypeOrmModule.forRoot(db.options([Subscriber])),
          ThornModule.forRoot({
            transport: kind,
            controller: false,
            recipientValidators: loopback(),
            retryDelay: 10,
            subscribers: { 'a.b': `${receiver.url}/static` },
            onSubscriptionDisabled: (s, reason) => void disabled.push([s.id, reason, s.active]),
          }),
        ],
      }).compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.init();
      const repo = app.get<DataSource>(getDataSourceToken()).getRepository(Subscriber);
      const gone = await repo.save(repo.create({ event: 'a.*', url: `${receiver.url}/stored` }));
      const kept = await repo.save(repo.create({ event: 'a.*', url: `${receiver.url}/other` }));
      receiver.reply = (r) => ({ status: r.path === '/other' ? 200 : 410 });
      const cb = callbacks();
      const result = await app.get(EventService).send('a.b', {}, cb.options);
      const byName = [...result.deliveries].sort((x, y) => x.url.localeCompare(y.url));
      expect(byName.map((d) => [d.url.split('/').pop(), d.status, d.ok, d.retrying])).toEqual([
        ['other', 200, true, false],
        ['static', 410, false, false],
        ['stored', 410, false, false],
      ]);
      await cb.waitFor(3);
      expect(cb.calls.map((c) => c.kind).sort()).toEqual(['error', 'error', 'success']);
      // kept, inactive, reason 'gone'; the app was told once
      expect(await repo.count()).toBe(2);
      expect(await repo.findOneBy({ id: gone.id })).toMatchObject({
        active: false,
        disabledReason: 'gone',
        consecutiveFailures: 1,
        disabledAt: expect.any(Date),
      });
      expect(await repo.findOneBy({ id: kept.id })).toMatchObject({ active: true, disabledAt: null });
      expect(disabled).toEqual([[gone.id, 'gone', false]]);
      expect((app.get(Dispatcher) as DirectDispatcher).pendingRetries).toBe(0);
      // Next time, the disabled subscription gets nothing; a static one answering 410 is only logged (nothing stored).
      receiver.requests.length = 0;
      await app.get(EventService).send('a.b', {});
      expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/other', '/static']);
      expect(disabled).toHaveLength(1);
    },
  );
});
