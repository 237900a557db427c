import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Column, Entity, PrimaryGeneratedColumn, type Repository } from 'typeorm';
import {
  Dispatcher,
  getModelEvents,
  ModelEvent,
  PayloadError,
  type EventEnvelope,
  type SendResult,
  type ThornModuleOptions,
} from '../../lib/index.js';
import { testDatabases } from '../fixtures/databases.js';
import {
  bootModelApp,
  createSchema,
  deliveredBefore,
  messages,
  type ModelApp,
} from '../fixtures/model-app.js';
import { Account, Article, Author, blogEntities, User } from '../fixtures/model-entities.js';
import { TestReceiver } from '../fixtures/receiver.js';

const SCHEMA = 'thorn_model_transactions';

/** Events the exploding dispatcher was handed. */
const exploded: string[] = [];

/** A custom dispatcher that cannot dispatch. */
class ExplodingDispatcher extends Dispatcher {
  async dispatch(envelope: EventEnvelope): Promise<SendResult> {
    exploded.push(envelope.name);
    throw new Error(`dispatcher down (${envelope.name})`);
  }
}

@Entity()
@ModelEvent('note.created', { on: 'create', dispatcher: ExplodingDispatcher })
class Note {
  @PrimaryGeneratedColumn() id!: number;
  @Column() text!: string;
}

@Entity()
@ModelEvent('strict.created', { on: 'create', dispatcher: ExplodingDispatcher, propagateErrors: true })
class StrictNote {
  @PrimaryGeneratedColumn() id!: number;
  @Column() text!: string;
}

@Entity()
@ModelEvent('loose.created', { on: 'create' })
class LoosePayload {
  @PrimaryGeneratedColumn() id!: number;
  @Column() text!: string;
  webhookPayload() {
    return { fn: () => this.text }; // not JSON-serialisable
  }
}

@Entity()
@ModelEvent('bad.created', { on: 'create', propagateErrors: true })
class BadPayload {
  @PrimaryGeneratedColumn() id!: number;
  @Column() text!: string;
  webhookPayload() {
    return { fn: () => this.text };
  }
}

@Entity()
@ModelEvent('eager.created', { on: 'create', signalHonorsTransaction: false })
class Eager {
  @PrimaryGeneratedColumn() id!: number;
  @Column() text!: string;
  webhookPayload() {
    return { text: this.text };
  }
}

const entities = [...blogEntities, Note, StrictNote, LoosePayload, BadPayload, Eager];

