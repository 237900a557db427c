import {
  Table,
  TableIndex,
  type MigrationInterface,
  type QueryRunner,
  type TableColumnOptions,
} from 'typeorm';

const id = (name: string): TableColumnOptions => ({ name, type: 'varchar', length: '36' });
const millis = (name: string, isNullable = false): TableColumnOptions => ({
  name,
  type: 'bigint',
  isNullable,
});
const text = (name: string): TableColumnOptions => ({ name, type: 'text', isNullable: true });
const int = (name: string, isNullable = true): TableColumnOptions => ({ name, type: 'integer', isNullable });

/**
 * Creates the delivery ledger's tables `thorn_event`, `thorn_delivery` and `thorn_attempt` with the indexes the relay
 * and the delivery log use (SQLite and PostgreSQL). Add it to your DataSource's `migrations` with `ledger` on.
 */
export class CreateThornLedger1764180000000 implements MigrationInterface {
  name = 'CreateThornLedger1764180000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'thorn_event',
        columns: [
          { ...id('id'), isPrimary: true },
          { name: 'name', type: 'varchar', length: '255' },
          { name: 'payload', type: 'text' },
          { name: 'sender', type: 'varchar', length: '255', isNullable: true },
          text('meta'),
          millis('created_at'),
          millis('fanned_out_at', true),
        ],
        indices: [
          new TableIndex({ name: 'IDX_thorn_event_created', columnNames: ['created_at'] }),
          // the relay's look for events a dead process left: only the not yet fanned out ones are in it
          new TableIndex({
            name: 'IDX_thorn_event_unfanned',
            columnNames: ['created_at'],
            where: '"fanned_out_at" IS NULL',
          }),
        ],
      }),
      true,
    );
    await queryRunner.createTable(
      new Table({
        name: 'thorn_delivery',
        columns: [
          { ...id('id'), isPrimary: true },
          id('event_id'),
          { name: 'event', type: 'varchar', length: '255' },
          { name: 'subscription_id', type: 'varchar', length: '255' },
          { name: 'source', type: 'varchar', length: '8' },
          { name: 'url', type: 'varchar', length: '2048' },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'attempts', type: 'integer', default: 0 },
          millis('next_attempt_at', true),
          { ...id('claim'), isNullable: true },
          millis('claimed_until', true),
          int('response_status'),
          text('error'),
          millis('created_at'),
          millis('updated_at'),
        ],
        indices: [
          new TableIndex({ name: 'IDX_thorn_delivery_event', columnNames: ['event_id'] }),
          // due deliveries (next_attempt_at is null once a delivery has ended)
          new TableIndex({ name: 'IDX_thorn_delivery_due', columnNames: ['next_attempt_at'] }),
          // a subscription's delivery log, newest first, cursor-paginated
          new TableIndex({
            name: 'IDX_thorn_delivery_subscription',
            columnNames: ['subscription_id', 'created_at', 'id'],
          }),
          // retention: finished deliveries by age
          new TableIndex({
            name: 'IDX_thorn_delivery_finished',
            columnNames: ['updated_at'],
            where: '"next_attempt_at" IS NULL',
          }),
        ],
      }),
      true,
    );
    await queryRunner.createTable(
      new Table({
        name: 'thorn_attempt',
        columns: [
          { ...id('delivery_id'), isPrimary: true },
          { name: 'number', type: 'integer', isPrimary: true },
          millis('started_at'),
          int('duration_ms', false),
          int('response_status'),
          text('error'),
          text('response_body'),
        ],
      }),
      true,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('thorn_attempt', true);
    await queryRunner.dropTable('thorn_delivery', true);
    await queryRunner.dropTable('thorn_event', true);
  }
}
