import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import {
  AddThornSubscriberHealth1764170000000,
  CreateThornLedger1764180000000,
  THORN_LEDGER_ENTITIES,
  CreateThornSubscriber1764150000000,
  CreateThornSubscriberVersion1764160000000,
  Subscriber,
} from '../../lib/index.js';
import { versionInstalled, versionTarget } from '../../lib/subscriptions/subscriber-version.js';
import { testDatabases } from '../fixtures/databases.js';

async function indexNames(ds: DataSource, table: string): Promise<string[]> {
  const qr = ds.createQueryRunner();
  try {
    return (await qr.getTable(table))!.indices.map((i) => i.name!);
  } finally {
    await qr.release();
  }
}

describe.each(testDatabases)('the shipped migrations ($name)', (db) => {
  let ds: DataSource | undefined;
  afterEach(async () => {
    await ds?.destroy();
    ds = undefined;
  });

  it('creates exactly the schema the Subscriber entity expects, and rows work through the entity', async () => {
    const base = db.options([Subscriber]);
    // start from an empty database, then apply only the migration
    const reset = new DataSource({ ...base, synchronize: false, dropSchema: true } as any);
    await reset.initialize();
    await reset.destroy();
    ds = new DataSource({
      ...base,
      synchronize: false,
      dropSchema: false,
      migrations: [
        CreateThornSubscriber1764150000000,
        CreateThornSubscriberVersion1764160000000,
        AddThornSubscriberHealth1764170000000,
      ],
    } as any);
    await ds.initialize();
    const applied = await ds.runMigrations();
    expect(applied.map((m) => m.name)).toEqual([
      'CreateThornSubscriber1764150000000',
      'CreateThornSubscriberVersion1764160000000',
      'AddThornSubscriberHealth1764170000000',
    ]);
    // TypeORM's schema diff between the migrated tables and the entity: nothing left to change (the version table is
    // no entity, and TypeORM leaves tables it does not know alone)
    const pending = await ds.driver.createSchemaBuilder().log();
    expect(pending.upQueries.map((q) => q.query)).toEqual([]);
    // the version row and triggers the subscription cache needs: nothing left for the module to create at start-up
    const target = versionTarget(ds, 'thorn_subscriber')!;
    expect(await versionInstalled(ds, target)).toBe(true);
    const repo = ds.getRepository(Subscriber);
    const row = await repo.save(
      repo.create({ event: 'article.*', url: 'https://hooks.example.com/a', user: 'u1' }),
    );
    expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(row.hmacSecret).toHaveLength(64);
    expect(row.createdAt).toBeInstanceOf(Date);
    // the health columns' defaults: active, no streak
    expect(await repo.findOneBy({ id: row.id })).toMatchObject({
      active: true,
      consecutiveFailures: 0,
      failingSince: null,
      disabledAt: null,
      disabledReason: null,
    });
    // the lookup is an index probe on (event, active)
    const indexes = await indexNames(ds, 'thorn_subscriber');
    expect(indexes).toContain('IDX_thorn_subscriber_event_active');
    expect(indexes).not.toContain('IDX_thorn_subscriber_event');
    const [{ version }] = await ds.query('SELECT "version" FROM "thorn_subscriber_version"');
    await repo.delete({ id: row.id });
    const [{ version: after }] = await ds.query('SELECT "version" FROM "thorn_subscriber_version"');
    expect(Number(after) - Number(version)).toBe(1);

    // each migration's `down`: its table is gone from the schema, and queries on it fail because of exactly that
    const hasTable = async (name: string) => {
      const qr = ds!.createQueryRunner();
      try {
        return await qr.hasTable(name);
      } finally {
        await qr.release();
      }
    };
    // Not `rejects.toThrow()`: TypeORM 0.3's better-sqlite3 runner rejects with better-sqlite3's own SqliteError, no
    // genuine Error (a function whose prototype chain is set to Error's) and, since the native addon keeps the class of
    // the first jest test file that opened a database, not `instanceof` this file's Error in a full run, where jest's
    // toThrow reports "did not throw". The message is there either way, and says why.
    const noSuchTable = (name: string) => ({
      message: expect.stringMatching(new RegExp(`no such table: ${name}|relation "${name}" does not exist`)),
    });
    expect(await hasTable('thorn_subscriber_version')).toBe(true);
    // the health migration's down: its columns and index are gone, the old index and the version triggers are back
    await ds.undoLastMigration();
    const columns = async () => {
      const qr = ds!.createQueryRunner();
      try {
        return (await qr.getTable('thorn_subscriber'))!.columns.map((c) => c.name);
      } finally {
        await qr.release();
      }
    };
    expect(await columns()).not.toContain('active');
    expect(await columns()).not.toContain('previousHmacSecret');
    expect(await indexNames(ds, 'thorn_subscriber')).toContain('IDX_thorn_subscriber_event');
    expect(await versionInstalled(ds, target)).toBe(true);
    await ds.undoLastMigration();
    expect(await versionInstalled(ds, target)).toBe(false);
    expect(await hasTable('thorn_subscriber_version')).toBe(false);
    await expect(ds.query('SELECT 1 FROM "thorn_subscriber_version"')).rejects.toMatchObject(
      noSuchTable('thorn_subscriber_version'),
    );
    expect(await hasTable('thorn_subscriber')).toBe(true);
    await ds.undoLastMigration();
    expect(await hasTable('thorn_subscriber')).toBe(false);
    expect(await ds.showMigrations()).toBe(true); // both recorded as not applied any more
    await expect(repo.count()).rejects.toMatchObject(noSuchTable('thorn_subscriber'));
  });
  it('creates the ledger tables exactly as its entities expect, with the relay and log indexes, and drops them', async () => {
    const base = db.options([...THORN_LEDGER_ENTITIES]);
    const reset = new DataSource({ ...base, synchronize: false, dropSchema: true } as any);
    await reset.initialize();
    await reset.destroy();
    ds = new DataSource({
      ...base,
      synchronize: false,
      dropSchema: false,
      migrations: [CreateThornLedger1764180000000],
    } as any);
    await ds.initialize();
    expect((await ds.runMigrations()).map((m) => m.name)).toEqual(['CreateThornLedger1764180000000']);
    const pending = await ds.driver.createSchemaBuilder().log();
    expect(pending.upQueries.map((q) => q.query)).toEqual([]);
    expect((await indexNames(ds, 'thorn_delivery')).sort()).toEqual([
      'IDX_thorn_delivery_due',
      'IDX_thorn_delivery_event',
      'IDX_thorn_delivery_finished',
      'IDX_thorn_delivery_subscription',
    ]);
    expect((await indexNames(ds, 'thorn_event')).sort()).toEqual([
      'IDX_thorn_event_created',
      'IDX_thorn_event_unfanned',
    ]);
    await ds.undoLastMigration();
    const qr = ds.createQueryRunner();
    try {
      for (const t of ['thorn_event', 'thorn_delivery', 'thorn_attempt'])
        expect([t, await qr.hasTable(t)]).toEqual([t, false]);
    } finally {
      await qr.release();
    }
  });
});
