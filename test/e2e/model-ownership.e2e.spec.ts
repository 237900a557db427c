import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { Column, Entity, ManyToOne, PrimaryGeneratedColumn, type Relation, type Repository } from 'typeorm';
import { ModelEvent, Subscriber, WebhookModel } from '../../lib/index.js';
import { testDatabases } from '../fixtures/databases.js';
import { bootModelApp, createSchema, deliveredBefore, type ModelApp } from '../fixtures/model-app.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SCHEMA = 'thorn_model_ownership';

/** A tenant whose primary key is a uuid column named `uuid`, not `id`. */
@Entity()
class Tenant {
  @PrimaryGeneratedColumn('uuid') uuid!: string;
  @Column() name!: string;
}

@Entity()
@WebhookModel({ senderField: 'owner' })
@ModelEvent('doc.created', { on: 'create' })
@ModelEvent('doc.changed', { on: 'change' })
@ModelEvent('doc.removed', { on: 'delete' })
class Doc {
  @PrimaryGeneratedColumn() id!: number;
  @Column() title!: string;
  @ManyToOne(() => Tenant, { nullable: true }) owner?: Relation<Tenant> | null;

  webhookPayload() {
    return { title: this.title };
  }
}

/** Records what the app logs. */
class LogCapture implements LoggerService {
  readonly warnings: string[] = [];
  log(): void {}
  error(): void {}
  warn(message: unknown): void {
    this.warnings.push(String(message));
  }
}

describe.each(testDatabases)('ownership with senderField on a non-`id` primary key ($name)', (db) => {
  let receiver: TestReceiver;
  let t: ModelApp;
  let docs: Repository<Doc>;
  let alice: Tenant;
  let bob: Tenant;
  let logs: LogCapture;

  /** Paths that got each doc event (the stored subscriptions' receivers), with the message's sender. */
  const received = async () =>
    (await deliveredBefore(t, receiver)).map((m, i) => ({
      path: receiver.requests[i].path,
      event: m.event,
      sender: m.sender,
    }));
  const to = (paths: string[], event: string, sender: unknown) =>
    paths.map((path) => ({ path, event, sender }));
  const byPathThenEvent = (xs: { path: string; event: string; sender: unknown }[]) =>
    // sender last: deliveries of one event to one path run concurrently, so they arrive in any order
    [...xs].sort(
      (a, b) =>
        a.event.localeCompare(b.event) ||
        a.path.localeCompare(b.path) ||
        String(a.sender).localeCompare(String(b.sender)),
    );

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    await createSchema(db, SCHEMA);
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(async () => {
    t = await bootModelApp(db, SCHEMA, [Tenant, Doc], {
      subscribers: { 'sentinel.#': `${receiver.url}/s` },
    });
    logs = new LogCapture();
    t.app.useLogger(logs);
    const ds = t.dataSource;
    [alice, bob] = await ds.getRepository(Tenant).save([{ name: 'alice' }, { name: 'bob' }]);
    const subs = ds.getRepository(Subscriber);
    await subs.save([
      subs.create({ event: 'doc.#', url: `${receiver.url}/alice`, user: alice.uuid }),
      subs.create({ event: 'doc.#', url: `${receiver.url}/bob`, user: bob.uuid }),
      subs.create({ event: 'doc.#', url: `${receiver.url}/anyone`, user: null }),
    ]);
    docs = ds.getRepository(Doc);
    receiver.reset();
  });
  afterEach(async () => {
    await t?.close();
  });

  it('the sender is the related row’s uuid key (loaded, known by key only, or loaded by Thorn): the other tenant gets nothing', async () => {
    const loaded = await docs.save(docs.create({ title: 'loaded', owner: alice }));
    const byKey = await docs.save(docs.create({ title: 'by key', owner: { uuid: alice.uuid } as Tenant }));
    // a bare row (relation not loaded): Thorn loads the owner in the save's transaction
    const bare = (await docs.findOneByOrFail({ id: loaded.id }))!;
    expect(bare.owner).toBeUndefined();
    bare.title = 'changed';
    await docs.save(bare);
    await docs.remove(await docs.findOneByOrFail({ id: byKey.id }));
    const got = await received();
    const alices = ['/alice', '/anyone'];
    expect(byPathThenEvent(got)).toEqual(
      byPathThenEvent([
        ...to(alices, 'doc.created', alice.uuid),
        ...to(alices, 'doc.created', alice.uuid),
        ...to(alices, 'doc.changed', alice.uuid),
        ...to(alices, 'doc.removed', alice.uuid),
      ]),
    );
    expect(got.filter((g) => g.path === '/bob')).toEqual([]);
    expect(logs.warnings.filter((w) => w.includes('senderField'))).toEqual([]);
  });

  it('no sender (a null relation): only subscriptions owned by nobody, never every user’s; warned once per model', async () => {
    const orphan = await docs.save(docs.create({ title: 'orphan', owner: null }));
    orphan.title = 'still orphan';
    await docs.save(orphan);
    // Bob's own doc still reaches Bob (and not Alice)
    await docs.save(docs.create({ title: 'bob’s', owner: bob }));
    const got = await received();
    expect(byPathThenEvent(got)).toEqual(
      byPathThenEvent([
        ...to(['/anyone'], 'doc.created', null),
        ...to(['/anyone'], 'doc.changed', null),
        ...to(['/bob', '/anyone'], 'doc.created', bob.uuid),
      ]),
    );
    const warned = logs.warnings.filter((w) => w.includes('senderField "owner"'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/^Doc: no sender at senderField "owner" .*subscriptions owned by nobody/);
  });
});
