// ThornHealthIndicator with @nestjs/terminus's own HealthCheckService, over HTTP: the subscription store (SQLite,
// PostgreSQL) and the bull queue (a real Redis, stopped to take it down).
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import {
  EventService,
  Subscriber,
  ThornHealthIndicator,
  ThornModule,
  type ThornHealthOptions,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { testDatabases } from '../fixtures/databases.js';
// @ts-expect-error: plain ESM helper without types
import { startRedis } from '../services.mjs';

const redisUrl = process.env.THORN_TEST_REDIS_URL;
if (!redisUrl && process.env.CI)
  throw new Error('THORN_TEST_REDIS_URL is not set: run the tests with `npm test`');
const itRedis = redisUrl ? it : it.skip;

let checkOptions: ThornHealthOptions = {};

/** A health endpoint written exactly as terminus documents it, with Thorn's indicator next to its own. */
@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly thorn: ThornHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.thorn.isHealthy('thorn', checkOptions)]);
  }

  @Get('queue')
  @HealthCheck()
  queue() {
    return this.health.check([() => this.thorn.checkQueue('thorn_queue', checkOptions)]);
  }

  @Get('store')
  @HealthCheck()
  store() {
    return this.health.check([() => this.thorn.checkStore('thorn_store', checkOptions)]);
  }
}

describe('ThornHealthIndicator (@nestjs/terminus)', () => {
  const apps: INestApplication[] = [];
  const stops: (() => Promise<void>)[] = [];

  async function boot(options: ThornModuleOptions & { subscriberEntity?: false }, database?: object) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TerminusModule.forRoot({ logger: false }),
        ...(database ? [TypeOrmModule.forRoot(database as any)] : []),
        ThornModule.forRoot({ controller: false, ...options }),
      ],
      controllers: [HealthController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    apps.push(app);
    return app;
  }

  afterEach(async () => {
    checkOptions = {};
    for (const app of apps.splice(0)) await app.close();
    for (const stop of stops.splice(0)) await stop();
  });

  describe.each(testDatabases)('the subscription store on $name', (db) => {
    it('is up while its table answers and down (503) once the database is gone', async () => {
      const app = await boot({}, db.options([Subscriber]));
      const up = await request(app.getHttpServer()).get('/health').expect(200);
      expect(up.body.status).toBe('ok');
      expect(up.body.info.thorn).toMatchObject({ status: 'up', store: { status: 'up' } });
      expect(up.body.info.thorn.store.responseTimeMs).toEqual(expect.any(Number));
      expect(up.body.info.thorn.queue).toBeUndefined(); // the direct dispatcher has no queue

      await app.get<DataSource>(getDataSourceToken()).destroy();
      const down = await request(app.getHttpServer()).get('/health').expect(503);
      expect(down.body.status).toBe('error');
      expect(down.body.error.thorn.status).toBe('down');
      expect(down.body.error.thorn.store).toMatchObject({ status: 'down', message: expect.any(String) });
    });
  });

  it('without stored subscriptions the store is not checked, and asking for it says why it is down', async () => {
    const app = await boot({ subscriberEntity: false });
    const all = await request(app.getHttpServer()).get('/health').expect(200);
    expect(all.body.info.thorn).toEqual({ status: 'up' });
    const store = await request(app.getHttpServer()).get('/health/store').expect(503);
    expect(store.body.error.thorn_store.message).toMatch(/subscriberEntity: false/);
    const queue = await request(app.getHttpServer()).get('/health/queue').expect(503);
    expect(queue.body.error.thorn_queue.message).toMatch(/no queue/);
  });

  itRedis('the bull queue: job counts when up, down over maxQueueWaiting', async () => {
    const app = await boot({
      subscriberEntity: false,
      dispatcher: 'bull',
      worker: false, // jobs stay waiting
      bull: { url: redisUrl, prefix: `health-${randomUUID()}` },
      subscribers: { 'a.b': 'http://127.0.0.1:9/never' },
    });
    const up = await request(app.getHttpServer()).get('/health').expect(200);
    expect(up.body.info.thorn.queue).toMatchObject({
      status: 'up',
      waiting: 0,
      active: 0,
      delayed: 0,
      failed: 0,
    });
    const events = app.get(EventService);
    for (let i = 0; i < 3; i++) await events.send('a.b', { i });
    checkOptions = { maxQueueWaiting: 2 };
    const over = await request(app.getHttpServer()).get('/health/queue').expect(503);
    expect(over.body.error.thorn_queue).toMatchObject({
      status: 'down',
      waiting: 3,
      message: '3 jobs waiting, more than maxQueueWaiting (2)',
    });
    checkOptions = { maxQueueWaiting: 3 };
    await request(app.getHttpServer()).get('/health/queue').expect(200);
  });

  it('the bull queue is down within the timeout once its Redis stops', async () => {
    const redis = await startRedis();
    let stopped = false;
    stops.push(async () => {
      if (!stopped) await redis.stop();
    });
    const app = await boot({
      subscriberEntity: false,
      dispatcher: 'bull',
      bull: { url: redis.url, prefix: 'health' },
    });
    await request(app.getHttpServer()).get('/health').expect(200);
    await redis.stop();
    stopped = true;
    checkOptions = { timeout: 300 };
    const started = Date.now();
    const down = await request(app.getHttpServer()).get('/health').expect(503);
    expect(Date.now() - started).toBeLessThan(5_000); // bounded: the timeout, not Redis's reconnect loop
    expect(down.body.error.thorn.queue).toMatchObject({ status: 'down', message: expect.any(String) });
  });
});
