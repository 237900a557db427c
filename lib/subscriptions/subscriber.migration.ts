import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Creates `thorn_subscriber` (SQLite and PostgreSQL). Add it to your DataSource's `migrations`. */
export class CreateThornSubscriber1764150000000 implements MigrationInterface {
  name = 'CreateThornSubscriber1764150000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const pg = queryRunner.connection.options.type === 'postgres';
    await queryRunner.createTable(
      new Table({
        name: 'thorn_subscriber',
        columns: [
          {
            name: 'id',
            type: pg ? 'uuid' : 'varchar',
            isPrimary: true,
            isGenerated: true,
            generationStrategy: 'uuid',
          },
          { name: 'event', type: 'varchar', length: '190' },
          { name: 'url', type: 'varchar', length: '2048' },
          { name: 'user', type: 'varchar', length: '255', isNullable: true },
          { name: 'hmacSecret', type: 'text' },
          { name: 'hmacDigest', type: 'varchar', length: '16', default: "'sha256'" },
          { name: 'contentType', type: 'varchar', length: '64', default: "'application/json'" },
          {
            name: 'createdAt',
            type: pg ? 'timestamp' : 'datetime',
            default: pg ? 'now()' : "datetime('now')",
          },
          {
            name: 'updatedAt',
            type: pg ? 'timestamp' : 'datetime',
            default: pg ? 'now()' : "datetime('now')",
          },
        ],
      }),
      true,
    );
    await queryRunner.createIndex(
      'thorn_subscriber',
      new TableIndex({ name: 'IDX_thorn_subscriber_event', columnNames: ['event'] }),
    );
    await queryRunner.createIndex(
      'thorn_subscriber',
      new TableIndex({ name: 'IDX_thorn_subscriber_user', columnNames: ['user'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('thorn_subscriber', true);
  }
}
