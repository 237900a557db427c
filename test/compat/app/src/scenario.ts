// What a fresh app does with the installed package: TypeORM + ThornModule.forRoot(), stored subscribers, model events
// (create, many-to-many add and QueryBuilder remove), a rolled-back transaction, a module-scope `Event`; every delivery
// goes to a loopback receiver and its signature is verified. Throws (node:assert) when anything differs.
import 'reflect-metadata';
import { strict as assert } from 'node:assert';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { Column, DataSource, Entity, JoinTable, ManyToMany, PrimaryGeneratedColumn } from 'typeorm';
import {
  Event,
  ModelEvent,
  Subscriber,
  ThornModule,
  WebhookModel,
  blockInternalIps,
  ensureProtocol,
  verify,
} from 'nestjs-thorn';

@Entity()
export class Tag {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  name!: string;
}

@Entity()
@WebhookModel()
@ModelEvent('article.created', { on: 'create' })
@ModelEvent('article.tag_added', { on: 'm2m_add', relation: 'tags' })
@ModelEvent('article.tag_removed', { on: 'm2m_remove', relation: 'tags' })
export class Article {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  title!: string;

  @ManyToMany(() => Tag)
  @JoinTable()
  tags!: Tag[];

  webhookPayload(info?: { ids?: unknown[] }) {
    return { title: this.title, ids: info?.ids ?? null };
  }
}

// created at module scope: binds to the running ThornModule when first sent
const greeted = new Event('greeting.sent');

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Runs the scenario against `db` ('sqlite', or a PostgreSQL URL); resolves to the events received, in order. */
export async function runScenario(db: string): Promise<string[]> {
  const received: Received[] = [];
  let wake = () => {};
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.end('ok');
      wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const waitFor = async (n: number) => {
    const deadline = Date.now() + 15_000;
    while (received.length < n) {
      assert.ok(Date.now() < deadline, `expected ${n} deliveries, got ${received.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 250);
        wake = () => (clearTimeout(t), resolve());
      });
    }
  };

  @Module({
    imports: [
      TypeOrmModule.forRoot({
        ...(db === 'sqlite'
          ? { type: 'better-sqlite3' as const, database: ':memory:' }
          : { type: 'postgres' as const, url: db, dropSchema: true }),
        entities: [Article, Tag, Subscriber],
        synchronize: true,
      }),
      ThornModule.forRoot({
        recipientValidators: [blockInternalIps({ allow: ['127.0.0.0/8'] }), ensureProtocol('http')],
      }),
    ],
  })
  class AppModule {}

  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  try {
    const ds = app.get<DataSource>(getDataSourceToken());
    const subscribers = ds.getRepository(Subscriber);
    const rows = [
      await subscribers.save(subscribers.create({ event: 'article.*', url: `${base}/articles` })),
      await subscribers.save(subscribers.create({ event: 'greeting.*', url: `${base}/greetings` })),
    ];
    const articles = ds.getRepository(Article);
    const tag = await ds.getRepository(Tag).save({ name: 'nest' });

    // rolled back: never delivered
    await assert.rejects(
      ds.transaction(async (em) => {
        await em.getRepository(Article).save({ title: 'Rolled back' });
        throw new Error('roll back');
      }),
      /roll back/,
    );
    const article = await articles.save(articles.create({ title: 'Hello', tags: [] }));
    await waitFor(1);
    await ds.createQueryBuilder().relation(Article, 'tags').of(article).add(tag);
    await waitFor(2);
    // TypeORM runs this as one DELETE on the junction table: seen only through beforeQuery
    await ds.createQueryBuilder().relation(Article, 'tags').of(article).remove(tag);
    await waitFor(3);
    const sent = await greeted.send({ hello: 'world' });
    assert.equal(sent.deliveries.length, 1);
    assert.equal(sent.deliveries[0].ok, true);
    await waitFor(4);

    const events = received.map((r) => String(r.headers['hook-event']));
    assert.deepEqual(events, [
      'article.created',
      'article.tag_added',
      'article.tag_removed',
      'greeting.sent',
    ]);
    const bodies = received.map((r) => JSON.parse(r.body.toString('utf8')));
    assert.deepEqual(bodies[0].data, { title: 'Hello', ids: null });
    assert.deepEqual(bodies[1].data, { title: 'Hello', ids: [tag.id] });
    assert.deepEqual(bodies[2].data, { title: 'Hello', ids: [tag.id] });
    assert.deepEqual(bodies[3], { hello: 'world' });
    for (const r of received) {
      const row = r.path === '/greetings' ? rows[1] : rows[0];
      assert.equal(r.headers['hook-subscription'], row.id);
      assert.ok(verify(String(r.headers['hook-hmac']), row.hmacDigest, row.hmacSecret, r.body), 'signature');
    }
    return events;
  } finally {
    await app.close();
    server.close();
  }
}
