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
import { JunctionChangeBatcher, type JunctionChange } from './junction-change.batcher.js';
import { JunctionDeleteCapture } from './junction-delete.capture.js';
import { m2mEvents } from './m2m-events.js';
import type { HookWait, ModelEventEmitter } from './model-event.emitter.js';
import type { IndexedModel, ModelEventIndex } from './model-events.index.js';
import { pathsOf } from './model-relations.loader.js';
import { PreviousRows } from './previous-rows.js';
import { RemovalPreloads } from './removal.preloads.js';
import type { BeforeQueryEvent } from './typeorm-types.js';

/**
 * The one global TypeORM subscriber (no `listenTo`: it must also see junction tables) that turns entity changes into
 * model events, raised through the emitter:
 * - `afterInsert` → `create`, `afterUpdate` (entity `save()` only: it carries `databaseEntity`) → `change`,
 *   `afterRemove` / `afterSoftRemove` → `delete`;
 * - inserts/removes of junction-table rows → `m2m_add` / `m2m_remove` (+ `m2m_clear` when the relation became empty).
 *   `save()` reports the junction row ids; QueryBuilder `relation().add()` reports the inserted values; QueryBuilder
 *   `relation().remove()` reports nothing, so the rows are read just before its DELETE runs (same WHERE clause);
 * - transaction hooks → the emitter's `transactionStarted/Committed/RolledBack()`.
 * What one hook leaves for a later one goes through a named hand-off: `PreviousRows` (beforeUpdate → afterUpdate),
 * `RemovalPreloads` (beforeRemove → afterRemove), `JunctionDeleteCapture` (beforeRemove → beforeQuery → afterRemove)
 * and `JunctionChangeBatcher` (the junction rows of one operation → one build).
 */
export class ModelEventSubscriber implements EntitySubscriberInterface {
  private readonly logger = new Logger('Thorn');
  private readonly previousRows = new PreviousRows();
  private readonly preloads = new RemovalPreloads(this.logger);
  private readonly junctionDeletes = new JunctionDeleteCapture(this.logger);
  private readonly junctionChanges: JunctionChangeBatcher;

  constructor(
    readonly index: ModelEventIndex,
    readonly emitter: ModelEventEmitter,
  ) {
    this.junctionChanges = new JunctionChangeBatcher(emitter, (changes, manager) =>
      m2mEvents(changes, index, emitter.builder, this.logger, manager),
    );
  }

  afterInsert(event: InsertEvent<ObjectLiteral>): HookWait | undefined {
    const { metadata } = event;
    if (metadata.isJunction) {
      // save(): the junction row's ids; QueryBuilder relation().add(): the inserted values, by column name
      const row = event.entityId ?? event.entity;
      return row
        ? this.junctionChanged(event.queryRunner, event.manager, { junction: metadata, kind: 'add', row })
        : undefined;
    }
    const model = this.index.models.get(metadata.target);
    if (!model?.create.length || !event.entity) return undefined;
    const instance = asInstance(metadata, event.entity);
    return this.fire(model, model.create, instance, undefined, event.queryRunner, event.manager);
  }

  /** Models with `now_*` filters: reads the row as it is now, locked, before the UPDATE (see PreviousRows). */
  beforeUpdate(event: UpdateEvent<ObjectLiteral>): Promise<void> | undefined {
    if (!this.index.models.get(event.metadata.target)?.lockPrevious) return undefined;
    return this.previousRows.lock(event);
  }

  afterUpdate(event: UpdateEvent<ObjectLiteral>): HookWait | undefined {
    const model = this.index.models.get(event.metadata.target);
    // without databaseEntity the update came from update()/QueryBuilder: no entity, nothing to report
    if (!model?.change.length || !event.entity || !event.databaseEntity) return undefined;
    const previous = model.lockPrevious
      ? this.previousRows.previous(event.entity, event.databaseEntity)
      : event.databaseEntity;
    const instance = asInstance(event.metadata, event.entity, previous);
    return this.fire(model, model.change, instance, previous, event.queryRunner, event.manager);
  }