describe.each(testDatabases)('model events and transactions ($name)', (db) => {
  let receiver: TestReceiver;
  let t: ModelApp;
  let articles: Repository<Article>;
  let author: Author;
  const delivered = () => deliveredBefore(t, receiver);
  const newArticle = (title: string) =>
    articles.create({ uuid: randomUUID(), title, state: 'PENDING', author: { id: author.id } as Author });
  const titles = (got: any[]) => got.map((m) => `${m.event} ${m.data.title ?? m.data.text ?? ''}`.trim());

  async function boot(options: ThornModuleOptions = {}) {
    t = await bootModelApp(db, SCHEMA, entities, { subscribers: { '#': `${receiver.url}/all` }, ...options });
    const account = await t.dataSource.getRepository(Account).save({
      user: await t.dataSource.getRepository(User).save({ username: 'alice' }),
    });
    author = await t.dataSource.getRepository(Author).save({ name: 'Ann', account });
    articles = t.dataSource.getRepository(Article);
    receiver.reset();
  }

  beforeAll(async () => {
    receiver = await new TestReceiver().start();
    await createSchema(db, SCHEMA);
  });
  afterAll(async () => {
    await receiver.stop();
  });
  beforeEach(async () => {
    await boot();
  });
  afterEach(async () => {
    await t?.close();
  });

  it('a rolled-back transaction sends nothing', async () => {
    await expect(
      t.dataSource.transaction(async (em) => {
        const a = await em.save(newArticle('A'));
        a.state = 'PUBLISHED';
        await em.save(a);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await articles.count()).toBe(0);
    expect(await delivered()).toEqual([]);
  });

  it('a committed transaction’s events go out after the commit, in order', async () => {
    await t.dataSource.transaction(async (em) => {
      const a = await em.save(newArticle('A'));
      a.state = 'PUBLISHED';
      await em.save(a);
      await em.save(newArticle('B'));
      // nothing is on its way while the transaction is open
      await t.settle();
      expect(receiver.requests).toHaveLength(0);
    });
    await receiver.waitFor(4);
    expect(titles(messages(receiver))).toEqual([
      'article.created A',
      'article.changed A',
      'article.published A',
      'article.created B',
    ]);
  });

  it('a savepoint rollback drops only its own events; a released savepoint keeps them, in order', async () => {
    await t.dataSource.transaction(async (em) => {
      await em.save(newArticle('A'));
      await em.transaction(async (inner) => {
        await inner.save(newArticle('B'));
        await inner
          .transaction(async (innermost) => {
            await innermost.save(newArticle('C'));
            throw new Error('drop C');
          })
          .catch(() => undefined);
        await inner.save(newArticle('D'));
      });
      await em
        .transaction(async (inner) => {
          await inner.save(newArticle('E'));
          throw new Error('drop E');
        })
        .catch(() => undefined);
      await em.save(newArticle('F'));
      await t.settle();
      expect(receiver.requests).toHaveLength(0);
    });
    expect(titles(await delivered())).toEqual([
      'article.created A',
      'article.created B',
      'article.created D',
      'article.created F',
    ]);
    expect((await articles.find({ order: { id: 'ASC' } })).map((a) => a.title)).toEqual(['A', 'B', 'D', 'F']);
  });

  it('a manual send given the transaction’s manager waits for the commit, and is dropped on rollback', async () => {
    const published = getModelEvents(Article)['article.published'];
    const a = await articles.save(newArticle('A'));
    await receiver.waitFor(1);
    receiver.reset();
    await expect(
      t.dataSource.transaction(async (em) => {
        const held = await published.sendFromInstance(a, { manager: em });
        expect(held).toEqual({ event: 'article.published', deliveries: [], buffered: true });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await t.dataSource.transaction(async (em) => {
      await published.send(a, { manager: em, data: { manual: true } });
      await t.settle();
      expect(receiver.requests).toHaveLength(0);
    });
    expect(await delivered()).toEqual([
      {
        event: 'article.published',
        ref: `/articles/${a.uuid}`,
        sender: expect.any(Number),
        data: { manual: true },
      },
    ]);
  });

  it('signalHonorsTransaction: false sends at once, even from a transaction that rolls back', async () => {
    await expect(
      t.dataSource.transaction(async (em) => {
        await em.save(em.create(Eager, { text: 'now' }));
        await em.save(newArticle('held'));
        await t.settle();
        expect(messages(receiver)).toEqual([
          { event: 'eager.created', ref: null, sender: null, data: { text: 'now' } },
        ]);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(titles(await delivered())).toEqual(['eager.created now']);
  });

  it('the module option signalHonorsTransaction: false sends model events as they happen', async () => {
    await t.close();
    await boot({ signalHonorsTransaction: false });
    await t.dataSource.transaction(async (em) => {
      await em.save(newArticle('A'));
      await t.settle();
      expect(titles(messages(receiver))).toEqual(['article.created A']);
    });
  });

  it('a failing dispatch or an unencodable payload never breaks save()', async () => {
    exploded.length = 0;
    const note = await t.dataSource.getRepository(Note).save({ text: 'x' });
    expect(note.id).toBeDefined();
    const loose = await t.dataSource.getRepository(LoosePayload).save({ text: 'y' });
    expect(await t.dataSource.getRepository(LoosePayload).countBy({ id: loose.id })).toBe(1);
    await t.dataSource.transaction(async (em) => {
      await em.save(em.create(Note, { text: 'in a transaction' }));
    });
    expect(await t.dataSource.getRepository(Note).count()).toBe(2);
    expect(await delivered()).toEqual([]);
    // the dispatcher was really called (and failed) for both notes
    expect(exploded).toEqual(['note.created', 'note.created']);
  });

  it('propagateErrors: a dispatcher error reaches save() after the commit; a payload error fails save() before it', async () => {
    const strict = t.dataSource.getRepository(StrictNote);
    await expect(strict.save({ text: 'a' })).rejects.toThrow('dispatcher down (strict.created)');
    // the dispatch runs after the commit: the row is there
    expect(await strict.count()).toBe(1);

    // dataSource.transaction(): the error comes out of the commit, the data is committed
    await expect(
      t.dataSource.transaction(async (em) => {
        await em.save(em.create(StrictNote, { text: 'b' }));
        await em.save(newArticle('A'));
      }),
    ).rejects.toThrow('dispatcher down (strict.created)');
    expect(await strict.count()).toBe(2);

    // outside any transaction the hook itself awaits the dispatch
    await expect(strict.save({ text: 'c' }, { transaction: false })).rejects.toThrow('dispatcher down');
    expect(await strict.count()).toBe(3);

    // a message that cannot be built fails inside the hook: save() rejects and its transaction rolls back
    const bad = t.dataSource.getRepository(BadPayload);
    const error = await bad.save({ text: 'd' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadError);
    expect((error as Error).message).toMatch(/data\.fn/);
    expect(await bad.count()).toBe(0);

    // the other events of the committed transaction were still delivered
    expect(titles(await delivered())).toEqual(['article.created A']);
  });
});
