import { TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { versionDdl, versionInstalled, versionTarget } from './subscriber-version.js';

/**
 * Runs `change` on `thorn_subscriber`; on SQLite, TypeORM rebuilds the table to add or drop columns, which drops its
 * triggers: the subscription cache's version triggers are created again when they were there.
 */
async function keepingTriggers(queryRunner: QueryRunner, change: () => Promise<void>): Promise<void> {
  const ds = queryRunner.connection;
  const t = ds.options.type === 'better-sqlite3' ? versionTarget(ds, 'thorn_subscriber') : null;
  const had = t ? await versionInstalled(queryRunner, t) : false;
  await change();
  if (t && had) for (const sql of versionDdl(t)) await queryRunner.query(sql);
}

/**
 * Adds endpoint health and secret rotation to `thorn_subscriber` (SQLite and PostgreSQL): `active`, `disabledAt`,
 * `disabledReason`, `consecutiveFailures`, `failingSince`, `previousHmacSecret`, `previousHmacSecretExpiresAt`, and
 * replaces the `event` index by one on (`event`, `active`), the lookup's. Add it after
 * `CreateThornSubscriberVersion1764160000000`. Existing rows become active, with no failure streak.
 */
export class AddThornSubscriberHealth1764170000000 implements MigrationInterface {
  name = 'AddThornSubscriberHealth1764170000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const pg = queryRunner.connection.options.type === 'postgres';
    const date = pg ? 'timestamp' : 'datetime';
    await keepingTriggers(queryRunner, () => this.addColumns(queryRunner, date));
    await queryRunner.dropIndex('thorn_subscriber', 'IDX_thorn_subscriber_event');
    await queryRunner.createIndex(
      'thorn_subscriber',
      new TableIndex({ name: 'IDX_thorn_subscriber_event_active', columnNames: ['event', 'active'] }),
    );
  }

  private async addColumns(queryRunner: QueryRunner, date: string): Promise<void> {
    const pg = queryRunner.connection.options.type === 'postgres';
    await queryRunner.addColumns('thorn_subscriber', [
      new TableColumn({ name: 'previousHmacSecret', type: 'text', isNullable: true }),
      new TableColumn({ name: 'previousHmacSecretExpiresAt', type: date, isNullable: true }),
      new TableColumn({ name: 'active', type: 'boolean', default: pg ? 'true' : '1' }),
      new TableColumn({ name: 'disabledAt', type: date, isNullable: true }),
      new TableColumn({ name: 'disabledReason', type: 'varchar', length: '32', isNullable: true }),
      new TableColumn({ name: 'consecutiveFailures', type: 'integer', default: '0' }),
      new TableColumn({ name: 'failingSince', type: date, isNullable: true }),
    ]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('thorn_subscriber', 'IDX_thorn_subscriber_event_active');
    await queryRunner.createIndex(
      'thorn_subscriber',
      new TableIndex({ name: 'IDX_thorn_subscriber_event', columnNames: ['event'] }),
    );
    await keepingTriggers(queryRunner, () =>
      queryRunner.dropColumns('thorn_subscriber', [
        'failingSince',
        'consecutiveFailures',
        'disabledReason',
        'disabledAt',
        'active',
        'previousHmacSecretExpiresAt',
        'previousHmacSecret',
      ]),
    );
  }
}
