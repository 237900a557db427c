// The queue dispatchers (bull, bullmq: the same tests on each) in one process (producer and worker in the same app)
// against a real Redis and a real receiver.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import {
  blockInternalIps,
  Dispatcher,
  ensureProtocol,
  EventService,
  Subscriber,
  ThornModule,
  verify,
  type ThornModuleOptions,
} from '../../lib/index.js';
import type {
  EventJobData,
  RequestsJobData,
  ThornJobResult,
} from '../../lib/dispatchers/queue/queue.jobs.js';
import { CapturingLogger } from '../fixtures/log.js';
import { queueFlavours, type QueueFlavour, type TestQueue } from '../fixtures/queues.js';
import { TestReceiver } from '../fixtures/receiver.js';

const redisUrl = process.env.THORN_TEST_REDIS_URL;
if (!redisUrl && process.env.CI)
  throw new Error('THORN_TEST_REDIS_URL is not set: run the tests with `npm test`');
const describeRedis = redisUrl ? describe : describe.skip;

const loopback = () => [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http', 'https')];
const sqlite = {
  type: 'better-sqlite3' as const,
  database: ':memory:',
  entities: [Subscriber],
  synchronize: true,
};

/** Polls `cond` until it holds (for state that lives in Redis, where there is no event to await). */
async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeRedis.each(queueFlavours)(
  '%s dispatcher (one process, real Redis)',
  (_name, flavour: QueueFlavour) => {
    let receiver: TestReceiver;
    let other: TestReceiver;
    let prefix: string;
    const apps: INestApplication[] = [];

    async function boot(
      options: ThornModuleOptions = {},
      imports: any[] = [TypeOrmModule.forRoot(sqlite)],
      logger: CapturingLogger | false = false,
    ) {
      const moduleRef = await Test.createTestingModule({
        imports: [
          ...imports,
          ThornModule.forRoot({
            ...flavour.connect(redisUrl!, prefix),
            recipientValidators: loopback(),
            retryDelay: 50,
            controller: false,
            ...options,
          }),
        ],
      }).compile();
      const app = moduleRef.createNestApplication({ logger });
      await app.init();
      apps.push(app);
      const events = app.get(EventService);
      const dispatcher = app.get(Dispatcher) as Dispatcher & { queue: TestQueue };
      // the dispatcher under test, unless a test chose another one
      if ((options.dispatcher ?? flavour.dispatcher) === flavour.dispatcher) {
        expect(dispatcher.constructor.name).toBe(
          flavour.dispatcher === 'bull' ? 'BullDispatcher' : 'BullMQDispatcher',
        );
      }
      return { app, events, dispatcher, queue: dispatcher.queue };
    }

    function storedRepo(app: INestApplication) {
      return app.get<DataSource>(getDataSourceToken()).getRepository(Subscriber);
    }

    beforeAll(async () => {
      receiver = await new TestReceiver().start();
      other = await new TestReceiver().start();
    });
    afterAll(async () => {
      await receiver.stop();
      await other.stop();
    });
    beforeEach(() => {
      prefix = `thorn-test-${randomUUID().slice(0, 8)}`;
    });
    afterEach(async () => {
      for (const app of apps.splice(0)) await app.close();
      receiver.reset();
      other.reset();
      const q = flavour.open(redisUrl!, prefix);
      await q.obliterate({ force: true });
      await q.close();
    });

    it('enqueues one job per send() and delivers it to stored and static subscribers, signed', async () => {
      const { app, events } = await boot({
        subscribers: { 'article.*': { url: `${receiver.url}/static`, hmacSecret: 'static-secret' } },
      });
      const sub = await storedRepo(app).save(
        storedRepo(app).create({ event: 'article.created', url: `${receiver.url}/stored` }),
      );
      const result = await events.send('article.created', { id: 7, at: new Date('2026-01-02T03:04:05Z') });
      expect(result).toEqual({ event: 'article.created', deliveries: [], queued: true });
      await receiver.waitFor(2);
      const byPath = Object.fromEntries(receiver.requests.map((r) => [r.path, r]));
      expect(Object.keys(byPath).sort()).toEqual(['/static', '/stored']);
      for (const r of receiver.requests) {
        expect(r.json()).toEqual({ id: 7, at: '2026-01-02T03:04:05.000Z' });
        expect(r.headers['hook-event']).toBe('article.created');
        expect(r.headers['hook-delivery']).toMatch(/^[0-9a-f-]{36}$/);
      }
      expect(byPath['/stored'].headers['hook-subscription']).toBe(sub.id);
      expect(
        verify(
          byPath['/stored'].headers['hook-hmac'] as string,
          'sha256',
          sub.hmacSecret,
          byPath['/stored'].body,
        ),
      ).toBe(true);
      expect(
        verify(
          byPath['/static'].headers['hook-hmac'] as string,
          'sha256',
          'static-secret',
          byPath['/static'].body,
        ),
      ).toBe(true);
      expect(byPath['/static'].headers['hook-delivery']).not.toBe(byPath['/stored'].headers['hook-delivery']);
      await until(
        async () => (await events.queueStats())?.completed === 1,
        5000,
        'the event job to complete',
      );
      expect(await events.queueStats()).toEqual({
        waiting: 0,
        active: 0,
        delayed: 0,
        failed: 0,
        completed: 1,
      });
    });

    it('retries a failed request as its own delayed job: same Hook-Delivery, HMAC and custom headers; the rest of its chunk is sent once', async () => {
      const { events, queue } = await boot({
        subscribers: {
          'x.y': [
            { url: `${receiver.url}/ok-1`, hmacSecret: 's1' },
            { url: `${receiver.url}/flaky`, hmacSecret: 's2' },
            { url: `${receiver.url}/ok-2`, hmacSecret: 's3' },
          ],
        },
      });
      let flaky = 0;
      receiver.reply = (r) => ({ status: r.path === '/flaky' && flaky++ < 2 ? 500 : 200 });
      await events.send('x.y', { v: 1 }, { headers: { 'X-Tenant': 't1', 'Hook-Event': 'forged' } });
      await receiver.waitFor(5);
      await until(async () => (await queue.getJobCounts()).completed === 3, 5000, 'event job + 2 retry jobs');
      await sleep(200); // a wrong extra retry would show up by now (retryDelay 50 ms)
      const flakyReqs = receiver.requests.filter((r) => r.path === '/flaky');
      expect(flakyReqs).toHaveLength(3);
      expect(new Set(flakyReqs.map((r) => r.headers['hook-delivery'])).size).toBe(1);
      expect(new Set(flakyReqs.map((r) => r.headers['hook-hmac'])).size).toBe(1);
      expect(flakyReqs.map((r) => r.headers['x-tenant'])).toEqual(['t1', 't1', 't1']);
      expect(flakyReqs.map((r) => r.headers['hook-event'])).toEqual(['x.y', 'x.y', 'x.y']);
      expect(flakyReqs.every((r) => r.text === flakyReqs[0].text)).toBe(true);
      expect(
        receiver.requests
          .filter((r) => r.path !== '/flaky')
          .map((r) => r.path)
          .sort(),
      ).toEqual(['/ok-1', '/ok-2']);
      const retries = (await queue.getCompleted()).filter((j) => j.name === 'retry');
      expect(retries).toHaveLength(2);
      for (const job of retries) {
        const data = job.data as RequestsJobData;
        expect(data.requests).toHaveLength(1);
        expect(data.requests[0].id).toBe(flakyReqs[0].headers['hook-delivery']);
        expect(data.requests[0].headers['X-Tenant']).toBe('t1');
      }
    });

    it('stops after retryMax retries', async () => {
      const { events, queue } = await boot({ subscribers: { 'x.y': `${receiver.url}/down` }, retryMax: 2 });
      receiver.reply = () => ({ status: 503 });
      await events.send('x.y', {});
      await receiver.waitFor(3);
      await until(async () => (await queue.getJobCounts()).completed === 3, 5000, 'event job + 2 retries');
      await sleep(200);
      expect(receiver.requests).toHaveLength(3);
      expect(await events.queueStats()).toMatchObject({ delayed: 0, waiting: 0, active: 0, failed: 0 });
    });

    it('honours Retry-After on 429 for the delay of the retry job', async () => {
      const { events } = await boot({ subscribers: { 'x.y': `${receiver.url}/busy` } });
      const at: number[] = [];
      receiver.reply = (_r, i) => (
        at.push(Date.now()),
        i === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : {}
      );
      await events.send('x.y', {});
      await receiver.waitFor(1);
      await until(async () => (await events.queueStats())?.delayed === 1, 2000, 'the delayed retry job');
      await receiver.waitFor(2, 5000);
      expect(at[1] - at[0]).toBeGreaterThanOrEqual(900);
    });

    it('stops on 410 Gone and disables (keeps) the stored subscription', async () => {
      const { app, events, queue } = await boot();
      const repo = storedRepo(app);
      const gone = await repo.save(repo.create({ event: 'a.b', url: `${receiver.url}/gone` }));
      await repo.save(repo.create({ event: 'a.b', url: `${receiver.url}/fine` }));
      receiver.reply = (r) => ({ status: r.path === '/gone' ? 410 : 200 });
      await events.send('a.b', {});
      await receiver.waitFor(2);
      await until(async () => (await queue.getJobCounts()).completed === 1, 5000, 'the event job');
      await sleep(200);
      expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/fine', '/gone']);
      expect(await repo.findOneBy({ id: gone.id })).toMatchObject({ active: false, disabledReason: 'gone' });
      expect(await repo.count()).toBe(2);
      expect((await queue.getJobCounts()).delayed).toBe(0);
    });

    it("resolves an event's own subscribers at send time; static callback subscribers run in the worker with the JSON context", async () => {
      const seen: unknown[] = [];
      const { events } = await boot({
        subscribers: {
          'order.*': (_event: string, ctx: Record<string, unknown>) => (
            seen.push(ctx),
            `${receiver.url}/static-cb`
          ),
        },
      });
      const own = (event: string, ctx: Record<string, unknown>) =>
        `${receiver.url}/own?e=${event}&tenant=${String(ctx.tenant)}`;
      await events.send('order.paid', { n: 1 }, {
        context: { tenant: 'acme', when: new Date(0) } as any,
        event: { subscribers: own },
      } as any);
      await receiver.waitFor(2);
      expect(receiver.requests.map((r) => r.path).sort()).toEqual([
        '/own?e=order.paid&tenant=acme',
        '/static-cb',
      ]);
      expect(seen).toEqual([{ tenant: 'acme', when: '1970-01-01T00:00:00.000Z', sender: undefined }]);
    });

    it('rejects send() callbacks and per-event validators, which cannot cross the queue, before enqueueing', async () => {
      const { events, queue } = await boot({ subscribers: { 'x.y': `${receiver.url}/x` } });
      await expect(events.send('x.y', {}, { onSuccess: () => undefined })).rejects.toThrow(
        /onSuccess\/onError\/onTimeout.*dispatcher: 'direct'/,
      );
      await expect(events.send('x.y', {}, { event: { recipientValidators: [] } })).rejects.toThrow(
        /recipientValidators/,
      );
      await expect(events.send('x.y', { big: 'x'.repeat(300 * 1024) })).rejects.toThrow(/maxPayloadSize/);
      await expect(events.send('x.y', {}, { context: { f: () => 1 } })).rejects.toThrow(/context\.f/);
      expect(await queue.count()).toBe(0);
    });

    it('a recipient whose body is over maxPayloadSize fails alone in the worker; the event is not dropped', async () => {
      const logs = new CapturingLogger();
      const { events, queue } = await boot(
        {
          maxPayloadSize: 1000,
          subscribers: {
            'a.b': [
              `${receiver.url}/json`,
              { url: `${receiver.url}/form?token=SECRET`, contentType: 'application/x-www-form-urlencoded' },
              { url: `${receiver.url}/signed`, hmacSecret: 's' },
            ],
          },
        },
        [TypeOrmModule.forRoot(sqlite)],
        logs,
      );
      // the JSON body (~630 bytes) fits; the form body percent-encodes each \" again (%5C%22) and does not
      const data = { nested: { quotes: '"'.repeat(300) } };
      expect(await events.send('a.b', data)).toMatchObject({ queued: true });
      const line = await logs.waitFor(/failed after 1 attempt/);
      expect(line).toMatch(
        /^warn: Delivery failed after 1 attempt\(s\): Cannot send "a\.b" as application\/x-www-form-urlencoded: the encoded body is \d+ bytes, over maxPayloadSize \(1000\).* event=a\.b delivery=\S+ subscription=\S+ url=http:\/\/127\.0\.0\.1:\d+\/form$/,
      );
      expect(line).not.toContain('SECRET');
      await receiver.waitFor(2);
      expect(receiver.requests.map((r) => r.path).sort()).toEqual(['/json', '/signed']);
      expect(receiver.requests.map((r) => r.json())).toEqual([data, data]);
      await until(
        async () => (await queue.getJobCounts()).completed === 1,
        5000,
        'the event job to complete',
      );
      const [job] = await queue.getCompleted();
      expect(job.returnvalue as ThornJobResult).toMatchObject({ requests: 3, ok: 2, failed: 1, retrying: 0 });
      expect(await queue.getJobCounts()).toMatchObject({ delayed: 0, failed: 0, waiting: 0 });
      expect(logs.lines.filter((l) => /dropped/.test(l))).toEqual([]);
    });

    it('fans an event with more than chunkSize recipients out into chunk jobs ordered by (scheme, host, port)', async () => {
      const { app, events, queue } = await boot({ chunkSize: 10 });
      const repo = storedRepo(app);
      // 25 subscriptions alternating between two origins
      await repo.save(
        Array.from({ length: 25 }, (_, i) =>
          repo.create({ event: 'fan.out', url: `${(i % 2 ? other : receiver).url}/s${i}` }),
        ),
      );
      await events.send('fan.out', { n: 1 });
      await until(() => receiver.requests.length + other.requests.length >= 25, 10_000, '25 deliveries');
      await until(async () => (await queue.getJobCounts()).completed === 4, 5000, 'event job + 3 chunk jobs');
      const completed = await queue.getCompleted();
      const eventJob = completed.find((j) => j.name === 'event')!;
      expect(eventJob.returnvalue as ThornJobResult).toMatchObject({ requests: 25, chunks: 3 });
      const chunks = completed
        .filter((j) => j.name === 'chunk')
        .sort((a, b) => String(a.id).localeCompare(String(b.id)));
      expect(chunks.map((c) => (c.data as RequestsJobData).requests.length)).toEqual([10, 10, 5]);
      // same scheme and host: ordered by port, so each origin's requests are contiguous
      const ports = chunks.flatMap((c) =>
        (c.data as RequestsJobData).requests.map((r) => Number(new URL(r.url).port)),
      );
      expect(ports).toEqual([...ports].sort((x, y) => x - y));
      expect(ports.filter((p) => p === Number(new URL(receiver.url).port))).toHaveLength(13);
      expect(ports.filter((p) => p === Number(new URL(other.url).port))).toHaveLength(12);
      // each chunk body is stored once, not once per request
      expect(chunks.every((c) => (c.data as RequestsJobData).bodies.length === 1)).toBe(true);
      const ids = [...receiver.requests, ...other.requests].map((r) => r.headers['hook-delivery']);
      expect(new Set(ids).size).toBe(25);
    });

    it('an event job run twice (as after a crash) reuses its delivery ids and adds no second copy of its chunk jobs', async () => {
      const statics = (n: number) => Array.from({ length: n }, (_, i) => `${receiver.url}/s${i}`);
      const producer = await boot({
        worker: false,
        chunkSize: 10,
        subscribers: { 'big.*': statics(25), 'small.*': statics(3) },
      });
      await producer.events.send('big.one', { n: 1 });
      await producer.events.send('small.one', { n: 2 });
      // the same jobs again, as the queue re-runs a job whose worker died before completing it
      for (const job of await producer.queue.getWaiting()) await producer.queue.add('event', job.data);
      await boot({ chunkSize: 10, subscribers: { 'big.*': statics(25), 'small.*': statics(3) } });
      await until(
        async () => (await producer.queue.getJobCounts()).completed === 4 + 3,
        10_000,
        '4 event jobs + 3 chunk jobs',
      );
      await sleep(200);
      const big = receiver.requests.filter((r) => r.json().n === 1);
      const small = receiver.requests.filter((r) => r.json().n === 2);
      expect(big).toHaveLength(25); // chunk jobs deduplicated by their derived job ids
      expect(new Set(big.map((r) => r.headers['hook-delivery'])).size).toBe(25);
      expect(small).toHaveLength(6); // delivered inline by each run: sent twice, under the same ids
      expect(new Set(small.map((r) => r.headers['hook-delivery'])).size).toBe(3);
    });

    it('a buffered flush enqueues ceil(n / chunkSize) event jobs; a producer-only app (worker: false) processes none', async () => {
      const producer = await boot({
        worker: false,
        chunkSize: 10,
        subscribers: { 'buf.*': `${receiver.url}/b` },
      });
      await producer.events.bufferEvents(async () => {
        for (let i = 0; i < 25; i++) await producer.events.send('buf.item', { i });
      });
      expect(await producer.events.queueStats()).toMatchObject({ waiting: 3, active: 0, completed: 0 });
      const jobs = await producer.queue.getWaiting();
      expect(jobs.map((j) => (j.data as EventJobData).events.length).sort()).toEqual([10, 10, 5]);
      await sleep(200);
      expect(receiver.requests).toHaveLength(0);
      // a worker of the same app drains the queue
      await boot({ worker: true, chunkSize: 10, subscribers: { 'buf.*': `${receiver.url}/b` } });
      await receiver.waitFor(25);
      expect(receiver.requests.map((r) => r.json().i).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 25 }, (_, i) => i),
      );
    });

    it('app.close() lets the in-flight job finish and complete before disconnecting', async () => {
      const { app, events, queue } = await boot({ subscribers: { 'slow.*': `${receiver.url}/slow` } });
      receiver.reply = () => ({ status: 200, delayMs: 400 });
      await events.send('slow.one', {});
      await receiver.waitFor(1);
      const started = Date.now();
      expect((await queue.getJobCounts()).active).toBe(1);
      await app.close();
      apps.splice(apps.indexOf(app), 1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      const q = flavour.open(redisUrl!, prefix);
      try {
        expect(await q.getJobCounts()).toMatchObject({ active: 0, waiting: 0, completed: 1, failed: 0 });
      } finally {
        await q.close();
      }
      expect(receiver.requests).toHaveLength(1);
    });

    it("reuses the app's BullModule.forRoot() connection when its option is absent", async () => {
      const { events } = await boot(
        { ...flavour.noConnection, subscribers: { 'r.*': `${receiver.url}/r` } },
        [TypeOrmModule.forRoot(sqlite), flavour.forRoot(redisUrl!, prefix)],
      );
      await events.send('r.s', { ok: true });
      await receiver.waitFor(1);
      expect(receiver.requests[0].json()).toEqual({ ok: true });
    });

    it('fails at start-up with a clear error when there is no connection to use', async () => {
      await expect(boot(flavour.noConnection)).rejects.toThrow(
        new RegExp(`dispatcher: '${flavour.dispatcher}' needs a Redis connection.*BullModule\\.forRoot`),
      );
    });

    /** Every job of the queue as Redis stores it: the raw hash (data, opts, …) of each, not the library's parsed view. */
    async function rawJobs(queue: TestQueue): Promise<{ name: string; data: string; raw: string }[]> {
      const jobs = await queue.getJobs(['completed', 'waiting', 'active', 'delayed', 'failed']);
      return Promise.all(
        jobs.map(async (job) => {
          const hash = await flavour.rawHash(queue, `${prefix}:thorn:${String(job.id)}`);
          return { name: hash.name, data: hash.data, raw: Object.entries(hash).flat().join('\n') };
        }),
      );
    }

    it('jobs carry no module option and no secret: a tiny event stays small with 200 static subscribers', async () => {
      const secrets = Array.from({ length: 200 }, (_, i) => `static-secret-${i}-${randomUUID()}`);
      const defaultSecret = `default-secret-${randomUUID()}`;
      const ownSecret = `own-secret-${randomUUID()}`;
      const redisMarker = `thorn-conn-${randomUUID().slice(0, 8)}`;
      // 11 signed static subscribers of the event plus one signed with defaultHmacSecret (12 > chunkSize: chunk jobs),
      // and 189 subscribers of unrelated events, each with its own secret
      const subscribers: Record<string, unknown> = {
        'tiny.event': [
          ...secrets.slice(0, 11).map((hmacSecret, i) => ({ url: `${receiver.url}/s${i}`, hmacSecret })),
          `${receiver.url}/default-signed`,
        ],
      };
      for (let i = 11; i < 200; i++) {
        subscribers[`other.event${i}`] = { url: `${other.url}/o${i}`, hmacSecret: secrets[i] };
      }
      const { events, queue } = await boot({
        subscribers: subscribers as ThornModuleOptions['subscribers'],
        defaultHmacSecret: defaultSecret,
        chunkSize: 10,
        ...flavour.connect(redisUrl!, prefix, redisMarker),
      });
      let failedOnce = false;
      receiver.reply = (r) => ({
        status: r.path === '/s3' && !failedOnce ? ((failedOnce = true), 500) : 200,
      });
      await events.send(
        'tiny.event',
        { n: 1 },
        { timeout: 2000, event: { subscribers: { url: `${receiver.url}/own`, hmacSecret: ownSecret } } },
      );
      // 11 + 1 static, the event's own, and the retry of /s3
      await receiver.waitFor(14);
      await until(
        async () => (await queue.getJobCounts()).completed === 4,
        5000,
        'event + 2 chunk + 1 retry jobs',
      );

      const jobs = await rawJobs(queue);
      expect(jobs.map((j) => j.name).sort()).toEqual(['chunk', 'chunk', 'event', 'retry']);
      const forbidden = [...secrets, defaultSecret, ownSecret, redisMarker];
      for (const job of jobs) {
        expect({ job: job.name, bytes: Buffer.byteLength(job.raw) < 8 * 1024 }).toEqual({
          job: job.name,
          bytes: true,
        });
        expect({ job: job.name, leaked: forbidden.filter((x) => job.raw.includes(x)) }).toEqual({
          job: job.name,
          leaked: [],
        });
        // nothing of the module options: only the send()'s own timeout travels
        expect(job.data).not.toMatch(
          /"(settings|subscribers|defaultHmacSecret|codecs|guards|bull|bullmq|connection|workerOptions|retryMax)"/,
        );
      }
      const eventJob = JSON.parse(jobs.find((j) => j.name === 'event')!.data) as EventJobData;
      expect(eventJob.events[0].overrides).toEqual({ timeout: 2000 });
      const retryJob = JSON.parse(jobs.find((j) => j.name === 'retry')!.data) as RequestsJobData;
      expect(retryJob.requests[0].overrides).toEqual({ timeout: 2000 });

      // the worker signed with its own options' secrets; the event's own subscriber was signed at send()
      const byPath = new Map(receiver.requests.map((r) => [r.path, r]));
      const signedWith = (path: string, secret: string) =>
        verify(String(byPath.get(path)!.headers['hook-hmac']), 'sha256', secret, byPath.get(path)!.body);
      expect(signedWith('/s0', secrets[0])).toBe(true);
      expect(signedWith('/s10', secrets[10])).toBe(true);
      expect(signedWith('/default-signed', defaultSecret)).toBe(true);
      expect(signedWith('/own', ownSecret)).toBe(true);
      expect(other.requests).toHaveLength(0);
    });

    it('an option holding a circular object (a guard holding the DataSource) does not break send()', async () => {
      const guard: Record<string, unknown> = { canActivate: () => true };
      guard.self = guard;
      const { app, events } = await boot({
        guards: [guard as never],
        subscribers: { 'c.d': `${receiver.url}/c` },
      });
      guard.dataSource = app.get(getDataSourceToken());
      await expect(events.send('c.d', { ok: 1 })).resolves.toEqual({
        event: 'c.d',
        deliveries: [],
        queued: true,
      });
      await receiver.waitFor(1);
      expect(receiver.requests[0].json()).toEqual({ ok: 1 });
    });

    it('queueStats() is null for dispatchers without a queue', async () => {
      const { events } = await boot({ dispatcher: 'direct' });
      expect(await events.queueStats()).toBeNull();
    });
  },
);
