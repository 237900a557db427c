import type { Logger } from '@nestjs/common';
import type { EntityMetadata, ObjectLiteral, QueryRunner } from 'typeorm';
import type { BeforeQueryEvent } from './typeorm-types.js';
import { logError } from '../telemetry/log-fields.js';

/**
 * The rows a QueryBuilder junction delete (`relation().remove()`) removes. TypeORM announces it in `beforeRemove`
 * without ids and reports nothing after it, so the capture is armed by that announcement, reads the rows its DELETE is
 * about to remove in `beforeQuery` (same WHERE clause, same parameters) and hands them to `afterRemove`.
 */
export class JunctionDeleteCapture {
  /** Junction deletes announced without row ids, waiting for their DELETE statement. */
  private readonly armed = new WeakMap<QueryRunner, EntityMetadata>();
  private readonly captured = new WeakMap<QueryRunner, ObjectLiteral[]>();

  constructor(private readonly logger: Logger) {}

  /** `beforeRemove` of a junction row without ids: the next DELETE on `qr` is this one. */
  arm(qr: QueryRunner, junction: EntityMetadata): void {
    this.armed.set(qr, junction);
  }

  /** `beforeQuery`: when armed and `event` is the DELETE, reads the rows it will remove (awaited by the hook). */
  read(event: BeforeQueryEvent): Promise<void> | undefined {
    const qr = event.queryRunner;
    const junction = this.armed.get(qr);
    if (!junction || !/^\s*DELETE\s/i.test(event.query)) return undefined;
    this.armed.delete(qr);
    const select = selectForDelete(event.query, junction.tableName);
    if (!select) {
      this.logger.warn(
        `Junction rows removed from "${junction.tableName}" by a statement Thorn cannot read; no m2m events for it`,
      );
      return undefined;
    }
    const driver = qr.connection.driver;
    return qr.query(select, event.parameters as unknown[]).then(
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
        this.captured.set(qr, rows);
      },
      (err: Error) =>
        this.logger.error(
          `Could not read the junction rows about to be removed (no m2m events): ${logError(err)}`,
        ),
    );
  }

  /** `afterRemove` of a junction without ids: the rows read before the DELETE (none if unread); disarms `qr`. */
  take(qr: QueryRunner): ObjectLiteral[] {
    const rows = this.captured.get(qr);
    this.captured.delete(qr);
    this.armed.delete(qr);
    return rows ?? [];
  }
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
