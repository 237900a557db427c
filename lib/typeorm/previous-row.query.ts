import type { EntityMetadata, ObjectLiteral, QueryRunner } from 'typeorm';
import type { RelationMetadata } from './typeorm-types.js';

type ColumnMetadata = EntityMetadata['columns'][number];

/** Bind-parameter placeholders of the drivers the prepared read is written (and tested) for. */
const PLACEHOLDER: Record<string, (i: number) => string> = {
  postgres: (i) => `$${i + 1}`,
  sqlite: () => '?',
  'better-sqlite3': () => '?',
};

/**
 * The SELECT that reads one model's row before its update, built once per model: TypeORM's QueryBuilder spent more
 * time building that statement on every save than the database spent running it. Identifiers are quoted by the
 * driver, the primary key comes from the metadata, and the raw row is hydrated as `getOne()` with
 * `loadRelationIds: { disableMixedMap: true }` does it: columns through the driver's `prepareHydratedValue`, to-one
 * relations as id maps. Models it cannot express simply (other drivers, single-table inheritance, keys that are
 * relations or embedded) return undefined from `prepare()` and are read through the QueryBuilder instead.
 */
export class PreviousRowQuery {
  private constructor(
    private readonly metadata: EntityMetadata,
    private readonly sql: string,
    private readonly sqlForUpdate: string,
    private readonly columns: ColumnMetadata[],
    private readonly relations: RelationMetadata[],
  ) {}

  /** The read of `metadata`'s rows on `qr`'s driver, or undefined when the QueryBuilder must do it. */
  static prepare(metadata: EntityMetadata, qr: QueryRunner): PreviousRowQuery | undefined {
    const driver = qr.connection.driver;
    const placeholder = PLACEHOLDER[qr.connection.options.type];
    const keys = metadata.primaryColumns;
    const simpleKeys = keys.length > 0 && keys.every((c) => !c.relationMetadata && !c.embeddedMetadata);
    if (!placeholder || !simpleKeys || metadata.discriminatorColumn || metadata.childEntityMetadatas.length) {
      return undefined;
    }
    // what getOne() hydrates: the entity's own columns; to-one relation ids come from their join columns
    const columns = metadata.columns.filter((c) => !c.isVirtual);
    const relations = metadata.relations.filter((r) => r.isManyToOne || r.isOneToOneOwner);
    const names = new Set([
      ...keys.map((c) => c.databaseName),
      ...columns.map((c) => c.databaseName),
      ...relations.flatMap((r) => r.joinColumns.map((c) => c.databaseName)),
    ]);
    const table = metadata.tablePath
      .split('.')
      .map((part) => driver.escape(part))
      .join('.');
    const where = keys.map((c, i) => `${driver.escape(c.databaseName)} = ${placeholder(i)}`).join(' AND ');
    const sql = `SELECT ${[...names].map((n) => driver.escape(n)).join(', ')} FROM ${table} WHERE ${where}`;
    return new PreviousRowQuery(metadata, sql, `${sql} FOR UPDATE`, columns, relations);
  }

  /** The row with primary key `id` (by property name), read through `qr`; `forUpdate` locks it until commit. */
  async read(qr: QueryRunner, id: ObjectLiteral, forUpdate: boolean): Promise<ObjectLiteral | null> {
    const params = this.metadata.primaryColumns.map((c) => c.getEntityValue(id));
    const rows: ObjectLiteral[] = await qr.query(forUpdate ? this.sqlForUpdate : this.sql, params);
    const raw = Array.isArray(rows) ? rows[0] : undefined;
    return raw ? this.hydrate(qr, raw) : null;
  }

  private hydrate(qr: QueryRunner, raw: ObjectLiteral): ObjectLiteral {
    const driver = qr.connection.driver;
    const entity = this.metadata.create(qr, { fromDeserializer: true });
    for (const column of this.columns) {
      const value = raw[column.databaseName];
      if (value !== undefined) column.setEntityValue(entity, driver.prepareHydratedValue(value, column));
    }
    for (const relation of this.relations) {
      let idMap: ObjectLiteral = {};
      for (const join of relation.joinColumns) {
        const referenced = join.referencedColumn!;
        let value = driver.prepareHydratedValue(raw[join.databaseName], referenced);
        // a key that is itself a relation nests one level deeper, as TypeORM's relation-id loader does
        if (!join.isPrimary && referenced.referencedColumn)
          value = referenced.referencedColumn.createValueMap(value);
        idMap = mergeDeep(idMap, referenced.createValueMap(value));
      }
      setPath(entity, relation.propertyPath.split('.'), idMap);
    }
    return entity;
  }
}

/** `target` with `source`'s plain-object properties merged in, recursively (TypeORM's OrmUtils.mergeDeep for id maps). */
function mergeDeep(target: ObjectLiteral, source: ObjectLiteral): ObjectLiteral {
  for (const [key, value] of Object.entries(source)) {
    const plain =
      value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype;
    if (plain && target[key] !== null && typeof target[key] === 'object') mergeDeep(target[key], value);
    else target[key] = plain ? mergeDeep({}, value) : value;
  }
  return target;
}

/** Sets a dotted property path, creating the objects on the way (embedded relations). */
function setPath(entity: ObjectLiteral, parts: string[], value: unknown): void {
  let node = entity;
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
    node = node[part];
  }
  node[parts[parts.length - 1]] = value;
}
