import type { MigrationInterface, QueryRunner } from 'typeorm';
import {
  VERSION_TABLE,
  versionDdl,
  versionDropDdl,
  versionTarget,
  type VersionTarget,
} from './subscriber-version.js';

function target(queryRunner: QueryRunner): VersionTarget {
  const ds = queryRunner.connection;
  const t = versionTarget(ds, 'thorn_subscriber', (ds.options as { schema?: string }).schema);
  if (!t) throw new Error(`${VERSION_TABLE}: triggers exist for PostgreSQL and SQLite (better-sqlite3) only`);
  return t;
}

/**
 * Creates `thorn_subscriber_version` and the triggers on `thorn_subscriber` that bump its row on every change of the
 * stored patterns, so each process's subscription cache notices writes from anywhere (SQLite and PostgreSQL). Add it
 * after `CreateThornSubscriber1764150000000`. Without it, the module creates them at start-up.
 */
export class CreateThornSubscriberVersion1764160000000 implements MigrationInterface {
  name = 'CreateThornSubscriberVersion1764160000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const sql of versionDdl(target(queryRunner))) await queryRunner.query(sql);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const t = target(queryRunner);
    for (const sql of versionDropDdl(t)) await queryRunner.query(sql);
    // the table (and function) go when no other subscription table uses them
    const [{ n }]: { n: number | string }[] = await queryRunner.query(
      `SELECT count(*) AS n FROM ${t.versionSql}`,
    );
    if (Number(n) > 0) return;
    await queryRunner.query(`DROP TABLE ${t.versionSql}`);
    if (t.type === 'postgres') await queryRunner.query(`DROP FUNCTION IF EXISTS ${t.functionSql}()`);
  }
}
