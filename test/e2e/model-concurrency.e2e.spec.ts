import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Column, Entity, PrimaryGeneratedColumn, type DataSource, type Repository } from 'typeorm';
import { ModelEvent } from '../../lib/index.js';
import { ModelEventSubscriber } from '../../lib/typeorm/model-event.subscriber.js';
import { testDatabases } from '../fixtures/databases.js';
import { bootModelApp, createSchema, deliveredBefore, type ModelApp } from '../fixtures/model-app.js';
import { Article, blogEntities } from '../fixtures/model-entities.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SCHEMA = 'thorn_model_concurrency';
const ROUNDS = 6;

/** Change events, but no `now_*` filter: its saves must cost no query more than without Thorn. */
@Entity()
@ModelEvent('note.changed', { on: 'change' })
@ModelEvent('note.done', { on: 'change', filter: { state__eq: 'DONE' } })
class Note {
  @PrimaryGeneratedColumn() id!: number;
  @Column() title!: string;
  @Column({ default: 'OPEN' }) state!: string;
}

/** Resolves once another PostgreSQL backend waits for a lock (bounded: rejects after `ms`). */
async function someoneWaitsForALock(ds: DataSource, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const rows: { n: string }[] = await ds.query(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (Number(rows[0].n) > 0) return;
    if (Date.now() > until) throw new Error(`no backend waited for a lock within ${ms} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

describe.each(testDatabases)('now_* transitions under concurrent saves ($name)', (db) => {
  let receiver: TestReceiver;
  let t: ModelApp;
  let articles: Repository<Article>;

  const delivered = () => deliveredBefore(t, receiver);
  const pending = () =>
    articles.save(articles.create({ uuid: randomUUID(), title: 'draft', state: 'PENDING' }));
  /** article.published messages per article uuid. */
  const publishedPerArticle = (got: any[]) => {
    const counts: Record<string, number> = {};
    for (const m of got.filter((x) => x.event === 'article.published')) {
      const uuid = m.ref.split('/').pop();
      counts[uuid] = (counts[uuid] ?? 0) + 1;
    }
    return counts;
  };

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    await createSchema(db, SCHEMA);
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(async () => {
    t = await bootModelApp(db, SCHEMA, [...blogEntities, Note], {
      subscribers: {
        'article.published': `${receiver.url}/p`,
        'sentinel.#': `${receiver.url}/s`,
      },
    });
    articles = t.dataSource.getRepository(Article);
    receiver.reset();
  });
  afterEach(async () => {
    await t?.close();
  });

  it('two concurrent save()s publishing the same row: article.published once per row, every round', async () => {
    const uuids: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { id, uuid } = await pending();
      uuids.push(uuid);
      // two requests, each with its own copy of the row, both publishing it
      const [a, b] = await Promise.all([articles.findOneByOrFail({ id }), articles.findOneByOrFail({ id })]);
      a.state = b.state = 'PUBLISHED';
      a.title = 'by a';
      b.title = 'by b';
      await Promise.all([articles.save(a), articles.save(b)]);
      expect((await articles.findOneByOrFail({ id })).state).toBe('PUBLISHED');
    }
    expect(publishedPerArticle(await delivered())).toEqual(Object.fromEntries(uuids.map((u) => [u, 1])));
  });

  it('a real transition after a concurrent round is reported again (unpublish, then two publishers)', async () => {
    const { id, uuid } = await pending();
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b] = await Promise.all([articles.findOneByOrFail({ id }), articles.findOneByOrFail({ id })]);
      a.state = b.state = 'PUBLISHED';
      a.title = `a${round}`;
      b.title = `b${round}`;
      await Promise.all([articles.save(a), articles.save(b)]);
      await articles.update(id, { state: 'PENDING' }); // update() fires nothing: the next round is a transition
    }
    expect(publishedPerArticle(await delivered())).toEqual({ [uuid]: ROUNDS });
  });

  if (db.name === 'postgres') {
    it('a transaction that publishes while another one holds the row published but uncommitted: reported once', async () => {
      const uuids: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const { id, uuid } = await pending();
        uuids.push(uuid);
        let commitFirst!: () => void;
        const gate = new Promise<void>((r) => (commitFirst = r));
        let firstSaved!: () => void;
        const saved = new Promise<void>((r) => (firstSaved = r));
        const first = t.dataSource.transaction(async (m) => {
          const a = await m.findOneByOrFail(Article, { id });
          a.state = 'PUBLISHED';
          await m.save(a);
          firstSaved();
          await gate; // the row stays updated but uncommitted until the second one waits for it
        });
        await saved;
        const second = t.dataSource.transaction(async (m) => {
          // read while the first is uncommitted: PENDING, as TypeORM's databaseEntity will be
          const b = await m.findOneByOrFail(Article, { id });
          expect(b.state).toBe('PENDING');
          b.state = 'PUBLISHED';
          b.title = 'second';
          await m.save(b);
        });
        await someoneWaitsForALock(t.dataSource);
        commitFirst();
        await Promise.all([first, second]);
      }
      expect(publishedPerArticle(await delivered())).toEqual(Object.fromEntries(uuids.map((u) => [u, 1])));
    });
  }

  it('costs one SELECT per save of a model with a now_* filter (locked on PostgreSQL), none for other models', async () => {
    const notes = t.dataSource.getRepository(Note);
    const note = await notes.save({ title: 'n' });
    const article = { ...(await pending()), author: null };
    await articles.save(article); // the same UPDATE shape in both runs below
    await t.settle();
    const subscribers = t.dataSource.subscribers;
    const ours = subscribers.findIndex((s) => s instanceof ModelEventSubscriber);
    /** Statements run by `fn`, with Thorn's subscriber plugged in and unplugged. */
    const statements = async (fn: (i: number) => Promise<unknown>) => {
      const run = async (i: number) => {
        const before = t.queries.queries.length;
        await fn(i);
        return t.queries.queries
          .slice(before)
          .filter((q) => !q.includes('thorn_subscriber'))
          .map((q) => q.replace(/\s+/g, ' ').trim());
      };
      const withThorn = await run(0);
      const [unplugged] = subscribers.splice(ours, 1);
      try {
        return { withThorn, withoutThorn: await run(1) };
      } finally {
        subscribers.splice(ours, 0, unplugged);
      }
    };

    const forNote = await statements((i) => notes.save({ ...note, title: `note ${i}` }));
    expect(forNote.withThorn).toEqual(forNote.withoutThorn);
    expect(forNote.withThorn.some((q) => /^UPDATE/i.test(q))).toBe(true);

    // author: null, so no sender needs loading: the only SELECTs are TypeORM's and the previous row's
    const forArticle = await statements((i) => articles.save({ ...article, title: `article ${i}` }));
    // (TypeORM orders the UPDATE's columns differently from run to run: compare the SELECTs)
    const selects = (qs: string[]) => qs.filter((q) => /^SELECT/i.test(q));
    const extra = selects(forArticle.withThorn).filter((q) => !forArticle.withoutThorn.includes(q));
    expect(extra).toHaveLength(1);
    expect(extra[0]).toMatch(/^SELECT .* FROM ("\w+"\.)?"article" /);
    if (db.name === 'postgres') expect(extra[0]).toMatch(/ FOR UPDATE$/);
    expect(forArticle.withThorn.length).toBe(forArticle.withoutThorn.length + 1);
    await t.settle();
  });
});
