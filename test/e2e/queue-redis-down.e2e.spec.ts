// The queue dispatchers (bull, bullmq: the same tests on each) when Redis is unreachable: a closed port, a server that accepts connections and never answers,
// and a real redis-server killed mid-run. send() and save() settle within enqueueTimeout, failures name the event,
// shutdown is bounded and logs what it drops; no credentials in any error or log line.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication, LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Column, Entity, PrimaryGeneratedColumn, type DataSource } from 'typeorm';
import {
  blockInternalIps,
  Dispatcher,
  ensureProtocol,
  EventService,
  ModelEvent,
  Subscriber,
  ThornModule,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { queueFlavours, type QueueFlavour, type TestQueue } from '../fixtures/queues.js';
import { startRedisOn, stopRedis } from '../fixtures/redis-server.js';
import { TestReceiver } from '../fixtures/receiver.js';
import { within } from '../fixtures/wait.js';

const redisUrl = process.env.THORN_TEST_REDIS_URL;
if (!redisUrl && process.env.CI)
  throw new Error('THORN_TEST_REDIS_URL is not set: run the tests with `npm test`');
const describeRedis = redisUrl ? describe : describe.skip;

@Entity()
@ModelEvent('widget.created', { on: 'create' })
class Widget {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  name!: string;
}

/** Every line logged through Nest's Logger; `waitFor` resolves when a matching line arrives (bounded). */
class CapturedLog implements LoggerService {
  readonly lines: string[] = [];
  private waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  private add(level: string, message: unknown, ...rest: unknown[]): void {
    const line = `${level} ${[message, ...rest].map((m) => (m instanceof Error ? m.message : String(m))).join(' ')}`;
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => (w.re.test(line) ? (w.resolve(line), false) : true));
  }
  log(m: unknown, ...r: unknown[]) {
    this.add('log', m, ...r);
  }
  error(m: unknown, ...r: unknown[]) {
    this.add('error', m, ...r);
  }
  warn(m: unknown, ...r: unknown[]) {
    this.add('warn', m, ...r);
  }
  debug(m: unknown, ...r: unknown[]) {
    this.add('debug', m, ...r);
  }
  verbose(m: unknown, ...r: unknown[]) {
    this.add('verbose', m, ...r);
  }
  waitFor(re: RegExp, ms: number): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return within(
      new Promise<string>((resolve) => this.waiters.push({ re, resolve })),
      ms,
      `a log line matching ${re}`,
    );
  }
}

/** The outcome of `p` once settled: its error, or 'resolved'. */
async function outcome(p: Promise<unknown>): Promise<Error | 'resolved'> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err as Error;
  }
}

/** A port on 127.0.0.1 with nothing listening (bound once by the OS, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A TCP server that accepts connections and never answers: Redis hung, or a firewall that swallows packets. */
async function silentServer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as { port: number }).port,
    stop: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

