import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import {
  Column,
  CreateDateColumn,
  Entity,
  JoinColumn,
  ManyToOne,
  OneToOne,
  PrimaryColumn,
  type Relation,
  type ObjectLiteral,
} from 'typeorm';
import { ModelEvent } from '../../lib/index.js';
import { PreviousRowQuery } from '../../lib/typeorm/previous-row.query.js';
import { readWithQueryBuilder } from '../../lib/typeorm/previous-rows.js';
import { testDatabases } from '../fixtures/databases.js';
import { bootModelApp, createSchema, type ModelApp } from '../fixtures/model-app.js';
import { Article, Author, blogEntities, Category } from '../fixtures/model-entities.js';

const SCHEMA = 'thorn_model_previous_row';

/** A composite key, columns of many types and to-one relations on either side of the key. */
@Entity()
@ModelEvent('shelf.opened', { on: 'change', filter: { open__now_eq: true } })
class Shelf {
  @PrimaryColumn({ type: 'varchar', length: 20 }) room!: string;
  @PrimaryColumn({ type: 'int' }) slot!: number;
  @Column({ default: false }) open!: boolean;
  @Column({ type: 'simple-json', nullable: true }) meta!: { a: number[] } | null;
  @Column({ type: 'simple-array', nullable: true }) labels!: string[] | null;
  @Column({ type: 'float', default: 0 }) weight!: number;
  @Column({ type: 'varchar', nullable: true, name: 'shelf_note' }) note!: string | null;
  @CreateDateColumn() createdAt!: Date;
  @ManyToOne(() => Category, { nullable: true }) category?: Relation<Category> | null;
  @OneToOne(() => Author, { nullable: true })
  @JoinColumn({ name: 'keeper_ref' })
  keeper?: Relation<Author> | null;
}

describe.each(testDatabases)('the prepared previous-row read ($name)', (db) => {
  let t: ModelApp;

  beforeAll(async () => {
    await createSchema(db, SCHEMA);
    t = await bootModelApp(db, SCHEMA, [...blogEntities, Shelf]);
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Both reads of one row, inside one transaction (FOR UPDATE where the driver has row locks). */
  const bothReads = (target: new () => object, id: ObjectLiteral) =>
    t.dataSource.transaction(async (m) => {
      const qr = m.queryRunner!;
      const metadata = t.dataSource.getMetadata(target);
      const query = PreviousRowQuery.prepare(metadata, qr);
      expect(query).toBeDefined();
      const forUpdate = db.name === 'postgres';
      return {
        prepared: await query!.read(qr, id, forUpdate),
        builder: await readWithQueryBuilder(qr, metadata, id, forUpdate),
      };
    });

  const same = ({ prepared, builder }: { prepared: ObjectLiteral | null; builder: ObjectLiteral | null }) => {
    expect(builder).not.toBeNull();
    expect(prepared).toEqual(builder);
    expect(Object.getPrototypeOf(prepared)).toBe(Object.getPrototypeOf(builder));
    expect(Object.keys(prepared!).sort()).toEqual(Object.keys(builder!).sort());
  };

  it('reads an Article as the QueryBuilder does: null and set relations, soft-deleted rows', async () => {
    const category = await t.dataSource.getRepository(Category).save({ name: `c-${randomUUID()}` });
    const articles = t.dataSource.getRepository(Article);
    const bare = await articles.save(articles.create({ uuid: randomUUID(), title: 'bare' }));
    const linked = await articles.save(articles.create({ uuid: randomUUID(), title: 'linked', category }));
    same(await bothReads(Article, { id: bare.id }));
    same(await bothReads(Article, { id: linked.id }));
    await articles.softRemove(linked);
    same(await bothReads(Article, { id: linked.id }));
  });

  it('reads a composite-key row with json, array, float, date, renamed and to-one columns the same way', async () => {
    const category = await t.dataSource.getRepository(Category).save({ name: `c-${randomUUID()}` });
    const keeper = await t.dataSource.getRepository(Author).save({ name: 'keeper' });
    const shelves = t.dataSource.getRepository(Shelf);
    await shelves.save(
      shelves.create({
        room: 'a',
        slot: 1,
        meta: { a: [1, 2] },
        labels: ['x', 'y'],
        weight: 1.5,
        note: 'n',
        category,
        keeper,
      }),
    );
    await shelves.save(shelves.create({ room: 'a', slot: 2 }));
    same(await bothReads(Shelf, { room: 'a', slot: 1 }));
    same(await bothReads(Shelf, { room: 'a', slot: 2 }));
  });

  it('a missing row is null in both', async () => {
    const { prepared, builder } = await bothReads(Article, { id: 987654 });
    expect(prepared).toBeNull();
    expect(builder).toBeNull();
  });
});
