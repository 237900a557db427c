// Worker processes of the same app (test/fixtures/queue-worker.mjs, running the built package) against a real Redis,
// a shared SQLite file and real receivers: crash safety under SIGKILL, and two workers sharing one queue. The same
// tests run on each queue dispatcher (bull, bullmq).
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import {
  blockInternalIps,
  ensureProtocol,
  EventService,
  Subscriber,
  ThornModule,
  verify,
} from '../../lib/index.js';
import { queueFlavours, type QueueFlavour } from '../fixtures/queues.js';
import { TestReceiver, type ReceivedRequest } from '../fixtures/receiver.js';

const redisUrl = process.env.THORN_TEST_REDIS_URL;
if (!redisUrl && process.env.CI)
  throw new Error('THORN_TEST_REDIS_URL is not set: run the tests with `npm test`');
const describeRedis = redisUrl ? describe : describe.skip;

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface WorkerProcess {
  name: string;
  child: ChildProcess;
  ready: Promise<void>;
  stderr: string[];
}

describeRedis.each(queueFlavours)(
  '%s worker processes (built package, real Redis)',
  (_name, flavour: QueueFlavour) => {
    let a: TestReceiver;
    let b: TestReceiver;
    let prefix: string;
    let database: string;
    let producer: INestApplication | undefined;
    const workers: WorkerProcess[] = [];

    function startWorker(name: string, extra: Record<string, unknown> = {}): WorkerProcess {
      const config = {
        dispatcher: flavour.dispatcher,
        redisUrl,
        prefix,
        database,
        name,
        maxRunMs: 90_000,
        ...extra,
      };
      const child = spawn(process.execPath, ['test/fixtures/queue-worker.mjs'], {
        env: { ...process.env, NODE_OPTIONS: '', THORN_WORKER_CONFIG: JSON.stringify(config) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const stderr: string[] = [];
      child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.once('exit', (code, signal) =>
          reject(new Error(`worker ${name} exited (${code ?? signal}) before ready: ${stderr.join('')}`)),
        );
      });
      const w = { name, child, ready, stderr };
      workers.push(w);
      return w;
    }

    async function stopWorker(w: WorkerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      if (w.child.exitCode !== null || w.child.signalCode !== null) return;
      const exited = new Promise<void>((r) => w.child.once('exit', () => r()));
      w.child.kill(signal);
      const timer = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }

    /** The producer: this process, `worker: false`, writing the stored subscriptions the workers read. */
    async function bootProducer(): Promise<{
      events: EventService;
      repo: ReturnType<DataSource['getRepository']>;
    }> {
      const moduleRef = await Test.createTestingModule({
        imports: [
          TypeOrmModule.forRoot({
            type: 'better-sqlite3',
            database,
            entities: [Subscriber],
            synchronize: true,
          }),
          ThornModule.forRoot({
            ...flavour.connect(redisUrl!, prefix),
            worker: false,
            controller: false,
            recipientValidators: [
              blockInternalIps({ allow: ['127.0.0.0/8'] }),
              ensureProtocol('http', 'https'),
            ],
          }),
        ],
      }).compile();
      producer = moduleRef.createNestApplication({ logger: false });
      await producer.init();
      return {
        events: producer.get(EventService),
        repo: producer.get<DataSource>(getDataSourceToken()).getRepository(Subscriber),
      };
    }

    async function idle(events: EventService, ms: number): Promise<void> {
      await until(
        async () => {
          const s = (await events.queueStats())!;
          return s.waiting + s.active + s.delayed === 0;
        },
        ms,
        'an idle queue',
      );
    }

    /** Groups requests by (event seq, subscription): each group must carry one Hook-Delivery, however often it came. */
    function analyse(requests: ReceivedRequest[]) {
      const pairs = new Map<string, Set<string>>();
      for (const r of requests) {
        const key = `${r.json().seq}|${String(r.headers['hook-subscription'])}`;
        const ids = pairs.get(key) ?? new Set<string>();
        ids.add(String(r.headers['hook-delivery']));
        pairs.set(key, ids);
      }
      const ids = new Set(requests.map((r) => String(r.headers['hook-delivery'])));
      return { pairs, ids, duplicates: requests.length - ids.size };
    }

    beforeAll(async () => {
      a = await new TestReceiver().start();
      b = await new TestReceiver().start();
    });
    beforeEach(() => {
      prefix = `thorn-test-${randomUUID().slice(0, 8)}`;
      database = join(tmpdir(), `thorn-${flavour.dispatcher}-${randomUUID().slice(0, 8)}.sqlite`);
    });
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => stopWorker(w)));
      await producer?.close();
      producer = undefined;
      a.reset();
      b.reset();
      const q = flavour.open(redisUrl!, prefix);
      await q.obliterate({ force: true });
      await q.close();
      rmSync(database, { force: true });
    });
    afterAll(async () => {
      await Promise.all(workers.splice(0).map((w) => stopWorker(w, 'SIGKILL')));
      await a.stop();
      await b.stop();
    });

    it('loses no delivery when the worker is SIGKILLed mid-run: a new worker finishes, with the same delivery ids', async () => {
      const { events, repo } = await bootProducer();
      // 25 subscriptions on two origins; 48 events → 1,200 deliveries, fanned out into chunk jobs of 10
      const subs = await repo.save(
        Array.from({ length: 25 }, (_, i) =>
          repo.create({ event: 'load.*', url: `${(i % 2 ? b : a).url}/s${i}` }),
        ),
      );
      const secrets = new Map(subs.map((s) => [s.id, s.hmacSecret]));
      for (const r of [a, b]) r.reply = () => ({ status: 200, delayMs: 5 });
      const EVENTS = 48;
      const total = EVENTS * subs.length;
      for (let seq = 0; seq < EVENTS; seq++) await events.send('load.tick', { seq });
      expect((await events.queueStats())!.waiting).toBe(EVENTS);

      // short locks so the library's stalled-job check hands the killed worker's active jobs back within seconds
      const settings = { lockDuration: 3000, stalledInterval: 1000, maxStalledCount: 5 };
      const received = () => a.requests.length + b.requests.length;
      const first = startWorker('first', { concurrency: 16, chunkSize: 10, settings });
      await first.ready;
      await until(() => received() >= 400, 30_000, '400 deliveries before the kill');
      await stopWorker(first, 'SIGKILL');
      const atKill = received();
      const activeAtKill = (await events.queueStats())!.active;

      const second = startWorker('second', { concurrency: 16, chunkSize: 10, settings });
      await second.ready;
      await until(
        () => analyse([...a.requests, ...b.requests]).pairs.size === total,
        60_000,
        `${total} deliveries`,
      );
      await idle(events, 30_000);

      const all = [...a.requests, ...b.requests];
      const { pairs, ids, duplicates } = analyse(all);
      expect(pairs.size).toBe(total);
      // a re-run after the crash re-sent some requests, always with the delivery id of the first run
      expect([...pairs.values()].every((s) => s.size === 1)).toBe(true);
      expect(ids.size).toBe(total);
      expect(atKill).toBeLessThan(total);
      for (const r of all) {
        const secret = secrets.get(String(r.headers['hook-subscription']))!;
        expect(verify(String(r.headers['hook-hmac']), 'sha256', secret, r.body)).toBe(true);
      }
      // the first worker is dead: everything after the kill came from the second one
      expect(all.length).toBeGreaterThan(atKill);
      expect((await events.queueStats())!.failed).toBe(0);
      console.log(
        `${flavour.dispatcher} crash test: SIGKILL after ${atKill} of ${total} deliveries (${activeAtKill} jobs active); ` +
          `${all.length} requests received for ${ids.size} distinct Hook-Delivery ids → ${duplicates} duplicates`,
      );
    }, 120_000);

    it('two workers share one queue and together deliver every delivery exactly once', async () => {
      const { events, repo } = await bootProducer();
      const subs = await repo.save(
        Array.from({ length: 5 }, (_, i) => repo.create({ event: 'pair.*', url: `${a.url}/s${i}` })),
      );
      const secrets = new Map(subs.map((s) => [s.id, s.hmacSecret]));
      const subscribers = { 'pair.*': `${b.url}/static` };
      const one = startWorker('one', { concurrency: 8, subscribers });
      const two = startWorker('two', { concurrency: 8, subscribers });
      await Promise.all([one.ready, two.ready]);
      const EVENTS = 100;
      for (let seq = 0; seq < EVENTS; seq++) await events.send('pair.sent', { seq });
      const total = EVENTS * (subs.length + 1);
      await until(() => a.requests.length + b.requests.length >= total, 60_000, `${total} deliveries`);
      await idle(events, 30_000);

      const all = [...a.requests, ...b.requests];
      const { pairs, ids, duplicates } = analyse(all);
      expect(all).toHaveLength(total);
      expect(duplicates).toBe(0);
      expect(pairs.size).toBe(total);
      expect(ids.size).toBe(total);
      // every event reached every subscriber with its own body, signed as one worker would have signed it
      for (let seq = 0; seq < EVENTS; seq++) {
        const got = all.filter((r) => r.json().seq === seq);
        expect(got.map((r) => r.path).sort()).toEqual(['/s0', '/s1', '/s2', '/s3', '/s4', '/static']);
      }
      for (const r of all) {
        const secret = secrets.get(String(r.headers['hook-subscription'])) ?? 'static-secret';
        expect(verify(String(r.headers['hook-hmac']), 'sha256', secret, r.body)).toBe(true);
      }
      // User-Agent is set when a worker prepares an event's requests; here each event job delivers its own 6 requests
      const share = (n: string) =>
        all.filter((r) => r.headers['user-agent'] === `thorn-test-worker/${n}`).length;
      expect(share('one')).toBeGreaterThan(0);
      expect(share('two')).toBeGreaterThan(0);
      expect(share('one') + share('two')).toBe(total);
      // SIGTERM: Nest's shutdown hooks close the app, the worker finishes and disconnects, the process exits by itself
      await Promise.all([one, two].map((w) => stopWorker(w, 'SIGTERM')));
      for (const w of [one, two]) {
        expect(w.child.signalCode ?? w.child.exitCode).toBe('SIGTERM');
        expect(w.stderr.join('')).toBe('');
      }
      console.log(
        `${flavour.dispatcher} two workers: ${total} deliveries, worker one ${share('one')}, worker two ${share('two')}`,
      );
    }, 120_000);
  },
);
