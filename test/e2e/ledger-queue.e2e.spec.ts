// The ledger with the queue dispatchers, in one process: Redis going away delays deliveries but never fails or blocks
// save(); the relay enqueues them again (with a backoff, logged) once Redis is back.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { ModelEvent, THORN_LEDGER_ENTITIES } from '../../lib/index.js';
import { testDatabases } from '../fixtures/databases.js';
import { bootModelApp, createSchema, type ModelApp } from '../fixtures/model-app.js';
import { queueFlavours } from '../fixtures/queues.js';
import { TestReceiver } from '../fixtures/receiver.js';
import { freePort, startRedisOn, stopRedis, type RedisOnPort } from '../fixtures/redis-server.js';

const SCHEMA = 'thorn_ledger_queue';
jest.setTimeout(60_000);

@Entity()
@ModelEvent('parcel.created', { on: 'create' })
class Parcel {
  @PrimaryGeneratedColumn() id!: number;
  @Column() label!: string;
  webhookPayload() {
    return { label: this.label };
  }
}

const describeRedis = process.env.THORN_TEST_REDIS_URL ? describe : describe.skip;

describeRedis.each(queueFlavours)('ledger with the %s dispatcher and Redis going away', (_name, flavour) => {
  describe.each(testDatabases)('$name', (db) => {
    const receiver = new TestReceiver();
    let redis: RedisOnPort | undefined;
    let t: ModelApp | undefined;
    beforeAll(async () => {
      await receiver.start();
      await createSchema(db, SCHEMA);
    });
    afterAll(() => receiver.stop());
    beforeEach(() => receiver.reset());
    afterEach(async () => {
      await t?.close();
      t = undefined;
      if (redis) await stopRedis(redis);
      redis = undefined;
    });

    it('save() neither fails nor waits while Redis is down; the deliveries go out once it is back', async () => {
      const port = await freePort();
      redis = await startRedisOn(port);
      t = await bootModelApp(db, SCHEMA, [Parcel, ...THORN_LEDGER_ENTITIES], {
        ...flavour.connect(`redis://127.0.0.1:${port}`, `thorn-ledger-${randomUUID().slice(0, 8)}`),
        ledger: { pollInterval: 100 },
        enqueueTimeout: 300,
        subscribers: { 'parcel.#': `${receiver.url}/parcel` },
      });
      const repo = t.dataSource.getRepository(Parcel);
      await repo.save({ label: 'before' });
      await receiver.waitFor(1);

      await stopRedis(redis);
      redis = undefined;
      const started = Date.now();
      for (let i = 0; i < 5; i++) await repo.save({ label: `while down ${i}` });
      // five saves, each one insert of its event more than an undecorated save: far below enqueueTimeout each
      expect(Date.now() - started).toBeLessThan(1500);
      await new Promise((r) => setTimeout(r, 800));
      expect(receiver.requests).toHaveLength(1);

      redis = await startRedisOn(port);
      await receiver.waitFor(6, 30_000);
      expect(receiver.requests.map((r) => r.json().data.label).sort()).toEqual([
        'before',
        'while down 0',
        'while down 1',
        'while down 2',
        'while down 3',
        'while down 4',
      ]);
    });
  });
});
