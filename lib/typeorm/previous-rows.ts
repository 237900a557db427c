import type { EntityMetadata, ObjectLiteral, QueryRunner, UpdateEvent } from 'typeorm';
import { PreviousRowQuery } from './previous-row.query.js';
import { depthOf } from './transaction-frames.js';

/** Drivers whose DataSource has one connection, shared by every QueryRunner: concurrent saves interleave on it. */
const SINGLE_CONNECTION = new Set([
  'sqlite',
  'better-sqlite3',
  'sqljs',
  'capacitor',
  'cordova',
  'expo',
  'react-native',
  'nativescript',
]);

interface Pending {
  /** The row as read under the lock; set once the read (awaited by `beforeUpdate`) is done. */
  row?: ObjectLiteral | null;
  done?: Promise<void>;
  release: () => void;
}

/**
 * The hand-off from `beforeUpdate` to `afterUpdate` of the rows before their update, for `now_*` filters. TypeORM's
 * `databaseEntity` is read before the save's transaction and without a lock, so two concurrent saves of one row could
 * both see the old version and both report the transition. Instead, the row is read again in `beforeUpdate` (inside the save's transaction, before its UPDATE), with
 * a lock, so a concurrent save of the same row waits and then reads this one's result:
 * - drivers with row locks (PostgreSQL, MySQL, ...): `SELECT … FOR UPDATE`, held by the database until commit/rollback;
 * - SQLite: every save runs on the DataSource's one connection (concurrent saves share one transaction), so the lock is
 *   in-process, per row, held from the read until this save's UPDATE has run (or its transaction ended).
 * Only models with a `now_*` filter on a `change` event get here; a save outside a transaction keeps `databaseEntity`.
 */
export class PreviousRows {
  private readonly pending = new WeakMap<ObjectLiteral, Pending>();
  /** Per row key: the lock queue's tail (resolves when the last holder releases). */
  private readonly tails = new Map<string, Promise<void>>();
  /** In-process locks per QueryRunner, released when its outermost transaction ends. */
  private readonly held = new WeakMap<QueryRunner, Set<() => void>>();
  /** By `databaseEntity`: TypeORM gives every subject of one save that updates the same row the same object. */
  private readonly sameSave = new WeakMap<ObjectLiteral, Pending>();
  /** The prepared read per model (null: read through the QueryBuilder). */
  private readonly queries = new WeakMap<EntityMetadata, PreviousRowQuery | null>();

  /** `beforeUpdate`: starts the locked read of the row `event` is about to update (awaited by the hook). */
  lock(event: UpdateEvent<ObjectLiteral>): Promise<void> | undefined {
    const { queryRunner: qr, metadata, entity, databaseEntity } = event;
    // without databaseEntity no change event fires (update()/QueryBuilder); outside a transaction a lock can't last
    if (!entity || !databaseEntity || !qr.isTransactionActive) return undefined;
    const id = metadata.getEntityIdMap(databaseEntity);
    if (!id) return undefined;
    // the same row twice in one save: share the first subject's read (waiting for its lock would never end)
    const same = this.sameSave.get(databaseEntity);
    if (same) {
      this.pending.set(entity, same);
      return same.done;
    }
    if (!SINGLE_CONNECTION.has(qr.connection.options.type)) {
      const entry: Pending = { release: () => undefined };
      entry.done = this.read(qr, metadata, id, true).then((row) => void (entry.row = row));
      this.pending.set(entity, entry);
      this.sameSave.set(databaseEntity, entry);
      return entry.done;
    }
    const key = `${metadata.tablePath}|${JSON.stringify(id)}`;
    // queued synchronously, so the locks of one save are taken together, before those of any later save
    const before = this.tails.get(key) ?? Promise.resolve();
    let free!: () => void;
    const mine = new Promise<void>((resolve) => (free = resolve));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      free();
      this.held.get(qr)?.delete(release);
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
    const runnerLocks = this.held.get(qr) ?? new Set();
    runnerLocks.add(release);
    this.held.set(qr, runnerLocks);
    const entry: Pending = { release };
    entry.done = before
      .then(() => this.read(qr, metadata, id, false))
      .then(
        (row) => void (entry.row = row),
        (err) => {
          release();
          throw err;
        },
      );
    this.pending.set(entity, entry);
    this.sameSave.set(databaseEntity, entry);
    return entry.done;
  }

  /**
   * `afterUpdate`: the row as read under the lock, merged over TypeORM's `databaseEntity` (which keeps what was not
   * re-read, such as to-many relation ids); releases an in-process lock. `databaseEntity` itself when nothing was read.
   */
  previous(entity: ObjectLiteral, databaseEntity: ObjectLiteral): ObjectLiteral {
    const entry = this.pending.get(entity);
    if (!entry) return databaseEntity;
    this.pending.delete(entity);
    entry.release();
    const row = entry.row;
    if (!row) return databaseEntity;
    return Object.assign(Object.create(Object.getPrototypeOf(databaseEntity)), databaseEntity, row);
  }

  /** The row's columns and to-one relation ids, as TypeORM loads `databaseEntity`: one statement. */
  private read(
    qr: QueryRunner,
    metadata: EntityMetadata,
    id: ObjectLiteral,
    forUpdate: boolean,
  ): Promise<ObjectLiteral | null> {
    let query = this.queries.get(metadata);
    if (query === undefined) {
      query = PreviousRowQuery.prepare(metadata, qr) ?? null;
      this.queries.set(metadata, query);
    }
    return query ? query.read(qr, id, forUpdate) : readWithQueryBuilder(qr, metadata, id, forUpdate);
  }

  /**
   * A transaction level of `qr` committed or rolled back: once the outermost one has ended, its in-process locks go
   * (an UPDATE that never ran can't hold one).
   */
  transactionEnded(qr: QueryRunner): void {
    if (depthOf(qr) > 0) return;
    const locks = this.held.get(qr);
    if (!locks) return;
    this.held.delete(qr);
    for (const release of [...locks]) release();
  }
}

/** The row's columns and to-one relation ids (no extra query), for models `PreviousRowQuery` cannot read. */
export function readWithQueryBuilder(
  qr: QueryRunner,
  metadata: EntityMetadata,
  id: ObjectLiteral,
  forUpdate: boolean,
): Promise<ObjectLiteral | null> {
  const qb = qr.manager
    .createQueryBuilder(metadata.target, 'previous', qr)
    .setFindOptions({
      loadEagerRelations: false,
      loadRelationIds: {
        relations: metadata.relations
          .filter((r) => r.isManyToOne || r.isOneToOneOwner)
          .map((r) => r.propertyPath),
        disableMixedMap: true,
      },
      withDeleted: true,
    })
    .whereInIds([id]);
  return (forUpdate ? qb.setLock('pessimistic_write') : qb).getOne();
}
