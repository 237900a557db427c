import { Logger } from '@nestjs/common';
import type {
  EntityManager,
  EntityMetadata,
  EntitySubscriberInterface,
  InsertEvent,
  ObjectLiteral,
  QueryRunner,
  RemoveEvent,
  SoftRemoveEvent,
  TransactionCommitEvent,
  TransactionRollbackEvent,
  TransactionStartEvent,
  UpdateEvent,
} from 'typeorm';
import type { ModelEventDefinition } from '../events/model-event.js';
import { pathsOf, type ModelEventEmitter, type PreparedModelEvent } from './model-event.emitter.js';
import type { IndexedModel, JunctionSide, ModelEventIndex } from './model-events.index.js';
import { PreviousRows } from './previous-rows.js';
import { depthOf } from './transaction-frames.js';
import type { BeforeQueryEvent } from './typeorm-types.js';

type ColumnMetadata = EntityMetadata['columns'][number];
type JunctionChange = { kind: 'add' | 'remove'; row: ObjectLiteral };

/** Junction rows changed by one TypeORM operation (one broadcast of "after" events) on one QueryRunner. */
interface JunctionBatch {
  changes: { junction: EntityMetadata; change: JunctionChange }[];
  done: Promise<void>;
}

/**
 * The one global TypeORM subscriber (no `listenTo`: it must also see junction tables) that turns entity changes into
 * model events:
 * - `afterInsert` → `create`, `afterUpdate` (entity `save()` only: it carries `databaseEntity`) → `change`,
 *   `afterRemove` / `afterSoftRemove` → `delete`;
 * - inserts/removes of junction-table rows → `m2m_add` / `m2m_remove` (+ `m2m_clear` when the relation became empty).
 *   `save()` reports the junction row ids; QueryBuilder `relation().add()` reports the inserted values; QueryBuilder
 *   `relation().remove()` reports nothing, so the rows are read just before its DELETE runs (same WHERE clause);
 * - transaction hooks → the emitter's per-QueryRunner frames.
 */
export class ModelEventSubscriber implements EntitySubscriberInterface {
  private readonly logger = new Logger('Thorn');
  private readonly batches = new WeakMap<QueryRunner, JunctionBatch>();
  /** Junction deletes announced without row ids (QueryBuilder), waiting for their DELETE statement. */
  private readonly armedDeletes = new WeakMap<QueryRunner, EntityMetadata>();
  private readonly deletedRows = new WeakMap<QueryRunner, ObjectLiteral[]>();
  /** Relations loaded before a remove, by entity (read in afterRemove). */
  private readonly preloaded = new WeakMap<ObjectLiteral, ObjectLiteral>();
  /** Locked reads of the row before an update, for models with `now_*` filters. */
  private readonly previousRows = new PreviousRows();

  constructor(
    readonly index: ModelEventIndex,
    readonly emitter: ModelEventEmitter,
  ) {}

  afterInsert(event: InsertEvent<ObjectLiteral>): Promise<void> | void {
    const { metadata } = event;
    if (metadata.isJunction) {
      // save(): the junction row's ids; QueryBuilder relation().add(): the inserted values, by column name
      const row = event.entityId ?? event.entity;
      return row
        ? this.junctionChanged(event.queryRunner, event.manager, metadata, { kind: 'add', row })
        : undefined;
    }
    const model = this.index.models.get(metadata.target);
    if (!model?.create.length || !event.entity) return;
    const instance = asInstance(metadata, event.entity);
    return this.fire(model, model.create, instance, undefined, event.queryRunner, event.manager);
  }

  /** Models with `now_*` filters: reads the row as it is now, locked, before the UPDATE (see PreviousRows). */
  beforeUpdate(event: UpdateEvent<ObjectLiteral>): Promise<void> | void {
    if (!this.index.models.get(event.metadata.target)?.lockPrevious) return;
    return this.previousRows.lock(event);
  }

  afterUpdate(event: UpdateEvent<ObjectLiteral>): Promise<void> | void {
    const model = this.index.models.get(event.metadata.target);
    // without databaseEntity the update came from update()/QueryBuilder: no entity, nothing to report
    if (!model?.change.length || !event.entity || !event.databaseEntity) return;
    const previous = model.lockPrevious
      ? this.previousRows.previous(event.entity, event.databaseEntity)
      : event.databaseEntity;
    const instance = asInstance(event.metadata, event.entity, previous);
    return this.fire(model, model.change, instance, previous, event.queryRunner, event.manager);
  }

