import type { DataSource, EntityManager, QueryRunner } from 'typeorm';

/**
 * The version row of a subscription table: `thorn_subscriber_version (table_name, version)`, one row per subscription
 * table (keyed by its table name, so a custom `subscriberEntity` gets its own), bumped by database triggers on every
 * INSERT, DELETE, TRUNCATE and UPDATE of `event` on that table, whoever writes: this process, another one, raw SQL, a
 * migration. The pattern cache reads it (one primary-key read) to learn whether its copy of the stored patterns is
 * still current. Triggers exist for PostgreSQL and SQLite; other drivers have no cache (every event queries).
 */
export const VERSION_TABLE = 'thorn_subscriber_version';

/** The table's database name, its (PostgreSQL) schema and how to write both in SQL. */
export interface VersionTarget {
  type: 'postgres' | 'better-sqlite3';
  /** The subscription table's name (the version row's key). */
  table: string;
  /** Schema-qualified, escaped name of the subscription table. */
  tableSql: string;
  /** Schema-qualified, escaped name of the version table (same schema as the subscription table). */
  versionSql: string;
  /** PostgreSQL: the schema-qualified, escaped name of the trigger function. */
  functionSql: string;
}

/** PostgreSQL: the trigger's name (trigger names are per table there). */
const PG_TRIGGER = 'thorn_subscriber_version';
/** SQLite: trigger names are per database, so each carries its table's name. */
const sqliteTriggers = (table: string) =>
  (['insert', 'update', 'delete'] as const).map((op) => ({ op, name: `${table}_thorn_version_${op}` }));

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * Where the version row of `table` lives on `dataSource`, or null for drivers without triggers here. `schema` is the
 * subscription entity's schema (PostgreSQL), when it has one.
 */
export function versionTarget(dataSource: DataSource, table: string, schema?: string): VersionTarget | null {
  const type = dataSource.options.type;
  if (type !== 'postgres' && type !== 'better-sqlite3') return null;
  const prefix = type === 'postgres' && schema ? `${quote(schema)}.` : '';
  return {
    type,
    table,
    tableSql: prefix + quote(table),
    versionSql: prefix + quote(VERSION_TABLE),
    functionSql: `${prefix}"thorn_subscriber_version_bump"`,
  };
}

/**
 * The statements that create the version table, its row for `t.table` (starting at a random value, so a table dropped
 * and created again never repeats a version a cache may hold) and the triggers. Idempotent.
 */
export function versionDdl(t: VersionTarget): string[] {
  const table = `CREATE TABLE IF NOT EXISTS ${t.versionSql} ("table_name" varchar(255) PRIMARY KEY, "version" bigint NOT NULL)`;
  if (t.type === 'postgres') {
    return [
      table,
      `INSERT INTO ${t.versionSql} ("table_name", "version") VALUES (${literal(t.table)}, floor(random() * 1e15)::bigint) ON CONFLICT DO NOTHING`,
      // statement-level (a bulk write bumps once); TG_TABLE_NAME keys the row, so one function serves every table;
      // the version table sits in the subscription table's schema, whatever the writer's search_path
      `CREATE OR REPLACE FUNCTION ${t.functionSql}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('UPDATE %I.%I SET "version" = "version" + 1 WHERE "table_name" = $1', TG_TABLE_SCHEMA, ${literal(VERSION_TABLE)})
    USING TG_TABLE_NAME;
  RETURN NULL;
END $$`,
      `DROP TRIGGER IF EXISTS ${quote(PG_TRIGGER)} ON ${t.tableSql}`,
      `CREATE TRIGGER ${quote(PG_TRIGGER)} AFTER INSERT OR UPDATE OF "event" OR DELETE OR TRUNCATE ON ${t.tableSql} FOR EACH STATEMENT EXECUTE FUNCTION ${t.functionSql}()`,
    ];
  }
  const bump = `UPDATE ${t.versionSql} SET "version" = "version" + 1 WHERE "table_name" = ${literal(t.table)};`;
  return [
    table,
    `INSERT INTO ${t.versionSql} ("table_name", "version") VALUES (${literal(t.table)}, abs(random() % 1000000000000000)) ON CONFLICT DO NOTHING`,
    ...sqliteTriggers(t.table).map(
      ({ op, name }) =>
        `CREATE TRIGGER IF NOT EXISTS ${quote(name)} AFTER ${op === 'update' ? 'UPDATE OF "event"' : op.toUpperCase()} ON ${t.tableSql} BEGIN ${bump} END`,
    ),
  ];
}

/** The statements that remove the triggers of `t.table` and its version row (the table and function stay). */
export function versionDropDdl(t: VersionTarget): string[] {
  const row = `DELETE FROM ${t.versionSql} WHERE "table_name" = ${literal(t.table)}`;
  if (t.type === 'postgres') return [`DROP TRIGGER IF EXISTS ${quote(PG_TRIGGER)} ON ${t.tableSql}`, row];
  return [...sqliteTriggers(t.table).map(({ name }) => `DROP TRIGGER IF EXISTS ${quote(name)}`), row];
}

type Querier = Pick<QueryRunner | EntityManager, 'query'>;

/** The current version of `t.table`, as a string; null when its row (or the version table) is missing. */
export async function readVersion(q: Querier, t: VersionTarget): Promise<string | null> {
  const sql =
    t.type === 'postgres'
      ? `SELECT "version" FROM ${t.versionSql} WHERE "table_name" = $1`
      : `SELECT "version" FROM ${t.versionSql} WHERE "table_name" = ?`;
  const rows: { version: unknown }[] = await q.query(sql, [t.table]);
  return rows.length ? String(rows[0].version) : null;
}

/**
 * Whether the version row and every trigger of `t.table` exist (so nothing needs creating). Never fails for a missing
 * table, so it can run inside a PostgreSQL transaction.
 */
export async function versionInstalled(q: Querier, t: VersionTarget): Promise<boolean> {
  if (t.type === 'postgres') {
    const [row]: { version: boolean; trigger: boolean }[] = await q.query(
      `SELECT to_regclass($1) IS NOT NULL AS "version",
              EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($2) AND tgname = $3 AND NOT tgisinternal) AS "trigger"`,
      [t.versionSql, t.tableSql, PG_TRIGGER],
    );
    if (!row.version || !row.trigger) return false;
  } else {
    const names = sqliteTriggers(t.table).map((x) => x.name);
    const rows: { name: string }[] = await q.query(
      `SELECT name FROM sqlite_master WHERE (type = 'trigger' AND tbl_name = ? AND name IN (${names.map(() => '?').join(', ')})) OR (type = 'table' AND name = ?)`,
      [t.table, ...names, VERSION_TABLE],
    );
    if (rows.length !== names.length + 1) return false;
  }
  return (await readVersion(q, t)) !== null;
}

/**
 * Creates what is missing of the version table, row and triggers (one transaction; on PostgreSQL under an advisory
 * lock, so processes starting together don't race). Does nothing (no DDL) when everything is there.
 */
export async function installVersion(dataSource: DataSource, t: VersionTarget): Promise<void> {
  if (await versionInstalled(dataSource, t)) return;
  await dataSource.transaction(async (m) => {
    if (t.type === 'postgres') {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${VERSION_TABLE}:${t.tableSql}`]);
      // another process may have created it while this one waited
      if (await versionInstalled(m, t)) return;
    }
    for (const sql of versionDdl(t)) await m.query(sql);
  });
}