describeRedis.each(queueFlavours)(
  '%s dispatcher with Redis unreachable (closed port, silent server, killed redis-server)',
  (_name, flavour: QueueFlavour) => {
    let receiver: TestReceiver;
    const apps: INestApplication[] = [];
    const password = `pw-${randomUUID()}`;

    async function boot(redis: string, options: ThornModuleOptions = {}) {
      const log = new CapturedLog();
      const moduleRef = await Test.createTestingModule({
        imports: [
          TypeOrmModule.forRoot({
            type: 'better-sqlite3',
            database: ':memory:',
            entities: [Subscriber, Widget],
            synchronize: true,
          }),
          ThornModule.forRoot({
            ...flavour.connect(redis, `thorn-down-${randomUUID().slice(0, 8)}`),
            recipientValidators: [
              blockInternalIps({ allow: ['127.0.0.0/8'] }),
              ensureProtocol('http', 'https'),
            ],
            subscribers: { '#': `${receiver.url}/hook` },
            controller: false,
            enqueueTimeout: 400,
            ...options,
          }),
        ],
      }).compile();
      const app = moduleRef.createNestApplication({ logger: log });
      await app.init();
      apps.push(app);
      const widgets = app.get<DataSource>(getDataSourceToken()).getRepository(Widget);
      return {
        app,
        log,
        events: app.get(EventService),
        dispatcher: app.get(Dispatcher) as Dispatcher & { queue: TestQueue; pendingEvents: number },
        widgets,
      };
    }

    /** Closes `app` (bounded) and forgets it. */
    async function close(app: INestApplication, ms = 15_000): Promise<void> {
      apps.splice(apps.indexOf(app), 1);
      await within(app.close(), ms, 'app.close()');
    }

    beforeAll(async () => {
      receiver = await new TestReceiver().start();
    });
    afterEach(async () => {
      for (const app of apps.splice(0)) await within(app.close(), 15_000, 'app.close() after the test');
      receiver.reset();
    });
    afterAll(async () => {
      await receiver.stop();
    });

    it('closed port: send() rejects within enqueueTimeout naming the event, without credentials; close is bounded', async () => {
      const port = await closedPort();
      const { app, events, log } = await boot(`redis://thorn:${password}@127.0.0.1:${port}`);
      const err = await within(outcome(events.send('order.paid', { n: 1 })), 10_000, 'send()');
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(
        /Cannot queue "order\.paid".*within 400 ms.*not connected.*not queued/,
      );
      expect((err as Error).message).not.toContain(password);
      // a buffer flush fails the same way, naming its events
      const flush = outcome(
        events.bufferEvents(async () => {
          await events.send('order.a', {});
          await events.send('order.b', {});
        }),
      );
      expect(((await within(flush, 10_000, 'bufferEvents()')) as Error).message).toMatch(
        /Cannot queue 2 events \(order\.a, order\.b\)/,
      );
      await close(app);
      expect(log.lines.length).toBeGreaterThan(0);
      expect(log.lines.filter((l) => l.includes(password))).toEqual([]);
    });

    it('closed port: a model save() with propagateErrors rejects within enqueueTimeout, after its row committed', async () => {
      const port = await closedPort();
      const { app, widgets } = await boot(`redis://127.0.0.1:${port}`, { propagateErrors: true });
      const err = await within(outcome(widgets.save(widgets.create({ name: 'w1' }))), 10_000, 'save()');
      expect((err as Error).message).toMatch(/Cannot queue "widget\.created".*Redis/);
      expect(await widgets.count()).toBe(1);
      await close(app);
    });

    it('closed port: without propagateErrors save() resolves and the failure is logged with the event name', async () => {
      const port = await closedPort();
      const { app, widgets, log } = await boot(`redis://thorn:${password}@127.0.0.1:${port}`);
      await within(widgets.save(widgets.create({ name: 'w2' })), 10_000, 'save()');
      const line = await log.waitFor(/widget\.created/, 10_000);
      expect(line).toMatch(/^error .*"widget\.created".*not queued/);
      await close(app);
      expect(log.lines.filter((l) => l.includes(password))).toEqual([]);
    });

    it('events still waiting for Redis at shutdown are logged as dropped (count and names) and their send() rejects', async () => {
      const port = await closedPort();
      // a long enqueueTimeout: the events are still pending when the app closes
      const { app, events, dispatcher, log } = await boot(`redis://127.0.0.1:${port}`, {
        enqueueTimeout: 60_000,
      });
      const sends = [
        outcome(events.send('audit.one', {})),
        outcome(events.send('audit.two', {})),
        outcome(events.send('audit.two', {})),
      ];
      await within(
        (async () => {
          while (dispatcher.pendingEvents < 3) await new Promise((r) => setImmediate(r));
        })(),
        5000,
        'three pending events',
      );
      await close(app, 10_000);
      const errors = (await within(Promise.all(sends), 1000, 'the pending send() calls')) as Error[];
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(
          new RegExp(`Cannot queue "audit\\.one": the ${flavour.dispatcher} dispatcher is shut down`),
        ),
        expect.stringMatching(
          new RegExp(`Cannot queue "audit\\.two": the ${flavour.dispatcher} dispatcher is shut down`),
        ),
        expect.stringMatching(
          new RegExp(`Cannot queue "audit\\.two": the ${flavour.dispatcher} dispatcher is shut down`),
        ),
      ]);
      expect(log.lines.filter((l) => /dropped at shutdown/.test(l))).toEqual([
        expect.stringMatching(
          /^warn 3 event\(s\) dropped at shutdown, never accepted by Redis: audit\.one, audit\.two ×2/,
        ),
      ]);
    });

    it('a server that accepts connections and never answers: send() rejects within enqueueTimeout; close is bounded', async () => {
      const silent = await silentServer();
      try {
        const { app, events } = await boot(`redis://127.0.0.1:${silent.port}`, { enqueueTimeout: 500 });
        const err = await within(outcome(events.send('order.paid', {})), 10_000, 'send()');
        expect((err as Error).message).toMatch(/Cannot queue "order\.paid".*within 500 ms/);
        await close(app);
      } finally {
        await silent.stop();
      }
    });

    /**
     * Kills the redis-server under a running app, checks send() fails within enqueueTimeout, starts it again and checks
     * send() works again. `hung`: the server is stopped first and a PING is sent that it never reads, so the kill resets
     * the connection (the client's 'error' event, `read ECONNRESET`, comes before its 'close') instead of closing it.
     */
    async function killedMidRun(hung: boolean): Promise<void> {
      const port = await closedPort();
      let redis = await startRedisOn(port);
      try {
        const { app, events, dispatcher } = await boot(`redis://127.0.0.1:${port}`, {
          enqueueTimeout: 1000,
        });
        await events.send('tick.one', { n: 1 });
        await receiver.waitFor(1);
        // the client sees the connection go before the next send(), so Redis never got that add
        const lost = flavour.connectionClosed(dispatcher.queue);
        if (hung) {
          redis.child.kill('SIGSTOP');
          // answered by the next server if the client resends it after reconnecting
          const ping = flavour.ping(dispatcher.queue).catch(() => undefined);
          // written to the socket, unread by the stopped server
          await new Promise((r) => setTimeout(r, 100));
          void ping;
        }
        await stopRedis(redis);
        await within(lost, 10_000, 'the Redis connection to close');
        const err = await within(
          outcome(events.send('tick.two', { n: 2 })),
          10_000,
          'send() with Redis gone',
        );
        expect((err as Error).message).toMatch(/Cannot queue "tick\.two".*within 1000 ms.*not queued/);
        redis = await startRedisOn(port);
        // the library reconnects on its own schedule (backoff up to seconds): retry until Redis takes the job, bounded
        const deadline = Date.now() + 30_000;
        while ((await outcome(events.send('tick.three', { n: 3 }))) !== 'resolved') {
          if (Date.now() > deadline)
            throw new Error('send() did not succeed within 30 s of Redis coming back');
        }
        await receiver.waitFor(2);
        expect(receiver.requests.map((r) => r.json().n)).toEqual([1, 3]);
        await close(app);
      } finally {
        await stopRedis(redis);
      }
    }

    it('redis-server killed mid-run: send() rejects within enqueueTimeout; once Redis is back, send() works again', async () => {
      await killedMidRun(false);
    }, 60_000);

    it('shutdown with redis-server killed while a job runs: bounded, and no unhandled rejection', async () => {
      const port = await closedPort();
      const redis = await startRedisOn(port);
      // Node's own report, as an app without a handler gets it (the default mode crashes the process on it)
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const { app, events } = await boot(`redis://127.0.0.1:${port}`, { enqueueTimeout: 1000 });
        receiver.reply = () => ({ status: 200, delayMs: 1500 });
        await events.send('tick.slow', {});
        // the job is running: its request is in flight
        await receiver.waitFor(1);
        await stopRedis(redis);
        await close(app, 30_000);
        // a rejection Bull handles only later is reported after the tick it happened in
        await new Promise((r) => setTimeout(r, 100));
        expect(unhandled.map((r) => (r instanceof Error ? r.message : String(r)))).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
        await stopRedis(redis);
      }
    }, 60_000);

    it('redis-server killed mid-run while hung (the connection is reset, ECONNRESET): the same', async () => {
      await killedMidRun(true);
    }, 60_000);
  },
);