  afterRemove(event: RemoveEvent<ObjectLiteral>): Promise<void> | void {
    const { metadata } = event;
    if (metadata.isJunction) {
      if (event.entityId !== undefined) {
        return this.junctionChanged(event.queryRunner, event.manager, metadata, {
          kind: 'remove',
          row: event.entityId,
        });
      }
      const rows = this.deletedRows.get(event.queryRunner);
      this.deletedRows.delete(event.queryRunner);
      this.armedDeletes.delete(event.queryRunner);
      let done: Promise<void> | undefined;
      for (const row of rows ?? []) {
        done = this.junctionChanged(event.queryRunner, event.manager, metadata, { kind: 'remove', row });
      }
      return done;
    }
    return this.removed(event, false);
  }

  afterSoftRemove(event: SoftRemoveEvent<ObjectLiteral>): Promise<void> | void {
    return this.removed(event, true);
  }

  /**
   * Before a row is removed: load the relations its delete events read but the entity lacks (after the DELETE they are
   * gone; TypeORM's databaseEntity has many-to-many ids only). QueryBuilder junction deletes (relation().remove())
   * carry no ids: note them, and read the rows just before the DELETE.
   */
  beforeRemove(event: RemoveEvent<ObjectLiteral>): Promise<void> | void {
    const { metadata } = event;
    if (!metadata.isJunction) {
      const model = this.index.models.get(metadata.target);
      const entity = event.entity;
      if (!model?.delete.length || !entity) return;
      const paths = model.delete.flatMap((d) => pathsOf(d, model.model));
      return this.emitter.withPaths(entity, paths, metadata, event.manager).then(
        (view) => {
          if (view !== entity) this.preloaded.set(entity, view);
        },
        (err) =>
          this.logger.error(`Could not load what the delete events of ${metadata.name} read: ${err.message}`),
      );
    }
    if (event.entityId !== undefined || event.entity || event.databaseEntity) return;
    const sides = this.index.junctions.get(metadata);
    if (sides?.some((s) => s.remove.length || s.clear.length))
      this.armedDeletes.set(event.queryRunner, metadata);
  }

  beforeQuery(event: BeforeQueryEvent): Promise<void> | void {
    const junction = this.armedDeletes.get(event.queryRunner);
    if (!junction || !/^\s*DELETE\s/i.test(event.query)) return;
    this.armedDeletes.delete(event.queryRunner);
    const select = selectForDelete(event.query, junction.tableName);
    if (!select) {
      this.logger.warn(
        `Junction rows removed from "${junction.tableName}" by a statement Thorn cannot read; no m2m events for it`,
      );
      return;
    }
    const driver = event.queryRunner.connection.driver;
    return event.queryRunner.query(select, event.parameters as unknown[]).then(
      (raw: ObjectLiteral[]) => {
        const rows = (Array.isArray(raw) ? raw : []).map((r) => {
          const row: ObjectLiteral = {};
          for (const column of junction.columns) {
            if (column.databaseName in r) {
              row[column.databaseName] = driver.prepareHydratedValue(r[column.databaseName], column);
            }
          }
          return row;
        });
        this.deletedRows.set(event.queryRunner, rows);
      },
      (err: Error) =>
        this.logger.error(
          `Could not read the junction rows about to be removed (no m2m events): ${err.message}`,
        ),
    );
  }

  afterTransactionStart(event: TransactionStartEvent): void {
    this.emitter.frames.started(event.queryRunner);
  }

  afterTransactionCommit(event: TransactionCommitEvent): Promise<void> | void {
    if (depthOf(event.queryRunner) === 0) this.previousRows.ended(event.queryRunner);
    return this.emitter.committed(event.queryRunner);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (depthOf(event.queryRunner) === 0) this.previousRows.ended(event.queryRunner);
    this.emitter.frames.rolledBack(event.queryRunner);
  }

