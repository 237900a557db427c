// Enqueue coalescing of the queue dispatchers (bull, bullmq: the same tests on each), against a real Redis and a real
// receiver: the send()s and model saves of one event-loop turn go to Redis in ceil(N / chunkSize) `event` jobs added
// at once, and each send() still settles with its own outcome (queued, its own validation error, or the add's failure
// naming its own event).
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { setTimeout as realSetTimeout } from 'node:timers';
import { Column, Entity, PrimaryGeneratedColumn, type DataSource } from 'typeorm';
import {
  blockInternalIps,
  Dispatcher,
  ensureProtocol,
  EventService,
  ModelEvent,
  PayloadError,
  Subscriber,
  ThornModule,
  type ThornModuleOptions,
} from '../../lib/index.js';
import type { EventJobData } from '../../lib/dispatchers/queue/queue.jobs.js';
import { queueFlavours, type QueueFlavour, type TestQueue } from '../fixtures/queues.js';
import { TestReceiver } from '../fixtures/receiver.js';
import { freePort, startRedisOn, stopRedis } from '../fixtures/redis-server.js';
import { until, within } from '../fixtures/wait.js';

const redisUrl = process.env.THORN_TEST_REDIS_URL;
if (!redisUrl && process.env.CI)
  throw new Error('THORN_TEST_REDIS_URL is not set: run the tests with `npm test`');
const describeRedis = redisUrl ? describe : describe.skip;

@Entity()
@ModelEvent('gadget.created', { on: 'create' })
class Gadget {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  name!: string;

  webhookPayload() {
    return { name: this.name };
  }
}