  /**
   * Before a row is removed: load the relations its delete events read but the entity lacks. QueryBuilder junction
   * deletes (relation().remove()) carry no ids: arm the capture that reads their rows just before the DELETE.
   */
  beforeRemove(event: RemoveEvent<ObjectLiteral>): Promise<void> | undefined {
    const { metadata } = event;
    if (!metadata.isJunction) {
      const model = this.index.models.get(metadata.target);
      const entity = event.entity;
      if (!model?.delete.length || !entity) return undefined;
      const paths = model.delete.flatMap((d) => pathsOf(d, model.model));
      return this.preloads.load(entity, paths, metadata, event.manager);
    }
    if (event.entityId !== undefined || event.entity || event.databaseEntity) return undefined;
    const sides = this.index.junctions.get(metadata);
    if (sides?.some((s) => s.remove.length || s.clear.length))
      this.junctionDeletes.arm(event.queryRunner, metadata);
    return undefined;
  }

  beforeQuery(event: BeforeQueryEvent): Promise<void> | undefined {
    return this.junctionDeletes.read(event);
  }

  afterRemove(event: RemoveEvent<ObjectLiteral>): HookWait | undefined {
    const { metadata, queryRunner: qr, manager } = event;
    if (!metadata.isJunction) return this.removed(event, false);
    if (event.entityId !== undefined) {
      return this.junctionChanged(qr, manager, { junction: metadata, kind: 'remove', row: event.entityId });
    }
    let done: HookWait | undefined;
    for (const row of this.junctionDeletes.take(qr)) {
      done = this.junctionChanged(qr, manager, { junction: metadata, kind: 'remove', row });
    }
    return done;
  }

  afterSoftRemove(event: SoftRemoveEvent<ObjectLiteral>): HookWait | undefined {
    return this.removed(event, true);
  }

  afterTransactionStart(event: TransactionStartEvent): void {
    this.emitter.transactionStarted(event.queryRunner);
  }

  afterTransactionCommit(event: TransactionCommitEvent): HookWait | undefined {
    this.previousRows.transactionEnded(event.queryRunner);
    return this.emitter.transactionCommitted(event.queryRunner);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    this.previousRows.transactionEnded(event.queryRunner);
    this.emitter.transactionRolledBack(event.queryRunner);
  }

  private removed(
    event: RemoveEvent<ObjectLiteral> | SoftRemoveEvent<ObjectLiteral>,
    soft: boolean,
  ): HookWait | undefined {
    const { metadata } = event;
    const model = this.index.models.get(metadata.target);
    // without an entity the removal came from delete()/softDelete()/QueryBuilder: nothing to report
    if (!model?.delete.length || (!event.entity && !event.databaseEntity)) return undefined;
    const defs = soft ? model.delete.filter((d) => d.softRemove) : model.delete;
    if (!defs.length) return undefined;
    const instance = removedInstance(metadata, event.entity, event.databaseEntity, event.entityId);
    const loaded = this.preloads.take(event.entity);
    if (loaded) Object.assign(instance, loaded);
    return this.fire(model, defs, instance, undefined, event.queryRunner, event.manager);
  }

  /** Raises the events of `defs` whose filter `instance` (and `previous`) passes. */
  private fire(
    model: IndexedModel,
    defs: readonly ModelEventDefinition[],
    instance: ObjectLiteral,
    previous: ObjectLiteral | undefined,
    qr: QueryRunner,
    manager: EntityManager,
  ): HookWait | undefined {
    const matching = defs.filter((d) => !d.filter || d.filter.matches(instance, previous));
    if (!matching.length) return undefined;
    return this.emitter.raise(qr, () =>
      this.emitter.builder.buildAll(matching, instance, {
        metadata: model.metadata,
        model: model.model,
        manager,
      }),
    );
  }

  /** A junction row of a table some model declares `m2m_*` events for: into the operation's batch. */
  private junctionChanged(
    qr: QueryRunner,
    manager: EntityManager,
    change: JunctionChange,
  ): HookWait | undefined {
    if (!this.index.junctions.has(change.junction)) return undefined;
    return this.junctionChanges.add(qr, manager, change);
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
