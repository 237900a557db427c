import type { Logger } from '@nestjs/common';
import type { EntityManager, EntityMetadata, ObjectLiteral } from 'typeorm';
import type { ModelEventDefinition } from '../events/model-event.js';
import type { JunctionChange } from './junction-change.batcher.js';
import type { ModelEventBuilder, PreparedModelEvent } from './model-event.builder.js';
import type { JunctionSide, ModelEventIndex } from './model-events.index.js';
import { logError } from '../telemetry/log-fields.js';

type ColumnMetadata = EntityMetadata['columns'][number];

/** The related ids one owner gained or lost through one relation in one operation. */
interface OwnerChange {
  side: JunctionSide;
  kind: 'add' | 'remove';
  owner: unknown;
  ids: unknown[];
}

/**
 * The `m2m_*` events of one operation's junction rows: one event per owner, relation and kind, in the order the rows
 * were reported. A group that fails to build is logged and skipped, unless one of its events propagates errors.
 */
export async function m2mEvents(
  changes: readonly JunctionChange[],
  index: ModelEventIndex,
  builder: ModelEventBuilder,
  logger: Logger,
  manager: EntityManager,
): Promise<PreparedModelEvent[]> {
  const groups = new Map<string, OwnerChange>();
  const sideIds = new Map<JunctionSide, number>();
  for (const { junction, kind, row } of changes) {
    for (const side of index.junctions.get(junction) ?? []) {
      if (kind === 'add' ? !side.add.length : !side.remove.length && !side.clear.length) continue;
      const owner = columnsValue(side.ownerColumns, row);
      const related = columnsValue(side.relatedColumns, row);
      if (owner === undefined || related === undefined) continue;
      if (!sideIds.has(side)) sideIds.set(side, sideIds.size);
      const key = `${sideIds.get(side)}|${kind}|${JSON.stringify(owner)}`;
      const group = groups.get(key) ?? { side, kind, owner, ids: [] };
      group.ids.push(related);
      groups.set(key, group);
    }
  }
  const out: PreparedModelEvent[] = [];
  for (const group of groups.values()) {
    try {
      out.push(...(await ownerEvents(group, builder, manager)));
    } catch (err) {
      const { side } = group;
      if ([...side.add, ...side.remove, ...side.clear].some((d) => builder.propagates(d))) throw err;
      logger.error(
        `Many-to-many events of ${side.owner.metadata.name}.${side.relation.propertyName} were not sent: ${logError(err)}`,
      );
    }
  }
  return out;
}

/** The events of one owner's added or removed related rows; loads the owner (with the relations its events read). */
async function ownerEvents(
  { side, kind, owner, ids }: OwnerChange,
  builder: ModelEventBuilder,
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
    builder.buildAll(
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