/** The outcome of `p` once settled: its error, or its value. */
function outcome<T>(p: Promise<T>): Promise<T | Error> {
  return p.catch((err: unknown) => err as Error);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeRedis.each(queueFlavours)(
  '%s dispatcher: the send()s of one event-loop turn are enqueued together',
  (_name, flavour: QueueFlavour) => {
    let receiver: TestReceiver;
    let prefix: string;
    const apps: INestApplication[] = [];

    async function boot(options: ThornModuleOptions = {}, redis = redisUrl!) {
      const moduleRef = await Test.createTestingModule({
        imports: [
          TypeOrmModule.forRoot({
            type: 'better-sqlite3',
            database: ':memory:',
            entities: [Subscriber, Gadget],
            synchronize: true,
          }),
          ThornModule.forRoot({
            ...flavour.connect(redis, prefix),
            recipientValidators: [
              blockInternalIps({ allow: ['127.0.0.0/8'] }),
              ensureProtocol('http', 'https'),
            ],
            subscribers: { '#': `${receiver.url}/hook` },
            controller: false,
            chunkSize: 10,
            ...options,
          }),
        ],
      }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      await app.init();
      apps.push(app);
      const dispatcher = app.get(Dispatcher) as Dispatcher & { queue: TestQueue; pendingEvents: number };
      return {
        app,
        events: app.get(EventService),
        queue: dispatcher.queue,
        dispatcher,
        gadgets: app.get<DataSource>(getDataSourceToken()).getRepository(Gadget),
      };
    }

    /** The events of the waiting `event` jobs, job by job. */
    async function waitingEvents(queue: TestQueue): Promise<{ name: string; body: any; id: string }[][]> {
      const jobs = (await queue.getWaiting()).filter((j) => j.name === 'event');
      return jobs.map((j) => (j.data as EventJobData).events);
    }

    /** Starts a worker of the same app and checks each of `n` events reached the receiver exactly once. */
    async function deliveredOnce(n: number): Promise<void> {
      await boot({ worker: true });
      await within(receiver.waitFor(n), 15_000, `${n} deliveries`);
      await sleep(300); // time for a duplicate to show up
      expect(receiver.requests).toHaveLength(n);
      expect(new Set(receiver.requests.map((r) => r.headers['hook-delivery'])).size).toBe(n);
    }

    beforeAll(async () => {
      receiver = await new TestReceiver().start();
    });
    afterAll(async () => {
      await receiver.stop();
    });
    beforeEach(() => {
      prefix = `thorn-coalesce-${randomUUID().slice(0, 8)}`;
    });
    afterEach(async () => {
      for (const app of apps.splice(0)) await within(app.close(), 15_000, 'app.close()');
      receiver.reset();
      const q = flavour.open(redisUrl!, prefix);
      await q.obliterate({ force: true });
      await q.close();
    });

    it('25 send()s in one turn: 3 event jobs (10, 10, 5 events, in send order), each send() queued, each event delivered once', async () => {
      const { events, queue } = await boot({ worker: false });
      const results = await within(
        Promise.all(Array.from({ length: 25 }, (_, i) => events.send('tick.item', { i }))),
        10_000,
        'the send() calls',
      );
      expect(results).toEqual(
        Array.from({ length: 25 }, () => ({ event: 'tick.item', deliveries: [], queued: true })),
      );
      const jobs = await waitingEvents(queue);
      expect(jobs.map((events) => events.length).sort((a, b) => a - b)).toEqual([5, 10, 10]);
      expect(
        jobs
          .flat()
          .map((e) => e.body.i)
          .sort((a, b) => a - b),
      ).toEqual(Array.from({ length: 25 }, (_, i) => i));
      for (const events of jobs) {
        const order = events.map((e) => e.body.i);
        expect(order).toEqual([...order].sort((a, b) => a - b));
      }
      // every event keeps its own id (its delivery ids derive from it)
      expect(new Set(jobs.flat().map((e) => e.id)).size).toBe(25);
      await deliveredOnce(25);
      expect(receiver.requests.map((r) => r.json().i).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 25 }, (_, i) => i),
      );
    });

    it("send() settles under a test suite's fake timers (the end-of-turn flush does not use the global setImmediate)", async () => {
      const { events, queue } = await boot({ worker: false });
      jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
      try {
        // nothing advances the fake clock: a flush scheduled on the global setImmediate would never run (nextTick and
        // queueMicrotask stay real: ioredis needs them to talk to Redis at all, with or without coalescing)
        const sent = Promise.all([events.send('fake.a', { n: 1 }), events.send('fake.b', { n: 2 })]);
        const settled = await Promise.race([
          sent.then(() => 'settled'),
          new Promise<string>((r) => realSetTimeout(() => r('pending after 5 s'), 5000)),
        ]);
        expect(settled).toBe('settled');
      } finally {
        jest.useRealTimers();
      }
      expect((await waitingEvents(queue)).flat().map((e) => e.name).sort()).toEqual(['fake.a', 'fake.b']);
    });

    it('12 consecutive model saves (SQLite: no I/O between them, so one turn): 2 event jobs, every row delivered once', async () => {
      const { gadgets, queue } = await boot({ worker: false });
      // as the save-overhead bench does: each save() awaited, its event dispatched in the background after its commit
      for (let i = 0; i < 12; i++) await gadgets.save(gadgets.create({ name: `g${i}` }));
      await until(async () => (await waitingEvents(queue)).flat().length === 12, 5000, '12 queued events');
      expect((await waitingEvents(queue)).map((job) => job.length).sort((a, b) => a - b)).toEqual([2, 10]);
      await deliveredOnce(12);
      expect(receiver.requests.map((r) => r.json().data.name).sort()).toEqual(
        Array.from({ length: 12 }, (_, i) => `g${i}`).sort(),
      );
    });

    it('an invalid event in a coalesced turn rejects only its own send(); the others share one job and are delivered', async () => {
      const { events, queue } = await boot({ worker: false, maxPayloadSize: 200 });
      const sends = [
        outcome(events.send('mix.a', { n: 1 })),
        outcome(events.send('mix.big', { text: 'x'.repeat(1000) })),
        outcome(events.send('mix.b', { n: 2 })),
        outcome(events.send('mix.callback', { n: 3 }, { onSuccess: () => undefined })),
        outcome(events.send('mix.c', { n: 4 })),
      ];
      const [a, big, b, callback, c] = await within(Promise.all(sends), 10_000, 'the send() calls');
      for (const [r, name] of [
        [a, 'mix.a'],
        [b, 'mix.b'],
        [c, 'mix.c'],
      ] as const) {
        expect(r).toEqual({ event: name, deliveries: [], queued: true });
      }
      expect(big).toBeInstanceOf(PayloadError);
      expect((callback as Error).message).toMatch(/mix\.callback/);
      const jobs = await waitingEvents(queue);
      expect(jobs.map((events) => events.map((e) => e.name))).toEqual([['mix.a', 'mix.b', 'mix.c']]);
      await deliveredOnce(3);
      expect(receiver.requests.map((r) => r.headers['hook-event']).sort()).toEqual([
        'mix.a',
        'mix.b',
        'mix.c',
      ]);
    });

    it('Redis unreachable: each coalesced send() rejects within enqueueTimeout naming only its own event', async () => {
      const port = await freePort();
      const { events } = await boot({ worker: false, enqueueTimeout: 400 }, `redis://127.0.0.1:${port}`);
      const started = Date.now();
      const errors = (await within(
        Promise.all([
          outcome(events.send('down.one', {})),
          outcome(events.send('down.two', {})),
          outcome(events.send('down.three', {})),
        ]),
        5000,
        'the send() calls',
      )) as Error[];
      expect(Date.now() - started).toBeLessThan(3000);
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/^Cannot queue "down\.one": .*within 400 ms.*not connected/),
        expect.stringMatching(/^Cannot queue "down\.two": .*within 400 ms.*not connected/),
        expect.stringMatching(/^Cannot queue "down\.three": .*within 400 ms.*not connected/),
      ]);
    });

    it('Redis refuses the add (out of memory): each coalesced send() rejects naming its own event; later sends succeed', async () => {
      const port = await freePort();
      const redis = await startRedisOn(port);
      const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        const url = `redis://127.0.0.1:${port}`;
        const { events, queue } = await boot({ worker: false, enqueueTimeout: 2000 }, url);
        await events.send('oom.warmup', {}); // the producer connection is ready
        await admin.config('SET', 'maxmemory', '1');
        const errors = (await within(
          Promise.all([
            outcome(events.send('oom.one', {})),
            outcome(events.send('oom.two', {})),
            outcome(events.send('oom.two', {})),
          ]),
          5000,
          'the send() calls',
        )) as Error[];
        expect(errors.map((e) => e.message)).toEqual([
          expect.stringMatching(/^Cannot queue "oom\.one": the add to Redis failed: .*OOM/),
          expect.stringMatching(/^Cannot queue "oom\.two": the add to Redis failed: .*OOM/),
          expect.stringMatching(/^Cannot queue "oom\.two": the add to Redis failed: .*OOM/),
        ]);
        await admin.config('SET', 'maxmemory', '0');
        await Promise.all([events.send('oom.three', {}), events.send('oom.four', {})]);
        expect(
          (await waitingEvents(queue))
            .map((job) => job.map((e) => e.name))
            .sort((x, y) => x.length - y.length),
        ).toEqual([['oom.warmup'], ['oom.three', 'oom.four']]);
      } finally {
        admin.disconnect();
        for (const app of apps.splice(0)) await within(app.close(), 15_000, 'app.close()');
        await stopRedis(redis);
      }
    });
  },
);