  private removed(event: RemoveEvent<ObjectLiteral> | SoftRemoveEvent<ObjectLiteral>, soft: boolean) {
    const { metadata } = event;
    const model = this.index.models.get(metadata.target);
    // without an entity the removal came from delete()/softDelete()/QueryBuilder: nothing to report
    if (!model?.delete.length || (!event.entity && !event.databaseEntity)) return;
    const defs = soft ? model.delete.filter((d) => d.softRemove) : model.delete;
    if (!defs.length) return;
    const instance = removedInstance(metadata, event.entity, event.databaseEntity, event.entityId);
    const view = event.entity && this.preloaded.get(event.entity);
    if (view) {
      this.preloaded.delete(event.entity!);
      // the view's own properties are the relations loaded before the DELETE
      Object.assign(instance, Object.fromEntries(Object.entries(view)));
    }
    return this.fire(model, defs, instance, undefined, event.queryRunner, event.manager);
  }

  private fire(
    model: IndexedModel,
    defs: readonly ModelEventDefinition[],
    instance: ObjectLiteral,
    previous: ObjectLiteral | undefined,
    qr: QueryRunner,
    manager: EntityManager,
  ): Promise<void> | undefined {
    const matching = defs.filter((d) => !d.filter || d.filter.matches(instance, previous));
    if (!matching.length) return undefined;
    return this.emitter.raise(qr, () =>
      this.emitter.prepareAll(matching, instance, { metadata: model.metadata, model: model.model, manager }),
    );
  }

  /**
   * Collects the junction rows of one operation: TypeORM calls every "after" hook of an operation synchronously, so the
   * rows are grouped in a microtask and raised as one event per owner, relation and kind.
   */
  private junctionChanged(
    qr: QueryRunner,
    manager: EntityManager,
    junction: EntityMetadata,
    change: JunctionChange,
  ): Promise<void> | undefined {
    if (!this.index.junctions.has(junction)) return undefined;
    let batch = this.batches.get(qr);
    if (!batch) {
      const created: JunctionBatch = { changes: [], done: Promise.resolve() };
      created.done = this.emitter.raise(qr, () =>
        Promise.resolve().then(() => {
          this.batches.delete(qr);
          return this.junctionEvents(created, manager);
        }),
      );
      this.batches.set(qr, created);
      batch = created;
    }
    batch.changes.push({ junction, change });
    return batch.done;
  }

  private async junctionEvents(batch: JunctionBatch, manager: EntityManager): Promise<PreparedModelEvent[]> {
    // one group per (side, owner, kind), in the order the rows were reported
    type Group = { side: JunctionSide; kind: 'add' | 'remove'; owner: unknown; ids: unknown[] };
    const groups = new Map<string, Group>();
    const sideIds = new Map<JunctionSide, number>();
    for (const { junction, change } of batch.changes) {
      for (const side of this.index.junctions.get(junction) ?? []) {
        if (change.kind === 'add' ? !side.add.length : !side.remove.length && !side.clear.length) continue;
        const owner = columnsValue(side.ownerColumns, change.row);
        const related = columnsValue(side.relatedColumns, change.row);
        if (owner === undefined || related === undefined) continue;
        if (!sideIds.has(side)) sideIds.set(side, sideIds.size);
        const key = `${sideIds.get(side)}|${change.kind}|${JSON.stringify(owner)}`;
        const group = groups.get(key) ?? { side, kind: change.kind, owner, ids: [] };
        group.ids.push(related);
        groups.set(key, group);
      }
    }
    const out: PreparedModelEvent[] = [];
    for (const group of groups.values()) {
      try {
        out.push(...(await this.groupEvents(group, manager)));
      } catch (err) {
        const { side } = group;
        if ([...side.add, ...side.remove, ...side.clear].some((d) => this.emitter.propagates(d))) throw err;
        this.logger.error(
          `Many-to-many events of ${side.owner.metadata.name}.${side.relation.propertyName} were not sent: ${(err as Error).message}`,
        );
      }
    }
    return out;
  }

  /** The events of one owner's added or removed related rows; loads the owner (with the relations its events read). */
  private async groupEvents(
    {
      side,
      kind,
      owner,
      ids,
    }: { side: JunctionSide; kind: 'add' | 'remove'; owner: unknown; ids: unknown[] },
    manager: EntityManager,
  ): Promise<PreparedModelEvent[]> {
    const { metadata, model } = side.owner;
    const instance = await manager.findOne(metadata.target, {
      where: ownerWhere(side.ownerColumns, owner),
      relations: side.owner.loadRelations,
    });
    // the owner itself is gone (removed by the same operation): its delete event covers it
    if (!instance) return [];
    const ctx = { metadata, model, manager, relation: side.relation.propertyName, ids };
    const fire = (defs: readonly ModelEventDefinition[]) =>
      this.emitter.prepareAll(
        defs.filter((d) => !d.filter || d.filter.matches(instance, undefined)),
        instance,
        ctx,
      );
    if (kind === 'add') return fire(side.add);
    const out = await fire(side.remove);
    if (side.clear.length) {
      const where: ObjectLiteral = ownerRow(side.ownerColumns, owner);
      if (!(await manager.existsBy(side.junction.target, where))) out.push(...(await fire(side.clear)));
    }
    return out;
  }
}

