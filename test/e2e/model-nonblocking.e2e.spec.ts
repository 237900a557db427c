import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { ModelEvent, WebhookModel } from '../../lib/index.js';
import { SubscriptionStore } from '../../lib/subscriptions/subscription.store.js';
import { testDatabases } from '../fixtures/databases.js';
import { bootModelApp, createSchema, type ModelApp } from '../fixtures/model-app.js';
import { DataSource } from 'typeorm';
import { Subscriber } from '../../lib/index.js';
import { TestReceiver } from '../fixtures/receiver.js';

@Entity()
@WebhookModel()
@ModelEvent('note.created', { on: 'create' })
class Note {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  title!: string;
}

describe.each(testDatabases)('model events never wait for HTTP inside save() ($name)', (db) => {
  let receiver: TestReceiver;
  let t: ModelApp;
  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    await createSchema(db, 'thorn_model_nonblocking');
    t = await bootModelApp(db, 'thorn_model_nonblocking', [Note], {
      subscribers: { 'note.*': `${receiver.url}/notes` },
      timeout: 20_000,
    });
  });
  afterAll(async () => {
    await t.close();
    await receiver.stop();
  });

  it('save() resolves while the receiver still holds the webhook request open', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let answered = false;
    receiver.reply = () => ({ hold: held.then(() => (answered = true)) });
    // if save() awaited the delivery, it could not resolve before `release()` below and the test would time out
    const note = await t.dataSource.getRepository(Note).save({ title: 'hello' });
    await receiver.waitFor(1);
    expect(answered).toBe(false);
    expect(receiver.requests[0].json()).toMatchObject({ event: 'note.created', data: {} });
    expect(note.id).toBeGreaterThan(0);
    release();
    await t.settle();
  }, 10_000);
});

// SQLite's planner output is deterministic, so the "no table scan" promise is checked on its query plan
// (PostgreSQL's is measured at 1,000,000 rows in `npm run bench`).
describe('stored subscription lookup plan (SQLite)', () => {
  it('uses the (event, active) index, with and without a sender, never a scan of thorn_subscriber', async () => {
    const ds = new DataSource({
      type: 'better-sqlite3',
      database: ':memory:',
      entities: [Subscriber],
      synchronize: true,
    });
    await ds.initialize();
    try {
      const store = new SubscriptionStore(ds, Subscriber);
      const { withSender, anyone } = (store as any).sql as { withSender: string; anyone: string };
      const list = JSON.stringify(['note.created', 'note.*', '#']);
      for (const [sql, params] of [
        [withSender, [list, 'u1']],
        [anyone, [list]],
      ] as const) {
        const plan: { detail: string }[] = await ds.query(`EXPLAIN QUERY PLAN ${sql}`, [...params]);
        const details = plan.map((p) => p.detail).join('\n');
        expect(details).toMatch(
          /SEARCH thorn_subscriber USING INDEX IDX_thorn_subscriber_event_active \(event=\? AND active=\?\)/,
        );
        expect(details).not.toMatch(/IDX_thorn_subscriber_user|SCAN thorn_subscriber/);
      }
    } finally {
      await ds.destroy();
    }
  });
});
