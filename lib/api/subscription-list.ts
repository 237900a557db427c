import type { Repository } from 'typeorm';
import { decodeCursor, encodeCursor, invalidCursor, parseLimit } from '../pagination.js';
import { subscriptionKey } from '../subscriptions/subscription-id.js';
import type { Subscriber } from '../subscriptions/subscriber.entity.js';

/** A page of a user's subscriptions, oldest first, and the cursor of the next page (null on the last). */
export interface SubscriptionPage {
  rows: Subscriber[];
  next: string | null;
}

// a timestamp as the databases print it: `2025-01-31 12:00:00[.123456][+00[:00]]` (or with a T)
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * `GET /hooks`: the user's subscriptions, oldest first (created_at, then id), `limit` at a time (default 50, max 250)
 * after `cursor`. A keyset query: a page starts right after the last row of the previous one, whatever was created or
 * deleted meanwhile. The cursor carries the created_at value as the database prints it (PostgreSQL keeps
 * microseconds, a JS Date would lose them), so the comparison is exact.
 */
export async function listSubscriptions(
  repository: Repository<Subscriber>,
  user: string,
  query: { limit?: unknown; cursor?: unknown },
): Promise<SubscriptionPage> {
  const limit = parseLimit(query.limit);
  let after: [string, string] | undefined;
  if (query.cursor !== undefined) {
    const [created, id] = decodeCursor(query.cursor, ['string', 'string']) as [string, string];
    const key = subscriptionKey(repository, id);
    if (!TIMESTAMP.test(created) || key === null) throw invalidCursor();
    after = [created, key];
  }
  const meta = repository.metadata;
  const createdColumn = meta.findColumnWithPropertyName('createdAt');
  const idColumn = meta.primaryColumns[0];
  const created = `s.${createdColumn!.propertyPath}`;
  const id = `s.${idColumn.propertyPath}`;
  const qb = repository
    .createQueryBuilder('s')
    .addSelect(textOf(repository, createdColumn!.databaseName), 'thorn_cursor')
    .where('s.user = :user', { user })
    .orderBy(created, 'ASC')
    .addOrderBy(id, 'ASC')
    .limit(limit + 1);
  if (after) {
    qb.andWhere(`(${created} > :afterCreated OR (${created} = :afterCreated AND ${id} > :afterId))`, {
      afterCreated: after[0],
      afterId: after[1],
    });
  }
  const { entities, raw } = await qb.getRawAndEntities();
  const rows = entities.slice(0, limit);
  const last = rows.length ? raw[rows.length - 1] : undefined;
  return {
    rows,
    next:
      entities.length > limit && last
        ? encodeCursor([
            String(last.thorn_cursor),
            String(rows[rows.length - 1][idColumn.propertyName as 'id']),
          ])
        : null,
  };
}

/** SQL giving the value of timestamp column `name` of alias `s` as text, exactly as stored. */
function textOf(repository: Repository<Subscriber>, name: string): string {
  const { driver, options } = repository.manager.connection;
  const column = `${driver.escape('s')}.${driver.escape(name)}`;
  const type = options.type;
  if (type === 'mysql' || type === 'mariadb') return `CAST(${column} AS CHAR)`;
  if (type === 'mssql') return `CONVERT(varchar(33), ${column}, 121)`;
  return `CAST(${column} AS ${type === 'postgres' ? 'text' : 'TEXT'})`;
}
