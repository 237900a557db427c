import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { Repository } from 'typeorm';
import { Subscriber, type SubscriberContext } from '../../lib/index.js';
import { ModelEventSubscriber } from '../../lib/typeorm/model-event.subscriber.js';
import { testDatabases } from '../fixtures/databases.js';
import {
  bootModelApp,
  createSchema,
  deliveredBefore,
  messages,
  type ModelApp,
} from '../fixtures/model-app.js';
import { Account, Article, Author, blogEntities, Category, Tag, User } from '../fixtures/model-entities.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SCHEMA = 'thorn_model_events';

describe.each(testDatabases)('model events on the SPEC §3 Article model ($name)', (db) => {
  let receiver: TestReceiver;
  let t: ModelApp;
  let articles: Repository<Article>;
  let alice: User;
  let bob: User;
  let author: Author;
  let news: Category;
  let tags: Tag[];
  const contexts: any[] = [];

  const delivered = () => deliveredBefore(t, receiver);

  const newArticle = (fields: Partial<Article> = {}) =>
    articles.create({
      uuid: randomUUID(),
      title: 'Hello',
      state: 'PENDING',
      // only the id: the sender (author.account.user) is loaded by Thorn in the same transaction
      author: { id: author.id } as Author,
      category: news,
      ...fields,
    });

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    await createSchema(db, SCHEMA);
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(async () => {
    contexts.length = 0;
    t = await bootModelApp(db, SCHEMA, blogEntities, {
      subscribers: {
        'article.#': [
          `${receiver.url}/a`,
          // a callback subscriber: records what it is given, subscribes nobody
          (event: string, ctx: SubscriberContext) => void contexts.push({ event, ...ctx }),
        ],
        'sentinel.#': `${receiver.url}/s`,
      },
    });
    const ds = t.dataSource;
    alice = await ds.getRepository(User).save({ username: 'alice' });
    bob = await ds.getRepository(User).save({ username: 'bob' });
    const account = await ds.getRepository(Account).save({ user: alice });
    author = await ds.getRepository(Author).save({ name: 'Ann', account });
    news = await ds.getRepository(Category).save({ name: 'news & views' });
    tags = await ds.getRepository(Tag).save([{ name: 't1' }, { name: 't2' }, { name: 't3' }]);
    articles = ds.getRepository(Article);
    receiver.reset();
  });
  afterEach(async () => {
    await t?.close();
  });

  it('create, change, publish once, change while published, remove: exactly these messages, in order', async () => {
    const article = await articles.save(newArticle());
    await receiver.waitFor(1);
    const ref = `/articles/${article.uuid}`;
    const sender = alice.id;
    expect(messages(receiver)).toEqual([
      { event: 'article.created', ref, sender, data: { title: 'Hello', state: 'PENDING' } },
    ]);
    expect(receiver.requests[0].headers['x-article']).toBe(article.uuid);
    expect(receiver.requests[0].headers['hook-event']).toBe('article.created');

    article.title = 'Hello again';
    await articles.save(article);
    await receiver.waitFor(2);

    article.state = 'PUBLISHED';
    await articles.save(article);
    await receiver.waitFor(4);

    article.title = 'Still published';
    await articles.save(article);
    await receiver.waitFor(5);

    await articles.save(article); // nothing changed: TypeORM runs no UPDATE, nothing fires

    await articles.remove(article);
    const got = await delivered();
    expect(got).toEqual([
      { event: 'article.created', ref, sender, data: { title: 'Hello', state: 'PENDING' } },
      { event: 'article.changed', ref, sender, data: { title: 'Hello again', state: 'PENDING' } },
      { event: 'article.changed', ref, sender, data: { title: 'Hello again', state: 'PUBLISHED' } },
      { event: 'article.published', ref, sender, data: { title: 'Hello again', state: 'PUBLISHED' } },
      { event: 'article.changed', ref, sender, data: { title: 'Still published', state: 'PUBLISHED' } },
      // the delete event's own reverse, URL-encoded
      {
        event: 'article.removed',
        ref: '/categories/news%20%26%20views',
        sender,
        data: { title: 'Still published', state: 'PUBLISHED' },
      },
    ]);
  });

  it('builds a removed article message from a bare row: the primary key and unloaded relations are restored', async () => {
    const saved = await articles.save(newArticle());
    await t.settle();
    receiver.reset();
    contexts.length = 0;
    const bare = (await articles.findOneBy({ id: saved.id }))!;
    expect(bare.category).toBeUndefined();
    expect(bare.author).toBeUndefined();
    await articles.remove(bare);
    expect(bare.id).toBeUndefined();
    expect(await delivered()).toEqual([
      {
        event: 'article.removed',
        ref: '/categories/news%20%26%20views',
        sender: alice.id,
        data: { title: 'Hello', state: 'PENDING' },
      },
    ]);
    // callback subscribers get the primary key, although TypeORM cleared it on the entity
    expect(contexts).toEqual([{ event: 'article.removed', sender: String(alice.id), instance: saved.id }]);
    // and the caller's entity was not touched
    expect(bare.category).toBeUndefined();
  });

  it('tags through save(): added, removed, and cleared when the relation becomes empty', async () => {
    const [t1, t2, t3] = tags;
    const article = await articles.save(newArticle({ tags: [t1, t2] }));
    await receiver.waitFor(2);
    article.tags = [t2, t3];
    await articles.save(article);
    await receiver.waitFor(4);
    article.tags = [];
    await articles.save(article);
    const got = await delivered();
    const data = (ids?: number[]) => ({ title: 'Hello', state: 'PENDING', ...(ids ? { tags: ids } : {}) });
    const msg = (event: string, ids?: number[]) => ({
      event,
      ref: `/articles/${article.uuid}`,
      sender: alice.id,
      data: data(ids),
    });
    expect(got).toEqual([
      msg('article.created'),
      msg('article.tag_added', [t1.id, t2.id]),
      msg('article.tag_added', [t3.id]),
      msg('article.tag_removed', [t1.id]),
      msg('article.tag_removed', [t2.id, t3.id]),
      msg('article.tags_cleared', [t2.id, t3.id]),
    ]);
  });

  it('tags through createQueryBuilder().relation(): add, remove, remove-absent, clear, and from the inverse side', async () => {
    const [t1, t2, t3] = tags;
    const article = await articles.save(newArticle());
    await receiver.waitFor(1);
    receiver.reset();
    contexts.length = 0;
    const rel = () => t.dataSource.createQueryBuilder().relation(Article, 'tags').of(article);

    await rel().add([t1, t2]);
    await receiver.waitFor(1);
    await rel().remove(t1);
    await receiver.waitFor(2);
    await rel().remove(t3.id); // not attached: no row deleted, no event
    // the inverse side's QueryBuilder writes the same junction table: the owning Article reports it
    await t.dataSource.createQueryBuilder().relation(Tag, 'articles').of(t3).add(article);
    await receiver.waitFor(3);
    await rel().remove([t2, t3]);
    const got = await delivered();
    const msg = (event: string, ids: number[]) => ({
      event,
      ref: `/articles/${article.uuid}`,
      sender: alice.id,
      data: { title: 'Hello', state: 'PENDING', tags: ids },
    });
    expect(got).toEqual([
      msg('article.tag_added', [t1.id, t2.id]),
      msg('article.tag_removed', [t1.id]),
      msg('article.tag_added', [t3.id]),
      msg('article.tag_removed', [t2.id, t3.id]),
      msg('article.tags_cleared', [t2.id, t3.id]),
    ]);
    expect(contexts).toEqual([
      {
        event: 'article.tag_added',
        sender: String(alice.id),
        instance: article.id,
        relation: 'tags',
        ids: [t1.id, t2.id],
      },
      {
        event: 'article.tag_removed',
        sender: String(alice.id),
        instance: article.id,
        relation: 'tags',
        ids: [t1.id],
      },
      {
        event: 'article.tag_added',
        sender: String(alice.id),
        instance: article.id,
        relation: 'tags',
        ids: [t3.id],
      },
      {
        event: 'article.tag_removed',
        sender: String(alice.id),
        instance: article.id,
        relation: 'tags',
        ids: [t2.id, t3.id],
      },
      {
        event: 'article.tags_cleared',
        sender: String(alice.id),
        instance: article.id,
        relation: 'tags',
        ids: [t2.id, t3.id],
      },
    ]);
  });

  it('removing an article with tags sends its delete event only (no m2m events for a row that is gone)', async () => {
    const article = await articles.save(newArticle({ tags: [tags[0]] }));
    await receiver.waitFor(2);
    receiver.reset();
    await articles.remove(article);
    expect((await delivered()).map((m) => m.event)).toEqual(['article.removed']);
  });

  it('only the sender’s and unowned stored subscriptions receive an article event', async () => {
    const subs = t.dataSource.getRepository(Subscriber);
    await subs.save([
      subs.create({ event: 'article.created', url: `${receiver.url}/alice`, user: String(alice.id) }),
      subs.create({ event: 'article.created', url: `${receiver.url}/bob`, user: String(bob.id) }),
      subs.create({ event: 'article.created', url: `${receiver.url}/anyone`, user: null }),
    ]);
    await articles.save(newArticle());
    await delivered();
    expect(
      receiver.requests
        .map((r) => r.path)
        .filter((p) => p !== '/s')
        .sort(),
    ).toEqual(['/a', '/alice', '/anyone']);
  });

  it('update(), delete(), QueryBuilder update/delete, softDelete() and recover() fire nothing; insert() fires create', async () => {
    const article = await articles.save(newArticle());
    await receiver.waitFor(1);
    receiver.reset();
    await articles.update(article.id, { title: 'via update()', state: 'PUBLISHED' });
    await t.dataSource
      .createQueryBuilder()
      .update(Article)
      .set({ title: 'via QB' })
      .where('id = :id', { id: article.id })
      .execute();
    await articles.softDelete(article.id);
    await articles.restore(article.id);
    const other = await articles.save(newArticle());
    await t.settle();
    receiver.reset();
    await articles.delete(other.id);
    await t.dataSource
      .createQueryBuilder()
      .delete()
      .from(Article)
      .where('id = :id', { id: article.id })
      .execute();
    expect(await delivered()).toEqual([]);

    receiver.reset();
    const uuid = randomUUID();
    await articles.insert({ uuid, title: 'inserted', state: 'PENDING', author: { id: author.id } as Author });
    expect(await delivered()).toEqual([
      {
        event: 'article.created',
        ref: `/articles/${uuid}`,
        sender: alice.id,
        data: { title: 'inserted', state: 'PENDING' },
      },
    ]);
  });

  it('softRemove() counts as delete; recover() fires nothing', async () => {
    const article = await articles.save(newArticle());
    await receiver.waitFor(1);
    receiver.reset();
    await articles.softRemove(article);
    await articles.recover(article);
    expect(await delivered()).toEqual([
      {
        event: 'article.removed',
        ref: '/categories/news%20%26%20views',
        sender: alice.id,
        data: { title: 'Hello', state: 'PENDING' },
      },
    ]);
  });

  it('now_* filters read the previous row once, in the save’s transaction: one extra SELECT, no other', async () => {
    const article = await articles.save(newArticle());
    await t.settle();
    // fully loaded, so nothing needs loading for the sender either
    const loaded = (await articles.findOne({
      where: { id: article.id },
      relations: { author: { account: { user: true } }, category: true },
    }))!;
    receiver.reset();
    // SELECTs of the model (the stored-subscription lookup of the dispatch is not one)
    const selects = () =>
      t.queries.queries.filter((q) => /^\s*SELECT/i.test(q) && !q.includes('thorn_subscriber')).length;

    let before = selects();
    loaded.state = 'PUBLISHED';
    await articles.save(loaded);
    const withThorn = selects() - before;
    expect((await delivered()).map((m) => m.event)).toEqual(['article.changed', 'article.published']);

    // the same kind of save with Thorn's subscriber unplugged: TypeORM's own SELECTs only
    const subscribers = t.dataSource.subscribers;
    const ours = subscribers.findIndex((s) => s instanceof ModelEventSubscriber);
    const [unplugged] = subscribers.splice(ours, 1);
    before = selects();
    loaded.state = 'DRAFT';
    await articles.save(loaded);
    const withoutThorn = selects() - before;
    subscribers.push(unplugged);
    // the row before the update, read under a lock (see model-concurrency.e2e.spec.ts)
    expect(withThorn).toBe(withoutThorn + 1);
  });
});