/** A class instance for a hook's entity: TypeORM passes plain objects for QueryBuilder inserts and partial saves. */
function asInstance(
  metadata: EntityMetadata,
  entity: ObjectLiteral,
  previous?: ObjectLiteral,
): ObjectLiteral {
  const target = metadata.target;
  if (typeof target === 'function' && entity instanceof target) return entity;
  return Object.assign(metadata.create(), previous ?? {}, entity);
}

/** The removed instance with its primary key back (TypeORM clears it after remove), as a copy. */
function removedInstance(
  metadata: EntityMetadata,
  entity: ObjectLiteral | undefined,
  databaseEntity: ObjectLiteral | undefined,
  entityId: unknown,
): ObjectLiteral {
  const target = metadata.target;
  const base =
    entity && typeof target === 'function' && entity instanceof target
      ? Object.create(Object.getPrototypeOf(entity))
      : metadata.create();
  const instance = Object.assign(base, entity ?? {});
  for (const [k, v] of Object.entries(databaseEntity ?? {})) if (instance[k] === undefined) instance[k] = v;
  for (const column of metadata.primaryColumns) {
    if (column.getEntityValue(instance) !== undefined) continue;
    const value = databaseEntity
      ? column.getEntityValue(databaseEntity)
      : metadata.primaryColumns.length === 1
        ? entityId
        : column.getEntityValue(entityId as ObjectLiteral);
    if (value !== undefined) column.setEntityValue(instance, value);
  }
  return instance;
}

/** Value of junction columns in a row (by property or database name): one column → the value, several → an object. */
function columnsValue(columns: ColumnMetadata[], row: ObjectLiteral): unknown {
  const values = columns.map((c) => row[c.propertyName] ?? row[c.databaseName]);
  if (values.some((v) => v === undefined || v === null)) return undefined;
  if (columns.length === 1) return values[0];
  return Object.fromEntries(
    columns.map((c, i) => [c.referencedColumn?.propertyName ?? c.propertyName, values[i]]),
  );
}

/** `where` of the owner row from the owner-side junction columns' value. */
function ownerWhere(columns: ColumnMetadata[], owner: unknown): ObjectLiteral {
  const where: ObjectLiteral = {};
  columns.forEach((c) => {
    const value =
      columns.length === 1
        ? owner
        : (owner as ObjectLiteral)[c.referencedColumn?.propertyName ?? c.propertyName];
    Object.assign(where, c.referencedColumn!.createValueMap(value));
  });
  return where;
}

/** The owner-side junction columns' value as a junction row (by property name). */
function ownerRow(columns: ColumnMetadata[], owner: unknown): ObjectLiteral {
  return Object.fromEntries(
    columns.map((c) => [
      c.propertyName,
      columns.length === 1
        ? owner
        : (owner as ObjectLiteral)[c.referencedColumn?.propertyName ?? c.propertyName],
    ]),
  );
}

/**
 * `SELECT *` over exactly the rows a junction `DELETE FROM <table> [WHERE ...]` is about to delete (same clause, same
 * parameters), or undefined for any other statement.
 */
export function selectForDelete(sql: string, tableName: string): string | undefined {
  const m =
    /^\s*DELETE\s+FROM\s+((?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[\w$]+)(?:\.(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[\w$]+))*)(\s+WHERE\s+[\s\S]*)?$/i.exec(
      sql,
    );
  if (!m || /\bRETURNING\b|\bOUTPUT\b/i.test(sql)) return undefined;
  const table = m[1]
    .split('.')
    .pop()!
    .replace(/^["`[]|["`\]]$/g, '');
  if (table !== tableName) return undefined;
  return `SELECT * FROM ${m[1]}${m[2] ?? ''}`;
}
